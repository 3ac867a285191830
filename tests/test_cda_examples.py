"""The CDA validator against the ANS CI-SIS material in ../shared/cisis (skipped when absent).

The ANS example documents are the reference of what a receiver accepts: none may get an error
from our layers (a) and (b), and a false error is fixed in the rule, not here. Mutated copies
of them show the rules catch real-world defects, with the CI-SIS schema and value sets too.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cda_samples import n1_document, remove, set_attribute, set_text, structured_document
from lxml import etree

from segur.cda import validate_cda, value_set_layer

SHARED = Path(__file__).resolve().parents[2] / "shared"
CISIS = SHARED / "cisis"
EXAMPLES = CISIS / "ExemplesCDA"
SCHEMA_FILE = CISIS / "infrastructure" / "cda" / "CDA_extended.xsd"
JDV = CISIS / "jeuxDeValeurs"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"CI-SIS material not found in {CISIS}"),
]


def structuration_minimale_examples() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(path for path in EXAMPLES.glob("*.xml") if b'"1.2.250.1.213.1.1.1.1"' in path.read_bytes())


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(file=str(SCHEMA_FILE))


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def errors(findings):
    return [finding for finding in findings if finding.severity == "error"]


def test_the_examples_are_there():
    assert len(structuration_minimale_examples()) >= 90


@pytest.mark.parametrize("path", structuration_minimale_examples(), ids=lambda path: path.stem)
def test_no_ans_example_gets_an_error_from_our_rules(path):
    assert errors(validate_cda(path.read_bytes())) == []


@pytest.mark.parametrize("path", structuration_minimale_examples(), ids=lambda path: path.stem)
def test_ans_examples_validate_against_the_cisis_schema(path, schema):
    assert errors(validate_cda(path.read_bytes(), schema=schema)) == []


@pytest.mark.parametrize(
    "document",
    [structured_document("VSM"), structured_document("LDL-SES"), n1_document()],
    ids=["vsm", "ldl-ses", "n1"],
)
def test_our_synthetic_samples_are_schema_valid(document, schema):
    assert validate_cda(document, schema=schema) == []


PATIENT = "hl7:recordTarget/hl7:patientRole/hl7:patient"
TEXT = "hl7:component/hl7:nonXMLBody/hl7:text"
SECTION = "hl7:component/hl7:structuredBody/hl7:component/hl7:section"

MUTATED_EXAMPLES = [
    pytest.param("LDL-SES_2022.01.xml", remove(f"{PATIENT}/hl7:birthTime"), "CDA-SM-027", id="ins-birthTime"),
    pytest.param(
        "VSM_1.4_2022.01.xml", remove(f"{PATIENT}/hl7:name/hl7:family[@qualifier='BR']"), "CDA-SM-024", id="ins-name"
    ),
    pytest.param(
        "VSM_1.4_2022.01.xml",
        set_attribute("hl7:recordTarget/hl7:patientRole/hl7:id[@root='1.2.250.1.213.1.4.10']", "root", "1.2.250.1.9"),
        "CDA-SM-021",
        id="wrong-ins-oid",
    ),
    pytest.param(
        "DOC_NON_STRUCTURE_CDA-R2-N1.xml",
        remove("hl7:legalAuthenticator/hl7:signatureCode"),
        "CDA-SM-061",
        id="no-signatureCode",
    ),
    pytest.param(
        "CNAM-HR_2021.01.xml",
        set_attribute("hl7:code", "codeSystem", "2.16.840.1.113883.6.96"),
        "CDA-SM-008",
        id="code-system-not-j07",
    ),
    pytest.param(
        "TLM-CR_2022.01.xml", set_attribute("hl7:confidentialityCode", "code", "M"), "CDA-SM-013", id="confidentiality"
    ),
    pytest.param(
        "DOC_NON_STRUCTURE_CDA-R2-N1.xml",
        set_attribute(TEXT, "mediaType", "image/jpeg"),
        "CDA-N1-003",
        id="n1-media-type",
    ),
    pytest.param(
        "TLM-CR_2022.01.xml",
        set_text(TEXT, base64.b64encode(b"GIF89a not a pdf").decode()),
        "CDA-N1-006",
        id="n1-not-a-pdf",
    ),
    pytest.param(
        "LDL-SES_2022.01.xml",
        remove(f"{SECTION}[hl7:templateId/@root='1.3.6.1.4.1.19376.1.5.3.1.3.22']/.."),
        "CDA-VOL-002",
        id="ldl-ses-no-traitements-sortie",
    ),
    pytest.param(
        "VSM_1.4_2022.01.xml",
        remove(f"{SECTION}[hl7:templateId/@root='1.2.250.1.213.1.1.2.32']/.."),
        "CDA-VOL-002",
        id="vsm-no-traitement-long-cours",
    ),
    pytest.param(
        "CANCER-PPS_2022.01_Autopresentable.xml",
        remove(f"//hl7:ClinicalDocument/{PATIENT}/hl7:name/hl7:given[@qualifier='BR']"),
        "CDA-SM-025",
        id="auto-presentable-first-given",
    ),
]


@pytest.mark.parametrize(("name", "mutation", "rule"), MUTATED_EXAMPLES)
def test_mutated_examples_are_caught(name, mutation, rule):
    assert rule in {finding.rule for finding in errors(validate_cda(mutation(example(name))))}


def test_code_not_in_j07_is_caught_with_the_users_value_sets():
    mutated = set_attribute("hl7:code", "code", "8302-2")(example("LDL-SES_2022.01.xml"))  # LOINC body height
    assert not errors(validate_cda(mutated)), "a LOINC code outside J07 needs the JDV to be caught"
    [finding] = errors(validate_cda(mutated, extra_layers=[value_set_layer(JDV)]))
    assert finding.rule == "CDA-VS-001"
    assert finding.location == "/hl7:ClinicalDocument/hl7:code"


def test_value_sets_accept_every_ans_example():
    layer = value_set_layer(JDV)
    for path in structuration_minimale_examples():
        data = path.read_bytes()
        assert validate_cda(data, extra_layers=[layer]) == validate_cda(data), path.name


def test_schema_errors_carry_an_xpath_and_the_libxml2_error_type(schema):
    mutated = remove("hl7:id")(example("LDL-SES_2022.01.xml"))
    [finding] = [finding for finding in validate_cda(mutated, schema=schema) if finding.rule.startswith("CDA-XSD")]
    assert finding.rule == "CDA-XSD-ELEMENT_CONTENT"
    assert finding.location == "/hl7:ClinicalDocument/hl7:code"
    assert "{urn:hl7-org:v3}code" in finding.message
