"""Trust in the certificate that signed a VIHF or a submission set, established once per certificate chain.

Every DMP request carries two signatures made with the organisation's signature certificate,
and validating the signer's chain for each (with signxml loading it) cost over a tenth of the
mock's time per submission. A successful validation is remembered for the exact chain (the DER
of every certificate), the exact trust anchors (the CA PEM) and only for the instants at which
every certificate of the validated path is within its validity: outside that window, or with
other anchors, the chain is validated again (and an expired or foreign chain is refused as it
always was). Failures are never remembered.

Revocation: the trust bundle may carry the CAs' CRLs (``-----BEGIN X509 CRL-----`` blocks after the
certificates, as an OpenSSL CAfile can). Each certificate of the path is then looked up in its
issuer's CRL at every call, cache or not: a certificate revoked since it was first trusted is refused,
and so is a path whose CRL is past its nextUpdate (revocation status unknown).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.x509 import verification

CACHE_SIZE = 256
"""Chains remembered; the least recently used is forgotten first. A DMP sees a few signers per organisation."""


class UntrustedCertificate(Exception):
    """The chain does not lead to a trusted CA at the verification time (expired, other CA, bad extensions...)."""


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


@lru_cache(maxsize=8)
def _anchors(trusted_pem: bytes) -> tuple[verification.Store, tuple[x509.CertificateRevocationList, ...]]:
    """The CA store and the CRLs of a trust bundle; a CRL no trusted CA signed is a configuration error."""
    blocks = [(match[1], match[0]) for match in _PEM_BLOCK.finditer(trusted_pem)]
    cas = [x509.load_pem_x509_certificate(block) for kind, block in blocks if kind == b"CERTIFICATE"]
    crls = tuple(x509.load_pem_x509_crl(block) for kind, block in blocks if kind == b"X509 CRL")
    for crl in crls:
        if not any(ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key()) for ca in cas):
            raise ValueError(f"the CRL of {crl.issuer.rfc4514_string()} is not signed by a trusted CA")
    return verification.Store(cas), crls


def _check_revocation(
    path: Sequence[x509.Certificate], crls: tuple[x509.CertificateRevocationList, ...], at: datetime
) -> None:
    for certificate in path[:-1]:  # the trust anchor itself is not on a CRL
        for crl in crls:
            if crl.issuer != certificate.issuer:
                continue
            if crl.next_update_utc is not None and at > crl.next_update_utc:
                raise UntrustedCertificate(f"the CRL of {crl.issuer.rfc4514_string()} expired: revocation unknown")
            revoked = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
            if revoked is not None and revoked.revocation_date_utc <= at:
                when = revoked.revocation_date_utc.isoformat()
                raise UntrustedCertificate(f"{certificate.subject.rfc4514_string()} was revoked on {when}")


_Key = tuple[tuple[x509.Certificate, ...], bytes]


class _TrustedChains:
    """A bounded LRU of (chain DERs, trust bundle) -> the validated path and the window in which it is valid."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._windows: OrderedDict[_Key, tuple[datetime, datetime, list[x509.Certificate]]] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, key: _Key, at: datetime) -> list[x509.Certificate] | None:
        """The path validated for ``key`` when ``at`` is inside its validity window, else None."""
        with self._lock:
            remembered = self._windows.get(key)
            if remembered is None:
                return None
            self._windows.move_to_end(key)
        start, end, path = remembered
        return path if start <= at <= end else None

    def remember(self, key: _Key, path: Sequence[x509.Certificate]) -> None:
        remembered = (
            max(certificate.not_valid_before_utc for certificate in path),
            min(certificate.not_valid_after_utc for certificate in path),
            list(path),
        )
        with self._lock:
            self._windows[key] = remembered
            self._windows.move_to_end(key)
            while len(self._windows) > self.size:
                self._windows.popitem(last=False)


_TRUSTED = _TrustedChains(CACHE_SIZE)


def verify_chain(chain: Sequence[x509.Certificate], trusted_ca_pem: bytes, at: datetime) -> None:
    """Raise ``UntrustedCertificate`` unless ``chain[0]`` leads, through ``chain[1:]``, to a CA of ``trusted_ca_pem``
    with no certificate of the path revoked by the CRLs the bundle carries (see the module docstring).

    The path is validated at ``at`` (timezone-aware) with the web PKI's CA rules and no end-entity
    extension requirement: callers check the signer's key usage themselves, to say so in their findings.
    """
    if not chain:
        raise UntrustedCertificate("no certificate")
    store, crls = _anchors(trusted_ca_pem)
    key = (tuple(chain), trusted_ca_pem)  # certificates compare (and hash) by their DER
    remembered = _TRUSTED.path(key, at)
    if remembered is not None:
        _check_revocation(remembered, crls, at)
        return
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(store)
            .time(at)
            .extension_policies(
                ee_policy=verification.ExtensionPolicy.permit_all(),
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            )
            .build_client_verifier()
        )
        verified = verifier.verify(chain[0], list(chain[1:]))
    except verification.VerificationError as error:
        raise UntrustedCertificate(str(error)) from None
    _check_revocation(verified.chain, crls, at)
    _TRUSTED.remember(key, verified.chain)
