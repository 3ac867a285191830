"""Layer (b): the project's rules for the ANS « structuration minimale » header and N1 bodies.

Sources: the CI-SIS volet Structuration minimale (template 1.2.250.1.213.1.1.1.1) as published in
the ANS IG « document core » (header cardinalities, INS traits, identifiers) and its Schematron
(``ASIP-STRUCT-MIN``), the IHE XDS-SD profile for N1 documents, and the 94 ANS example documents.
Where those examples depart from a stricter reading of the texts (document dated to the minute,
INS keys that do not check, author ids that are not IDNPS), the rule is a warning:
a receiver such as the DMP accepts those documents, and a false error would block a vendor.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from lxml import etree

from segur.cda.paths import finding_at, hl7, xpath
from segur.cda.structure import timestamp
from segur.ins import OID_INS_NIA, OID_INS_NIA_TEST, OID_INS_NIR, OID_INS_NIR_TEST, key_is_valid
from segur.validation import Finding

TEMPLATE_HL7_FRANCE = "2.16.840.1.113883.2.8.2.1"
TEMPLATE_STRUCTURATION_MINIMALE = "1.2.250.1.213.1.1.1.1"
TEMPLATE_XDS_SD = "1.3.6.1.4.1.19376.1.2.20"
N1_TEMPLATES = frozenset({TEMPLATE_HL7_FRANCE, TEMPLATE_STRUCTURATION_MINIMALE, TEMPLATE_XDS_SD})
TYPE_ID_ROOT, TYPE_ID_EXTENSION = "2.16.840.1.113883.1.3", "POCD_HD000040"
LOINC, TYPE_CODES_CISIS = "2.16.840.1.113883.6.1", "1.2.250.1.213.1.1.4.12"
# Code systems of the J07 XdsTypeCode value set (JDV_J07_XdsTypeCode_CISIS): LOINC and ANS type codes.
J07_CODE_SYSTEMS = frozenset({LOINC, TYPE_CODES_CISIS})
# Code systems of J02 XdsHealthcareFacilityTypeCode: the secteurs d'activité, and EXP_PATIENT / SNR.
J02_CODE_SYSTEMS = frozenset({"1.2.250.1.71.4.2.4", "1.2.250.1.213.1.1.4.6"})
CONFIDENTIALITY_SYSTEM, CONFIDENTIALITY_CODES = "2.16.840.1.113883.5.25", frozenset({"N", "R", "V"})
# JDV_J143_AdministrativeGender_CISIS: F, M and UN (undifferentiated) in HL7 AdministrativeGender.
GENDER_SYSTEM, GENDER_CODES = "2.16.840.1.113883.5.1", frozenset({"F", "M", "UN"})
INS_OIDS = frozenset({OID_INS_NIR, OID_INS_NIA, OID_INS_NIR_TEST, OID_INS_NIA_TEST})
OID_PS_NATIONAL_ID = "1.2.250.1.71.4.2.1"

_LOINC_CODE = re.compile(r"[0-9]{1,7}-[0-9]")
_LANGUAGE = re.compile(r"[a-z]{2}-[A-Z]{2}")
_INS = re.compile(r"(?P<matricule>[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6})(?P<key>[0-9]{2})")
# Code officiel géographique: department (2 digits, 2A, 2B) and commune; 99xxx for a country.
_COG = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9]{3}")
# IDNPS: 8 + RPPS, 0 + ADELI, or a structure-based id (3 FINESS, 4 SIREN, 5 SIRET) / local id.
_IDNPS = re.compile(r"8[0-9]{11}|0[0-9]{9}|[345][0-9A-Za-z]+/.+")

_REALM = xpath("hl7:realmCode")
_TYPE_ID = xpath("hl7:typeId")
_TEMPLATES = xpath("hl7:templateId")
_ID = xpath("hl7:id")
_CODE = xpath("hl7:code")
_TITLE = xpath("hl7:title")
_EFFECTIVE_TIME = xpath("hl7:effectiveTime")
_CONFIDENTIALITY = xpath("hl7:confidentialityCode")
_LANGUAGE_CODE = xpath("hl7:languageCode")
_SET_ID = xpath("hl7:setId")
_VERSION = xpath("hl7:versionNumber")
_RECORD_TARGET = xpath("hl7:recordTarget")
_PATIENT_ROLE = xpath("hl7:recordTarget/hl7:patientRole[hl7:patient]")
_PATIENT = xpath("hl7:patient")
_BIRTH_FAMILY = xpath("hl7:name/hl7:family[contains(concat(' ', normalize-space(@qualifier), ' '), ' BR ')]")
_FIRST_GIVEN = xpath("hl7:name/hl7:given[contains(concat(' ', normalize-space(@qualifier), ' '), ' BR ')]")
_BIRTH_GIVENS = xpath("hl7:name/hl7:given[not(@qualifier)]")
_BIRTH_TIME = xpath("hl7:birthTime")
_GENDER = xpath("hl7:administrativeGenderCode")
_BIRTHPLACE = xpath("hl7:birthplace")
_COUNTY = xpath("hl7:place/hl7:addr/hl7:county")
_ASSIGNED_AUTHORS = xpath("hl7:author/hl7:assignedAuthor")
_CUSTODIAN_ORGANIZATION = xpath("hl7:custodian/hl7:assignedCustodian/hl7:representedCustodianOrganization")
_LEGAL_AUTHENTICATOR = xpath("hl7:legalAuthenticator")
_SERVICE_EVENTS = xpath("hl7:documentationOf/hl7:serviceEvent")
_ENCOUNTER = xpath("hl7:componentOf/hl7:encompassingEncounter")
_FACILITY_CODE = xpath("hl7:location/hl7:healthCareFacility/hl7:code")
_NON_XML_BODY = xpath("hl7:component/hl7:nonXMLBody")
_STRUCTURED_BODY = xpath("hl7:component/hl7:structuredBody")


def _missing(document: etree._Element, rule: str, message: str) -> list[Finding]:
    return [finding_at(document, rule, "error", message)]


def _realm_and_type(document: etree._Element) -> list[Finding]:
    findings = []
    realms = _REALM(document)
    if [realm.get("code") for realm in realms] != ["FR"]:
        found = ", ".join(str(realm.get("code")) for realm in realms) or "none"
        at = realms[0] if realms else document
        findings.append(
            finding_at(at, "CDA-SM-001", "error", f"realmCode must appear once with code FR, found {found}")
        )
    for type_id in _TYPE_ID(document):
        if (type_id.get("root"), type_id.get("extension")) != (TYPE_ID_ROOT, TYPE_ID_EXTENSION):
            message = f"typeId must be root {TYPE_ID_ROOT} extension {TYPE_ID_EXTENSION} (CDA R2)"
            findings.append(finding_at(type_id, "CDA-SM-002", "error", message))
    return findings


def _templates(document: etree._Element) -> list[Finding]:
    roots = [template.get("root") for template in _TEMPLATES(document)]
    findings = []
    for rule, root, label in (
        ("CDA-SM-003", TEMPLATE_HL7_FRANCE, "HL7 France"),
        ("CDA-SM-004", TEMPLATE_STRUCTURATION_MINIMALE, "CI-SIS structuration minimale"),
    ):
        if roots.count(root) != 1:
            message = f"templateId {root} ({label}) must appear once, found {roots.count(root)}"
            findings += _missing(document, rule, message)
    if not set(roots) - {TEMPLATE_HL7_FRANCE, TEMPLATE_STRUCTURATION_MINIMALE}:
        message = "a templateId of the document model (volet, or XDS-SD for an N1 document) is required"
        findings += _missing(document, "CDA-SM-005", message)
    return findings


def _identification(document: etree._Element) -> list[Finding]:
    findings = []
    for rule, found, label in (
        ("CDA-SM-006", _ID(document), "document id (id)"),
        ("CDA-SM-016", _SET_ID(document), "setId"),
    ):
        if not found or found[0].get("nullFlavor") is not None or not found[0].get("root"):
            message = f"{label} must be given with a root, without nullFlavor"
            findings.append(finding_at(found[0] if found else document, rule, "error", message))
    versions = _VERSION(document)
    value = versions[0].get("value", "") if versions else ""
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        message = f"versionNumber must be a positive integer, found {value!r}"
        findings.append(finding_at(versions[0] if versions else document, "CDA-SM-017", "error", message))
    return findings


def _document_code(document: etree._Element) -> list[Finding]:
    codes = _CODE(document)
    if not codes or codes[0].get("nullFlavor") is not None:
        return _missing(document, "CDA-SM-007", "document type (code) is required, without nullFlavor")
    code = codes[0]
    absent = _absent_attributes(code)
    if absent:
        message = f"document type (code) needs @{', @'.join(absent)}"
        return [finding_at(code, "CDA-SM-007", "error", message)]
    system = code.get("codeSystem")
    if system not in J07_CODE_SYSTEMS:
        message = f"document type (code) must come from J07 XdsTypeCode (LOINC or ANS type codes), codeSystem {system}"
        return [finding_at(code, "CDA-SM-008", "error", message)]
    if system == LOINC and not _LOINC_CODE.fullmatch(code.get("code", "")):
        return [finding_at(code, "CDA-SM-009", "error", f"{code.get('code')!r} is not a LOINC code (NNNNN-N)")]
    return []


def _absent_attributes(coded: etree._Element) -> list[str]:
    """The CI-SIS requires the three on the header's CE elements (code, healthCareFacility/code)."""
    return [name for name in ("code", "codeSystem", "displayName") if not coded.get(name)]


def _title(document: etree._Element) -> list[Finding]:
    titles = _TITLE(document)
    if not titles or not "".join(titles[0].itertext()).strip():
        return _missing(document, "CDA-SM-010", "document title (title) is required and must not be empty")
    return []


def _instant(element: etree._Element, label: str, error_rule: str, warning_rule: str) -> list[Finding]:
    """A creation or signature time: a timezone and the minute at least; the second is expected."""
    match = timestamp(element.get("value", ""))
    if match is None or match["zone"] is None or len(match["digits"]) < 12:
        message = (
            f"{label} must be a timestamp with a timezone, e.g. 20240115103000+0100, found {element.get('value')!r}"
        )
        return [finding_at(element, error_rule, "error", message)]
    if len(match["digits"]) < 14:
        message = f"{label} should be precise to the second, found {element.get('value')!r}"
        return [finding_at(element, warning_rule, "warning", message)]
    return []


def _effective_time(document: etree._Element) -> list[Finding]:
    times = _EFFECTIVE_TIME(document)
    if not times:
        return _missing(document, "CDA-SM-011", "document creation time (effectiveTime) is required")
    return _instant(times[0], "document effectiveTime", "CDA-SM-011", "CDA-SM-012")


def _confidentiality_and_language(document: etree._Element) -> list[Finding]:
    findings = []
    codes = _CONFIDENTIALITY(document)
    code = codes[0] if codes else None
    if (
        code is None
        or code.get("code") not in CONFIDENTIALITY_CODES
        or code.get("codeSystem") != CONFIDENTIALITY_SYSTEM
    ):
        found = "none" if code is None else f"{code.get('code')} ({code.get('codeSystem')})"
        message = f"confidentialityCode must be N, R or V in {CONFIDENTIALITY_SYSTEM}, found {found}"
        findings.append(finding_at(code if code is not None else document, "CDA-SM-013", "error", message))
    languages = _LANGUAGE_CODE(document)
    language = languages[0].get("code", "") if languages else ""
    if not _LANGUAGE.fullmatch(language):
        at = languages[0] if languages else document
        message = f"languageCode must be a language-COUNTRY code such as fr-FR, found {language!r}"
        findings.append(finding_at(at, "CDA-SM-014", "error", message))
    elif language != "fr-FR":
        message = f"languageCode is {language}: documents shared in France are expected in fr-FR"
        findings.append(finding_at(languages[0], "CDA-SM-015", "warning", message))
    return findings


def _patient(document: etree._Element) -> list[Finding]:
    roles = _PATIENT_ROLE(document)
    if len(_RECORD_TARGET(document)) != 1 or len(roles) != 1:
        return _missing(document, "CDA-SM-020", "exactly one recordTarget/patientRole with a patient is required")
    role = roles[0]
    ins = [patient_id for patient_id in _ID(role) if patient_id.get("root") in INS_OIDS]
    if not ins:
        message = "patientRole must carry the patient's INS: an id with an INS-NIR/INS-NIA root (1.2.250.1.213.1.4.x)"
        return [finding_at(role, "CDA-SM-021", "error", message)]
    findings = []
    for patient_id in ins:
        findings += _ins_number(patient_id)
    findings += _ins_traits(_PATIENT(role)[0])
    return findings


def _ins_number(patient_id: etree._Element) -> list[Finding]:
    value = patient_id.get("extension", "")
    match = _INS.fullmatch(value.upper())
    if match is None:
        message = f"INS must be the 13-character NIR/NIA followed by its 2-digit key, found {value!r}"
        return [finding_at(patient_id, "CDA-SM-022", "error", message)]
    if not key_is_valid(match["matricule"], match["key"]):
        message = f"INS key {match['key']} does not match the matricule {match['matricule']}"
        return [finding_at(patient_id, "CDA-SM-023", "warning", message)]
    return []


def _ins_traits(patient: etree._Element) -> list[Finding]:
    """The INS traits a document must carry with the INS (référentiel INS, CI-SIS)."""
    findings = []
    for rule, query, trait in (
        ("CDA-SM-024", _BIRTH_FAMILY, "nom de naissance (family with qualifier BR)"),
        ("CDA-SM-025", _FIRST_GIVEN, "premier prénom de l'acte de naissance (given with qualifier BR)"),
        ("CDA-SM-026", _BIRTH_GIVENS, "prénoms de l'acte de naissance (given without qualifier)"),
    ):
        if not any("".join(name.itertext()).strip() for name in query(patient)):
            findings.append(finding_at(patient, rule, "error", f"INS trait missing: {trait}"))
    births = _BIRTH_TIME(patient)
    match = timestamp(births[0].get("value", "")) if births else None
    if match is None or len(match["digits"]) < 8:
        message = "INS trait date de naissance (birthTime) is missing or less precise than the day"
        findings.append(finding_at(births[0] if births else patient, "CDA-SM-027", "error", message))
    genders = _GENDER(patient)
    if not genders or genders[0].get("code") not in GENDER_CODES or genders[0].get("codeSystem") != GENDER_SYSTEM:
        message = f"INS trait sexe (administrativeGenderCode) must be F, M or UN in {GENDER_SYSTEM}"
        findings.append(finding_at(genders[0] if genders else patient, "CDA-SM-028", "error", message))
    findings += _birthplace(patient)
    return findings


def _birthplace(patient: etree._Element) -> list[Finding]:
    places = _BIRTHPLACE(patient)
    if not places:
        message = "INS trait lieu de naissance (birthplace with its COG code) is absent"
        return [finding_at(patient, "CDA-SM-029", "warning", message)]
    counties = _COUNTY(places[0])
    code = "".join(counties[0].itertext()).strip().upper() if counties else ""
    if not _COG.fullmatch(code):
        message = (
            f"birthplace must give the INS lieu de naissance as a 5-character COG code in addr/county, found {code!r}"
        )
        return [finding_at(places[0], "CDA-SM-030", "error", message)]
    return []


def _authors(document: etree._Element) -> list[Finding]:
    findings = []
    for assigned in _ASSIGNED_AUTHORS(document):
        ids = [author_id for author_id in _ID(assigned) if author_id.get("root") and author_id.get("extension")]
        if not ids:
            message = "author/assignedAuthor needs an id with root and extension (IDNPS for a professional)"
            findings.append(finding_at(assigned, "CDA-SM-040", "error", message))
            continue
        if assigned.find(hl7("assignedPerson")) is None:
            continue
        author_id = ids[0]
        if author_id.get("root") not in {OID_PS_NATIONAL_ID} | INS_OIDS:
            message = (
                f"a person author is identified by an IDNPS under {OID_PS_NATIONAL_ID} "
                f"(or an INS for the patient), found root {author_id.get('root')}"
            )
            findings.append(finding_at(author_id, "CDA-SM-041", "error", message))
        elif author_id.get("root") == OID_PS_NATIONAL_ID and not _IDNPS.fullmatch(author_id.get("extension", "")):
            message = (
                f"{author_id.get('extension')!r} does not look like an IDNPS (8 + RPPS, 0 + ADELI, structure/local)"
            )
            findings.append(finding_at(author_id, "CDA-SM-042", "warning", message))
    return findings


def _custodian(document: etree._Element) -> list[Finding]:
    findings = []
    for organization in _CUSTODIAN_ORGANIZATION(document):
        if not any(org_id.get("root") and org_id.get("nullFlavor") is None for org_id in _ID(organization)):
            message = "custodian organization (representedCustodianOrganization) needs an id, without nullFlavor"
            findings.append(finding_at(organization, "CDA-SM-050", "error", message))
    return findings


def _legal_authenticator(document: etree._Element) -> list[Finding]:
    authenticators = _LEGAL_AUTHENTICATOR(document)
    if len(authenticators) != 1:
        return _missing(document, "CDA-SM-060", "exactly one legalAuthenticator (responsable du document) is required")
    authenticator = authenticators[0]
    findings = []
    signature = authenticator.find(hl7("signatureCode"))
    if signature is None or signature.get("code") != "S":
        at = authenticator if signature is None else signature
        findings.append(finding_at(at, "CDA-SM-061", "error", "legalAuthenticator/signatureCode must have code S"))
    time = authenticator.find(hl7("time"))
    if time is None:
        findings += [finding_at(authenticator, "CDA-SM-062", "error", "legalAuthenticator/time is required")]
    else:
        findings += _instant(time, "legalAuthenticator/time", "CDA-SM-062", "CDA-SM-063")
    return findings


def _service_event(document: etree._Element) -> list[Finding]:
    events = _SERVICE_EVENTS(document)
    if not events:
        return _missing(document, "CDA-SM-070", "documentationOf/serviceEvent (acte documenté) is required")
    findings = []
    if events[0].find(hl7("effectiveTime")) is None:
        findings.append(finding_at(events[0], "CDA-SM-071", "error", "the main serviceEvent needs an effectiveTime"))
    if len(events[0].findall(hl7("performer"))) != 1:
        findings.append(
            finding_at(events[0], "CDA-SM-072", "error", "the main serviceEvent needs exactly one performer")
        )
    return findings


def _encounter(document: etree._Element) -> list[Finding]:
    encounters = _ENCOUNTER(document)
    if len(encounters) != 1:
        return _missing(document, "CDA-SM-080", "componentOf/encompassingEncounter (prise en charge) is required")
    encounter = encounters[0]
    findings = []
    time = encounter.find(hl7("effectiveTime"))
    if time is not None and time.get("value") is None and time.get("nullFlavor") is None and len(time) == 0:
        message = "encompassingEncounter/effectiveTime needs a value, low/high, or a nullFlavor"
        findings.append(finding_at(time, "CDA-SM-081", "error", message))
    codes = _FACILITY_CODE(encounter)
    if not codes or codes[0].get("nullFlavor") is not None or _absent_attributes(codes[0]):
        message = "healthCareFacility/code (secteur d'activité, J02) needs @code, @codeSystem and @displayName"
        findings.append(finding_at(codes[0] if codes else encounter, "CDA-SM-082", "error", message))
    elif codes[0].get("codeSystem") not in J02_CODE_SYSTEMS:
        system = codes[0].get("codeSystem")
        message = f"healthCareFacility/code must come from J02 XdsHealthcareFacilityTypeCode, codeSystem {system}"
        findings.append(finding_at(codes[0], "CDA-SM-083", "error", message))
    return findings


def _non_xml_body(document: etree._Element) -> list[Finding]:
    """N1 documents (IHE XDS-SD): three templateIds, a base64 PDF."""
    bodies = _NON_XML_BODY(document)
    templates = [template.get("root") for template in _TEMPLATES(document)]
    if not bodies:
        if TEMPLATE_XDS_SD in templates and _STRUCTURED_BODY(document):
            message = f"templateId {TEMPLATE_XDS_SD} (XDS-SD) is for N1 documents, whose body is a nonXMLBody"
            return _missing(document, "CDA-N1-007", message)
        return []
    findings = []
    if TEMPLATE_XDS_SD not in templates:
        findings += _missing(
            document, "CDA-N1-001", f"an N1 document (nonXMLBody) declares templateId {TEMPLATE_XDS_SD}"
        )
    elif len(templates) != len(N1_TEMPLATES) or set(templates) != N1_TEMPLATES:
        message = "an N1 document declares only the HL7 France, structuration minimale and XDS-SD templateIds"
        findings += _missing(document, "CDA-N1-002", message)
    text = bodies[0].find(hl7("text"))
    if text is None:
        return findings
    if text.get("mediaType") != "application/pdf":
        message = f"nonXMLBody/text must be a PDF (mediaType application/pdf), found {text.get('mediaType')!r}"
        findings.append(finding_at(text, "CDA-N1-003", "error", message))
    if text.get("representation") != "B64":
        message = f"nonXMLBody/text must be base64 (representation B64), found {text.get('representation')!r}"
        findings.append(finding_at(text, "CDA-N1-004", "error", message))
        return findings
    try:
        content = base64.b64decode("".join((text.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return [*findings, finding_at(text, "CDA-N1-005", "error", "nonXMLBody/text is not valid base64")]
    if text.get("mediaType") == "application/pdf" and not content.startswith(b"%PDF-"):
        findings.append(finding_at(text, "CDA-N1-006", "error", "nonXMLBody/text does not decode to a PDF (%PDF-)"))
    return findings


CHECKS: tuple[Callable[[etree._Element], list[Finding]], ...] = (
    _realm_and_type,
    _templates,
    _identification,
    _document_code,
    _title,
    _effective_time,
    _confidentiality_and_language,
    _patient,
    _authors,
    _custodian,
    _legal_authenticator,
    _service_event,
    _encounter,
    _non_xml_body,
)


def structuration_minimale_findings(document: etree._Element) -> list[Finding]:
    """Rules CDA-SM-* and CDA-N1-* on the ClinicalDocument element."""
    findings: list[Finding] = []
    for check in CHECKS:
        findings += check(document)
    return findings
