"""MSSanté operator mock: SMTP submission and IMAP over STARTTLS, XOAUTH2 (PSC) and EXTERNAL (BAL APP), DSN and MDN.

Three listeners, in this order: ``smtp`` (submission, RFC 6409) and ``imap`` (RFC 3501), both plain
TCP upgraded by STARTTLS, and ``crl`` (plain HTTP, the test CA's CRL); smtp and imap share one
mailbox directory, so what is submitted is in the recipient's INBOX for the next FETCH.
Receipts: a DSN (RFC 3464) goes to the sender's INBOX when NOTIFY asks for one; a Mon espace
santé mailbox answers ``Disposition-Notification-To`` with an MDN (RFC 8098) ``processed``, or
``processed/Error`` with a Mon espace santé code when it cannot integrate the message.
Security probes (``{"probe": KIND}``, see probes.py) change what the next sessions meet on the
same smtp and imap ports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from email import message_from_bytes, policy
from email.utils import parseaddr
from typing import Any

from segur.mocks.mss import imap, smtp
from segur.mocks.mss.auth import MssAuthenticator
from segur.mocks.mss.mailboxes import (
    Bal,
    MailboxDirectory,
    StoredMessage,
    Undeliverable,
    bal_from_json,
    patient_bal_from_json,
)
from segur.mocks.mss.probes import CrlApp, probe_context
from segur.mocks.mss.receipts import RecipientStatus, build_dsn, build_mdn
from segur.mocks.runtime.faults import COMMON_FAULT_KINDS
from segur.mocks.runtime.service import Listener, MockService, StreamListener, StreamSettings
from segur.mss import validate_xdm
from segur.pki import Pki

REPORTING_HOST = "mss-operateur-test.mssante.fr"


class MssMock(MockService):
    name = "mss"
    fault_kinds = tuple(dict.fromkeys((*COMMON_FAULT_KINDS, *smtp.FAULT_KINDS, *imap.FAULT_KINDS)))

    def __init__(self, introspect: Callable[[str], dict[str, Any]] | None = None) -> None:
        """``introspect`` checks XOAUTH2's PSC access tokens (the PSC mock's, in one host)."""
        super().__init__()
        self.directory = MailboxDirectory.default()
        self.authenticator = MssAuthenticator(self.directory, introspect)
        self.smtp: smtp.SmtpSubmissionServer | None = None
        self.imap: imap.ImapServer | None = None
        self.pki: Pki | None = None
        self.probe: str | None = None
        self.crl = CrlApp()
        self.directory.on_delivery(self._delivered)

    def listeners(self) -> list[StreamListener | Listener]:
        crl = Listener(self.crl, path="/crl/test-ca.crl", tls=False, require_client_cert=False)
        return [StreamListener(self._smtp), StreamListener(self._imap), crl]

    def _smtp(self, settings: StreamSettings) -> smtp.SmtpSubmissionServer:
        self.pki = self.crl.pki = settings.pki
        self.smtp = smtp.SmtpSubmissionServer(**self._shared(settings), receipts=self._send_dsn)
        return self.smtp

    def _imap(self, settings: StreamSettings) -> imap.ImapServer:
        self.imap = imap.ImapServer(**self._shared(settings))
        return self.imap

    def _shared(self, settings: StreamSettings) -> dict[str, Any]:
        """What both mail servers are built with: one directory, one authenticator, one fault queue."""
        return {
            "directory": self.directory,
            "authenticator": self.authenticator,
            "journal": settings.journal,
            "tls": probe_context(settings.pki, None),
            "faults": self.faults,
            "host": settings.host,
            "port": settings.port,
        }

    def _set_probe(self, kind: str | None) -> None:
        """New sessions on both ports meet ``kind``; sessions already open keep what they started with."""
        if self.pki is None or self.smtp is None or self.imap is None:
            raise ValueError("the MSSanté listeners are not running: no probe can be set")
        context = probe_context(self.pki, kind)
        for server in (self.smtp, self.imap):
            server.tls, server.probe = context, kind
        self.probe = kind

    def _send_dsn(self, request: smtp.ReceiptRequest) -> None:
        recipients = [RecipientStatus(r.address, r.action, r.status, r.diagnostic, r.orcpt) for r in request.recipients]
        report = build_dsn(
            request.sender,
            recipients,
            request.message,
            envid=request.envid,
            ret=request.ret,
            reporting_host=REPORTING_HOST,
        )
        self._return_to_sender(request.sender, report)

    def _delivered(self, bal: Bal, message: StoredMessage) -> None:
        """IDLE sessions learn of it; a patient's space acknowledges a requested MDN."""
        if self.imap is not None:
            self.imap.notify(bal.address)
        if bal.kind == "PAT" and b"disposition-notification-to:" in message.raw.split(b"\r\n\r\n", 1)[0].lower():
            mdn = build_mdn(message.raw, reporter=bal.address, error=_mes_refusal(message.raw))
            self._return_to_sender(_header_address(mdn, "To"), mdn)

    def _return_to_sender(self, address: str, report: bytes) -> None:
        """Receipts reach local senders only: the mock has no other operator to relay them to."""
        if self.directory.serves(address):
            # A receipt to a closed or unknown BAL is dropped, as an operator drops a bounce of a bounce.
            with contextlib.suppress(Undeliverable):
                self.directory.deliver(address, report)

    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        """``{"bals": [...], "patients": [...], "replace": false}``, entries as in mailboxes.yaml.

        ``"probe": KIND | null`` sets the security probe (probes.PROBE_KINDS); ``"crl": "available" |
        "unavailable"`` makes the CRL endpoint answer or 503; ``"deliver": [{"to", "message"}]`` files
        messages (RFC 5322 text, ASCII) in INBOXes as if another operator had relayed them: how the
        harness writes to the SUT as a colleague.
        """
        unknown = set(state) - {"bals", "patients", "replace", "probe", "crl", "deliver"}
        if unknown:
            raise ValueError(f"unknown MSSanté state fields: {sorted(unknown)}")
        if state.get("crl", "available") not in ("available", "unavailable"):
            raise ValueError('"crl" must be "available" or "unavailable"')
        bals = [bal_from_json(entry) for entry in state.get("bals", [])]
        bals += [patient_bal_from_json(entry) for entry in state.get("patients", [])]
        if "probe" in state:
            self._set_probe(state["probe"])
        if "crl" in state:
            self.crl.available = state["crl"] == "available"
        deliveries = [_delivery(entry) for entry in state.get("deliver", [])]
        with self.directory.lock:
            if state.get("replace"):
                self.directory.bals.clear()
            for bal in bals:
                self.directory.add(bal)
        for address, raw in deliveries:
            try:
                self.directory.deliver(address, raw)
            except Undeliverable as refused:
                raise ValueError(f"cannot deliver to {address}: {refused.reason}") from None
        return self.snapshot()

    def reset(self) -> None:
        seeded = MailboxDirectory.default()
        with self.directory.lock:
            self.directory.bals = seeded.bals
        self.faults.clear()
        if self.probe is not None:
            self._set_probe(None)
        self.crl.available = True

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.directory.snapshot(),
            "pending_faults": self.faults.pending(),
            "probe": self.probe,
            "crl": "available" if self.crl.available else "unavailable",
        }


def _mes_refusal(raw: bytes) -> str | None:
    """The error Mon espace santé answers a message it cannot integrate (receipts.MES_ERRORS, modelled codes).

    903: no IHE_XDM.ZIP; 905: the archive's CDA fails the CDA engine; 904: any other archive error.
    """
    parsed = message_from_bytes(raw, policy=policy.default)
    archives = [
        part.get_payload(decode=True)
        for part in parsed.walk()
        if not part.is_multipart() and (part.get_filename() or "").upper() == "IHE_XDM.ZIP"
    ]
    if not archives:
        return "903"
    errors = [finding.rule for finding in validate_xdm(archives[0]) if finding.severity == "error"]
    if any(rule.startswith("XDM-CDA:") for rule in errors):
        return "905"
    return "904" if errors else None


def _header_address(raw: bytes, name: str) -> str:
    return parseaddr(str(message_from_bytes(raw).get(name, "")))[1]


def _delivery(entry: dict[str, Any]) -> tuple[str, bytes]:
    if set(entry) != {"to", "message"} or not isinstance(entry["message"], str):
        raise ValueError('each delivery is {"to": address, "message": RFC 5322 text}')
    try:
        return str(entry["to"]), entry["message"].encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("a delivered message must be 7-bit ASCII (MIME-encode its parts)") from None
