"""The DMP mock on the wire: SOAP 1.2 (MTOM/XOP where XDS.b uses it) under /si-dmp-server/v2/services/.

Every request passes the same gate before its service sees it: the organisation's AUTH_CLI
certificate (mTLS), the SOAP binding, a WS-Addressing action the service knows, and a VIHF
that verifies and names the patient of the request. A refused gate is a SOAP 1.2 Fault; a
refused XDS transaction is a RegistryResponse with a RegistryErrorList, as the DMP answers.

Modelled here (the DMP's vendor guide is not public): the TD0.2 answer carries the DMP
status, the professional's authorisation, opposition and secret connection as coded
``subjectOf/observation`` elements; TD0.3 ``setAuthorization`` and the ``DMP*`` error and
fault codes use the harness's namespace. docs/mocks.md lists every modelled element.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from segur.mocks.dmp import ebrim
from segur.mocks.dmp.ebrim import LCM, RIM, XDSB, q
from segur.mocks.dmp.queries import QUERY_NAMES, QueryError, run_query
from segur.mocks.dmp.registry import (
    APPROVED,
    DEPRECATED,
    STATUSES,
    DmpPatient,
    DmpRegistry,
    Reader,
    StoredAssociation,
    StoredDocument,
    StoredSubmissionSet,
)
from segur.mocks.dmp.validation_pool import PoolUnavailable, ValidationPool, gate_findings
from segur.mocks.runtime import mtom
from segur.mocks.runtime.faults import FaultInjector
from segur.mocks.runtime.http import Handled, HttpRequest, HttpResponse
from segur.mocks.runtime.soap import WSA_NS, SoapEnvelope, SoapProblem, envelope, envelope_element, fault, read_envelope
from segur.validation import Finding, has_errors
from segur.vihf import VihfClaims, verify_vihf
from segur.xds import InsOids
from segur.xds import ebrim as xds_names

BASE_PATH = "/si-dmp-server/v2/services/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
HL7_NS = "urn:hl7-org:v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
DMP_NS = "urn:segur:dmp:1"  # the harness's namespace for what the public specifications do not define
SOAP_CONTENT_TYPE = "application/soap+xml; charset=utf-8"

ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
TD02 = "urn:hl7-org:v3:PRPA_IN201307UV02"
TD03 = f"{DMP_NS}:setAuthorization"
# (service, action) -> operation name used in the journal and by fault injection.
OPERATIONS = {
    ("repository", ITI41): "iti41",
    ("repository", ITI43): "iti43",
    ("registry", ITI18): "iti18",
    ("registry", ITI57): "iti57",
    ("patients", TD02): "td02",
    ("habilitations", TD03): "td03",
}
RESPONSE_ACTIONS = {
    "iti41": f"{ITI41}Response",
    "iti43": f"{ITI43}Response",
    "iti18": "urn:ihe:iti:2007:RegistryStoredQueryResponse",
    "iti57": f"{ITI57}Response",
    "td02": "urn:hl7-org:v3:PRPA_IN201308UV02",
    "td03": f"{TD03}Response",
}
# code -> (sender fault?, reason) of the SOAP faults the gate answers with.
FAULTS: dict[str, tuple[bool, str]] = {
    "DMPMalformedRequest": (True, "Requête mal formée"),
    "DMPUnsupportedContentType": (True, "Type de contenu non supporté"),
    "DMPForbiddenDoctype": (True, "Déclaration DOCTYPE ou d'entité refusée"),
    "DMPInvalidMtom": (True, "Paquet MTOM/XOP invalide"),
    "DMPUnknownOperation": (True, "Service ou action inconnus"),
    "DMPRequestTooLarge": (True, "Requête trop volumineuse"),
    "DMPUnauthorisedCertificate": (True, "Certificat d'authentification non autorisé"),
    "DMPInvalidVihf": (True, "VIHF absent ou invalide"),
    "DMPVihfPatientMismatch": (True, "Le VIHF ne désigne pas le patient de la requête"),
    "DMPServiceUnavailable": (False, "Service momentanément indisponible"),
}
_PROBLEM_CODES = {
    "malformed": "DMPMalformedRequest",
    "content_type": "DMPUnsupportedContentType",
    "doctype": "DMPForbiddenDoctype",
    "mtom": "DMPInvalidMtom",
}
_REFERENCES = frozenset({"id", "sourceObject", "targetObject", "classifiedObject", "registryObject"})
"""The attributes by which registry objects name each other: symbolic ids there become entryUUIDs."""


@dataclass
class Submission:
    """The parts of an ITI-41 request that its checks and its filing use."""

    payload: etree._Element
    object_list: etree._Element
    package: etree._Element
    documents: dict[str, bytes]
    ins: str
    oid: str


@dataclass
class Gate:
    """What the gate established about a request, handed to the service.

    For an ITI-41, ``submission`` is the request read before its VIHF was checked (or why it
    cannot be read, to be reported after the VIHF) and ``submission_findings`` what the XDS and
    CDA checks found, in the same worker call as the VIHF.
    """

    soap: SoapEnvelope
    operation: str
    claims: VihfClaims
    reader: Reader
    correlation: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    submission: Submission | SoapProblem | None = None
    submission_findings: list[Finding] = field(default_factory=list)


@dataclass
class Answer:
    """A service's answer before it is put on the wire."""

    payload: etree._Element
    outcome: dict[str, Any] = field(default_factory=dict)
    binaries: dict[etree._Element, tuple[bytes, str]] = field(default_factory=dict)
    patient: str = ""


class VihfProblem(SoapProblem):
    """A VIHF refusal: a fault whose findings also go to the journal for the report."""

    def __init__(self, code: str, reason: str, findings: list[Finding], *, operation: str) -> None:
        super().__init__(code, reason, operation=operation)
        self.findings = findings


class DmpApp:
    """HTTP application of the DMP mock; ``registry`` is shared with the control API.

    The gate's CPU-bound checks (VIHF, and an ITI-41's XDS metadata and CDA) run in ``pool``
    (see validation_pool): ``handle`` is a coroutine awaiting them, so the loop serves other
    requests meanwhile. Everything that reads or changes the registry runs in the loop.
    """

    name = "dmp"

    def __init__(
        self,
        registry: DmpRegistry,
        faults: FaultInjector,
        trusted_ca_pem: bytes,
        psc_tokens: Callable[[str], dict] | None = None,
        oids: InsOids | None = None,
        *,
        max_document_bytes: int = 5_000_000,
        pool: ValidationPool | None = None,
        cisis: Path | None = None,
    ) -> None:
        self.registry = registry
        self.cisis = cisis
        self.max_document_bytes = max_document_bytes
        self.pool = pool or ValidationPool()
        self.faults = faults
        self.trusted_ca_pem = trusted_ca_pem
        self.psc_tokens = psc_tokens
        self.oids = oids or InsOids()
        self._services: dict[str, Callable[[Gate], Answer]] = {
            "iti41": self._provide_and_register,
            "iti43": self._retrieve,
            "iti18": self._stored_query,
            "iti57": self._update,
            "td02": self._td02,
            "td03": self._td03,
        }

    def reject(self, request: HttpRequest, status: int, reason: str) -> Handled:
        code = (
            "DMPRequestTooLarge"
            if status == 413
            else "DMPServiceUnavailable"
            if status >= 500
            else "DMPMalformedRequest"
        )
        handled = self._fault(code, reason, operation="rejected", outcome={"http_status": status})
        handled.response.status = status
        return handled

    async def handle(self, request: HttpRequest) -> Handled:
        try:
            return await self._handle(request)
        except VihfProblem as problem:
            findings = [finding.to_json() for finding in problem.findings]
            return self._fault(
                problem.code, problem.reason, operation=problem.operation, outcome={"findings": findings}
            )
        except SoapProblem as problem:
            code = problem.code if problem.code in FAULTS else _PROBLEM_CODES.get(problem.code, "DMPMalformedRequest")
            return self._fault(code, problem.reason, operation=problem.operation)

    async def _handle(self, request: HttpRequest) -> Handled:
        service = request.path.removeprefix(BASE_PATH) if request.path.startswith(BASE_PATH) else ""
        if service not in {service for service, _ in OPERATIONS}:
            raise SoapProblem("DMPUnknownOperation", f"no DMP service at {request.path}")
        cn = request.peer.get("cn", "")
        if "AUTH_CLI" not in cn:
            raise SoapProblem("DMPUnauthorisedCertificate", f"client certificate CN {cn!r} is not an AUTH_CLI one")
        soap = read_envelope(request, allow_mtom=True)
        operation = OPERATIONS.get((service, soap.action))
        if operation is None:
            raise SoapProblem("DMPUnknownOperation", f"service {service} has no action {soap.action!r}")
        submission = self._read_submission(soap) if operation == "iti41" else None
        claims, findings, submission_findings = await self._verify_vihf(soap, operation, submission)
        correlation = _vihf_correlation(operation, claims)
        gate = Gate(soap, operation, claims, _reader(claims), correlation, findings, submission, submission_findings)
        injected = self.faults.take(operation)
        if injected is not None and injected.kind == "soap_fault":
            return self._fault(
                injected.code or "DMPServiceUnavailable",
                "fault injected by the control API",
                operation=operation,
                outcome={"injected": "soap_fault"},
            )
        if injected is not None and injected.kind == "http_error":
            return Handled(
                HttpResponse(injected.status, b"Service Unavailable"),
                operation,
                gate.correlation,
                {"injected": "http_error"},
            )
        if injected is not None and injected.kind == "registry_error" and operation in ("iti41", "iti57", "iti18"):
            answer = Answer(ebrim.registry_response([(injected.code or "XDSRegistryBusy", "injected", "", "error")]))
            answer.outcome["injected"] = "registry_error"
        else:
            try:
                answer = self._services[operation](gate)
            except SoapProblem as problem:
                problem.operation = operation
                raise
        gate.correlation.update({"ins": answer.patient} if answer.patient else {})
        handled = self._respond(gate, answer)
        if injected is not None and injected.kind == "timeout":
            handled.delay = injected.delay
            handled.outcome["injected"] = f"timeout ({injected.delay:g} s)"
        return handled

    # -- the gate --------------------------------------------------------------------------

    async def _verify_vihf(
        self, soap: SoapEnvelope, operation: str, submission: Submission | SoapProblem | None
    ) -> tuple[VihfClaims, list[Finding], list[Finding]]:
        """The VIHF's claims and findings and, for a readable ITI-41, the submission's, from one worker call.

        The worker checks the submission as soon as the VIHF passed, before fault injection and the
        patient check: when those refuse the request, the submission's findings go unused, so what
        is answered, and in which order, is unchanged. A PSC-mode VIHF is verified again here, where
        the PSC mock's tokens are.
        """
        security = soap.header_child(WSSE_NS, "Security")
        if security is None:
            finding = Finding("VIHF-ABSENT", "error", "no wsse:Security header carrying a VIHF", "/Envelope/Header")
            raise VihfProblem("DMPInvalidVihf", finding.message, [finding], operation=operation)
        to_check = (
            (etree.tostring(submission.payload, with_tail=False), submission.documents, self.oids)
            if isinstance(submission, Submission)
            else None
        )
        try:
            claims, findings, submission_findings = await self.pool.run(
                gate_findings,
                etree.tostring(security, with_tail=False),
                self.trusted_ca_pem,
                to_check,
                None if self.cisis is None else str(self.cisis),
            )
        except PoolUnavailable as error:
            raise SoapProblem("DMPServiceUnavailable", str(error), operation=operation) from None
        if claims is not None and claims.psc_token is not None and self.psc_tokens is not None:
            claims, findings = verify_vihf(security, trusted_ca_pem=self.trusted_ca_pem, psc_tokens=self.psc_tokens)
        if claims is None or has_errors(findings):
            errors = [finding for finding in findings if finding.severity == "error"]
            reason = "; ".join(f"[{finding.rule}] {finding.message}" for finding in errors[:3])
            raise VihfProblem("DMPInvalidVihf", reason or "VIHF refused", findings, operation=operation)
        return claims, findings, submission_findings

    def _same_patient(self, gate: Gate, ins: str, oid: str) -> None:
        """The VIHF's resource-id must designate the patient the request is about."""
        if (ins, oid) != (gate.claims.patient_ins, gate.claims.patient_oid):
            finding = Finding(
                "VIHF-RESOURCE-PATIENT",
                "error",
                f"VIHF resource-id designates {gate.claims.patient_ins} ({gate.claims.patient_oid}), "
                f"the request is about {ins} ({oid})",
                "//saml2:Attribute[@Name='urn:oasis:names:tc:xacml:2.0:resource:resource-id']",
            )
            raise VihfProblem(
                "DMPVihfPatientMismatch", finding.message, [*gate.findings, finding], operation=gate.operation
            )

    def _ins_of(self, cx: str) -> str:
        ins, oid = ebrim.ins_of(cx)
        if oid not in (self.oids.nir, self.oids.nia):
            raise QueryError(
                "XDSUnknownPatientId", f"patient id {cx!r} is not an INS under {self.oids.nir}/{self.oids.nia}"
            )
        return ins

    # -- ITI-41 ----------------------------------------------------------------------------

    def _read_submission(self, soap: SoapEnvelope) -> Submission | SoapProblem:
        """The ITI-41 request's parts, or the problem that refuses it: returned, to be reported after the VIHF."""
        try:
            return self._submission(soap)
        except SoapProblem as problem:
            return problem

    def _submission(self, soap: SoapEnvelope) -> Submission:
        payload = soap.payload
        if payload.tag != q(XDSB, "ProvideAndRegisterDocumentSetRequest"):
            raise SoapProblem(
                "malformed", f"ITI-41 expects xdsb:ProvideAndRegisterDocumentSetRequest, got {payload.tag}"
            )
        object_list = payload.find(f"{q(LCM, 'SubmitObjectsRequest')}/{q(RIM, 'RegistryObjectList')}")
        if object_list is None:
            raise SoapProblem("malformed", "no lcm:SubmitObjectsRequest/rim:RegistryObjectList")
        documents = {element.get("id", ""): soap.binary(element) for element in payload.findall(q(XDSB, "Document"))}
        oversized = [key for key, data in documents.items() if len(data) > self.max_document_bytes]
        if oversized:
            raise SoapProblem("DMPRequestTooLarge", f"documents {oversized} exceed {self.max_document_bytes} bytes")
        package = _one_submission_set(object_list)
        ins, oid = ebrim.ins_of(ebrim.external_id(package, xds_names.SS_PATIENT_ID))
        return Submission(payload, object_list, package, documents, ins, oid)

    def _provide_and_register(self, gate: Gate) -> Answer:
        submission = gate.submission
        if not isinstance(submission, Submission):
            assert submission is not None, "the gate reads every ITI-41"
            raise submission
        ins = submission.ins
        self._same_patient(gate, ins, submission.oid)
        findings = gate.submission_findings
        errors = [_registry_error(finding) for finding in findings if finding.severity != "info"]
        with self.registry.lock:
            errors += self._feeding_refusal(gate, ins)
            if not any(severity == "error" for *_, severity in errors):
                errors += self._file(submission.object_list, submission.package, submission.documents, ins, gate)
        answer = Answer(ebrim.registry_response(errors), patient=ins)
        answer.outcome.update(
            status="Success" if not any(e[3] == "error" for e in errors) else "Failure",
            errors=[code for code, *_ in errors],
            findings=[finding.to_json() for finding in [*gate.findings, *findings]],
        )
        return answer

    def _feeding_refusal(self, gate: Gate, ins: str) -> list[tuple[str, str, str, str]]:
        patient = self.registry.patient(ins)
        if patient is None:
            return [("XDSUnknownPatientId", f"no DMP for INS {ins}", "", "error")]
        if patient.status != "ACTIF":
            return [("DMPClosed", f"the DMP of {ins} is closed", "", "error")]
        if patient.opposition:
            return [("DMPAccessDenied", f"patient {ins} opposed access to their DMP", "", "error")]
        return []

    def _file(
        self,
        object_list: etree._Element,
        package: etree._Element,
        documents: dict[str, bytes],
        ins: str,
        gate: Gate,
    ) -> list[tuple[str, str, str, str]]:
        """Store the submission (registry lock held); errors the registry itself detects are returned."""
        ids = {element.get("id", ""): _entry_uuid(element.get("id", "")) for element in object_list}
        extrinsics = object_list.findall(q(RIM, "ExtrinsicObject"))
        for extrinsic in extrinsics:
            unique_id = ebrim.external_id(extrinsic, xds_names.DE_UNIQUE_ID)
            existing = self.registry.by_unique_id(unique_id)
            if existing is not None:
                data = documents.get(extrinsic.get("id", ""), b"")
                same = hashlib.sha1(data).hexdigest() == hashlib.sha1(existing.content).hexdigest()
                code = "XDSDocumentUniqueIdError" if same else "XDSNonIdenticalHash"
                return [(code, f"uniqueId {unique_id} is already registered", unique_id, "error")]
        replaced: list[StoredDocument] = []
        for association in object_list.findall(q(RIM, "Association")):
            if association.get("associationType") == xds_names.RPLC:
                target = self.registry.documents.get(association.get("targetObject", ""))
                if target is None or target.status != APPROVED:
                    return [
                        (
                            "XDSRegistryMetadataError",
                            f"RPLC target {association.get('targetObject')} is not an approved document of the DMP",
                            association.get("id", ""),
                            "error",
                        )
                    ]
                replaced.append(target)
        set_uuid = ids[package.get("id", "")]
        stored_set = StoredSubmissionSet(
            set_uuid, ebrim.external_id(package, xds_names.SS_UNIQUE_ID), ins, _renamed(package, ids)
        )
        for extrinsic in extrinsics:
            entry_uuid = ids[extrinsic.get("id", "")]
            authors = ebrim.author_ids(extrinsic, xds_names.DE_AUTHOR)
            self.registry.documents[entry_uuid] = StoredDocument(
                entry_uuid=entry_uuid,
                logical_id=entry_uuid,
                version=1,
                unique_id=ebrim.external_id(extrinsic, xds_names.DE_UNIQUE_ID),
                patient_ins=ins,
                content=documents.get(extrinsic.get("id", ""), b""),
                mime_type=extrinsic.get("mimeType", ""),
                metadata=_renamed(extrinsic, ids),
                submission_set=set_uuid,
                author_idnps=authors[0] if authors else gate.claims.subject_id,
                class_code=next(iter(ebrim.codes(extrinsic, xds_names.DE_CLASS_CODE)), ""),
                type_code=next(iter(ebrim.codes(extrinsic, xds_names.DE_TYPE_CODE)), ""),
                creation_time=next(iter(ebrim.slot_values(extrinsic, "creationTime")), ""),
                confidentiality=ebrim.codes(extrinsic, xds_names.DE_CONFIDENTIALITY_CODE),
            )
            stored_set.members.append(entry_uuid)
        for association in object_list.findall(q(RIM, "Association")):
            self._associate(association, ids)
        for target in replaced:
            target.status = DEPRECATED
        self.registry.submission_sets[set_uuid] = stored_set
        return []

    def _associate(self, association: etree._Element, ids: dict[str, str]) -> None:
        element = _renamed(association, ids)
        self.registry.associations.append(
            StoredAssociation(
                element.get("id", ""),
                element.get("associationType", ""),
                element.get("sourceObject", ""),
                element.get("targetObject", ""),
                element,
            )
        )

    # -- ITI-18 ----------------------------------------------------------------------------

    def _stored_query(self, gate: Gate) -> Answer:
        payload = gate.soap.payload
        if payload.tag != q(ebrim.QUERY, "AdhocQueryRequest"):
            raise SoapProblem("malformed", f"ITI-18 expects query:AdhocQueryRequest, got {payload.tag}")
        option = payload.find(q(ebrim.QUERY, "ResponseOption"))
        return_type = option.get("returnType", "") if option is not None else ""
        adhoc = payload.find(q(RIM, "AdhocQuery"))
        if adhoc is None or return_type not in ("LeafClass", "ObjectRef"):
            return _query_failure("XDSRegistryError", "AdhocQuery and returnType LeafClass|ObjectRef are required")
        raw = {
            slot.get("name", ""): ebrim.slot_values(adhoc, slot.get("name", ""))
            for slot in adhoc.findall(q(RIM, "Slot"))
        }
        query_id = adhoc.get("id", "")
        try:
            result = run_query(self.registry, query_id, raw, self._ins_of)
        except QueryError as error:
            return _query_failure(error.code, str(error))
        if result.patient_ins is not None:
            self._same_patient(gate, result.patient_ins, gate.claims.patient_oid)
            refusal = self._consultation_refusal(result.patient_ins, gate.reader)
            if refusal:
                answer = _query_failure("DMPAccessDenied", refusal)
                answer.patient = result.patient_ins
                return answer
        documents = self.registry.visible(result.documents, gate.reader)
        response = etree.Element(q(ebrim.QUERY, "AdhocQueryResponse"), nsmap=ebrim.NSMAP, status=ebrim.SUCCESS)
        objects = etree.SubElement(response, q(RIM, "RegistryObjectList"))
        visible_ids = {doc.entry_uuid for doc in documents}
        associations = [
            assoc
            for assoc in result.associations
            if {assoc.source, assoc.target} & visible_ids or assoc.kind != xds_names.HAS_MEMBER
        ]
        if return_type == "ObjectRef":
            for entry in [*documents, *result.submission_sets, *associations]:
                etree.SubElement(objects, q(RIM, "ObjectRef"), id=entry.entry_uuid)
        else:
            objects.extend(doc.leaf() for doc in documents)
            objects.extend(copy.deepcopy(entry.metadata) for entry in result.submission_sets)
            objects.extend(copy.deepcopy(assoc.element) for assoc in associations)
        answer = Answer(response, patient=result.patient_ins or "")
        answer.outcome.update(
            query=QUERY_NAMES[query_id],
            return_type=return_type,
            returned=len(documents),
            hidden=len(result.documents) - len(documents),
        )
        return answer

    def _consultation_refusal(self, ins: str, reader: Reader) -> str | None:
        patient = self.registry.patient(ins)
        if patient is None:
            return f"no DMP for INS {ins}"
        return self.registry.rules.dmp_access(patient, reader)

    # -- ITI-43 ----------------------------------------------------------------------------

    def _retrieve(self, gate: Gate) -> Answer:
        payload = gate.soap.payload
        if payload.tag != q(XDSB, "RetrieveDocumentSetRequest"):
            raise SoapProblem("malformed", f"ITI-43 expects xdsb:RetrieveDocumentSetRequest, got {payload.tag}")
        requests = payload.findall(q(XDSB, "DocumentRequest"))
        if not requests:
            raise SoapProblem("malformed", "RetrieveDocumentSetRequest without DocumentRequest")
        response = etree.Element(q(XDSB, "RetrieveDocumentSetResponse"), nsmap=ebrim.NSMAP)
        errors: list[tuple[str, str, str, str]] = []
        found: list[StoredDocument] = []
        with self.registry.lock:
            for document_request in requests:
                repository = document_request.findtext(q(XDSB, "RepositoryUniqueId"), "")
                unique_id = document_request.findtext(q(XDSB, "DocumentUniqueId"), "")
                document = self.registry.by_unique_id(unique_id)
                if repository != self.registry.repository_unique_id:
                    errors.append(("XDSUnknownRepositoryId", f"unknown repository {repository!r}", repository, "error"))
                elif document is None or document.status not in (APPROVED, DEPRECATED):
                    errors.append(("XDSDocumentUniqueIdError", f"no document {unique_id!r}", unique_id, "error"))
                else:
                    found.append(document)
        patients = {document.patient_ins for document in found}
        if len(patients) > 1:
            raise SoapProblem("malformed", "one ITI-43 request must concern one patient (one VIHF)")
        patient = next(iter(patients), "")
        if patient:
            self._same_patient(gate, patient, gate.claims.patient_oid)
            refusal = self._consultation_refusal(patient, gate.reader)
            if refusal:
                errors += [("DMPAccessDenied", refusal, doc.unique_id, "error") for doc in found]
                found = []
        visible = self.registry.visible(found, gate.reader)
        errors += [
            ("XDSDocumentUniqueIdError", "document not visible to this reader", doc.unique_id, "error")
            for doc in found
            if doc not in visible
        ]
        status = ebrim.registry_response(errors, partial=bool(visible))
        response.append(status)
        answer = Answer(response, patient=patient)
        for document in visible:
            document_response = etree.SubElement(response, q(XDSB, "DocumentResponse"))
            etree.SubElement(document_response, q(XDSB, "RepositoryUniqueId")).text = self.registry.repository_unique_id
            etree.SubElement(document_response, q(XDSB, "DocumentUniqueId")).text = document.unique_id
            etree.SubElement(document_response, q(XDSB, "mimeType")).text = document.mime_type
            content = etree.SubElement(document_response, q(XDSB, "Document"))
            answer.binaries[content] = (document.content, document.mime_type or "application/octet-stream")
        answer.outcome.update(retrieved=[doc.unique_id for doc in visible], errors=[code for code, *_ in errors])
        return answer

    # -- ITI-57 ----------------------------------------------------------------------------

    def _update(self, gate: Gate) -> Answer:
        payload = gate.soap.payload
        object_list = payload.find(q(RIM, "RegistryObjectList"))
        if payload.tag != q(LCM, "SubmitObjectsRequest") or object_list is None:
            raise SoapProblem("malformed", "ITI-57 expects lcm:SubmitObjectsRequest/rim:RegistryObjectList")
        package = _one_submission_set(object_list)
        ins, oid = ebrim.ins_of(ebrim.external_id(package, xds_names.SS_PATIENT_ID))
        self._same_patient(gate, ins, oid)
        with self.registry.lock:
            errors = self._feeding_refusal(gate, ins)
            changes: list[str] = []
            if not errors:
                errors, changes = self._apply_updates(object_list, package, ins)
        answer = Answer(ebrim.registry_response(errors), patient=ins)
        answer.outcome.update(changes=changes, errors=[code for code, *_ in errors])
        return answer

    def _apply_updates(
        self, object_list: etree._Element, package: etree._Element, ins: str
    ) -> tuple[list[tuple[str, str, str, str]], list[str]]:
        """Metadata updates (new version of an entry) and availability changes, all or nothing."""
        ids = {element.get("id", ""): _entry_uuid(element.get("id", "")) for element in object_list}
        planned: list[Callable[[], str]] = []
        for extrinsic in object_list.findall(q(RIM, "ExtrinsicObject")):
            current = self.registry.current_version(extrinsic.get("lid", ""))
            if current is None or current.patient_ins != ins:
                return [
                    (
                        "XDSMetadataUpdateError",
                        f"no document with logical id {extrinsic.get('lid')!r}",
                        extrinsic.get("lid", ""),
                        "error",
                    )
                ], []
            planned.append(self._new_version(current, extrinsic, ids))
        for association in object_list.findall(q(RIM, "Association")):
            if association.get("associationType") != ebrim.UPDATE_AVAILABILITY_STATUS:
                continue
            target = association.get("targetObject", "")
            document = self.registry.documents.get(target) or self.registry.current_version(target)
            new_status = next(iter(ebrim.slot_values(association, "NewStatus")), "")
            original = next(iter(ebrim.slot_values(association, "OriginalStatus")), "")
            if document is None or document.patient_ins != ins:
                return [("XDSMetadataUpdateError", f"no document {target!r}", target, "error")], []
            if new_status not in STATUSES or original != document.status:
                return [
                    (
                        "XDSMetadataUpdateError",
                        f"status change {original} -> {new_status} does not apply to "
                        f"a document whose status is {document.status}",
                        target,
                        "error",
                    )
                ], []
            planned.append(_status_change(document, new_status))
        if not planned:
            return [("XDSMetadataUpdateError", "the update changes nothing", "", "error")], []
        set_uuid = ids[package.get("id", "")]
        self.registry.submission_sets[set_uuid] = StoredSubmissionSet(
            set_uuid, ebrim.external_id(package, xds_names.SS_UNIQUE_ID), ins, _renamed(package, ids)
        )
        for association in object_list.findall(q(RIM, "Association")):
            self._associate(association, ids)
        return [], [apply() for apply in planned]

    def _new_version(
        self, current: StoredDocument, extrinsic: etree._Element, ids: dict[str, str]
    ) -> Callable[[], str]:
        def apply() -> str:
            entry_uuid = ids[extrinsic.get("id", "")]
            self.registry.documents[entry_uuid] = StoredDocument(
                entry_uuid=entry_uuid,
                logical_id=current.logical_id,
                version=current.version + 1,
                unique_id=current.unique_id,
                patient_ins=current.patient_ins,
                content=current.content,
                mime_type=current.mime_type,
                metadata=_renamed(extrinsic, ids),
                submission_set=current.submission_set,
                author_idnps=current.author_idnps,
                class_code=next(iter(ebrim.codes(extrinsic, xds_names.DE_CLASS_CODE)), current.class_code),
                type_code=next(iter(ebrim.codes(extrinsic, xds_names.DE_TYPE_CODE)), current.type_code),
                creation_time=current.creation_time,
                confidentiality=ebrim.codes(extrinsic, xds_names.DE_CONFIDENTIALITY_CODE),
                status=current.status,
            )
            current.status = DEPRECATED
            return f"{current.unique_id}: version {current.version + 1}, confidentiality " + ",".join(
                ebrim.codes(extrinsic, xds_names.DE_CONFIDENTIALITY_CODE)
            )

        return apply

    # -- TD0.2 / TD0.3 ---------------------------------------------------------------------

    def _td02(self, gate: Gate) -> Answer:
        payload = gate.soap.payload
        if payload.tag != q(HL7_NS, "PRPA_IN201307UV02"):
            raise SoapProblem("malformed", f"TD0.2 expects hl7:PRPA_IN201307UV02, got {payload.tag}")
        value = payload.find(
            f".//{q(HL7_NS, 'queryByParameter')}/{q(HL7_NS, 'parameterList')}/"
            f"{q(HL7_NS, 'patientIdentifier')}/{q(HL7_NS, 'value')}"
        )
        if value is None or not value.get("extension"):
            raise SoapProblem("malformed", "queryByParameter/parameterList/patientIdentifier/value is required")
        ins, oid = value.get("extension", ""), value.get("root", "")
        self._same_patient(gate, ins, oid)
        patient = self.registry.patient(ins)
        answer = Answer(_td02_response(payload, patient, ins, oid, gate.claims.subject_id), patient=ins)
        answer.outcome.update(
            query_response="OK" if patient else "NF",
            dmp_status=patient.status if patient else "ABSENT",
            authorisation=patient.authorisation(gate.claims.subject_id) if patient else "NON_EXISTE",
        )
        return answer

    def _td03(self, gate: Gate) -> Answer:
        payload = gate.soap.payload
        if payload.tag != q(DMP_NS, "setAuthorization"):
            raise SoapProblem("malformed", f"TD0.3 expects dmp:setAuthorization, got {payload.tag}")
        patient_element = payload.find(q(DMP_NS, "patient"))
        action = payload.findtext(q(DMP_NS, "action"), "")
        if patient_element is None or action not in ("AJOUT", "SUPPRESSION"):
            raise SoapProblem("malformed", "setAuthorization needs dmp:patient and dmp:action AJOUT|SUPPRESSION")
        ins, oid = patient_element.get("extension", ""), patient_element.get("root", "")
        self._same_patient(gate, ins, oid)
        idnps = gate.claims.subject_id
        with self.registry.lock:
            patient = self.registry.patient(ins)
            status, detail = _set_authorisation(patient, idnps, action)
        response = etree.Element(q(DMP_NS, "setAuthorizationResponse"), nsmap={"dmp": DMP_NS})
        etree.SubElement(response, q(DMP_NS, "status")).text = status
        etree.SubElement(response, q(DMP_NS, "detail")).text = detail
        answer = Answer(response, patient=ins)
        answer.outcome.update(action=action, status=status)
        return answer

    # -- rendering -------------------------------------------------------------------------

    def _respond(self, gate: Gate, answer: Answer) -> Handled:
        headers = [_wsa("Action", RESPONSE_ACTIONS[gate.operation])]
        message_id = gate.soap.header_child(WSA_NS, "MessageID")
        if message_id is not None and message_id.text:
            headers.append(_wsa("RelatesTo", message_id.text))
        if gate.soap.binaries or answer.binaries:
            content_type, wire = mtom.render(envelope_element(answer.payload, headers), answer.binaries)
        else:
            content_type, wire = SOAP_CONTENT_TYPE, envelope(answer.payload, headers)
        outcome = {"findings": [f.to_json() for f in gate.findings], **answer.outcome}
        return Handled(HttpResponse(200, wire, content_type), gate.operation, gate.correlation, outcome)

    def _fault(self, code: str, detail: str, *, operation: str, outcome: dict[str, Any] | None = None) -> Handled:
        sender, reason = FAULTS.get(code, (False, "Erreur injectée"))
        element = etree.Element(q(DMP_NS, "erreur"), nsmap={"dmp": DMP_NS}, code=code)
        element.text = detail
        status, body = fault(sender=sender, subcode=("dmp", DMP_NS, code), reason=reason, detail=element)
        response = HttpResponse(status, body, SOAP_CONTENT_TYPE)
        return Handled(response, operation, {}, {"fault": code, "detail": detail, **(outcome or {})})


def _reader(claims: VihfClaims) -> Reader:
    profession = claims.roles[0][0] if claims.roles else ""
    return Reader(claims.subject_id, profession, claims.purpose_of_use, claims.secteur_activite.split("^", 1)[0])


def _vihf_correlation(operation: str, claims: VihfClaims) -> dict[str, str]:
    return {
        "operation": operation,
        "ps_national_id": claims.subject_id,
        "purpose_of_use": claims.purpose_of_use,
        "authentication_mode": claims.authentication_mode,
        "lps": f"{claims.lps_nom} {claims.lps_version}",
    }


def _registry_error(finding: Finding) -> tuple[str, str, str, str]:
    code, _, check = finding.rule.partition(":")
    context = f"[{check}] {finding.message}" if check else finding.message
    return code, context, finding.location, finding.severity


def _one_submission_set(object_list: etree._Element) -> etree._Element:
    ids = ebrim.submission_set_ids(object_list)
    packages = [p for p in object_list.findall(q(RIM, "RegistryPackage")) if p.get("id") in ids]
    if len(packages) != 1:
        raise SoapProblem("malformed", f"a submission holds exactly one submission set, found {len(packages)}")
    return packages[0]


def _entry_uuid(identifier: str) -> str:
    """Symbolic ids of a submission become UUIDs, as the registry assigns them."""
    return identifier if identifier.startswith("urn:uuid:") else f"urn:uuid:{uuid.uuid4()}"


def _renamed(element: etree._Element, ids: dict[str, str]) -> etree._Element:
    """A stored copy with every symbolic reference replaced by the entryUUID assigned to it."""
    stored = copy.deepcopy(element)
    for node in stored.iter():
        for attribute, value in node.items():
            if value in ids and attribute in _REFERENCES:
                node.set(attribute, ids[value])
    return stored


def _status_change(document: StoredDocument, new_status: str) -> Callable[[], str]:
    def apply() -> str:
        previous, document.status = document.status, new_status
        return f"{document.unique_id}: {previous.rsplit(':', 1)[-1]} -> {new_status.rsplit(':', 1)[-1]}"

    return apply


def _set_authorisation(patient: DmpPatient | None, idnps: str, action: str) -> tuple[str, str]:
    if patient is None:
        return "ERREUR", "no DMP for this patient"
    if patient.status != "ACTIF":
        return "ERREUR", "the DMP is closed"
    if action == "SUPPRESSION":
        patient.authorisations.pop(idnps, None)
        return "OK", "authorisation removed"
    if patient.authorisation(idnps) == "INTERDIT" or patient.opposition:
        return "REFUSE", "the patient forbade this professional"
    patient.authorisations[idnps] = "VALIDE"
    return "OK", "authorisation added"


def _query_failure(code: str, message: str) -> Answer:
    response = etree.Element(q(ebrim.QUERY, "AdhocQueryResponse"), nsmap=ebrim.NSMAP, status=ebrim.FAILURE)
    errors = ebrim.registry_response([(code, message, "", "error")]).find(q(ebrim.RS, "RegistryErrorList"))
    response.append(errors)
    answer = Answer(response)
    answer.outcome.update(errors=[code])
    return answer


def _wsa(local: str, text: str) -> etree._Element:
    element = etree.Element(q(WSA_NS, local), nsmap={"wsa": WSA_NS})
    element.text = text
    return element


def _td02_response(
    request: etree._Element, patient: DmpPatient | None, ins: str, oid: str, idnps: str
) -> etree._Element:
    """PRPA_IN201308UV02 as the harness models the DMP's TD0.2 answer (see the module docstring)."""
    hl7 = f"{{{HL7_NS}}}"
    root = etree.Element(f"{hl7}PRPA_IN201308UV02", nsmap={None: HL7_NS, "xsi": XSI_NS}, ITSVersion="XML_1.0")
    etree.SubElement(root, f"{hl7}id", root=str(uuid.uuid4()))
    etree.SubElement(root, f"{hl7}interactionId", root="2.16.840.1.113883.1.6", extension="PRPA_IN201308UV02")
    etree.SubElement(root, f"{hl7}processingCode", code="P")
    etree.SubElement(root, f"{hl7}processingModeCode", code="T")
    etree.SubElement(root, f"{hl7}acceptAckCode", code="NE")
    acknowledgement = etree.SubElement(root, f"{hl7}acknowledgement")
    etree.SubElement(acknowledgement, f"{hl7}typeCode", code="AA")
    request_id = request.find(f"{hl7}id")
    if request_id is not None:
        target = etree.SubElement(acknowledgement, f"{hl7}targetMessage")
        target.append(copy.deepcopy(request_id))
    control = etree.SubElement(root, f"{hl7}controlActProcess", classCode="CACT", moodCode="EVN")
    etree.SubElement(control, f"{hl7}code", code="PRPA_TE201308UV02", codeSystem="2.16.840.1.113883.1.6")
    if patient is not None:
        subject = etree.SubElement(control, f"{hl7}subject", typeCode="SUBJ")
        event = etree.SubElement(subject, f"{hl7}registrationEvent", classCode="REG", moodCode="EVN")
        etree.SubElement(event, f"{hl7}statusCode", code="active" if patient.status == "ACTIF" else "completed")
        patient_element = etree.SubElement(etree.SubElement(event, f"{hl7}subject1"), f"{hl7}patient", classCode="PAT")
        etree.SubElement(patient_element, f"{hl7}id", root=patient.oid, extension=patient.ins)
        etree.SubElement(patient_element, f"{hl7}statusCode", code="active")
        person = etree.SubElement(patient_element, f"{hl7}patientPerson", classCode="PSN", determinerCode="INSTANCE")
        name = etree.SubElement(person, f"{hl7}name")
        etree.SubElement(name, f"{hl7}family", qualifier="BR").text = patient.nom_naissance
        for given in patient.prenoms.split():
            etree.SubElement(name, f"{hl7}given").text = given
        etree.SubElement(person, f"{hl7}administrativeGenderCode", code=patient.sexe)
        etree.SubElement(person, f"{hl7}birthTime", value=patient.date_naissance.replace("-", ""))
        for code, value in (
            ("DMP_STATUT", patient.status),
            ("AUTORISATION", patient.authorisation(idnps)),
            ("OPPOSITION", "true" if patient.opposition else "false"),
            ("CONNEXION_SECRETE", "true" if patient.minor_secret else "false"),
        ):
            observation = etree.SubElement(
                etree.SubElement(event, f"{hl7}subjectOf", typeCode="SUBJ"),
                f"{hl7}observation",
                classCode="OBS",
                moodCode="EVN",
            )
            etree.SubElement(observation, f"{hl7}code", code=code, codeSystem=DMP_NS)
            observed = etree.SubElement(observation, f"{hl7}value", code=value, codeSystem=DMP_NS)
            observed.set(f"{{{XSI_NS}}}type", "CS")
    query_ack = etree.SubElement(control, f"{hl7}queryAck")
    query = request.find(f".//{hl7}queryByParameter")
    query_id = query.find(f"{hl7}queryId") if query is not None else None
    if query_id is not None:
        query_ack.append(copy.deepcopy(query_id))
    etree.SubElement(query_ack, f"{hl7}queryResponseCode", code="OK" if patient is not None else "NF")
    if query is not None:
        control.append(copy.deepcopy(query))
    return root
