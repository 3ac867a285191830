"""ITI-18 Registry Stored Query: the six stored queries the DMP serves, on the registry's state.

Parameters arrive as ebRIM slots whose values use the query syntax of ITI TF-2a 3.18.4.1.2.3.5
(``'text'``, ``('a','b')``, bare numbers); the parser is strict so that a SUT's quoting mistake is
answered as the real registry would (XDSStoredQueryParamNumber), not silently tolerated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from segur.mocks.dmp.registry import DmpRegistry, StoredAssociation, StoredDocument, StoredSubmissionSet

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
QUERY_NAMES = {
    FIND_DOCUMENTS: "FindDocuments",
    FIND_SUBMISSION_SETS: "FindSubmissionSets",
    GET_DOCUMENTS: "GetDocuments",
    GET_SUBMISSION_SET_AND_CONTENTS: "GetSubmissionSetAndContents",
    GET_ASSOCIATIONS: "GetAssociations",
    GET_RELATED_DOCUMENTS: "GetRelatedDocuments",
}
# Parameters each query accepts; the first group lists those at least one of which is required.
PARAMETERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    FIND_DOCUMENTS: (
        ("$XDSDocumentEntryPatientId",),
        (
            "$XDSDocumentEntryStatus",
            "$XDSDocumentEntryClassCode",
            "$XDSDocumentEntryTypeCode",
            "$XDSDocumentEntryConfidentialityCode",
            "$XDSDocumentEntryFormatCode",
            "$XDSDocumentEntryCreationTimeFrom",
            "$XDSDocumentEntryCreationTimeTo",
            "$XDSDocumentEntryPracticeSettingCode",
            "$XDSDocumentEntryHealthcareFacilityTypeCode",
            "$XDSDocumentEntryAuthorPerson",
        ),
    ),
    FIND_SUBMISSION_SETS: (("$XDSSubmissionSetPatientId",), ("$XDSSubmissionSetStatus",)),
    GET_DOCUMENTS: (("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"), ("$homeCommunityId",)),
    GET_SUBMISSION_SET_AND_CONTENTS: (
        ("$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"),
        ("$XDSDocumentEntryFormatCode", "$XDSDocumentEntryConfidentialityCode", "$homeCommunityId"),
    ),
    GET_ASSOCIATIONS: (("$uuid",), ("$homeCommunityId",)),
    GET_RELATED_DOCUMENTS: (
        ("$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"),
        ("$AssociationTypes", "$homeCommunityId"),
    ),
}
_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|(-?\d+))\s*(?:,|$)")


class QueryError(ValueError):
    """A stored query the registry refuses; ``code`` is the XDS error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_value(text: str) -> list[str]:
    """``'a'`` -> [a]; ``('a','b')`` -> [a, b]; ``42`` -> [42]. Anything else is a parameter error."""
    inner = text.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    values: list[str] = []
    position = 0
    while position < len(inner):
        match = _TOKEN.match(inner, position)
        if match is None or match.end() == position:
            raise QueryError("XDSStoredQueryParamNumber", f"malformed query parameter value {text!r}")
        values.append(match.group(1).replace("''", "'") if match.group(1) is not None else match.group(2))
        position = match.end()
    if not values:
        raise QueryError("XDSStoredQueryParamNumber", f"empty query parameter value {text!r}")
    return values


@dataclass
class QueryResult:
    documents: list[StoredDocument]
    submission_sets: list[StoredSubmissionSet]
    associations: list[StoredAssociation]
    patient_ins: str | None


def run_query(
    registry: DmpRegistry, query_id: str, raw: dict[str, list[str]], ins_of: Callable[[str], str]
) -> QueryResult:
    """Run a stored query; ``raw`` maps each slot name to its Value texts, ``ins_of`` reads a CX patient id."""
    if query_id not in PARAMETERS:
        raise QueryError("XDSUnknownStoredQuery", f"unknown stored query {query_id!r}")
    required, optional = PARAMETERS[query_id]
    unknown = set(raw) - set(required) - set(optional)
    if unknown:
        raise QueryError("XDSStoredQueryParamNumber", f"{QUERY_NAMES[query_id]} has no parameter {sorted(unknown)}")
    if not any(name in raw for name in required):
        raise QueryError("XDSStoredQueryParamNumber", f"{QUERY_NAMES[query_id]} needs {' or '.join(required)}")
    params = {name: [value for text in texts for value in parse_value(text)] for name, texts in raw.items()}
    with registry.lock:
        return _QUERIES[query_id](registry, params, ins_of)


def _find_documents(registry: DmpRegistry, params: dict[str, list[str]], ins_of: Callable[[str], str]) -> QueryResult:
    patient = ins_of(_single(params, "$XDSDocumentEntryPatientId"))
    statuses = params.get("$XDSDocumentEntryStatus")
    if not statuses:
        raise QueryError("XDSStoredQueryParamNumber", "FindDocuments needs $XDSDocumentEntryStatus")
    filters: list[tuple[str, Callable[[StoredDocument], list[str]]]] = [
        ("$XDSDocumentEntryClassCode", lambda doc: [doc.class_code]),
        ("$XDSDocumentEntryTypeCode", lambda doc: [doc.type_code]),
        ("$XDSDocumentEntryConfidentialityCode", lambda doc: doc.confidentiality),
        ("$XDSDocumentEntryAuthorPerson", lambda doc: [doc.author_idnps]),
    ]
    documents = []
    for doc in registry.documents.values():
        if doc.patient_ins != patient or doc.status not in statuses:
            continue
        if any(name in params and not set(_codes(params[name])) & set(read(doc)) for name, read in filters):
            continue
        created = doc.creation_time
        if created < params.get("$XDSDocumentEntryCreationTimeFrom", [""])[0]:
            continue
        if "$XDSDocumentEntryCreationTimeTo" in params and created >= params["$XDSDocumentEntryCreationTimeTo"][0]:
            continue
        documents.append(doc)
    return QueryResult(documents, [], [], patient)


def _find_submission_sets(
    registry: DmpRegistry, params: dict[str, list[str]], ins_of: Callable[[str], str]
) -> QueryResult:
    patient = ins_of(_single(params, "$XDSSubmissionSetPatientId"))
    sets = [entry for entry in registry.submission_sets.values() if entry.patient_ins == patient]
    return QueryResult([], sets, [], patient)


def _get_documents(registry: DmpRegistry, params: dict[str, list[str]], ins_of: Callable[[str], str]) -> QueryResult:
    documents = _documents_by_id(registry, params)
    return QueryResult(documents, [], [], _patient_of(documents))


def _get_submission_set_and_contents(
    registry: DmpRegistry, params: dict[str, list[str]], ins_of: Callable[[str], str]
) -> QueryResult:
    wanted_uuid = params.get("$XDSSubmissionSetEntryUUID", [])
    wanted_unique = params.get("$XDSSubmissionSetUniqueId", [])
    sets = [
        entry
        for entry in registry.submission_sets.values()
        if entry.entry_uuid in wanted_uuid or entry.unique_id in wanted_unique
    ]
    members = {member for entry in sets for member in entry.members}
    documents = [doc for doc in registry.documents.values() if doc.entry_uuid in members]
    associations = [assoc for assoc in registry.associations if assoc.source in {entry.entry_uuid for entry in sets}]
    return QueryResult(documents, sets, associations, sets[0].patient_ins if sets else None)


def _get_associations(registry: DmpRegistry, params: dict[str, list[str]], ins_of: Callable[[str], str]) -> QueryResult:
    uuids = set(params["$uuid"])
    associations = [assoc for assoc in registry.associations if assoc.source in uuids or assoc.target in uuids]
    documents = [doc for doc in registry.documents.values() if doc.entry_uuid in uuids]
    return QueryResult([], [], associations, _patient_of(documents))


def _get_related_documents(
    registry: DmpRegistry, params: dict[str, list[str]], ins_of: Callable[[str], str]
) -> QueryResult:
    origin = _documents_by_id(registry, params)
    if not origin:
        return QueryResult([], [], [], None)
    kinds = set(params.get("$AssociationTypes", []))
    uuid = origin[0].entry_uuid
    associations = [
        assoc
        for assoc in registry.associations
        if uuid in (assoc.source, assoc.target) and (not kinds or assoc.kind in kinds)
    ]
    related = {assoc.source for assoc in associations} | {assoc.target for assoc in associations}
    documents = [doc for doc in registry.documents.values() if doc.entry_uuid in related]
    return QueryResult(documents, [], associations, origin[0].patient_ins)


_QUERIES: dict[str, Callable[[DmpRegistry, dict[str, list[str]], Callable[[str], str]], QueryResult]] = {
    FIND_DOCUMENTS: _find_documents,
    FIND_SUBMISSION_SETS: _find_submission_sets,
    GET_DOCUMENTS: _get_documents,
    GET_SUBMISSION_SET_AND_CONTENTS: _get_submission_set_and_contents,
    GET_ASSOCIATIONS: _get_associations,
    GET_RELATED_DOCUMENTS: _get_related_documents,
}


def _single(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name, [])
    if len(values) != 1:
        raise QueryError("XDSStoredQueryParamNumber", f"{name} takes exactly one value")
    return values[0]


def _codes(values: list[str]) -> list[str]:
    """Coded parameters are ``code^^scheme``; the registry matches on the code."""
    return [value.split("^", 1)[0] for value in values]


def _documents_by_id(registry: DmpRegistry, params: dict[str, list[str]]) -> list[StoredDocument]:
    uuids = set(params.get("$XDSDocumentEntryEntryUUID", []))
    uniques = set(params.get("$XDSDocumentEntryUniqueId", []))
    return [doc for doc in registry.documents.values() if doc.entry_uuid in uuids or doc.unique_id in uniques]


def _patient_of(documents: list[StoredDocument]) -> str | None:
    return documents[0].patient_ins if documents else None
