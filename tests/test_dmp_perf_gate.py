"""What the DMP gate's shortcuts may not change: a remembered certificate chain is trusted only where it was
validated (same CA, same validity window), and a CDA read once for both layers gives the findings it gave
when each layer parsed it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dmp_requests import DOMINIQUE, cda, submission, vihf_factory
from lxml import etree

import segur.cda
import segur.xds.certificates
import segur.xds.metadata
from segur.ins import OID_INS_NIR_TEST
from segur.mocks.dmp import validation_pool
from segur.mocks.dmp.validation_pool import gate_findings
from segur.pki import Pki
from segur.reference_sut.xds_metadata import Submission
from segur.validation import Finding, parse_untrusted
from segur.vihf import verify_vihf
from segur.xds import InsOids, check_of, signature, validate_submission
from segur.xds.certificates import UntrustedCertificate, verify_chain

LDL_SES = "urn:asip:ci-sis:ldl-ses:2017"
SECOND = dt.timedelta(seconds=1)


def signer(pki: Pki) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.cert("sign").read_bytes())


def rules(findings: list[Finding]) -> set[str]:
    return {f"{finding.rule} {check_of(finding)}".strip() for finding in findings if finding.severity == "error"}


def test_a_remembered_chain_is_refused_outside_its_validity(pki: Pki) -> None:
    certificate, ca = signer(pki), pki.ca_cert.read_bytes()
    verify_chain([certificate], ca, dt.datetime.now(dt.UTC))
    for instant in (certificate.not_valid_after_utc + SECOND, certificate.not_valid_before_utc - SECOND):
        with pytest.raises(UntrustedCertificate):
            verify_chain([certificate], ca, instant)
    verify_chain([certificate], ca, certificate.not_valid_after_utc)  # the last valid instant still is


def test_a_remembered_chain_is_refused_under_another_ca(pki: Pki) -> None:
    certificate = signer(pki)
    verify_chain([certificate], pki.ca_cert.read_bytes(), dt.datetime.now(dt.UTC))
    with pytest.raises(UntrustedCertificate):
        verify_chain([certificate], pki.untrusted.ca_cert.read_bytes(), dt.datetime.now(dt.UTC))


def test_a_revoked_signer_is_refused_even_after_its_chain_was_trusted(pki: Pki) -> None:
    """Revocation is looked up at every call: the cache remembers paths, never that a certificate is unrevoked."""
    revoked = x509.load_pem_x509_certificate(pki.cert("sign-revoked").read_bytes())
    now = dt.datetime.now(dt.UTC)
    verify_chain([revoked], pki.ca_cert.read_bytes(), now)  # a CA without its CRL cannot know
    with pytest.raises(UntrustedCertificate, match="revoked"):
        verify_chain([revoked], pki.trust_bundle(), now)
    verify_chain([signer(pki)], pki.trust_bundle(), now)
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    assert crl.next_update_utc is not None
    stale = crl.next_update_utc + SECOND
    if stale < signer(pki).not_valid_after_utc:
        with pytest.raises(UntrustedCertificate, match="revocation unknown"):
            verify_chain([signer(pki)], pki.trust_bundle(), stale)


def test_a_crl_no_trusted_ca_signed_is_a_configuration_error(pki: Pki) -> None:
    """A CRL naming the test CA as issuer but signed by another key: refused, never read as "nothing revoked"."""
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    now = dt.datetime.now(dt.UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    foreign = pki.ca_cert.read_bytes() + forged.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(ValueError, match="not signed by a trusted CA"):
        verify_chain([signer(pki)], foreign, dt.datetime.now(dt.UTC))


def test_a_vihf_signed_by_a_revoked_certificate_has_no_claims(pki: Pki) -> None:
    header = etree.tostring(vihf_factory(pki, signer="sign-revoked")(DOMINIQUE, OID_INS_NIR_TEST, "normal"))
    claims, findings = verify_vihf(header, trusted_ca_pem=pki.trust_bundle())
    assert claims is None
    assert [f.rule for f in findings] == ["VIHF-CERT-UNTRUSTED"] and "revoked" in findings[0].message


def test_a_chain_is_validated_once(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[object] = []
    real = segur.xds.certificates.verification.PolicyBuilder

    def counting() -> Any:
        builds.append(None)
        return real()

    monkeypatch.setattr(segur.xds.certificates.verification, "PolicyBuilder", counting)
    ca = pki.ca_cert.read_bytes() + b"\n"  # anchors of their own, so that no other test has validated this chain
    for _ in range(3):
        verify_chain([signer(pki)], ca, dt.datetime.now(dt.UTC))
    assert len(builds) == 1


def test_a_vihf_signer_trusted_before_is_refused_once_its_certificate_expired(pki: Pki) -> None:
    header = etree.tostring(vihf_factory(pki)(DOMINIQUE, OID_INS_NIR_TEST, "normal"))
    claims, findings = verify_vihf(header, trusted_ca_pem=pki.ca_cert.read_bytes())
    assert claims is not None and not [f for f in findings if f.severity == "error"]
    later = signer(pki).not_valid_after_utc + SECOND
    claims, findings = verify_vihf(header, trusted_ca_pem=pki.ca_cert.read_bytes(), now=later)
    assert claims is None
    assert {finding.rule for finding in findings} == {"VIHF-CERT-UNTRUSTED"}


def test_a_lot_signer_trusted_before_is_refused_once_its_certificate_expired(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = submission(pki, cda(), format_code=LDL_SES)
    assert validate(pki, lot) == set()
    expiry = signer(pki).not_valid_after_utc

    class AfterExpiry(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> AfterExpiry:  # type: ignore[override]
            return cls.fromtimestamp((expiry + SECOND).timestamp(), tz)

    monkeypatch.setattr(signature, "datetime", AfterExpiry)
    assert validate(pki, lot) == {"XDSRegistryMetadataError XDS-SIGNATURE-UNTRUSTED"}


def validate(pki: Pki, lot: Submission) -> set[str]:
    return rules(validate_submission(lot.request, lot.documents, trusted_ca_pem=pki.ca_cert.read_bytes()))


def gate(pki: Pki, lot: Submission) -> list[Finding]:
    security = etree.tostring(vihf_factory(pki)(DOMINIQUE, OID_INS_NIR_TEST, "normal"))
    claims, findings, submission_findings = gate_findings(
        security, pki.ca_cert.read_bytes(), (etree.tostring(lot.request), lot.documents, InsOids())
    )
    assert claims is not None, findings
    return submission_findings


def counting_parses(monkeypatch: pytest.MonkeyPatch, data: bytes) -> list[bytes]:
    """Every parse of ``data`` by the gate's modules, whichever of them does it."""
    parsed: list[bytes] = []

    def parse(text: bytes) -> etree._Element:
        if text == data:
            parsed.append(text)
        return parse_untrusted(text)

    for module in (validation_pool, segur.xds.metadata, segur.cda):
        monkeypatch.setattr(module, "parse_untrusted", parse)
    return parsed


def test_each_cda_is_parsed_once_for_the_xds_and_cda_checks(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    document = cda()
    lot = submission(pki, document, format_code=LDL_SES)
    (entry_id,) = [key for key, data in lot.documents.items() if data == document]
    changed = document.replace(b"<title>", b"<title>Autre ", 1)  # the header now contradicts the metadata
    lot.documents[entry_id] = changed
    parsed = counting_parses(monkeypatch, changed)
    findings = gate(pki, lot)
    assert len(parsed) == 1
    assert "XDSRegistryMetadataError XDS-CDA-TITLE" in rules(findings)
    xds = validate_submission(
        parse_untrusted(etree.tostring(lot.request)), lot.documents, trusted_ca_pem=pki.ca_cert.read_bytes()
    )
    layers = segur.cda.validate_cda(changed)
    assert findings == xds + [
        Finding(f"InvalidDocumentContent:{f.rule}", f.severity, f"document {entry_id}: {f.message}", f.location)
        for f in layers
    ]


@pytest.mark.parametrize(
    "spoil",
    [lambda data: data[: len(data) // 2], lambda data: data.replace(b"?>", b"?><!DOCTYPE x []>", 1)],
    ids=["truncated", "doctype"],
)
def test_an_unreadable_cda_is_still_reported_by_both_layers(pki: Pki, spoil: Callable[[bytes], bytes]) -> None:
    document = cda()
    lot = submission(pki, document, format_code=LDL_SES)
    (entry_id,) = [key for key, data in lot.documents.items() if data == document]
    lot.documents[entry_id] = spoil(document)
    found = rules(gate(pki, lot))
    assert "XDSRegistryMetadataError XDS-CDA" in found
    assert found & {"InvalidDocumentContent:CDA-XML-001", "InvalidDocumentContent:CDA-XML-002"}
