"""The MSSanté IMAP mock driven by real clients: Python's imaplib, a raw TLS socket, and curl."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from segur.journal import Journal, payload
from segur.mocks.mss.auth import MssAuthenticator
from segur.mocks.mss.imap import ImapServer
from segur.mocks.mss.mailboxes import MailboxDirectory
from segur.mocks.runtime.faults import FaultInjector, FaultRule
from segur.mocks.runtime.tls import server_context
from segur.pki import Pki

ADDRESS = "hospitalier.medecin-test@hopital-test.mssante.fr"
TOKEN = "psc-access-token-imap-test"
PLAIN = b"From: Dr Test <hospitalier.medecin-test@hopital-test.mssante.fr>\r\nTo: dpi@hopital-test.mssante.fr\r\n"
PLAIN += b"Subject: CR consultation\r\nDate: Mon, 3 Feb 2025 10:00:00 +0100\r\nMessage-ID: <a1@test>\r\n\r\nBonjour\r\n"
MIXED = (
    b"From: a@hopital-test.mssante.fr\r\nSubject: pieces jointes\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\npreamble\r\n'
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoir PJ\r\nmerci\r\n"
    b'--XX\r\nContent-Type: application/pdf; name="cr.pdf"\r\nContent-Transfer-Encoding: base64\r\n'
    b'Content-Disposition: attachment; filename="cr.pdf"\r\n\r\nJVBERi0xLjQK\r\n'
    b"--XX\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="ihe.zip"\r\n\r\nUEsDBA==\r\n--XX--\r\n'
)


@dataclass
class Mock:
    server: ImapServer
    directory: MailboxDirectory
    journal: Journal
    faults: FaultInjector
    pki: Pki
    loop: asyncio.AbstractEventLoop
    now: list[float]

    def inbox(self, address: str = ADDRESS) -> Any:
        bal = self.directory.find(address)
        assert bal is not None
        return bal.folders["INBOX"]

    def client(self, cert: str | None = None) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.server.port, timeout=5)
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if cert:
            context.load_cert_chain(self.pki.cert(cert), self.pki.key(cert))
        imap.starttls(context)
        return imap

    def logged_in(self) -> imaplib.IMAP4:
        imap = self.client()
        imap.authenticate("XOAUTH2", lambda _: f"user={ADDRESS}\x01auth=Bearer {TOKEN}\x01\x01".encode())
        return imap


@pytest.fixture(scope="module")
def running(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mock]:
    now = [time.time()]

    def introspect(token: str) -> dict[str, Any]:
        return (
            {"active": True, "SubjectNameID": "899910000027", "exp": now[0] + 3600}
            if token == TOKEN
            else {"active": False}
        )

    directory = MailboxDirectory.default()
    journal = Journal(tmp_path_factory.mktemp("imap") / "journal.jsonl")
    faults = FaultInjector()
    server = ImapServer(
        directory=directory,
        authenticator=MssAuthenticator(directory, introspect=introspect),
        journal=journal,
        tls=server_context(pki, require_client_cert=False, request_client_cert=True),
        faults=faults,
        clock=lambda: now[0],
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    yield Mock(server, directory, journal, faults, pki, loop, now)
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    journal.close()


@pytest.fixture
def mock(running: Mock) -> Iterator[Mock]:
    """Empty folders numbered from UID 1 and no pending fault around each test."""
    for bal in running.directory.bals.values():
        for folder in bal.folders.values():
            folder.messages.clear()
            folder.uid_next = 1
    running.faults.clear()
    running.now[0] = time.time()
    yield running
    running.faults.clear()


class Raw:
    """A line-level client for what imaplib hides: SASL-IR, IDLE, malformed input."""

    def __init__(self, mock: Mock) -> None:
        self.sock: Any = socket.create_connection(("127.0.0.1", mock.server.port), timeout=5)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED]")
        assert self.command(b"S STARTTLS")[-1].startswith(b"S OK")
        context = ssl.create_default_context(cafile=str(mock.pki.ca_cert))
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")
        ir = base64.b64encode(f"user={ADDRESS}\x01auth=Bearer {TOKEN}\x01\x01".encode())
        assert self.command(b"A AUTHENTICATE XOAUTH2 " + ir)[-1].startswith(b"A OK")

    def command(self, line: bytes) -> list[bytes]:
        """Send one command line; the response lines up to its tagged (or BYE) line."""
        self.sock.sendall(line + b"\r\n")
        tag = line.split(b" ", 1)[0]
        lines = []
        while True:
            lines.append(self.file.readline())
            if lines[-1].startswith((tag + b" ", b"* BYE", b"+ ")) or not lines[-1]:
                return lines


def test_starttls_is_required_and_login_is_refused(mock: Mock) -> None:
    plain = imaplib.IMAP4("127.0.0.1", mock.server.port, timeout=5)
    assert plain.capabilities == ("IMAP4REV1", "STARTTLS", "LOGINDISABLED")
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        plain.authenticate("XOAUTH2", lambda _: b"x")
    with pytest.raises(imaplib.IMAP4.error):
        plain.login(ADDRESS, "secret")
    plain.logout()
    imap = mock.client()
    assert {"AUTH=XOAUTH2", "AUTH=EXTERNAL", "SASL-IR", "IDLE", "UIDPLUS"} <= set(imap.capabilities)
    with pytest.raises(imaplib.IMAP4.error, match="LOGIN is disabled"):
        imap.login(ADDRESS, "secret")


def test_xoauth2_refusal_sends_the_json_challenge_then_no(mock: Mock) -> None:
    imap = mock.client()
    challenges: list[bytes] = []

    def answer(challenge: bytes) -> bytes:
        challenges.append(challenge)
        return b"" if challenge else f"user={ADDRESS}\x01auth=Bearer revoked\x01\x01".encode()

    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.authenticate("XOAUTH2", answer)
    assert json.loads(challenges[-1])["status"] == "401"
    imap.authenticate("XOAUTH2", lambda _: f"user={ADDRESS}\x01auth=Bearer {TOKEN}\x01\x01".encode())
    assert imap.state == "AUTH"
    assert imap.list()[1] == [b'(\\HasNoChildren) "/" "INBOX"', b'(\\HasNoChildren) "/" "Sent"']
    records = [r for r in mock.journal.since(0) if r["operation"] == "imap-authenticate"]
    assert all(TOKEN.encode() not in payload(r, "request") + payload(r, "response") for r in records)
    assert records[-1]["correlation"] == {"address": ADDRESS, "auth": "XOAUTH2", "national_id": "899910000027"}


def test_external_opens_the_app_bal_of_the_auth_cli_certificate(mock: Mock) -> None:
    imap = mock.client(cert="auth-cli")
    imap.authenticate("EXTERNAL", lambda _: b"")
    mock.inbox("dpi@hopital-test.mssante.fr").append(PLAIN)
    assert imap.select("INBOX") == ("OK", [b"1"])
    assert imap.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")[1] == [b'"INBOX" (MESSAGES 1 UNSEEN 1 UIDNEXT 2)']
    without_cert = mock.client()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        without_cert.authenticate("EXTERNAL", lambda _: b"")


def test_fetch_returns_the_exact_bytes_and_only_body_sets_seen(mock: Mock) -> None:
    mock.inbox().append(PLAIN)
    imap = mock.logged_in()
    imap.select("INBOX")
    data = imap.fetch("1", "(FLAGS BODY.PEEK[])")[1]
    assert data[0][1] == PLAIN and b"FLAGS ()" in data[0][0]
    assert imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1] == b"Subject: CR consultation\r\n\r\n"
    assert imap.fetch("1", "(BODY.PEEK[TEXT]<0.3>)")[1][0][1] == b"Bon"
    assert "\\Seen" not in mock.inbox().messages[0].flags
    data = imap.uid("FETCH", "1", "(BODY[])")[1]
    assert data[0][1] == PLAIN and b"FLAGS (\\Seen)" in data[1]
    envelope = imap.fetch("1", "ENVELOPE")[1][0]
    assert b'"CR consultation" (("Dr Test" NIL "hospitalier.medecin-test" "hopital-test.mssante.fr"))' in envelope
    examine = mock.logged_in()
    examine.select("INBOX", readonly=True)
    assert examine.store("1", "+FLAGS", "\\Flagged") == ("NO", [b"[READ-ONLY] mailbox opened with EXAMINE"])


def test_bodystructure_of_a_multipart_with_pdf_and_zip(mock: Mock) -> None:
    mock.inbox().append(MIXED)
    imap = mock.logged_in()
    imap.select("INBOX")
    expected = (
        b'1 (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 14 2 NIL NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "cr.pdf") NIL NIL "BASE64" 12 NIL ("ATTACHMENT" ("FILENAME" "cr.pdf")) NIL NIL)'
        b'("APPLICATION" "ZIP" NIL NIL NIL "BASE64" 8 NIL ("ATTACHMENT" ("FILENAME" "ihe.zip")) NIL NIL)'
        b' "MIXED" ("BOUNDARY" "XX") NIL NIL NIL))'
    )
    assert imap.fetch("1", "BODYSTRUCTURE")[1][0] == expected
    assert imap.fetch("1", "(BODY.PEEK[2])")[1][0][1] == b"JVBERi0xLjQK"
    assert imap.fetch("1", "(BODY.PEEK[3.MIME])")[1][0][1].startswith(b"Content-Type: application/zip\r\n")
    assert imap.fetch("1", "(BODY.PEEK[1])")[1][0][1] == b"Voir PJ\r\nmerci"


def test_search_store_and_expunge_renumbering(mock: Mock) -> None:
    for subject in (b"un", b"deux", b"trois"):
        mock.inbox().append(b"From: x@y.fr\r\nSubject: " + subject + b"\r\n\r\ncorps\r\n")
    imap = mock.logged_in()
    imap.select("INBOX")
    assert imap.search(None, "SUBJECT", "deux") == ("OK", [b"2"])
    assert imap.search(None, "OR", "SUBJECT", "un", "NOT", "SMALLER", "1") == ("OK", [b"1 2 3"])
    assert imap.store("2", "+FLAGS", "(\\Deleted)")[1] == [b"2 (FLAGS (\\Deleted))"]
    assert imap.search(None, "DELETED") == ("OK", [b"2"])
    assert imap.uid("SEARCH", "UNDELETED", "UID", "2:*") == ("OK", [b"3"])
    assert imap.expunge() == ("OK", [b"2"])
    assert imap.fetch("2", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][0] == (
        b"2 (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {18}"
    )
    assert [m.uid for m in mock.inbox().messages] == [1, 3]


def test_append_takes_a_literal_with_flags_and_date(mock: Mock) -> None:
    imap = mock.logged_in()
    typ, data = imap.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(1738573200), PLAIN)
    sent = mock.directory.find(ADDRESS).folders["Sent"]
    assert typ == "OK" and data[0].startswith(b"[APPENDUID %d 1]" % sent.uid_validity)
    assert sent.messages[0].raw == PLAIN and sent.messages[0].flags == {"\\Seen"}
    assert sent.messages[0].internal_date.timestamp() == 1738573200
    imap.select("Sent")
    assert imap.fetch("1", "(RFC822.SIZE INTERNALDATE)")[1][0].startswith(b"1 (RFC822.SIZE %d" % len(PLAIN))


def test_idle_announces_a_delivery_signalled_by_notify(mock: Mock) -> None:
    raw = Raw(mock)
    raw.command(b"s SELECT INBOX")
    assert raw.command(b"i IDLE") == [b"+ idling\r\n"]
    mock.directory.deliver(ADDRESS, PLAIN)
    mock.server.notify(ADDRESS)
    assert raw.file.readline() == b"* 1 EXISTS\r\n"
    raw.sock.sendall(b"DONE\r\n")
    assert raw.file.readline() == b"i OK IDLE terminated\r\n"
    record = mock.journal.since(0)[-1]
    assert record["operation"] == "imap-idle" and payload(record, "request") == b"i IDLE\r\nDONE\r\n"
    assert payload(record, "response") == b"+ idling\r\n* 1 EXISTS\r\ni OK IDLE terminated\r\n"


def test_malformed_commands_get_bad_and_the_session_goes_on(mock: Mock) -> None:
    raw = Raw(mock)
    assert raw.command(b'a1 SELECT "INBOX')[-1].startswith(b"a1 BAD unterminated quoted string")
    assert raw.command(b"a2 FROBNICATE")[-1].startswith(b"a2 BAD unknown")
    raw.command(b"a3 SELECT INBOX")
    assert raw.command(b"a4 FETCH 0:x FLAGS")[-1].startswith(b"a4 BAD")
    assert raw.command(b"a5 FETCH 1 (FLAGS")[-1].startswith(b"a5 BAD")
    assert raw.command(b"a6 APPEND Sent {999999999}")[-1].startswith(b"a6 NO [TOOBIG]")
    assert raw.command(b"a7 NOOP")[-1] == b"a7 OK NOOP completed\r\n"
    assert raw.command(b"a8 " + b"X" * 70_000)[-1].startswith(b"* BYE line too long")


def test_every_command_is_journaled_with_its_full_response(mock: Mock) -> None:
    raw = Raw(mock)
    seq = mock.journal.last_seq
    lines = raw.command(b"j1 SELECT INBOX")
    record = mock.journal.since(seq)[0]
    assert payload(record, "response") == b"".join(lines)
    assert record["operation"] == "imap-select" and record["outcome"] == {"status": "OK"}
    login = next(r for r in mock.journal.since(0) if payload(r, "request").startswith(b"A AUTHENTICATE"))
    assert payload(login, "request") == b"A AUTHENTICATE XOAUTH2 <redacted>\r\n"


def test_faults_no_and_bye(mock: Mock) -> None:
    raw = Raw(mock)
    mock.faults.add(FaultRule("imap_no", "imap-select"))
    assert raw.command(b"f1 SELECT INBOX")[-1] == b"f1 NO [UNAVAILABLE] fault injected by the control API\r\n"
    assert raw.command(b"f2 SELECT INBOX")[-1].startswith(b"f2 OK")
    mock.faults.add(FaultRule("imap_bye", "imap-noop"))
    assert raw.command(b"f3 NOOP")[-1].startswith(b"* BYE [UNAVAILABLE]")
    assert raw.file.readline() == b""


def test_timeout_fault_delays_and_a_failed_handshake_is_journaled(mock: Mock) -> None:
    raw = Raw(mock)
    mock.faults.add(FaultRule("timeout", "imap-noop", delay=0.01))
    assert raw.command(b"t1 NOOP")[-1] == b"t1 OK NOOP completed\r\n"
    seq = mock.journal.last_seq
    with socket.create_connection(("127.0.0.1", mock.server.port), timeout=5) as plain:
        reader = plain.makefile("rb")
        reader.readline()
        plain.sendall(b"h STARTTLS\r\n")
        assert reader.readline() == b"h OK Begin TLS negotiation now\r\n"
        plain.sendall(b"not a TLS ClientHello\r\n" * 4)
        assert reader.readline() == b""
    deadline = time.monotonic() + 3  # the server learns of the failed handshake after the client sees EOF
    while len(mock.journal.since(seq)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r["operation"] for r in mock.journal.since(seq)] == ["imap-starttls", "tls-handshake"]


def test_plaintext_pipelined_after_starttls_is_discarded_not_run(mock: Mock) -> None:
    """A man in the middle appends a command to STARTTLS in clear: it must not run inside the TLS session."""
    seq = mock.journal.last_seq
    with socket.create_connection(("127.0.0.1", mock.server.port), timeout=5) as plain:
        reader = plain.makefile("rb")
        reader.readline()
        plain.sendall(b"h STARTTLS\r\ni CAPABILITY\r\n")
        assert reader.readline() == b"h OK Begin TLS negotiation now\r\n"
        context = ssl.create_default_context(cafile=str(mock.pki.ca_cert))
        with context.wrap_socket(plain, server_hostname="localhost") as tls:
            secure = tls.makefile("rb")
            tls.sendall(b"n NOOP\r\n")
            assert secure.readline() == b"n OK NOOP completed\r\n", "the injected CAPABILITY must not answer first"
    injected = [r for r in mock.journal.since(seq) if r["operation"] == "imap-starttls-injection"]
    assert len(injected) == 1 and injected[0]["outcome"]["discarded"] == len(b"i CAPABILITY\r\n")


def test_expired_token_ends_the_session_at_the_next_command(mock: Mock) -> None:
    raw = Raw(mock)
    mock.now[0] += 3601
    assert raw.command(b"e1 NOOP")[-1].startswith(b"* BYE [EXPIRED] access token expired")
    assert raw.file.readline() == b""
    assert mock.journal.since(0)[-1]["outcome"] == {"status": "BYE"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_fetches_a_message_by_uid_with_an_oauth2_bearer(mock: Mock) -> None:
    protocols = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True).stdout
    if " imap " not in protocols:
        pytest.skip("this curl has no IMAP support")
    mock.inbox().append(PLAIN)
    url = f"imap://127.0.0.1:{mock.server.port}/INBOX;UID=1"
    result = subprocess.run(
        [
            "curl",
            "-s",
            "--ssl-reqd",
            "--cacert",
            str(Path(mock.pki.ca_cert)),
            url,
            "--user",
            ADDRESS,
            "--oauth2-bearer",
            TOKEN,
            "--max-time",
            "10",
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == PLAIN
