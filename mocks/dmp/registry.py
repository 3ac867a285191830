"""What the DMP knows and decides: patients and their DMP state, documents, authorisations, access rules.

No wire format here (that is ``protocol.py``) and no judgement of the SUT (that is ``checks.py``):
this is the behaviour a real DMP would have, seeded from YAML and the control API.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from lxml import etree

from segur.ins import OID_INS_NIR_TEST, ins_key

APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"
STATUSES = (APPROVED, DEPRECATED, DELETED)
AUTHORISATION_STATES = ("VALIDE", "EXPIRE", "INTERDIT")
DMP_STATES = ("ACTIF", "FERME")


@dataclass
class DmpPatient:
    """A patient with a DMP. ``ins`` is the 15-character INS (matricule + key)."""

    ins: str
    nom_naissance: str
    prenoms: str
    sexe: str
    date_naissance: str
    status: str = "ACTIF"
    opposition: bool = False
    minor_secret: bool = False
    oid: str = OID_INS_NIR_TEST
    authorisations: dict[str, str] = field(default_factory=dict)

    def authorisation(self, idnps: str) -> str:
        return self.authorisations.get(idnps, "NON_EXISTE")

    def to_json(self) -> dict[str, Any]:
        return {
            "ins": self.ins,
            "oid": self.oid,
            "nom_naissance": self.nom_naissance,
            "prenoms": self.prenoms,
            "sexe": self.sexe,
            "date_naissance": self.date_naissance,
            "status": self.status,
            "opposition": self.opposition,
            "minor_secret": self.minor_secret,
            "authorisations": dict(self.authorisations),
        }


def patient_from_json(data: dict[str, Any]) -> DmpPatient:
    """A patient from patients.yaml or the control API; the INS key is computed when only the matricule is given."""
    allowed = {
        "matricule",
        "ins",
        "oid",
        "nom_naissance",
        "prenoms",
        "sexe",
        "date_naissance",
        "status",
        "opposition",
        "minor_secret",
        "authorisations",
    }
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown DMP patient fields: {sorted(unknown)}")
    if "ins" in data:
        ins = str(data["ins"])
    elif "matricule" in data:
        ins = str(data["matricule"]) + ins_key(str(data["matricule"]))
    else:
        raise ValueError("a DMP patient needs 'ins' (15 characters) or 'matricule' (13)")
    if len(ins) != 15:
        raise ValueError(f"INS {ins!r} must be 15 characters (matricule and key)")
    patient = DmpPatient(
        ins=ins,
        oid=str(data.get("oid", OID_INS_NIR_TEST)),
        nom_naissance=str(data.get("nom_naissance", "")),
        prenoms=str(data.get("prenoms", "")),
        sexe=str(data.get("sexe", "U")),
        date_naissance=str(data.get("date_naissance", "")),
        status=str(data.get("status", "ACTIF")),
        opposition=bool(data.get("opposition", False)),
        minor_secret=bool(data.get("minor_secret", False)),
        authorisations={str(k): str(v) for k, v in (data.get("authorisations") or {}).items()},
    )
    if patient.status not in DMP_STATES:
        raise ValueError(f"DMP status must be one of {DMP_STATES}, got {patient.status!r}")
    bad = {state for state in patient.authorisations.values() if state not in AUTHORISATION_STATES}
    if bad:
        raise ValueError(f"authorisation states must be among {AUTHORISATION_STATES}, got {sorted(bad)}")
    return patient


@dataclass
class StoredDocument:
    """A document entry as the registry keeps it, with the repository's bytes beside it."""

    entry_uuid: str
    logical_id: str
    version: int
    unique_id: str
    patient_ins: str
    content: bytes
    mime_type: str
    metadata: etree._Element
    submission_set: str
    author_idnps: str
    class_code: str
    type_code: str
    creation_time: str
    confidentiality: list[str]
    status: str = APPROVED

    def leaf(self) -> etree._Element:
        """The ExtrinsicObject as a query returns it: the stored copy with the current status."""
        element = copy.deepcopy(self.metadata)
        element.set("status", self.status)
        element.set("id", self.entry_uuid)
        element.set("lid", self.logical_id)
        return element


@dataclass
class StoredSubmissionSet:
    entry_uuid: str
    unique_id: str
    patient_ins: str
    metadata: etree._Element
    members: list[str] = field(default_factory=list)


@dataclass
class StoredAssociation:
    entry_uuid: str
    kind: str
    source: str
    target: str
    element: etree._Element


@dataclass(frozen=True)
class Reader:
    """Who reads, as the verified VIHF says: the access rules need nothing else."""

    idnps: str
    profession: str
    purpose: str
    secteur: str = ""


@dataclass(frozen=True)
class AccessRules:
    purposes: dict[str, dict[str, Any]]
    confidentiality: dict[str, dict[str, Any]]
    professions: dict[str, dict[str, Any]]
    default_profession: dict[str, Any]

    @classmethod
    def default(cls) -> AccessRules:
        data = yaml.safe_load(resources.files(__package__).joinpath("access_rules.yaml").read_text("utf-8"))
        return cls(data["purposes"], data["confidentiality"], data["professions"], data["default_profession"])

    def dmp_access(self, patient: DmpPatient, reader: Reader) -> str | None:
        """Why ``reader`` may not open ``patient``'s DMP at all, or None when they may."""
        rule = self.purposes.get(reader.purpose)
        if rule is None:
            return f"PurposeOfUse {reader.purpose!r} is not one the DMP knows"
        if patient.status != "ACTIF":
            return "the DMP is closed"
        if patient.opposition and rule.get("blocked_by_opposition", True):
            return "the patient opposed access to their DMP"
        secteurs = rule.get("secteurs")
        if secteurs and reader.secteur not in secteurs:
            return f"PurposeOfUse {reader.purpose} is reserved to sectors {secteurs}"
        if rule.get("authorisation_required") and patient.authorisation(reader.idnps) != "VALIDE":
            return f"authorisation of {reader.idnps} is {patient.authorisation(reader.idnps)}"
        return None

    def may_see(self, document: StoredDocument, reader: Reader) -> bool:
        for code in document.confidentiality:
            rule = self.confidentiality.get(code, {})
            if rule.get("hidden_from_professionals") and not (
                rule.get("author_sees") and document.author_idnps == reader.idnps
            ):
                return False
        denied = self.professions.get(reader.profession, self.default_profession).get("denied_class_codes", [])
        return document.class_code not in denied


class DmpRegistry:
    """The registry and repository in one: a DMP mock has one of each, sharing one lock."""

    def __init__(self, patients: list[DmpPatient], rules: AccessRules, repository_unique_id: str) -> None:
        self.patients = {patient.ins: patient for patient in patients}
        self.rules = rules
        self.repository_unique_id = repository_unique_id
        self.documents: dict[str, StoredDocument] = {}
        self.submission_sets: dict[str, StoredSubmissionSet] = {}
        self.associations: list[StoredAssociation] = []
        self.lock = threading.RLock()

    @staticmethod
    def default_patients() -> list[DmpPatient]:
        data = yaml.safe_load(resources.files(__package__).joinpath("patients.yaml").read_text("utf-8"))
        return [patient_from_json(entry) for entry in data["patients"]]

    def patient(self, ins: str) -> DmpPatient | None:
        return self.patients.get(ins)

    def by_unique_id(self, unique_id: str) -> StoredDocument | None:
        return next((doc for doc in self.documents.values() if doc.unique_id == unique_id), None)

    def current_version(self, logical_id: str) -> StoredDocument | None:
        versions = [doc for doc in self.documents.values() if doc.logical_id == logical_id]
        return max(versions, key=lambda doc: doc.version) if versions else None

    def visible(self, documents: list[StoredDocument], reader: Reader) -> list[StoredDocument]:
        return [doc for doc in documents if self.rules.may_see(doc, reader)]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "patients": [patient.to_json() for patient in self.patients.values()],
                "documents": [
                    {
                        "entryUUID": doc.entry_uuid,
                        "uniqueId": doc.unique_id,
                        "patient": doc.patient_ins,
                        "status": doc.status,
                        "version": doc.version,
                        "confidentiality": doc.confidentiality,
                        "classCode": doc.class_code,
                        "typeCode": doc.type_code,
                        "size": len(doc.content),
                        "author": doc.author_idnps,
                    }
                    for doc in self.documents.values()
                ],
                "submission_sets": len(self.submission_sets),
                "associations": [
                    {"type": assoc.kind, "source": assoc.source, "target": assoc.target} for assoc in self.associations
                ],
            }
