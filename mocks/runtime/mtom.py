"""SOAP 1.2 with MTOM/XOP, server side: split a ``multipart/related`` request, render MTOM responses.

No maintained Python library does MTOM on the server side, and the stdlib ``email`` parser is
lenient by design (it records defects and carries on) and rewrites nothing we could then prove
byte-exact. The DMP needs the opposite: refuse what XOP forbids (a missing root part, a part
nobody references, a reference to no part, a duplicated Content-ID) and hand the repository the
exact bytes the client sent, so that hashes match. Headers of each part are still parsed by
``email`` (``BytesHeaderParser``), which is what it is good at.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from lxml import etree

XOP_NS = "http://www.w3.org/2004/08/xop/include"
XOP_CONTENT_TYPE = "application/xop+xml"
# compat32, not the HTTP policy: the header registry costs ~1 ms per part, and MTOM needs raw values.
_HEADER_PARSER = BytesHeaderParser(policy=compat32)


class MtomProblem(ValueError):
    """An MTOM/XOP package the server refuses; ``code`` says which rule it breaks."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class MtomPackage:
    """The root SOAP part and the attachments, keyed by Content-ID without angle brackets."""

    root: bytes
    attachments: dict[str, bytes] = field(default_factory=dict)
    attachment_types: dict[str, str] = field(default_factory=dict)


def is_mtom(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/related"


def content_type_parameters(content_type: str) -> dict[str, str]:
    """Parameters of a Content-Type header value, lower-cased names, quotes removed."""
    message = Message()
    message["Content-Type"] = content_type
    return {name.lower(): value for name, value in message.get_params(header="content-type")[1:]}


def split_package(content_type: str, body: bytes, *, max_parts: int = 64) -> MtomPackage:
    """Split an MTOM request into its parts, exactly as sent, and check the XOP packaging rules."""
    parameters = content_type_parameters(content_type)
    if parameters.get("type", "").lower() != XOP_CONTENT_TYPE:
        raise MtomProblem("content_type", f'multipart/related must declare type="{XOP_CONTENT_TYPE}"')
    boundary = parameters.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise MtomProblem("content_type", "multipart/related without a valid boundary parameter")
    start = parameters.get("start", "").strip().strip("<>")
    parts = _parts(body, boundary.encode("latin-1"), max_parts)
    package: MtomPackage | None = None
    for index, (headers, payload) in enumerate(parts):
        content_id = (headers.get("content-id") or "").strip().strip("<>")
        transfer = (headers.get("content-transfer-encoding") or "binary").strip().lower()
        if transfer not in ("binary", "8bit", "7bit"):
            raise MtomProblem("part", f"part {index}: Content-Transfer-Encoding {transfer!r}; MTOM sends binary")
        is_root = content_id == start if start else index == 0
        if is_root:
            if package is not None:
                raise MtomProblem("part", "two parts claim to be the root")
            part_type = headers.get_content_type()
            if part_type != XOP_CONTENT_TYPE:
                raise MtomProblem("part", f"root part is {part_type}, not {XOP_CONTENT_TYPE}")
            package = MtomPackage(payload)
            continue
        if not content_id:
            raise MtomProblem("content_id", f"part {index} has no Content-ID")
        if package is None:
            package = MtomPackage(b"")
        if content_id in package.attachments:
            raise MtomProblem("content_id", f"Content-ID <{content_id}> appears twice")
        package.attachments[content_id] = payload
        package.attachment_types[content_id] = headers.get_content_type()
    if package is None or not package.root:
        raise MtomProblem("part", f"no root part{f' with Content-ID <{start}>' if start else ''}")
    return package


def resolve_includes(root: etree._Element, package: MtomPackage) -> dict[etree._Element, bytes]:
    """Map each element whose content is an ``xop:Include`` to its attachment; every part must be used once."""
    resolved: dict[etree._Element, bytes] = {}
    used: set[str] = set()
    for include in root.iter(f"{{{XOP_NS}}}Include"):
        href = include.get("href", "")
        if not href.startswith("cid:"):
            raise MtomProblem("content_id", f"xop:Include href {href!r} is not a cid: URL")
        content_id = _unquote_cid(href[4:])
        if content_id not in package.attachments:
            raise MtomProblem("missing_part", f"xop:Include refers to <{content_id}>, which no part carries")
        if content_id in used:
            raise MtomProblem("content_id", f"<{content_id}> is included twice")
        parent = include.getparent()
        if parent is None or len(parent) != 1 or (parent.text or "").strip():
            raise MtomProblem("part", "xop:Include must be the only content of its element")
        used.add(content_id)
        resolved[parent] = package.attachments[content_id]
    extra = sorted(set(package.attachments) - used)
    if extra:
        raise MtomProblem("extra_part", f"parts nobody references: {', '.join(f'<{cid}>' for cid in extra)}")
    return resolved


def render(envelope: etree._Element, binaries: dict[etree._Element, tuple[bytes, str]]) -> tuple[str, bytes]:
    """Serialise ``envelope`` as MTOM, each element of ``binaries`` becoming an ``xop:Include``.

    Returns the Content-Type header value and the body. The envelope is modified in place.
    """
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.{uuid.uuid4().hex}@segur.invalid"
    attachments: list[tuple[str, bytes, str]] = []
    for element, (data, media_type) in binaries.items():
        content_id = f"{uuid.uuid4().hex}@segur.invalid"
        element.text = None
        for child in list(element):
            element.remove(child)
        etree.SubElement(element, f"{{{XOP_NS}}}Include", nsmap={"xop": XOP_NS}).set("href", f"cid:{content_id}")
        attachments.append((content_id, data, media_type))
    chunks = [
        f"--{boundary}\r\n".encode(),
        f'Content-Type: {XOP_CONTENT_TYPE}; charset=UTF-8; type="application/soap+xml"\r\n'.encode(),
        b"Content-Transfer-Encoding: binary\r\n",
        f"Content-ID: <{root_id}>\r\n\r\n".encode(),
        etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
    ]
    for content_id, data, media_type in attachments:
        chunks += [
            f"\r\n--{boundary}\r\n".encode(),
            f"Content-Type: {media_type}\r\nContent-Transfer-Encoding: binary\r\n".encode(),
            f"Content-ID: <{content_id}>\r\n\r\n".encode(),
            data,
        ]
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; type="{XOP_CONTENT_TYPE}"; boundary="{boundary}"; '
        f'start="<{root_id}>"; start-info="application/soap+xml"'
    )
    return content_type, b"".join(chunks)


def _parts(body: bytes, boundary: bytes, max_parts: int) -> list[tuple[Message, bytes]]:
    """RFC 2046 body parts: the CRLF before each delimiter belongs to the delimiter, not the part."""
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        body = b"\r\n" + body
    pieces = body.split(b"\r\n" + delimiter)
    if len(pieces) < 3:
        raise MtomProblem("part", "multipart body without parts or closing delimiter")
    parts: list[tuple[Message, bytes]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        if len(parts) == max_parts:
            raise MtomProblem("part", f"more than {max_parts} parts")
        line_end = piece.find(b"\r\n")
        if line_end < 0 or piece[:line_end].strip(b" \t"):
            raise MtomProblem("part", "malformed boundary line")
        piece = piece[line_end + 2 :]
        head_end = piece.find(b"\r\n\r\n")
        if piece.startswith(b"\r\n"):
            head, payload = b"", piece[2:]
        elif head_end < 0:
            raise MtomProblem("part", "part headers are not terminated by an empty line")
        else:
            head, payload = piece[:head_end], piece[head_end + 4 :]
        parts.append((_HEADER_PARSER.parsebytes(head + b"\r\n\r\n"), payload))
    else:
        raise MtomProblem("part", "multipart body has no closing delimiter")
    return parts


_CID_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def _unquote_cid(value: str) -> str:
    """RFC 2392: a cid URL is the Content-ID, URL-encoded."""
    return _CID_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), value)
