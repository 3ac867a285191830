"""What the mock benches share: the mock host in its own process, and the figures from client latencies.

The host runs in a separate Python process so that it does not share a GIL with the clients:
the figures are then the mock's, not the benchmark's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segur.pki import ensure_pki

# Started with `python -c PKI_DIR JOURNAL MOCK`: builds the mock as `segur mocks up` does (DMP checks in
# one worker process per CPU), prints the endpoints as one JSON line, serves until stdin closes.
HOST_PROGRAM = """
import json, sys
from pathlib import Path
from segur.mocks import create_mocks
from segur.mocks.runtime.host import HostConfig, MockHost
from segur.pki import Pki
pki = Pki(Path(sys.argv[1]))
host = MockHost(create_mocks([sys.argv[3]], pki, dmp_workers=None), HostConfig(pki=pki, journal_path=Path(sys.argv[2])))
print(json.dumps(host.start()), flush=True)
sys.stdin.read()
host.stop()
"""


def start_host(work: Path, mock: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start ``mock`` (a name `segur mocks up --only` takes) with its PKI and journal under ``work``."""
    pki = ensure_pki(work / "pki")
    process = subprocess.Popen(
        [sys.executable, "-c", HOST_PROGRAM, str(pki.directory), str(work / "journal.jsonl"), mock],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise SystemExit(f"the mock host did not start (exit code {process.returncode})")
    return process, json.loads(line)


def stop_host(process: subprocess.Popen[str]) -> None:
    """Closing stdin asks the host to stop cleanly (journal closed); kill only if it does not."""
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_clients(target: Callable[..., None], arguments: tuple[Any, ...], clients: int, timeout: float) -> list[Any]:
    """``clients`` processes of ``target(*arguments, ready, results)``; each puts one outcome in ``results``.

    ``ready`` is a barrier: every client prepares and warms up, then all start measuring together.
    """
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Barrier(clients)
    results = spawn.Queue()
    workers = [spawn.Process(target=target, args=(*arguments, ready, results)) for _ in range(clients)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=timeout) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return outcomes


def journal_records(work: Path) -> int:
    return sum(1 for _ in (work / "journal.jsonl").open())


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, float]:
    """Figures over every client's ``{"latencies", "errors", "elapsed"}``: the rate is the sum of each client's."""
    latencies = sorted(latency for outcome in outcomes for latency in outcome["latencies"])
    requests = len(latencies)
    return {
        "requests": requests,
        "errors": sum(outcome["errors"] for outcome in outcomes),
        "requests_per_second": sum(len(o["latencies"]) / o["elapsed"] for o in outcomes),
        "p50_ms": statistics.median(latencies) * 1000 if requests else 0.0,
        "p99_ms": statistics.quantiles(latencies, n=100, method="inclusive")[98] * 1000 if requests > 1 else 0.0,
    }


def load_arguments(description: str, argv: list[str] | None, clients: str) -> argparse.Namespace:
    """``--seconds`` and ``--clients`` as every bench takes them; ``clients`` says what one client is."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measure lasts (default 5)")
    parser.add_argument("--clients", type=int, default=2, help=f"{clients}, one connection each (default 2)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1:
        parser.error("--seconds must be > 0 and --clients >= 1")
    return args
