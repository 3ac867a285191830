"""Requirement catalogue: the versioned data file and the Ségur ID grammar.

IDs follow the REM grammar: ``SC.<SERVICE>/<SECTION>.<NN>`` for socle requirements (or
``SC.<SERVICE>.<NN>`` when the socle has no sections, e.g. ``SC.PSC.08``), without ``SC.``
inside a REM, ``va1.NN`` for vague-1 rules carried into vague 2; a scenario number adds
``.NN`` and a proof number another ``.NN``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

ID_PATTERN = re.compile(r"^(SC\.)?[A-Z]+(/[A-Za-z0-9]+)*\.[0-9]{2}$")
COULOIR_REMS = {"hopital": "DPI", "ville": "LGC"}
NATURES = ("EXIGENCE", "PRECONISATION")
VERIFICATIONS = ("automatique", "manuelle", "externe")
CRITICITES = ("CRITIQUE", "MAJEURE", "MINEURE")
TAG_PREFIX = "exigence:"


@dataclass(frozen=True)
class Exigence:
    id: str
    titre: str
    socle: str
    rems: tuple[str, ...]
    nature: str
    criticite: str
    source: dict[str, str]
    verification: str
    profil: str | None = None
    id_officiel: bool = True

    def applies_to(self, couloir: str) -> bool:
        return COULOIR_REMS[couloir] in self.rems

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "titre": self.titre,
            "socle": self.socle,
            "rems": list(self.rems),
            "nature": self.nature,
            "criticite": self.criticite,
            "profil": self.profil,
            "source": self.source,
            "verification": self.verification,
            "id_officiel": self.id_officiel,
        }


@dataclass(frozen=True)
class Catalogue:
    version: str
    referentiel: str
    exigences: tuple[Exigence, ...]

    def get(self, exigence_id: str) -> Exigence | None:
        return next((e for e in self.exigences if e.id == exigence_id), None)

    def for_couloir(self, couloir: str) -> list[Exigence]:
        return [e for e in self.exigences if e.applies_to(couloir)]


def parse_catalogue(data: dict[str, Any]) -> Catalogue:
    """Validate and build a catalogue; every error names the requirement at fault."""
    sources = data.get("sources", {})
    seen: set[str] = set()
    exigences = []
    for entry in data["exigences"]:
        identifier = entry.get("id", "?")
        problems = []
        if not ID_PATTERN.match(identifier):
            problems.append("id does not follow the Ségur grammar")
        if identifier in seen:
            problems.append("duplicate id")
        if entry.get("nature") not in NATURES:
            problems.append(f"nature must be one of {NATURES}")
        if entry.get("verification") not in VERIFICATIONS:
            problems.append(f"verification must be one of {VERIFICATIONS}")
        if entry.get("criticite") not in CRITICITES:
            problems.append(f"criticite must be one of {CRITICITES}")
        if entry.get("source") not in sources:
            problems.append("source is not declared under sources")
        if not set(entry.get("rems", ())) or not entry.get("titre"):
            problems.append("rems and titre are required")
        if problems:
            raise ValueError(f"exigence {identifier}: " + "; ".join(problems))
        seen.add(identifier)
        exigences.append(
            Exigence(
                id=identifier,
                titre=entry["titre"],
                socle=entry["socle"],
                rems=tuple(entry["rems"]),
                nature=entry["nature"],
                criticite=entry["criticite"],
                source={"id": entry["source"], **sources[entry["source"]]},
                verification=entry["verification"],
                profil=entry.get("profil"),
                id_officiel=entry.get("id_officiel", True),
            )
        )
    return Catalogue(str(data["version"]), str(data.get("referentiel", "")), tuple(exigences))


@cache
def load_catalogue() -> Catalogue:
    text = resources.files("segur").joinpath("data/exigences.yaml").read_text("utf-8")
    return parse_catalogue(yaml.safe_load(text))


def requirement_tags(tags: set[str] | list[str]) -> list[str]:
    """Requirement IDs named by Gherkin tags (``@exigence:INS/va1.38``)."""
    return sorted(tag.removeprefix(TAG_PREFIX) for tag in tags if tag.startswith(TAG_PREFIX))
