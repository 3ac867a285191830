"""The DMP mock over the wire, driven by the reference SUT's DMP client as a DPI would drive the real one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from dmp_requests import CLOSED, DOMINIQUE, DUPONT, NO_DMP, OPPOSED, PHARMACIST, ZOE, cda, client, submission
from lxml import etree

from conftest import RunningDmp
from segur.ins import OID_INS_NIR_TEST
from segur.reference_sut.dmp_client import DELETED, DEPRECATED, DmpClient, DmpError

N1_FORMAT = "urn:ihe:iti:xds-sd:pdf:2008"


@pytest.fixture
def dpi(fresh_dmp: RunningDmp) -> Iterator[DmpClient]:
    with_client = client(fresh_dmp)
    yield with_client
    with_client.close()


def publish(running: RunningDmp, dpi: DmpClient, ins: str = DOMINIQUE, **cda_changes: object) -> bytes:
    document = cda(ins, **cda_changes)
    lot = submission(running.pki, document, format_code=N1_FORMAT)
    dpi.provide_and_register(lot.request, lot.documents, ins, OID_INS_NIR_TEST)
    return document


def test_td02_gives_status_authorisation_and_the_dmp_identity(dpi: DmpClient) -> None:
    status = dpi.check_dmp(DOMINIQUE, OID_INS_NIR_TEST)
    assert (status.found, status.status, status.authorisation) == (True, "ACTIF", "VALIDE")
    assert (status.family, status.given, status.gender, status.birth_date) == (
        "ADRTROIS",
        ["DOMINIQUE"],
        "M",
        "19820512",
    )
    assert dpi.check_dmp(DUPONT, OID_INS_NIR_TEST).authorisation == "NON_EXISTE"
    assert dpi.check_dmp(CLOSED, OID_INS_NIR_TEST).status == "FERME"
    assert dpi.check_dmp(OPPOSED, OID_INS_NIR_TEST).opposition
    assert not dpi.check_dmp(NO_DMP, OID_INS_NIR_TEST).found


def test_td03_adds_then_removes_an_authorisation(dpi: DmpClient) -> None:
    assert dpi.set_authorization(ZOE, OID_INS_NIR_TEST, "AJOUT") == "OK"
    assert dpi.check_dmp(ZOE, OID_INS_NIR_TEST).authorisation == "VALIDE"
    assert dpi.set_authorization(ZOE, OID_INS_NIR_TEST, "SUPPRESSION") == "OK"
    assert dpi.check_dmp(DUPONT, OID_INS_NIR_TEST).authorisation == "NON_EXISTE"
    assert dpi.set_authorization(OPPOSED, OID_INS_NIR_TEST, "AJOUT") == "REFUSE"


def test_a_published_document_is_found_and_retrieved_byte_for_byte(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    since = fresh_dmp.last_seq()
    document = publish(fresh_dmp, dpi)
    entries = dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST)
    cda_entry = next(entry for entry in entries if entry.type_code == "11490-0")
    retrieved = dpi.retrieve(DOMINIQUE, OID_INS_NIR_TEST, cda_entry.unique_id)
    assert hashlib.sha256(retrieved).digest() == hashlib.sha256(document).digest()
    records = fresh_dmp.journal_since(since)
    assert [record["operation"] for record in records] == ["iti41", "iti18", "iti43"]
    feed = records[0]
    assert feed["outcome"]["status"] == "Success"
    assert not [f for f in feed["outcome"]["findings"] if f["severity"] == "error"]
    assert feed["correlation"]["ins"] == DOMINIQUE
    assert feed["correlation"]["ps_national_id"] == "899910000027"


def test_the_registry_refuses_what_the_dmp_refuses(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    for ins, code in ((CLOSED, "DMPClosed"), (OPPOSED, "DMPAccessDenied"), (NO_DMP, "XDSUnknownPatientId")):
        with pytest.raises(DmpError) as refused:
            publish(fresh_dmp, dpi, ins)
        assert code in refused.value.codes


def test_a_uniqueid_registered_twice_is_refused(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    publish(fresh_dmp, dpi)
    with pytest.raises(DmpError) as refused:
        publish(fresh_dmp, dpi)
    assert "XDSDocumentUniqueIdError" in refused.value.codes


def test_a_hash_that_does_not_match_the_document_is_refused(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    lot = submission(fresh_dmp.pki, cda(), format_code=N1_FORMAT)
    document_id = next(key for key, data in lot.documents.items() if b"ClinicalDocument" in data[:4096])
    lot.documents[document_id] = lot.documents[document_id].replace(b"</ClinicalDocument>", b"</ClinicalDocument> ")
    with pytest.raises(DmpError) as refused:
        dpi.provide_and_register(lot.request, lot.documents, DOMINIQUE, OID_INS_NIR_TEST)
    assert "XDSRepositoryMetadataError" in refused.value.codes  # ITI TF-3: the repository's own hash differs
    assert "[XDS-HASH]" in str(refused.value)


def test_consultation_needs_an_authorisation_unless_bris_de_glace(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    publish(fresh_dmp, dpi, DUPONT)  # feeding needs no authorisation (DMP/CONF.05)
    with pytest.raises(DmpError) as refused:
        dpi.find_documents(DUPONT, OID_INS_NIR_TEST)
    assert refused.value.codes == ["DMPAccessDenied"]
    assert dpi.find_documents(DUPONT, OID_INS_NIR_TEST, purpose="bris_de_glace")


def test_opposition_blocks_consultation_even_in_emergency(dpi: DmpClient) -> None:
    for purpose in ("normal", "bris_de_glace"):
        with pytest.raises(DmpError) as refused:
            dpi.find_documents(OPPOSED, OID_INS_NIR_TEST, purpose=purpose)
        assert refused.value.codes == ["DMPAccessDenied"]


def test_a_vihf_for_another_patient_is_a_fault(fresh_dmp: RunningDmp) -> None:
    other = client(fresh_dmp, patient_ins=ZOE)  # every VIHF names ZOE whatever the request is about
    since = fresh_dmp.last_seq()
    with pytest.raises(DmpError) as refused:
        other.check_dmp(DOMINIQUE, OID_INS_NIR_TEST)
    other.close()
    assert refused.value.codes == ["DMPVihfPatientMismatch"]
    record = fresh_dmp.journal_since(since)[0]
    assert record["outcome"]["fault"] == "DMPVihfPatientMismatch"
    assert "VIHF-RESOURCE-PATIENT" in {finding["rule"] for finding in record["outcome"]["findings"]}


def test_an_unsigned_vihf_is_a_fault_with_its_findings_journaled(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    signed = dpi.vihf

    def unsigned(ins: str, oid: str, purpose: str) -> etree._Element:
        security = signed(ins, oid, purpose)
        for signature in security.iter("{http://www.w3.org/2000/09/xmldsig#}Signature"):
            signature.getparent().remove(signature)
        return security

    dpi.vihf = unsigned
    since = fresh_dmp.last_seq()
    with pytest.raises(DmpError) as refused:
        dpi.check_dmp(DOMINIQUE, OID_INS_NIR_TEST)
    assert refused.value.codes == ["DMPInvalidVihf"]
    (record,) = fresh_dmp.journal_since(since)
    assert record["outcome"]["fault"] == "DMPInvalidVihf"
    assert any(finding["rule"].startswith("VIHF-") for finding in record["outcome"]["findings"])


def test_masking_hides_a_document_from_other_professionals_but_not_its_author(
    fresh_dmp: RunningDmp, dpi: DmpClient
) -> None:
    from segur.reference_sut.xds_metadata import build_update

    publish(fresh_dmp, dpi)
    entry = next(e for e in dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST) if e.type_code == "11490-0")
    update = build_update(entry.metadata, confidentiality_extra=["MASQUE_PS"], **_submitter())
    dpi.update(update, DOMINIQUE, OID_INS_NIR_TEST)
    assert entry.unique_id in {e.unique_id for e in dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST)}
    pharmacist = client(fresh_dmp, PHARMACIST)
    assert entry.unique_id not in {e.unique_id for e in pharmacist.find_documents(DOMINIQUE, OID_INS_NIR_TEST)}
    pharmacist.close()
    masked = next(e for e in dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST) if e.unique_id == entry.unique_id)
    assert "MASQUE_PS" in masked.confidentiality


def test_replacement_deprecates_the_replaced_document(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    publish(fresh_dmp, dpi)
    original = next(e for e in dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST) if e.type_code == "11490-0")
    document = cda(document_id="1.2.250.1.999.1.1.2.2", version_number=2)
    lot = submission(fresh_dmp.pki, document, format_code=N1_FORMAT, replaces=original.entry_uuid)
    dpi.provide_and_register(lot.request, lot.documents, DOMINIQUE, OID_INS_NIR_TEST)
    deprecated = dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST, statuses=[DEPRECATED])
    assert [e.unique_id for e in deprecated if e.type_code == "11490-0"] == [original.unique_id]


def test_deletion_removes_the_document_from_queries_and_retrieval(fresh_dmp: RunningDmp, dpi: DmpClient) -> None:
    from segur.reference_sut.xds_metadata import build_status_change

    publish(fresh_dmp, dpi)
    entry = next(e for e in dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST) if e.type_code == "11490-0")
    dpi.update(build_status_change(entry.metadata, DELETED, **_submitter()), DOMINIQUE, OID_INS_NIR_TEST)
    assert entry.unique_id not in {e.unique_id for e in dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST)}
    with pytest.raises(DmpError) as refused:
        dpi.retrieve(DOMINIQUE, OID_INS_NIR_TEST, entry.unique_id)
    assert refused.value.codes == ["XDSDocumentUniqueIdError"]


def _submitter() -> dict[str, object]:
    from segur.reference_sut.xds_metadata import Author, Institution

    return {
        "author": Author("899910000027", "MEDECIN-TEST", "HOSPITALIER"),
        "institution": Institution("CENTRE HOSPITALIER DE TEST SEGUR", "1990000001"),
        "source_id": "1.2.250.1.999.2",
    }
