"""The reference SUT's CDA documents (LDL-SES and VSM, N1 and N3) against the CI-SIS.

Header facts are checked where the structuration minimale puts them; with ../shared present,
the documents are also validated against the CI-SIS CDA schema, their section models compared
with the official examples and their codes looked up in the official value sets.
"""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from segur.reference_sut.cda import (
    OID_IDNPS,
    OID_INS_NIR_TEST,
    OID_STRUCTURE,
    CdaAuthor,
    CdaId,
    CdaOrganisation,
    CdaPatient,
    CdaRequest,
    make_pdf,
    produce_cda,
    replacement,
)
from segur.validation import parse_untrusted

SHARED = Path(__file__).resolve().parents[2] / "shared"
CISIS = SHARED / "cisis"
requires_shared = pytest.mark.skipif(not CISIS.is_dir(), reason=f"CI-SIS reference material not found in {CISIS}")

NS = {"h": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
PARIS = timezone(timedelta(hours=1))
DOCUMENTS = [("LDL-SES", "N1"), ("LDL-SES", "N3"), ("VSM", "N1"), ("VSM", "N3")]
MATRICULE = "2550869123456"  # woman born 08/1955 in Lyon 3e (69123): fictitious
INS = MATRICULE + f"{97 - int(MATRICULE) % 97:02d}"

PATIENT = CdaPatient(
    ins=INS,
    birth_family_name="PATIENT-TEST",
    given_names=("CAMILLE", "ANNE"),
    used_given_name="ANNE",
    birth_date=date(1955, 8, 12),
    gender="F",
    birthplace_cog="69123",
    local_id="IPP000123",
    local_id_oid="1.2.250.1.999.1.1.1",
)
HOSPITAL = (
    CdaAuthor(rpps="99910000027", family_name="MEDECIN-TEST", given_name="HOSPITALIER", specialty_code="SM04"),
    CdaOrganisation(
        id="1990000001",
        name="CENTRE HOSPITALIER DE TEST SEGUR",
        facility_type_code="SA01",
        practice_setting_code="ETABLISSEMENT",
    ),
)
PRACTICE = (
    CdaAuthor(rpps="99910000019", family_name="MEDECIN-TEST", given_name="GENERALISTE", specialty_code="SM54"),
    CdaOrganisation(
        id="399900000100019",
        name="CABINET MEDICAL DE TEST SEGUR",
        facility_type_code="SA07",
        practice_setting_code="AMBULATOIRE",
    ),
)
TEXT = {
    "LDL-SES": (
        "Syndrome coronarien aigu sans sus-décalage du segment ST.",
        "Coronarographie : sténose de l'IVA traitée par angioplastie avec pose d'un stent actif.",
        "Sortie à domicile sous double antiagrégation plaquettaire.",
    ),
    "VSM": (
        "Cardiopathie ischémique stentée en 2022 : ne pas interrompre le clopidogrel sans avis cardiologique.",
        "Allergie à l'amoxicilline (urticaire).",
    ),
}


def request(kind: str, level: str) -> CdaRequest:
    author, organisation = HOSPITAL if kind == "LDL-SES" else PRACTICE
    stay = kind == "LDL-SES"
    return CdaRequest(
        kind=kind,
        level=level,
        patient=PATIENT,
        author=author,
        organisation=organisation,
        effective_time=datetime(2025, 3, 5, 14, 30, tzinfo=PARIS),
        service_start=datetime(2025, 3, 2, 9, 15, tzinfo=PARIS) if stay else datetime(2025, 3, 5, 14, 0, tzinfo=PARIS),
        service_stop=datetime(2025, 3, 5, 11, 0, tzinfo=PARIS) if stay else None,
        document_id=CdaId("1.2.250.1.999.2.1", f"{kind}-{level}-0001"),
        set_id=CdaId("1.2.250.1.999.2.2", f"{kind}-{level}-0001"),
        text=TEXT[kind],
    )


@cache
def document(kind: str, level: str) -> etree._Element:
    return parse_untrusted(produce_cda(request(kind, level)))


def values(root: etree._Element, xpath: str) -> list[str]:
    """Attribute values, text nodes, or the text of the elements ``xpath`` selects."""
    found = root.xpath(xpath, namespaces=NS)
    return [value.text if isinstance(value, etree._Element) else str(value) for value in found]


def one(root: etree._Element, xpath: str) -> str:
    found = values(root, xpath)
    assert len(found) == 1, f"{xpath}: {found}"
    return found[0]


# --- every document ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "level"), DOCUMENTS)
def test_documents_are_well_formed_deterministic_and_of_a_sensible_size(kind: str, level: str) -> None:
    data = produce_cda(request(kind, level))
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3"')
    assert produce_cda(request(kind, level)) == data
    assert 5_000 <= len(data) <= 50_000
    assert etree.QName(parse_untrusted(data)).localname == "ClinicalDocument"


@pytest.mark.parametrize(("kind", "level"), DOCUMENTS)
def test_header_has_the_structuration_minimale_facts_where_the_ci_sis_puts_them(kind: str, level: str) -> None:
    root = document(kind, level)
    author, organisation = HOSPITAL if kind == "LDL-SES" else PRACTICE
    assert one(root, "h:realmCode/@code") == "FR"
    assert one(root, "h:typeId/@extension") == "POCD_HD000040"
    assert one(root, "h:languageCode/@code") == "fr-FR"
    assert one(root, "h:confidentialityCode/@code") == "N"
    assert one(root, "h:versionNumber/@value") == "1"
    assert one(root, "h:setId/@extension") == f"{kind}-{level}-0001"
    assert re.fullmatch(r"\d{14}[+-]\d{4}", one(root, "h:effectiveTime/@value"))
    assert (one(root, "h:code/@code"), one(root, "h:code/@codeSystem")) == {
        "LDL-SES": ("11490-0", "2.16.840.1.113883.6.1"),
        "VSM": ("SYNTH", "1.2.250.1.213.1.1.4.12"),
    }[kind]
    assert values(root, "h:code/@displayName")

    patient = "h:recordTarget/h:patientRole"
    assert one(root, f"{patient}/h:id[@root='{OID_INS_NIR_TEST}']/@extension") == INS
    assert one(root, f"{patient}/h:id[@root='1.2.250.1.999.1.1.1']/@extension") == "IPP000123"
    name = f"{patient}/h:patient/h:name"
    assert one(root, f"{name}/h:family[@qualifier='BR']") == "PATIENT-TEST"
    assert one(root, f"{name}/h:given[not(@qualifier)]") == "CAMILLE ANNE"
    assert one(root, f"{name}/h:given[@qualifier='BR']") == "CAMILLE"
    assert one(root, f"{name}/h:given[@qualifier='CL']") == "ANNE"
    assert not values(root, f"{name}/h:family[@qualifier='CL']")
    assert one(root, f"{patient}/h:patient/h:administrativeGenderCode/@code") == "F"
    assert one(root, f"{patient}/h:patient/h:birthTime/@value") == "19550812"
    assert one(root, f"{patient}/h:patient/h:birthplace/h:place/h:addr/h:county") == "69123"

    assigned = "h:author/h:assignedAuthor"
    assert one(root, f"{assigned}/h:id[@root='{OID_IDNPS}']/@extension") == "8" + author.rpps
    assert one(root, f"{assigned}/h:code/@code") == f"G15_10/{author.specialty_code}"
    assert (
        one(root, f"{assigned}/h:representedOrganization/h:id[@root='{OID_STRUCTURE}']/@extension") == organisation.id
    )
    assert values(root, "h:author/h:functionCode/@code") == ([] if kind == "LDL-SES" else ["PCP"])
    assert re.fullmatch(r"\d{14}[+-]\d{4}", one(root, "h:author/h:time/@value"))
    custodian = "h:custodian/h:assignedCustodian/h:representedCustodianOrganization"
    assert one(root, f"{custodian}/h:id[@root='{OID_STRUCTURE}']/@extension") == organisation.id

    assert one(root, "h:legalAuthenticator/h:signatureCode/@code") == "S"
    assert one(root, f"h:legalAuthenticator/h:assignedEntity/h:id[@root='{OID_IDNPS}']/@extension") == "8" + author.rpps
    event = "h:documentationOf/h:serviceEvent"
    assert one(root, f"{event}/h:code/@code") == {"LDL-SES": "IMP", "VSM": "34117-2"}[kind]
    assert values(root, f"{event}/h:effectiveTime/h:low/@value")
    assert len(root.xpath(f"{event}/h:performer", namespaces=NS)) == 1
    setting = f"{event}/h:performer/h:assignedEntity/h:representedOrganization/h:standardIndustryClassCode/@code"
    assert one(root, setting) == organisation.practice_setting_code
    encounter = "h:componentOf/h:encompassingEncounter"
    assert values(root, f"{encounter}/h:effectiveTime/h:low/@value")
    assert one(root, f"{encounter}/h:location/h:healthCareFacility/h:code/@code") == organisation.facility_type_code
    assert not values(root, "h:relatedDocument")


@pytest.mark.parametrize(("kind", "level"), DOCUMENTS)
def test_template_ids_follow_the_level(kind: str, level: str) -> None:
    """N1 replaces the volet's template by IHE XDS-SD and keeps exactly three (structuration minimale rule)."""
    templates = values(document(kind, level), "h:templateId/@root")
    volet = {"LDL-SES": "1.2.250.1.213.1.1.1.29", "VSM": "1.2.250.1.213.1.1.1.13"}[kind]
    expected = "1.3.6.1.4.1.19376.1.2.20" if level == "N1" else volet
    assert templates == ["2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1", expected]


@pytest.mark.parametrize("kind", ["LDL-SES", "VSM"])
def test_n1_body_is_a_base64_pdf(kind: str) -> None:
    root = document(kind, "N1")
    assert not root.xpath("h:component/h:structuredBody", namespaces=NS)
    text = root.xpath("h:component/h:nonXMLBody/h:text", namespaces=NS)[0]
    assert (text.get("mediaType"), text.get("representation")) == ("application/pdf", "B64")
    pdf = base64.b64decode(text.text, validate=True)
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert PATIENT.ins.encode() in pdf
    assert TEXT[kind][0][:40].encode("cp1252") in pdf


@pytest.mark.parametrize("kind", ["LDL-SES", "VSM"])
def test_n3_narrative_references_resolve_and_entries_are_templated(kind: str) -> None:
    root = document(kind, "N3")
    ids = set(values(root, "//@ID"))
    references = values(root, "//h:reference/@value")
    assert references
    assert {reference.removeprefix("#") for reference in references} <= ids
    assert all(reference.startswith("#") for reference in references)
    for entry in root.xpath("//h:entry/*", namespaces=NS):
        assert entry.xpath("h:templateId", namespaces=NS), etree.QName(entry).localname
    section_ids = values(root, "//h:section/h:id/@root")
    assert len(section_ids) == len(set(section_ids))


def test_ldl_ses_carries_the_free_text_and_the_mandatory_entries() -> None:
    root = document("LDL-SES", "N3")
    synthesis = "//h:observation[h:code/@code='MED-142']/h:value[@xsi:type='ST']"
    assert one(root, synthesis) == " ".join(TEXT["LDL-SES"])
    for code in ("GEN-065", "ORG-070", "ORG-074", "MED-142", "MED-309", "MED-145", "MED-147"):
        assert len(root.xpath(f"//h:observation[h:code/@code='{code}']", namespaces=NS)) == 1, code
    assert root.xpath("//h:substanceAdministration/h:consumable/h:manufacturedProduct", namespaces=NS)


def test_vsm_points_de_vigilance_carry_the_free_text() -> None:
    root = document("VSM", "N3")
    vigilance = "h:component/h:structuredBody/h:component/h:section[h:title='Points de vigilance']"
    assert values(root, f"{vigilance}/h:text/h:paragraph/text()") == list(TEXT["VSM"])


def test_replacement_keeps_the_set_id_and_points_at_the_replaced_document() -> None:
    first = request("LDL-SES", "N3")
    second = replacement(
        first,
        document_id=CdaId("1.2.250.1.999.2.1", "LDL-SES-N3-0002"),
        effective_time=first.effective_time + timedelta(days=1),
    )
    root = parse_untrusted(produce_cda(second))
    assert one(root, "h:id/@extension") == "LDL-SES-N3-0002"
    assert (one(root, "h:setId/@root"), one(root, "h:setId/@extension")) == (first.set_id.root, first.set_id.extension)
    assert one(root, "h:versionNumber/@value") == "2"
    parent = "h:relatedDocument[@typeCode='RPLC']/h:parentDocument/h:id"
    assert (one(root, f"{parent}/@root"), one(root, f"{parent}/@extension")) == (
        "1.2.250.1.999.2.1",
        "LDL-SES-N3-0001",
    )
    with pytest.raises(ValueError, match="new document id"):
        replacement(first, document_id=first.document_id, effective_time=first.effective_time)


def test_requests_the_ci_sis_cannot_express_are_refused() -> None:
    base = request("VSM", "N3")
    with pytest.raises(ValueError, match="timezone-aware"):
        replacement(base, document_id=CdaId("1.2.250.1.999.2.1", "x"), effective_time=datetime(2025, 3, 6, 9, 0))
    with pytest.raises(ValueError, match="15 characters"):
        replace(PATIENT, ins=INS[:13])
    with pytest.raises(ValueError, match="11 digits"):
        CdaAuthor(rpps="899910000019", family_name="X", given_name="Y")
    unknown = replace(
        base, author=CdaAuthor(rpps="99910000019", family_name="X", given_name="Y", specialty_code="SM99")
    )
    with pytest.raises(ValueError, match="G15_10/SM99"):
        produce_cda(unknown)


def test_make_pdf_has_an_exact_cross_reference_table_and_escapes_text() -> None:
    lines = ["Ligne (entre parenthèses) \\ é", *(f"ligne {n}" for n in range(120))]
    pdf = make_pdf(lines)
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    assert b"(Ligne \\(entre parenth\xe8ses\\) \\\\ \xe9) Tj" in pdf
    startxref = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref\n0 ")
    offsets = [int(offset) for offset in re.findall(rb"(\d{10}) 00000 n \n", pdf)]
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)
    assert b"/Count 3" in pdf  # 121 lines at 52 a page
    assert re.search(rb"/Size (\d+)", pdf).group(1) == str(len(offsets) + 1).encode()
    assert make_pdf([]).startswith(b"%PDF-1.4")


# --- against the official CI-SIS material (../shared) -------------------------------------------------


@cache
def cda_schema() -> etree.XMLSchema:
    return etree.XMLSchema(file=str(CISIS / "infrastructure" / "cda" / "CDA_extended.xsd"))


@pytest.mark.shared
@requires_shared
@pytest.mark.parametrize(("kind", "level"), DOCUMENTS)
@pytest.mark.parametrize("version", [1, 2])
def test_documents_validate_against_the_ci_sis_cda_schema(kind: str, level: str, version: int) -> None:
    produced = request(kind, level)
    if version == 2:
        produced = replacement(
            produced, document_id=CdaId("1.2.250.1.999.2.1", "v2"), effective_time=produced.effective_time
        )
    schema = cda_schema()
    assert schema.validate(parse_untrusted(produce_cda(produced))), schema.error_log


EXAMPLES = {"LDL-SES": "LDL-SES_2022.01.xml", "VSM": "VSM_1.4_2022.01.xml"}
LEFT_OUT = {
    # [0..1] sections of the LDL-SES without content in the synthetic stay.
    "LDL-SES": {
        "1.3.6.1.4.1.19376.1.5.3.1.3.21": "Traitements administrés (none stopped during the stay)",
        "1.2.250.1.213.1.1.2.1": "Dispositifs médicaux (no device implanted)",
        "1.3.6.1.4.1.19376.1.5.3.1.3.13": "Allergies (none identified during the stay)",
    },
    # Subsections of the VSM's first section, none in the synthetic case.
    "VSM": {
        "1.3.6.1.4.1.19376.1.5.3.1.3.12": "Antécédents chirurgicaux",
        "1.3.6.1.4.1.19376.1.5.3.1.3.15": "Antécédents familiaux",
    },
}


def sections(root: etree._Element, top_level: bool) -> set[tuple[tuple[str, ...], str]]:
    path = "h:component/h:structuredBody/h:component/h:section" if top_level else "//h:section"
    return {
        (tuple(values(section, "h:templateId/@root")), one(section, "h:code/@code"))
        for section in root.xpath(path, namespaces=NS)
    }


@pytest.mark.shared
@requires_shared
@pytest.mark.parametrize("kind", ["LDL-SES", "VSM"])
def test_n3_section_models_are_those_of_the_official_example(kind: str) -> None:
    example = etree.parse(str(CISIS / "ExemplesCDA" / EXAMPLES[kind])).getroot()
    ours = document(kind, "N3")
    omitted = LEFT_OUT[kind]

    def kept(found: set[tuple[tuple[str, ...], str]]) -> set[tuple[tuple[str, ...], str]]:
        return {(templates, code) for templates, code in found if not set(templates) & set(omitted)}

    assert sections(ours, top_level=True) == kept(sections(example, top_level=True))
    assert sections(ours, top_level=False) == kept(sections(example, top_level=False))
    volet_template = "h:templateId[3]/@*[name() = 'root' or name() = 'extension']"
    assert values(ours, volet_template) == values(example, volet_template)


@cache
def value_set(name: str) -> set[tuple[str, str, str]]:
    root = parse_untrusted((CISIS / "jeuxDeValeurs" / f"{name}.xml").read_bytes())
    return {
        (concept.get("code"), concept.get("codeSystem"), concept.get("displayName"))
        for concept in root.iter("{urn:ihe:iti:svs:2008}Concept")
    }


@pytest.mark.shared
@requires_shared
@pytest.mark.parametrize(("kind", "level"), DOCUMENTS)
def test_coded_values_come_from_the_ci_sis_value_sets(kind: str, level: str) -> None:
    root = document(kind, level)
    checks = {
        "h:code": "JDV_J07_XdsTypeCode_CISIS",
        "h:author/h:assignedAuthor/h:code": "JDV_J01_XdsAuthorSpecialty_CISIS",
        "h:author/h:functionCode": "JDV_J47_FunctionCode_CISIS",
        "//h:healthCareFacility/h:code": "JDV_J02_XdsHealthcareFacilityTypeCode_CISIS",
        "//h:standardIndustryClassCode": "JDV_J04_XdsPracticeSettingCode_CISIS",
        "//h:administrativeGenderCode": "JDV_J143_AdministrativeGender_CISIS",
        "//h:observation[h:code/@code='GEN-065']/h:value": "JDV_StatutDoc_CISIS",
        "//h:observation[h:code/@code='ORG-070']/h:value": "JDV_ModaliteEntree_CISIS",
        "//h:observation[h:code/@code='ORG-074']/h:value": "JDV_ModaliteSortie_CISIS",
    }
    for xpath, name in checks.items():
        for element in root.xpath(xpath, namespaces=NS):
            coded = (element.get("code"), element.get("codeSystem"), element.get("displayName"))
            assert coded in value_set(name), f"{xpath} {coded} not in {name}"
