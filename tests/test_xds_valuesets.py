"""The DMP value sets in segur/xds/valuesets.yaml: lookups, and fidelity to the ANS originals.

The shared tests compare our transcription code by code with the CI-SIS files in
../shared/cisis/jeuxDeValeurs (skipped when absent): every code we hold must exist there with
the same codeSystem and displayName, and J02/J04/J07/J08 must be complete. J57/J60/J61/J66 are
not in that folder; the report says so rather than pretending to check them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from segur.xds import value_sets

SHARED = Path(__file__).resolve().parents[2] / "shared"
JDV = SHARED / "cisis" / "jeuxDeValeurs"
SVS = "{urn:ihe:iti:svs:2008}"
ORIGINALS = {
    "J02": "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS.xml",
    "J04": "JDV_J04_XdsPracticeSettingCode_CISIS.xml",
    "J07": "JDV_J07_XdsTypeCode_CISIS.xml",
    "J08": "JDV_J08_XdsConfidentialityCode_CISIS.xml",
}
needs_ans = pytest.mark.skipif(not JDV.is_dir(), reason=f"CI-SIS value sets not found in {JDV}")


def original(file_name: str) -> dict[tuple[str, str], str]:
    tree = etree.parse(str(JDV / file_name))
    return {(c.get("code"), c.get("codeSystem")): c.get("displayName") for c in tree.iter(f"{SVS}Concept")}


def ours(key: str) -> dict[tuple[str, str], str]:
    return {(c.code, c.code_system): c.display_name for c in value_sets().value_set(key).concepts}


def test_lookups_are_by_code_and_code_system() -> None:
    sets = value_sets()
    assert sets.contains("J07", "11490-0", "2.16.840.1.113883.6.1")
    assert not sets.contains("J07", "11490-0", "LOINC")
    assert sets.display_name("J08", "MASQUE_PS", "1.2.250.1.213.1.1.4.13") == "Masqué aux professionnels de santé"
    assert sets.display_name("J08", "MASQUE_PS", "2.16.840.1.113883.5.25") is None
    assert sets.contains("J60", "http://www.w3.org/2000/09/xmldsig#", "URN")


def test_type_to_class_follows_ass_x04() -> None:
    sets = value_sets()
    assert sets.class_for_type("11490-0").code == "10"
    assert sets.class_for_type("60593-1").code == "43"
    assert sets.class_for_type("E1762").code_system == "URN"
    assert sets.class_for_type("00000-0") is None


def test_every_type_code_has_a_dmp_class() -> None:
    sets = value_sets()
    outside_j57 = set()
    for concept in sets.value_set("J07").concepts:
        class_code = sets.class_for_type(concept.code)
        if class_code is None or not sets.contains("J57", class_code.code, class_code.code_system):
            outside_j57.add(concept.code)
    # ASS_X04 files style sheets under class 99, which the DMP's J57 does not list: not submittable.
    assert outside_j57 == {"FEUILLE-DE-STYLE"}


def test_modelled_sets_reuse_their_cisis_fallback_and_say_so() -> None:
    sets = value_sets()
    assert sets.value_set("J61").provenance == "modelled"
    assert sets.value_set("J61").concepts == sets.value_set("J02").concepts
    assert sets.value_set("J66").concepts == sets.value_set("J07").concepts
    assert {sets.value_set(key).provenance for key in ("J02", "J04", "J07", "J08", "J57", "J60")} == {"researched"}


@pytest.mark.shared
@needs_ans
@pytest.mark.parametrize("key", sorted(ORIGINALS))
def test_transcription_matches_the_ans_original(key: str) -> None:
    reference, transcribed = original(ORIGINALS[key]), ours(key)
    unknown = {code: name for code, name in transcribed.items() if code not in reference}
    renamed = {code: (name, reference[code]) for code, name in transcribed.items() if reference.get(code, name) != name}
    lacking = sorted(set(reference) - set(transcribed))
    assert (unknown, renamed) == ({}, {}), f"{key}: codes absent from the ANS file or named differently"
    assert lacking == [], f"{key} lacks {len(lacking)} ANS codes: {lacking}"


@pytest.mark.shared
@needs_ans
@pytest.mark.parametrize("key", sorted(ORIGINALS))
def test_value_set_identity_matches_the_ans_original(key: str) -> None:
    header = etree.parse(str(JDV / ORIGINALS[key])).getroot()[0]
    value_set = value_sets().value_set(key)
    assert (value_set.name, value_set.oid) == (header.get("displayName").removesuffix(".tabs"), header.get("id"))


@pytest.mark.shared
@needs_ans
def test_author_specialty_systems_are_those_of_j01() -> None:
    systems = {system for _, system in original("JDV_J01_XdsAuthorSpecialty_CISIS.xml")}
    assert value_sets().code_systems("author_specialty") == systems


def test_report_of_sets_the_shared_folder_cannot_check() -> None:
    unchecked = sorted(set(value_sets().keys) - set(ORIGINALS))
    assert unchecked == ["J57", "J60", "J61", "J66"]
    for key in unchecked:
        value_set = value_sets().value_set(key)
        print(
            f"{key} {value_set.name}: {value_set.provenance}, {len(value_set.concepts)} codes, no ANS file in ../shared"
        )
