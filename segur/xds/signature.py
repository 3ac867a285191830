"""Verification of the submission-set signature ("signature du lot de soumission"), IHE DSG.

The DMP requires each submission to carry, as a document of its own, a XAdES signature whose
``ds:Manifest`` lists every other document of the submission with its digest, plus a reference
to the submission set's uniqueId (ITI TF-3 §5.5.3.1). Facts and choices:

* researched: references are URIs built from the documents' uniqueIds (``urn:oid:<uniqueId>``),
  the manifest covers every document but the signature itself, the submission set reference
  has a "zero" digest; manifest digests cover the exact octets of each document (no transform);
* modelled: a uniqueId with an extension (``root^ext``) is written ``urn:oid:root%5Eext`` (DSG
  leaves the encoding to the affinity domain and the DMP guide is not public); the "zero" digest
  is written ``AA==`` (one zero octet) because a literal ``0`` is not valid base64 and
  XML-DSig schema validation rejects it; the enveloping form (manifest inside ``ds:Object``);
  XAdES baseline-B, not the X-L form DSG asks for, since the harness has no TSA nor OCSP.

Cryptography and canonicalisation are signxml's, the signer's certificate chain is checked by
``segur.xds.certificates`` (once per chain) before signxml verifies the signature with that
certificate; this module only decides what must be signed and compares the manifest with the
documents actually received.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree
from signxml.algorithms import DigestAlgorithm, digest_algorithm_implementations
from signxml.exceptions import InvalidCertificate, InvalidInput, InvalidSignature
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from segur.validation import Finding, MalformedXml, UnsafeXml, parse_untrusted
from segur.xds.certificates import UntrustedCertificate, verify_chain
from segur.xds.ebrim import NS

_DS = f"{{{NS['ds']}}}"
_CONFIG = XAdESSignatureConfiguration(location="./", expect_references=True)
ERROR_CODE = "XDSRegistryMetadataError"
"""Modelled: the DMP's own code for a bad signature is not public, so the generic metadata error is used."""


def document_uri(unique_id: str) -> str:
    """The manifest URI of a document or submission set uniqueId."""
    return "urn:oid:" + quote(unique_id, safe=".")


def _embedded_certificates(signature: etree._Element) -> list[x509.Certificate] | None:
    """The certificates of ``KeyInfo/X509Data`` in their order; None when one cannot be read."""
    texts = [el.text or "" for el in signature.iterfind("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    try:
        return [x509.load_der_x509_certificate(base64.b64decode("".join(text.split()))) for text in texts]
    except (ValueError, binascii.Error):
        return None


def _trusted_signer(certificates: list[x509.Certificate], trusted_ca_pem: bytes) -> x509.Certificate:
    """The signing certificate once it may sign (digitalSignature) and chains to a trusted CA now.

    The chain may come leaf first or leaf last, as signxml's own chain check accepts.
    """
    orders = [certificates, certificates[::-1]] if len(certificates) > 1 else [certificates]
    refusals = []
    for chain in orders:
        try:
            usage = chain[0].extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is None or not usage.digital_signature:
            refusals.append(f"{chain[0].subject.rfc4514_string()} lacks the digitalSignature key usage")
            continue
        try:
            verify_chain(chain, trusted_ca_pem, datetime.now(UTC))
        except UntrustedCertificate as error:
            refusals.append(str(error))
            continue
        return chain[0]
    raise UntrustedCertificate("; ".join(refusals))


def _digest(algorithm: str, data: bytes) -> bytes:
    digest = hashes.Hash(digest_algorithm_implementations[DigestAlgorithm(algorithm)]())
    digest.update(data)
    return digest.finalize()


def verify_submission_signature(
    signature: bytes,
    *,
    signed_documents: Mapping[str, bytes | None],
    submission_set_unique_id: str,
    trusted_ca_pem: bytes | None,
    location: str,
) -> list[Finding]:
    """Findings for the signature document ``signature`` of a submission.

    ``signed_documents`` maps the uniqueId of every other document of the submission to its
    bytes (None for a missing document: reported elsewhere, its digest is not checked).
    Without ``trusted_ca_pem`` the signature is checked against the certificate it carries
    (integrity only); with it, that certificate must chain to one of those CAs.
    """

    def finding(check: str, message: str) -> Finding:
        return Finding(ERROR_CODE, "error", f"[{check}] {message}", location)

    try:
        root = parse_untrusted(signature)
    except (UnsafeXml, MalformedXml) as error:
        return [finding("XDS-SIGNATURE-INVALID", f"the signature document is not acceptable XML: {error}")]
    if root.tag != f"{_DS}Signature":
        return [finding("XDS-SIGNATURE-INVALID", f"the signature document's root is {root.tag}, not ds:Signature")]
    certificates = _embedded_certificates(root)
    if not certificates:
        return [finding("XDS-SIGNATURE-INVALID", "the signature carries no readable X.509 certificate")]
    try:
        signer = certificates[0] if trusted_ca_pem is None else _trusted_signer(certificates, trusted_ca_pem)
        results = XAdESVerifier().verify(root, x509_cert=signer, expect_config=_CONFIG)
    except (UntrustedCertificate, InvalidCertificate) as error:
        return [finding("XDS-SIGNATURE-UNTRUSTED", f"the signing certificate is not trusted: {error}")]
    except (InvalidSignature, InvalidInput, etree.DocumentInvalid) as error:
        return [finding("XDS-SIGNATURE-INVALID", f"the XAdES signature does not verify: {error}")]
    manifests = [
        manifest
        for result in results
        if result.signed_xml is not None
        for manifest in result.signed_xml.iter(f"{_DS}Manifest")
    ]
    if len(manifests) != 1:
        return [finding("XDS-SIGNATURE-MANIFEST", f"the signed content holds {len(manifests)} ds:Manifest, not 1")]
    return _check_manifest(manifests[0], signed_documents, submission_set_unique_id, finding)


def _check_manifest(
    manifest: etree._Element,
    signed_documents: Mapping[str, bytes | None],
    submission_set_unique_id: str,
    finding: Callable[[str, str], Finding],
) -> list[Finding]:
    findings: list[Finding] = []
    expected = {document_uri(unique_id): data for unique_id, data in signed_documents.items()}
    submission_set_uri = document_uri(submission_set_unique_id)
    seen: set[str] = set()
    for reference in manifest.iterfind("ds:Reference", NS):
        uri = reference.get("URI", "")
        seen.add(uri)
        if uri == submission_set_uri:
            continue
        if uri not in expected:
            findings.append(
                finding("XDS-SIGNATURE-MANIFEST", f"the manifest references '{uri}', not a document of this submission")
            )
            continue
        data = expected[uri]
        if data is None:
            continue
        algorithm = reference.find("ds:DigestMethod", NS)
        try:
            digest = _digest(algorithm.get("Algorithm", "") if algorithm is not None else "", data)
            signed = base64.b64decode(reference.findtext("ds:DigestValue", "", NS), validate=True)
        except (ValueError, KeyError, binascii.Error):
            findings.append(finding("XDS-SIGNATURE-MANIFEST", f"the manifest reference '{uri}' has no usable digest"))
            continue
        if digest != signed:
            findings.append(
                finding(
                    "XDS-SIGNATURE-DIGEST", f"document '{uri}' differs from what was signed (manifest digest mismatch)"
                )
            )
    for uri in sorted(set(expected) - seen):
        findings.append(
            finding("XDS-SIGNATURE-MANIFEST", f"document '{uri}' of the submission is not in the signed manifest")
        )
    if submission_set_uri not in seen:
        findings.append(
            finding(
                "XDS-SIGNATURE-MANIFEST", f"the manifest does not reference the submission set '{submission_set_uri}'"
            )
        )
    return findings
