"""Allure lists every requirement of a couloir: those no scenario covered get a skipped result saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_cli import assert_allure_cli_renders

from segur.catalogue import load_catalogue
from segur.recorder import ScenarioResult, aggregate
from segur.reports.allure import write_environment, write_uncovered

COVERED = "INS/va1.38"


def run_report(couloir: str) -> dict[str, Any]:
    """rapport.json's requirement part for a run whose only scenario proves COVERED."""
    scenario = ScenarioResult(feature="INS", name="trace", exigences=[COVERED], started="", journal_start=0)
    entries = aggregate(load_catalogue(), couloir, [scenario])
    return {"couloir": couloir, "ended": "2026-01-02T03:04:05+00:00", "exigences": entries}


def results_by_requirement(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in folder.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        stories = [label["value"] for label in result["labels"] if label["name"] == "story"]
        assert len(stories) == 1, stories
        identifier = stories[0].split()[0]
        assert identifier not in found, f"two results for {identifier}"
        found[identifier] = result
    return found


def test_each_requirement_without_scenario_is_a_skipped_story_saying_why(tmp_path):
    report = run_report("ville")
    write_uncovered(report, tmp_path)
    found = results_by_requirement(tmp_path)
    expected = {e["id"] for e in report["exigences"] if not e["scenarios"] and e["statut"] != "non_applicable"}
    assert set(found) == expected
    assert COVERED not in found and "SC.MSS/CONF.27" not in found, "covered or not applicable: no extra result"
    external = found["INS/PROV.10"]
    labels = {(label["name"], label["value"]) for label in external["labels"]}
    assert labels == {
        ("epic", "couloir ville"),
        ("feature", "INS"),
        ("story", "INS/PROV.10 Disposer de l'attestation CNDA de conformité du module INSi"),
        ("severity", "critical"),
    }
    assert external["links"] == [{"type": "link", "url": "../rapport.html#exigence-INS_PROV.10", "name": "INS/PROV.10"}]
    assert external["status"] == "skipped"
    assert external["statusDetails"]["message"].startswith("externe: attestation externe")
    assert found["INS/PROV.08"]["statusDetails"]["message"].startswith("preuve_manuelle: preuve manuelle")
    assert ("severity", "normal") in {(label["name"], label["value"]) for label in found["INS/PROV.08"]["labels"]}
    untested = next(r for r in found.values() if r["statusDetails"]["message"].startswith("non_teste"))
    assert "aucun scénario" in untested["statusDetails"]["message"]


def test_reruns_keep_each_requirement_s_ids_and_couloirs_do_not_share_them(tmp_path):
    ids = {}
    for name, couloir in (("first", "ville"), ("again", "ville"), ("other", "hopital")):
        write_uncovered(run_report(couloir), tmp_path / name)
        found = results_by_requirement(tmp_path / name)
        ids[name] = {key: (r["uuid"], r["historyId"], r["testCaseId"]) for key, r in found.items()}
    assert ids["first"] == ids["again"]
    assert ids["first"]["INS/PROV.10"] != ids["other"]["INS/PROV.10"]


def test_allure_cli_renders_the_uncovered_requirements(tmp_path):
    results = tmp_path / "run" / "allure-results"
    report = run_report("ville")
    write_uncovered(report, results)
    write_environment(report, results)
    assert_allure_cli_renders(tmp_path / "run")
    tree = (tmp_path / "run" / "allure-report" / "widgets" / "tree.json").read_text(encoding="utf-8")
    assert "INS/PROV.10 Disposer" in tree
