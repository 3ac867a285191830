"""Header codes against the ANS value sets (JDV) of the user's CI-SIS package, as an extra layer.

The JDV files are ANS material, published with the CI-SIS and updated on their own schedule:
the project reads them from the user's package (``jeuxDeValeurs/JDV_*.xml``, IHE SVS
``RetrieveValueSetResponse``) rather than shipping a copy that would go stale. Without them,
layer (b) still checks that each code comes from the right code system.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lxml import etree

from segur.cda.paths import clinical_document, finding_at, xpath
from segur.validation import Finding, parse_untrusted

SVS = "urn:ihe:iti:svs:2008"
ValueSet = frozenset[tuple[str, str]]

# (rule, value set file stem, coded element relative to ClinicalDocument, what it is)
HEADER_BINDINGS: tuple[tuple[str, str, str, str], ...] = (
    ("CDA-VS-001", "JDV_J07_XdsTypeCode_CISIS", "hl7:code", "document type (code)"),
    (
        "CDA-VS-002",
        "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS",
        "hl7:componentOf/hl7:encompassingEncounter/hl7:location/hl7:healthCareFacility/hl7:code",
        "healthCareFacility/code",
    ),
    (
        "CDA-VS-003",
        "JDV_J143_AdministrativeGender_CISIS",
        "hl7:recordTarget/hl7:patientRole/hl7:patient/hl7:administrativeGenderCode",
        "administrativeGenderCode",
    ),
)
_BINDINGS = tuple((rule, stem, xpath(path), label) for rule, stem, path, label in HEADER_BINDINGS)


def load_value_set(path: Path) -> ValueSet:
    """(code, codeSystem) pairs of one JDV file."""
    root = parse_untrusted(path.read_bytes())
    return frozenset(
        (concept.get("code", ""), concept.get("codeSystem", "")) for concept in root.iter(f"{{{SVS}}}Concept")
    )


def value_set_layer(directory: Path) -> Callable[[bytes, etree._Element], list[Finding]]:
    """Layer checking header codes against the JDV files of ``directory`` (loaded once, here).

    A binding whose JDV file is absent from the package is skipped: the package decides.
    """
    files = {stem: directory / f"{stem}.xml" for _, stem, _, _ in _BINDINGS}
    value_sets = {stem: load_value_set(path) for stem, path in files.items() if path.is_file()}

    def layer(_data: bytes, root: etree._Element) -> list[Finding]:
        document = clinical_document(root)
        if document is None:
            return []
        findings = []
        for rule, stem, query, label in _BINDINGS:
            allowed = value_sets.get(stem)
            if allowed is None:
                continue
            for coded in query(document):
                pair = (coded.get("code", ""), coded.get("codeSystem", ""))
                if coded.get("nullFlavor") is None and pair not in allowed:
                    message = f"{label} {pair[0]} ({pair[1]}) is not in {stem}"
                    findings.append(finding_at(coded, rule, "error", message))
        return findings

    return layer
