"""Runs `segur run` in a subprocess, as a user or a CI job would, and reads the report back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).parent


def segur(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segur.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})},
    )


def run_couloir(
    couloir: str, sut: str, out: Path, pki: Path, *extra: str, stdin: str = ""
) -> tuple[int, dict[str, Any]]:
    done = segur(
        "run",
        "--couloir",
        couloir,
        "--sut",
        sut,
        "--out",
        str(out),
        "--pki",
        str(pki),
        "--quiet",
        *extra,
        cwd=out.parent,
        stdin=stdin,
    )
    report_path = out / "rapport.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"stderr": done.stderr}
    return done.returncode, report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {entry["id"]: entry["statut"] for entry in report["exigences"]}
