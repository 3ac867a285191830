"""The reference SUT's DMP submission: ITI-41 metadata derived from the CDA header, signed as a lot.

Everything the CDA carries is read from it (CI-SIS PDSm "Mapping XDS"): typeCode, creationTime,
patient, title, confidentiality, facility, practice setting, service times, uniqueId, authors
and legal authenticator. The caller gives only what the CDA does not: who submits (author and
institution of the submission set), the source OID, the formatCode of each document, extra
confidentiality codes (MASQUE_PS...), the entryUUID a document replaces, and the signing key.

Written independently of the harness's validator (segur.xds.metadata) so that the self-test
cannot pass on a bug both share: own CDA reading, own HL7 v2 formatting, own signature
building. Only facts and conventions are shared: the scheme UUIDs (segur.xds.ebrim), the ANS
value sets, the INS OIDs configuration and the manifest URI of a uniqueId (document_uri).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod
from signxml.xades import XAdESSigner

from segur.validation import parse_untrusted
from segur.xds import ebrim
from segur.xds.metadata import InsOids
from segur.xds.signature import document_uri
from segur.xds.valuesets import value_sets

_H = {"h": "urn:hl7-org:v3"}
_TEST_OIDS = InsOids()
_RIM = ebrim.NS["rim"]
_DS = ebrim.NS["ds"]
_XADES = ebrim.NS["xades"]
_PS_AUTHORITY = "&1.2.250.1.71.4.2.1&ISO"
_STRUCTURE_AUTHORITY = "&1.2.250.1.71.4.2.2&ISO"
_TS = re.compile(r"^([0-9]{4,14})(?:\.[0-9]+)?([+-][0-9]{4})?$")
_SOURCE_SIGNATURE = "1.2.840.10065.1.12.1.14"
"""ASTM E1762 purpose "Source Signature": the system attests the lot it sends (DSG Table 5.5.2-1)."""


@dataclass(frozen=True)
class Code:
    code: str
    system: str
    display: str


CONSULTATION_EXTERNE = Code("07", "1.2.250.1.213.2.2", "Consultation externe")
"""Default contentTypeCode (TRE_R209-TypeActivite, as the PDSm mapping proposes for PV1-2 'O');
the display name is modelled, JDV_J59 is not public."""


@dataclass(frozen=True)
class DocumentToSubmit:
    """A CDA document and the one thing its header does not say: its formatCode (a J60 code)."""

    cda: bytes
    format_code: str


@dataclass(frozen=True)
class Author:
    """Who sends the lot (submission set author, signer): a professional identified by IDNPS."""

    idnps: str
    family: str
    given: str
    specialty: Code | None = None
    role: str | None = None


@dataclass(frozen=True)
class Institution:
    name: str
    idnst: str


@dataclass
class Submission:
    """An ITI-41 request (documents referenced by ``xdsb:Document/@id``) and the documents by id."""

    request: etree._Element
    documents: dict[str, bytes]
    submission_set_unique_id: str
    entry_uuids: dict[str, str]
    """uniqueId -> entryUUID of each document, what a later replacement (RPLC) points at."""


@dataclass(frozen=True)
class _Entry:
    """One DocumentEntry's metadata, ready to write."""

    entry_uuid: str
    data: bytes
    unique_id: str
    title: str
    language: str
    creation_time: str
    service_start: str
    service_stop: str | None
    patient_id: str
    patient_info: tuple[str, ...]
    type_code: Code
    class_code: Code
    format_code: Code
    facility: Code
    practice: Code
    confidentiality: tuple[Code, ...]
    authors: tuple[dict[str, list[str]], ...]
    legal_authenticator: str | None
    event_codes: tuple[Code, ...] = ()


def build_submission(
    documents: Sequence[DocumentToSubmit],
    *,
    author: Author,
    institution: Institution,
    source_id: str,
    signing_key_pem: bytes,
    signing_cert_pem: bytes,
    oids: InsOids = _TEST_OIDS,
    replaces: str | None = None,
    confidentiality_extra: Sequence[str] = (),
    content_type: Code = CONSULTATION_EXTERNE,
) -> Submission:
    """A signed DMP submission of ``documents`` (CDA) for the patient their recordTarget names.

    ``replaces`` is the entryUUID of the DMP document the (single) CDA replaces (RPLC).
    """
    if not documents:
        raise ValueError("a submission needs at least one document")
    if replaces is not None and len(documents) != 1:
        raise ValueError("a replacement (RPLC) submits exactly one document")
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    entries = [_entry_from_cda(document, oids, confidentiality_extra) for document in documents]
    patients = {entry.patient_id for entry in entries}
    if len(patients) != 1:
        raise ValueError(f"the documents name different patients: {sorted(patients)}")
    submission_set_unique_id = _new_oid()
    signature = _signature_entry(
        entries, submission_set_unique_id, author, institution, now, signing_key_pem, signing_cert_pem
    )
    request = _request(
        [*entries, signature], submission_set_unique_id, author, institution, source_id, content_type, now, replaces
    )
    return Submission(
        request=request,
        documents={entry.entry_uuid: entry.data for entry in (*entries, signature)},
        submission_set_unique_id=submission_set_unique_id,
        entry_uuids={entry.unique_id: entry.entry_uuid for entry in (*entries, signature)},
    )


# -- reading the CDA ------------------------------------------------------------------------------


def _text(element: etree._Element | None, path: str, attribute: str | None = None) -> str:
    if element is None:
        return ""
    found = element.find(path, _H)
    if found is None:
        return ""
    return (found.get(attribute, "") if attribute else " ".join("".join(found.itertext()).split())).strip()


def _code_of(element: etree._Element | None, value_set: str) -> Code:
    if element is None:
        raise ValueError(f"the CDA lacks the coded element the DMP takes its {value_set} metadata from")
    code, system = element.get("code", ""), element.get("codeSystem", "")
    display = value_sets().display_name(value_set, code, system) or element.get("displayName", "")
    return Code(code, system, display)


def _utc(timestamp: str) -> str:
    """A CDA TS with offset as the UTC DTM XDS wants; date-only values stay as they are."""
    match = _TS.match(timestamp)
    if match is None:
        raise ValueError(f"'{timestamp}' is not a CDA time")
    digits, offset = match.groups()
    if len(digits) <= 8 or offset is None:
        return digits
    pattern = {10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}[len(digits)]
    local = dt.datetime.strptime(digits + offset, pattern + "%z")
    return local.astimezone(dt.UTC).strftime(pattern)


def _escape(value: str) -> str:
    """HL7 v2 escaping, so that a name holding ^ or & cannot shift the components."""
    for raw, escaped in (("\\", "\\E\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"), ("|", "\\F\\")):
        value = value.replace(raw, escaped)
    return value


def _xcn(identifier: str, family: str, given: str) -> str:
    return f"{identifier}^{_escape(family)}^{_escape(given)}^^^^^^{_PS_AUTHORITY}^D^^^IDNPS"


def _xon(name: str, idnst: str) -> str:
    return f"{_escape(name)}^^^^^{_STRUCTURE_AUTHORITY}^IDNST^^^{idnst}"


def _person(entity: etree._Element, person_path: str) -> str | None:
    identifier = next(
        (i.get("extension", "") for i in entity.iterfind("h:id", _H) if i.get("root") == ebrim.OID_PS_NATIONAL_ID), ""
    )
    if not identifier:
        return None
    return _xcn(
        identifier, _text(entity, f"{person_path}/h:name/h:family"), _text(entity, f"{person_path}/h:name/h:given")
    )


def _author_slots(assigned: etree._Element, function_code: etree._Element | None) -> dict[str, list[str]]:
    slots: dict[str, list[str]] = {}
    person = _person(assigned, "h:assignedPerson")
    if person:
        slots["authorPerson"] = [person]
    organization = assigned.find("h:representedOrganization", _H)
    if organization is not None:
        idnst = next(
            (
                i.get("extension", "")
                for i in organization.iterfind("h:id", _H)
                if i.get("root") == ebrim.OID_STRUCTURE_ID
            ),
            "",
        )
        name = _text(organization, "h:name")
        if name:
            slots["authorInstitution"] = [_xon(name, idnst) if idnst else _escape(name)]
    if function_code is not None and function_code.get("displayName"):
        slots["authorRole"] = [function_code.get("displayName", "")]
    specialty = assigned.find("h:code", _H)
    if specialty is not None and specialty.get("code"):
        display = _escape(specialty.get("displayName", ""))
        slots["authorSpecialty"] = [f"{_escape(specialty.get('code', ''))}^{display}^{specialty.get('codeSystem', '')}"]
    return slots


def _entry_from_cda(document: DocumentToSubmit, oids: InsOids, extra: Sequence[str]) -> _Entry:
    cda = parse_untrusted(document.cda)
    sets = value_sets()
    cda_id = cda.find("h:id", _H)
    if cda_id is None:
        raise ValueError("the CDA has no id")
    unique_id = cda_id.get("root", "") + (f"^{cda_id.get('extension')}" if cda_id.get("extension") else "")
    role = cda.find("h:recordTarget/h:patientRole", _H)
    ins = (
        next((i for i in role.iterfind("h:id", _H) if i.get("root") in (oids.nir, oids.nia)), None)
        if role is not None
        else None
    )
    if ins is None:
        raise ValueError(f"the CDA's recordTarget has no INS under {oids.nir} or {oids.nia}")
    patient_id = f"{ins.get('extension')}^^^&{ins.get('root')}&ISO"
    patient = role.find("h:patient", _H)
    family = _text(patient, "h:name/h:family[@qualifier='BR']") or _text(patient, "h:name/h:family")
    given = _text(patient, "h:name/h:given[@qualifier='BR']") or _text(patient, "h:name/h:given")
    patient_info = (
        f"PID-3|{patient_id}",
        f"PID-5|{_escape(family)}^{_escape(given)}^^^^^L",
        f"PID-7|{_text(patient, 'h:birthTime', 'value')[:8]}",
        f"PID-8|{_text(patient, 'h:administrativeGenderCode', 'code')}",
    )
    type_code = _code_of(cda.find("h:code", _H), "J07")
    class_code = sets.class_for_type(type_code.code)
    format_code = sets.find("J60", document.format_code)
    if class_code is None or format_code is None:
        raise ValueError(f"no classCode for typeCode {type_code.code} or unknown formatCode {document.format_code}")
    confidentiality = [_code_of(cda.find("h:confidentialityCode", _H), "J08")]
    for code in extra:
        concept = sets.find("J08", code)
        if concept is None:
            raise ValueError(f"{code} is not a J08 confidentialityCode")
        confidentiality.append(Code(concept.code, concept.code_system, concept.display_name))
    event = cda.find("h:documentationOf/h:serviceEvent", _H)
    stop = _text(event, "h:effectiveTime/h:high", "value")
    authors = tuple(
        _author_slots(assigned, author.find("h:functionCode", _H))
        for author in cda.iterfind("h:author", _H)
        if (assigned := author.find("h:assignedAuthor", _H)) is not None
    )
    legal = cda.find("h:legalAuthenticator/h:assignedEntity", _H)
    return _Entry(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        data=document.cda,
        unique_id=unique_id,
        title=_text(cda, "h:title"),
        language=_text(cda, "h:languageCode", "code"),
        creation_time=_utc(_text(cda, "h:effectiveTime", "value")),
        service_start=_utc(_text(event, "h:effectiveTime/h:low", "value")),
        service_stop=_utc(stop) if stop else None,
        patient_id=patient_id,
        patient_info=patient_info,
        type_code=type_code,
        class_code=Code(class_code.code, class_code.code_system, class_code.display_name),
        format_code=Code(format_code.code, format_code.code_system, format_code.display_name),
        facility=_code_of(
            cda.find("h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code", _H), "J02"
        ),
        practice=_code_of(
            cda.find(
                "h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity/h:representedOrganization/"
                "h:standardIndustryClassCode",
                _H,
            ),
            "J04",
        ),
        confidentiality=tuple(confidentiality),
        authors=authors,
        legal_authenticator=_person(legal, "h:assignedPerson") if legal is not None else None,
    )


# -- the submission-set signature -----------------------------------------------------------------


def _new_oid() -> str:
    """A globally unique OID without a registered root: ITU-T X.667 UUID-derived OIDs (2.25.<uuid>)."""
    return f"2.25.{uuid.uuid4().int}"


def _commitment(signed_data_object_properties: etree._Element, **_: object) -> None:
    """CommitmentTypeIndication: DSG requires the purpose of signature in the signed properties."""
    indication = etree.SubElement(signed_data_object_properties, f"{{{_XADES}}}CommitmentTypeIndication")
    type_id = etree.SubElement(indication, f"{{{_XADES}}}CommitmentTypeId")
    etree.SubElement(type_id, f"{{{_XADES}}}Identifier").text = f"urn:oid:{_SOURCE_SIGNATURE}"
    etree.SubElement(indication, f"{{{_XADES}}}AllSignedDataObjects")


def _manifest(entries: Sequence[_Entry], submission_set_unique_id: str) -> etree._Element:
    manifest = etree.Element(f"{{{_DS}}}Manifest", nsmap={"ds": _DS})
    digests = [(document_uri(entry.unique_id), _sha256(entry.data)) for entry in entries]
    # DSG: the submission set is referenced with a "zero" digest; one zero octet keeps it valid base64.
    digests.append((document_uri(submission_set_unique_id), b"\x00"))
    for uri, digest in digests:
        reference = etree.SubElement(manifest, f"{{{_DS}}}Reference", URI=uri)
        etree.SubElement(reference, f"{{{_DS}}}DigestMethod", Algorithm=DigestAlgorithm.SHA256.value)
        etree.SubElement(reference, f"{{{_DS}}}DigestValue").text = b64encode(digest).decode()
    return manifest


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def _sign(manifest: etree._Element, key_pem: bytes, cert_pem: bytes) -> bytes:
    signer = XAdESSigner(
        method=SignatureConstructionMethod.enveloping,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1_WITH_COMMENTS,
    )
    signer.signed_data_object_properties_annotators.append(_commitment)
    signature = signer.sign(manifest, key=key_pem, cert=cert_pem.decode())
    return etree.tostring(signature, xml_declaration=True, encoding="UTF-8")


def _signature_entry(
    entries: Sequence[_Entry],
    submission_set_unique_id: str,
    author: Author,
    institution: Institution,
    now: str,
    key_pem: bytes,
    cert_pem: bytes,
) -> _Entry:
    data = _sign(_manifest(entries, submission_set_unique_id), key_pem, cert_pem)
    first = entries[0]
    return _Entry(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        data=data,
        unique_id=_new_oid(),
        title="Source Signature",
        language="art",
        creation_time=now,
        service_start=now,
        service_stop=now,
        patient_id=first.patient_id,
        patient_info=(),
        type_code=Code("E1762", "ASTM", "Full Document"),
        class_code=Code("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN", "Digital Signature"),
        format_code=Code("http://www.w3.org/2000/09/xmldsig#", "URN", "Default signature style"),
        facility=first.facility,
        practice=first.practice,
        confidentiality=(Code("N", ebrim.CONFIDENTIALITY_HL7, "Normal"),),
        authors=(_submitter_slots(author, institution),),
        legal_authenticator=None,
        event_codes=(Code(_SOURCE_SIGNATURE, "1.2.840.10065.1.12", "Source Signature"),),
    )


def _submitter_slots(author: Author, institution: Institution) -> dict[str, list[str]]:
    slots = {
        "authorPerson": [_xcn(author.idnps, author.family, author.given)],
        "authorInstitution": [_xon(institution.name, institution.idnst)],
    }
    if author.role:
        slots["authorRole"] = [author.role]
    if author.specialty:
        specialty = author.specialty
        slots["authorSpecialty"] = [f"{_escape(specialty.code)}^{_escape(specialty.display)}^{specialty.system}"]
    return slots


# -- writing ebRIM ------------------------------------------------------------------------------------


def _rim(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{_RIM}}}{tag}", attributes)


def _slot(parent: etree._Element, name: str, values: Sequence[str]) -> None:
    value_list = _rim(_rim(parent, "Slot", name=name), "ValueList")
    for value in values:
        _rim(value_list, "Value").text = value


def _name(parent: etree._Element, value: str) -> None:
    _rim(_rim(parent, "Name"), "LocalizedString", value=value)


def _classification(
    parent: etree._Element, scheme: str, code: Code | None = None, slots: dict[str, list[str]] | None = None
) -> None:
    classification = _rim(
        parent,
        "Classification",
        id=f"urn:uuid:{uuid.uuid4()}",
        classificationScheme=scheme,
        classifiedObject=parent.get("id", ""),
        nodeRepresentation=code.code if code else "",
        objectType=ebrim.CLASSIFICATION_TYPE,
    )
    for name, values in (slots or {}).items():
        _slot(classification, name, values)
    if code:
        _slot(classification, "codingScheme", [code.system])
        _name(classification, code.display)


def _external_identifier(parent: etree._Element, scheme: str, value: str, name: str) -> None:
    identifier = _rim(
        parent,
        "ExternalIdentifier",
        id=f"urn:uuid:{uuid.uuid4()}",
        identificationScheme=scheme,
        registryObject=parent.get("id", ""),
        value=value,
        objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier",
    )
    _name(identifier, name)


def _document_entry(registry: etree._Element, entry: _Entry) -> None:
    element = _rim(
        registry,
        "ExtrinsicObject",
        id=entry.entry_uuid,
        mimeType="text/xml",
        objectType=ebrim.STABLE_DOCUMENT_ENTRY,
    )
    slots = {
        "creationTime": [entry.creation_time],
        "hash": [hashlib.sha1(entry.data).hexdigest()],
        "languageCode": [entry.language],
        "serviceStartTime": [entry.service_start],
        "serviceStopTime": [entry.service_stop] if entry.service_stop else [],
        "size": [str(len(entry.data))],
        "sourcePatientId": [entry.patient_id],
        "sourcePatientInfo": list(entry.patient_info),
        "legalAuthenticator": [entry.legal_authenticator] if entry.legal_authenticator else [],
    }
    for name, values in slots.items():
        if values:
            _slot(element, name, values)
    _name(element, entry.title)
    for author_slots in entry.authors:
        _classification(element, ebrim.DE_AUTHOR, slots=author_slots)
    _classification(element, ebrim.DE_CLASS_CODE, entry.class_code)
    for confidentiality in entry.confidentiality:
        _classification(element, ebrim.DE_CONFIDENTIALITY_CODE, confidentiality)
    for event in entry.event_codes:
        _classification(element, ebrim.DE_EVENT_CODE, event)
    _classification(element, ebrim.DE_FORMAT_CODE, entry.format_code)
    _classification(element, ebrim.DE_FACILITY_TYPE_CODE, entry.facility)
    _classification(element, ebrim.DE_PRACTICE_SETTING_CODE, entry.practice)
    _classification(element, ebrim.DE_TYPE_CODE, entry.type_code)
    _external_identifier(element, ebrim.DE_PATIENT_ID, entry.patient_id, "XDSDocumentEntry.patientId")
    _external_identifier(element, ebrim.DE_UNIQUE_ID, entry.unique_id, "XDSDocumentEntry.uniqueId")


def _request(
    entries: Sequence[_Entry],
    submission_set_unique_id: str,
    author: Author,
    institution: Institution,
    source_id: str,
    content_type: Code,
    now: str,
    replaces: str | None,
) -> etree._Element:
    ns = ebrim.NS
    request = etree.Element(
        f"{{{ns['xdsb']}}}ProvideAndRegisterDocumentSetRequest",
        nsmap={"xdsb": ns["xdsb"], "lcm": ns["lcm"], "rim": _RIM},
    )
    registry = etree.SubElement(
        etree.SubElement(request, f"{{{ns['lcm']}}}SubmitObjectsRequest"), f"{{{_RIM}}}RegistryObjectList"
    )
    for entry in entries:
        _document_entry(registry, entry)
    submission_set_id = _submission_set(
        registry, submission_set_unique_id, author, institution, source_id, content_type, now, entries[0].patient_id
    )
    for entry in entries:
        _association(registry, ebrim.HAS_MEMBER, submission_set_id, entry.entry_uuid, SubmissionSetStatus="Original")
    if replaces is not None:
        _association(registry, ebrim.RPLC, entries[0].entry_uuid, replaces)
    for entry in entries:
        etree.SubElement(request, f"{{{ns['xdsb']}}}Document", id=entry.entry_uuid)
    return request


def _submission_set(
    registry: etree._Element,
    unique_id: str,
    author: Author,
    institution: Institution,
    source_id: str,
    content_type: Code,
    now: str,
    patient_id: str,
) -> str:
    """Write the RegistryPackage of a submission set and its classification; returns its id."""
    submission_set_id = f"urn:uuid:{uuid.uuid4()}"
    package = _rim(registry, "RegistryPackage", id=submission_set_id)
    _slot(package, "submissionTime", [now])
    _classification(package, ebrim.SS_AUTHOR, slots=_submitter_slots(author, institution))
    _classification(package, ebrim.SS_CONTENT_TYPE_CODE, content_type)
    _external_identifier(package, ebrim.SS_UNIQUE_ID, unique_id, "XDSSubmissionSet.uniqueId")
    _external_identifier(package, ebrim.SS_SOURCE_ID, source_id, "XDSSubmissionSet.sourceId")
    _external_identifier(package, ebrim.SS_PATIENT_ID, patient_id, "XDSSubmissionSet.patientId")
    _rim(
        registry,
        "Classification",
        id=f"urn:uuid:{uuid.uuid4()}",
        classifiedObject=submission_set_id,
        classificationNode=ebrim.SUBMISSION_SET_NODE,
        objectType=ebrim.CLASSIFICATION_TYPE,
    )
    return submission_set_id


# -- ITI-57 Update Document Set -----------------------------------------------------------------------


def build_update(
    entry: etree._Element,
    *,
    author: Author,
    institution: Institution,
    source_id: str,
    confidentiality_extra: Sequence[str] = (),
    confidentiality_removed: Sequence[str] = (),
    content_type: Code = CONSULTATION_EXTERNE,
) -> etree._Element:
    """ITI-57 metadata update: a new version of ``entry`` (an ExtrinsicObject as ITI-18 returned it).

    How a DPI masks a document to other professionals (``MASQUE_PS``) or unmasks it: the
    confidentiality codes change, everything else is carried over, ``lid`` ties the versions.
    """
    request, registry = _update_request()
    new = etree.fromstring(etree.tostring(entry))
    new.set("id", f"urn:uuid:{uuid.uuid4()}")
    new.set("lid", entry.get("lid") or entry.get("id", ""))
    for attribute in ("status", "home"):
        new.attrib.pop(attribute, None)
    for node in new.iter(f"{{{_RIM}}}Classification", f"{{{_RIM}}}ExternalIdentifier"):
        node.set("id", f"urn:uuid:{uuid.uuid4()}")
        node.set("classifiedObject" if node.tag.endswith("Classification") else "registryObject", new.get("id", ""))
        if node.get("classificationScheme") == ebrim.DE_CONFIDENTIALITY_CODE and (
            node.get("nodeRepresentation") in confidentiality_removed
        ):
            new.remove(node)
    for code in confidentiality_extra:
        concept = value_sets().find("J08", code)
        if concept is None:
            raise ValueError(f"{code} is not a J08 confidentialityCode")
        _classification(
            new, ebrim.DE_CONFIDENTIALITY_CODE, Code(concept.code, concept.code_system, concept.display_name)
        )
    registry.append(new)
    patient_id = _patient_id_of(entry)
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    submission_set_id = _submission_set(
        registry, _new_oid(), author, institution, source_id, content_type, now, patient_id
    )
    version = entry.find(f"{{{_RIM}}}VersionInfo")
    previous = version.get("versionName", "1") if version is not None else "1"
    _association(
        registry,
        ebrim.HAS_MEMBER,
        submission_set_id,
        new.get("id", ""),
        SubmissionSetStatus="Original",
        PreviousVersion=previous,
    )
    return request


def build_status_change(
    entry: etree._Element,
    new_status: str,
    *,
    author: Author,
    institution: Institution,
    source_id: str,
    content_type: Code = CONSULTATION_EXTERNE,
) -> etree._Element:
    """ITI-57 availability change of ``entry``: deprecation, or deletion (the DMP's ``Deleted`` status)."""
    request, registry = _update_request()
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    submission_set_id = _submission_set(
        registry, _new_oid(), author, institution, source_id, content_type, now, _patient_id_of(entry)
    )
    _association(
        registry,
        "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus",
        submission_set_id,
        entry.get("id", ""),
        OriginalStatus=entry.get("status", ""),
        NewStatus=new_status,
    )
    return request


def _association(registry: etree._Element, kind: str, source: str, target: str, **slots: str) -> None:
    """An ebRIM Association, each keyword a single-valued slot (SubmissionSetStatus, NewStatus…)."""
    association = _rim(
        registry,
        "Association",
        id=f"urn:uuid:{uuid.uuid4()}",
        associationType=kind,
        sourceObject=source,
        targetObject=target,
    )
    for name, value in slots.items():
        _slot(association, name, [value])


def _update_request() -> tuple[etree._Element, etree._Element]:
    ns = ebrim.NS
    request = etree.Element(f"{{{ns['lcm']}}}SubmitObjectsRequest", nsmap={"lcm": ns["lcm"], "rim": _RIM})
    return request, etree.SubElement(request, f"{{{_RIM}}}RegistryObjectList")


def _patient_id_of(entry: etree._Element) -> str:
    for identifier in entry.iterfind(f"{{{_RIM}}}ExternalIdentifier"):
        if identifier.get("identificationScheme") == ebrim.DE_PATIENT_ID:
            return identifier.get("value", "")
    raise ValueError("the document entry has no XDSDocumentEntry.patientId")
