"""Validation of an ITI-41 Provide and Register Document Set-b request as the DMP checks it.

Sources: IHE ITI TF-3 §4.2 (metadata model, cardinalities, HL7 v2 datatypes) and §5.5 (DSG);
ANS CI-SIS "Volet Partage de Documents de Santé" (French rules: INS patientId, IDNPS authors,
CDA <-> metadata mapping, value sets J02/J04/J07/J08/J57/J60/J61). Where the DMP's behaviour is
not public the choice is modelled and said so next to the check.

Each finding's ``rule`` is the XDS error code a registry would answer with, so the DMP mock can
build its RegistryErrorList directly; the message starts with a stable check id (``[XDS-HASH]``)
that :func:`check_of` extracts. Codes used:

* XDSMissingDocument / XDSMissingDocumentMetadata: an ExtrinsicObject without its Document, or
  the reverse (ITI TF-3 Table 4.2.4.1-2);
* XDSPatientIdDoesNotMatch: a DocumentEntry's patientId differs from the SubmissionSet's;
* XDSRepositoryMetadataError: hash, size or mimeType contradicting the document bytes (an ITI-41
  repository computes hash and size itself and refuses values that differ);
* XDSRegistryDuplicateUniqueIdInMessage: the same uniqueId twice in the submission;
* XDSDocumentUniqueIdError: uniqueId is not the CDA's id (modelled: the DMP's code is not public);
* XDSRegistryMetadataError: everything else, including the submission-set signature (modelled).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from segur.ins import OID_INS_NIA, OID_INS_NIA_TEST, OID_INS_NIR, OID_INS_NIR_TEST
from segur.validation import Finding, MalformedXml, UnsafeXml, parse_untrusted
from segur.xds import ebrim
from segur.xds.cda import CdaHeader, Coded, read_header
from segur.xds.datatypes import (
    Cx,
    cda_ts_to_utc,
    components,
    dtm_problem,
    ins_problem,
    is_oid,
    parse_cx,
    xcn_problem,
    xon_problem,
)
from segur.xds.ebrim import NS, RIM, XDSB
from segur.xds.signature import verify_submission_signature
from segur.xds.valuesets import Concept, ValueSets, value_sets

METADATA = "XDSRegistryMetadataError"
REPOSITORY = "XDSRepositoryMetadataError"
_CHECK = re.compile(r"^\[([A-Z0-9-]+)\]")
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})*$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_GENDERS = frozenset({"F", "M", "U", "A", "N", "O"})
_ALL_INS_OIDS = frozenset({OID_INS_NIR, OID_INS_NIA, OID_INS_NIR_TEST, OID_INS_NIA_TEST})
_SLOT_VALUES = etree.XPath("rim:ValueList/rim:Value", namespaces=NS)  # compiled once: ~20 slots per submission


@dataclass(frozen=True)
class InsOids:
    """The INS OIDs a DMP accepts in patientId: test OIDs by default, as in this harness.

    Explicit rather than "any INS OID" because a production INS reaching a test DMP (or the
    reverse) is a real homologation failure, reported as its own check.
    """

    nir: str = OID_INS_NIR_TEST
    nia: str = OID_INS_NIA_TEST

    @classmethod
    def production(cls) -> InsOids:
        return cls(OID_INS_NIR, OID_INS_NIA)

    def __contains__(self, oid: object) -> bool:
        return oid in (self.nir, self.nia)


def check_of(finding: Finding) -> str:
    """The check id a finding's message starts with (``XDS-HASH``), or "" for foreign findings."""
    match = _CHECK.match(finding.message)
    return match.group(1) if match else ""


def validate_submission(
    request: etree._Element,
    documents: Mapping[str, bytes],
    *,
    oids: InsOids = InsOids(),
    trusted_ca_pem: bytes | None = None,
    trees: Mapping[str, etree._Element] | None = None,
) -> list[Finding]:
    """Findings for a parsed ProvideAndRegisterDocumentSetRequest and its documents (``Document/@id`` -> bytes).

    ``trusted_ca_pem`` is the CA(s) the submission-set signature must chain to; without it the
    signature is only checked for integrity against the certificate it carries. ``trees`` holds
    documents the caller already parsed with ``parse_untrusted`` (by id), so they are not parsed twice.
    """
    return _Validation(request, documents, oids, trusted_ca_pem, value_sets(), trees or {}).run()


@dataclass
class _Object:
    """An ExtrinsicObject or RegistryPackage with its slots, classifications and identifiers indexed."""

    element: etree._Element
    id: str
    kind: str
    location: str
    slots: dict[str, list[str]] = field(default_factory=dict)
    classifications: dict[str, list[etree._Element]] = field(default_factory=dict)
    identifiers: dict[str, list[etree._Element]] = field(default_factory=dict)

    def slot_location(self, name: str) -> str:
        return f"{self.location}/rim:Slot[@name='{name}']"

    def classification_location(self, scheme: str) -> str:
        return f"{self.location}/rim:Classification[@classificationScheme='{scheme}']"

    def identifier_location(self, scheme: str) -> str:
        return f"{self.location}/rim:ExternalIdentifier[@identificationScheme='{scheme}']"


@dataclass
class _Entry:
    """What the cross-object checks need to remember about one DocumentEntry."""

    obj: _Object
    unique_id: str | None = None
    is_signature: bool = False
    data: bytes | None = None


class _Validation:
    def __init__(
        self,
        request: etree._Element,
        documents: Mapping[str, bytes],
        oids: InsOids,
        trusted_ca_pem: bytes | None,
        sets: ValueSets,
        trees: Mapping[str, etree._Element],
    ) -> None:
        self.request = request
        self.documents = documents
        self.trees = trees
        self.oids = oids
        self.trusted_ca_pem = trusted_ca_pem
        self.sets = sets
        self.findings: list[Finding] = []

    def error(self, code: str, check: str, message: str, location: str) -> None:
        self.findings.append(Finding(code, "error", f"[{check}] {message}", location))

    def warning(self, check: str, message: str, location: str) -> None:
        self.findings.append(Finding(METADATA, "warning", f"[{check}] {message}", location))

    def run(self) -> list[Finding]:
        registry = self.request.find("lcm:SubmitObjectsRequest/rim:RegistryObjectList", NS)
        if self.request.tag != f"{XDSB}ProvideAndRegisterDocumentSetRequest" or registry is None:
            self.error(
                METADATA,
                "XDS-STRUCTURE",
                "expected xdsb:ProvideAndRegisterDocumentSetRequest/lcm:SubmitObjectsRequest/rim:RegistryObjectList",
                "/",
            )
            return self.findings
        self._check_ids(registry)
        submission_set = self._submission_set(registry)
        entries = [
            _Entry(self._index(element, "DocumentEntry", ebrim.DE_CLASSIFICATIONS, ebrim.DE_IDENTIFIERS))
            for element in registry.iterchildren(f"{RIM}ExtrinsicObject")
        ]
        if not entries:
            self.error(METADATA, "XDS-STRUCTURE", "the submission holds no DocumentEntry (rim:ExtrinsicObject)", "/")
        patient = self._check_submission_set(submission_set) if submission_set else None
        self._attach_documents(entries)
        for entry in entries:
            self._check_entry(entry, patient)
        self._check_unique_ids(entries, submission_set)
        self._check_associations(registry, submission_set, entries)
        self._check_signature(entries, submission_set)
        return self.findings

    # -- structure -------------------------------------------------------------------------------

    def _check_ids(self, registry: etree._Element) -> None:
        seen: set[str] = set()
        for element in registry.iterchildren():
            identifier = element.get("id")
            if identifier is None:
                continue
            if identifier in seen:
                self.error(
                    METADATA, "XDS-ID", f"id '{identifier}' is used by two registry objects", f"//*[@id='{identifier}']"
                )
            seen.add(identifier)

    def _submission_set(self, registry: etree._Element) -> _Object | None:
        marked = {
            c.get("classifiedObject")
            for c in registry.iter(f"{RIM}Classification")
            if c.get("classificationNode") == ebrim.SUBMISSION_SET_NODE
        }
        packages = list(registry.iterchildren(f"{RIM}RegistryPackage"))
        sets = [package for package in packages if package.get("id") in marked]
        for package in packages:
            if package.get("id") not in marked:
                self.error(
                    METADATA,
                    "XDS-FOLDER",
                    f"RegistryPackage '{package.get('id')}' is not the submission set; folders are not accepted"
                    " by the DMP (modelled)",
                    f"//rim:RegistryPackage[@id='{package.get('id')}']",
                )
        if len(sets) != 1:
            self.error(
                METADATA,
                "XDS-STRUCTURE",
                f"exactly one RegistryPackage classified as SubmissionSet ({ebrim.SUBMISSION_SET_NODE}) is required,"
                f" found {len(sets)}",
                "//rim:RegistryPackage",
            )
            return None
        return self._index(sets[0], "SubmissionSet", ebrim.SS_CLASSIFICATIONS, ebrim.SS_IDENTIFIERS)

    def _index(
        self, element: etree._Element, kind: str, schemes: Mapping[str, str], identifiers: Mapping[str, str]
    ) -> _Object:
        tag = etree.QName(element).localname
        obj = _Object(element, element.get("id", ""), kind, f"//rim:{tag}[@id='{element.get('id', '')}']")
        obj.slots = self._slots(element, obj.location)
        for classification in element.iterchildren(f"{RIM}Classification"):
            if classification.get("classificationNode") == ebrim.SUBMISSION_SET_NODE:
                continue
            scheme = classification.get("classificationScheme", "")
            if scheme not in schemes:
                self.error(
                    METADATA,
                    "XDS-SCHEME",
                    f"{kind} '{obj.id}': classificationScheme '{scheme}' is not an XDS {kind} scheme"
                    f" (ITI TF-3 4.2.5); a registry ignores it",
                    obj.classification_location(scheme),
                )
            obj.classifications.setdefault(scheme, []).append(classification)
        for identifier in element.iterchildren(f"{RIM}ExternalIdentifier"):
            scheme = identifier.get("identificationScheme", "")
            if scheme not in identifiers:
                self.error(
                    METADATA,
                    "XDS-SCHEME",
                    f"{kind} '{obj.id}': identificationScheme '{scheme}' is not an XDS {kind} identifier",
                    obj.identifier_location(scheme),
                )
            elif identifier.get("registryObject") != obj.id:
                self.error(
                    METADATA,
                    "XDS-SCHEME",
                    f"{kind} '{obj.id}': {identifiers[scheme]} names another registryObject"
                    f" '{identifier.get('registryObject')}'",
                    obj.identifier_location(scheme),
                )
            obj.identifiers.setdefault(scheme, []).append(identifier)
        return obj

    def _slots(self, element: etree._Element, location: str) -> dict[str, list[str]]:
        slots: dict[str, list[str]] = {}
        for slot in element.iterchildren(f"{RIM}Slot"):
            name = slot.get("name", "")
            if name in slots:
                self.error(METADATA, "XDS-SLOT", f"slot '{name}' appears twice", f"{location}/rim:Slot[@name='{name}']")
            slots[name] = [value.text or "" for value in _SLOT_VALUES(slot)]
        return slots

    # -- generic accessors -------------------------------------------------------------------------

    def _single(self, obj: _Object, name: str, *, required: bool) -> str | None:
        values = obj.slots.get(name)
        if values is None:
            if required:
                self.error(
                    METADATA, "XDS-CARDINALITY", f"{obj.kind} '{obj.id}': slot '{name}' is missing", obj.location
                )
            return None
        if len(values) != 1:
            self.error(
                METADATA,
                "XDS-CARDINALITY",
                f"{obj.kind} '{obj.id}': slot '{name}' must hold exactly one value, holds {len(values)}",
                obj.slot_location(name),
            )
        return values[0] if values else None

    def _identifier(self, obj: _Object, scheme: str, label: str) -> str | None:
        elements = obj.identifiers.get(scheme, [])
        if len(elements) != 1:
            self.error(
                METADATA,
                "XDS-CARDINALITY",
                f"{obj.kind} '{obj.id}': {label} must appear exactly once, found {len(elements)}"
                f" (identificationScheme {scheme})",
                obj.identifier_location(scheme),
            )
        return elements[0].get("value", "") if elements else None

    def _codes(
        self, obj: _Object, scheme: str, label: str, check: str, value_set: str | None, *, repeatable: bool = False
    ) -> list[Concept]:
        elements = obj.classifications.get(scheme, [])
        location = obj.classification_location(scheme)
        if not elements or (len(elements) > 1 and not repeatable):
            expected = "at least once" if repeatable else "exactly once"
            self.error(
                METADATA,
                "XDS-CARDINALITY",
                f"{obj.kind} '{obj.id}': {label} must appear {expected}, found {len(elements)}"
                f" (classificationScheme {scheme})",
                location,
            )
        concepts = []
        for element in elements:
            code = element.get("nodeRepresentation", "")
            systems = self._slots(element, location).get("codingScheme", [])
            name = element.find("rim:Name/rim:LocalizedString", NS)
            display = name.get("value", "") if name is not None else ""
            if element.get("classifiedObject") != obj.id:
                self.error(METADATA, check, f"{label} is classifying '{element.get('classifiedObject')}'", location)
            if not code or len(systems) != 1:
                self.error(
                    METADATA, check, f"{label} needs a nodeRepresentation and exactly one codingScheme", location
                )
                continue
            concept = Concept(code, systems[0], display)
            if value_set is None or self._in_value_set(concept, value_set, label, check, location):
                concepts.append(concept)
        return concepts

    def _in_value_set(self, concept: Concept, value_set: str, label: str, check: str, location: str) -> bool:
        if not self.sets.contains(value_set, concept.code, concept.code_system):
            self.error(
                METADATA,
                check,
                f"{label} '{concept.code}' (codingScheme {concept.code_system}) is not in {value_set}"
                f" ({self.sets.value_set(value_set).name})",
                location,
            )
            return False
        expected = self.sets.display_name(value_set, concept.code, concept.code_system)
        if concept.display_name and concept.display_name != expected:
            self.warning(
                check,
                f"{label} '{concept.code}' is named '{concept.display_name}', {value_set} says '{expected}'",
                location,
            )
        return True

    def _time(self, obj: _Object, name: str, *, required: bool) -> str | None:
        value = self._single(obj, name, required=required)
        if value is not None and (problem := dtm_problem(value)):
            self.error(METADATA, "XDS-TIME", f"{obj.kind} '{obj.id}': {name} {problem}", obj.slot_location(name))
            return None
        return value

    # -- patient ---------------------------------------------------------------------------------

    def _patient_id(self, value: str, label: str, location: str) -> Cx | None:
        cx = parse_cx(value)
        if cx.authority is None:
            self.error(METADATA, "XDS-PATIENTID", f"{label} '{value}' is not a CX 'INS^^^&OID&ISO'", location)
            return None
        if cx.authority not in self.oids:
            if cx.authority in _ALL_INS_OIDS:
                environment = "production" if cx.authority in (OID_INS_NIR, OID_INS_NIA) else "test"
                self.error(
                    METADATA,
                    "XDS-INS-ENVIRONMENT",
                    f"{label} uses the {environment} INS OID {cx.authority}; this DMP expects"
                    f" {self.oids.nir} (NIR) or {self.oids.nia} (NIA)",
                    location,
                )
            else:
                self.error(
                    METADATA,
                    "XDS-PATIENTID",
                    f"{label} assigning authority {cx.authority} is not an INS OID"
                    f" ({self.oids.nir} or {self.oids.nia})",
                    location,
                )
            return None
        if cx.extra_components or cx.type_code not in ("", "NH"):
            self.error(
                METADATA, "XDS-PATIENTID", f"{label} '{value}': only CX.1, CX.4 (and CX.5 'NH') may be valued", location
            )
        if problem := ins_problem(cx.id):
            self.error(METADATA, "XDS-PATIENTID", f"{label} {problem}", location)
            return None
        return cx

    def _check_source_patient(self, obj: _Object, patient: Cx | None) -> None:
        value = self._single(obj, "sourcePatientId", required=True)
        location = obj.slot_location("sourcePatientId")
        if value is not None:
            cx = parse_cx(value)
            if not cx.id or cx.authority is None:
                self.error(
                    METADATA, "XDS-SOURCEPATIENTID", f"sourcePatientId '{value}' is not a CX 'id^^^&OID&ISO'", location
                )
            elif patient and cx.authority in _ALL_INS_OIDS and (cx.id, cx.authority) != (patient.id, patient.authority):
                self.error(
                    METADATA,
                    "XDS-SOURCEPATIENTID",
                    f"sourcePatientId '{value}' is an INS other than patientId",
                    location,
                )
        location = obj.slot_location("sourcePatientInfo")
        fields: dict[str, list[str]] = {}
        for line in obj.slots.get("sourcePatientInfo", []):
            name, _, content = line.partition("|")
            if not re.fullmatch(r"PID-[0-9]{1,2}", name) or not content:
                self.error(
                    METADATA,
                    "XDS-SOURCEPATIENTINFO",
                    f"sourcePatientInfo value '{line}' is not 'PID-n|value'",
                    location,
                )
                continue
            fields.setdefault(name, []).append(content)
        if not fields:
            return
        for pid3 in fields.get("PID-3", []):
            cx = parse_cx(pid3)
            if patient and cx.authority in _ALL_INS_OIDS and (cx.id, cx.authority) != (patient.id, patient.authority):
                self.error(
                    METADATA, "XDS-SOURCEPATIENTINFO", f"PID-3 '{pid3}' is an INS other than patientId", location
                )
        names = fields.get("PID-5", [])
        if not names or any(not components(name)[0] for name in names):
            self.error(
                METADATA, "XDS-SOURCEPATIENTINFO", "PID-5 must give the patient's family name (family^given)", location
            )
        births = fields.get("PID-7", [])
        if len(births) != 1 or dtm_problem(births[0]) or len(births[0]) < 8:
            self.error(
                METADATA, "XDS-SOURCEPATIENTINFO", f"PID-7 must be one birth date YYYYMMDD, got {births}", location
            )
        genders = fields.get("PID-8", [])
        if len(genders) != 1 or genders[0] not in _GENDERS:
            self.error(
                METADATA, "XDS-SOURCEPATIENTINFO", f"PID-8 must be one HL7 gender (F, M, U...), got {genders}", location
            )

    # -- authors ---------------------------------------------------------------------------------

    def _check_authors(self, obj: _Object, scheme: str) -> None:
        location = obj.classification_location(scheme)
        authors = obj.classifications.get(scheme, [])
        if not authors:
            self.error(METADATA, "XDS-CARDINALITY", f"{obj.kind} '{obj.id}': author is missing", location)
        specialty_systems = self.sets.code_systems("author_specialty")
        for author in authors:
            slots = self._slots(author, location)
            persons = slots.get("authorPerson", [])
            if len(persons) != 1:
                self.error(
                    METADATA,
                    "XDS-AUTHORPERSON",
                    f"{obj.kind} '{obj.id}': author needs one authorPerson (IDNPS)",
                    location,
                )
            for person in persons:
                if problem := xcn_problem(person):
                    self.error(METADATA, "XDS-AUTHORPERSON", f"authorPerson: {problem}", location)
            for institution in slots.get("authorInstitution", []):
                if problem := xon_problem(institution):
                    self.error(METADATA, "XDS-AUTHORINSTITUTION", f"authorInstitution: {problem}", location)
            if any(not role.strip() for role in slots.get("authorRole", [])):
                self.error(METADATA, "XDS-AUTHORROLE", "authorRole values must not be empty", location)
            for specialty in slots.get("authorSpecialty", []):
                parts = components(specialty)
                if len(parts) < 3 or not parts[0] or parts[2] not in specialty_systems:
                    self.error(
                        METADATA,
                        "XDS-AUTHORSPECIALTY",
                        f"authorSpecialty '{specialty}' must be 'code^libellé^OID' with an OID of JDV_J01",
                        location,
                    )

    # -- submission set --------------------------------------------------------------------------

    def _check_submission_set(self, obj: _Object) -> Cx | None:
        self._time(obj, "submissionTime", required=True)
        self._check_authors(obj, ebrim.SS_AUTHOR)
        location = obj.classification_location(ebrim.SS_CONTENT_TYPE_CODE)
        systems = self.sets.code_systems("content_type")
        for concept in self._codes(obj, ebrim.SS_CONTENT_TYPE_CODE, "contentTypeCode", "XDS-CONTENTTYPE", None):
            if concept.code_system not in systems:
                self.error(
                    METADATA,
                    "XDS-CONTENTTYPE",
                    f"contentTypeCode codingScheme {concept.code_system} is not one JDV_J59 draws from"
                    f" ({sorted(systems)})",
                    location,
                )
        for scheme, label in ((ebrim.SS_SOURCE_ID, "sourceId"), (ebrim.SS_UNIQUE_ID, "uniqueId")):
            value = self._identifier(obj, scheme, f"XDSSubmissionSet.{label}")
            if value is not None and not is_oid(value):
                check = "XDS-SOURCEID" if label == "sourceId" else "XDS-UNIQUEID"
                self.error(
                    METADATA,
                    check,
                    f"XDSSubmissionSet.{label} '{value}' is not an OID",
                    obj.identifier_location(scheme),
                )
        value = self._identifier(obj, ebrim.SS_PATIENT_ID, "XDSSubmissionSet.patientId")
        if value is None:
            return None
        return self._patient_id(value, "XDSSubmissionSet.patientId", obj.identifier_location(ebrim.SS_PATIENT_ID))

    # -- document entries -------------------------------------------------------------------------

    def _attach_documents(self, entries: list[_Entry]) -> None:
        declared = [document.get("id", "") for document in self.request.iterchildren(f"{XDSB}Document")]
        known = {entry.obj.id for entry in entries}
        for entry in entries:
            if entry.obj.id not in declared or entry.obj.id not in self.documents:
                self.error(
                    "XDSMissingDocument",
                    "XDS-DOCUMENT",
                    f"DocumentEntry '{entry.obj.id}' has no xdsb:Document with the same id",
                    entry.obj.location,
                )
            else:
                entry.data = self.documents[entry.obj.id]
        for identifier in sorted((set(declared) | set(self.documents)) - known):
            self.error(
                "XDSMissingDocumentMetadata",
                "XDS-DOCUMENT",
                f"xdsb:Document '{identifier}' has no DocumentEntry (rim:ExtrinsicObject with the same id)",
                f"/xdsb:ProvideAndRegisterDocumentSetRequest/xdsb:Document[@id='{identifier}']",
            )

    def _check_entry(self, entry: _Entry, patient: Cx | None) -> None:
        obj = entry.obj
        if obj.element.get("objectType") != ebrim.STABLE_DOCUMENT_ENTRY:
            self.error(
                METADATA,
                "XDS-OBJECTTYPE",
                f"DocumentEntry '{obj.id}' objectType must be the stable one {ebrim.STABLE_DOCUMENT_ENTRY}",
                obj.location,
            )
        mime_type = obj.element.get("mimeType", "")
        if not mime_type:
            self.error(METADATA, "XDS-MIMETYPE", f"DocumentEntry '{obj.id}' has no mimeType", obj.location)
        title = obj.element.find("rim:Name/rim:LocalizedString", NS)
        title_text = " ".join((title.get("value", "") if title is not None else "").split())
        if not title_text:
            self.error(METADATA, "XDS-TITLE", f"DocumentEntry '{obj.id}' has no title (rim:Name)", obj.location)
        creation = self._time(obj, "creationTime", required=True)
        start = self._time(obj, "serviceStartTime", required=True)
        stop = self._time(obj, "serviceStopTime", required=False)
        if start and stop and stop.ljust(14, "0") < start.ljust(14, "0"):
            self.error(METADATA, "XDS-TIME", f"serviceStopTime {stop} is before serviceStartTime {start}", obj.location)
        language = self._single(obj, "languageCode", required=True)
        if language is not None and not _LANGUAGE.match(language):
            self.error(
                METADATA,
                "XDS-LANGUAGE",
                f"languageCode '{language}' is not a language tag (fr-FR)",
                obj.slot_location("languageCode"),
            )
            language = None
        patient_value = self._identifier(obj, ebrim.DE_PATIENT_ID, "XDSDocumentEntry.patientId")
        location = obj.identifier_location(ebrim.DE_PATIENT_ID)
        entry_patient = (
            self._patient_id(patient_value, "XDSDocumentEntry.patientId", location) if patient_value else None
        )
        if entry_patient and patient and (entry_patient.id, entry_patient.authority) != (patient.id, patient.authority):
            self.error(
                "XDSPatientIdDoesNotMatch",
                "XDS-PATIENTID-MATCH",
                f"DocumentEntry '{obj.id}' patientId '{patient_value}' differs from the submission set's",
                location,
            )
        self._check_source_patient(obj, entry_patient)
        self._check_authors(obj, ebrim.DE_AUTHOR)
        entry.unique_id = self._identifier(obj, ebrim.DE_UNIQUE_ID, "XDSDocumentEntry.uniqueId")
        if entry.unique_id is not None and not _is_unique_id(entry.unique_id):
            self.error(
                METADATA,
                "XDS-UNIQUEID",
                f"uniqueId '{entry.unique_id}' is not an OID or OID^extension of at most 128 characters",
                obj.identifier_location(ebrim.DE_UNIQUE_ID),
            )
        codes = self._check_codes(obj)
        entry.is_signature = codes.signature
        if not entry.is_signature:
            legal = self._single(obj, "legalAuthenticator", required=True)
            if legal is not None and (problem := xcn_problem(legal)):
                self.error(
                    METADATA,
                    "XDS-LEGALAUTHENTICATOR",
                    f"legalAuthenticator: {problem}",
                    obj.slot_location("legalAuthenticator"),
                )
        if entry.data is None:
            return
        self._check_bytes(obj, entry.data)
        if entry.is_signature:
            if mime_type != "text/xml":
                self.error(
                    METADATA,
                    "XDS-SIGNATURE-METADATA",
                    f"signature mimeType must be text/xml, not '{mime_type}'",
                    obj.location,
                )
            return
        header = self._cda_header(obj, entry.data, mime_type)
        if header is not None:
            stop_given = "serviceStopTime" in obj.slots
            observed = _Observed(
                creation, start, stop, stop_given, language, title_text, entry.unique_id, entry_patient, codes
            )
            self._check_cda(obj, header, observed)

    def _check_codes(self, obj: _Object) -> _Codes:
        type_codes = self._codes(obj, ebrim.DE_TYPE_CODE, "typeCode", "XDS-TYPECODE", "J07")
        class_codes = self._codes(obj, ebrim.DE_CLASS_CODE, "classCode", "XDS-CLASSCODE", "J57")
        format_codes = self._codes(obj, ebrim.DE_FORMAT_CODE, "formatCode", "XDS-FORMATCODE", "J60")
        facility = self._codes(obj, ebrim.DE_FACILITY_TYPE_CODE, "healthcareFacilityTypeCode", "XDS-FACILITY", "J61")
        practice = self._codes(obj, ebrim.DE_PRACTICE_SETTING_CODE, "practiceSettingCode", "XDS-PRACTICE", "J04")
        confidentiality = self._codes(
            obj, ebrim.DE_CONFIDENTIALITY_CODE, "confidentialityCode", "XDS-CONFIDENTIALITY", "J08", repeatable=True
        )
        location = obj.classification_location(ebrim.DE_CONFIDENTIALITY_CODE)
        levels = [concept for concept in confidentiality if concept.code_system == ebrim.CONFIDENTIALITY_HL7]
        if len(levels) != 1:
            self.error(
                METADATA,
                "XDS-CONFIDENTIALITY",
                f"DocumentEntry '{obj.id}' needs exactly one HL7 confidentialityCode (N, R or V), has {len(levels)}",
                location,
            )
        if len({c.code for c in confidentiality}) != len(confidentiality):
            self.error(
                METADATA, "XDS-CONFIDENTIALITY", f"DocumentEntry '{obj.id}' repeats a confidentialityCode", location
            )
        type_code = type_codes[0] if len(type_codes) == 1 else None
        class_code = class_codes[0] if len(class_codes) == 1 else None
        if type_code and class_code:
            expected = self.sets.class_for_type(type_code.code)
            if expected and (class_code.code, class_code.code_system) != (expected.code, expected.code_system):
                self.error(
                    METADATA,
                    "XDS-CLASSCODE",
                    f"classCode '{class_code.code}' is inconsistent with typeCode '{type_code.code}':"
                    f" ASS_X04 gives '{expected.code}' ({expected.display_name or expected.code_system})",
                    obj.classification_location(ebrim.DE_CLASS_CODE),
                )
        format_code = format_codes[0] if len(format_codes) == 1 else None
        signature = (
            format_code is not None and (format_code.code, format_code.code_system) in ebrim.SIGNATURE_FORMATS
        ) or (class_code is not None and (class_code.code, class_code.code_system) == ebrim.SIGNATURE_CLASS)
        if signature:
            self._check_signature_codes(obj, type_code, class_code, format_code)
        return _Codes(
            signature,
            type_code,
            levels[0] if len(levels) == 1 else None,
            facility[0] if len(facility) == 1 else None,
            practice[0] if len(practice) == 1 else None,
        )

    def _check_signature_codes(
        self, obj: _Object, type_code: Concept | None, class_code: Concept | None, format_code: Concept | None
    ) -> None:
        expected = (
            ("typeCode", type_code, {ebrim.SIGNATURE_TYPE}),
            ("classCode", class_code, {ebrim.SIGNATURE_CLASS}),
            ("formatCode", format_code, ebrim.SIGNATURE_FORMATS),
        )
        for label, concept, allowed in expected:
            if concept is None or (concept.code, concept.code_system) not in allowed:
                self.error(
                    METADATA,
                    "XDS-SIGNATURE-METADATA",
                    f"signature DocumentEntry '{obj.id}' {label} must be one of {sorted(allowed)}",
                    obj.location,
                )

    def _check_bytes(self, obj: _Object, data: bytes) -> None:
        declared_hash = self._single(obj, "hash", required=False)
        if declared_hash is not None:
            actual = hashlib.sha1(data).hexdigest()
            if not _SHA1.match(declared_hash):
                self.error(
                    REPOSITORY,
                    "XDS-HASH",
                    f"hash '{declared_hash}' is not 40 hexadecimal digits (SHA-1)",
                    obj.slot_location("hash"),
                )
            elif declared_hash.lower() != actual:
                self.error(
                    REPOSITORY,
                    "XDS-HASH",
                    f"hash {declared_hash} does not match the document (SHA-1 {actual})",
                    obj.slot_location("hash"),
                )
        declared_size = self._single(obj, "size", required=False)
        if declared_size is not None and declared_size != str(len(data)):
            self.error(
                REPOSITORY,
                "XDS-SIZE",
                f"size {declared_size} does not match the document ({len(data)} bytes)",
                obj.slot_location("size"),
            )

    def _cda_header(self, obj: _Object, data: bytes, mime_type: str) -> CdaHeader | None:
        looks_xml = data.lstrip()[:1] == b"<"
        if not looks_xml:
            if mime_type == "text/xml":
                self.error(
                    REPOSITORY,
                    "XDS-MIMETYPE",
                    f"DocumentEntry '{obj.id}' says text/xml but the document is not XML",
                    obj.location,
                )
            return None
        try:
            header = read_header(self.trees[obj.id] if obj.id in self.trees else parse_untrusted(data))
        except (UnsafeXml, MalformedXml) as error:
            self.error(METADATA, "XDS-CDA", f"document '{obj.id}' cannot be read: {error}", obj.location)
            return None
        if header is not None and mime_type != "text/xml":
            self.error(
                REPOSITORY, "XDS-MIMETYPE", f"a CDA document's mimeType is text/xml, not '{mime_type}'", obj.location
            )
        return header

    def _check_cda(self, obj: _Object, header: CdaHeader, observed: _Observed) -> None:
        def differ(check: str, label: str, metadata: object, cda: object, location: str, code: str = METADATA) -> None:
            self.error(code, check, f"{label} is '{metadata}' but the CDA says '{cda}'", location)

        codes = observed.codes
        pairs: list[tuple[str, str, Concept | None, Coded | None, str]] = [
            ("XDS-CDA-TYPECODE", "typeCode", codes.type_code, header.type, ebrim.DE_TYPE_CODE),
            (
                "XDS-CDA-CONFIDENTIALITY",
                "confidentialityCode",
                codes.confidentiality,
                header.confidentiality,
                ebrim.DE_CONFIDENTIALITY_CODE,
            ),
            (
                "XDS-CDA-FACILITY",
                "healthcareFacilityTypeCode",
                codes.facility,
                header.facility,
                ebrim.DE_FACILITY_TYPE_CODE,
            ),
            (
                "XDS-CDA-PRACTICE",
                "practiceSettingCode",
                codes.practice,
                header.practice,
                ebrim.DE_PRACTICE_SETTING_CODE,
            ),
        ]
        for check, label, concept, coded, scheme in pairs:
            if concept is None:
                continue
            actual = (concept.code, concept.code_system)
            if coded is None or actual != (coded.code, coded.code_system):
                expected = (coded.code, coded.code_system) if coded else "nothing"
                differ(check, label, actual, expected, obj.classification_location(scheme))
        times = (
            ("XDS-CDA-CREATIONTIME", "creationTime", observed.creation, header.effective_time),
            ("XDS-CDA-SERVICETIME", "serviceStartTime", observed.start, header.service_start),
            ("XDS-CDA-SERVICETIME", "serviceStopTime", observed.stop, header.service_stop),
        )
        for check, name, value, cda_time in times:
            # A missing or malformed value has had its own finding; only a missing stop time needs this one.
            absent_stop = name == "serviceStopTime" and not observed.stop_given
            if value is None and not (absent_stop and cda_time):
                continue
            expected_time = cda_ts_to_utc(cda_time) if cda_time else None
            if value != expected_time:
                differ(check, name, value, f"{expected_time} (UTC of {cda_time or 'nothing'})", obj.slot_location(name))
        if observed.language is not None and observed.language != header.language:
            differ(
                "XDS-CDA-LANGUAGE",
                "languageCode",
                observed.language,
                header.language,
                obj.slot_location("languageCode"),
            )
        if observed.title != header.title:
            differ("XDS-CDA-TITLE", "title", observed.title, header.title, f"{obj.location}/rim:Name")
        if observed.unique_id is not None and observed.unique_id != header.unique_id:
            differ(
                "XDS-CDA-UNIQUEID",
                "uniqueId",
                observed.unique_id,
                header.unique_id,
                obj.identifier_location(ebrim.DE_UNIQUE_ID),
                "XDSDocumentUniqueIdError",
            )
        if observed.patient is not None:
            cx = observed.patient
            ins_ids = [(root, extension) for root, extension in header.patient_ids if root in _ALL_INS_OIDS]
            if (cx.authority, cx.id) not in ins_ids:
                differ(
                    "XDS-CDA-PATIENT",
                    "patientId",
                    (cx.authority, cx.id),
                    ins_ids or "no INS in recordTarget/patientRole/id",
                    obj.identifier_location(ebrim.DE_PATIENT_ID),
                )

    # -- cross-object checks ----------------------------------------------------------------------

    def _check_unique_ids(self, entries: list[_Entry], submission_set: _Object | None) -> None:
        owners: dict[str, str] = {}
        if submission_set is not None:
            elements = submission_set.identifiers.get(ebrim.SS_UNIQUE_ID, [])
            if elements:
                owners[elements[0].get("value", "")] = submission_set.id
        for entry in entries:
            if entry.unique_id is None:
                continue
            if entry.unique_id in owners:
                self.error(
                    "XDSRegistryDuplicateUniqueIdInMessage",
                    "XDS-UNIQUEID",
                    f"uniqueId '{entry.unique_id}' is used by '{owners[entry.unique_id]}' and '{entry.obj.id}'",
                    entry.obj.identifier_location(ebrim.DE_UNIQUE_ID),
                )
            owners[entry.unique_id] = entry.obj.id

    def _check_associations(
        self, registry: etree._Element, submission_set: _Object | None, entries: list[_Entry]
    ) -> None:
        entry_ids = {entry.obj.id for entry in entries}
        members: dict[str, int] = dict.fromkeys(entry_ids, 0)
        local_ids = {element.get("id") for element in registry.iterchildren()}
        for association in registry.iterchildren(f"{RIM}Association"):
            kind = association.get("associationType", "")
            source, target = association.get("sourceObject", ""), association.get("targetObject", "")
            location = f"//rim:Association[@id='{association.get('id', '')}']"
            if kind == ebrim.HAS_MEMBER:
                if submission_set is None or source != submission_set.id:
                    self.error(
                        METADATA, "XDS-ASSOCIATION", f"HasMember from '{source}', not from the submission set", location
                    )
                    continue
                if target in members:
                    members[target] += 1
                    status = self._slots(association, location).get("SubmissionSetStatus", [])
                    if status != ["Original"]:
                        self.error(
                            METADATA,
                            "XDS-ASSOCIATION",
                            f"HasMember to '{target}' needs SubmissionSetStatus 'Original', has {status}",
                            location,
                        )
            elif kind == ebrim.RPLC:
                if source not in entry_ids:
                    self.error(
                        METADATA,
                        "XDS-RPLC",
                        f"RPLC source '{source}' is not a DocumentEntry of this submission",
                        location,
                    )
                if target in local_ids or not _UUID_URN.match(target):
                    self.error(
                        METADATA,
                        "XDS-RPLC",
                        f"RPLC target '{target}' must be the entryUUID (urn:uuid:...) of a document already in the DMP",
                        location,
                    )
            elif kind not in ebrim.DOCUMENT_RELATIONSHIPS:
                self.error(METADATA, "XDS-ASSOCIATION", f"associationType '{kind}' is not an XDS association", location)
        for entry_id, count in members.items():
            if count != 1:
                self.error(
                    METADATA,
                    "XDS-ASSOCIATION",
                    f"DocumentEntry '{entry_id}' must be the target of exactly one HasMember from the submission set,"
                    f" is of {count}",
                    f"//rim:ExtrinsicObject[@id='{entry_id}']",
                )

    def _check_signature(self, entries: list[_Entry], submission_set: _Object | None) -> None:
        signatures = [entry for entry in entries if entry.is_signature]
        if not signatures:
            self.error(
                METADATA,
                "XDS-SIGNATURE-MISSING",
                "the submission carries no submission-set signature document (XAdES, DSG)",
                "//rim:RegistryObjectList",
            )
            return
        if len(signatures) > 1:
            for extra in signatures[1:]:
                self.error(
                    METADATA,
                    "XDS-SIGNATURE-METADATA",
                    "the submission carries more than one signature document",
                    extra.obj.location,
                )
        signature = signatures[0]
        unique_ids = submission_set.identifiers.get(ebrim.SS_UNIQUE_ID, []) if submission_set else []
        if signature.data is None or not unique_ids:
            return
        signed = {entry.unique_id: entry.data for entry in entries if not entry.is_signature and entry.unique_id}
        self.findings.extend(
            verify_submission_signature(
                signature.data,
                signed_documents=signed,
                submission_set_unique_id=unique_ids[0].get("value", ""),
                trusted_ca_pem=self.trusted_ca_pem,
                location=signature.obj.location,
            )
        )


@dataclass(frozen=True)
class _Codes:
    signature: bool
    type_code: Concept | None
    confidentiality: Concept | None
    facility: Concept | None
    practice: Concept | None


@dataclass(frozen=True)
class _Observed:
    """The DocumentEntry values the CDA header must agree with."""

    creation: str | None
    start: str | None
    stop: str | None
    stop_given: bool
    language: str | None
    title: str
    unique_id: str | None
    patient: Cx | None
    codes: _Codes


def _is_unique_id(value: str) -> bool:
    root, _, extension = value.partition("^")
    return len(value) <= 128 and is_oid(root) and ("^" not in value or bool(extension))
