"""IMAP4rev1 wire syntax for the MSSanté IMAP mock: a strict command parser and the message views FETCH returns.

The parser reads a whole command (its literals already inlined by the server's reader) and raises
``ImapSyntaxError`` on anything RFC 3501's grammar does not allow, so that the server answers
``BAD`` and the session goes on. ENVELOPE and BODYSTRUCTURE come from the stored raw bytes: the
stdlib ``email`` package (policy compat32) parses headers, while part boundaries are located on the
raw bytes ourselves, because ``BODY[1]`` must return the exact octets stored, which re-serialising
an ``email.message.Message`` does not guarantee.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ATOM_SPECIALS = b'(){ %*"\\]'
_LITERAL = re.compile(rb"\{(\d{1,10})\}\r\n")
_ITEM_NAME = re.compile(rb"[A-Za-z0-9.]+")


class ImapSyntaxError(ValueError):
    """A command the grammar refuses: answered ``BAD <message>``."""


@dataclass(frozen=True)
class SequenceSet:
    """Ranges of numbers where ``None`` stands for ``*`` (the largest number in use)."""

    ranges: tuple[tuple[int | None, int | None], ...]

    def resolve(self, largest: int) -> set[int]:
        numbers: set[int] = set()
        for first, last in self.ranges:
            low, high = sorted((largest if first is None else first, largest if last is None else last))
            numbers.update(range(low, high + 1))
        return numbers


@dataclass(frozen=True)
class FetchItem:
    """One FETCH attribute; ``section`` is set for BODY[...] (``part`` numbers, ``spec`` HEADER/TEXT/MIME/...)."""

    name: str
    section: bool = False
    peek: bool = False
    part: tuple[int, ...] = ()
    spec: str = ""
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None

    def label(self) -> bytes:
        """The item's name in the response: BODY.PEEK[x] is answered as BODY[x], a partial by its origin."""
        if not self.section:
            return self.name.encode()
        inner = ".".join([*map(str, self.part), *([self.spec] if self.spec else [])])
        if self.fields:
            inner += " (" + " ".join(self.fields) + ")"
        origin = f"<{self.partial[0]}>" if self.partial else ""
        return f"BODY[{inner}]{origin}".encode()


MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
SIMPLE_ITEMS = {
    "FLAGS",
    "UID",
    "INTERNALDATE",
    "RFC822.SIZE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
}


class Parser:
    """Cursor over one command's bytes (CRLF-terminated, literals inline)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def peek(self) -> bytes:
        return self.data[self.pos : self.pos + 1]

    def expect(self, token: bytes, what: str) -> None:
        if not self.data.startswith(token, self.pos):
            raise ImapSyntaxError(f"expected {what} at offset {self.pos}")
        self.pos += len(token)

    def sp(self) -> None:
        self.expect(b" ", "a single space")

    def at_end(self) -> bool:
        return self.data[self.pos :] == b"\r\n"

    def end(self) -> None:
        if not self.at_end():
            raise ImapSyntaxError(f"unexpected data at offset {self.pos}")

    def atom(self, extra: bytes = b"") -> str:
        start = self.pos
        while self.pos < len(self.data):
            byte = self.data[self.pos]
            if byte <= 0x20 or byte >= 0x7F or (bytes([byte]) in _ATOM_SPECIALS and bytes([byte]) not in extra):
                break
            self.pos += 1
        if self.pos == start:
            raise ImapSyntaxError(f"expected an atom at offset {start}")
        return self.data[start : self.pos].decode("ascii")

    def string(self) -> bytes:
        """A quoted string (with \\\\ and \\" escapes) or a literal."""
        if self.peek() == b'"':
            out = bytearray()
            self.pos += 1
            while True:
                byte = self.data[self.pos : self.pos + 1]
                if byte in (b"", b"\r", b"\n"):
                    raise ImapSyntaxError("unterminated quoted string")
                self.pos += 1
                if byte == b'"':
                    return bytes(out)
                if byte == b"\\":
                    byte = self.data[self.pos : self.pos + 1]
                    if byte not in (b"\\", b'"'):
                        raise ImapSyntaxError('only \\\\ and \\" may be escaped in a quoted string')
                    self.pos += 1
                out += byte
        match = _LITERAL.match(self.data, self.pos)
        if match is None:
            raise ImapSyntaxError(f"expected a quoted string or a literal at offset {self.pos}")
        start = match.end()
        self.pos = start + int(match[1])
        if self.pos > len(self.data):
            raise ImapSyntaxError("literal shorter than announced")
        return self.data[start : self.pos]

    def astring(self) -> bytes:
        if self.peek() in (b'"', b"{"):
            return self.string()
        return self.atom(extra=b"]").encode()

    def mailbox(self) -> str:
        name = self.astring().decode("utf-8", "replace")
        return "INBOX" if name.upper() == "INBOX" else name

    def list_mailbox(self) -> str:
        """A LIST pattern: a string, or atom characters plus the ``%`` and ``*`` wildcards."""
        if self.peek() in (b'"', b"{"):
            return self.string().decode("utf-8", "replace")
        match = re.compile(rb'[^\x00-\x20\x7f(){"\\]+').match(self.data, self.pos)
        if match is None:
            raise ImapSyntaxError(f"expected a mailbox pattern at offset {self.pos}")
        self.pos = match.end()
        return match[0].decode("utf-8", "replace")

    def number(self) -> int:
        match = re.compile(rb"\d{1,10}").match(self.data, self.pos)
        if match is None:
            raise ImapSyntaxError(f"expected a number at offset {self.pos}")
        self.pos = match.end()
        return int(match[0])

    def sequence_set(self) -> SequenceSet:
        match = re.compile(rb"[0-9*:,]+").match(self.data, self.pos)
        if match is None:
            raise ImapSyntaxError(f"expected a sequence set at offset {self.pos}")
        self.pos = match.end()
        ranges = []
        for element in match[0].decode().split(","):
            bounds = element.split(":")
            if len(bounds) > 2 or not all(re.fullmatch(r"\*|[1-9]\d*", bound) for bound in bounds):
                raise ImapSyntaxError(f"invalid sequence set element {element!r}")
            values = [None if bound == "*" else int(bound) for bound in bounds]
            ranges.append((values[0], values[-1]))
        return SequenceSet(tuple(ranges))

    def flag_list(self) -> list[str]:
        self.expect(b"(", "'(' opening a flag list")
        flags = []
        while self.peek() != b")":
            if flags:
                self.sp()
            flags.append(self.flag())
        self.pos += 1
        return flags

    def flag(self) -> str:
        if self.peek() == b"\\":
            self.pos += 1
            name = "\\" + self.atom().capitalize()
            if name not in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent"):
                raise ImapSyntaxError(f"unknown system flag {name}")
            return name
        return self.atom()

    def date(self) -> dt.date:
        quoted = self.peek() == b'"'
        text = self.string().decode("ascii", "replace") if quoted else self.atom()
        match = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", text)
        if match is None or match[2].capitalize() not in MONTHS:
            raise ImapSyntaxError(f"invalid date {text!r} (dd-Mon-yyyy)")
        return dt.date(int(match[3]), MONTHS.index(match[2].capitalize()) + 1, int(match[1]))

    def date_time(self) -> dt.datetime:
        text = self.string().decode("ascii", "replace")
        try:
            return dt.datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")
        except ValueError:
            raise ImapSyntaxError(f"invalid date-time {text!r}") from None

    def fetch_items(self) -> list[FetchItem]:
        if self.peek() != b"(":
            match = _ITEM_NAME.match(self.data, self.pos)
            if match and match[0].decode().upper() in MACROS:
                self.pos = match.end()
                return [FetchItem(item) for item in MACROS[match[0].decode().upper()]]
            return [self.fetch_item()]
        self.pos += 1
        items = [self.fetch_item()]
        while self.peek() == b" ":
            self.pos += 1
            items.append(self.fetch_item())
        self.expect(b")", "')' closing the fetch attributes")
        return items

    def fetch_item(self) -> FetchItem:
        match = _ITEM_NAME.match(self.data, self.pos)
        if match is None:
            raise ImapSyntaxError(f"expected a fetch attribute at offset {self.pos}")
        self.pos = match.end()
        name = match[0].decode().upper()
        if self.peek() != b"[":
            if name not in SIMPLE_ITEMS:
                raise ImapSyntaxError(f"unknown fetch attribute {name}")
            return FetchItem(name)
        if name not in ("BODY", "BODY.PEEK"):
            raise ImapSyntaxError(f"{name} takes no section")
        self.pos += 1
        part, spec, fields = self.section()
        self.expect(b"]", "']' closing the section")
        partial = None
        if self.peek() == b"<":
            self.pos += 1
            start = self.number()
            self.expect(b".", "'.' in a partial <start.count>")
            count = self.number()
            self.expect(b">", "'>' closing a partial")
            if count == 0:
                raise ImapSyntaxError("a partial count must be positive")
            partial = (start, count)
        return FetchItem("BODY", True, name == "BODY.PEEK", part, spec, fields, partial)

    def section(self) -> tuple[tuple[int, ...], str, tuple[str, ...]]:
        match = re.compile(rb"[0-9.A-Za-z]*").match(self.data, self.pos)
        assert match is not None
        self.pos = match.end()
        words = match[0].decode().split(".") if match[0] else []
        part: list[int] = []
        while words and words[0].isdigit() and words[0] != "0" and not words[0].startswith("0"):
            part.append(int(words.pop(0)))
        spec = ".".join(words).upper()
        allowed = ("", "HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT") + (("MIME",) if part else ())
        if spec not in allowed:
            raise ImapSyntaxError(f"invalid section {match[0].decode()!r}")
        fields: tuple[str, ...] = ()
        if spec.startswith("HEADER.FIELDS"):
            self.sp()
            self.expect(b"(", "'(' opening the header list")
            names = [self.astring().decode("ascii", "replace").upper()]
            while self.peek() == b" ":
                self.pos += 1
                names.append(self.astring().decode("ascii", "replace").upper())
            self.expect(b")", "')' closing the header list")
            fields = tuple(names)
        return tuple(part), spec, fields


def quote(value: str | bytes | None) -> bytes:
    """An nstring: NIL, a quoted string, or a literal when the value holds CR, LF, NUL or 8-bit bytes."""
    if value is None:
        return b"NIL"
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if any(byte in (0, 10, 13) or byte > 0x7F for byte in data) or len(data) > 1000:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def internal_date(when: dt.datetime) -> bytes:
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    offset = when.strftime("%z") or "+0000"
    return f'"{when.day:02d}-{MONTHS[when.month - 1]}-{when.year} {when:%H:%M:%S} {offset}"'.encode()


@dataclass
class Part:
    """A MIME entity located on the raw bytes: ``header`` includes the blank line that ends it."""

    header: bytes
    body: bytes
    headers: Message
    children: list[Part] = field(default_factory=list)
    embedded: Part | None = None

    @property
    def content_type(self) -> tuple[str, str]:
        maintype, _, subtype = self.headers.get_content_type().partition("/")
        return maintype.upper(), subtype.upper()


def parse_part(raw: bytes, default_type: str = "text/plain") -> Part:
    """Split an entity into header and body, then its children (multipart) or its message (message/rfc822)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if raw.startswith((b"\r\n", b"\n")):
        header, body = raw[: 2 if raw.startswith(b"\r\n") else 1], raw[2 if raw.startswith(b"\r\n") else 1 :]
    elif match is None:
        header, body = raw, b""
    else:
        header, body = raw[: match.end()], raw[match.end() :]
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(header)
    headers.set_default_type(default_type)
    part = Part(header, body, headers)
    maintype, subtype = part.content_type
    boundary = headers.get_boundary()
    if maintype == "MULTIPART" and boundary:
        child_type = "message/rfc822" if subtype == "DIGEST" else "text/plain"
        part.children = [parse_part(chunk, child_type) for chunk in _split_multipart(body, boundary.encode())]
    elif (maintype, subtype) == ("MESSAGE", "RFC822"):
        part.embedded = parse_part(body)
    return part


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = re.compile(rb"(?:\A|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(\r?\n|\Z)")
    chunks, start = [], None
    for match in delimiter.finditer(body):
        if start is not None:
            chunks.append(body[start : match.start()])
        if match[1]:
            break
        start = match.end()
    return chunks


def header_value(part: Part, name: str) -> str | None:
    """A header as sent (encoded words left raw), unfolded."""
    value = part.headers.get(name)
    return None if value is None else re.sub(r"\r?\n(?=[ \t])", "", str(value)).strip()


def _params(value: str | None) -> list[tuple[str, str]]:
    """Parameters after the first ``;`` as written (RFC 2231 names like ``filename*`` kept raw)."""
    if not value:
        return []
    pattern = r';\s*([^=\s;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)'
    return [
        (name, raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw)
        for name, raw in re.findall(pattern, value)
    ]


def _param_list(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(quote(name.upper()) + b" " + quote(value) for name, value in params) + b")"


def _address_list(value: str | None) -> bytes:
    if not value:
        return b"NIL"
    entries = []
    for name, address in getaddresses([value]):
        if not address:
            continue
        mailbox, _, host = address.rpartition("@") if "@" in address else (address, "", "")
        entries.append(b"(" + b" ".join([quote(name or None), b"NIL", quote(mailbox), quote(host or None)]) + b")")
    return b"(" + b"".join(entries) + b")" if entries else b"NIL"


def envelope(part: Part) -> bytes:
    """RFC 3501 ENVELOPE; Sender and Reply-To default to From as the RFC requires."""
    sender = header_value(part, "From")
    fields = [
        quote(header_value(part, "Date")),
        quote(header_value(part, "Subject")),
        _address_list(sender),
        _address_list(header_value(part, "Sender") or sender),
        _address_list(header_value(part, "Reply-To") or sender),
        _address_list(header_value(part, "To")),
        _address_list(header_value(part, "Cc")),
        _address_list(header_value(part, "Bcc")),
        quote(header_value(part, "In-Reply-To")),
        quote(header_value(part, "Message-ID")),
    ]
    return b"(" + b" ".join(fields) + b")"


def body_structure(part: Part, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible``) or BODY: types upper-cased, sizes and lines of the encoded body."""
    maintype, subtype = part.content_type
    if part.children:
        out = b"".join(body_structure(child, extensible) for child in part.children) + b" " + quote(subtype)
        if extensible:
            out += b" " + b" ".join([_param_list(_params(header_value(part, "Content-Type"))), *_extension(part)])
        return b"(" + out + b")"
    content_type = header_value(part, "Content-Type")
    params = _params(content_type) if content_type else ([("charset", "us-ascii")] if maintype == "TEXT" else [])
    encoding = (header_value(part, "Content-Transfer-Encoding") or "7BIT").upper()
    fields = [
        quote(maintype),
        quote(subtype),
        _param_list(params),
        quote(header_value(part, "Content-ID")),
        quote(header_value(part, "Content-Description")),
        quote(encoding),
        str(len(part.body)).encode(),
    ]
    if (maintype, subtype) == ("MESSAGE", "RFC822") and part.embedded is not None:
        fields += [envelope(part.embedded), body_structure(part.embedded, extensible), _lines(part.body)]
    elif maintype == "TEXT":
        fields.append(_lines(part.body))
    if extensible:
        fields += [quote(header_value(part, "Content-MD5")), *_extension(part)]
    return b"(" + b" ".join(fields) + b")"


def _extension(part: Part) -> list[bytes]:
    disposition = header_value(part, "Content-Disposition")
    rendered = b"NIL"
    if disposition:
        kind = disposition.split(";", 1)[0].strip()
        rendered = b"(" + quote(kind.upper()) + b" " + _param_list(_params(disposition)) + b")"
    language = header_value(part, "Content-Language")
    return [rendered, quote(language), quote(header_value(part, "Content-Location"))]


def _lines(body: bytes) -> bytes:
    return str(body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)).encode()


def header_fields(header: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    """The header lines (with their continuations) named in ``names`` (or all others), then the blank line."""
    kept = bytearray()
    for field_bytes in re.findall(rb"[^ \t\r\n][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n", header):
        name = field_bytes.split(b":", 1)[0].strip().decode("ascii", "replace").upper()
        if (name in names) != exclude:
            kept += field_bytes
    return bytes(kept) + b"\r\n"


def section_bytes(root: Part, item: FetchItem) -> bytes | None:
    """The octets of BODY[section] (before any partial), or None when the section does not exist."""
    node = root
    for depth, number in enumerate(item.part):
        if depth and node.embedded is not None:
            node = node.embedded
        if node.children:
            if number > len(node.children):
                return None
            node = node.children[number - 1]
        elif number != 1:
            return None
    if item.spec == "MIME":
        return node.header
    if item.part and item.spec:
        if node.embedded is None:
            return None
        node = node.embedded
    if item.spec == "HEADER":
        return node.header
    if item.spec == "TEXT":
        return node.body
    if item.spec.startswith("HEADER.FIELDS"):
        return header_fields(node.header, item.fields, item.spec.endswith(".NOT"))
    return node.header + node.body if not item.part else node.body
