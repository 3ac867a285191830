"""``segur report coverage``: every requirement against the scenarios and proofs that stand behind it."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from segur.catalogue import COULOIR_REMS, Catalogue, load_catalogue
from segur.reports.coverage import COLUMNS, coverage_command, coverage_rows, parse_feature, write_coverage_csv


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return coverage_rows()


@pytest.mark.parametrize("couloir", sorted(COULOIR_REMS))
def test_every_automatic_requirement_has_a_scenario_with_a_proof(rows, couloir):
    """Project-wide guard, read through the Gherkin parser the way the harness links tags."""
    proved = {r["exigence"] for r in rows if r["couloir"] == couloir and r["scenario"] and r["preuve"]}
    automatic = [e.id for e in load_catalogue().for_couloir(couloir) if e.verification == "automatique"]
    assert automatic and not [identifier for identifier in automatic if identifier not in proved]
    assert not [r["exigence"] for r in rows if r["couloir"] == couloir and r["couverture"] == "non couvert"]


def test_every_requirement_of_the_catalogue_appears_for_every_couloir(rows):
    listed = {(r["exigence"], r["couloir"]) for r in rows}
    assert listed == {(e.id, c) for e in load_catalogue().exigences for c in COULOIR_REMS}


def test_manual_external_and_out_of_scope_requirements_are_flagged(rows):
    catalogue = load_catalogue()
    flags = {"automatique": "couvert", "manuelle": "preuve manuelle", "externe": "attestation externe"}
    for row in rows:
        exigence = catalogue.get(row["exigence"])
        expected = flags[exigence.verification]
        if not exigence.applies_to(row["couloir"]):
            expected = "non applicable"
        assert (row["verification"], row["couverture"]) == (exigence.verification, expected), row["exigence"]
    assert {r["couverture"] for r in rows} >= {"preuve manuelle", "attestation externe", "non applicable"}


def test_a_scenario_outline_is_one_scenario_with_its_examples_count_and_then_steps(rows):
    outline = [r for r in rows if r["exigence"] == "INS/va1.38" and r["couloir"] == "hopital"]
    assert {r["scenario"] for r in outline} == {
        "La récupération de l'INS par les traits est tracée avec son code retour <code>"
    }
    assert [(r["preuve"], r["exemples"], r["fichier"]) for r in outline] == [
        ('l\'INSi a répondu avec le code retour "<code>"', "3", "scenarios/hopital/ins.feature"),
        ("le logiciel a tracé chaque appel INSi avec son code retour", "3", "scenarios/hopital/ins.feature"),
    ]
    assert outline[0]["couloirs"] == "hopital ville" and outline[0]["intitule"]


def test_csv_parses_back_with_french_columns(rows):
    buffer = io.StringIO(newline="")
    write_coverage_csv(rows, buffer)
    parsed = list(csv.DictReader(io.StringIO(buffer.getvalue(), newline="")))
    assert parsed == rows
    assert tuple(parsed[0]) == COLUMNS
    assert {"exigence", "intitule", "socle", "verification", "couloir", "scenario", "preuve", "fichier"} <= set(COLUMNS)


def test_an_automatic_requirement_no_scenario_tags_is_non_couvert():
    real = load_catalogue()
    orphan = replace(real.get("INS/va1.02"), id="INS/PROV.99", titre="Exigence fabriquée sans scénario")
    catalogue = Catalogue(real.version, real.referentiel, (*real.exigences, orphan))
    gaps = [r for r in coverage_rows("ville", catalogue) if r["exigence"] == "INS/PROV.99"]
    assert [(r["couloir"], r["couverture"], r["scenario"], r["preuve"]) for r in gaps] == [
        ("ville", "non couvert", "", "")
    ]


def test_proofs_are_then_steps_with_conjunctions_backgrounds_and_rules():
    text = """# language: fr
@exigence:INS/va1.02
Fonctionnalité: fabriquée
  Contexte:
    Soit un contexte
    Alors le contexte est prouvé

  @exigence:INS/va1.06
  Scénario: simple
    Soit un patient
    Quand il est saisi
    Alors il est retrouvé
    Et il n'est pas dupliqué
    Mais il n'est pas modifié

  Règle: une règle
    Contexte:
      Alors la règle est prouvée

    Scénario: dans la règle
      Quand rien
"""
    simple, in_rule = parse_feature(text, "hopital", "x.feature")
    assert simple.exigences == ("INS/va1.02", "INS/va1.06") and in_rule.exigences == ("INS/va1.02",)
    assert [p.text for p in simple.proofs] == [
        "le contexte est prouvé", "il est retrouvé", "il n'est pas dupliqué", "il n'est pas modifié",
    ]  # fmt: skip
    assert [(p.text, p.line) for p in in_rule.proofs] == [("le contexte est prouvé", 6), ("la règle est prouvée", 18)]


def test_command_writes_a_csv_file_and_refuses_an_unknown_couloir(tmp_path, capsys):
    target = tmp_path / "couverture.csv"
    assert coverage_command("hopital", target) == 0
    with target.open(encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert written and {r["couloir"] for r in written} == {"hopital"}
    assert coverage_command("clinique") == 2
    assert "unknown couloir" in capsys.readouterr().err
