"""The DMP's XDS value sets (J02, J04, J07, J08, J57, J60, J61, J66) and the typeCode -> classCode table.

The codes live in ``valuesets.yaml`` (our transcription of the ANS nomenclatures, each set
marked researched or modelled) so that a nomenclature update is a data change a reviewer can
diff, not a code change. Lookups are by (code, codeSystem): the same code can exist in two
systems, and a right code in the wrong system is exactly the mistake the DMP rejects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True)
class Concept:
    """One coded value: the triple an XDS Classification carries (nodeRepresentation, codingScheme, Name)."""

    code: str
    code_system: str
    display_name: str


@dataclass(frozen=True)
class ValueSet:
    key: str
    name: str
    oid: str | None
    provenance: str
    concepts: tuple[Concept, ...]


class ValueSets:
    """Read-only lookups over the value sets; build it with :func:`value_sets` (parsed once per process)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        raw_sets: Mapping[str, Any] = data["value_sets"]
        self._sets: dict[str, ValueSet] = {}
        for key, spec in raw_sets.items():
            source = raw_sets[spec["same_as"]] if "same_as" in spec else spec
            concepts = tuple(
                Concept(str(code), str(system), str(display)) for code, system, display in source["concepts"]
            )
            self._sets[key] = ValueSet(key, spec["name"], spec.get("oid"), spec["provenance"], concepts)
        self._index = {
            key: {(concept.code, concept.code_system): concept for concept in value_set.concepts}
            for key, value_set in self._sets.items()
        }
        self._type_to_class = {
            str(type_code): str(class_code) for type_code, class_code in data["type_to_class"].items()
        }
        self._code_systems = {key: frozenset(systems) for key, systems in data["code_systems"].items()}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._sets)

    def value_set(self, key: str) -> ValueSet:
        return self._sets[key]

    def contains(self, value_set: str, code: str, code_system: str) -> bool:
        return (code, code_system) in self._index[value_set]

    def display_name(self, value_set: str, code: str, code_system: str) -> str | None:
        concept = self._index[value_set].get((code, code_system))
        return concept.display_name if concept else None

    def find(self, value_set: str, code: str) -> Concept | None:
        """The concept with this code whatever its system, for builders that know only the code."""
        return next((concept for concept in self._sets[value_set].concepts if concept.code == code), None)

    def class_for_type(self, type_code: str) -> Concept | None:
        """The classCode ASS_X04 gives for a typeCode; display from J57 (empty when J57 lacks the class)."""
        class_code = self._type_to_class.get(type_code)
        if class_code is None:
            return None
        return self.find("J57", class_code) or Concept(class_code, "1.2.250.1.213.1.1.4.1", "")

    def code_systems(self, key: str) -> frozenset[str]:
        """Code systems allowed for a metadata checked by system only (author_specialty, content_type)."""
        return self._code_systems[key]


@cache
def value_sets() -> ValueSets:
    """The value sets shipped with the harness."""
    text = resources.files("segur.xds").joinpath("valuesets.yaml").read_text(encoding="utf-8")
    return ValueSets(yaml.safe_load(text))
