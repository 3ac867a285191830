"""Wall time of `segur run --couloir X --sut reference` (target: one couloir's INS suite <= 15 s).

Usage: .venv/bin/python bench/couloir_bench.py [--runs 3] [--couloir hopital]
The PKI is generated once beforehand, as it would be on a vendor's machine after the first run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from segur.pki import ensure_pki


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--couloir", action="append", choices=("hopital", "ville"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        pki = ensure_pki(Path(scratch) / "pki")
        for couloir in args.couloir or ["hopital", "ville"]:
            times = []
            for index in range(args.runs):
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "segur.cli", "run", "--couloir", couloir, "--sut", "reference", "--quiet",
                     "--pki", str(pki.directory), "--out", str(Path(scratch) / f"{couloir}-{index}")],
                    capture_output=True,
                    text=True,
                )  # fmt: skip
                times.append(time.perf_counter() - started)
                if done.returncode != 0:
                    print(done.stdout, done.stderr, file=sys.stderr)
                    return done.returncode
            print(
                f"segur run --couloir {couloir} --sut reference: median {statistics.median(times):.2f} s, "
                f"max {max(times):.2f} s over {args.runs} runs (target <= 15 s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
