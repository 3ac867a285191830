"""MTOM/XOP server side: exact bytes in, strict packaging rules, and what a client library produces."""

from __future__ import annotations

import os
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart

import pytest
from lxml import etree

from segur.mocks.runtime import mtom
from segur.mocks.runtime.http import HttpRequest
from segur.mocks.runtime.soap import SOAP12_NS, SoapProblem, envelope_element, read_envelope

DOC_NS = "urn:example:doc"
BINARY = bytes(range(256)) + b"\r\n--not-a-boundary\r\n\r\n" + os.urandom(2048) + b"\r"


def _root(cid: str = "doc1@example") -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP12_NS}"><s:Body><d:Put xmlns:d="{DOC_NS}"><d:Document>'
        f'<xop:Include xmlns:xop="{mtom.XOP_NS}" href="cid:{cid}"/></d:Document></d:Put></s:Body></s:Envelope>'
    ).encode()


def _package(
    parts: list[tuple[str, bytes, str]], *, start: str = "root@example", boundary: str = "b0undary"
) -> tuple[str, bytes]:
    body = b""
    for content_id, data, content_type in parts:
        body += f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-ID: <{content_id}>\r\n\r\n".encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    header = f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<{start}>"'
    return header, body


def _request(content_type: str, body: bytes) -> HttpRequest:
    return HttpRequest("POST", "/", {"content-type": content_type}, body, body, {}, "")


ROOT_TYPE = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'


def test_attachment_bytes_come_back_exactly_as_sent() -> None:
    content_type, body = _package([("root@example", _root(), ROOT_TYPE), ("doc1@example", BINARY, "text/xml")])
    soap = read_envelope(_request(content_type, body), allow_mtom=True)
    document = soap.payload.find(f"{{{DOC_NS}}}Document")
    assert soap.binary(document) == BINARY


def test_a_package_built_by_the_stdlib_email_library_is_understood() -> None:
    """Software in another stack builds MIME with its own library; the server must not depend on our framing."""
    package = MIMEMultipart("related", type="application/xop+xml", start="<root@example>")
    root = MIMEApplication(_root(), "xop+xml", _encoder=lambda part: None)
    root.replace_header("Content-Type", ROOT_TYPE)
    root["Content-ID"] = "<root@example>"
    attachment = MIMEApplication(b"%PDF-1.4 tiny", "pdf", _encoder=lambda part: None)
    attachment["Content-ID"] = "<doc1@example>"
    attachment["Content-Transfer-Encoding"] = "binary"
    package.attach(root)
    package.attach(attachment)
    wire = package.as_bytes(policy=package.policy.clone(linesep="\r\n"))
    body = wire.partition(b"\r\n\r\n")[2]
    content_type = " ".join(package["Content-Type"].split())
    soap = read_envelope(_request(content_type, body), allow_mtom=True)
    assert soap.binary(soap.payload.find(f"{{{DOC_NS}}}Document")) == b"%PDF-1.4 tiny"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ([("root@example", _root(), ROOT_TYPE)], "no part carries"),
        (
            [
                ("root@example", _root(), ROOT_TYPE),
                ("doc1@example", b"x", "text/xml"),
                ("doc2@example", b"y", "text/xml"),
            ],
            "parts nobody references",
        ),
        ([("root@example", _root("other@example"), ROOT_TYPE), ("doc1@example", b"x", "text/xml")], "no part carries"),
        ([("root@example", _root(), "text/xml"), ("doc1@example", b"x", "text/xml")], "root part is text/xml"),
        ([("doc1@example", b"x", "text/xml"), ("doc1@example", b"y", "text/xml")], "appears twice"),
        ([("elsewhere@example", _root(), ROOT_TYPE), ("doc1@example", b"x", "text/xml")], "no root part"),
    ],
    ids=["missing-part", "extra-part", "wrong-content-id", "root-not-xop", "duplicate-content-id", "no-root"],
)
def test_packaging_errors_are_refused_with_a_reason(parts: list[tuple[str, bytes, str]], reason: str) -> None:
    content_type, body = _package(parts)
    with pytest.raises(SoapProblem) as refused:
        read_envelope(_request(content_type, body), allow_mtom=True)
    assert refused.value.code == "mtom"
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ('multipart/related; type="text/xml"; boundary="b"', b"--b\r\n\r\nx\r\n--b--"),
        ('multipart/related; type="application/xop+xml"', b"--b\r\n\r\nx\r\n--b--"),
        ('multipart/related; type="application/xop+xml"; boundary="b"', b"--b\r\nContent-Type: a/b\r\n\r\nx"),
        ('multipart/related; type="application/xop+xml"; boundary="b"', b"no delimiter at all"),
    ],
    ids=["type-not-xop", "no-boundary", "no-closing-delimiter", "no-parts"],
)
def test_malformed_multipart_is_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(SoapProblem) as refused:
        read_envelope(_request(content_type, body), allow_mtom=True)
    assert refused.value.code == "mtom"


def test_services_without_mtom_refuse_multipart() -> None:
    content_type, body = _package([("root@example", _root(), ROOT_TYPE), ("doc1@example", b"x", "text/xml")])
    with pytest.raises(SoapProblem) as refused:
        read_envelope(_request(content_type, body))
    assert refused.value.code == "content_type"


def test_render_then_split_round_trips() -> None:
    payload = etree.Element(f"{{{DOC_NS}}}Got")
    document = etree.SubElement(payload, f"{{{DOC_NS}}}Document")
    content_type, body = mtom.render(envelope_element(payload), {document: (BINARY, "application/pdf")})
    package = mtom.split_package(content_type, body)
    root = etree.fromstring(package.root)
    resolved = mtom.resolve_includes(root, package)
    assert list(resolved.values()) == [BINARY]
    assert next(iter(package.attachment_types.values())) == "application/pdf"
