"""Run modes: bac-a-sable decides on errors, homologation also on CRITIQUE warnings, committed config, replay.json."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace

import pytest
from harness_runs import run_couloir, segur

from segur.catalogue import Catalogue, load_catalogue
from segur.recorder import BAC_A_SABLE, HOMOLOGATION, MODES, ScenarioResult, StepResult, aggregate, verdict
from segur.replay import load_sut_config

CATALOGUE = load_catalogue()


def _scenario(exigences: list[str], findings: list[dict[str, str]]) -> ScenarioResult:
    result = ScenarioResult("feature", "scénario", exigences, "2026-11-23T10:00:00+00:00", 0)
    result.note_findings(findings, "échange #1")
    return result


def _statut(entries: list[dict], identifier: str) -> str:
    return next(e["statut"] for e in entries if e["id"] == identifier)


WARNING = {"rule": "VIHF-CONDITIONS", "severity": "warning", "message": "lifetime unbounded"}


@pytest.mark.parametrize(("mode", "expected"), [(BAC_A_SABLE, "conforme"), (HOMOLOGATION, "non_conforme")])
def test_a_warning_fails_a_critique_requirement_only_in_homologation(mode, expected):
    assert CATALOGUE.get("DMP/PROV.01").criticite == "CRITIQUE"
    entries = aggregate(CATALOGUE, "hopital", [_scenario(["DMP/PROV.01"], [WARNING])], mode)
    assert _statut(entries, "DMP/PROV.01") == expected
    entry = next(e for e in entries if e["id"] == "DMP/PROV.01")
    assert entry["scenarios"][0]["constats"][0]["origine"] == "échange #1", "warnings are shown in both modes"


def test_homologation_ignores_warnings_of_other_requirements_and_of_non_critical_ones():
    majeure = next(e.id for e in CATALOGUE.for_couloir("hopital") if e.criticite == "MAJEURE" and e.socle == "DMP")
    elsewhere = {**WARNING, "requirement": "SC.MSS/CONF.14"}
    scenarios = [_scenario(["DMP/PROV.01"], [elsewhere]), _scenario([majeure], [WARNING])]
    entries = aggregate(CATALOGUE, "hopital", scenarios, HOMOLOGATION)
    assert _statut(entries, "DMP/PROV.01") == "conforme"
    assert _statut(entries, majeure) == "conforme"


PRECONISATION = "DMP/PROV.01"  # CRITIQUE, so the homologation rule applies to it


def _catalogue(nature: str) -> Catalogue:
    """The catalogue with PRECONISATION of that nature: the real one has no préconisation yet."""
    exigences = tuple(replace(e, nature=nature) if e.id == PRECONISATION else e for e in CATALOGUE.exigences)
    return replace(CATALOGUE, exigences=exigences)


def _passing_run(catalogue: Catalogue) -> list[ScenarioResult]:
    """Every automatic requirement of the couloir proven: the verdict then hangs on what a test adds."""
    automatic = [e.id for e in catalogue.for_couloir("hopital") if e.verification == "automatique"]
    return [_scenario(automatic, [])]


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_preconisation_is_shown_non_conforme_but_does_not_decide_the_verdict(mode):
    catalogue = _catalogue("PRECONISATION")
    assert verdict(aggregate(catalogue, "hopital", _passing_run(catalogue), mode)) == "conforme"
    failing = _scenario([PRECONISATION], [])
    failing.fail(StepResult("Alors", "then", "le VIHF est valide"), AssertionError("VIHF non signé"))
    entries = aggregate(catalogue, "hopital", [*_passing_run(catalogue), failing], mode)
    entry = next(e for e in entries if e["id"] == PRECONISATION)
    assert (entry["nature"], entry["statut"]) == ("PRECONISATION", "non_conforme")
    assert entry["messages"] == ["scénario: VIHF non signé"]
    assert verdict(entries) == "conforme"


@pytest.mark.parametrize(("nature", "expected"), [("PRECONISATION", "conforme"), ("EXIGENCE", "non_conforme")])
def test_homologation_marks_a_warned_critique_preconisation_without_failing_the_verdict(nature, expected):
    """The row says non conforme, as for any CRITIQUE requirement; only an EXIGENCE carries that to the verdict."""
    catalogue = _catalogue(nature)
    warned = _scenario([PRECONISATION], [WARNING])
    entries = aggregate(catalogue, "hopital", [*_passing_run(catalogue), warned], HOMOLOGATION)
    entry = next(e for e in entries if e["id"] == PRECONISATION)
    assert entry["statut"] == "non_conforme"
    assert entry["messages"] == ["mode homologation, avertissement [VIHF-CONDITIONS] lifetime unbounded"]
    assert verdict(entries) == expected


def test_findings_are_noted_once_whichever_exchange_surfaced_them():
    result = _scenario(["DMP/PROV.01"], [WARNING, WARNING])
    result.note_findings([WARNING], "étape")
    assert len(result.findings) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sut: http://x\nunknown_key: 1\n", "unknown key(s) unknown_key"),
        ("insi_idam: ABC\n", "insi_idam must be a list"),
        ("- a list\n", "must be a mapping"),
        ("manual_timeout: soon\n", "manual_timeout must be a number"),
    ],
)
def test_sut_config_refuses_what_it_does_not_understand(tmp_path, text, message):
    path = tmp_path / "sut.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_sut_config(path)


def test_sut_config_paths_are_relative_to_the_file(tmp_path):
    """The REM overlay and the CI-SIS package the vendor keeps beside its config, wherever the run starts."""
    (tmp_path / "vendor").mkdir()
    path = tmp_path / "vendor" / "sut.yaml"
    path.write_text("rem: rem/REM_DPI.json\ncisis: ../ci-sis\n")
    config = load_sut_config(path)
    assert config["rem"] == str(tmp_path / "vendor" / "rem" / "REM_DPI.json")
    assert config["cisis"] == str(tmp_path / "ci-sis")


def _git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


@pytest.fixture
def committed_config(tmp_path):
    """An adapter config in a git working tree of its own, committed."""
    repo = tmp_path / "vendor"
    repo.mkdir()
    _git(repo, "init", "-q")
    config = repo / "segur-sut.yaml"
    config.write_text("sut: reference\ninsi_idam: [IDAM-TEST-0001]\n")
    _git(repo, "add", "segur-sut.yaml")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "adapter config")
    return config


def test_homologation_refuses_an_uncommitted_adapter_config(tmp_path, pki, committed_config):
    committed_config.write_text("sut: reference\ninsi_idam: [IDAM-TEST-0002]\n")
    code, report = run_couloir(
        "hopital", "reference", tmp_path / "run", pki.directory, "--mode", "homologation",
        "--sut-config", str(committed_config),
    )  # fmt: skip
    assert code == 2
    assert "uncommitted changes" in report["stderr"]
    loose = tmp_path / "loose.yaml"
    loose.write_text("sut: reference\n")
    done = segur("run", "--couloir", "ville", "--mode", "homologation", "--sut-config", str(loose), cwd=tmp_path)
    assert done.returncode == 2 and "not in a git working tree" in done.stderr


def test_homologation_run_records_what_replays_it(tmp_path, pki, committed_config):
    out = tmp_path / "run"
    done = segur(
        "run", "--couloir", "hopital", "--out", str(out), "--pki", str(pki.directory), "--quiet",
        "--mode", "homologation", "--sut-config", str(committed_config), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "rapport.json").read_text())
    assert report["mode"] == "homologation" and report["verdict"] == "conforme"
    assert set(report["versions"]) >= {"harnais", "catalogue", "jeux_de_valeurs", "schematron", "rem"}
    replay = json.loads((out / "replay.json").read_text())
    assert "--mode homologation" in replay["commande"] and "--insi-idam=IDAM-TEST-0001" in replay["commande"]
    assert replay["sut"]["option"] == "reference", "the config file's sut is used when --sut is absent"
    adapter = replay["fichiers_adaptateur"][0]
    assert adapter["git"]["dirty"] is False and len(adapter["sha256"]) == 64
    assert replay["pki"]["ac_sha256"] and replay["paquets"]["lxml"]
