"""pytest plugin of the harness: session lifecycle, scenario recording, Allure labels, report.

Active only when ``--couloir`` is given; the project's own tests load it inertly.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

from segur.catalogue import load_catalogue, requirement_tags
from segur.harness import COULOIRS, Harness, RunOptions
from segur.journal import payload
from segur.recorder import BAC_A_SABLE, MODES, ScenarioResult, StepResult
from segur.redaction import redact
from segur.reports.allure import requirement_labels, requirement_link, write_uncovered
from segur.sut import SutUnreachable

HARNESS = pytest.StashKey[Harness]()
RESULT = pytest.StashKey[ScenarioResult]()
OUTCOME = pytest.StashKey[dict[str, Any]]()
STEP_MODULES = (
    "segur.steps.common",
    "segur.steps.insi",
    "segur.steps.psc",
    "segur.steps.dmp",
    "segur.steps.mss",
)


# Fixtures step functions receive; everything else in their arguments comes from the step text.
STEP_FIXTURES = frozenset({"ctx", "harness", "request"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("segur", "Ségur conformance harness")
    group.addoption("--couloir", choices=COULOIRS, help="run the couloir's scenarios against --sut")
    group.addoption(
        "--sut", default="reference", help="reference[:defects] | http://HOST:PORT | python:mod:Class | manual"
    )
    group.addoption("--segur-out", default=None, help="run directory (default reports/out/<run-id>)")
    group.addoption("--segur-pki", default=".segur/pki", help="test PKI directory (generated on first use)")
    group.addoption("--segur-quiet", action="store_true", help="no progress lines")
    group.addoption("--segur-interactive", action="store_true", help="manual adapter may ask the operator")
    group.addoption("--segur-manual-timeout", type=float, default=120.0)
    group.addoption("--segur-mode", choices=MODES, default=BAC_A_SABLE, help="bac-a-sable | homologation")
    group.addoption("--segur-rem", default=None, help="REM overlay from `segur exigences import`")
    group.addoption("--segur-cisis", default=None, help="CI-SIS package: the DMP checks each CDA with its Schematrons")
    group.addoption(
        "--segur-sut-config", default=None, help="SUT adapter config file (recorded; must be committed in homologation)"
    )
    group.addoption("--insi-idam", action="append", default=[], help="IDAM number the INSi mock must accept")
    group.addoption("--psc-redirect-uri", action="append", default=[], help="SUT redirect URI to register at PSC")
    group.addoption(
        "--psc-post-logout-redirect-uri", action="append", default=[], help="SUT post-logout URI to register at PSC"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for module in STEP_MODULES:
        if not config.pluginmanager.has_plugin(module):
            config.pluginmanager.import_plugin(module)
    couloir = config.getoption("couloir", None)
    if not couloir:
        return
    out = config.getoption("segur_out") or str(Path("reports/out") / new_run_id(couloir))
    options = RunOptions(
        couloir=couloir,
        sut=config.getoption("sut"),
        out_dir=Path(out),
        pki_dir=Path(config.getoption("segur_pki")),
        quiet=config.getoption("segur_quiet"),
        interactive=config.getoption("segur_interactive"),
        manual_timeout=config.getoption("segur_manual_timeout"),
        insi_idam=tuple(config.getoption("insi_idam")),
        psc_redirect_uris=tuple(config.getoption("psc_redirect_uri")),
        psc_post_logout_redirect_uris=tuple(config.getoption("psc_post_logout_redirect_uri")),
        mode=config.getoption("segur_mode"),
        rem_overlay=_path_option(config, "segur_rem"),
        sut_config=_path_option(config, "segur_sut_config"),
        cisis=_path_option(config, "segur_cisis"),
    )
    # JUnit and Allure results land in the run directory unless the caller chose otherwise.
    if not config.option.xmlpath:
        config.option.xmlpath = str(options.out_dir / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(options.out_dir / "allure-results")
    config.stash[HARNESS] = Harness(options)
    config.stash[OUTCOME] = {}


def _path_option(config: pytest.Config, name: str) -> Path | None:
    value = config.getoption(name)
    return Path(value) if value else None


def new_run_id(couloir: str) -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3] + f"-{couloir}"


def harness_of(config: pytest.Config) -> Harness | None:
    return config.stash.get(HARNESS, None)


def pytest_sessionstart(session: pytest.Session) -> None:
    harness = harness_of(session.config)
    if harness is None:
        return
    try:
        harness.start()
    except (SutUnreachable, OSError) as error:
        _abort(session, harness, 3, f"SUT unreachable: {error}")
    except (ValueError, ImportError, AttributeError) as error:
        _abort(session, harness, 2, f"configuration error: {error}")


def _abort(session: pytest.Session, harness: Harness, exit_code: int, message: str) -> None:
    session.config.stash[OUTCOME]["error"] = (exit_code, message)
    harness.stop()
    pytest.exit(message, returncode=exit_code)


@pytest.fixture
def harness(request: pytest.FixtureRequest) -> Harness:
    found = harness_of(request.config)
    if found is None:
        pytest.skip("couloir scenarios run with --couloir (segur run)")
    return found


def pytest_bdd_apply_tag(tag: str, function: Any) -> bool | None:
    """Requirement tags are data for the recorder, not pytest marks."""
    return True if tag.startswith(("exigence:", "socle:")) else None


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    harness = harness_of(request.config)
    if harness is None:
        return
    exigences = requirement_tags(set(scenario.tags) | set(feature.tags))
    callspec = getattr(request.node, "callspec", None)
    example = callspec.params.get("_pytest_bdd_example", {}) if callspec else {}
    result = ScenarioResult(
        feature=feature.name,
        name=scenario.name,
        exigences=exigences,
        started=dt.datetime.now(dt.UTC).isoformat(),
        journal_start=harness.last_seq(),
        parameters={str(k): str(v) for k, v in example.items()},
    )
    request.node.stash[RESULT] = result
    harness.current = result
    _allure_labels(harness, result)


def pytest_bdd_before_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any
) -> None:
    result = request.node.stash.get(RESULT, None)
    if result is not None:
        result.steps.append(StepResult(step.keyword, step.type, step.name))


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_step_call(request: pytest.FixtureRequest, step: Any, **_: Any) -> None:
    """allure-pytest-bdd lists every step argument as a parameter; fixtures are not parameters."""
    try:
        from allure_pytest_bdd.pytest_bdd_listener import PytestBDDListener
        from allure_pytest_bdd.steps import get_step_uuid
    except ImportError:
        return
    for plugin in request.config.pluginmanager.get_plugins():
        if isinstance(plugin, PytestBDDListener):
            with plugin.lifecycle.update_step(uuid=get_step_uuid(step)) as allure_step:
                if allure_step is not None:
                    allure_step.parameters = [p for p in allure_step.parameters if p.name not in STEP_FIXTURES]


def pytest_bdd_step_error(request: pytest.FixtureRequest, step: Any, exception: BaseException, **_: Any) -> None:
    result = request.node.stash.get(RESULT, None)
    if result is None:
        return
    if isinstance(exception, SutUnreachable):
        request.config.stash[OUTCOME]["error"] = (3, f"SUT unreachable: {exception}")
        pytest.exit(f"SUT unreachable: {exception}", returncode=3)
    current = result.steps[-1] if result.steps and result.steps[-1].text == step.name else None
    if current is None:
        current = StepResult(step.keyword, step.type, step.name)
        result.steps.append(current)
    result.fail(current, exception)


def pytest_bdd_step_func_lookup_error(request: pytest.FixtureRequest, step: Any, **_: Any) -> None:
    result = request.node.stash.get(RESULT, None)
    if result is not None:
        missing = StepResult(step.keyword, step.type, step.name)
        result.steps.append(missing)
        result.fail(missing, LookupError("étape non implémentée"))


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    harness = harness_of(request.config)
    result = request.node.stash.get(RESULT, None)
    if harness is None or result is None:
        return
    result.ended = dt.datetime.now(dt.UTC).isoformat()
    result.journal_end = harness.last_seq()
    _finish(harness, result)


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """A scenario that failed before pytest-bdd's hooks ran (fixture error) is still recorded."""
    harness = harness_of(item.config)
    result = item.stash.get(RESULT, None)
    if harness is None or result is None or result.ended or call.when != "call" or call.excinfo is None:
        return
    if result.statut == "conforme":
        result.fail(StepResult("", "given", "préparation"), call.excinfo.value)
    result.ended = dt.datetime.now(dt.UTC).isoformat()
    result.journal_end = harness.last_seq()
    _finish(harness, result)


def _finish(harness: Harness, result: ScenarioResult) -> None:
    harness.scenarios.append(result)
    harness.current = None
    _allure_exchanges(harness, result)
    if not harness.options.quiet:
        mark = {"conforme": "OK ", "non_conforme": "NOK", "non_teste": "N/T"}[result.statut]
        tags = " ".join(result.exigences)
        print(f"  [{len(harness.scenarios):>2}] {mark} {result.name}  ({tags})", file=sys.__stderr__, flush=True)
        if result.message:
            print(f"        {result.message}", file=sys.__stderr__, flush=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    harness = harness_of(session.config)
    if harness is None:
        return
    if "error" in session.config.stash[OUTCOME]:
        harness.stop()
        return
    from segur.reports.builder import write_report

    try:
        report = session.config.stash[OUTCOME]["report"] = write_report(harness)
        _allure_uncovered(session.config, report)
    finally:
        harness.stop()


def run_outcome(config: pytest.Config) -> dict[str, Any]:
    """What `segur run` reads back after pytest returns."""
    return config.stash.get(OUTCOME, {})


def _allure_labels(harness: Harness, result: ScenarioResult) -> None:
    try:
        import allure
    except ImportError:
        return
    catalogue = load_catalogue()
    exigences = [e for e in map(catalogue.get, result.exigences) if e is not None]
    for name, value in requirement_labels(harness.options.couloir, exigences):
        allure.dynamic.label(name, value)
    for exigence in exigences:
        allure.dynamic.link(requirement_link(exigence), name=exigence.id)


def _allure_uncovered(config: pytest.Config, report: dict[str, Any]) -> None:
    """Requirements no scenario covered get their Allure result too, once their final status is known."""
    results = getattr(config.option, "allure_report_dir", None)
    if results:
        write_uncovered(report, Path(results))


def _allure_exchanges(harness: Harness, result: ScenarioResult) -> None:
    try:
        import allure
    except ImportError:
        return
    for record in harness.journal(result.journal_start):
        if record["seq"] > result.journal_end:
            break
        label = f"#{record['seq']} {record['mock']} {record['operation']}"
        for which in ("request", "response"):
            allure.attach(
                redact(payload(record, which)), name=f"{label} ({which})", attachment_type=allure.attachment_type.TEXT
            )
