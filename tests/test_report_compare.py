"""``segur report compare``: regressions gate a release, catalogue moves do not, any input shape reads the same."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path

import pytest
from report_samples import sample_report, write_sample_run

from segur.reports.compare import (
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_UNREADABLE,
    ReportError,
    compare_command,
    compare_reports,
    load_report,
    render_text,
)


def _with(report: dict, **changes: dict) -> dict:
    """A copy of ``report`` with some requirements' fields replaced (keys: id with / and . as _)."""
    mutated = copy.deepcopy(report)
    for entry in mutated["exigences"]:
        entry.update(changes.get(entry["id"].replace("/", "_").replace(".", "_"), {}))
    return mutated


def _ids(changes: list) -> list[str]:
    return [change.id for change in changes]


def test_identical_runs_have_nothing_to_say():
    comparison = compare_reports(sample_report(), sample_report())
    assert not (comparison.regressions or comparison.improvements or comparison.changed)
    assert not (comparison.changed_findings or comparison.added or comparison.removed or comparison.warnings)
    assert comparison.exit_code == EXIT_OK


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ("conforme", "non_teste", "regressions"),
        ("conforme", "non_conforme", "regressions"),
        ("non_teste", "non_conforme", "regressions"),
        ("non_conforme", "non_teste", "improvements"),
        ("non_teste", "conforme", "improvements"),
        ("non_conforme", "conforme", "improvements"),
    ],
)
def test_software_outcomes_are_ranked_conforme_then_non_teste_then_non_conforme(before, after, kind):
    old = _with(sample_report(), INS_va1_02={"statut": before})
    new = _with(sample_report(), INS_va1_02={"statut": after, "messages": ["preuve absente"]})
    comparison = compare_reports(old, new)
    assert _ids(getattr(comparison, kind)) == ["INS/va1.02"]
    assert comparison.exit_code == (EXIT_REGRESSION if kind == "regressions" else EXIT_OK)


def test_a_regression_says_why_with_the_new_messages():
    new = _with(sample_report(), INS_va1_02={"statut": "non_teste", "messages": ["INSi indisponible"]})
    (regression,) = compare_reports(sample_report(), new).regressions
    assert (regression.old, regression.new, regression.details) == ("conforme", "non_teste", ("INSi indisponible",))


def test_a_requirement_turned_manual_by_the_catalogue_is_a_change_not_a_regression():
    new = _with(sample_report(), INS_va1_02={"statut": "preuve_manuelle", "verification": "manuelle"})
    comparison = compare_reports(sample_report(), new)
    assert _ids(comparison.changed) == ["INS/va1.02"] and not comparison.regressions
    assert comparison.changed[0].details == ("vérification automatique → manuelle",)
    assert comparison.exit_code == EXIT_OK


def test_a_requirement_leaving_the_rem_scope_is_a_change_naming_the_rems():
    new = _with(sample_report(), INS_va1_02={"statut": "non_applicable", "rems": ["LGC"]})
    (change,) = compare_reports(sample_report(), new).changed
    assert change.details == ("REM DPI LGC → LGC",)


def test_same_status_with_other_findings_is_listed_with_what_appeared_and_vanished():
    new = sample_report()
    constat = new["exigences"][1]["scenarios"][0]["constats"][0]
    constat["location"] = "/rim:ExtrinsicObject[1]/rim:Slot[@name='size']"
    comparison = compare_reports(sample_report(), new)
    (change,) = comparison.changed_findings
    assert (change.id, change.old, change.new) == ("DMP/PROV.03", "non_conforme", "non_conforme")
    assert change.details == (
        "+ XDSNonIdenticalHash /rim:ExtrinsicObject[1]/rim:Slot[@name='size']",
        "- XDSNonIdenticalHash /rim:ExtrinsicObject[1]/rim:Slot[@name='hash']",
    )
    assert comparison.exit_code == EXIT_OK


def test_same_findings_with_another_message_is_a_changed_finding():
    new = _with(sample_report(), DMP_PROV_03={"messages": ["taille différente"]})
    (change,) = compare_reports(sample_report(), new).changed_findings
    assert change.details == ("+ « taille différente »", "- « hash différent »")


def test_a_reworded_constat_at_the_same_place_is_not_a_new_finding():
    new = sample_report()
    new["exigences"][1]["scenarios"][0]["constats"][0]["message"] = "empreinte différente"
    assert not compare_reports(sample_report(), new).changed_findings


def test_verdict_conforme_to_non_conforme_fails_the_gate_even_through_an_added_requirement():
    old = _with(sample_report(), DMP_PROV_03={"statut": "conforme", "messages": []})
    old["verdict"] = "conforme"
    new = copy.deepcopy(old)
    added = copy.deepcopy(new["exigences"][1]) | {"id": "DMP/PROV.99", "statut": "non_conforme"}
    new["exigences"].append(added)
    new["verdict"], new["catalogue_version"] = "non_conforme", "2026.12.0"
    comparison = compare_reports(old, new)
    assert not comparison.regressions and _ids(comparison.added) == ["DMP/PROV.99"]
    assert comparison.verdict_regressed and comparison.exit_code == EXIT_REGRESSION
    assert comparison.warnings == ["versions du catalogue différentes : 2026.11.5 → 2026.12.0"]


def test_removed_requirements_and_another_couloir_are_reported():
    new = sample_report()
    new["exigences"] = [e for e in new["exigences"] if e["id"] != "INS/va1.99"]
    new["couloir"] = "ville"
    comparison = compare_reports(sample_report(), new)
    assert [(c.id, c.old, c.new) for c in comparison.removed] == [("INS/va1.99", "externe", None)]
    assert comparison.warnings == ["couloirs différents : hopital → ville"]
    assert comparison.exit_code == EXIT_OK


def test_runs_in_different_modes_are_flagged():
    new = sample_report()
    new["mode"] = "homologation"
    assert compare_reports(sample_report(), new).warnings == [
        "modes différents (bac-a-sable / homologation) : bac-a-sable → homologation"
    ]


def test_text_groups_one_line_per_requirement_in_french():
    old = _with(sample_report(), MSS_PROV_05={"statut": "conforme", "verification": "automatique"})
    new = _with(sample_report(), INS_va1_02={"statut": "non_conforme", "messages": ["INS non qualifiée"]})
    new["exigences"].pop()
    text = render_text(compare_reports(old, new))
    regression = "  INS/va1.02 : Conforme → Non conforme — Intitulé de INS/va1.02 (INS non qualifiée)\n"
    assert "Régressions (1) :\n" + regression in text
    assert "Changements de périmètre (1) :\n  MSS/PROV.05 : Conforme → Preuve manuelle" in text
    assert "Exigences retirées (1) :\n  INS/va1.99 : Preuve externe → absente — Intitulé de INS/va1.99\n" in text
    assert "Améliorations" not in text and text.endswith("Résultat : régression, publication bloquée\n")


def test_json_names_each_group_and_the_gate():
    new = _with(sample_report(), INS_va1_02={"statut": "non_teste"})
    data = json.loads(json.dumps(compare_reports(sample_report(), new).to_json(), ensure_ascii=False))
    assert data["bloquant"] is True and data["verdict"] == {"ancien": "non_conforme", "nouveau": "non_conforme"}
    assert data["regressions"] == [
        {"id": "INS/va1.02", "titre": "Intitulé de INS/va1.02", "nature": "EXIGENCE", "ancien": "conforme",
         "nouveau": "non_teste", "details": [], "bloquant": True}
    ]  # fmt: skip
    assert data["ancien"]["sut"] == "LOGICIEL TEST 1.0" and data["exigences_ajoutees"] == []


def _preconisation_regressed() -> tuple[dict, dict]:
    """INS/va1.02 made a préconisation in both runs, conforme then non conforme; nothing else moves."""
    old = _with(sample_report(), INS_va1_02={"nature": "PRECONISATION"})
    return old, _with(old, INS_va1_02={"statut": "non_conforme", "messages": ["INS non qualifiée"]})


def test_a_preconisation_regression_is_listed_as_non_blocking_and_passes_the_gate():
    comparison = compare_reports(*_preconisation_regressed())
    assert _ids(comparison.regressions) == ["INS/va1.02"] and not comparison.blocking_regressions
    assert comparison.exit_code == EXIT_OK
    text = render_text(comparison)
    assert (
        "Régressions (1) :\n  INS/va1.02 : Conforme → Non conforme [préconisation, non bloquante] — "
        "Intitulé de INS/va1.02 (INS non qualifiée)\n"
    ) in text
    assert text.endswith("Résultat : aucune régression bloquante (1 préconisation(s) en régression)\n")


def test_a_preconisation_regression_beside_an_exigence_one_still_blocks():
    old, new = _preconisation_regressed()
    new = _with(new, DMP_PROV_03={"statut": "non_conforme"})
    old = _with(old, DMP_PROV_03={"statut": "non_teste"})
    comparison = compare_reports(old, new)
    assert _ids(comparison.regressions) == ["INS/va1.02", "DMP/PROV.03"]
    assert _ids(comparison.blocking_regressions) == ["DMP/PROV.03"] and comparison.exit_code == EXIT_REGRESSION
    assert render_text(comparison).endswith("Résultat : régression, publication bloquée\n")


def test_command_json_marks_a_preconisation_regression_and_exits_0(tmp_path):
    old, new = _preconisation_regressed()
    out = io.StringIO()
    assert compare_command(write_sample_run(tmp_path / "old", old), write_sample_run(tmp_path / "new", new),
                           fmt="json", out=out) == EXIT_OK  # fmt: skip
    data = json.loads(out.getvalue())
    (regression,) = data["regressions"]
    assert data["bloquant"] is False
    assert (regression["id"], regression["nature"], regression["bloquant"]) == ("INS/va1.02", "PRECONISATION", False)


def _bundle(run_dir: Path, target: Path) -> Path:
    """A zip laid out as the evidence bundle: every member under one top folder named after the run."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(run_dir.rglob("*")):
            if path.is_file():
                archive.write(path, f"{run_dir.name}/{path.relative_to(run_dir)}")
    return target


def test_a_run_dir_its_rapport_json_and_its_bundle_read_the_same(tmp_path):
    run_dir = write_sample_run(tmp_path / "run-1")
    bundle = _bundle(run_dir, tmp_path / "run-1.zip")
    assert load_report(run_dir) == load_report(run_dir / "rapport.json") == load_report(bundle) == sample_report()


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ({"run/evidence/x.http": b"x"}, "found 0"),
        ({"a/rapport.json": b"{}", "b/rapport.json": b"{}"}, "found 2"),
        ({"run/rapport.json": b"\xff"}, "decode"),
        ({"run/rapport.json": b'{"verdict": "conforme"}'}, "not a rapport.json"),
        ({"run/rapport.json": b'{"verdict": "conforme", "exigences": [{"id": "X"}]}'}, "unknown statut"),
    ],
)
def test_an_unusable_zip_or_report_is_a_report_error(tmp_path, members, problem):
    target = tmp_path / "bundle.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ReportError, match=problem):
        load_report(target)


def test_command_exit_codes_regression_none_and_unreadable(tmp_path, capsys):
    old = write_sample_run(tmp_path / "old")
    worse = write_sample_run(tmp_path / "new", _with(sample_report(), INS_va1_02={"statut": "non_teste"}))
    out = io.StringIO()
    assert compare_command(old, worse, out=out) == EXIT_REGRESSION
    assert "INS/va1.02 : Conforme → Non testé" in out.getvalue()
    out = io.StringIO()
    assert compare_command(worse, old / "rapport.json", fmt="json", out=out) == EXIT_OK
    assert [c["id"] for c in json.loads(out.getvalue())["ameliorations"]] == ["INS/va1.02"]
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert compare_command(old, tmp_path / "broken.json", out=io.StringIO()) == EXIT_UNREADABLE
    assert compare_command(tmp_path / "absent", old, out=io.StringIO()) == EXIT_UNREADABLE
    assert "rapport illisible" in capsys.readouterr().err
