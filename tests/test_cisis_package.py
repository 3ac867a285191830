"""segur.cisis.CisisPackage: the user's CI-SIS folder (../shared/cisis when present) and a fake TestContenuCDA.

The fake package is written by the tests into tmp_path: our own tiny XSD, value set and
schematrons laid out as the ANS TestContenuCDA package lays out its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from segur.cisis import CisisPackage
from segur.validation import Finding, parse_untrusted

SHARED = Path(__file__).resolve().parents[2] / "shared"
CISIS = SHARED / "cisis"
needs_cisis = pytest.mark.skipif(not CISIS.is_dir(), reason="../shared/cisis is absent")

MODEL_OID = "1.2.250.1.213.1.1.1.999"
OTHER_OID = "1.2.250.1.213.1.1.1.998"
XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:hl7-org:v3"
    elementFormDefault="qualified">
  <xs:element name="ClinicalDocument"><xs:complexType><xs:sequence>
    <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence><xs:anyAttribute processContents="skip"/></xs:complexType></xs:element>
</xs:schema>"""
VALUE_SET = """<ValueSet xmlns="urn:ihe:iti:svs:2008"><ConceptList>
  <Concept code="GOOD" codeSystem="1.2.250.1.213.1.1.4.999" displayName="Code fictif"/>
</ConceptList></ValueSet>"""
MODEL = """<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2" defaultPhase="{name}">
  <ns prefix="cda" uri="urn:hl7-org:v3"/><ns prefix="svs" uri="urn:ihe:iti:svs:2008"/>
  <phase id="{name}"><active pattern="variables"/><active pattern="Entete_{name}"/></phase>
  <pattern id="variables">
    <let name="JDV_Test" value="'../jeuxDeValeurs/JDV_TestCodes_CISIS.xml'"/>
  </pattern>
  <pattern id="Entete_{name}">
    <rule context="cda:ClinicalDocument">
      <assert id="{name}-TID" test="cda:templateId[@root='{oid}']">templateId {oid} required</assert>
      <assert id="{name}-STRUCT" test="cda:templateId[@root='1.2.250.1.213.1.1.1.1']">structuration minimale</assert>
      <assert id="{name}-CODE" test="document($JDV_Test)//svs:Concept[@code = current()/cda:code/@code]">
        [{name}] code <value-of select="cda:code/@code"/> is not in the value set</assert>
    </rule>
  </pattern>
</schema>"""
PROFILE = """<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <ns prefix="cda" uri="urn:hl7-org:v3"/>
  <pattern id="IHE"><rule context="cda:ClinicalDocument">
    <assert id="IHE-TITLE" test="cda:title">a CDA document has a title</assert>
  </rule></pattern>
</schema>"""


def cda(*template_ids: tuple[str, str | None], code: str = "GOOD", title: bool = True) -> bytes:
    ids = "".join(
        f'<templateId root="{root}"{f" extension={chr(34)}{ext}{chr(34)}" if ext else ""}/>'
        for root, ext in template_ids
    )
    return (
        f'<ClinicalDocument xmlns="urn:hl7-org:v3"><templateId root="1.2.250.1.213.1.1.1.1"/>{ids}'
        f'<code code="{code}"/>{"<title>Document fictif</title>" if title else ""}</ClinicalDocument>'
    ).encode()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    files = {
        "infrastructure/cda/CDA_extended.xsd": XSD,
        "jeuxDeValeurs/JDV_TestCodes_CISIS.xml": VALUE_SET,
        "schematrons/CI-SIS_TEST-MODELE_2023.01.sch": MODEL.format(name="TEST-MODELE_2023.01", oid=MODEL_OID),
        "schematrons/CI-SIS_TEST-MODELE_2024.01.sch": MODEL.format(name="TEST-MODELE_2024.01", oid=MODEL_OID),
        "schematrons/CI-SIS_AUTRE_2024.01.sch": MODEL.format(name="AUTRE_2024.01", oid=OTHER_OID),
        "schematrons/profils/IHE.sch": PROFILE,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def run(package: Path, document: bytes) -> list[Finding]:
    return CisisPackage(package).schematron_layer()(document, parse_untrusted(document))


def ran(findings: list[Finding]) -> str:
    (listing,) = [f.message for f in findings if f.rule == "CISIS-SCHEMATRONS"]
    return listing


def test_the_model_schematron_is_picked_by_the_documents_template_id(package: Path) -> None:
    findings = run(package, cda((MODEL_OID, "2024.01"), code="BAD", title=False))
    assert ran(findings) == "official schematrons run: profils/IHE.sch, CI-SIS_TEST-MODELE_2024.01.sch"
    failed = {(f.rule, f.severity, f.location) for f in findings if f.severity == "error"}
    assert failed == {
        ("IHE-TITLE", "error", "/cda:ClinicalDocument"),
        ("TEST-MODELE_2024.01-CODE", "error", "/cda:ClinicalDocument"),  # value set read via ../jeuxDeValeurs
    }


def test_a_conforming_document_has_only_the_listing(package: Path) -> None:
    findings = run(package, cda((MODEL_OID, "2024.01")))
    assert [f.rule for f in findings] == ["CISIS-SCHEMATRONS"]
    assert findings[0].severity == "info"


@pytest.mark.parametrize(
    ("extension", "expected"),
    [
        ("2023.01", "CI-SIS_TEST-MODELE_2023.01.sch"),
        ("2024.01", "CI-SIS_TEST-MODELE_2024.01.sch"),
        (None, "CI-SIS_TEST-MODELE_2024.01.sch"),
    ],
)
def test_the_templateid_extension_picks_the_version_else_the_latest(
    package: Path, extension: str | None, expected: str
) -> None:
    assert ran(run(package, cda((MODEL_OID, extension)))).endswith(f", {expected}")


def test_a_document_of_no_known_model_runs_the_profiles_and_says_so(package: Path) -> None:
    findings = run(package, cda(("1.2.250.1.213.1.1.1.12345", None)))
    assert findings[0].rule == "CISIS-NO-MODEL"
    assert findings[0].severity == "warning"
    assert ran(findings) == "official schematrons run: profils/IHE.sch"


CONTEXT_MODEL = """<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <ns prefix="cda" uri="urn:hl7-org:v3"/>
  <pattern id="variables">
    <rule context='*[cda:templateId/@root="{oid}"]'>
      <assert id="CTX-SECTION" test=".//cda:section">a section is required</assert>
    </rule>
  </pattern>
</schema>"""


def test_a_model_that_selects_its_documents_by_rule_context_is_found(package: Path) -> None:
    """As CI-SIS_LDL-SES_2022.01.sch does: no assertion names the model's templateId, its rule context does."""
    context_oid = "1.2.250.1.213.1.1.1.997"
    (package / "schematrons" / "CI-SIS_CTX-MODELE_2022.01.sch").write_text(
        CONTEXT_MODEL.format(oid=context_oid), encoding="utf-8"
    )
    findings = run(package, cda((context_oid, "2022.01")))
    assert ran(findings).endswith(", CI-SIS_CTX-MODELE_2022.01.sch")
    assert {f.rule for f in findings if f.severity == "error"} == {"CTX-SECTION"}


def test_an_n1_document_expects_no_model_and_is_not_warned(package: Path) -> None:
    """A PDF in nonXMLBody has no CI-SIS content model: only the profiles apply, which is no doubt about it."""
    n1 = cda(("1.2.250.1.213.1.1.1.12345", None)).replace(
        b"</ClinicalDocument>",
        b"<component><nonXMLBody><text>JVBERi0=</text></nonXMLBody></component></ClinicalDocument>",
    )
    findings = run(package, n1)
    (no_model,) = [f for f in findings if f.rule == "CISIS-NO-MODEL"]
    assert no_model.severity == "info" and "N1" in no_model.message


def test_a_mapping_properties_file_overrides_the_modelled_mapping(package: Path) -> None:
    (package / "schematrons" / "mapping.properties").write_text(
        f"# root.extension=model, as in the ANS CI\n{MODEL_OID}.2024.01=AUTRE_2024.01\n", encoding="utf-8"
    )
    findings = run(package, cda((MODEL_OID, "2024.01")))
    assert ran(findings).endswith(", CI-SIS_AUTRE_2024.01.sch")
    assert {f.rule for f in findings if f.severity == "error"} == {"AUTRE_2024.01-TID"}


def test_a_wrapped_clinical_document_is_checked_alone(package: Path) -> None:
    wrapped = b'<?xml version="1.0"?><envelope>' + cda((MODEL_OID, "2024.01"), title=False) + b"</envelope>"
    findings = run(package, wrapped)
    assert [(f.rule, f.location) for f in findings if f.severity == "error"] == [("IHE-TITLE", "/cda:ClinicalDocument")]


def test_a_document_without_clinical_document_is_an_error(package: Path) -> None:
    (finding,) = run(package, b"<notCda/>")
    assert (finding.rule, finding.severity) == ("CISIS-NOT-CDA", "error")


def test_the_profiles_compile_ahead_and_a_broken_one_waits_for_a_document(package: Path) -> None:
    """A run compiles the profiles before its first scenario; the document then meets the same compilation."""
    from segur.schematron import engine

    profile = (package / "schematrons" / "profils" / "IHE.sch").resolve()
    assert (profile, None) not in engine._CACHE
    CisisPackage(package).compile_profiles()
    assert (profile, None) in engine._CACHE
    (package / "schematrons" / "profils" / "IHE.sch").write_text("<schema/>", encoding="utf-8")
    CisisPackage(package).compile_profiles()  # no exception: the document's findings will say it
    assert any(f.rule == "CISIS-SCHEMATRON-BROKEN" for f in run(package, cda((MODEL_OID, "2024.01"))))


def test_a_broken_official_schematron_is_reported_not_raised(package: Path) -> None:
    (package / "schematrons" / "profils" / "IHE.sch").write_text("<schema/>", encoding="utf-8")
    findings = run(package, cda((MODEL_OID, "2024.01")))
    (broken,) = [f for f in findings if f.rule == "CISIS-SCHEMATRON-BROKEN"]
    assert broken.severity == "warning"
    assert "IHE.sch" in broken.message


def test_the_fake_package_schema_and_value_sets(package: Path) -> None:
    cisis = CisisPackage(package)
    assert cisis.cda_schema().validate(etree.fromstring(cda((MODEL_OID, None))))
    assert cisis.value_set("TestCodes_CISIS") == package / "jeuxDeValeurs" / "JDV_TestCodes_CISIS.xml"
    assert cisis.value_set("JDV_TestCodes") == package / "jeuxDeValeurs" / "JDV_TestCodes_CISIS.xml"
    assert cisis.value_set("Unknown") is None
    assert cisis.value_set("../infrastructure/cda/CDA_extended") is None


@pytest.mark.parametrize("layout", ["empty", "missing", "schematrons-only"])
def test_a_folder_that_is_not_a_cisis_package_is_refused(tmp_path: Path, layout: str) -> None:
    if layout == "schematrons-only":
        (tmp_path / "schematrons").mkdir()
    folder = tmp_path / "nowhere" if layout == "missing" else tmp_path
    with pytest.raises(ValueError, match=r"is not a CI-SIS package: infrastructure/cda/CDA_extended\.xsd is missing"):
        CisisPackage(folder)


@pytest.mark.shared
@needs_cisis
def test_the_shared_cisis_folder_loads_and_its_schema_validates_an_ans_example() -> None:
    cisis = CisisPackage(CISIS)
    schema = cisis.cda_schema()
    example = parse_untrusted((CISIS / "ExemplesCDA" / "VSM_1.4_2022.01.xml").read_bytes())
    assert schema.validate(example), schema.error_log.last_error
    example.remove(example.find("{urn:hl7-org:v3}id"))
    assert not schema.validate(example)
    assert CisisPackage(CISIS).cda_schema() is schema


@pytest.mark.shared
@needs_cisis
def test_the_shared_cisis_folder_has_value_sets_but_no_schematrons() -> None:
    cisis = CisisPackage(CISIS)
    found = cisis.value_set("AbordVeineuxCentral_CISIS")
    assert found is not None
    assert found.name == "JDV_AbordVeineuxCentral_CISIS.xml"
    document = (CISIS / "ExemplesCDA" / "VSM_1.4_2022.01.xml").read_bytes()
    (finding,) = cisis.schematron_layer()(document, parse_untrusted(document))
    assert (finding.rule, finding.severity) == ("CISIS-NO-SCHEMATRON", "warning")
