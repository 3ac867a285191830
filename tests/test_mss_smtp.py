"""The MSSanté submission server against real clients (smtplib, curl) on loopback.

The server runs on a background event loop; each test gets a fresh mailbox directory,
journal, fault queue and DSN sink, so delivery and refusals are checked from their effects.
"""

from __future__ import annotations

import asyncio
import base64
import select
import shutil
import smtplib
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from segur.ins import ins_key
from segur.journal import Exchange, Journal, payload
from segur.mocks.mss.auth import MssAuthenticator
from segur.mocks.mss.mailboxes import MailboxDirectory
from segur.mocks.mss.smtp import (
    DsnParameterError,
    ReceiptRequest,
    SmtpSubmissionServer,
    split_parameters,
    validate_mail_parameters,
    validate_rcpt_parameters,
)
from segur.mocks.runtime.faults import FaultInjector, FaultRule
from segur.mocks.runtime.tls import RESTRICTED_CIPHERS, server_context
from segur.pki import Pki

HOSPITALIER = "hospitalier.medecin-test@hopital-test.mssante.fr"
GENERALISTE = "generaliste.medecin-test@cabinet-test.mssante.fr"
DPI = "dpi@hopital-test.mssante.fr"
PATIENT_OPEN = "2751263220749" + ins_key("2751263220749")
CLOSED_PATIENT = "2840663220213" + ins_key("2840663220213") + "@patient.mssante.fr"
MESSAGE = b"From: <%s>\r\nTo: <%s>\r\nMessage-ID: <m1@test>\r\nSubject: CR\r\n\r\nCompte rendu fictif.\r\n"


def introspect(token: str) -> dict[str, Any]:
    """PSC introspection stand-in: "good" lasts an hour, "stale" already expired, anything else inactive."""
    lifetimes = {"good": 3600, "stale": -1}
    if token not in lifetimes:
        return {"active": False}
    return {"active": True, "SubjectNameID": "899910000027", "exp": time.time() + lifetimes[token]}


def xoauth2(user: str, token: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


class HoldingJournal(Journal):
    """A journal that signals when one operation is being recorded, and holds it until ``release`` is set."""

    def __init__(self, path: Any) -> None:
        super().__init__(path)
        self.hold_operation = ""
        self.held: Exchange | None = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def record(self, exchange: Exchange) -> dict[str, Any]:
        if exchange.operation == self.hold_operation:
            self.held = exchange
            self.entered.set()
            assert self.release.wait(5)
        return super().record(exchange)

    def operations(self, operation: str) -> list[dict[str, Any]]:
        return [record for record in self.since(0) if record["operation"] == operation]


@dataclass
class Mock:
    server: SmtpSubmissionServer
    directory: MailboxDirectory
    journal: HoldingJournal
    faults: FaultInjector
    pki: Pki
    receipts: list[ReceiptRequest] = field(default_factory=list)

    def inbox(self, address: str) -> list[bytes]:
        return [message.raw for message in self.directory.find(address).folders["INBOX"].messages]

    def connect(self, cert: str | None = None) -> smtplib.SMTP:
        """A client past STARTTLS and the second EHLO (with ``cert`` as its TLS client certificate)."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if cert:
            context.load_cert_chain(self.pki.cert(cert), self.pki.key(cert))
        client = smtplib.SMTP("127.0.0.1", self.server.port, timeout=5)
        client.starttls(context=context)
        client.ehlo("sut.test")
        return client

    def login(self, token: str = "good", user: str = HOSPITALIER) -> smtplib.SMTP:
        client = self.connect()
        assert client.docmd("AUTH", "XOAUTH2 " + xoauth2(user, token))[0] == 235
        return client


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture
def make_mock(loop: asyncio.AbstractEventLoop, pki: Pki, tmp_path: Any) -> Iterator[Callable[..., Mock]]:
    started: list[Mock] = []

    def make(**options: Any) -> Mock:
        directory, receipts = MailboxDirectory.default(), []
        journal, faults = HoldingJournal(tmp_path / f"journal{len(started)}.jsonl"), FaultInjector()
        tls = server_context(pki, require_client_cert=False, request_client_cert=True, ciphers=RESTRICTED_CIPHERS)
        authenticator = MssAuthenticator(directory, introspect=introspect)
        server = SmtpSubmissionServer(
            directory, authenticator, journal, tls, faults, receipts=receipts.append, **options
        )
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
        started.append(Mock(server, directory, journal, faults, pki, receipts))
        return started[-1]

    yield make
    for mock in started:
        asyncio.run_coroutine_threadsafe(mock.server.stop(), loop).result(5)
        mock.journal.close()


@pytest.fixture
def mock(make_mock: Callable[..., Mock]) -> Mock:
    return make_mock()


def test_starttls_required_before_mail_and_auth_then_extensions(mock: Mock) -> None:
    client = smtplib.SMTP("127.0.0.1", mock.server.port, timeout=5)
    features = client.ehlo("sut.test")[1]
    assert b"STARTTLS" in features and b"AUTH" not in features
    assert client.docmd("MAIL", f"FROM:<{HOSPITALIER}>") == (530, b"5.7.0 Must issue a STARTTLS command first")
    assert client.docmd("AUTH", "XOAUTH2 " + xoauth2(HOSPITALIER, "good"))[0] == 530
    [plaintext] = mock.journal.operations("smtp-plaintext")
    assert b"good" not in payload(plaintext, "request") and plaintext["outcome"]["refused"] == "MAIL"
    client.starttls(context=ssl.create_default_context(cafile=str(mock.pki.ca_cert)))
    client.ehlo("sut.test")
    assert client.esmtp_features["auth"] == " XOAUTH2"  # no EXTERNAL without a client certificate, never PLAIN
    for keyword in ("dsn", "8bitmime", "enhancedstatuscodes", "pipelining"):
        assert keyword in client.esmtp_features
    assert client.esmtp_features["size"] == str(mock.server.max_message_bytes)
    assert client.docmd("AUTH", "PLAIN AGZvbwBiYXI=")[0] == 504
    assert client.docmd("MAIL", f"FROM:<{HOSPITALIER}>") == (530, b"5.7.0 Authentication required")


def test_submission_delivers_keeps_dsn_parameters_and_journals(mock: Mock) -> None:
    client = mock.login()
    client.sendmail(
        HOSPITALIER,
        [GENERALISTE],
        MESSAGE % (HOSPITALIER.encode(), GENERALISTE.encode()),
        mail_options=["RET=HDRS", "ENVID=Ab+2Bc"],
        rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Dr.X@Cabinet-Test.mssante.fr"],
    )
    client.quit()
    [delivered] = mock.inbox(GENERALISTE)
    assert delivered.startswith(f"Return-Path: <{HOSPITALIER}>\r\nReceived: from sut.test".encode())
    assert delivered.endswith(b"Compte rendu fictif.\r\n")
    [auth] = mock.journal.operations("smtp-auth")
    assert auth["outcome"] == {"mechanism": "XOAUTH2", "address": HOSPITALIER}
    assert b"good" not in payload(auth, "request")
    [record] = mock.journal.operations("smtp-submission")
    assert payload(record, "request") == MESSAGE % (HOSPITALIER.encode(), GENERALISTE.encode())
    assert payload(record, "response").startswith(b"250 2.0.0")
    assert record["correlation"] == {
        "address": HOSPITALIER,
        "from": HOSPITALIER,
        "to": GENERALISTE,
        "message_id": "<m1@test>",
        "auth": "XOAUTH2",
        "national_id": "899910000027",
    }
    envelope = record["outcome"]["envelope"]
    assert (envelope["ret"], envelope["envid"]) == ("HDRS", "Ab+2Bc")
    assert envelope["rcpts"] == [
        {
            "address": GENERALISTE,
            "notify": ["SUCCESS", "FAILURE"],
            "orcpt": "rfc822;Dr.X@Cabinet-Test.mssante.fr",
            "result": "delivered 2.0.0",
        }
    ]
    assert record["outcome"]["tls_version"].startswith("TLSv1.")
    [receipt] = mock.receipts
    assert (receipt.sender, receipt.envid, receipt.ret) == (HOSPITALIER, "Ab+2Bc", "HDRS")
    assert [(r.address, r.action, r.status) for r in receipt.recipients] == [(GENERALISTE, "delivered", "2.0.0")]


def test_xoauth2_without_initial_response_and_refused_with_json_challenge(mock: Mock) -> None:
    client = mock.connect()
    assert client.docmd("AUTH", "XOAUTH2") == (334, b"")
    assert client.docmd(xoauth2(HOSPITALIER, "good"))[0] == 235
    refused = mock.connect()
    code, challenge = refused.docmd("AUTH", "XOAUTH2 " + xoauth2(HOSPITALIER, "revoked"))
    assert code == 334 and b'"status": "401"' in base64.b64decode(challenge)
    code, text = refused.docmd("")
    assert code == 535 and text.startswith(b"5.7.8 PSC access token inactive")
    record = mock.journal.operations("smtp-auth")[-1]
    assert record["outcome"]["mechanism"] == "XOAUTH2" and "inactive" in record["outcome"]["refused"]


def test_external_with_the_auth_cli_certificate_opens_the_applicative_bal(mock: Mock) -> None:
    client = mock.connect(cert="auth-cli")
    assert client.esmtp_features["auth"] == " XOAUTH2 EXTERNAL"
    assert client.docmd("AUTH", "EXTERNAL =")[0] == 235
    client.sendmail(DPI, [HOSPITALIER], MESSAGE % (DPI.encode(), HOSPITALIER.encode()))
    assert len(mock.inbox(HOSPITALIER)) == 1
    submission = mock.journal.operations("smtp-submission")[-1]
    assert submission["correlation"]["certificate_cn"] == "HOPITAL TEST SEGUR AUTH_CLI"
    without_cert = mock.connect()
    code, text = without_cert.docmd("AUTH", "EXTERNAL =")
    assert code == 535 and b"client certificate" in text


def test_envelope_refusals_are_coded_and_journaled(make_mock: Callable[..., Mock]) -> None:
    mock = make_mock(max_message_bytes=5000)
    client = mock.login()
    assert client.docmd("MAIL", f"FROM:<{GENERALISTE}>")[:1] == (553,)
    assert client.docmd("MAIL", f"FROM:<{HOSPITALIER}> RET=BODY") == (501, b"5.5.4 RET must be FULL or HDRS")
    assert client.docmd("MAIL", f"FROM:<{HOSPITALIER}> SIZE=6000")[1].startswith(b"5.3.4")
    assert client.docmd("MAIL", f"FROM:<{HOSPITALIER}> SIZE=100")[0] == 250
    refusals = {
        "nobody@hopital-test.mssante.fr": (550, b"5.1.1"),
        "fermee.medecin-test@cabinet-test.mssante.fr": (550, b"5.2.1"),
        "someone@gmail.com": (550, b"5.7.1"),
    }
    for address, (code, status) in refusals.items():
        answer = client.docmd("RCPT", f"TO:<{address}>")
        assert (answer[0], answer[1][:5]) == (code, status), address
    assert answer[1].endswith(b"is outside the MSSante trust space")
    assert client.docmd("RCPT", f"TO:<{GENERALISTE}> NOTIFY=NEVER,SUCCESS")[:1] == (501,)
    assert client.docmd("RCPT", "TO:<medecin@autre-operateur.mssante.fr>")[0] == 250
    envelope_records = mock.journal.operations("smtp-envelope")
    assert len(envelope_records) == 7 and all(r["outcome"]["refused"] for r in envelope_records)
    client.rset()
    client.mail(HOSPITALIER)  # no SIZE declared: the limit applies to the DATA actually sent
    client.rcpt(GENERALISTE)
    code, text = client.data(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 6)
    assert (code, text) == (552, b"5.3.4 message exceeds the maximum size of 5000 bytes")
    assert mock.journal.operations("smtp-envelope")[-1]["outcome"]["refused"] == "message too big"
    assert mock.inbox(GENERALISTE) == []


def test_notify_rules_decide_which_recipients_get_a_dsn(mock: Mock) -> None:
    client = mock.login()
    recipients = {
        GENERALISTE: [],  # delivered, default NOTIFY (FAILURE only): no DSN
        f"{PATIENT_OPEN}@patient.mssante.fr": ["NOTIFY=SUCCESS"],  # delivered: DSN
        CLOSED_PATIENT: [],  # accepted at RCPT, bounced after DATA: DSN
        "285076322021466@patient.mssante.fr": ["NOTIFY=NEVER"],  # unknown patient, but NEVER: none
        "medecin@autre-operateur.mssante.fr": ["NOTIFY=SUCCESS,DELAY"],  # relayed: DSN
    }
    client.mail(HOSPITALIER)
    for address, options in recipients.items():
        assert client.rcpt(address, options)[0] == 250
    assert client.data(b"Subject: x\r\n\r\nbody\r\n")[0] == 250
    [receipt] = mock.receipts
    assert [(r.address, r.action, r.status, r.notify) for r in receipt.recipients] == [
        (f"{PATIENT_OPEN}@patient.mssante.fr", "delivered", "2.0.0", ("SUCCESS",)),
        (CLOSED_PATIENT, "failed", "5.2.1", ()),
        ("medecin@autre-operateur.mssante.fr", "relayed", "2.0.0", ("SUCCESS", "DELAY")),
    ]
    assert receipt.recipients[1].diagnostic.startswith("550 5.2.1 mailbox")
    assert len(mock.inbox(f"{PATIENT_OPEN}@patient.mssante.fr")) == 1 and mock.inbox(CLOSED_PATIENT) == []


def test_journal_record_is_written_before_the_reply(mock: Mock) -> None:
    client = mock.login()
    client.mail(HOSPITALIER)
    client.rcpt(GENERALISTE)
    assert client.docmd("DATA")[0] == 354
    mock.journal.hold_operation = "smtp-submission"
    client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    assert mock.journal.entered.wait(5)
    readable, _, _ = select.select([client.sock], [], [], 0.1)
    assert not readable and not client.sock.pending()
    mock.journal.release.set()
    assert client.getreply()[0] == 250


def test_injected_reply_then_retry_succeeds(mock: Mock) -> None:
    mock.faults.add(FaultRule(kind="timeout", operation="mail", delay=0.01))
    mock.faults.add(FaultRule(kind="smtp_reply", operation="rcpt", status=554, code="5.7.1"))
    mock.faults.add(FaultRule(kind="smtp_reply", operation="data", status=451))
    client = mock.login()
    assert client.mail(HOSPITALIER)[0] == 250  # delayed, then answered normally
    assert client.rcpt(GENERALISTE) == (554, b"5.7.1 fault injected by the control API")
    client.rset()
    with pytest.raises(smtplib.SMTPDataError) as injected:
        client.sendmail(HOSPITALIER, [GENERALISTE], b"Subject: x\r\n\r\nbody\r\n")
    assert (injected.value.smtp_code, injected.value.smtp_error) == (451, b"4.3.0 fault injected by the control API")
    assert mock.inbox(GENERALISTE) == []
    assert mock.journal.operations("smtp-submission")[0]["outcome"]["injected"]["point"] == "data"
    client.sendmail(HOSPITALIER, [GENERALISTE], b"Subject: x\r\n\r\nbody\r\n")
    assert len(mock.inbox(GENERALISTE)) == 1


def test_expired_access_token_closes_the_session_at_next_mail(mock: Mock) -> None:
    client = mock.login(token="stale")
    assert client.docmd("MAIL", f"FROM:<{HOSPITALIER}>") == (
        421,
        b"4.7.0 access token expired, reconnect and authenticate again",
    )
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()


def test_disconnect_mid_data_delivers_nothing_and_is_journaled(mock: Mock) -> None:
    client = mock.login()
    client.mail(HOSPITALIER)
    client.rcpt(GENERALISTE)
    assert client.docmd("DATA")[0] == 354
    mock.journal.hold_operation = "smtp-aborted"
    mock.journal.release.set()
    client.send(b"Subject: half\r\n\r\nhalf a mess")
    client.close()
    assert mock.journal.entered.wait(5)
    assert mock.journal.held.outcome["envelope"]["rcpts"][0]["address"] == GENERALISTE
    assert mock.inbox(GENERALISTE) == []


def test_idle_session_is_closed_after_the_configured_timeout(make_mock: Callable[..., Mock]) -> None:
    client = make_mock(timeout=0.2).connect()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.getreply()  # blocks until the server gives up on the idle client (client timeout: 5 s)


def test_malformed_commands_get_5xx_are_journaled_and_the_session_survives(mock: Mock) -> None:
    client = mock.login()
    since = mock.journal.last_seq
    assert client.docmd("MAIL", "FROM:<<<>")[0] // 100 == 5
    assert client.docmd("FROBNICATE")[0] == 500
    assert client.docmd("RCPT", "TO:<x@y.mssante.fr>")[0] == 503
    assert client.docmd("X" * 20000)[0] == 500
    assert client.docmd("AUTH", "PLAIN c2VjcmV0")[0] // 100 == 5
    assert client.noop()[0] == 250
    refused = [r for r in mock.journal.since(since) if r["operation"] == "smtp-refused"]
    assert [payload(r, "request")[:4] for r in refused] == [b"MAIL", b"", b"RCPT", b"", b"AUTH"]
    assert len(refused) == 5 and all(r["outcome"]["refused"][:1] == "5" for r in refused)
    assert all(b"c2VjcmV0" not in payload(r, "request") for r in refused)


def test_dsn_parameter_parsing_keeps_case_and_validates() -> None:
    rest, params = split_parameters("FROM:<a@b> ret=hdrs ENVID=Ab+2Bc SIZE=10", ("RET", "ENVID"))
    assert (rest, params) == ("FROM:<a@b> SIZE=10", {"RET": "hdrs", "ENVID": "Ab+2Bc"})
    assert validate_mail_parameters(params) == ("HDRS", "Ab+2Bc")
    assert validate_rcpt_parameters({"NOTIFY": "failure,delay", "ORCPT": "rfc822;X+40y"}) == (
        ("FAILURE", "DELAY"),
        "rfc822;X+40y",
    )
    for bad in ({"ENVID": "a b"}, {"ENVID": "x" * 101}, {"ENVID": "a+zz"}):
        with pytest.raises(DsnParameterError):
            validate_mail_parameters(bad)
    for bad in ({"NOTIFY": "SOMETIMES"}, {"NOTIFY": "NEVER,FAILURE"}, {"ORCPT": "x@y"}, {"ORCPT": "rfc822;a=b"}):
        with pytest.raises(DsnParameterError):
            validate_rcpt_parameters(bad)
    with pytest.raises(DsnParameterError):
        split_parameters("TO:<a@b> NOTIFY=NEVER notify=NEVER", ("NOTIFY",))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_submits_with_xoauth2(mock: Mock, tmp_path: Any) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE % (HOSPITALIER.encode(), GENERALISTE.encode()))
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--url", mock.server.url, "--ssl-reqd", "--cacert", str(mock.pki.ca_cert),
         "--mail-from", HOSPITALIER, "--mail-rcpt", GENERALISTE, "--upload-file", str(message),
         "--user", HOSPITALIER, "--oauth2-bearer", "good"],
        capture_output=True, timeout=10, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [delivered] = mock.inbox(GENERALISTE)
    assert delivered.endswith(b"Compte rendu fictif.\r\n")
