"""DMP submission metadata: the reference SUT's builder against the harness's validator.

A synthetic CDA goes through ``build_submission`` and must validate without a single finding;
then each mutation breaks one rule the DMP enforces and must be reported with the XDS error
code a registry answers and the validator's check id. The shared test does the same with the
ANS example LDL-SES (skipped when ../shared is absent).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from segur.ins import OID_INS_NIR, ins_key
from segur.pki import Pki
from segur.reference_sut.xds_metadata import Author, Code, DocumentToSubmit, Institution, Submission, build_submission
from segur.validation import Finding
from segur.xds import InsOids, check_of, validate_submission
from segur.xds import ebrim as x

SHARED = Path(__file__).resolve().parents[2] / "shared"
NS = x.NS
MATRICULE = "2800175123456"
INS = MATRICULE + ins_key(MATRICULE)
OTHER_MATRICULE = "1750575123456"
OTHER_INS = OTHER_MATRICULE + ins_key(OTHER_MATRICULE)
CDA_ID = "1.2.250.1.999.1.1.20240115.1"
LDL_SES = "urn:asip:ci-sis:ldl-ses:2017"
SUBMITTER = Author(
    "899910000027",
    "HOSPITALIER",
    "Jeanne",
    Code("G15_10/SM26", "1.2.250.1.213.1.1.4.5", "Qualifié en médecine générale (SM)"),
    "Médecin hospitalier",
)
CHU = Institution("CENTRE HOSPITALIER DE TEST SEGUR", "1990000001")
SOURCE_ID = "1.2.250.1.999.2"


def synthetic_cda(
    *, ins: str = INS, ins_oid: str = "1.2.250.1.213.1.4.10", unique_id: str = CDA_ID, padding_bytes: int = 0
) -> bytes:
    """A fictitious LDL-SES-like CDA header (patient, author, legal authenticator, encounter) and a body."""
    padding = "Texte libre du compte rendu. " * (padding_bytes // 29 + 1) if padding_bytes else "Sortie sans suite."
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="1.2.250.1.213.1.1.1.29" extension="2022.01"/>
  <id root="{unique_id}"/>
  <code code="11490-0" codeSystem="2.16.840.1.113883.6.1" displayName="Lettre de liaison à la sortie"/>
  <title>Lettre de liaison   à la sortie</title>
  <effectiveTime value="20240115103000+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25" displayName="Normal"/>
  <languageCode code="fr-FR"/>
  <recordTarget><patientRole>
    <id root="{ins_oid}" extension="{ins}"/>
    <id root="1.2.250.1.999.3" extension="IPP-42"/>
    <patient>
      <name>
        <family qualifier="BR">TESTSEGUR</family><given>CAMILLE MARIE</given><given qualifier="BR">CAMILLE</given>
      </name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19800115"/>
    </patient>
  </patientRole></recordTarget>
  <author>
    <time value="20240115103000+0100"/>
    <assignedAuthor>
      <id root="1.2.250.1.71.4.2.1" extension="899910000027"/>
      <code code="G15_10/SM26" codeSystem="1.2.250.1.213.1.1.4.5" displayName="Qualifié en médecine générale (SM)"/>
      <assignedPerson><name><given>Jeanne</given><family>HOSPITALIER</family></name></assignedPerson>
      <representedOrganization>
        <id root="1.2.250.1.71.4.2.2" extension="1990000001"/>
        <name>CENTRE HOSPITALIER DE TEST SEGUR</name>
      </representedOrganization>
    </assignedAuthor>
  </author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.250.1.71.4.2.2" extension="1990000001"/>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <legalAuthenticator>
    <time value="20240115103000+0100"/><signatureCode code="S"/>
    <assignedEntity>
      <id root="1.2.250.1.71.4.2.1" extension="899910000027"/>
      <assignedPerson><name><given>Jeanne</given><family>HOSPITALIER</family></name></assignedPerson>
    </assignedEntity>
  </legalAuthenticator>
  <documentationOf><serviceEvent>
    <effectiveTime><low value="20240110083000+0100"/><high value="20240115100000+0100"/></effectiveTime>
    <performer typeCode="PRF"><assignedEntity>
      <id root="1.2.250.1.71.4.2.1" extension="899910000027"/>
      <representedOrganization>
        <standardIndustryClassCode code="ETABLISSEMENT" codeSystem="1.2.250.1.213.1.1.4.9"/>
      </representedOrganization>
    </assignedEntity></performer>
  </serviceEvent></documentationOf>
  <componentOf><encompassingEncounter>
    <effectiveTime><low value="20240110083000+0100"/><high value="20240115100000+0100"/></effectiveTime>
    <location><healthCareFacility><code code="SA01" codeSystem="1.2.250.1.71.4.2.4"/></healthCareFacility></location>
  </encompassingEncounter></componentOf>
  <component><structuredBody><component><section>
    <code code="42349-1" codeSystem="2.16.840.1.113883.6.1"/>
    <title>Raison de la recommandation</title>
    <text>{padding}</text>
  </section></component></structuredBody></component>
</ClinicalDocument>
""".encode()


def submit(pki: Pki, cda: bytes | None = None, **options: object) -> Submission:
    return build_submission(
        [DocumentToSubmit(cda or synthetic_cda(), LDL_SES)],
        author=SUBMITTER,
        institution=CHU,
        source_id=SOURCE_ID,
        signing_key_pem=pki.key("sign").read_bytes(),
        signing_cert_pem=pki.cert("sign").read_bytes(),
        **options,  # type: ignore[arg-type]
    )


def validate(pki: Pki, submission: Submission, **options: object) -> list[Finding]:
    return validate_submission(
        submission.request,
        submission.documents,
        trusted_ca_pem=pki.ca_cert.read_bytes(),
        **options,  # type: ignore[arg-type]
    )


def errors(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(finding.rule, check_of(finding)) for finding in findings if finding.severity == "error"}


# -- navigation helpers for the mutations ---------------------------------------------------------


def entries(sub: Submission) -> list[etree._Element]:
    return sub.request.findall("lcm:SubmitObjectsRequest/rim:RegistryObjectList/rim:ExtrinsicObject", NS)


def cda_entry(sub: Submission) -> etree._Element:
    return entries(sub)[0]


def signature_entry(sub: Submission) -> etree._Element:
    return entries(sub)[-1]


def submission_set(sub: Submission) -> etree._Element:
    return sub.request.find("lcm:SubmitObjectsRequest/rim:RegistryObjectList/rim:RegistryPackage", NS)


def classifications(obj: etree._Element, scheme: str) -> list[etree._Element]:
    return obj.findall(f"rim:Classification[@classificationScheme='{scheme}']", NS)


def set_code(obj: etree._Element, scheme: str, code: str, system: str | None = None, index: int = 0) -> None:
    classification = classifications(obj, scheme)[index]
    classification.set("nodeRepresentation", code)
    if system is not None:
        classification.find("rim:Slot[@name='codingScheme']/rim:ValueList/rim:Value", NS).text = system


def slot(obj: etree._Element, name: str) -> etree._Element:
    return obj.find(f"rim:Slot[@name='{name}']", NS)


def set_slot(obj: etree._Element, name: str, *values: str) -> None:
    value_list = slot(obj, name).find("rim:ValueList", NS)
    for value in list(value_list):
        value_list.remove(value)
    for text in values:
        etree.SubElement(value_list, f"{x.RIM}Value").text = text


def author_slot(obj: etree._Element, scheme: str, name: str, *values: str) -> None:
    set_slot(classifications(obj, scheme)[0], name, *values)


def identifier(obj: etree._Element, scheme: str) -> etree._Element:
    return obj.find(f"rim:ExternalIdentifier[@identificationScheme='{scheme}']", NS)


def remove(element: etree._Element) -> None:
    element.getparent().remove(element)


def set_both_patient_ids(sub: Submission, value: str) -> None:
    for obj, scheme in (
        (cda_entry(sub), x.DE_PATIENT_ID),
        (signature_entry(sub), x.DE_PATIENT_ID),
        (submission_set(sub), x.SS_PATIENT_ID),
    ):
        identifier(obj, scheme).set("value", value)


def drop_document(sub: Submission) -> None:
    entry_id = cda_entry(sub).get("id")
    remove(sub.request.find(f"xdsb:Document[@id='{entry_id}']", NS))
    del sub.documents[entry_id]


def add_document(sub: Submission) -> None:
    etree.SubElement(sub.request, f"{x.XDSB}Document", id="Orphan01")
    sub.documents["Orphan01"] = b"<orphan/>"


def tamper_cda(sub: Submission) -> None:
    entry_id = cda_entry(sub).get("id")
    sub.documents[entry_id] = sub.documents[entry_id].replace(b"Sortie sans suite", b"Sortie avec suite")


def rewrite_hash(sub: Submission) -> None:
    set_slot(cda_entry(sub), "hash", hashlib.sha1(b"another document").hexdigest())


def associations(sub: Submission) -> list[etree._Element]:
    return sub.request.findall("lcm:SubmitObjectsRequest/rim:RegistryObjectList/rim:Association", NS)


Mutation = Callable[[Submission], None]
ERR = "XDSRegistryMetadataError"
MUTATIONS: list[tuple[str, Mutation, tuple[str, str]]] = [
    (
        "wrong-scheme-uuid",
        lambda s: classifications(cda_entry(s), x.DE_TYPE_CODE)[0].set(
            "classificationScheme", "urn:uuid:f0306f51-975f-434e-a61c-c59651d33984"
        ),
        (ERR, "XDS-SCHEME"),
    ),
    ("non-ins-oid", lambda s: set_both_patient_ids(s, f"{INS}^^^&1.2.250.1.999&ISO"), (ERR, "XDS-PATIENTID")),
    (
        "production-oid-under-test",
        lambda s: set_both_patient_ids(s, f"{INS}^^^&{OID_INS_NIR}&ISO"),
        (ERR, "XDS-INS-ENVIRONMENT"),
    ),
    (
        "bad-ins-key",
        lambda s: set_both_patient_ids(s, f"{MATRICULE}00^^^&1.2.250.1.213.1.4.10&ISO"),
        (ERR, "XDS-PATIENTID"),
    ),
    (
        "extra-cx-component",
        lambda s: set_both_patient_ids(s, f"{INS}^^^&1.2.250.1.213.1.4.10&ISO^PI"),
        (ERR, "XDS-PATIENTID"),
    ),
    (
        "patient-mismatch",
        lambda s: identifier(submission_set(s), x.SS_PATIENT_ID).set(
            "value", f"{OTHER_INS}^^^&1.2.250.1.213.1.4.10&ISO"
        ),
        ("XDSPatientIdDoesNotMatch", "XDS-PATIENTID-MATCH"),
    ),
    ("class-inconsistent-with-type", lambda s: set_code(cda_entry(s), x.DE_CLASS_CODE, "11"), (ERR, "XDS-CLASSCODE")),
    ("class-not-in-j57", lambda s: set_code(cda_entry(s), x.DE_CLASS_CODE, "99"), (ERR, "XDS-CLASSCODE")),
    ("type-not-in-j07", lambda s: set_code(cda_entry(s), x.DE_TYPE_CODE, "00000-0"), (ERR, "XDS-TYPECODE")),
    (
        "type-differs-from-cda",
        lambda s: (set_code(cda_entry(s), x.DE_TYPE_CODE, "34133-9"), set_code(cda_entry(s), x.DE_CLASS_CODE, "11")),
        (ERR, "XDS-CDA-TYPECODE"),
    ),
    (
        "type-in-wrong-system",
        lambda s: set_code(cda_entry(s), x.DE_TYPE_CODE, "11490-0", "LOINC"),
        (ERR, "XDS-TYPECODE"),
    ),
    (
        "format-not-in-j60",
        lambda s: set_code(cda_entry(s), x.DE_FORMAT_CODE, "urn:example:format"),
        (ERR, "XDS-FORMATCODE"),
    ),
    ("facility-not-in-j61", lambda s: set_code(cda_entry(s), x.DE_FACILITY_TYPE_CODE, "SA99"), (ERR, "XDS-FACILITY")),
    (
        "facility-differs-from-cda",
        lambda s: set_code(cda_entry(s), x.DE_FACILITY_TYPE_CODE, "SA02"),
        (ERR, "XDS-CDA-FACILITY"),
    ),
    (
        "practice-not-in-j04",
        lambda s: set_code(cda_entry(s), x.DE_PRACTICE_SETTING_CODE, "HOPITAL"),
        (ERR, "XDS-PRACTICE"),
    ),
    (
        "practice-differs-from-cda",
        lambda s: set_code(cda_entry(s), x.DE_PRACTICE_SETTING_CODE, "HAD"),
        (ERR, "XDS-CDA-PRACTICE"),
    ),
    (
        "unknown-confidentiality",
        lambda s: set_code(cda_entry(s), x.DE_CONFIDENTIALITY_CODE, "SECRET", "1.2.250.1.213.1.1.4.13", index=1),
        (ERR, "XDS-CONFIDENTIALITY"),
    ),
    (
        "missing-nrv",
        lambda s: remove(classifications(cda_entry(s), x.DE_CONFIDENTIALITY_CODE)[0]),
        (ERR, "XDS-CONFIDENTIALITY"),
    ),
    (
        "two-nrv",
        lambda s: set_code(cda_entry(s), x.DE_CONFIDENTIALITY_CODE, "R", x.CONFIDENTIALITY_HL7, index=1),
        (ERR, "XDS-CONFIDENTIALITY"),
    ),
    (
        "confidentiality-differs-from-cda",
        lambda s: set_code(cda_entry(s), x.DE_CONFIDENTIALITY_CODE, "R"),
        (ERR, "XDS-CDA-CONFIDENTIALITY"),
    ),
    ("hash-mismatch", rewrite_hash, ("XDSRepositoryMetadataError", "XDS-HASH")),
    ("hash-not-sha1", lambda s: set_slot(cda_entry(s), "hash", "abc"), ("XDSRepositoryMetadataError", "XDS-HASH")),
    ("size-mismatch", lambda s: set_slot(cda_entry(s), "size", "12"), ("XDSRepositoryMetadataError", "XDS-SIZE")),
    (
        "unique-id-differs-from-cda",
        lambda s: identifier(cda_entry(s), x.DE_UNIQUE_ID).set("value", CDA_ID + ".9"),
        ("XDSDocumentUniqueIdError", "XDS-CDA-UNIQUEID"),
    ),
    (
        "duplicate-unique-id",
        lambda s: identifier(signature_entry(s), x.DE_UNIQUE_ID).set("value", CDA_ID),
        ("XDSRegistryDuplicateUniqueIdInMessage", "XDS-UNIQUEID"),
    ),
    (
        "unique-id-not-oid",
        lambda s: identifier(cda_entry(s), x.DE_UNIQUE_ID).set("value", "DOC-1"),
        (ERR, "XDS-UNIQUEID"),
    ),
    ("missing-document", drop_document, ("XDSMissingDocument", "XDS-DOCUMENT")),
    ("extra-document", add_document, ("XDSMissingDocumentMetadata", "XDS-DOCUMENT")),
    (
        "author-without-idnps",
        lambda s: author_slot(cda_entry(s), x.DE_AUTHOR, "authorPerson", "^HOSPITALIER^Jeanne"),
        (ERR, "XDS-AUTHORPERSON"),
    ),
    (
        "author-rpps-bad-luhn",
        lambda s: author_slot(
            cda_entry(s),
            x.DE_AUTHOR,
            "authorPerson",
            "899910000028^HOSPITALIER^Jeanne^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS",
        ),
        (ERR, "XDS-AUTHORPERSON"),
    ),
    (
        "author-without-ps-oid",
        lambda s: author_slot(
            submission_set(s), x.SS_AUTHOR, "authorPerson", "899910000027^HOSPITALIER^Jeanne^^^^^^&1.2.3&ISO^D^^^IDNPS"
        ),
        (ERR, "XDS-AUTHORPERSON"),
    ),
    (
        "institution-without-structure-oid",
        lambda s: author_slot(cda_entry(s), x.DE_AUTHOR, "authorInstitution", "CHU^^^^^&1.2.3&ISO^IDNST^^^1990000001"),
        (ERR, "XDS-AUTHORINSTITUTION"),
    ),
    (
        "specialty-not-coded",
        lambda s: author_slot(cda_entry(s), x.DE_AUTHOR, "authorSpecialty", "Cardiologue"),
        (ERR, "XDS-AUTHORSPECIALTY"),
    ),
    (
        "legal-authenticator-missing",
        lambda s: remove(slot(cda_entry(s), "legalAuthenticator")),
        (ERR, "XDS-CARDINALITY"),
    ),
    ("time-iso-format", lambda s: set_slot(cda_entry(s), "creationTime", "2024-01-15T09:30:00Z"), (ERR, "XDS-TIME")),
    ("time-with-offset", lambda s: set_slot(cda_entry(s), "creationTime", "20240115103000+0100"), (ERR, "XDS-TIME")),
    ("time-impossible-date", lambda s: set_slot(cda_entry(s), "serviceStartTime", "20240231083000"), (ERR, "XDS-TIME")),
    (
        "time-local-not-utc",
        lambda s: set_slot(cda_entry(s), "creationTime", "20240115103000"),
        (ERR, "XDS-CDA-CREATIONTIME"),
    ),
    (
        "service-start-differs",
        lambda s: set_slot(cda_entry(s), "serviceStartTime", "20240110083000"),
        (ERR, "XDS-CDA-SERVICETIME"),
    ),
    ("stop-before-start", lambda s: set_slot(cda_entry(s), "serviceStopTime", "20240101000000"), (ERR, "XDS-TIME")),
    ("creation-time-missing", lambda s: remove(slot(cda_entry(s), "creationTime")), (ERR, "XDS-CARDINALITY")),
    (
        "two-creation-times",
        lambda s: set_slot(cda_entry(s), "creationTime", "20240115093000", "20240115093001"),
        (ERR, "XDS-CARDINALITY"),
    ),
    ("language-not-a-tag", lambda s: set_slot(cda_entry(s), "languageCode", "french"), (ERR, "XDS-LANGUAGE")),
    ("language-differs-from-cda", lambda s: set_slot(cda_entry(s), "languageCode", "en-GB"), (ERR, "XDS-CDA-LANGUAGE")),
    (
        "title-differs-from-cda",
        lambda s: cda_entry(s).find("rim:Name/rim:LocalizedString", NS).set("value", "Autre titre"),
        (ERR, "XDS-CDA-TITLE"),
    ),
    (
        "source-patient-id-other-ins",
        lambda s: set_slot(cda_entry(s), "sourcePatientId", f"{OTHER_INS}^^^&1.2.250.1.213.1.4.10&ISO"),
        (ERR, "XDS-SOURCEPATIENTID"),
    ),
    (
        "source-patient-info-bad-gender",
        lambda s: set_slot(
            cda_entry(s),
            "sourcePatientInfo",
            f"PID-3|{INS}^^^&1.2.250.1.213.1.4.10&ISO",
            "PID-5|A^B",
            "PID-7|19800115",
            "PID-8|X",
        ),
        (ERR, "XDS-SOURCEPATIENTINFO"),
    ),
    (
        "source-patient-info-no-birth-date",
        lambda s: set_slot(cda_entry(s), "sourcePatientInfo", "PID-5|A^B", "PID-8|F"),
        (ERR, "XDS-SOURCEPATIENTINFO"),
    ),
    (
        "cda-declared-pdf",
        lambda s: cda_entry(s).set("mimeType", "application/pdf"),
        ("XDSRepositoryMetadataError", "XDS-MIMETYPE"),
    ),
    ("on-demand-entry", lambda s: cda_entry(s).set("objectType", x.ON_DEMAND_DOCUMENT_ENTRY), (ERR, "XDS-OBJECTTYPE")),
    ("missing-has-member", lambda s: remove(associations(s)[0]), (ERR, "XDS-ASSOCIATION")),
    (
        "has-member-not-original",
        lambda s: set_slot(associations(s)[0], "SubmissionSetStatus", "Reference"),
        (ERR, "XDS-ASSOCIATION"),
    ),
    (
        "content-type-wrong-system",
        lambda s: set_code(submission_set(s), x.SS_CONTENT_TYPE_CODE, "07", "1.2.3"),
        (ERR, "XDS-CONTENTTYPE"),
    ),
    (
        "source-id-not-oid",
        lambda s: identifier(submission_set(s), x.SS_SOURCE_ID).set("value", "LPS-TEST"),
        (ERR, "XDS-SOURCEID"),
    ),
    ("submission-time-missing", lambda s: remove(slot(submission_set(s), "submissionTime")), (ERR, "XDS-CARDINALITY")),
    (
        "unknown-association",
        lambda s: associations(s)[0].set("associationType", "urn:example:Knows"),
        (ERR, "XDS-ASSOCIATION"),
    ),
]


# Findings a mutation legitimately brings along with its own (the signature covers uniqueIds, a stop
# time before the start also differs from the CDA...): anything else would be a spurious finding.
CASCADES: dict[str, set[tuple[str, str]]] = {
    "wrong-scheme-uuid": {(ERR, "XDS-CARDINALITY")},
    "unique-id-differs-from-cda": {(ERR, "XDS-SIGNATURE-MANIFEST")},
    "unique-id-not-oid": {("XDSDocumentUniqueIdError", "XDS-CDA-UNIQUEID"), (ERR, "XDS-SIGNATURE-MANIFEST")},
    "stop-before-start": {(ERR, "XDS-CDA-SERVICETIME")},
}


@pytest.fixture(scope="module")
def pristine(pki: Pki) -> Submission:
    return submit(pki, confidentiality_extra=("MASQUE_PS",))


def fresh(pristine: Submission) -> Submission:
    return replace(pristine, request=copy.deepcopy(pristine.request), documents=dict(pristine.documents))


def test_reference_submission_has_no_finding(pki: Pki, pristine: Submission) -> None:
    assert validate(pki, pristine) == []


def test_metadata_is_derived_from_the_cda_header(pristine: Submission) -> None:
    entry = cda_entry(pristine)
    values = {
        s.get("name"): [v.text for v in s.iterfind("rim:ValueList/rim:Value", NS)]
        for s in entry.iterfind("rim:Slot", NS)
    }
    assert values["creationTime"] == ["20240115093000"]  # 10:30 +01:00 is 09:30 UTC
    assert values["serviceStartTime"] == ["20240110073000"]
    assert values["sourcePatientInfo"][:3] == [
        f"PID-3|{INS}^^^&1.2.250.1.213.1.4.10&ISO",
        "PID-5|TESTSEGUR^CAMILLE^^^^^L",
        "PID-7|19800115",
    ]
    assert identifier(entry, x.DE_UNIQUE_ID).get("value") == CDA_ID
    assert classifications(entry, x.DE_CLASS_CODE)[0].get("nodeRepresentation") == "10"
    assert entry.find("rim:Name/rim:LocalizedString", NS).get("value") == "Lettre de liaison à la sortie"
    assert pristine.entry_uuids[CDA_ID] == entry.get("id")


@pytest.mark.parametrize(("mutation", "expected"), [pytest.param(m, e, id=name) for name, m, e in MUTATIONS])
def test_each_broken_rule_is_reported(
    pki: Pki, pristine: Submission, mutation: Mutation, expected: tuple[str, str]
) -> None:
    submission = fresh(pristine)
    mutation(submission)
    found = validate(pki, submission)
    assert expected in errors(found), [f.message for f in found]
    assert all(finding.location for finding in found)


def test_extra_confidentiality_codes_are_accepted(pki: Pki) -> None:
    submission = submit(pki, confidentiality_extra=("MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"))
    codes = [c.get("nodeRepresentation") for c in classifications(cda_entry(submission), x.DE_CONFIDENTIALITY_CODE)]
    assert codes == ["N", "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"]
    assert validate(pki, submission) == []


def test_replacement_points_at_an_entry_uuid(pki: Pki) -> None:
    submission = submit(pki, replaces="urn:uuid:0f4a9f5e-6a1e-4c43-9c1d-1f3b2a4c5d6e")
    assert validate(pki, submission) == []
    rplc = next(a for a in associations(submission) if a.get("associationType") == x.RPLC)
    rplc.set("targetObject", "Document01")
    assert ("XDSRegistryMetadataError", "XDS-RPLC") in errors(validate(pki, submission))


def test_production_oids_are_a_configuration(pki: Pki) -> None:
    production = InsOids.production()
    submission = submit(pki, synthetic_cda(ins_oid=OID_INS_NIR), oids=production)
    assert validate(pki, submission, oids=production) == []
    assert ("XDSRegistryMetadataError", "XDS-INS-ENVIRONMENT") in errors(validate(pki, submission))


def test_a_cda_without_ins_cannot_be_submitted(pki: Pki) -> None:
    with pytest.raises(ValueError, match="no INS"):
        submit(pki, synthetic_cda(ins_oid="1.2.250.1.999.3"))


def test_not_a_submission_is_one_structural_finding() -> None:
    findings = validate_submission(etree.fromstring(b"<request/>"), {})
    assert [(f.rule, check_of(f)) for f in findings] == [("XDSRegistryMetadataError", "XDS-STRUCTURE")]


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "cisis").is_dir(), reason=f"CI-SIS material not found in {SHARED}")
def test_ans_example_ldl_ses_round_trips(pki: Pki) -> None:
    cda = (SHARED / "cisis" / "ExemplesCDA" / "LDL-SES_2022.01.xml").read_bytes()
    findings = validate(pki, submit(pki, cda))
    assert errors(findings) == set(), [f.message for f in findings]
