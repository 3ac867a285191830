"""``segur report coverage``: which scenarios and proofs stand behind each requirement, as CSV.

A reviewer reads the catalogue against the feature files without running anything: every
requirement, the couloirs it applies to, how it is verified, and for each couloir the scenarios
that tag it with their Then steps (the proofs). An automatic requirement no scenario tags is a
gap and says so ("non couvert"). Feature files are read with the Gherkin parser pytest-bdd
itself uses, and requirements are linked exactly as the harness links them at run time
(feature tags plus scenario tags), so this table cannot disagree with a run.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from gherkin.parser import Parser

from segur.catalogue import COULOIR_REMS, Catalogue, Exigence, load_catalogue, requirement_tags

COLUMNS = (
    "exigence", "intitule", "socle", "criticite", "verification", "couloirs", "couloir", "couverture",
    "scenario", "exemples", "preuve", "fichier", "ligne",
)  # fmt: skip
COUVERT, NON_COUVERT, NON_APPLICABLE = "couvert", "non couvert", "non applicable"
OTHER_PROOFS = {"manuelle": "preuve manuelle", "externe": "attestation externe"}
# pytest-bdd's reading of Gherkin keyword types; a conjunction (Et, Mais, *) continues the previous type.
STEP_TYPES = {"Context": "given", "Action": "when", "Outcome": "then"}


@dataclass(frozen=True)
class Proof:
    text: str
    line: int


@dataclass(frozen=True)
class FeatureScenario:
    couloir: str
    fichier: str
    name: str
    line: int
    exigences: tuple[str, ...]
    proofs: tuple[Proof, ...]
    examples: int  # rows of a Scenario Outline's Examples tables; 0 for a plain scenario


def coverage_rows(couloir: str | None = None, catalogue: Catalogue | None = None) -> list[dict[str, str]]:
    """One row per (requirement, couloir, scenario, proof), every requirement of the catalogue at least once."""
    couloirs = [couloir] if couloir else sorted(COULOIR_REMS)
    if couloir is not None and couloir not in COULOIR_REMS:
        raise ValueError(f"unknown couloir {couloir!r}; use one of {', '.join(sorted(COULOIR_REMS))}")
    catalogue = catalogue or load_catalogue()
    scenarios = {c: feature_scenarios(c) for c in couloirs}
    rows = []
    for exigence in catalogue.exigences:
        for name in couloirs:
            tagging = [s for s in scenarios[name] if exigence.id in s.exigences]
            base = _requirement_columns(exigence, name, _coverage(exigence, name, tagging))
            if not tagging:
                rows.append({**base, "scenario": "", "exemples": "", "preuve": "", "fichier": "", "ligne": ""})
            for scenario in tagging:
                rows.extend(_scenario_rows(base, scenario))
    return rows


def write_coverage_csv(rows: list[dict[str, str]], out: TextIO) -> None:
    """RFC 4180 CSV with a header row; open files with ``newline=""`` so line ends stay CRLF."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


def coverage_command(couloir: str | None = None, out: Path | None = None) -> int:
    """Entry point for ``segur report coverage [--couloir C] [--out FILE]``: 0, or 2 for an unknown couloir."""
    try:
        rows = coverage_rows(couloir)
    except ValueError as error:
        print(f"segur: {error}", file=sys.stderr)
        return 2
    if out is None:
        write_coverage_csv(rows, sys.stdout)
    else:
        with out.open("w", encoding="utf-8", newline="") as handle:
            write_coverage_csv(rows, handle)
    gaps = sorted({f"{r['exigence']} ({r['couloir']})" for r in rows if r["couverture"] == NON_COUVERT})
    if gaps:
        print(f"segur: exigences automatiques non couvertes : {', '.join(gaps)}", file=sys.stderr)
    return 0


def feature_scenarios(couloir: str) -> list[FeatureScenario]:
    """Every scenario of the couloir's installed feature files, in file then line order."""
    folder = resources.files("segur.scenarios").joinpath(couloir)
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".feature"):
            found.extend(parse_feature(entry.read_text("utf-8"), couloir, f"scenarios/{couloir}/{entry.name}"))
    return found


def parse_feature(text: str, couloir: str, fichier: str) -> list[FeatureScenario]:
    """The scenarios of one feature file, each with its requirements and its proofs (Then steps)."""
    feature = Parser().parse(text).get("feature")
    if feature is None:
        return []
    feature_tags = _tag_names(feature)
    return [
        FeatureScenario(
            couloir=couloir,
            fichier=fichier,
            name=scenario["name"],
            line=scenario["location"]["line"],
            # As segur.pytest_plugin: feature and scenario tags (pytest-bdd leaves Rule tags out of both).
            exigences=tuple(requirement_tags(feature_tags | _tag_names(scenario))),
            proofs=tuple(background + _then_steps(scenario["steps"])),
            examples=sum(len(table.get("tableBody", [])) for table in scenario["examples"]),
        )
        for scenario, background in _with_backgrounds(feature)
    ]


def _with_backgrounds(feature: Any) -> Iterator[tuple[Any, list[Proof]]]:
    """Each scenario with the Then steps of the backgrounds pytest-bdd runs before it (feature's, then rule's)."""
    background: list[Proof] = []
    for child in feature["children"]:
        if "background" in child:
            background = _then_steps(child["background"]["steps"])
        elif "scenario" in child:
            yield child["scenario"], background
        elif "rule" in child:
            rule_background = background
            for rule_child in child["rule"]["children"]:
                if "background" in rule_child:
                    rule_background = background + _then_steps(rule_child["background"]["steps"])
                elif "scenario" in rule_child:
                    yield rule_child["scenario"], rule_background


def _tag_names(node: Any) -> set[str]:
    return {tag["name"].removeprefix("@") for tag in node["tags"]}


def _then_steps(steps: list[Any]) -> list[Proof]:
    """The Then steps of one block (background or scenario); each block starts its own keyword sequence."""
    proofs, current = [], ""
    for step in steps:
        current = STEP_TYPES.get(step["keywordType"], current)
        if current == "then":
            proofs.append(Proof(step["text"], step["location"]["line"]))
    return proofs


def _coverage(exigence: Exigence, couloir: str, tagging: list[FeatureScenario]) -> str:
    if not exigence.applies_to(couloir):
        return NON_APPLICABLE
    if exigence.verification in OTHER_PROOFS:
        return OTHER_PROOFS[exigence.verification]
    return COUVERT if tagging else NON_COUVERT


def _requirement_columns(exigence: Exigence, couloir: str, couverture: str) -> dict[str, str]:
    return {
        "exigence": exigence.id,
        "intitule": exigence.titre,
        "socle": exigence.socle,
        "criticite": exigence.criticite,
        "verification": exigence.verification,
        "couloirs": " ".join(c for c in sorted(COULOIR_REMS) if exigence.applies_to(c)),
        "couloir": couloir,
        "couverture": couverture,
    }


def _scenario_rows(base: dict[str, str], scenario: FeatureScenario) -> list[dict[str, str]]:
    """One row per proof; a scenario without a Then step still gets its row, with an empty proof."""
    columns = {
        **base,
        "scenario": scenario.name,
        "exemples": str(scenario.examples) if scenario.examples else "",
        "fichier": scenario.fichier,
    }
    if not scenario.proofs:
        return [{**columns, "preuve": "", "ligne": str(scenario.line)}]
    return [{**columns, "preuve": proof.text, "ligne": str(proof.line)} for proof in scenario.proofs]
