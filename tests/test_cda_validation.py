"""The CDA validator on synthetic documents: valid ones pass, each rule fails its mutation.

Each case mutates a valid document in one way and expects the rule that names the defect
(other rules may fire too: a missing element can break a layer (a) and a layer (b) rule).
"""

from __future__ import annotations

import base64

import pytest
from cda_samples import (
    HL7,
    append,
    chain,
    clear,
    drop_attribute,
    insert_after,
    move_after,
    n1_document,
    remove,
    set_attribute,
    set_text,
    structured_document,
)
from lxml import etree

from segur.cda import line_of, validate_cda
from segur.validation import Finding, has_errors

PATIENT = "hl7:recordTarget/hl7:patientRole/hl7:patient"
INS_ID = "hl7:recordTarget/hl7:patientRole/hl7:id[1]"
ASSIGNED_AUTHOR = "hl7:author/hl7:assignedAuthor"
LEGAL = "hl7:legalAuthenticator"
ENCOUNTER = "hl7:componentOf/hl7:encompassingEncounter"
FACILITY_CODE = f"{ENCOUNTER}/hl7:location/hl7:healthCareFacility/hl7:code"
TEXT = "hl7:component/hl7:nonXMLBody/hl7:text"
SECTIONS = "hl7:component/hl7:structuredBody/hl7:component/hl7:section"


def rules(findings: list[Finding]) -> dict[str, str]:
    return {finding.rule: finding.severity for finding in findings}


@pytest.mark.parametrize(
    "document",
    [structured_document("VSM"), structured_document("LDL-SES"), n1_document()],
    ids=["vsm", "ldl-ses", "n1"],
)
def test_valid_samples_have_no_finding(document):
    assert validate_cda(document) == []


STRUCTURE = [
    pytest.param(insert_after("hl7:realmCode", "bogus"), "CDA-HDR-001", id="unknown-element"),
    pytest.param(move_after("hl7:title", "hl7:recordTarget"), "CDA-HDR-002", id="title-after-recordTarget"),
    pytest.param(remove("hl7:custodian"), "CDA-HDR-003", id="no-custodian"),
    pytest.param(remove("hl7:author/hl7:time"), "CDA-HDR-003", id="author-without-time"),
    pytest.param(remove(f"{ASSIGNED_AUTHOR}/hl7:id"), "CDA-HDR-003", id="assignedAuthor-without-id"),
    pytest.param(insert_after("hl7:title", "title"), "CDA-HDR-004", id="two-titles"),
    pytest.param(append("hl7:recordTarget", "patientRole"), "CDA-HDR-004", id="two-patientRoles"),
    pytest.param(set_attribute(".", "classCode", "DOC"), "CDA-HDR-005", id="classCode"),
    pytest.param(remove("hl7:component/hl7:structuredBody"), "CDA-HDR-006", id="empty-component"),
    pytest.param(set_attribute("hl7:id", "root", "not an OID"), "CDA-HDR-010", id="id-root-not-uid"),
    pytest.param(drop_attribute("hl7:setId", "root"), "CDA-HDR-010", id="setId-without-root"),
    pytest.param(set_attribute("hl7:id", "extension", ""), "CDA-HDR-010", id="empty-extension"),
    pytest.param(set_attribute("hl7:languageCode", "code", "fr FR"), "CDA-HDR-011", id="code-with-space"),
    pytest.param(set_attribute("hl7:code", "codeSystem", "1.2.x"), "CDA-HDR-011", id="codeSystem-not-uid"),
    pytest.param(set_attribute("hl7:effectiveTime", "value", "2024-01-15"), "CDA-HDR-012", id="ts-iso"),
    pytest.param(set_attribute(f"{PATIENT}/hl7:birthTime", "value", "1984-12-01"), "CDA-HDR-012", id="ts-dashes"),
    pytest.param(set_attribute("hl7:versionNumber", "value", "one"), "CDA-HDR-013", id="version-not-int"),
]


@pytest.mark.parametrize(("mutation", "rule"), STRUCTURE)
def test_each_structural_check_fails_its_mutation(mutation, rule):
    findings = validate_cda(mutation(structured_document()))
    assert rules(findings).get(rule) == "error", findings


MINIMALE = [
    pytest.param(set_attribute("hl7:realmCode", "code", "US"), "CDA-SM-001", "error", id="realm-US"),
    pytest.param(set_attribute("hl7:typeId", "extension", "POCD_HD000041"), "CDA-SM-002", "error", id="typeId"),
    pytest.param(remove("hl7:templateId[1]"), "CDA-SM-003", "error", id="no-hl7-france-template"),
    pytest.param(remove("hl7:templateId[2]"), "CDA-SM-004", "error", id="no-sm-template"),
    pytest.param(remove("hl7:templateId[3]"), "CDA-SM-005", "error", id="no-model-template"),
    pytest.param(
        chain(drop_attribute("hl7:id", "root"), set_attribute("hl7:id", "nullFlavor", "UNK")),
        "CDA-SM-006",
        "error",
        id="id-nullFlavor",
    ),
    pytest.param(drop_attribute("hl7:code", "displayName"), "CDA-SM-007", "error", id="code-without-displayName"),
    pytest.param(
        set_attribute("hl7:code", "codeSystem", "2.16.840.1.113883.6.96"), "CDA-SM-008", "error", id="code-snomed"
    ),
    pytest.param(set_text("hl7:title", "  "), "CDA-SM-010", "error", id="empty-title"),
    pytest.param(set_attribute("hl7:effectiveTime", "value", "20240115103000"), "CDA-SM-011", "error", id="no-tz"),
    pytest.param(set_attribute("hl7:effectiveTime", "value", "20240115+0100"), "CDA-SM-011", "error", id="day-only"),
    pytest.param(
        set_attribute("hl7:effectiveTime", "value", "202401151030+0100"), "CDA-SM-012", "warning", id="minute"
    ),
    pytest.param(set_attribute("hl7:confidentialityCode", "code", "U"), "CDA-SM-013", "error", id="confidential-U"),
    pytest.param(
        set_attribute("hl7:confidentialityCode", "codeSystem", "1.2.250.1.213.1.1.4.13"),
        "CDA-SM-013",
        "error",
        id="confidentiality-system",
    ),
    pytest.param(set_attribute("hl7:languageCode", "code", "french"), "CDA-SM-014", "error", id="language-form"),
    pytest.param(set_attribute("hl7:languageCode", "code", "en-GB"), "CDA-SM-015", "warning", id="language-en"),
    pytest.param(remove("hl7:setId"), "CDA-SM-016", "error", id="no-setId"),
    pytest.param(set_attribute("hl7:versionNumber", "value", "0"), "CDA-SM-017", "error", id="version-0"),
    pytest.param(remove(PATIENT), "CDA-SM-020", "error", id="no-patient"),
    pytest.param(set_attribute(INS_ID, "root", "1.2.250.1.999.1"), "CDA-SM-021", "error", id="no-ins-oid"),
    pytest.param(set_attribute(INS_ID, "extension", "18412751150"), "CDA-SM-022", "error", id="ins-short"),
    pytest.param(set_attribute(INS_ID, "extension", "184127511504200"), "CDA-SM-023", "warning", id="ins-key"),
    pytest.param(remove(f"{PATIENT}/hl7:name/hl7:family"), "CDA-SM-024", "error", id="no-birth-name"),
    pytest.param(drop_attribute(f"{PATIENT}/hl7:name/hl7:family", "qualifier"), "CDA-SM-024", "error", id="not-BR"),
    pytest.param(remove(f"{PATIENT}/hl7:name/hl7:given[@qualifier]"), "CDA-SM-025", "error", id="no-first-given"),
    pytest.param(remove(f"{PATIENT}/hl7:name/hl7:given[not(@qualifier)]"), "CDA-SM-026", "error", id="no-givens"),
    pytest.param(remove(f"{PATIENT}/hl7:birthTime"), "CDA-SM-027", "error", id="no-birthTime"),
    pytest.param(set_attribute(f"{PATIENT}/hl7:birthTime", "value", "1984"), "CDA-SM-027", "error", id="birth-year"),
    pytest.param(
        set_attribute(f"{PATIENT}/hl7:administrativeGenderCode", "code", "U"), "CDA-SM-028", "error", id="gender-U"
    ),
    pytest.param(remove(f"{PATIENT}/hl7:birthplace"), "CDA-SM-029", "warning", id="no-birthplace"),
    pytest.param(remove(f"{PATIENT}/hl7:birthplace//hl7:county"), "CDA-SM-030", "error", id="no-cog"),
    pytest.param(set_text(f"{PATIENT}/hl7:birthplace//hl7:county", "PARIS"), "CDA-SM-030", "error", id="bad-cog"),
    pytest.param(drop_attribute(f"{ASSIGNED_AUTHOR}/hl7:id", "extension"), "CDA-SM-040", "error", id="author-id"),
    pytest.param(
        set_attribute(f"{ASSIGNED_AUTHOR}/hl7:id", "root", "1.2.250.1.71"), "CDA-SM-041", "error", id="author-oid"
    ),
    pytest.param(
        set_attribute(f"{ASSIGNED_AUTHOR}/hl7:id", "extension", "12345"), "CDA-SM-042", "warning", id="not-idnps"
    ),
    pytest.param(
        chain(
            drop_attribute("hl7:custodian//hl7:representedCustodianOrganization/hl7:id", "root"),
            set_attribute("hl7:custodian//hl7:representedCustodianOrganization/hl7:id", "nullFlavor", "UNK"),
        ),
        "CDA-SM-050",
        "error",
        id="custodian-id-null",
    ),
    pytest.param(remove(LEGAL), "CDA-SM-060", "error", id="no-legalAuthenticator"),
    pytest.param(set_attribute(f"{LEGAL}/hl7:signatureCode", "code", "X"), "CDA-SM-061", "error", id="signature-X"),
    pytest.param(remove(f"{LEGAL}/hl7:signatureCode"), "CDA-SM-061", "error", id="no-signatureCode"),
    pytest.param(set_attribute(f"{LEGAL}/hl7:time", "value", "20240115"), "CDA-SM-062", "error", id="legal-day"),
    pytest.param(
        set_attribute(f"{LEGAL}/hl7:time", "value", "202401151030+0100"), "CDA-SM-063", "warning", id="legal-minute"
    ),
    pytest.param(remove("hl7:documentationOf"), "CDA-SM-070", "error", id="no-documentationOf"),
    pytest.param(
        remove("hl7:documentationOf/hl7:serviceEvent/hl7:effectiveTime"), "CDA-SM-071", "error", id="event-time"
    ),
    pytest.param(remove("hl7:documentationOf/hl7:serviceEvent/hl7:performer"), "CDA-SM-072", "error", id="performer"),
    pytest.param(remove("hl7:componentOf"), "CDA-SM-080", "error", id="no-componentOf"),
    pytest.param(clear(f"{ENCOUNTER}/hl7:effectiveTime"), "CDA-SM-081", "error", id="empty-encounter-time"),
    pytest.param(drop_attribute(FACILITY_CODE, "displayName"), "CDA-SM-082", "error", id="facility-display"),
    pytest.param(remove(FACILITY_CODE), "CDA-SM-082", "error", id="no-facility-code"),
    pytest.param(set_attribute(FACILITY_CODE, "codeSystem", "1.2.3.4"), "CDA-SM-083", "error", id="facility-j02"),
    pytest.param(set_attribute("hl7:code", "code", "SYNTHESE"), "CDA-VOL-001", "warning", id="vsm-code"),
    pytest.param(
        remove(f"{SECTIONS}[hl7:templateId/@root='1.2.250.1.213.1.1.2.32']/.."),
        "CDA-VOL-002",
        "error",
        id="vsm-no-treatment-section",
    ),
    pytest.param(
        set_attribute(f"{SECTIONS}[hl7:templateId/@root='1.2.250.1.213.1.1.2.29']/hl7:code", "code", "11450-4"),
        "CDA-VOL-003",
        "error",
        id="vsm-section-code",
    ),
    pytest.param(append(".", "templateId root='1.3.6.1.4.1.19376.1.2.20'"), "CDA-N1-007", "error", id="xds-sd-n3"),
]


@pytest.mark.parametrize(("mutation", "rule", "severity"), MINIMALE)
def test_each_structuration_minimale_rule_fails_its_mutation(mutation, rule, severity):
    findings = validate_cda(mutation(structured_document()))
    assert rules(findings).get(rule) == severity, findings


def test_a_missing_ldl_ses_section_is_named():
    mutated = remove(f"{SECTIONS}[hl7:templateId/@root='1.3.6.1.4.1.19376.1.5.3.1.3.22']/..")(
        structured_document("LDL-SES")
    )
    [finding] = validate_cda(mutated)
    assert finding.rule == "CDA-VOL-002"
    assert "Traitements à la sortie" in finding.message


N1 = [
    pytest.param(set_attribute("hl7:code", "code", "11490"), "CDA-SM-009", id="loinc-form"),
    pytest.param(remove("hl7:templateId[3]"), "CDA-N1-001", id="no-xds-sd-template"),
    pytest.param(insert_after("hl7:templateId[3]", "templateId root='1.2.250.1.213.1.1.1.29'"), "CDA-N1-002", id="4th"),
    pytest.param(set_attribute(TEXT, "mediaType", "text/plain"), "CDA-N1-003", id="not-pdf-media-type"),
    pytest.param(set_attribute(TEXT, "representation", "TXT"), "CDA-N1-004", id="not-b64"),
    pytest.param(set_text(TEXT, "not base64 at all!"), "CDA-N1-005", id="bad-base64"),
    pytest.param(set_text(TEXT, base64.b64encode(b"Hello, not a PDF").decode()), "CDA-N1-006", id="not-a-pdf"),
]


@pytest.mark.parametrize(("mutation", "rule"), N1)
def test_each_n1_rule_fails_its_mutation(mutation, rule):
    findings = validate_cda(mutation(n1_document()))
    assert rules(findings).get(rule) == "error", findings


def test_base64_may_be_wrapped_over_lines():
    wrapped = base64.encodebytes(b"%PDF-1.4\n" + bytes(300)).decode()
    assert validate_cda(set_text(TEXT, "\n" + wrapped)(n1_document())) == []


def test_location_is_an_xpath_that_finds_the_element_and_its_line():
    mutated = set_attribute("hl7:confidentialityCode", "code", "X")(structured_document())
    [finding] = validate_cda(mutated)
    assert finding.location == "/hl7:ClinicalDocument/hl7:confidentialityCode"
    root = etree.fromstring(mutated)
    assert line_of(root, finding.location) == root.find(f"{{{HL7}}}confidentialityCode").sourceline


def test_locations_index_repeated_siblings():
    mutated = set_attribute("hl7:recordTarget/hl7:patientRole/hl7:id[2]", "root", "x y")(structured_document())
    [finding] = validate_cda(mutated)
    assert finding.location == "/hl7:ClinicalDocument/hl7:recordTarget/hl7:patientRole/hl7:id[2]"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol2;</title></ClinicalDocument>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3">&x;</ClinicalDocument>"""


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        pytest.param(BILLION_LAUGHS, "CDA-XML-001", id="entity-expansion"),
        pytest.param(XXE, "CDA-XML-001", id="xxe"),
        pytest.param(structured_document()[:-40], "CDA-XML-002", id="truncated"),
        pytest.param(b"", "CDA-XML-002", id="empty"),
        pytest.param(b"\xff\xfe<not xml", "CDA-XML-002", id="garbage"),
        pytest.param(b'<ClinicalDocument xmlns="urn:hl7-org:v2"/>', "CDA-XML-003", id="wrong-namespace"),
        pytest.param(b"<html/>", "CDA-XML-003", id="not-cda"),
    ],
)
def test_unsafe_or_malformed_xml_is_one_error_finding(data, rule):
    [finding] = validate_cda(data)
    assert (finding.rule, finding.severity) == (rule, "error")


def auto_presentable(document: bytes) -> bytes:
    """Wrap a CDA the way the ANS auto-presentable examples do: inside an XSLT stylesheet."""
    cda = document.split(b"?>", 1)[1].decode()
    return (
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" '
        f'xmlns:data="urn:asip-sante:ci-sis"><data:Contenu>{cda}</data:Contenu>'
        '<xsl:template match="/"><html/></xsl:template></xsl:stylesheet>'
    ).encode()


def test_auto_presentable_documents_are_validated_through_their_embedded_cda():
    assert validate_cda(auto_presentable(structured_document())) == []
    broken = remove("//hl7:legalAuthenticator")(auto_presentable(structured_document()))
    [finding] = validate_cda(broken)
    assert finding.rule == "CDA-SM-060"
    assert finding.location == "/xsl:stylesheet/data:Contenu/hl7:ClinicalDocument"


def test_extra_layers_get_the_bytes_and_the_parsed_root():
    seen = []

    def layer(data: bytes, root: etree._Element) -> list[Finding]:
        seen.append((data, root.tag))
        return [Finding("SCH-TEST", "warning", "from an extra layer")]

    document = structured_document()
    findings = validate_cda(document, extra_layers=[layer])
    assert seen == [(document, f"{{{HL7}}}ClinicalDocument")]
    assert [finding.rule for finding in findings] == ["SCH-TEST"]
    assert not has_errors(findings)
