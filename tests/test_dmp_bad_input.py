"""Hostile or broken requests to the DMP mock: the DMP's own error, quickly, journaled, never a crash."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from dmp_requests import DOMINIQUE, cda, client, submission, vihf_factory
from lxml import etree

from conftest import RunningDmp, client_tls_context
from segur.ins import OID_INS_NIR_TEST
from segur.mocks.runtime import mtom
from segur.reference_sut.dmp_client import FIND_DOCUMENTS, DmpError

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
FAULT_CODE = f"{{{SOAP}}}Code/{{{SOAP}}}Subcode/{{{SOAP}}}Value"


def _post(running: RunningDmp, service: str, body: bytes, content_type: str, cert: str = "auth-cli") -> httpx.Response:
    context = client_tls_context(running.pki, cert)
    with httpx.Client(verify=context, timeout=running.client_timeout) as http:
        return http.post(running.base_url + service, content=body, headers={"Content-Type": content_type})


def _envelope(running: RunningDmp, action: str, payload: etree._Element, signer: str = "sign") -> etree._Element:
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA})
    header = etree.SubElement(root, f"{{{SOAP}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action").text = action
    header.append(vihf_factory(running.pki, signer=signer)(DOMINIQUE, OID_INS_NIR_TEST, "normal"))
    etree.SubElement(root, f"{{{SOAP}}}Body").append(payload)
    return root


def _fault_code(response: httpx.Response) -> str:
    root = etree.fromstring(response.content)
    return root.findtext(f"{{{SOAP}}}Body/{{{SOAP}}}Fault/{FAULT_CODE}", "").split(":")[-1]


def _iti41_package(running: RunningDmp) -> tuple[etree._Element, dict[etree._Element, tuple[bytes, str]]]:
    lot = submission(running.pki, cda(), format_code="urn:ihe:iti:xds-sd:pdf:2008")
    request = lot.request
    attachments = {}
    for element in request.findall("{urn:ihe:iti:xds-b:2007}Document"):
        attachments[element] = (lot.documents[element.get("id")], "text/xml")
    return _envelope(running, "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", request), attachments


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
    b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&lol2;</soap:Body></soap:Envelope>'
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&xxe;</soap:Body></soap:Envelope>'
)


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (BOMB, "application/soap+xml", "DMPForbiddenDoctype"),
        (XXE, "application/soap+xml", "DMPForbiddenDoctype"),
        (b"<soap:Envelope", "application/soap+xml", "DMPMalformedRequest"),
        (b"<a/>", "text/xml", "DMPUnsupportedContentType"),
        (b"--b\r\n\r\nx", 'multipart/related; type="application/xop+xml"; boundary="b"', "DMPInvalidMtom"),
    ],
    ids=["entity-bomb", "xxe", "truncated", "soap11-content-type", "broken-multipart"],
)
def test_unparseable_requests_get_a_sender_fault(
    fresh_dmp: RunningDmp, body: bytes, content_type: str, code: str
) -> None:
    since = fresh_dmp.last_seq()
    started = time.monotonic()
    response = _post(fresh_dmp, "repository", body, content_type)
    assert time.monotonic() - started < 1.0
    assert response.status_code == 400
    assert _fault_code(response) == code
    (record,) = fresh_dmp.journal_since(since)
    assert record["outcome"]["fault"] == code


def _drop_part(package: tuple[etree._Element, dict]) -> tuple[str, bytes]:
    root, attachments = package
    content_type, body = mtom.render(root, attachments)
    boundary = mtom.content_type_parameters(content_type)["boundary"]
    parts = body.split(f"--{boundary}".encode())
    return content_type, f"--{boundary}".encode().join([*parts[:2], parts[-1]])


def _extra_part(package: tuple[etree._Element, dict]) -> tuple[str, bytes]:
    root, attachments = package
    content_type, body = mtom.render(root, attachments)
    boundary = mtom.content_type_parameters(content_type)["boundary"]
    extra = f"--{boundary}\r\nContent-Type: text/plain\r\nContent-ID: <extra@x>\r\n\r\nsurplus\r\n".encode()
    closing = f"--{boundary}--".encode()
    return content_type, body.replace(closing, extra + closing)


def _wrong_content_id(package: tuple[etree._Element, dict]) -> tuple[str, bytes]:
    root, attachments = package
    content_type, body = mtom.render(root, attachments)
    include = next(root.iter(f"{{{mtom.XOP_NS}}}Include"))
    cid = include.get("href")[4:]
    return content_type, body.replace(f"<{cid}>".encode(), b"<renamed@x>", 1)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [(_drop_part, "no part carries"), (_extra_part, "nobody references"), (_wrong_content_id, "no part carries")],
    ids=["missing-part", "extra-part", "wrong-content-id"],
)
def test_mtom_packaging_errors_are_faults(
    fresh_dmp: RunningDmp, mangle: Callable[..., tuple[str, bytes]], reason: str
) -> None:
    content_type, body = mangle(_iti41_package(fresh_dmp))
    response = _post(fresh_dmp, "repository", body, content_type)
    assert _fault_code(response) == "DMPInvalidMtom"
    assert reason in response.text


def test_a_document_over_the_configured_size_is_refused(fresh_dmp: RunningDmp) -> None:
    root, attachments = _iti41_package(fresh_dmp)
    element = next(iter(attachments))
    attachments[element] = (b"x" * 600_000, "text/xml")  # the fixture's mock accepts 500 KB documents
    content_type, body = mtom.render(root, attachments)
    response = _post(fresh_dmp, "repository", body, content_type)
    assert _fault_code(response) == "DMPRequestTooLarge"


def test_a_certificate_other_than_auth_cli_is_refused(fresh_dmp: RunningDmp) -> None:
    body = etree.tostring(_envelope(fresh_dmp, "urn:hl7-org:v3:PRPA_IN201307UV02", etree.Element("x")))
    response = _post(fresh_dmp, "patients", body, "application/soap+xml", cert="insi-auto")
    assert _fault_code(response) == "DMPUnauthorisedCertificate"


def test_an_unknown_action_or_service_is_a_fault(fresh_dmp: RunningDmp) -> None:
    body = etree.tostring(_envelope(fresh_dmp, "urn:ihe:iti:2007:Unknown", etree.Element("x")))
    assert _fault_code(_post(fresh_dmp, "registry", body, "application/soap+xml")) == "DMPUnknownOperation"
    assert _fault_code(_post(fresh_dmp, "nowhere", body, "application/soap+xml")) == "DMPUnknownOperation"


def test_a_wrapped_vihf_is_refused(fresh_dmp: RunningDmp) -> None:
    """Signature wrapping: an unsigned assertion for another patient placed before the signed one."""
    root = _envelope(fresh_dmp, "urn:hl7-org:v3:PRPA_IN201307UV02", etree.Element("x"))
    security = root.find(
        f"{{{SOAP}}}Header/{{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}}Security"
    )
    forged = etree.fromstring(etree.tostring(security[0]))
    for signature in forged.iter("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        signature.getparent().remove(signature)
    security.insert(0, forged)
    response = _post(fresh_dmp, "patients", etree.tostring(root), "application/soap+xml")
    assert _fault_code(response) == "DMPInvalidVihf"


def test_a_vihf_signed_with_a_revoked_certificate_is_refused(fresh_dmp: RunningDmp) -> None:
    """The DMP checks the signer against the CA's CRL: a revoked organisation certificate signs nothing."""
    root = _envelope(fresh_dmp, "urn:hl7-org:v3:PRPA_IN201307UV02", etree.Element("x"), signer="sign-revoked")
    response = _post(fresh_dmp, "patients", etree.tostring(root), "application/soap+xml")
    assert _fault_code(response) == "DMPInvalidVihf"
    assert b"revoked" in response.content


@pytest.mark.parametrize(
    ("query_id", "slots", "code"),
    [
        ("urn:uuid:00000000-0000-0000-0000-000000000000", {}, "XDSUnknownStoredQuery"),
        (
            FIND_DOCUMENTS,
            {"$XDSDocumentEntryStatus": ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"]},
            "XDSStoredQueryParamNumber",
        ),
        (
            FIND_DOCUMENTS,
            {"$XDSDocumentEntryPatientId": [f"{DOMINIQUE}^^^&{OID_INS_NIR_TEST}&ISO"]},
            "XDSStoredQueryParamNumber",
        ),
        (
            FIND_DOCUMENTS,
            {
                "$XDSDocumentEntryPatientId": [f"'{DOMINIQUE}^^^&1.2.3&ISO'"],
                "$XDSDocumentEntryStatus": ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"],
            },
            "XDSUnknownPatientId",
        ),
    ],
    ids=["unknown-query", "missing-patient", "unquoted-value", "non-ins-oid"],
)
def test_stored_query_errors_are_registry_errors(
    fresh_dmp: RunningDmp, query_id: str, slots: dict[str, list[str]], code: str
) -> None:
    query = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
    rim = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    request = etree.Element(f"{{{query}}}AdhocQueryRequest", nsmap={"query": query, "rim": rim})
    etree.SubElement(request, f"{{{query}}}ResponseOption", returnType="LeafClass")
    adhoc = etree.SubElement(request, f"{{{rim}}}AdhocQuery", id=query_id)
    for name, values in slots.items():
        value_list = etree.SubElement(etree.SubElement(adhoc, f"{{{rim}}}Slot", name=name), f"{{{rim}}}ValueList")
        for value in values:
            etree.SubElement(value_list, f"{{{rim}}}Value").text = value
    body = etree.tostring(_envelope(fresh_dmp, "urn:ihe:iti:2007:RegistryStoredQuery", request))
    response = _post(fresh_dmp, "registry", body, "application/soap+xml")
    assert response.status_code == 200
    assert f'errorCode="{code}"' in response.text


def test_injected_faults_reach_the_client(fresh_dmp: RunningDmp) -> None:
    dpi = client(fresh_dmp)
    fresh_dmp.control_post(
        "/mocks/dmp/faults", {"kind": "registry_error", "operation": "iti18", "code": "XDSRegistryBusy"}
    )
    with pytest.raises(DmpError) as busy:
        dpi.find_documents(DOMINIQUE, OID_INS_NIR_TEST)
    assert busy.value.codes == ["XDSRegistryBusy"]
    fresh_dmp.control_post("/mocks/dmp/faults", {"kind": "soap_fault", "operation": "td02"})
    with pytest.raises(DmpError) as unavailable:
        dpi.check_dmp(DOMINIQUE, OID_INS_NIR_TEST)
    assert unavailable.value.codes == ["DMPServiceUnavailable"]
    fresh_dmp.control_post("/mocks/dmp/faults", {"kind": "timeout", "operation": "td02", "delay": 10})
    with pytest.raises(DmpError) as late:
        dpi.check_dmp(DOMINIQUE, OID_INS_NIR_TEST)
    assert late.value.transport
    dpi.close()
