"""Trust in the certificate that signed a VIHF or a submission set, established once per certificate chain.

Every DMP request carries two signatures made with the organisation's signature certificate,
and validating the signer's chain for each (with signxml loading it) cost over a tenth of the
mock's time per submission. A successful validation is remembered for the exact chain (the DER
of every certificate), the exact trust anchors (the CA PEM) and only for the instants at which
every certificate of the validated path is within its validity: outside that window, or with
other anchors, the chain is validated again (and an expired or foreign chain is refused as it
always was). Failures are never remembered. Revocation is not checked, with or without the cache.
"""

from __future__ import annotations

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


@lru_cache(maxsize=8)
def _store(trusted_ca_pem: bytes) -> verification.Store:
    return verification.Store(x509.load_pem_x509_certificates(trusted_ca_pem))


_Key = tuple[tuple[x509.Certificate, ...], bytes]


class _TrustedChains:
    """A bounded LRU of (chain DERs, CA PEM) -> the window in which the validated path is valid."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._windows: OrderedDict[_Key, tuple[datetime, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def holds(self, key: _Key, at: datetime) -> bool:
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                return False
            self._windows.move_to_end(key)
        return window[0] <= at <= window[1]

    def remember(self, key: _Key, path: Sequence[x509.Certificate]) -> None:
        window = (
            max(certificate.not_valid_before_utc for certificate in path),
            min(certificate.not_valid_after_utc for certificate in path),
        )
        with self._lock:
            self._windows[key] = window
            self._windows.move_to_end(key)
            while len(self._windows) > self.size:
                self._windows.popitem(last=False)


_TRUSTED = _TrustedChains(CACHE_SIZE)


def verify_chain(chain: Sequence[x509.Certificate], trusted_ca_pem: bytes, at: datetime) -> None:
    """Raise ``UntrustedCertificate`` unless ``chain[0]`` leads, through ``chain[1:]``, to a CA of ``trusted_ca_pem``.

    The path is validated at ``at`` (timezone-aware) with the web PKI's CA rules and no end-entity
    extension requirement: callers check the signer's key usage themselves, to say so in their findings.
    """
    if not chain:
        raise UntrustedCertificate("no certificate")
    key = (tuple(chain), trusted_ca_pem)  # certificates compare (and hash) by their DER
    if _TRUSTED.holds(key, at):
        return
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(_store(trusted_ca_pem))
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
    _TRUSTED.remember(key, verified.chain)
