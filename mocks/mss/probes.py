"""Security probes of the MSSanté mock: what a SUT meets at its configured endpoints when a test asks for it.

A probe is a state of the mock (``POST /mocks/mss/state {"probe": KIND}``) applied to every new
SMTP and IMAP session: a TLS context with legacy versions, weak suites, an expired or revoked
server certificate, TLS before the banner (implicit TLS), or no TLS at all with PLAIN/LOGIN
offered in clear. A conforming SUT refuses each of them; every probed session ends with one
``probe-session`` journal record saying what the client did (its commands, whether it sent
credentials, the TLS it accepted), so a scenario can tell "went on" from "refused".

Modelled, not public: the exact suites and versions an MSSanté operator's probes would use; we
chose what OpenSSL 3 can still serve (RSA key exchange + CBC for weak suites, TLS 1.0/1.1 at
``@SECLEVEL=0``). The CRL is the test CA's (see ``segur.pki``), served over plain HTTP as CRL
distribution points are.
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from asyncio import sslproto
from dataclasses import dataclass, field
from typing import Any

from segur.journal import Exchange, Journal, now_iso
from segur.mocks.runtime.http import Handled, HttpRequest, HttpResponse, peer_info
from segur.mocks.runtime.tls import RESTRICTED_CIPHERS, server_context
from segur.pki import Pki

TLS_LEGACY = "tls-legacy"
WEAK_CIPHERS = "weak-ciphers"
IMPLICIT_TLS = "implicit-tls"
PLAIN_AUTH = "plain-auth"
EXPIRED_CERTIFICATE = "expired-certificate"
REVOKED_CERTIFICATE = "revoked-certificate"
PROBE_KINDS = (TLS_LEGACY, WEAK_CIPHERS, IMPLICIT_TLS, PLAIN_AUTH, EXPIRED_CERTIFICATE, REVOKED_CERTIFICATE)
_CERTIFICATES = {EXPIRED_CERTIFICATE: "server-expired", REVOKED_CERTIFICATE: "server-revoked"}
# TLS 1.2 suites without forward secrecy (RSA key exchange) and in CBC mode: the weakest OpenSSL 3 still offers.
WEAK_SUITES = "AES128-SHA:AES256-SHA:AES128-SHA256:AES256-SHA256:@SECLEVEL=0"
# What shows a client accepted the endpoint: it authenticated (or tried) or started a transaction.
_GOING_ON = frozenset({"AUTH", "MAIL", "RCPT", "DATA", "AUTHENTICATE", "LOGIN", "SELECT", "EXAMINE"})
CRL_PATHS = {"/crl/test-ca.crl": ("der", "application/pkix-crl"), "/crl/test-ca.pem": ("pem", "application/x-pem-file")}


def probe_context(pki: Pki, kind: str | None) -> ssl.SSLContext:
    """The server TLS context of a session under ``kind`` (``None``: the operator's normal one).

    Raises ValueError when this OpenSSL cannot serve the probe (TLS 1.0/1.1 compiled out), so the
    control API refuses it instead of silently offering TLS 1.2.
    """
    if kind is not None and kind not in PROBE_KINDS:
        raise ValueError(f"unknown MSSanté probe {kind!r}: expected one of {list(PROBE_KINDS)} or null")
    context = server_context(pki, require_client_cert=False, request_client_cert=True, ciphers=RESTRICTED_CIPHERS)
    if kind in _CERTIFICATES:
        context.load_cert_chain(pki.cert(_CERTIFICATES[kind]), pki.key(_CERTIFICATES[kind]))
    elif kind == TLS_LEGACY:
        if not (ssl.HAS_TLSv1 or ssl.HAS_TLSv1_1):
            raise ValueError(f"{ssl.OPENSSL_VERSION} cannot serve TLS 1.0/1.1: the tls-legacy probe is unavailable")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # serving deprecated versions is the point
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    elif kind == WEAK_CIPHERS:
        context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 has no weak suite to fall back to
        context.set_ciphers(WEAK_SUITES)
    return context


@dataclass
class ProbeSession:
    """What one client did on a probed endpoint; journaled once, as ``probe-session``, when it ends.

    Secrets are never kept: for credentials only the mechanism and that they were sent.
    """

    kind: str
    protocol: str  # "smtp" | "imap"
    journal: Journal
    started: str = field(default_factory=now_iso)
    peer: dict[str, Any] = field(default_factory=dict)
    tls: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)
    refusal: str = ""
    closed: bool = False

    def command(self, name: str, channel: Any) -> None:
        """A command arrived on ``channel`` (a transport or stream writer): note it and the TLS it runs under."""
        self.commands.append(name)
        self.observe(channel)

    def observe(self, channel: Any) -> None:
        self.peer = peer_info(channel) or self.peer
        ssl_object = channel.get_extra_info("ssl_object")
        if ssl_object is not None and not self.tls:
            cipher = ssl_object.cipher()
            self.tls = {"version": ssl_object.version() or "", "cipher": cipher[0] if cipher else ""}

    def credentials_sent(self, mechanism: str) -> None:
        self.credentials.append(mechanism)

    def refused(self, error: BaseException) -> None:
        cause = error.__cause__ or error
        self.refusal = f"{type(cause).__name__}: {cause}"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        went_on = bool(self.credentials) or any(name in _GOING_ON for name in self.commands)
        self.journal.record(
            Exchange(
                mock="mss",
                operation="probe-session",
                request=b"",
                response=b"",
                started=self.started,
                peer=self.peer,
                outcome={
                    "probe": self.kind,
                    "protocol": self.protocol,
                    "tls": self.tls,
                    "handshake_refused": self.refusal,
                    "commands": self.commands,
                    "credentials_sent": self.credentials,
                    "went_on": went_on,
                },
            )
        )


def tls_first(app: asyncio.Protocol, context: ssl.SSLContext, probe: ProbeSession) -> asyncio.BaseProtocol:
    """Implicit TLS (SMTPS/IMAPS style): the handshake happens before ``app`` sees the connection.

    A refused handshake never reaches ``app``, so it is journaled here, as the end of the probed session.
    """
    loop = asyncio.get_running_loop()
    handshake = loop.create_future()

    def done(future: asyncio.Future[None]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is not None:
            probe.refused(error)
            probe.close()

    handshake.add_done_callback(done)
    return sslproto.SSLProtocol(loop, app, context, handshake, server_side=True, ssl_handshake_timeout=5.0)


class CrlApp:
    """Serves the test CA's CRL over plain HTTP, or 503 while a scenario makes it unavailable (SC.MSS/CONF.22)."""

    name = "mss"

    def __init__(self) -> None:
        self.pki: Pki | None = None
        self.available = True

    def handle(self, request: HttpRequest) -> Handled:
        served = CRL_PATHS.get(request.path)
        if request.method not in ("GET", "HEAD") or served is None or self.pki is None:
            return self.reject(request, 404, f"no CRL at {request.method} {request.path}")
        if not self.available:
            return self.reject(request, 503, "CRL temporarily unavailable (control API)")
        encoding, content_type = served
        body = (self.pki.crl_der if encoding == "der" else self.pki.crl).read_bytes()
        return Handled(HttpResponse(200, body, content_type), "crl-fetch", outcome={"served": encoding})

    def reject(self, request: HttpRequest, status: int, reason: str) -> Handled:
        return Handled(HttpResponse(status, reason.encode()), "crl-fetch", outcome={"refused": reason})
