"""The submission-set signature (XAdES, IHE DSG) the DMP requires with every submission.

The reference SUT signs a manifest of the submission's documents with the test PKI's ``sign``
certificate; the validator must accept it and catch each way it can be wrong: a document
changed after signing, a manifest changed after signing, a signer outside the trusted CA, a
signature of another submission, no signature at all. Metadata hash/size are kept in step with
the tampered bytes so that only the signature can notice.
"""

from __future__ import annotations

import hashlib

import pytest
from lxml import etree
from test_xds_metadata import (
    CHU,
    LDL_SES,
    NS,
    SOURCE_ID,
    SUBMITTER,
    associations,
    cda_entry,
    errors,
    fresh,
    set_code,
    set_slot,
    signature_entry,
    submit,
    synthetic_cda,
    validate,
)

from segur.pki import Pki
from segur.reference_sut.xds_metadata import DocumentToSubmit, Submission, build_submission
from segur.xds import document_uri, validate_submission
from segur.xds import ebrim as x

ERR = "XDSRegistryMetadataError"


@pytest.fixture(scope="module")
def signed(pki: Pki) -> Submission:
    return submit(pki)


def replace_bytes(submission: Submission, entry: etree._Element, data: bytes) -> None:
    """New bytes for a document, with hash and size updated as a careful attacker would."""
    submission.documents[entry.get("id")] = data
    set_slot(entry, "hash", hashlib.sha1(data).hexdigest())
    set_slot(entry, "size", str(len(data)))


def test_signature_verifies(pki: Pki, signed: Submission) -> None:
    assert validate(pki, signed) == []


def test_signature_is_a_dsg_manifest_of_the_submission(signed: Submission) -> None:
    signature = etree.fromstring(signed.documents[signature_entry(signed).get("id")])
    uris = [reference.get("URI") for reference in signature.iterfind(".//ds:Manifest/ds:Reference", NS)]
    assert uris == [document_uri("1.2.250.1.999.1.1.20240115.1"), document_uri(signed.submission_set_unique_id)]
    assert signature.find(".//xades:SignedProperties//xades:CommitmentTypeIndication", NS) is not None
    canonicalization = signature.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm")
    assert canonicalization == "http://www.w3.org/2006/12/xml-c14n11#WithComments"


def test_tampered_document_is_caught(pki: Pki, signed: Submission) -> None:
    submission = fresh(signed)
    entry = cda_entry(submission)
    replace_bytes(submission, entry, submission.documents[entry.get("id")].replace(b"sans suite", b"avec suite"))
    assert errors(validate(pki, submission)) == {(ERR, "XDS-SIGNATURE-DIGEST")}


def test_tampered_manifest_is_caught(pki: Pki, signed: Submission) -> None:
    submission = fresh(signed)
    entry = signature_entry(submission)
    signature = etree.fromstring(submission.documents[entry.get("id")])
    digest = signature.find(".//ds:Manifest/ds:Reference/ds:DigestValue", NS)
    digest.text = "A" + digest.text[1:] if digest.text[0] != "A" else "B" + digest.text[1:]
    replace_bytes(submission, entry, etree.tostring(signature))
    assert errors(validate(pki, submission)) == {(ERR, "XDS-SIGNATURE-INVALID")}


def test_signer_outside_the_trusted_ca_is_caught(pki: Pki) -> None:
    outsider = pki.untrusted
    submission = build_submission(
        [DocumentToSubmit(synthetic_cda(), LDL_SES)],
        author=SUBMITTER,
        institution=CHU,
        source_id=SOURCE_ID,
        signing_key_pem=outsider.key("insi-auto").read_bytes(),
        signing_cert_pem=outsider.cert("insi-auto").read_bytes(),
    )
    assert errors(validate(pki, submission)) == {(ERR, "XDS-SIGNATURE-UNTRUSTED")}
    # Without a trusted CA only integrity is checked: the same signature is then accepted.
    assert validate_submission(submission.request, submission.documents) == []


def test_missing_signature_document_is_caught(pki: Pki, signed: Submission) -> None:
    submission = fresh(signed)
    entry = signature_entry(submission)
    entry_id = entry.get("id")
    entry.getparent().remove(entry)
    submission.request.remove(submission.request.find(f"xdsb:Document[@id='{entry_id}']", NS))
    del submission.documents[entry_id]
    member = next(a for a in associations(submission) if a.get("targetObject") == entry_id)
    member.getparent().remove(member)
    assert errors(validate(pki, submission)) == {(ERR, "XDS-SIGNATURE-MISSING")}


def test_signature_of_another_submission_is_caught(pki: Pki, signed: Submission) -> None:
    other = submit(pki, synthetic_cda(unique_id="1.2.250.1.999.1.1.20240115.2"))
    submission = fresh(signed)
    replace_bytes(submission, signature_entry(submission), other.documents[signature_entry(other).get("id")])
    messages = [f.message for f in validate(pki, submission)]
    assert errors(validate(pki, submission)) == {(ERR, "XDS-SIGNATURE-MANIFEST")}, messages
    assert any("submission set" in message for message in messages)


def test_signature_that_is_not_xml_is_caught(pki: Pki, signed: Submission) -> None:
    submission = fresh(signed)
    replace_bytes(submission, signature_entry(submission), b"%PDF-1.7 not a signature")
    assert errors(validate(pki, submission)) == {(ERR, "XDS-SIGNATURE-INVALID")}


def test_signature_entry_codes_are_checked(pki: Pki, signed: Submission) -> None:
    submission = fresh(signed)
    set_code(signature_entry(submission), x.DE_FORMAT_CODE, "urn:ihe:iti:dsg:detached:2014", "1.3.6.1.4.1.19376.1.2.3")
    assert errors(validate(pki, submission)) == set()  # DSG's own formatCode is in J60 too
    set_code(signature_entry(submission), x.DE_TYPE_CODE, "E1762", "1.2.3")
    assert (ERR, "XDS-SIGNATURE-METADATA") in errors(validate(pki, submission))
