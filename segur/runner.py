"""``segur run``: one couloir, one SUT, one run directory, one exit code."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from segur.catalogue import COULOIR_REMS
from segur.pytest_plugin import new_run_id, run_outcome
from segur.recorder import BAC_A_SABLE
from segur.reference_sut.defects import parse_defects


class _Outcome:
    """Keeps pytest's config so the run's outcome can be read after ``pytest.main`` returns."""

    config: pytest.Config | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            print(f"segur: cannot load scenarios: {report.longreprtext}", file=sys.stderr)


def run_couloir(
    couloir: str,
    sut: str,
    *,
    out: Path | None = None,
    pki: Path = Path(".segur/pki"),
    quiet: bool = False,
    interactive: bool = False,
    manual_timeout: float = 120.0,
    insi_idam: list[str] | None = None,
    psc_redirect_uris: list[str] | None = None,
    psc_post_logout_uris: list[str] | None = None,
    mode: str = BAC_A_SABLE,
    rem_overlay: Path | None = None,
    sut_config: Path | None = None,
    cisis: Path | None = None,
) -> int:
    if couloir not in COULOIR_REMS:
        raise ValueError(f"unknown couloir {couloir!r}; use one of {', '.join(COULOIR_REMS)}")
    if sut.startswith("reference:"):
        parse_defects(sut.partition(":")[2])
    out = out or Path("reports/out") / new_run_id(couloir)
    scenario_dir = Path(str(resources.files("segur.scenarios").joinpath(couloir)))
    args = [
        str(scenario_dir),
        "-p", "segur.pytest_plugin",
        "-p", "no:cacheprovider",
        "-p", "no:terminal",
        "--capture=no",
        "-c", os.devnull,
        "--rootdir", str(scenario_dir),
        "--confcutdir", str(scenario_dir),
        "--import-mode=importlib",
        "--couloir", couloir,
        "--sut", sut,
        "--segur-out", str(out),
        "--segur-pki", str(pki),
        "--segur-manual-timeout", str(manual_timeout),
        "--segur-mode", mode,
    ]  # fmt: skip
    args += [f"--segur-rem={rem_overlay}"] * (rem_overlay is not None)
    args += [f"--segur-sut-config={sut_config}"] * (sut_config is not None)
    args += [f"--segur-cisis={cisis}"] * (cisis is not None)
    args += [f"--insi-idam={idam}" for idam in insi_idam or []]
    args += [f"--psc-redirect-uri={uri}" for uri in psc_redirect_uris or []]
    args += [f"--psc-post-logout-redirect-uri={uri}" for uri in psc_post_logout_uris or []]
    args += ["--segur-quiet"] * quiet + ["--segur-interactive"] * interactive
    if not quiet:
        print(f"Couloir {couloir} — SUT {sut} — rapport dans {out}", file=sys.stderr, flush=True)
    outcome = _Outcome()
    code = pytest.main(args, plugins=[outcome])
    result: dict[str, Any] = run_outcome(outcome.config) if outcome.config else {}
    if "error" in result:
        exit_code, message = result["error"]
        print(f"segur: {message}", file=sys.stderr)
        return exit_code
    report = result.get("report")
    if report is None or code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        print(f"segur: harness internal error (pytest exit code {int(code)})", file=sys.stderr)
        return 4
    counts = ", ".join(f"{k} {v}" for k, v in report["summary"].items() if v)
    print(f"{couloir}: {report['verdict'].upper()} ({counts}) — {out / 'rapport.html'}", flush=True)
    return 0 if report["verdict"] == "conforme" else 1
