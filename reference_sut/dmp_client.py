"""The reference SUT's DMP client: TD0.2, TD0.3 and the XDS.b transactions, each under a fresh VIHF.

Its XML is built and read here, independently of the DMP mock, so that the self-test cannot pass
because both sides share a misreading. One exception, said openly: MTOM framing uses the
harness's ``mtom`` module, because the stdlib ``email`` generator rewrites binary parts
(measured: a 5 KB random attachment came out 37 bytes longer) and the DMP hashes exact bytes.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from lxml import etree

from segur.mocks.runtime import mtom

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
HL7 = "urn:hl7-org:v3"
DMP = "urn:segur:dmp:1"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
CONFIDENTIALITY_SCHEME = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
TYPE_SCHEME = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
UNIQUE_ID_SCHEME = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
UPDATE_AVAILABILITY = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

# VIHF factory: (INS, INS OID, PurposeOfUse) -> wsse:Security header element.
VihfFactory = Callable[[str, str, str], etree._Element]


class DmpError(Exception):
    """The DMP refused or did not answer; ``codes`` are the fault / registry error codes it gave."""

    def __init__(self, message: str, codes: Sequence[str] = (), *, transport: bool = False) -> None:
        super().__init__(message)
        self.codes = list(codes)
        self.transport = transport


@dataclass
class DmpStatus:
    """What TD0.2 says: does the patient have a DMP, may this professional use it, as whom is it registered."""

    found: bool
    status: str = ""
    authorisation: str = "NON_EXISTE"
    opposition: bool = False
    secret: bool = False
    family: str = ""
    given: list[str] = field(default_factory=list)
    gender: str = ""
    birth_date: str = ""


@dataclass
class DocumentEntry:
    entry_uuid: str
    logical_id: str
    unique_id: str
    status: str
    type_code: str
    confidentiality: list[str]
    metadata: etree._Element


@dataclass
class DmpSettings:
    base_url: str
    ca: str
    cert: str
    key: str
    repository_unique_id: str = "1.2.250.1.213.1.1.9.99.1"
    timeout: float = 10.0


class DmpClient:
    """One DMP connection (mTLS with the organisation's AUTH_CLI certificate)."""

    def __init__(self, settings: DmpSettings, vihf: VihfFactory) -> None:
        self.settings = settings
        self.vihf = vihf
        context = ssl.create_default_context(cafile=settings.ca)
        context.load_cert_chain(settings.cert, settings.key)
        self._http = httpx.Client(verify=context, timeout=settings.timeout)

    def close(self) -> None:
        self._http.close()

    # -- TD0.2 / TD0.3 --------------------------------------------------------------------

    def check_dmp(self, ins: str, oid: str, purpose: str = "normal") -> DmpStatus:
        """TD0.2: existence of the DMP, its status, this professional's authorisation, the DMP's identity."""
        query = etree.Element(f"{{{HL7}}}PRPA_IN201307UV02", nsmap={None: HL7}, ITSVersion="XML_1.0")
        etree.SubElement(query, f"{{{HL7}}}id", root=str(uuid.uuid4()))
        etree.SubElement(query, f"{{{HL7}}}interactionId", root="2.16.840.1.113883.1.6", extension="PRPA_IN201307UV02")
        etree.SubElement(query, f"{{{HL7}}}processingCode", code="P")
        etree.SubElement(query, f"{{{HL7}}}processingModeCode", code="T")
        etree.SubElement(query, f"{{{HL7}}}acceptAckCode", code="AL")
        control = etree.SubElement(query, f"{{{HL7}}}controlActProcess", classCode="CACT", moodCode="EVN")
        by_parameter = etree.SubElement(control, f"{{{HL7}}}queryByParameter")
        etree.SubElement(by_parameter, f"{{{HL7}}}queryId", root=str(uuid.uuid4()))
        etree.SubElement(by_parameter, f"{{{HL7}}}statusCode", code="new")
        parameters = etree.SubElement(by_parameter, f"{{{HL7}}}parameterList")
        identifier = etree.SubElement(parameters, f"{{{HL7}}}patientIdentifier")
        etree.SubElement(identifier, f"{{{HL7}}}value", root=oid, extension=ins)
        etree.SubElement(identifier, f"{{{HL7}}}semanticsText").text = "Patient.id"
        answer, _ = self._call("patients", "urn:hl7-org:v3:PRPA_IN201307UV02", query, ins, oid, purpose)
        code = answer.find(f".//{{{HL7}}}queryAck/{{{HL7}}}queryResponseCode")
        if code is None or code.get("code") not in ("OK", "NF"):
            raise DmpError("TD0.2 answer without queryResponseCode OK/NF")
        if code.get("code") == "NF":
            return DmpStatus(found=False)
        person = answer.find(f".//{{{HL7}}}patientPerson")
        observations = {
            observation.find(f"{{{HL7}}}code").get("code"): observation.find(f"{{{HL7}}}value").get("code")
            for observation in answer.iter(f"{{{HL7}}}observation")
        }
        name = person.find(f"{{{HL7}}}name") if person is not None else None
        return DmpStatus(
            found=True,
            status=observations.get("DMP_STATUT", ""),
            authorisation=observations.get("AUTORISATION", "NON_EXISTE"),
            opposition=observations.get("OPPOSITION") == "true",
            secret=observations.get("CONNEXION_SECRETE") == "true",
            family=name.findtext(f"{{{HL7}}}family", "") if name is not None else "",
            given=[given.text or "" for given in name.findall(f"{{{HL7}}}given")] if name is not None else [],
            gender=person.find(f"{{{HL7}}}administrativeGenderCode").get("code", "") if person is not None else "",
            birth_date=person.find(f"{{{HL7}}}birthTime").get("value", "") if person is not None else "",
        )

    def set_authorization(self, ins: str, oid: str, action: str) -> str:
        """TD0.3 (AJOUT / SUPPRESSION); returns the DMP's status word."""
        request = etree.Element(f"{{{DMP}}}setAuthorization", nsmap={"dmp": DMP})
        etree.SubElement(request, f"{{{DMP}}}patient", root=oid, extension=ins)
        etree.SubElement(request, f"{{{DMP}}}action").text = action
        answer, _ = self._call("habilitations", f"{DMP}:setAuthorization", request, ins, oid, "normal")
        return answer.findtext(f"{{{DMP}}}status", "")

    # -- XDS.b ----------------------------------------------------------------------------

    def provide_and_register(self, request: etree._Element, documents: dict[str, bytes], ins: str, oid: str) -> None:
        """ITI-41: ``request`` is the ProvideAndRegisterDocumentSetRequest; documents travel as MTOM parts."""
        parts = attachments(request, documents)
        answer, _ = self._call("repository", ITI41, request, ins, oid, "normal", parts)
        raise_registry_errors(answer)

    def find_documents(
        self, ins: str, oid: str, statuses: Sequence[str] = (APPROVED,), purpose: str = "normal"
    ) -> list[DocumentEntry]:
        """ITI-18 FindDocuments, LeafClass."""
        request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
        etree.SubElement(request, f"{{{QUERY}}}ResponseOption", returnType="LeafClass", returnComposedObjects="true")
        query = etree.SubElement(request, f"{{{RIM}}}AdhocQuery", id=FIND_DOCUMENTS)
        _slot(query, "$XDSDocumentEntryPatientId", [f"'{ins}^^^&{oid}&ISO'"])
        _slot(query, "$XDSDocumentEntryStatus", ["(" + ",".join(f"'{status}'" for status in statuses) + ")"])
        answer, _ = self._call("registry", "urn:ihe:iti:2007:RegistryStoredQuery", request, ins, oid, purpose)
        raise_registry_errors(answer)
        return [_entry(element) for element in answer.iter(f"{{{RIM}}}ExtrinsicObject")]

    def retrieve(self, ins: str, oid: str, unique_id: str, purpose: str = "normal") -> bytes:
        """ITI-43 for one document; the bytes come back as an MTOM part."""
        request = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
        document_request = etree.SubElement(request, f"{{{XDSB}}}DocumentRequest")
        etree.SubElement(document_request, f"{{{XDSB}}}RepositoryUniqueId").text = self.settings.repository_unique_id
        etree.SubElement(document_request, f"{{{XDSB}}}DocumentUniqueId").text = unique_id
        answer, binaries = self._call("repository", "urn:ihe:iti:2007:RetrieveDocumentSet", request, ins, oid, purpose)
        raise_registry_errors(answer.find(f"{{{RS}}}RegistryResponse"))
        document = answer.find(f"{{{XDSB}}}DocumentResponse/{{{XDSB}}}Document")
        if document is None or document not in binaries:
            raise DmpError(f"document {unique_id} not returned")
        return binaries[document]

    def update(self, submit_objects: etree._Element, ins: str, oid: str) -> None:
        """ITI-57 Update Document Set (masking through a metadata update, deprecation, deletion)."""
        answer, _ = self._call("registry", "urn:ihe:iti:2010:UpdateDocumentSet", submit_objects, ins, oid, "normal")
        raise_registry_errors(answer)

    # -- transport ------------------------------------------------------------------------

    def prepare(
        self,
        service: str,
        action: str,
        payload: etree._Element,
        ins: str,
        oid: str,
        purpose: str,
        attachments: dict[etree._Element, tuple[bytes, str]] | None = None,
    ) -> tuple[str, str, bytes]:
        """URL, Content-Type and body of one request, under a fresh VIHF (MTOM when there are attachments)."""
        envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA})
        header = etree.SubElement(envelope, f"{{{SOAP}}}Header")
        etree.SubElement(header, f"{{{WSA}}}Action").text = action
        etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
        etree.SubElement(header, f"{{{WSA}}}To").text = self.settings.base_url + service
        header.append(self.vihf(ins, oid, purpose))
        etree.SubElement(envelope, f"{{{SOAP}}}Body").append(payload)
        if attachments is not None:
            content_type, body = mtom.render(envelope, attachments)
            content_type += f'; action="{action}"'
        else:
            content_type = f'application/soap+xml; charset=utf-8; action="{action}"'
            body = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        return self.settings.base_url + service, content_type, body

    def send(self, url: str, content_type: str, body: bytes) -> tuple[etree._Element, dict[etree._Element, bytes]]:
        """Post a prepared request; the answer's body element, or DmpError for a fault or no answer."""
        try:
            response = self._http.post(url, content=body, headers={"Content-Type": content_type})
        except httpx.HTTPError as error:
            raise DmpError(f"DMP unreachable: {type(error).__name__}", transport=True) from error
        root, binaries = _read_response(response)
        body_element = root.find(f"{{{SOAP}}}Body")
        if body_element is None or len(body_element) != 1:
            raise DmpError(f"DMP answered HTTP {response.status_code} without a SOAP body", transport=True)
        answer = body_element[0]
        if answer.tag == f"{{{SOAP}}}Fault":
            code = answer.findtext(f"{{{SOAP}}}Code/{{{SOAP}}}Subcode/{{{SOAP}}}Value", "").split(":")[-1]
            reason = answer.findtext(f"{{{SOAP}}}Reason/{{{SOAP}}}Text", "")
            detail_element = answer.find(f"{{{SOAP}}}Detail")
            detail = "".join(detail_element.itertext()) if detail_element is not None else ""
            raise DmpError(f"DMP fault {code}: {reason} {detail}".strip(), [code])
        return answer, binaries

    def _call(self, *request: Any) -> tuple[etree._Element, dict[etree._Element, bytes]]:
        """``prepare`` then ``send``: the arguments are ``prepare``'s."""
        return self.send(*self.prepare(*request))


def attachments(request: etree._Element, documents: dict[str, bytes]) -> dict[etree._Element, tuple[bytes, str]]:
    """One ``xdsb:Document`` per document, its bytes to travel as an MTOM part (previous ones replaced)."""
    for element in request.findall(f"{{{XDSB}}}Document"):
        request.remove(element)
    parts: dict[etree._Element, tuple[bytes, str]] = {}
    for document_id, data in documents.items():
        element = etree.SubElement(request, f"{{{XDSB}}}Document", id=document_id)
        parts[element] = (data, "text/xml" if data.lstrip().startswith(b"<") else "application/octet-stream")
    return parts


def _read_response(response: httpx.Response) -> tuple[etree._Element, dict[etree._Element, bytes]]:
    content_type = response.headers.get("content-type", "")
    try:
        if mtom.is_mtom(content_type):
            package = mtom.split_package(content_type, response.content)
            root = etree.fromstring(package.root, _SAFE_PARSER)
            return root, mtom.resolve_includes(root, package)
        return etree.fromstring(response.content, _SAFE_PARSER), {}
    except (etree.XMLSyntaxError, mtom.MtomProblem) as error:
        raise DmpError(
            f"DMP answered HTTP {response.status_code} with an unreadable body: {error}", transport=True
        ) from error


def raise_registry_errors(response: etree._Element | None) -> None:
    """DmpError unless ``response`` (an rs:RegistryResponse) says Success."""
    if response is None:
        raise DmpError("answer without a registry status")
    if response.get("status", "").endswith(":Success"):
        return
    errors = response.findall(f".//{{{RS}}}RegistryError")
    codes = [error.get("errorCode", "") for error in errors]
    details = "; ".join(f"{error.get('errorCode')}: {error.get('codeContext')}" for error in errors)
    raise DmpError(f"DMP refused the transaction: {details or response.get('status')}", codes)


def _slot(parent: etree._Element, name: str, values: Sequence[str]) -> None:
    slot = etree.SubElement(parent, f"{{{RIM}}}Slot", name=name)
    value_list = etree.SubElement(slot, f"{{{RIM}}}ValueList")
    for value in values:
        etree.SubElement(value_list, f"{{{RIM}}}Value").text = value


def _entry(element: etree._Element) -> DocumentEntry:
    def codes(scheme: str) -> list[str]:
        return [
            node.get("nodeRepresentation", "")
            for node in element.findall(f"{{{RIM}}}Classification")
            if node.get("classificationScheme") == scheme
        ]

    unique_id = next(
        (
            node.get("value", "")
            for node in element.findall(f"{{{RIM}}}ExternalIdentifier")
            if node.get("identificationScheme") == UNIQUE_ID_SCHEME
        ),
        "",
    )
    return DocumentEntry(
        entry_uuid=element.get("id", ""),
        logical_id=element.get("lid", element.get("id", "")),
        unique_id=unique_id,
        status=element.get("status", ""),
        type_code=next(iter(codes(TYPE_SCHEME)), ""),
        confidentiality=codes(CONFIDENTIALITY_SCHEME),
        metadata=element,
    )
