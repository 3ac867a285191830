"""The MSSanté operator's SMTP submission server (RFC 6409) over aiosmtpd.

What a SUT's mail client meets at an MSSanté operator: STARTTLS before anything else (RFC 3207),
AUTH XOAUTH2 with a Pro Santé Connect access token or EXTERNAL with the organisation's AUTH_CLI
certificate (RFC 4954, RFC 4422), MAIL FROM bound to the authenticated BAL, recipients refused
outside the MSSanté trust space, DSN parameters (RFC 3461) kept verbatim and honoured, SIZE
(RFC 1870). aiosmtpd does the framing; this module adds the operator's policy, the journal
(every exchange is recorded before its answer is written) and fault injection.

Modelled, not public: the operator's exact reply texts, the 50 MB submission limit (the
mailbox directory's operator limit), and what happens to a session whose access token expired:
Gmail documents that an OAuth-authenticated IMAP/SMTP session lasts as long as the access token
and that the connection is then closed; we do the same at the next MAIL with ``421 4.7.0``
(RFC 5321 4.2.3: the server closes the channel), so the client reconnects with a fresh token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import datetime as dt
import email.utils
import logging
import re
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import ALLOWED_BEFORE_STARTTLS, SMTP, AuthResult, Envelope, Session, TLSSetupException

from segur.journal import Exchange, Journal, now_iso
from segur.mocks.mss.auth import XOAUTH2, AuthRefused, MssAuthenticator, Principal
from segur.mocks.mss.mailboxes import OPERATOR_MAX_MESSAGE_BYTES, PATIENT_DOMAIN, MailboxDirectory, Undeliverable
from segur.mocks.mss.probes import IMPLICIT_TLS, PLAIN_AUTH, ProbeSession, tls_first
from segur.mocks.runtime.faults import FaultInjector, FaultRule
from segur.mocks.runtime.http import peer_info

log = logging.getLogger(__name__)

FAULT_KINDS = ("smtp_reply", "timeout")
TRUST_SPACE_SUFFIX = ".mssante.fr"
NOTIFY_VALUES = ("SUCCESS", "FAILURE", "DELAY")
DEFAULT_NOTIFY = ("FAILURE",)
# RFC 5321 4.5.3.1.4 gives 512 octets per command line; SIZE (RFC 1870) adds 26 to MAIL, DSN
# (RFC 3461 sections 4 and 5) adds 100 to MAIL (RET, ENVID) and 500 to RCPT (NOTIFY, ORCPT).
COMMAND_LIMIT = 512
MAIL_LIMIT = COMMAND_LIMIT + 26 + 100
RCPT_LIMIT = COMMAND_LIMIT + 500
# A PSC access token is a signed JWT: its XOAUTH2 response is well over 1000 octets, so AUTH lines
# (and, since aiosmtpd shares one reader limit, DATA lines) may reach 12288 octets. Line lengths
# above RFC 5322's 998 are the message checks' business (they read the journal), not a refusal here.
AUTH_LINE_LIMIT = 12288
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class RecipientReport:
    """One recipient of a DSN (RFC 3464 per-recipient fields); ``diagnostic`` is the reply without "smtp;"."""

    address: str
    orcpt: str
    notify: tuple[str, ...]
    action: str  # "delivered" | "relayed" | "failed"
    status: str  # RFC 3463, e.g. "2.0.0", "5.1.1"
    diagnostic: str = ""


@dataclass(frozen=True)
class ReceiptRequest:
    """What the DSN builder needs to put a delivery status notification in the sender's INBOX.

    ``recipients`` holds only those for whom RFC 3461's NOTIFY asks a DSN; ``ret`` is "FULL",
    "HDRS" or "" (not given: the builder chooses), ``message`` the submitted message as received.
    """

    sender: str
    envid: str
    ret: str
    message: bytes
    recipients: tuple[RecipientReport, ...]
    reporting_mta: str = ""


@dataclass
class Recipient:
    """An accepted RCPT: its DSN parameters verbatim and where it goes (local, patient or relayed)."""

    address: str
    notify: tuple[str, ...] = ()
    orcpt: str = ""
    route: str = "local"
    action: str = ""
    status: str = ""
    diagnostic: str = ""

    def wants_report(self) -> bool:
        notify = self.notify or DEFAULT_NOTIFY
        if self.action == "failed":
            return "FAILURE" in notify
        return "SUCCESS" in notify


class SubmissionEnvelope(Envelope):
    """aiosmtpd's envelope plus what DSN and the journal need."""

    def __init__(self) -> None:
        super().__init__()
        self.ret = ""
        self.envid = ""
        self.recipients: list[Recipient] = []


class DsnParameterError(ValueError):
    """An ESMTP parameter that RFC 3461 (or RFC 1870) does not allow: answered 501 5.5.4."""


def split_parameters(arg: str, keywords: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Take ``keywords`` parameters out of a MAIL/RCPT argument, values in their original case.

    aiosmtpd upper-cases parameters and refuses those it does not know; ENVID and ORCPT are
    xtext whose case must survive into the DSN, so they are removed before aiosmtpd sees the line.
    """
    rest: list[str] = []
    found: dict[str, str] = {}
    for index, token in enumerate(arg.split()):
        keyword, equals, value = token.partition("=")
        if index == 0 or not equals or keyword.upper() not in keywords:
            rest.append(token)
            continue
        if keyword.upper() in found:
            raise DsnParameterError(f"{keyword.upper()} given twice")
        found[keyword.upper()] = value
    return " ".join(rest), found


def validate_mail_parameters(params: dict[str, str]) -> tuple[str, str]:
    """RET and ENVID (RFC 3461 4.3, 4.4): the normalised RET and the ENVID xtext as given."""
    ret = params.get("RET", "")
    if "RET" in params and ret.upper() not in ("FULL", "HDRS"):
        raise DsnParameterError("RET must be FULL or HDRS")
    envid = params.get("ENVID", "")
    if "ENVID" in params and (not envid or len(envid) > 100 or not _XTEXT.fullmatch(envid)):
        raise DsnParameterError("ENVID must be 1 to 100 characters of xtext")
    return ret.upper(), envid


def validate_rcpt_parameters(params: dict[str, str]) -> tuple[tuple[str, ...], str]:
    """NOTIFY and ORCPT (RFC 3461 4.1, 4.2): the NOTIFY keywords and the ORCPT value as given."""
    notify: tuple[str, ...] = ()
    if "NOTIFY" in params:
        notify = tuple(value.upper() for value in params["NOTIFY"].split(","))
        valid = notify == ("NEVER",) or (
            notify and all(value in NOTIFY_VALUES for value in notify) and len(set(notify)) == len(notify)
        )
        if not valid:
            raise DsnParameterError("NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY")
    orcpt = params.get("ORCPT", "")
    if "ORCPT" in params:
        addr_type, semicolon, xtext = orcpt.partition(";")
        if not semicolon or not _ADDR_TYPE.fullmatch(addr_type) or not xtext or len(orcpt) > 500:
            raise DsnParameterError("ORCPT must be addr-type;xtext")
        if not _XTEXT.fullmatch(xtext):
            raise DsnParameterError("ORCPT address must be xtext")
    return notify, orcpt


def reply_text(text: str) -> str:
    """Reply text safe for one ASCII SMTP line, whatever a client put in an address or authzid."""
    return " ".join(text.encode("ascii", "replace").decode("ascii").split())


class SubmissionProtocol(SMTP):
    """One client connection: aiosmtpd's state machine plus the TLS gate and DSN parameter handling."""

    line_length_limit = AUTH_LINE_LIMIT

    def __init__(self, server: SmtpSubmissionServer, probe: ProbeSession | None = None, **kwargs: Any) -> None:
        # Per connection: aiosmtpd's class-level dict grows by 26 at every EHLO of every session.
        self.command_size_limits = collections.defaultdict(lambda: COMMAND_LIMIT)
        super().__init__(server, **kwargs)
        self.submission = server
        self.probe = probe
        self.pending_dsn: tuple[str, str] = ("", "")
        self.pending_rcpt: tuple[tuple[str, ...], str] = ((), "")
        self.plaintext_journaled = False
        # The command being answered and whether its exchange is journaled yet: refusals aiosmtpd
        # writes itself (bad syntax, wrong order, unknown verb or mechanism) are journaled in push.
        self.command = b""
        self.journaled = False
        # RFC 3207 4: only NOOP, EHLO, STARTTLS and QUIT before TLS. aiosmtpd's own gate answers
        # without an enhanced code and cannot journal, so every other command goes through ours.
        self._smtp_methods = {
            name: self._observed(name, method if name in ALLOWED_BEFORE_STARTTLS else self._tls_gate(name, method))
            for name, method in self._smtp_methods.items()
        }

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Implicit TLS (probe): the transport is already TLS, which aiosmtpd only knows after its own STARTTLS.
        if self.session.ssl is None and transport.get_extra_info("ssl_object") is not None:
            self.session.ssl = {"ssl_object": transport.get_extra_info("ssl_object")}

    def connection_lost(self, error: Exception | None) -> None:
        self.submission.sessions.discard(self)
        if self.probe is not None:
            if isinstance(error, TLSSetupException):
                self.probe.refused(error)
            self.probe.close()
        super().connection_lost(error)

    def _observed(self, name: str, method: Callable[[str | None], Any]) -> Callable[[str | None], Any]:
        async def observed(arg: str | None) -> None:
            # AUTH's argument carries the credentials: only the mechanism reaches the journal.
            shown = (arg or "").split(" ", 1)[0] + " [redacted]" if name == "AUTH" else arg or ""
            self.command, self.journaled = f"{name} {shown}".strip().encode(), False
            if self.probe is not None:
                self.probe.command(name, self.transport)
            await method(arg)

        return observed

    def _create_envelope(self) -> SubmissionEnvelope:
        return SubmissionEnvelope()

    @property
    def principal(self) -> Principal | None:
        return self.session.auth_data if self.session and self.session.authenticated else None

    def _tls_gate(self, name: str, method: Callable[[str | None], Any]) -> Callable[[str | None], Any]:
        async def gated(arg: str | None) -> None:
            if self.session is not None and self.session.ssl is not None:
                await method(arg)
                return
            reply = "530 5.7.0 Must issue a STARTTLS command first"
            if name == "AUTH" and self.probe is not None and self.probe.kind == PLAIN_AUTH:
                reply = await self._plain_auth(arg or "")
            if name in ("MAIL", "AUTH") and not self.plaintext_journaled:
                self.plaintext_journaled = True
                shown = f"AUTH {(arg or '').split(' ')[0]}" if name == "AUTH" else f"{name} {arg or ''}"
                self.submission.record(self, "smtp-plaintext", shown.encode(), reply, outcome={"refused": name})
            await self.push(reply)

        return gated

    async def _plain_auth(self, arg: str) -> str:
        """Plain-auth probe: take the credentials (without keeping them) so the journal can say they were sent."""
        mechanism, _, initial = arg.partition(" ")
        if not initial:
            await self.read_response(b"Username:" if mechanism.upper() == "LOGIN" else b"")
        assert self.probe is not None
        self.probe.credentials_sent(mechanism.upper())
        return "535 5.7.8 credentials sent without TLS are refused"

    async def smtp_MAIL(self, arg: str | None) -> None:
        reply = self._mail_refusal()
        if reply:
            await self._refuse_envelope(f"MAIL {arg or ''}", reply)
            if reply.startswith("421"):
                self.transport.close()
            return
        try:
            rest, params = split_parameters(arg or "", ("RET", "ENVID"))
            self.pending_dsn = validate_mail_parameters(params)
            declared = split_parameters(rest, ("SIZE",))[1].get("SIZE", "0")
            if declared.isdigit() and self.data_size_limit and int(declared) > self.data_size_limit:
                await self._refuse_envelope(f"MAIL {arg}", self.submission.too_big_reply())
                return
        except DsnParameterError as error:
            await self._refuse_envelope(f"MAIL {arg}", f"501 5.5.4 {error}")
            return
        await super().smtp_MAIL(rest)

    def _mail_refusal(self) -> str:
        principal = self.principal
        if principal is None:
            return "530 5.7.0 Authentication required"
        if principal.mechanism == XOAUTH2 and principal.token_expires and principal.token_expires <= time.time():
            return "421 4.7.0 access token expired, reconnect and authenticate again"
        return ""

    async def smtp_RCPT(self, arg: str | None) -> None:
        try:
            rest, params = split_parameters(arg or "", ("NOTIFY", "ORCPT"))
            self.pending_rcpt = validate_rcpt_parameters(params)
        except DsnParameterError as error:
            await self._refuse_envelope(f"RCPT {arg}", f"501 5.5.4 {error}")
            return
        await super().smtp_RCPT(rest)

    async def smtp_DATA(self, arg: str | None) -> None:
        try:
            await super().smtp_DATA(arg)
        except asyncio.CancelledError:
            # The client went away between 354 and the final dot: nothing was delivered.
            if self.envelope is not None and self.envelope.rcpt_tos and self.envelope.original_content is None:
                self.submission.record(self, "smtp-aborted", b"", b"", outcome={"envelope": envelope_json(self)})
            raise

    async def push(self, status: str | bytes) -> None:
        # aiosmtpd answers an oversized DATA itself, without an enhanced code and before we could journal.
        if status == "552 Error: Too much mail data":
            status = self.submission.too_big_reply()
            self.submission.record(self, "smtp-envelope", b"DATA", status, outcome={"refused": "message too big"})
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if text[:1] in ("4", "5") and not self.journaled:
            self.submission.record(self, "smtp-refused", self.command, text, outcome={"refused": text})
        await super().push(status)
        if text[:1] != "3":  # a final reply ends the exchange; an unknown verb has no command of ours
            self.command, self.journaled = b"", False

    async def _refuse_envelope(self, command: str, reply: str) -> None:
        self.submission.record(self, "smtp-envelope", command.encode(), reply, outcome={"refused": reply})
        await self.push(reply)

    async def read_response(self, challenge: bytes) -> bytes:
        """Send a 334 continuation and return the client's line (stripped, still base64)."""
        await self.push(b"334 " + base64.b64encode(challenge))
        return (await self._reader.readline()).strip()


def envelope_json(protocol: SubmissionProtocol) -> dict[str, Any]:
    envelope = protocol.envelope
    return {
        "mail_from": envelope.mail_from,
        "ret": envelope.ret,
        "envid": envelope.envid,
        "rcpts": [
            {
                "address": r.address,
                "notify": list(r.notify),
                "orcpt": r.orcpt,
                "result": f"{r.action} {r.status}".strip(),
            }
            for r in envelope.recipients
        ],
    }


@dataclass(eq=False)
class SmtpSubmissionServer:
    """Listener plus aiosmtpd handler (hooks ``handle_*`` and mechanisms ``auth_*``) shared by every session.

    ``timeout`` is the idle time (s) after which a session is closed; ``receipts`` receives the DSN
    requests (the DSN builder files them in the sender's INBOX); ``max_message_bytes`` is SIZE.
    """

    directory: MailboxDirectory
    authenticator: MssAuthenticator
    journal: Journal
    tls: ssl.SSLContext
    faults: FaultInjector
    host: str = "127.0.0.1"
    port: int = 0
    receipts: Callable[[ReceiptRequest], None] | None = None
    max_message_bytes: int = OPERATOR_MAX_MESSAGE_BYTES
    timeout: float = 60.0
    hostname: str = "smtp.mss-operateur-test.mssante.fr"
    probe: str | None = None
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    sessions: set[SubmissionProtocol] = field(default_factory=set, init=False, repr=False)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_session, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.abort()
        self.sessions.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def _new_session(self) -> asyncio.BaseProtocol:
        """One session, under the security probe set when it connects (``probe``, see probes.py)."""
        probe = ProbeSession(self.probe, "smtp", self.journal) if self.probe else None
        protocol = SubmissionProtocol(
            self,
            probe,
            data_size_limit=self.max_message_bytes,
            hostname=self.hostname,
            ident="MSSante operator mock (submission)",
            tls_context=None if self.probe == PLAIN_AUTH else self.tls,
            auth_require_tls=self.probe != IMPLICIT_TLS,  # our TLS gate still applies
            auth_exclude_mechanism=("PLAIN", "LOGIN"),
            timeout=self.timeout,
            loop=asyncio.get_running_loop(),
        )
        self.sessions.add(protocol)
        if probe is not None and probe.kind == IMPLICIT_TLS:
            return tls_first(protocol, self.tls, probe)
        return protocol

    # --- journal -------------------------------------------------------------------------------

    def record(
        self,
        protocol: SubmissionProtocol,
        operation: str,
        request: bytes,
        response: str | bytes,
        *,
        correlation: dict[str, str] | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        """Journal one exchange; callers do this before writing the reply that ends it."""
        protocol.journaled = True
        if protocol.probe is not None:
            outcome = {"probe": protocol.probe.kind, **(outcome or {})}
        self.journal.record(
            Exchange(
                mock="mss",
                operation=operation,
                request=request,
                response=response.encode() if isinstance(response, str) else response,
                started=now_iso(),
                peer=peer_info(protocol.transport) if protocol.transport is not None else {},
                correlation=correlation or {},
                outcome=outcome or {},
            )
        )

    def too_big_reply(self) -> str:
        return f"552 5.3.4 message exceeds the maximum size of {self.max_message_bytes} bytes"

    # --- aiosmtpd hooks ------------------------------------------------------------------------

    async def handle_EHLO(
        self, server: SubmissionProtocol, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        server.command_size_limits.update(MAIL=MAIL_LIMIT, RCPT=RCPT_LIMIT, AUTH=AUTH_LINE_LIMIT)
        keywords = [f"SIZE {self.max_message_bytes}", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"]
        if server.probe is not None and server.probe.kind == PLAIN_AUTH:
            keywords.append("AUTH PLAIN LOGIN XOAUTH2")
        elif session.ssl is None:
            keywords.append("STARTTLS")
        else:
            # EXTERNAL only means something when the handshake verified a client certificate.
            external = " EXTERNAL" if peer_info(server.transport).get("cn") else ""
            keywords += ["DSN", f"AUTH XOAUTH2{external}"]
        return [responses[0]] + [f"250-{k}" for k in keywords[:-1]] + [f"250 {keywords[-1]}"]

    async def handle_MAIL(
        self,
        server: SubmissionProtocol,
        session: Session,
        envelope: SubmissionEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        command = f"MAIL FROM:<{address}>"
        injected = await self._fault(server, "mail", command)
        if injected:
            return injected
        principal = server.principal
        if address.lower() != principal.address.lower():
            reply = f"553 5.7.1 sender {reply_text(address)} is not the authenticated mailbox {principal.address}"
            self.record(server, "smtp-envelope", command.encode(), reply, outcome={"refused": "sender mismatch"})
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.ret, envelope.envid = server.pending_dsn
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self,
        server: SubmissionProtocol,
        session: Session,
        envelope: SubmissionEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        command = f"RCPT TO:<{address}>"
        injected = await self._fault(server, "rcpt", command)
        if injected:
            return injected
        route, reply = self._route(address)
        if route is None:
            self.record(server, "smtp-envelope", command.encode(), reply, outcome={"refused": reply})
            return reply
        notify, orcpt = server.pending_rcpt
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.recipients.append(Recipient(address, notify, orcpt, route))
        return reply

    def _route(self, address: str) -> tuple[str | None, str]:
        """Where a recipient goes, or the RCPT refusal: local BAL, patient domain, or another operator."""
        domain = address.rpartition("@")[2].lower()
        shown = reply_text(address)
        if not domain.endswith(TRUST_SPACE_SUFFIX):
            return None, f"550 5.7.1 {shown} is outside the MSSante trust space"
        if domain == PATIENT_DOMAIN:
            return "patient", "250 2.1.5 Recipient OK (Mon espace sante, delivery checked after DATA)"
        if not self.directory.serves(address):
            return "relayed", "250 2.1.5 Recipient OK (relayed to its operator)"
        bal = self.directory.find(address)
        if bal is None:
            return None, f"550 5.1.1 no mailbox {shown} at this operator"
        if bal.state != "open":
            return None, f"550 5.2.1 mailbox {shown} is closed"
        return "local", "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SubmissionProtocol, session: Session, envelope: SubmissionEnvelope) -> str:
        message = envelope.original_content or b""
        injected = await self._fault(server, "data", message, operation="smtp-submission")
        if injected:
            return injected
        queue_id = uuid.uuid4().hex[:12].upper()
        for recipient in envelope.recipients:
            self._deliver(server, envelope, recipient, message, queue_id)
        reply = f"250 2.0.0 Ok: queued as {queue_id}"
        principal = server.principal
        match = _MESSAGE_ID.search(message.split(b"\r\n\r\n", 1)[0])
        correlation = {
            **principal.correlation(),
            "from": envelope.mail_from or "",
            "to": ",".join(r.address for r in envelope.recipients),
            "message_id": match.group(1).decode("ascii", "replace") if match else "",
        }
        outcome = {
            "envelope": envelope_json(server),
            "size": len(message),
            "tls_version": peer_info(server.transport).get("tls_version", ""),
            "queue_id": queue_id,
        }
        self.record(server, "smtp-submission", message, reply, correlation=correlation, outcome=outcome)
        self._request_receipts(envelope, message)
        return reply

    def _deliver(
        self,
        server: SubmissionProtocol,
        envelope: SubmissionEnvelope,
        recipient: Recipient,
        message: bytes,
        queue_id: str,
    ) -> None:
        if recipient.route == "relayed":
            recipient.action, recipient.status = "relayed", "2.0.0"
            return
        client_ip = (server.session.peer or ("unknown",))[0]
        trace = (
            f"Return-Path: <{envelope.mail_from}>\r\n"
            f"Received: from {server.session.host_name} ([{client_ip}])\r\n"
            f"\tby {self.hostname} with ESMTPSA id {queue_id}\r\n"
            f"\tfor <{recipient.address}>; {email.utils.format_datetime(dt.datetime.now(dt.UTC))}\r\n"
        ).encode("ascii", "replace")
        try:
            self.directory.deliver(recipient.address, trace + message)
        except Undeliverable as error:
            recipient.action, recipient.status = "failed", error.status
            recipient.diagnostic = f"{error.code} {error.status} {error.reason}"
        else:
            recipient.action, recipient.status = "delivered", "2.0.0"

    def _request_receipts(self, envelope: SubmissionEnvelope, message: bytes) -> None:
        """Ask for a DSN when RFC 3461's NOTIFY rules call for one (NEVER: none; default: FAILURE)."""
        due = [r for r in envelope.recipients if r.wants_report()]
        if self.receipts is None or not due:
            return
        request = ReceiptRequest(
            sender=envelope.mail_from or "",
            envid=envelope.envid,
            ret=envelope.ret,
            message=message,
            recipients=tuple(
                RecipientReport(r.address, r.orcpt, r.notify, r.action, r.status, r.diagnostic) for r in due
            ),
            reporting_mta=self.hostname,
        )
        # The message is already delivered and journaled: a failing DSN builder must not turn that into an error.
        try:
            self.receipts(request)
        except Exception:
            log.exception("DSN builder failed for a message from %s", request.sender)

    async def _fault(
        self, server: SubmissionProtocol, point: str, request: str | bytes, operation: str = "smtp-envelope"
    ) -> str:
        """Apply a pending fault for ``point`` (mail, rcpt, data): the injected reply, or "" to go on."""
        rule: FaultRule | None = self.faults.take(point, FAULT_KINDS)
        if rule is None:
            return ""
        if rule.kind == "timeout":
            await asyncio.sleep(rule.delay)
            return ""
        code = rule.code or ("4.3.0" if rule.status < 500 else "5.3.0")
        reply = f"{rule.status} {code} fault injected by the control API"
        raw = request.encode() if isinstance(request, str) else request
        self.record(
            server,
            operation,
            raw,
            reply,
            outcome={"injected": {"kind": rule.kind, "point": point, "status": rule.status}},
        )
        return reply

    # --- SASL mechanisms (aiosmtpd calls them with the session protocol) -----------------------

    async def auth_XOAUTH2(self, server: SubmissionProtocol, args: list[str]) -> AuthResult:
        """XOAUTH2 with or without initial response; a refusal sends its JSON error as a 334 first."""
        encoded = args[1].encode() if len(args) > 1 else await server.read_response(b"")
        try:
            decoded = base64.b64decode(encoded, validate=True)
            principal = await asyncio.to_thread(self.authenticator.xoauth2, decoded)
        except binascii.Error:
            return await self._refuse_auth(server, XOAUTH2, "501 5.5.2 cannot decode base64", "bad base64")
        except AuthRefused as refused:
            if refused.challenge is not None:
                await server.read_response(refused.challenge)
            return await self._refuse_auth(server, XOAUTH2, f"535 5.7.8 {reply_text(refused.reason)}", refused.reason)
        return self._accept_auth(server, principal)

    async def auth_EXTERNAL(self, server: SubmissionProtocol, args: list[str]) -> AuthResult:
        """EXTERNAL: ``=`` or base64 authzid (RFC 4954 4); identity from the verified client certificate."""
        encoded = args[1].encode() if len(args) > 1 else await server.read_response(b"")
        try:
            authzid = "" if encoded in (b"=", b"") else base64.b64decode(encoded, validate=True).decode()
            principal = self.authenticator.external(peer_info(server.transport), authzid)
        except (binascii.Error, UnicodeDecodeError):
            return await self._refuse_auth(server, "EXTERNAL", "501 5.5.2 cannot decode authzid", "bad authzid")
        except AuthRefused as refused:
            return await self._refuse_auth(
                server, "EXTERNAL", f"535 5.7.8 {reply_text(refused.reason)}", refused.reason
            )
        return self._accept_auth(server, principal)

    async def _refuse_auth(self, server: SubmissionProtocol, mechanism: str, reply: str, reason: str) -> AuthResult:
        request = f"AUTH {mechanism} [redacted]".encode()
        self.record(server, "smtp-auth", request, reply, outcome={"refused": reason, "mechanism": mechanism})
        await server.push(reply)
        return AuthResult(success=False, handled=True)

    def _accept_auth(self, server: SubmissionProtocol, principal: Principal) -> AuthResult:
        reply = "235 2.7.0 Authentication successful"
        self.record(
            server,
            "smtp-auth",
            f"AUTH {principal.mechanism} [redacted]".encode(),
            reply,
            correlation=principal.correlation(),
            outcome={"mechanism": principal.mechanism, "address": principal.address},
        )
        return AuthResult(success=True, auth_data=principal, message=reply)
