"""The MSSanté operator mock's IMAP server: a small, strict IMAP4rev1 subset on asyncio streams.

Why not pymap: it is alpha and unreleased since 2024, and fault injection, XOAUTH2's challenge
dance and journaling every command before its tagged answer need control of the command loop.
So, like mocks/runtime/http.py for HTTP, this is ``asyncio.start_server`` with STARTTLS done by
``StreamWriter.start_tls``. The wire syntax and the FETCH views live in ``imap_syntax``.

Choices (modelled, not published by the ANS): LOGIN is never allowed (LOGINDISABLED, even after
STARTTLS); a session ends with ``* BYE [EXPIRED]`` (RFC 5530) at the first command after its PSC
access token expires, because MSSanté operators require re-authentication rather than keeping the
session as Gmail does; ``\\Recent`` is never set (RECENT is always 0); a literal above
``max_literal`` is refused with ``NO [TOOBIG]`` (RFC 4469, the code RFC 7889 APPENDLIMIT uses)
before its continuation, so the client never sends it. LITERAL+ is not advertised.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import functools
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime

from segur.journal import Exchange, Journal, now_iso
from segur.mocks.mss.auth import EXTERNAL, XOAUTH2, AuthRefused, MssAuthenticator, Principal
from segur.mocks.mss.imap_syntax import (
    FetchItem,
    ImapSyntaxError,
    Parser,
    Part,
    body_structure,
    envelope,
    header_value,
    internal_date,
    parse_part,
    quote,
    section_bytes,
)
from segur.mocks.mss.mailboxes import Bal, Folder, MailboxDirectory, StoredMessage
from segur.mocks.mss.probes import IMPLICIT_TLS, PLAIN_AUTH, ProbeSession, tls_first
from segur.mocks.runtime.faults import FaultInjector
from segur.mocks.runtime.http import peer_info
from segur.mocks.runtime.loopback import LoopbackServer

FAULT_KINDS = ("imap_no", "imap_bye", "timeout")
GREETING_CAPABILITIES = b"IMAP4rev1 STARTTLS LOGINDISABLED"
CAPABILITIES = b"IMAP4rev1 AUTH=XOAUTH2 AUTH=EXTERNAL SASL-IR IDLE UIDPLUS LOGINDISABLED"
PLAIN_AUTH_CAPABILITIES = b"IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR"  # the plain-auth probe: LOGIN allowed in clear
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
MAX_LINE = 64 * 1024
DEFAULT_MAX_LITERAL = 50 * 1024 * 1024
_LITERAL_AT_END = re.compile(rb"\{(\d{1,10})(\+?)\}\r\n\Z")
_FLAG_TEXT = b"(" + " ".join(SYSTEM_FLAGS).encode() + b")"

Handler = Callable[["_Session", Parser], Awaitable[tuple[str, str]]]
_COMMANDS: dict[str, tuple[Handler, tuple[str, ...]]] = {}


class _Bye(Exception):
    """End the session with ``* BYE <text>``."""


class _Refused(Exception):
    """A command refused before it is parsed (its literal is too big or not allowed)."""

    def __init__(self, raw: bytes, status: str, text: str) -> None:
        super().__init__(text)
        self.raw, self.status, self.text = raw, status, text


def command(name: str, *states: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _COMMANDS[name] = (handler, states)
        return handler

    return register


class ImapServer(LoopbackServer["_Session"]):
    """Serves the operator's BALs over IMAP with STARTTLS; ``notify`` wakes IDLE sessions after a delivery."""

    scheme = "imap"

    def __init__(
        self,
        *,
        directory: MailboxDirectory,
        authenticator: MssAuthenticator,
        journal: Journal,
        tls: ssl.SSLContext,
        faults: FaultInjector,
        host: str = "127.0.0.1",
        port: int = 0,
        max_literal: int = DEFAULT_MAX_LITERAL,
        idle_timeout: float = 1800.0,
        handshake_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host, port)
        self.directory = directory
        self.authenticator = authenticator
        self.journal = journal
        self.tls = tls
        self.faults = faults
        self.max_literal = max_literal
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self.clock = clock
        self.probe: str | None = None  # the security probe new sessions meet (probes.py)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._listen(self._connection)

    def _connection(self) -> asyncio.BaseProtocol:
        """What ``asyncio.start_server`` builds, behind a first TLS handshake under the implicit-tls probe."""
        probe = ProbeSession(self.probe, "imap", self.journal) if self.probe else None
        reader = asyncio.StreamReader(limit=MAX_LINE, loop=self._loop)
        protocol = asyncio.StreamReaderProtocol(reader, functools.partial(self._serve, probe=probe), loop=self._loop)
        if probe is not None and probe.kind == IMPLICIT_TLS:
            return tls_first(protocol, self.tls, probe)
        return protocol

    def notify(self, address: str) -> None:
        """Tell IDLE sessions on ``address`` that its folders changed; callable from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake, address)

    def _wake(self, address: str) -> None:
        for session in self._connections.values():
            if session.bal is not None and session.bal.address.lower() == address.strip().lower():
                session.wake.set()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, probe: ProbeSession | None = None
    ) -> None:
        session = _Session(self, reader, writer, probe)
        try:
            await self._hold(writer, session, session.run())
        finally:
            if probe is not None:
                probe.close()


@dataclass
class _Candidate:
    """A message as SEARCH sees it: its numbers and, parsed on demand, its MIME tree."""

    seq: int
    message: StoredMessage
    _part: Part | None = None

    @property
    def part(self) -> Part:
        if self._part is None:
            self._part = parse_part(self.message.raw)
        return self._part


class _Session:
    def __init__(
        self,
        server: ImapServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        probe: ProbeSession | None = None,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.probe = probe
        self.peer = peer_info(writer)
        self.secure = writer.get_extra_info("ssl_object") is not None  # implicit TLS (probe)
        self.principal: Principal | None = None
        self.bal: Bal | None = None
        self.folder: Folder | None = None
        self.read_only = False
        self.view: list[int] = []
        self.wake = asyncio.Event()
        self.request = b""
        self.transcript = bytearray()
        self.pending = bytearray()
        self.after: Callable[[], Awaitable[None]] | None = None

    @property
    def state(self) -> str:
        if self.principal is None:
            return "nonauth"
        return "selected" if self.folder is not None else "auth"

    @property
    def capabilities(self) -> bytes:
        if self.probe is not None and self.probe.kind == PLAIN_AUTH:
            return PLAIN_AUTH_CAPABILITIES
        return CAPABILITIES if self.secure else GREETING_CAPABILITIES

    def tagged(self, outcome: dict[str, object]) -> dict[str, object]:
        """A journal outcome, with the probe this session runs under."""
        return {"probe": self.probe.kind, **outcome} if self.probe is not None else outcome

    def record_event(self, operation: str, started: str, outcome: dict[str, object], request: bytes = b"") -> None:
        """A session event that is no command (handshake refused, plaintext dropped): journaled all the same."""
        self.server.journal.record(
            Exchange(
                mock="mss",
                operation=operation,
                request=request,
                response=b"",
                started=started,
                peer=self.peer,
                outcome=self.tagged(outcome),
            )
        )

    async def run(self) -> None:
        self.writer.write(b"* OK [CAPABILITY " + self.capabilities + b"] MSSante operator mock ready\r\n")
        await self.writer.drain()
        while True:
            self.transcript, self.pending, self.after = bytearray(), bytearray(), None
            started = now_iso()
            try:
                raw = await self._read_command()
            except _Bye as bye:
                await self._bye(started, "imap-session", str(bye))
                return
            except _Refused as refused:
                self.request = refused.raw
                await self._finish(
                    started, _tag(refused.raw), "imap-" + _name(refused.raw), refused.status, refused.text
                )
                continue
            if raw is None:
                return
            self.request = raw
            if not await self._execute(raw, started):
                return

    async def _execute(self, raw: bytes, started: str) -> bool:
        """Run one command; False once the session is over."""
        parser = Parser(raw)
        tag, name = b"*", ""
        try:
            tag = parser.atom(extra=b"]").encode()
            if "+" in tag.decode():
                raise ImapSyntaxError("a tag may not contain '+'")
            parser.sp()
            name = parser.atom().upper()
            if name == "UID":
                parser.sp()
                name = "UID " + parser.atom().upper()
        except ImapSyntaxError as error:
            await self._finish(started, tag, "imap-" + (name.lower() or "unparsed"), "BAD", str(error))
            return True
        operation = "imap-" + name.lower().replace(" ", "-")
        if self.probe is not None:
            self.probe.command(name, self.writer)
        try:
            status, text = await self._dispatch(name, parser)
        except ImapSyntaxError as error:
            status, text = "BAD", str(error)
        except _Bye as bye:
            await self._bye(started, operation, str(bye))
            return False
        await self._finish(started, tag, operation, status, text)
        if self.after is not None:
            await self.after()
        return name != "LOGOUT" and not self.writer.is_closing()

    async def _dispatch(self, name: str, parser: Parser) -> tuple[str, str]:
        expires = self.principal.token_expires if self.principal else None
        if expires is not None and self.server.clock() >= expires:
            raise _Bye("[EXPIRED] access token expired: authenticate again with a fresh token")
        entry = _COMMANDS.get(name)
        if entry is None:
            return "BAD", f"unknown or unsupported command {name}"
        handler, states = entry
        if self.probe is not None and self.probe.kind == PLAIN_AUTH and name in ("LOGIN", "AUTHENTICATE", "STARTTLS"):
            return await self._plain_auth(name, parser)
        if not self.secure and name not in ("CAPABILITY", "NOOP", "LOGOUT", "STARTTLS"):
            return "NO", "[PRIVACYREQUIRED] STARTTLS first"
        if states and self.state not in states:
            return "BAD", f"{name} is not allowed in the {self.state} state"
        fault = self.server.faults.take("imap-" + name.lower().replace(" ", "-"), FAULT_KINDS)
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
        elif fault is not None and fault.kind == "imap_no":
            return "NO", "[UNAVAILABLE] fault injected by the control API"
        elif fault is not None:
            raise _Bye("[UNAVAILABLE] fault injected by the control API")
        status, text = await handler(self, parser)
        if self.folder is not None and status == "OK" and name != "LOGOUT":
            self.pending += self._sync(allow_expunge=name not in ("FETCH", "STORE", "SEARCH"))
        return status, text

    async def _plain_auth(self, name: str, parser: Parser) -> tuple[str, str]:
        """Plain-auth probe: take the credentials (journaled redacted) so the journal can say they were sent."""
        if name == "STARTTLS":
            return "NO", "STARTTLS is not available"
        mechanism = "LOGIN"
        if name == "AUTHENTICATE":
            parser.sp()
            mechanism = parser.atom().upper()
            if parser.peek() != b" ":
                await self._sasl_line(b"+ \r\n")
        assert self.probe is not None
        self.probe.credentials_sent(mechanism)
        return "NO", "[PRIVACYREQUIRED] credentials sent without TLS are refused"

    async def _read_command(self) -> bytes | None:
        raw = bytearray()
        while True:
            line = await self._readline(self.server.idle_timeout)
            if line is None:
                return None
            raw += line
            match = _LITERAL_AT_END.search(line)
            if match is None:
                return bytes(raw)
            size = int(match[1])
            if match[2]:
                if size <= self.server.max_literal:
                    await self.reader.readexactly(size)
                    await self._readline(self.server.idle_timeout)
                raise _Refused(bytes(raw), "BAD", "LITERAL+ is not advertised: use a synchronising literal")
            if size > self.server.max_literal:
                raise _Refused(bytes(raw), "NO", f"[TOOBIG] literal of {size} octets exceeds {self.server.max_literal}")
            await self._send_now(b"+ Ready for literal\r\n")
            raw += await self.reader.readexactly(size)

    async def _readline(self, timeout: float) -> bytes | None:
        try:
            return await asyncio.wait_for(self.reader.readuntil(b"\n"), timeout)
        except TimeoutError:
            raise _Bye(f"idle for {timeout:g} s: closing") from None
        except asyncio.LimitOverrunError:
            raise _Bye(f"line too long (limit {MAX_LINE} octets)") from None
        except asyncio.IncompleteReadError:
            return None

    async def _send_now(self, data: bytes) -> None:
        """Continuations and IDLE updates: written at once, and kept for the command's journal record."""
        self.transcript += data
        self.writer.write(data)
        await self.writer.drain()

    def _queue(self, data: bytes) -> None:
        self.pending += data

    async def _finish(self, started: str, tag: bytes, operation: str, status: str, text: str) -> None:
        """Journal the command, THEN write its untagged responses and its tagged completion."""
        tagged = tag + b" " + status.encode() + b" " + text.encode("utf-8", "replace") + b"\r\n"
        self._journal(started, operation, status, self.pending + tagged)
        self.writer.write(bytes(self.pending) + tagged)
        await self.writer.drain()

    async def _bye(self, started: str, operation: str, text: str) -> None:
        bye = b"* BYE " + text.encode() + b"\r\n"
        self._journal(started, operation, "BYE", self.pending + bye)
        with contextlib.suppress(ConnectionError):
            self.writer.write(bytes(self.pending) + bye)
            await self.writer.drain()
        self.writer.close()

    def _journal(self, started: str, operation: str, status: str, response: bytes) -> None:
        request = re.sub(rb"^(\S+ AUTHENTICATE \S+ )\S+", rb"\1<redacted>", self.request, flags=re.IGNORECASE)
        request = re.sub(rb"^(\S+ LOGIN ).*", rb"\1<redacted>", request, flags=re.IGNORECASE | re.DOTALL)
        self.server.journal.record(
            Exchange(
                mock="mss",
                operation=operation,
                request=request,
                response=bytes(self.transcript) + response,
                started=started,
                peer=self.peer,
                correlation=self.principal.correlation() if self.principal else {},
                outcome=self.tagged({"status": status}),
            )
        )

    def _sync(self, allow_expunge: bool) -> bytes:
        """Untagged EXPUNGE (highest first) and EXISTS bringing this session's view up to the folder."""
        assert self.folder is not None
        with self.server.directory.lock:
            current = [message.uid for message in self.folder.messages]
        out = bytearray()
        if allow_expunge:
            present = set(current)
            for index in range(len(self.view), 0, -1):
                if self.view[index - 1] not in present:
                    del self.view[index - 1]
                    out += b"* %d EXPUNGE\r\n" % index
        known = set(self.view)
        fresh = [uid for uid in current if uid not in known and uid > (max(self.view) if self.view else 0)]
        if fresh:
            self.view += fresh
            out += b"* %d EXISTS\r\n" % len(self.view)
        return bytes(out)

    async def _sasl_line(self, prompt: bytes) -> bytes:
        await self._send_now(prompt)
        line = await self._readline(self.server.idle_timeout)
        if line is None:
            raise ConnectionError("client left during AUTHENTICATE")
        self.request += b"<redacted>\r\n"
        return line.rstrip(b"\r\n")

    def _messages(self, numbers: set[int], uid: bool) -> list[tuple[int, StoredMessage]]:
        """(sequence number, message) for the view's messages selected by ``numbers``, in sequence order."""
        assert self.folder is not None
        with self.server.directory.lock:
            by_uid = {message.uid: message for message in self.folder.messages}
        selected = []
        for seq, message_uid in enumerate(self.view, 1):
            if (message_uid if uid else seq) in numbers and message_uid in by_uid:
                selected.append((seq, by_uid[message_uid]))
        return selected

    @property
    def uid_command(self) -> bool:
        """``UID FETCH``/``UID STORE``/``UID SEARCH``: sets name UIDs, and answers carry them."""
        return self.request.split(b" ", 3)[1].upper() == b"UID"

    def _targets(self, parser: Parser) -> tuple[bool, set[int]]:
        """FETCH and STORE (plain or UID): the messages their sequence set names, past the space after it."""
        uid = self.uid_command
        parser.sp()
        numbers = self._numbers(parser, uid)
        parser.sp()
        return uid, numbers

    def _numbers(self, parser: Parser, uid: bool) -> set[int]:
        sequence = parser.sequence_set()
        if uid:
            with self.server.directory.lock:
                largest = self.folder.messages[-1].uid if self.folder and self.folder.messages else 0
            return sequence.resolve(largest)
        numbers = sequence.resolve(len(self.view))
        if not self.view or max(numbers) > len(self.view):
            raise ImapSyntaxError(f"message sequence number out of range (1:{len(self.view)})")
        return numbers


def _tag(raw: bytes) -> bytes:
    tag = raw.split(b" ", 1)[0]
    return tag if re.fullmatch(rb"[!#$&'\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+", tag) else b"*"


def _name(raw: bytes) -> str:
    words = raw.split(b" ", 2)
    return words[1].decode("ascii", "replace").lower() if len(words) > 1 else "unparsed"


def _flags(flags: set[str]) -> bytes:
    return b"(" + " ".join(sorted(flags)).encode() + b")"


@command("CAPABILITY")
async def _capability(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.end()
    session._queue(b"* CAPABILITY " + session.capabilities + b"\r\n")
    return "OK", "CAPABILITY completed"


@command("NOOP")
async def _noop(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.end()
    return "OK", "NOOP completed"


@command("CHECK", "selected")
async def _check(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.end()
    return "OK", "CHECK completed"


@command("LOGOUT")
async def _logout(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.end()
    session._queue(b"* BYE MSSante operator mock logging out\r\n")
    return "OK", "LOGOUT completed"


@command("STARTTLS", "nonauth")
async def _starttls(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.end()
    if session.secure:
        return "BAD", "TLS is already active"

    async def upgrade() -> None:
        started = now_iso()
        # Plaintext pipelined after STARTTLS must not be read as if it came over TLS (RFC 3501 §6.2.1, the
        # CVE-2011-0411 class): drop it, as aiosmtpd does for SMTP; asyncio has no public API for the buffer.
        injected = bytes(session.reader._buffer)  # type: ignore[attr-defined]
        session.reader._buffer.clear()  # type: ignore[attr-defined]
        if injected:
            session.record_event("imap-starttls-injection", started, {"discarded": len(injected)}, request=injected)
        try:
            await asyncio.wait_for(session.writer.start_tls(session.server.tls), session.server.handshake_timeout)
        except (ssl.SSLError, TimeoutError, ConnectionError, OSError) as error:
            reason = f"{type(error).__name__}: {error}"
            session.record_event("tls-handshake", started, {"refused": "tls", "reason": reason})
            if session.probe is not None:
                session.probe.refused(error)
            session.writer.close()
            return
        session.secure = True
        session.peer = peer_info(session.writer)

    session.after = upgrade
    return "OK", "Begin TLS negotiation now"


@command("LOGIN", "nonauth")
async def _login(session: _Session, parser: Parser) -> tuple[str, str]:
    return "NO", "LOGIN is disabled (LOGINDISABLED): use AUTHENTICATE XOAUTH2 or EXTERNAL"


@command("AUTHENTICATE", "nonauth")
async def _authenticate(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.sp()
    mechanism = parser.atom().upper()
    initial = None
    if parser.peek() == b" ":
        parser.sp()
        initial = parser.atom().encode()
    parser.end()
    if mechanism not in (XOAUTH2, EXTERNAL):
        return "NO", f"unsupported SASL mechanism {mechanism}"
    answer = initial if initial is not None else await session._sasl_line(b"+ \r\n")
    if answer == b"*":
        return "BAD", "AUTHENTICATE cancelled by the client"
    try:
        decoded = b"" if answer == b"=" else base64.b64decode(answer, validate=True)
    except binascii.Error:
        return "BAD", "the SASL response is not base64"
    authenticator = session.server.authenticator
    try:
        if mechanism == XOAUTH2:
            principal = await asyncio.to_thread(authenticator.xoauth2, decoded)
        else:
            principal = authenticator.external(session.peer, decoded.decode("utf-8", "replace"))
    except AuthRefused as refused:
        if refused.challenge is not None:
            await session._sasl_line(b"+ " + base64.b64encode(refused.challenge) + b"\r\n")
        return "NO", f"[AUTHENTICATIONFAILED] {refused.reason}"
    session.principal = principal
    session.bal = session.server.directory.find(principal.address)
    return "OK", f"{mechanism} authentication of {principal.address} succeeded"


@command("LIST", "auth", "selected")
@command("LSUB", "auth", "selected")
async def _list(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.sp()
    reference = parser.astring().decode("utf-8", "replace")
    parser.sp()
    pattern = parser.list_mailbox()
    parser.end()
    verb = b"LSUB" if session.request.split(b" ", 2)[1].upper() == b"LSUB" else b"LIST"
    if not pattern:
        session._queue(b"* " + verb + b' (\\Noselect) "/" ""\r\n')
        return "OK", f"{verb.decode()} completed"
    regex = "".join(
        ".*" if char == "*" else "[^/]*" if char == "%" else re.escape(char) for char in reference + pattern
    )
    assert session.bal is not None
    for name in session.bal.folders:
        candidate = name if name != "INBOX" else "INBOX"
        flags = re.IGNORECASE if name == "INBOX" else 0
        if re.fullmatch(regex, candidate, flags):
            session._queue(b"* " + verb + b' (\\HasNoChildren) "/" ' + quote(name) + b"\r\n")
    return "OK", f"{verb.decode()} completed"


def _folder(session: _Session, name: str) -> Folder | None:
    assert session.bal is not None
    return session.bal.folders.get(name)


@command("STATUS", "auth", "selected")
async def _status(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.sp()
    name = parser.mailbox()
    parser.sp()
    parser.expect(b"(", "'(' opening the status items")
    items = [parser.atom().upper()]
    while parser.peek() == b" ":
        parser.sp()
        items.append(parser.atom().upper())
    parser.expect(b")", "')' closing the status items")
    parser.end()
    folder = _folder(session, name)
    if folder is None:
        return "NO", f"[NONEXISTENT] no mailbox {name}"
    with session.server.directory.lock:
        values = {
            "MESSAGES": len(folder.messages),
            "UIDNEXT": folder.uid_next,
            "UIDVALIDITY": folder.uid_validity,
            "UNSEEN": sum("\\Seen" not in message.flags for message in folder.messages),
            "RECENT": 0,
        }
    unknown = [item for item in items if item not in values]
    if unknown:
        raise ImapSyntaxError(f"unknown STATUS item {unknown[0]}")
    answer = " ".join(f"{item} {values[item]}" for item in items)
    session._queue(b"* STATUS " + quote(name) + b" (" + answer.encode() + b")\r\n")
    return "OK", "STATUS completed"


@command("SELECT", "auth", "selected")
@command("EXAMINE", "auth", "selected")
async def _select(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.sp()
    name = parser.mailbox()
    parser.end()
    examine = session.request.split(b" ", 2)[1].upper() == b"EXAMINE"
    session.folder, session.view = None, []
    folder = _folder(session, name)
    if folder is None:
        return "NO", f"[NONEXISTENT] no mailbox {name}"
    with session.server.directory.lock:
        session.view = [message.uid for message in folder.messages]
        unseen = next((n for n, message in enumerate(folder.messages, 1) if "\\Seen" not in message.flags), 0)
        validity, uid_next = folder.uid_validity, folder.uid_next
    permanent = b"()" if examine else _FLAG_TEXT[:-1] + b" \\*)"
    session._queue(b"* FLAGS " + _FLAG_TEXT + b"\r\n* %d EXISTS\r\n* 0 RECENT\r\n" % len(session.view))
    if unseen:
        session._queue(b"* OK [UNSEEN %d] first unseen message\r\n" % unseen)
    session._queue(
        b"* OK [UIDVALIDITY %d] UIDs valid\r\n* OK [UIDNEXT %d] predicted next UID\r\n" % (validity, uid_next)
    )
    session._queue(b"* OK [PERMANENTFLAGS " + permanent + b"] flags permitted\r\n")
    session.folder, session.read_only = folder, examine
    return "OK", ("[READ-ONLY] EXAMINE" if examine else "[READ-WRITE] SELECT") + " completed"


@command("CLOSE", "selected")
async def _close(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.end()
    assert session.folder is not None
    if not session.read_only:
        with session.server.directory.lock:
            session.folder.expunge()
    session.folder, session.view = None, []
    return "OK", "CLOSE completed"


@command("EXPUNGE", "selected")
@command("UID EXPUNGE", "selected")
async def _expunge(session: _Session, parser: Parser) -> tuple[str, str]:
    uids = None
    if parser.peek() == b" ":
        parser.sp()
        uids = session._numbers(parser, uid=True)
    parser.end()
    if session.read_only:
        return "NO", "[READ-ONLY] mailbox opened with EXAMINE"
    assert session.folder is not None
    folder = session.folder
    with session.server.directory.lock:
        if uids is None:
            folder.expunge()
        else:
            folder.messages = [m for m in folder.messages if not ("\\Deleted" in m.flags and m.uid in uids)]
    return "OK", "EXPUNGE completed"


def _fetch_item(item: FetchItem, message: StoredMessage, tree: Callable[[], Part]) -> bytes:
    name = item.name
    if name == "FLAGS":
        return b"FLAGS " + _flags(message.flags)
    if name == "UID":
        return b"UID %d" % message.uid
    if name == "INTERNALDATE":
        return b"INTERNALDATE " + internal_date(message.internal_date)
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % len(message.raw)
    if name == "ENVELOPE":
        return b"ENVELOPE " + envelope(tree())
    if name in ("BODYSTRUCTURE", "BODY") and not item.section:
        return name.encode() + b" " + body_structure(tree(), extensible=name == "BODYSTRUCTURE")
    if name == "RFC822":
        return b"RFC822 " + _literal(message.raw)
    if name in ("RFC822.HEADER", "RFC822.TEXT"):
        root = tree()
        return name.encode() + b" " + _literal(root.header if name == "RFC822.HEADER" else root.body)
    data = section_bytes(tree(), item)
    if data is not None and item.partial is not None:
        start, count = item.partial
        data = data[start : start + count]
    return item.label() + b" " + (b"NIL" if data is None else _literal(data))


def _literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


@command("FETCH", "selected")
@command("UID FETCH", "selected")
async def _fetch(session: _Session, parser: Parser) -> tuple[str, str]:
    uid, numbers = session._targets(parser)
    items = parser.fetch_items()
    parser.end()
    if uid and not any(item.name == "UID" for item in items):
        items.insert(0, FetchItem("UID"))
    sets_seen = any(item.name in ("RFC822", "RFC822.TEXT") or (item.section and not item.peek) for item in items)
    for seq, message in session._messages(numbers, uid):
        cache: list[Part] = []

        def tree(message: StoredMessage = message, cache: list[Part] = cache) -> Part:
            if not cache:
                cache.append(parse_part(message.raw))
            return cache[0]

        fetched = [_fetch_item(item, message, tree) for item in items]
        if sets_seen and not session.read_only:
            with session.server.directory.lock:
                newly_seen = "\\Seen" not in message.flags
                message.flags.add("\\Seen")
            if newly_seen and not any(item.name == "FLAGS" for item in items):
                fetched.append(b"FLAGS " + _flags(message.flags))
        session._queue(b"* %d FETCH (" % seq + b" ".join(fetched) + b")\r\n")
    return "OK", "FETCH completed"


@command("STORE", "selected")
@command("UID STORE", "selected")
async def _store(session: _Session, parser: Parser) -> tuple[str, str]:
    uid, numbers = session._targets(parser)
    action = parser.atom().upper()
    mode, _, silent = action.partition(".")
    if mode not in ("FLAGS", "+FLAGS", "-FLAGS") or silent not in ("", "SILENT"):
        raise ImapSyntaxError(f"STORE takes FLAGS, +FLAGS or -FLAGS (optionally .SILENT), not {action}")
    parser.sp()
    if parser.peek() == b"(":
        flags = set(parser.flag_list())
    else:
        flags = {parser.flag()}
        while parser.peek() == b" ":
            parser.sp()
            flags.add(parser.flag())
    parser.end()
    if "\\Recent" in flags:
        raise ImapSyntaxError("\\Recent cannot be stored")
    if session.read_only:
        return "NO", "[READ-ONLY] mailbox opened with EXAMINE"
    for seq, message in session._messages(numbers, uid):
        with session.server.directory.lock:
            if mode == "FLAGS":
                message.flags = set(flags)
            elif mode == "+FLAGS":
                message.flags |= flags
            else:
                message.flags -= flags
            current = _flags(message.flags)
        if not silent:
            session._queue(
                b"* %d FETCH (" % seq + (b"UID %d " % message.uid if uid else b"") + b"FLAGS " + current + b")\r\n"
            )
    return "OK", "STORE completed"


SearchKey = Callable[[_Candidate], bool]
_FLAG_KEYS = {
    "ANSWERED": "\\Answered",
    "DELETED": "\\Deleted",
    "FLAGGED": "\\Flagged",
    "SEEN": "\\Seen",
    "DRAFT": "\\Draft",
}
_HEADER_KEYS = {"FROM", "TO", "CC", "BCC", "SUBJECT"}


def _contains(haystack: str | bytes | None, needle: bytes) -> bool:
    if haystack is None:
        return False
    if isinstance(haystack, str):
        try:
            decoded = str(make_header(decode_header(haystack)))
        except (ValueError, LookupError, UnicodeError):
            decoded = haystack
        return any(needle.decode("utf-8", "replace").lower() in text.lower() for text in (haystack, decoded))
    return needle.lower() in haystack.lower()


def _sent_date(candidate: _Candidate) -> dt.date | None:
    value = header_value(candidate.part, "Date")
    try:
        return parsedate_to_datetime(value).date() if value else None
    except (TypeError, ValueError):
        return None


def _search_key(session: _Session, parser: Parser) -> SearchKey:
    """One search key as a predicate (RFC 3501 §6.4.4); a sequence set or ``(`` also starts one."""
    if parser.peek() == b"(":
        parser.pos += 1
        keys = _search_keys(session, parser)
        parser.expect(b")", "')' closing a search group")
        return lambda c: all(key(c) for key in keys)
    if parser.peek() and parser.peek() in b"0123456789*":
        numbers = session._numbers(parser, uid=False)
        return lambda c: c.seq in numbers
    key = parser.atom().upper()
    if key in ("ALL", "OLD"):
        return lambda c: True
    if key in ("NEW", "RECENT"):
        return lambda c: False
    if key in _FLAG_KEYS or (key[2:] in _FLAG_KEYS and key.startswith("UN")):
        flag, wanted = (_FLAG_KEYS[key], True) if key in _FLAG_KEYS else (_FLAG_KEYS[key[2:]], False)
        return lambda c: (flag in c.message.flags) == wanted
    if key == "NOT":
        parser.sp()
        inner = _search_key(session, parser)
        return lambda c: not inner(c)
    if key == "OR":
        parser.sp()
        left = _search_key(session, parser)
        parser.sp()
        right = _search_key(session, parser)
        return lambda c: left(c) or right(c)
    parser.sp()
    if key == "UID":
        numbers = session._numbers(parser, uid=True)
        return lambda c: c.message.uid in numbers
    if key in ("KEYWORD", "UNKEYWORD"):
        flag = parser.atom()
        return lambda c: (flag in c.message.flags) == (key == "KEYWORD")
    if key in ("LARGER", "SMALLER"):
        size = parser.number()
        return lambda c: len(c.message.raw) > size if key == "LARGER" else len(c.message.raw) < size
    if key in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
        day = parser.date()
        compare = {"BEFORE": lambda d: d < day, "ON": lambda d: d == day, "SINCE": lambda d: d >= day}[
            key.removeprefix("SENT")
        ]
        if key.startswith("SENT"):
            return lambda c: (sent := _sent_date(c)) is not None and compare(sent)
        return lambda c: compare(c.message.internal_date.date())
    if key == "HEADER":
        header = parser.astring().decode("ascii", "replace")
        parser.sp()
        needle = parser.astring()
        return lambda c: _contains(header_value(c.part, header), needle) or (not needle and header in c.part.headers)
    needle = parser.astring()
    if key in _HEADER_KEYS:
        return lambda c: _contains(header_value(c.part, key), needle)
    if key == "BODY":
        return lambda c: _contains(c.part.body, needle)
    if key == "TEXT":
        return lambda c: _contains(c.message.raw, needle)
    raise ImapSyntaxError(f"unknown search key {key}")


def _search_keys(session: _Session, parser: Parser) -> list[SearchKey]:
    keys = [_search_key(session, parser)]
    while parser.peek() == b" ":
        parser.sp()
        keys.append(_search_key(session, parser))
    return keys


@command("SEARCH", "selected")
@command("UID SEARCH", "selected")
async def _search(session: _Session, parser: Parser) -> tuple[str, str]:
    uid = session.uid_command
    parser.sp()
    start = parser.pos
    if parser.atom().upper() == "CHARSET":
        parser.sp()
        charset = parser.astring().decode("ascii", "replace").upper()
        if charset not in ("US-ASCII", "UTF-8"):
            return "NO", "[BADCHARSET (US-ASCII UTF-8)] unsupported charset"
        parser.sp()
    else:
        parser.pos = start
    keys = _search_keys(session, parser)
    parser.end()
    candidates = [
        _Candidate(seq, message) for seq, message in session._messages(set(range(1, len(session.view) + 1)), uid=False)
    ]
    hits = [c.message.uid if uid else c.seq for c in candidates if all(key(c) for key in keys)]
    session._queue(b"* SEARCH" + b"".join(b" %d" % hit for hit in hits) + b"\r\n")
    return "OK", "SEARCH completed"


@command("APPEND", "auth", "selected")
async def _append(session: _Session, parser: Parser) -> tuple[str, str]:
    parser.sp()
    name = parser.mailbox()
    parser.sp()
    flags: list[str] = []
    when = None
    if parser.peek() == b"(":
        flags = parser.flag_list()
        parser.sp()
    if parser.peek() == b'"':
        when = parser.date_time()
        parser.sp()
    if parser.peek() != b"{":
        raise ImapSyntaxError("APPEND takes the message as a literal")
    data = parser.string()
    parser.end()
    folder = _folder(session, name)
    if folder is None:
        return "NO", f"[TRYCREATE] no mailbox {name}"
    assert session.bal is not None
    if len(data) > session.bal.max_message_bytes:
        return "NO", f"[TOOBIG] message exceeds this mailbox's limit of {session.bal.max_message_bytes} octets"
    with session.server.directory.lock:
        stored = folder.append(data, set(flags) - {"\\Recent"}, when)
    session.server._wake(session.bal.address)
    return "OK", f"[APPENDUID {folder.uid_validity} {stored.uid}] APPEND completed"


@command("IDLE", "auth", "selected")
async def _idle(session: _Session, parser: Parser) -> tuple[str, str]:
    """RFC 2177: updates are written as they happen until the client's DONE (or the token's expiry)."""
    parser.end()
    session.wake.clear()
    await session._send_now(b"+ idling\r\n")
    reading = asyncio.ensure_future(session.reader.readuntil(b"\n"))
    try:
        while not reading.done():
            timeout = session.server.idle_timeout
            expires = session.principal.token_expires if session.principal else None
            if expires is not None:
                timeout = min(timeout, max(expires - session.server.clock(), 0))
            waking = asyncio.ensure_future(session.wake.wait())
            done, _ = await asyncio.wait({reading, waking}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waking.cancel()
            if waking in done:
                session.wake.clear()
                if session.folder is not None:
                    await session._send_now(session._sync(allow_expunge=True))
            elif not done:
                expired = expires is not None and session.server.clock() >= expires
                raise _Bye("[EXPIRED] access token expired during IDLE" if expired else "idle timeout")
        line = reading.result()
    finally:
        reading.cancel()
    session.request += line
    if line.rstrip(b"\r\n").upper() != b"DONE":
        return "BAD", "expected DONE to end IDLE"
    return "OK", "IDLE terminated"
