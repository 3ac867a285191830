"""Layer (a): the CDA R2 schema when the user brings it, else the project's own structural checks.

The ANS schema (``CDA_extended.xsd`` of the CI-SIS package) is not ours to ship, and the
``xmlschema`` package cannot load it, so without it we check what a receiver relies on first:
the header's element order and cardinalities as CDA R2 (POCD_HD000040) defines them, the
required parts of each header participant, and the lexical form of the HL7 datatypes used in
the header (II, CS/CE, TS, INT), with the patterns of the HL7 V3 R1 datatypes.
"""

from __future__ import annotations

import re

from lxml import etree

from segur.cda.paths import finding_at, hl7, location_of, xpath
from segur.validation import Finding

# ClinicalDocument's children in CDA R2 order, with their cardinalities (max None = unbounded).
HEADER_ORDER: tuple[tuple[str, int, int | None], ...] = (
    ("realmCode", 0, None),
    ("typeId", 1, 1),
    ("templateId", 0, None),
    ("id", 1, 1),
    ("code", 1, 1),
    ("title", 0, 1),
    ("effectiveTime", 1, 1),
    ("confidentialityCode", 1, 1),
    ("languageCode", 0, 1),
    ("setId", 0, 1),
    ("versionNumber", 0, 1),
    ("copyTime", 0, 1),
    ("recordTarget", 1, None),
    ("author", 1, None),
    ("dataEnterer", 0, 1),
    ("informant", 0, None),
    ("custodian", 1, 1),
    ("informationRecipient", 0, None),
    ("legalAuthenticator", 0, 1),
    ("authenticator", 0, None),
    ("participant", 0, None),
    ("inFulfillmentOf", 0, None),
    ("documentationOf", 0, None),
    ("relatedDocument", 0, None),
    ("authorization", 0, None),
    ("componentOf", 0, 1),
    ("component", 1, 1),
)
_POSITION = {hl7(name): index for index, (name, _, _) in enumerate(HEADER_ORDER)}

# Required parts of the header participants (context relative to ClinicalDocument, child, min, max).
_PARTS: tuple[tuple[str, str, int, int | None], ...] = (
    ("hl7:recordTarget", "patientRole", 1, 1),
    ("hl7:recordTarget/hl7:patientRole", "id", 1, None),
    ("hl7:recordTarget/hl7:patientRole", "patient", 0, 1),
    ("hl7:author", "time", 1, 1),
    ("hl7:author", "assignedAuthor", 1, 1),
    ("hl7:author/hl7:assignedAuthor", "id", 1, None),
    ("hl7:dataEnterer", "assignedEntity", 1, 1),
    ("hl7:dataEnterer/hl7:assignedEntity", "id", 1, None),
    ("hl7:custodian", "assignedCustodian", 1, 1),
    ("hl7:custodian/hl7:assignedCustodian", "representedCustodianOrganization", 1, 1),
    ("hl7:custodian/hl7:assignedCustodian/hl7:representedCustodianOrganization", "id", 1, None),
    ("hl7:informationRecipient", "intendedRecipient", 1, 1),
    ("hl7:legalAuthenticator", "time", 1, 1),
    ("hl7:legalAuthenticator", "signatureCode", 1, 1),
    ("hl7:legalAuthenticator", "assignedEntity", 1, 1),
    ("hl7:legalAuthenticator/hl7:assignedEntity", "id", 1, None),
    ("hl7:authenticator", "time", 1, 1),
    ("hl7:authenticator", "signatureCode", 1, 1),
    ("hl7:authenticator", "assignedEntity", 1, 1),
    ("hl7:participant", "associatedEntity", 1, 1),
    ("hl7:inFulfillmentOf", "order", 1, 1),
    ("hl7:inFulfillmentOf/hl7:order", "id", 1, None),
    ("hl7:documentationOf", "serviceEvent", 1, 1),
    ("hl7:relatedDocument", "parentDocument", 1, 1),
    ("hl7:relatedDocument/hl7:parentDocument", "id", 1, None),
    ("hl7:authorization", "consent", 1, 1),
    ("hl7:componentOf", "encompassingEncounter", 1, 1),
    ("hl7:componentOf/hl7:encompassingEncounter", "effectiveTime", 1, 1),
    ("hl7:componentOf/hl7:encompassingEncounter/hl7:location", "healthCareFacility", 1, 1),
    ("hl7:component/hl7:nonXMLBody", "text", 1, 1),
)
_PART_CHECKS = tuple((xpath(context), hl7(child), child, low, high) for context, child, low, high in _PARTS)
_BODY = xpath("hl7:component")

UID = re.compile(
    r"[0-2](\.(0|[1-9][0-9]*))*"
    r"|[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12}"
    r"|[A-Za-z][A-Za-z0-9\-]*"
)
CS = re.compile(r"[^\s]+")
TS = re.compile(r"(?P<digits>[0-9]{1,8}|[0-9]{9,14}|[0-9]{14}\.[0-9]+)(?P<zone>[+\-][0-9]{1,4})?")
INT = re.compile(r"[+\-]?[0-9]+")

_IDENTIFIERS = frozenset(hl7(name) for name in ("id", "setId", "templateId", "typeId"))
_CODED = frozenset(
    hl7(name)
    for name in (
        "code",
        "realmCode",
        "confidentialityCode",
        "languageCode",
        "signatureCode",
        "administrativeGenderCode",
        "functionCode",
        "standardIndustryClassCode",
        "maritalStatusCode",
        "religiousAffiliationCode",
        "raceCode",
        "ethnicGroupCode",
        "modeCode",
        "proficiencyLevelCode",
        "priorityCode",
        "dischargeDispositionCode",
        "statusCode",
        "translation",
    )
)
_TIMES = frozenset(hl7(name) for name in ("effectiveTime", "time", "birthTime", "low", "high", "center", "copyTime"))
_VERSION_NUMBER = hl7("versionNumber")


def timestamp(value: str) -> re.Match[str] | None:
    """An HL7 TS value split into its digits and time zone, or None when it is not a TS."""
    return TS.fullmatch(value) if value.isascii() else None


def header_findings(document: etree._Element) -> list[Finding]:
    """The project's structural checks of the CDA header (rules CDA-HDR-*)."""
    findings = _root_attributes(document) + _order_and_cardinality(document)
    findings += _parts(document)
    findings += _datatypes(document)
    return findings


def schema_findings(root: etree._Element, schema: etree.XMLSchema) -> list[Finding]:
    """Validate against the user's schema; each error keeps its libxml2 type in the rule id.

    The whole tree is validated: ``CDA_extended.xsd`` imports the XSLT schema precisely so
    that an auto-presentable document (a stylesheet embedding its ClinicalDocument) validates.
    """
    tree = root.getroottree()
    if schema.validate(tree):
        return []
    prefixes = {prefix: uri for prefix, uri in root.nsmap.items() if prefix}
    findings = []
    for error in schema.error_log:
        kind = error.type_name.removeprefix("SCHEMAV_")
        severity = "warning" if error.level_name == "WARNING" else "error"
        findings.append(Finding(f"CDA-XSD-{kind}", severity, error.message, _schema_location(tree, error, prefixes)))
    return findings


def _schema_location(tree: etree._ElementTree, error: etree._LogEntry, prefixes: dict[str, str]) -> str:
    """libxml2 reports ``/*/*[9]`` paths; point at the same element in our location form."""
    try:
        found = tree.xpath(error.path, namespaces=prefixes) if error.path else []
    except etree.XPathError:
        return error.path or ""
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return location_of(found[0])
    return error.path or ""


def _root_attributes(document: etree._Element) -> list[Finding]:
    findings = []
    for attribute, fixed in (("classCode", "DOCCLIN"), ("moodCode", "EVN")):
        value = document.get(attribute)
        if value is not None and value != fixed:
            message = f"ClinicalDocument/@{attribute} is fixed to {fixed} by CDA R2, found {value!r}"
            findings.append(finding_at(document, "CDA-HDR-005", "error", message))
    return findings


def _order_and_cardinality(document: etree._Element) -> list[Finding]:
    findings = []
    counts: dict[str, int] = {}
    last = -1
    for child in document.iterchildren(etree.Element):
        position = _POSITION.get(child.tag)
        if position is None:
            name = etree.QName(child).localname
            message = f"{name} is not a CDA R2 ClinicalDocument element (namespace {etree.QName(child).namespace})"
            findings.append(finding_at(child, "CDA-HDR-001", "error", message))
            continue
        if position < last:
            previous = HEADER_ORDER[last][0]
            message = f"{HEADER_ORDER[position][0]} must come before {previous} (CDA R2 header order)"
            findings.append(finding_at(child, "CDA-HDR-002", "error", message))
        last = max(last, position)
        counts[child.tag] = counts.get(child.tag, 0) + 1
    for name, low, high in HEADER_ORDER:
        findings += _cardinality(document, "ClinicalDocument", name, counts.get(hl7(name), 0), low, high)
    return findings


def _cardinality(
    parent: etree._Element, label: str, name: str, count: int, low: int, high: int | None
) -> list[Finding]:
    if count < low:
        return [finding_at(parent, "CDA-HDR-003", "error", f"{label} requires {name} (found {count}, minimum {low})")]
    if high is not None and count > high:
        return [finding_at(parent, "CDA-HDR-004", "error", f"{label} allows at most {high} {name} (found {count})")]
    return []


def _parts(document: etree._Element) -> list[Finding]:
    findings = []
    for context, tag, name, low, high in _PART_CHECKS:
        for parent in context(document):
            count = sum(1 for _ in parent.iterchildren(tag))
            findings += _cardinality(parent, etree.QName(parent).localname, name, count, low, high)
    for component in _BODY(document):
        bodies = list(component.iterchildren(hl7("structuredBody"), hl7("nonXMLBody")))
        if len(bodies) != 1:
            message = f"component must hold exactly one structuredBody or nonXMLBody (found {len(bodies)})"
            findings.append(finding_at(component, "CDA-HDR-006", "error", message))
    return findings


def _datatypes(document: etree._Element) -> list[Finding]:
    findings = []
    for part in document.iterchildren(etree.Element):
        if part.tag == hl7("component"):
            continue
        for element in part.iter(etree.Element):
            tag = element.tag
            if tag in _IDENTIFIERS:
                findings += _identifier(element)
            elif tag in _CODED:
                findings += _coded(element)
            elif tag in _TIMES:
                findings += _time(element)
            elif tag == _VERSION_NUMBER and not INT.fullmatch(element.get("value", "")):
                message = f"versionNumber/@value must be an integer (INT), found {element.get('value')!r}"
                findings.append(finding_at(element, "CDA-HDR-013", "error", message))
    return findings


def _identifier(element: etree._Element) -> list[Finding]:
    name = etree.QName(element).localname
    root = element.get("root")
    if root is None:
        if element.get("nullFlavor") is None:
            return [finding_at(element, "CDA-HDR-010", "error", f"{name} needs @root or @nullFlavor (II)")]
        return []
    if not UID.fullmatch(root):
        return [finding_at(element, "CDA-HDR-010", "error", f"{name}/@root is not an OID, UUID or RUID: {root!r}")]
    if element.get("extension") == "":
        return [finding_at(element, "CDA-HDR-010", "error", f"{name}/@extension must not be empty (II)")]
    return []


def _coded(element: etree._Element) -> list[Finding]:
    name = etree.QName(element).localname
    findings = []
    code = element.get("code")
    if code is not None and not CS.fullmatch(code):
        message = f"{name}/@code must be a non-empty token without spaces (cs), found {code!r}"
        findings.append(finding_at(element, "CDA-HDR-011", "error", message))
    system = element.get("codeSystem")
    if system is not None and not UID.fullmatch(system):
        message = f"{name}/@codeSystem is not an OID, UUID or RUID: {system!r}"
        findings.append(finding_at(element, "CDA-HDR-011", "error", message))
    return findings


def _time(element: etree._Element) -> list[Finding]:
    value = element.get("value")
    if value is None or timestamp(value):
        return []
    name = etree.QName(element).localname
    message = f"{name}/@value is not an HL7 timestamp (YYYYMMDDHHMMSS[.S][+ZZZZ]): {value!r}"
    return [finding_at(element, "CDA-HDR-012", "error", message)]
