"""TLS contexts for mocks: TLS 1.2 minimum, client certificates verified against the test CA."""

from __future__ import annotations

import ssl

from segur.pki import Pki


def server_context(pki: Pki, *, require_client_cert: bool) -> ssl.SSLContext:
    """A server context presenting the test PKI's server certificate.

    With ``require_client_cert`` the handshake itself fails for a missing certificate or
    one that does not chain to the test CA (what the national services do); rules about
    *which* certificate (e.g. CN INSI-AUTO) are the protocol layer's, so it can answer them
    in the protocol's own error.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.cert("server"), pki.key("server"))
    if require_client_cert:
        context.load_verify_locations(cafile=str(pki.ca_cert))
        context.verify_mode = ssl.CERT_REQUIRED
    return context
