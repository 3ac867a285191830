"""The CI templates of docs/vendors.md ("Running in CI") do what the prose promises.

Vendors copy them as they are: each must start the SUT, run a couloir, keep the bundle and the
JUnit of a failed run too, and fail the job on the run's exit code; every `segur` command they
use must exist. Their gating shell runs here with `segur` stubbed, so a template that swallows the
exit code fails this test rather than a vendor's release.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from typing import Any

import pytest
import yaml
from harness_runs import TESTS

from segur import cli
from segur.harness import COULOIRS

VENDORS = TESTS.parent / "docs" / "vendors.md"
EXIT_CODES = (0, 1, 2, 3, 4)
START_SUT = "ci/start-test-build.sh"


def ci_section() -> str:
    text = VENDORS.read_text(encoding="utf-8")
    start = text.index("\n## Running in CI\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def template(title: str) -> dict[str, Any]:
    """The YAML block of the "### <title>" subsection."""
    subsection = ci_section().split(f"\n### {title}\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"^```yaml\n(.*?)^```$", subsection, re.S | re.M)
    assert len(blocks) == 1, f"{title}: expected one YAML block, found {len(blocks)}"
    return yaml.safe_load(blocks[0])


def strict_parser() -> argparse.ArgumentParser:
    """segur's own parser, refusing abbreviated options: a template must spell an option as it exists."""
    parser = cli._parser()
    pending = [parser]
    while pending:
        current = pending.pop()
        current.allow_abbrev = False
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return parser


def segur_commands(script: str) -> list[argparse.Namespace]:
    """Every `segur …` command of a shell script, parsed by segur's CLI (fails on an unknown command or option)."""
    parser, found = strict_parser(), []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if not all(char in lexer.punctuation_chars for char in token):
                words.append(token)
                continue
            while words and words[0] in ("if", "then", "do", "else", "!"):
                words.pop(0)
            if words and words[0] == "segur":
                try:
                    args = parser.parse_args(words[1:])
                except SystemExit:
                    pytest.fail(f"`{' '.join(words)}` is not a segur command (see stderr)")
                assert hasattr(args, "handler"), f"`{' '.join(words)}` names no segur action"
                found.append(args)
            words = []
    return found


def run_args(commands: list[argparse.Namespace]) -> argparse.Namespace:
    runs = [c for c in commands if c.handler is cli._run]
    assert len(runs) == 1, "one `segur run` per job"
    assert runs[0].couloir in COULOIRS and runs[0].out, "the run names its couloir and its run directory"
    return runs[0]


def bundle_args(commands: list[argparse.Namespace]) -> argparse.Namespace:
    bundles = [c for c in commands if c.handler is cli._report_bundle]
    assert len(bundles) == 1, "one `segur report bundle` per job"
    return bundles[0]


def shell(script: str, stubs: str, **env: str) -> subprocess.CompletedProcess:
    """Run a template's shell under `bash -e` (what both CI systems use) with `segur` and friends stubbed."""
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", f"{stubs}\n{script}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
    )


def test_github_actions_job_keeps_the_evidence_and_gates_on_the_exit_code(tmp_path):
    jobs = template("GitHub Actions")["jobs"]
    assert len(jobs) == 1
    job = next(iter(jobs.values()))
    steps = job["steps"]
    assert all(not step.get("continue-on-error") for step in steps) and not job.get("continue-on-error")
    assert all("|| true" not in step.get("run", "") for step in steps)
    runs = {index: segur_commands(step.get("run", "")) for index, step in enumerate(steps)}
    start = next(i for i, step in enumerate(steps) if START_SUT in step.get("run", ""))
    run_at = next(i for i, commands in runs.items() if any(c.handler is cli._run for c in commands))
    assert start < run_at, "the SUT starts before the run"
    run = run_args(runs[run_at])
    bundle_at = next(i for i, commands in runs.items() if any(c.handler is cli._report_bundle for c in commands))
    bundle = bundle_args(runs[bundle_at])
    assert bundle.run_dir == run.out and bundle.out
    upload = next(step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact@"))
    kept = set(upload["with"]["path"].split())
    assert {str(bundle.out), str(run.out / "junit.xml")} <= kept
    for step in (steps[bundle_at], upload):
        assert "always()" in step.get("if", ""), f"{step['name']}: also when the run failed"

    run_step = steps[run_at]
    for code in EXIT_CODES:
        outputs = tmp_path / f"output-{code}"
        done = shell(run_step["run"], f"segur() {{ return {code}; }}", GITHUB_OUTPUT=str(outputs))
        assert done.returncode == 0, "the run step records the exit code instead of stopping the job"
        assert f"exit={code}" in outputs.read_text().split()

    gate = steps[-1]
    assert "always()" in gate.get("if", "")
    reference = re.compile(r"\$\{\{\s*steps\." + re.escape(run_step["id"]) + r"\.outputs\.exit\s*\}\}")
    assert reference.search(gate["run"]), "the last step gates on the run step's exit code"
    for code in (*EXIT_CODES, ""):
        done = shell(reference.sub(str(code), gate["run"]), "")
        assert (done.returncode == 0) == (code == 0), f"gate with exit code {code!r}"


def test_gitlab_ci_job_keeps_the_evidence_and_gates_on_the_exit_code():
    jobs = {name: job for name, job in template("GitLab CI").items() if isinstance(job, dict) and "script" in job}
    assert len(jobs) == 1
    job = next(iter(jobs.values()))
    assert not job.get("allow_failure")
    script = job["script"]
    assert all("|| true" not in line for line in script)
    start = next(i for i, line in enumerate(script) if START_SUT in line)
    run_at = next(i for i, line in enumerate(script) if re.search(r"^\s*segur run\b", line, re.M))
    assert start < run_at, "the SUT starts before the run"
    commands = segur_commands("\n".join(script))
    run, bundle = run_args(commands), bundle_args(commands)
    assert bundle.run_dir == run.out and bundle.out
    artifacts = job["artifacts"]
    assert artifacts.get("when") == "always", "artefacts of a failed run are kept"
    assert {str(bundle.out), str(run.out / "junit.xml")} <= set(artifacts["paths"])
    assert artifacts["reports"]["junit"] == str(run.out / "junit.xml")

    def outcome(code: int, compare: int = 0, last_release: str = "") -> tuple[int, str]:
        stubs = (
            f'segur() {{ echo "segur $*" >&2; case "$1 $2" in "run "*) return {code};;'
            f' "report compare") return {compare};; esac; }}\ncurl() {{ return 0; }}'
        )
        done = shell(script[run_at], stubs, LAST_RELEASE_BUNDLE=last_release)
        return done.returncode, done.stderr

    for code in EXIT_CODES:
        returned, calls = outcome(code)
        assert returned == code, f"the job ends with the run's exit code {code}"
        assert "segur report bundle" in calls, f"the evidence is bundled after exit code {code}"
    assert outcome(0, compare=1, last_release="https://example.org/last.zip")[0] == 1, "a regression fails the job"
    assert outcome(1, compare=0, last_release="https://example.org/last.zip")[0] == 1
