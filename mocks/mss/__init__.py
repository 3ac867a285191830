"""MSSanté operator mock: SMTP submission and IMAP over STARTTLS, XOAUTH2 (PSC) and EXTERNAL (BAL APP), DSN and MDN.

Two listeners, in this order: ``smtp`` (submission, RFC 6409) and ``imap`` (RFC 3501), both plain
TCP upgraded by STARTTLS; they share one mailbox directory, so what is submitted is in the
recipient's INBOX for the next FETCH. Receipts: a DSN (RFC 3464) goes to the sender's INBOX when
NOTIFY asks for one; a Mon espace santé mailbox answers ``Disposition-Notification-To`` with an
MDN (RFC 8098) ``processed``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from email import message_from_bytes
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
from segur.mocks.mss.receipts import RecipientStatus, build_dsn, build_mdn
from segur.mocks.runtime.faults import COMMON_FAULT_KINDS
from segur.mocks.runtime.service import MockService, StreamListener, StreamSettings
from segur.mocks.runtime.tls import RESTRICTED_CIPHERS, server_context

REPORTING_HOST = "mss-operateur-test.mssante.fr"


class MssMock(MockService):
    name = "mss"
    fault_kinds = tuple(dict.fromkeys((*COMMON_FAULT_KINDS, *smtp.FAULT_KINDS, *imap.FAULT_KINDS)))

    def __init__(self, introspect: Callable[[str], dict[str, Any]] | None = None) -> None:
        """``introspect`` checks XOAUTH2's PSC access tokens (the PSC mock's, in one host)."""
        super().__init__()
        self.directory = MailboxDirectory.default()
        self.authenticator = MssAuthenticator(self.directory, introspect)
        self.imap: imap.ImapServer | None = None
        self.directory.on_delivery(self._delivered)

    def listeners(self) -> list[StreamListener]:
        return [StreamListener(self._smtp), StreamListener(self._imap)]

    def _tls(self, settings: StreamSettings) -> Any:
        return server_context(
            settings.pki, require_client_cert=False, request_client_cert=True, ciphers=RESTRICTED_CIPHERS
        )

    def _smtp(self, settings: StreamSettings) -> smtp.SmtpSubmissionServer:
        return smtp.SmtpSubmissionServer(
            directory=self.directory,
            authenticator=self.authenticator,
            journal=settings.journal,
            tls=self._tls(settings),
            faults=self.faults,
            host=settings.host,
            port=settings.port,
            receipts=self._send_dsn,
        )

    def _imap(self, settings: StreamSettings) -> imap.ImapServer:
        self.imap = imap.ImapServer(
            directory=self.directory,
            authenticator=self.authenticator,
            journal=settings.journal,
            tls=self._tls(settings),
            faults=self.faults,
            host=settings.host,
            port=settings.port,
        )
        return self.imap

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
            mdn = build_mdn(message.raw, reporter=bal.address)
            self._return_to_sender(_header_address(mdn, "To"), mdn)

    def _return_to_sender(self, address: str, report: bytes) -> None:
        """Receipts reach local senders only: the mock has no other operator to relay them to."""
        if self.directory.serves(address):
            # A receipt to a closed or unknown BAL is dropped, as an operator drops a bounce of a bounce.
            with contextlib.suppress(Undeliverable):
                self.directory.deliver(address, report)

    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        """``{"bals": [...], "patients": [...], "replace": false}``, entries as in mailboxes.yaml."""
        unknown = set(state) - {"bals", "patients", "replace"}
        if unknown:
            raise ValueError(f"unknown MSSanté state fields: {sorted(unknown)}")
        bals = [bal_from_json(entry) for entry in state.get("bals", [])]
        bals += [patient_bal_from_json(entry) for entry in state.get("patients", [])]
        with self.directory.lock:
            if state.get("replace"):
                self.directory.bals.clear()
            for bal in bals:
                self.directory.add(bal)
            return self.directory.snapshot()

    def reset(self) -> None:
        seeded = MailboxDirectory.default()
        with self.directory.lock:
            self.directory.bals = seeded.bals
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        return {**self.directory.snapshot(), "pending_faults": self.faults.pending()}


def _header_address(raw: bytes, name: str) -> str:
    return parseaddr(str(message_from_bytes(raw).get(name, "")))[1]
