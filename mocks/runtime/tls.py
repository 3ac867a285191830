"""TLS contexts for mocks: TLS 1.2 minimum, client certificates verified against the test CA."""

from __future__ import annotations

import ssl

from segur.pki import Pki

# Forward-secret AEAD suites only (TLS 1.2; TLS 1.3 suites are all of this kind): what the MSSanté
# operators' security requirements ask of a mail server, and what a probe with weak ciphers lacks.
RESTRICTED_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM"


def server_context(
    pki: Pki, *, require_client_cert: bool, request_client_cert: bool = False, ciphers: str | None = None
) -> ssl.SSLContext:
    """A server context presenting the test PKI's server certificate.

    With ``require_client_cert`` the handshake itself fails for a missing certificate or
    one that does not chain to the test CA (what the national services do); rules about
    *which* certificate (e.g. CN INSI-AUTO) are the protocol layer's, so it can answer them
    in the protocol's own error. ``request_client_cert`` asks for one without requiring it
    (a mail server where most clients use XOAUTH2 and applications use SASL EXTERNAL); one
    that is presented must still chain to the test CA.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.cert("server"), pki.key("server"))
    if ciphers:
        context.set_ciphers(ciphers)
    if require_client_cert or request_client_cert:
        context.load_verify_locations(cafile=str(pki.ca_cert))
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context
