"""The catalogue's own rules, and the link between scenarios and requirements (tags only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segur.catalogue import COULOIR_REMS, ID_PATTERN, load_catalogue, parse_catalogue, requirement_tags

SCENARIOS = Path(__file__).parents[1] / "scenarios"
TAG = re.compile(r"@exigence:(\S+)")


def feature_tags(couloir: str) -> set[str]:
    return {tag for path in (SCENARIOS / couloir).glob("*.feature") for tag in TAG.findall(path.read_text())}


@pytest.mark.parametrize("couloir", sorted(COULOIR_REMS))
def test_every_scenario_tag_names_a_known_requirement(couloir):
    catalogue = load_catalogue()
    unknown = sorted(tag for tag in feature_tags(couloir) if catalogue.get(tag) is None)
    assert not unknown, f"scenario tags naming no requirement of the catalogue: {unknown}"


@pytest.mark.parametrize("couloir", sorted(COULOIR_REMS))
def test_every_automatic_requirement_has_a_scenario(couloir):
    tags = feature_tags(couloir)
    missing = [
        e.id for e in load_catalogue().for_couloir(couloir) if e.verification == "automatique" and e.id not in tags
    ]
    assert not missing, f"automatic requirements without a scenario in {couloir}: {missing}"


def test_manual_and_external_requirements_are_not_claimed_by_scenarios():
    claimed = feature_tags("hopital") | feature_tags("ville")
    catalogue = load_catalogue()
    assert not [e.id for e in catalogue.exigences if e.verification != "automatique" and e.id in claimed]


@pytest.mark.parametrize("identifier", ["SC.INS/PSC.01", "INS/va1.38", "MSS/CONF.16", "INS/PROV.01"])
def test_id_grammar_accepts_segur_ids(identifier):
    assert ID_PATTERN.match(identifier)


@pytest.mark.parametrize("identifier", ["INS/va1.38.01", "ins", "INS-va1.38", "SC.INS/PSC.1"])
def test_id_grammar_rejects_scenario_ids_and_typos(identifier):
    assert not ID_PATTERN.match(identifier)


def _entry(**overrides):
    entry = {
        "id": "INS/va1.38",
        "titre": "t",
        "socle": "INS",
        "rems": ["DPI"],
        "nature": "EXIGENCE",
        "criticite": "MAJEURE",
        "source": "s",
        "verification": "automatique",
    }
    return {**entry, **overrides}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"id": "INS/38"}, "grammar"),
        ({"nature": "DOIT"}, "nature"),
        ({"verification": "video"}, "verification"),
        ({"criticite": "HAUTE"}, "criticite"),
        ({"source": "unknown"}, "source"),
    ],
)
def test_invalid_catalogue_entries_are_refused_with_the_requirement_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        parse_catalogue(
            {"version": "x", "sources": {"s": {"document": "d", "version": "1"}}, "exigences": [_entry(**overrides)]}
        )


def test_duplicate_ids_are_refused():
    data = {"version": "x", "sources": {"s": {"document": "d", "version": "1"}}, "exigences": [_entry(), _entry()]}
    with pytest.raises(ValueError, match="duplicate"):
        parse_catalogue(data)


def test_catalogue_is_versioned_and_every_requirement_applies_somewhere():
    catalogue = load_catalogue()
    assert catalogue.version
    assert all(set(e.rems) & set(COULOIR_REMS.values()) for e in catalogue.exigences)


def test_requirement_tags_reads_only_exigence_tags():
    assert requirement_tags({"exigence:INS/va1.38", "socle:INS", "wip"}) == ["INS/va1.38"]
