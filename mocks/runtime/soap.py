"""SOAP 1.2 server-side helpers: hardened XML parsing, envelope reading, faults.

No maintained Python library serves SOAP 1.2 (spyne is SOAP 1.1-centric and unmaintained),
so this module is small and strict: it accepts exactly what the SOAP 1.2 HTTP binding
allows and renders faults as the specification says (env:Sender -> 400, others -> 500).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from segur.mocks.runtime import mtom
from segur.mocks.runtime.http import HttpRequest
from segur.validation import MalformedXml, UnsafeXml, parse_untrusted

SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
WSA_NS = "http://www.w3.org/2005/08/addressing"
SOAP12_CONTENT_TYPE = "application/soap+xml"

_ACTION_PARAM = re.compile(r'action\s*=\s*"?([^";]+)"?', re.IGNORECASE)


class SoapProblem(Exception):
    """A request the SOAP layer refuses; ``code`` is the fault code the service uses for it."""

    def __init__(self, code: str, reason: str, *, operation: str = "invalid") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.operation = operation


def parse_xml(data: bytes) -> etree._Element:
    """Parse an untrusted SOAP message; refusals become ``SoapProblem`` for the service to render."""
    try:
        return parse_untrusted(data)
    except UnsafeXml as error:
        raise SoapProblem("doctype", str(error)) from None
    except MalformedXml as error:
        raise SoapProblem("malformed", str(error)) from None


@dataclass
class SoapEnvelope:
    """A parsed SOAP 1.2 request: headers, first body child, the action it claims, MTOM attachments."""

    root: etree._Element
    header: etree._Element | None
    payload: etree._Element
    action: str
    binaries: dict[etree._Element, bytes] = field(default_factory=dict)

    def header_child(self, namespace: str, local: str) -> etree._Element | None:
        if self.header is None:
            return None
        return self.header.find(f"{{{namespace}}}{local}")

    def binary(self, element: etree._Element) -> bytes:
        """The content of an xs:base64Binary element, sent inline or as an MTOM attachment."""
        if element in self.binaries:
            return self.binaries[element]
        try:
            return base64.b64decode("".join((element.text or "").split()), validate=True)
        except binascii.Error:
            raise SoapProblem("malformed", f"{etree.QName(element).localname} is not valid base64") from None


def read_envelope(request: HttpRequest, *, allow_mtom: bool = False) -> SoapEnvelope:
    """Check the HTTP binding (POST, content type, MTOM packaging) and the envelope, or raise ``SoapProblem``."""
    if request.method != "POST":
        raise SoapProblem("malformed", f"SOAP 1.2 requests are POSTed, not {request.method}")
    content_type = request.headers.get("content-type", "")
    body, package = request.body, None
    if allow_mtom and mtom.is_mtom(content_type):
        try:
            package = mtom.split_package(content_type, request.body)
        except mtom.MtomProblem as problem:
            raise SoapProblem("mtom", problem.reason) from None
        body = package.root
    elif content_type.split(";", 1)[0].strip().lower() != SOAP12_CONTENT_TYPE:
        raise SoapProblem("content_type", f"content type must be {SOAP12_CONTENT_TYPE}, got {content_type!r}")
    root = parse_xml(body)
    if root.tag != f"{{{SOAP12_NS}}}Envelope":
        raise SoapProblem("malformed", f"root element is {root.tag}, not a SOAP 1.2 Envelope")
    header = root.find(f"{{{SOAP12_NS}}}Header")
    body_element = root.find(f"{{{SOAP12_NS}}}Body")
    if body_element is None or len(body_element) != 1:
        raise SoapProblem("malformed", "the SOAP Body must hold exactly one element")
    binaries: dict[etree._Element, bytes] = {}
    if package is not None:
        try:
            binaries = mtom.resolve_includes(root, package)
        except mtom.MtomProblem as problem:
            raise SoapProblem("mtom", problem.reason) from None
    wsa_action = header.findtext(f"{{{WSA_NS}}}Action") if header is not None else None
    match = _ACTION_PARAM.search(content_type)
    action = (wsa_action or (match.group(1) if match else "")).strip()
    return SoapEnvelope(root, header, body_element[0], action, binaries)


def envelope_element(payload: etree._Element, headers: Sequence[etree._Element] = ()) -> etree._Element:
    """A SOAP 1.2 envelope around ``payload`` (moved, not copied: references into it stay valid)."""
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS})
    if headers:
        header = etree.SubElement(root, f"{{{SOAP12_NS}}}Header")
        header.extend(headers)
    etree.SubElement(root, f"{{{SOAP12_NS}}}Body").append(payload)
    return root


def envelope(payload: etree._Element, headers: Sequence[etree._Element] = ()) -> bytes:
    """Serialise a SOAP 1.2 envelope around ``payload``."""
    return etree.tostring(envelope_element(payload, headers), xml_declaration=True, encoding="UTF-8")


def fault(
    *, sender: bool, subcode: tuple[str, str, str], reason: str, detail: etree._Element | None = None
) -> tuple[int, bytes]:
    """A SOAP 1.2 Fault and its HTTP status; ``subcode`` is (prefix, namespace, local name)."""
    prefix, namespace, local = subcode
    root = etree.Element(f"{{{SOAP12_NS}}}Envelope", nsmap={"soap": SOAP12_NS, prefix: namespace})
    body = etree.SubElement(root, f"{{{SOAP12_NS}}}Body")
    fault_element = etree.SubElement(body, f"{{{SOAP12_NS}}}Fault")
    code = etree.SubElement(fault_element, f"{{{SOAP12_NS}}}Code")
    etree.SubElement(code, f"{{{SOAP12_NS}}}Value").text = "soap:Sender" if sender else "soap:Receiver"
    etree.SubElement(
        etree.SubElement(code, f"{{{SOAP12_NS}}}Subcode"), f"{{{SOAP12_NS}}}Value"
    ).text = f"{prefix}:{local}"
    text = etree.SubElement(etree.SubElement(fault_element, f"{{{SOAP12_NS}}}Reason"), f"{{{SOAP12_NS}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
    text.text = reason
    if detail is not None:
        etree.SubElement(fault_element, f"{{{SOAP12_NS}}}Detail").append(detail)
    return (400 if sender else 500), etree.tostring(root, xml_declaration=True, encoding="UTF-8")
