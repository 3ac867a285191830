"""The reference SUT's DMP feature: what a compliant DPI / LGC does with the patient's DMP.

Rules it follows (each switched off by one named defect in defects.py): TD0.2 before feeding and
an alert when the DMP's identity differs from the local one (DMP/CONF.01); feeding never asks
for an authorisation (TD0.3, DMP/CONF.05); a patient's opposition stops consultation (CONF.06)
and feeding (CONF.09); every produced document leaves automatically as N1 (DMP/ALI/PROG.01,
DOC.01); the VIHF names the individual professional in AIR mode, or carries their PSC token once
they logged in with Pro Santé Connect (DMP/PSC.01); a document the DMP did not take is kept
and can be sent again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lxml import etree

from segur.reference_sut.cda import CdaAuthor, CdaId, CdaOrganisation, CdaPatient, CdaRequest, produce_cda, replacement
from segur.reference_sut.dmp_client import DELETED, DmpClient, DmpError, DmpSettings, DocumentEntry
from segur.reference_sut.errors import ActionError
from segur.reference_sut.vihf import Professional, VihfRequest, build_vihf, security_header, sign_assertion
from segur.reference_sut.xds_metadata import (
    Author,
    DocumentToSubmit,
    Institution,
    build_status_change,
    build_submission,
    build_update,
)

PARIS = dt.timezone(dt.timedelta(hours=1))
CLASS_CODE_SCHEME = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
FORMATS = {
    "N1": "urn:ihe:iti:xds-sd:pdf:2008",
    "LDL-SES": "urn:asip:ci-sis:ldl-ses:2017",
    "VSM": "urn:asip:ci-sis:vsm:2012",
}
DMP_ACTIONS = (
    "check_dmp", "produce_document", "publish_document", "consult_dmp", "mask_document",
    "replace_document", "delete_document", "resend_dmp_documents",
)  # fmt: skip


def document_request(
    practice: Practice, level: str, patient: CdaPatient, document_id: CdaId, params: dict[str, Any]
) -> CdaRequest:
    """The document a clinician of ``practice`` validates now for ``patient`` (DMP and MSSanté alike)."""
    now = dt.datetime.now(PARIS).replace(microsecond=0)
    return CdaRequest(
        kind=practice.kind,
        level=level,
        patient=patient,
        author=practice.author,
        organisation=practice.organisation,
        effective_time=now,
        service_start=now - dt.timedelta(days=2),
        service_stop=now - dt.timedelta(hours=1),
        document_id=document_id,
        set_id=CdaId(f"{document_id.root}.0"),
        text=tuple(params.get("texte") or ("Document de synthèse produit par le logiciel de référence.",)),
    )


def cda_patient(patient: PatientView, practice: Practice, ins: str, ins_oid: str) -> CdaPatient:
    """The CDA recordTarget from the local identity; ``ins``/``ins_oid`` as the exchange may carry them."""
    traits = patient.traits
    return CdaPatient(
        ins=ins,
        ins_oid=ins_oid,
        birth_family_name=traits["nom_naissance"],
        given_names=tuple(traits["prenoms"].split()),
        birth_date=dt.date.fromisoformat(traits["date_naissance"]),
        gender=traits["sexe"],
        birthplace_cog=traits.get("lieu_naissance"),
        local_id=patient.patient_id,
        local_id_oid=practice.oid_root + ".1",
    )


@dataclass(frozen=True)
class Practice:
    """Who the software is: the organisation, its local user (AIR mode) and what it writes."""

    organisation: CdaOrganisation
    professional: Professional
    author: CdaAuthor
    secteur: str
    kind: str
    oid_root: str


PRACTICES = {
    "dpi": Practice(
        CdaOrganisation(id="1990000001", name="CENTRE HOSPITALIER DE TEST SEGUR", facility_type_code="SA01",
                        practice_setting_code="ETABLISSEMENT"),
        Professional("899910000027", "HOSPITALIER MEDECIN-TEST", "10", "SM04"),
        CdaAuthor(rpps="99910000027", family_name="MEDECIN-TEST", given_name="HOSPITALIER", specialty_code="SM04"),
        "SA01",
        "LDL-SES",
        "1.2.250.1.999.1.1",
    ),
    "lgc": Practice(
        CdaOrganisation(id="399900000100019", name="CABINET MEDICAL DE TEST SEGUR", facility_type_code="SA07",
                        practice_setting_code="AMBULATOIRE"),
        Professional("899910000019", "GENERALISTE MEDECIN-TEST", "10", "SM54"),
        CdaAuthor(rpps="99910000019", family_name="MEDECIN-TEST", given_name="GENERALISTE", specialty_code="SM54"),
        "SA07",
        "VSM",
        "1.2.250.1.999.2.1",
    ),
}  # fmt: skip


@dataclass
class DmpDocument:
    """A document the software produced, and where it stands with the DMP."""

    local_id: str
    patient_id: str
    request: CdaRequest
    level: str
    confidentiality: tuple[str, ...] = ()
    status: str = "a_envoyer"  # a_envoyer | envoye | en_erreur | non_envoye
    error: str | None = None
    entry_uuid: str | None = None
    replaces: str | None = None

    @property
    def unique_id(self) -> str:
        return self.request.document_id.root

    def to_json(self) -> dict[str, Any]:
        return {
            "document_id": self.local_id,
            "unique_id": self.unique_id,
            "niveau": self.level,
            "confidentialite": list(self.confidentiality),
            "statut": self.status,
            "erreur": self.error,
        }


@dataclass(frozen=True)
class PscIdentity:
    """The professional logged in with Pro Santé Connect, as the VIHF's PSC mode needs them."""

    idnps: str
    access_token: str
    family: str
    given: str


@dataclass
class PatientView:
    """What the DMP feature needs of a patient of the identity module."""

    patient_id: str
    traits: dict[str, Any]
    statut: str
    ins: dict[str, str] | None
    trace: Callable[..., None]


@dataclass
class DmpFeature:
    profile: str
    defects: set[str]
    version: str
    psc_identity: Callable[[], PscIdentity | None]
    """The PS logged in with PSC (fresh token), or None: AIR mode with the software's local user."""
    client: DmpClient | None = None
    oid_mapping: dict[str, str] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)
    documents: dict[str, DmpDocument] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _sending: threading.local = field(default_factory=threading.local)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def practice(self) -> Practice:
        return PRACTICES[self.profile]

    def configure(self, dmp: dict[str, Any], pki: dict[str, Any]) -> None:
        certificates = pki["certificates"]
        settings = DmpSettings(
            base_url=dmp["url"],
            ca=pki["ca"],
            cert=certificates["auth-cli"]["cert"],
            key=certificates["auth-cli"]["key"],
            repository_unique_id=dmp.get("repository_unique_id", DmpSettings.repository_unique_id),
            timeout=float(dmp.get("timeout", 10.0)),
        )
        with self._lock:
            if self.client is not None:
                self.client.close()
            self.client = DmpClient(settings, self._vihf)
            self.oid_mapping = dict(dmp.get("ins_oid_mapping", {}))
            self.keys = {
                "key": Path(certificates["sign"]["key"]).read_bytes(),
                "cert": Path(certificates["sign"]["cert"]).read_bytes(),
            }

    def reset(self) -> None:
        with self._lock:
            self.documents.clear()

    # -- actions (the patient comes from the identity module) ---------------------------------

    def check_dmp(self, patient: PatientView) -> dict[str, Any]:
        ins, oid = self._ins(patient)
        try:
            status = self._dmp().check_dmp(ins, oid)
        except DmpError as error:
            patient.trace("test_dmp", None, erreur=str(error))
            return {"dmp": None, "erreur": str(error)}
        result: dict[str, Any] = {
            "dmp": status.found,
            "statut": status.status or None,
            "autorisation": status.authorisation,
            "opposition": status.opposition,
        }
        if status.found:
            differences = _differences(patient.traits, status) if "dmp-no-divergence-alert" not in self.defects else []
            result["divergence"] = bool(differences)
            result["alerte"] = (
                "L'identité du DMP diffère de l'identité locale : " + ", ".join(differences) if differences else None
            )
        patient.trace("test_dmp", None, resultat="trouve" if status.found else "absent")
        return result

    def produce_document(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        """The clinician validates a document: the software sends it to the DMP as N1 on its own."""
        document = self._new_document(patient, "N1", params)
        if "dmp-no-auto-send" in self.defects:
            return document.to_json()
        return self._send(patient, document)

    def publish_document(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        """An explicit send, at the level asked (N1 by default), with extra confidentiality codes."""
        level = str(params.get("niveau", "N1"))
        if level not in ("N1", "N3"):
            raise ActionError("unknown_level", f"niveau must be N1 or N3, not {level!r}")
        return self._send(patient, self._new_document(patient, level, params))

    def resend_dmp_documents(self, patient: PatientView) -> dict[str, Any]:
        pending = [d for d in self.documents.values() if d.patient_id == patient.patient_id and d.status != "envoye"]
        return {"documents": [self._send(patient, document) for document in pending]}

    def consult_dmp(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        """TD0.2, then the list (ITI-18) and each document's content (ITI-43)."""
        ins, oid = self._ins(patient)
        purpose = str(params.get("motif", "normal"))
        client = self._dmp()
        try:
            status = client.check_dmp(ins, oid, purpose)
            if not status.found:
                return {"documents": [], "refus": "pas_de_dmp"}
            if status.opposition and "dmp-consults-despite-opposition" not in self.defects:
                patient.trace("consultation_dmp", None, resultat="opposition")
                return {"documents": [], "refus": "opposition"}
            entries = client.find_documents(ins, oid, purpose=purpose)
            opened = [
                entry.unique_id
                for entry in entries
                if "dmp-lists-without-opening" not in self.defects
                and client.retrieve(ins, oid, entry.unique_id, purpose)
            ]
        except DmpError as error:
            return {"documents": [], "refus": "erreur_dmp", "erreur": str(error)}
        patient.trace("consultation_dmp", None, resultat=f"{len(opened)} document(s)")
        return {"documents": [_entry_json(entry) for entry in entries], "ouverts": opened}

    def mask_document(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(patient, str(params["unique_id"]))
        masked = bool(params.get("masque", True))
        codes = [] if "dmp-ignores-confidentiality" in self.defects else ["MASQUE_PS"]
        update = build_update(
            entry.metadata,
            confidentiality_extra=codes if masked else [],
            confidentiality_removed=[] if masked else ["MASQUE_PS"],
            **self._submitter(),
        )
        ins, oid = self._ins(patient)
        self._dmp().update(update, ins, oid)
        return {"unique_id": entry.unique_id, "masque": masked}

    def replace_document(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        previous = self._document(patient, str(params["unique_id"]))
        number = next(self._ids)
        request = replacement(
            previous.request,
            document_id=CdaId(f"{self.practice.oid_root}.{self._instance}.{number}"),
            effective_time=dt.datetime.now(PARIS).replace(microsecond=0),
            text=("Version corrigée du document.", *previous.request.text),
        )
        if "dmp-replace-without-rplc" in self.defects:
            request = replace(request, related_document=None)
        document = DmpDocument(f"D{number:05d}", patient.patient_id, request, previous.level, previous.confidentiality)
        if "dmp-replace-without-rplc" not in self.defects:  # the current version: masking makes new ones
            document.replaces = self._entry(patient, previous.unique_id).entry_uuid
        with self._lock:
            self.documents[document.local_id] = document
        return self._send(patient, document)

    def delete_document(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(patient, str(params["unique_id"]))
        ins, oid = self._ins(patient)
        if "dmp-no-deletion" not in self.defects:
            self._dmp().update(build_status_change(entry.metadata, DELETED, **self._submitter()), ins, oid)
        return {"unique_id": entry.unique_id, "supprime": True}

    # -- rules --------------------------------------------------------------------------------

    @property
    def _instance(self) -> str:
        """Document ids must stay unique across runs against one DMP: a per-process component."""
        return str(id(self) % 100_000)

    def _new_document(self, patient: PatientView, level: str, params: dict[str, Any]) -> DmpDocument:
        ins, oid = self._ins(patient)  # refuses an identity whose INS may not leave the software
        if "dmp-n3-only" in self.defects:
            level = "N3"
        number = next(self._ids)
        practice = self.practice
        document_id = CdaId(f"{practice.oid_root}.{self._instance}.{number}")
        request = document_request(practice, level, cda_patient(patient, practice, ins, oid), document_id, params)
        confidentiality = tuple(str(code) for code in params.get("confidentialite", ()))
        document = DmpDocument(f"D{number:05d}", patient.patient_id, request, level, confidentiality)
        with self._lock:
            self.documents[document.local_id] = document
        return document

    def _send(self, patient: PatientView, document: DmpDocument) -> dict[str, Any]:
        """Feeding, marked as such for the VIHF (the generic-account defect applies to it only)."""
        self._sending.active = True
        try:
            return self._submit(patient, document)
        finally:
            self._sending.active = False

    def _submit(self, patient: PatientView, document: DmpDocument) -> dict[str, Any]:
        """TD0.2, the opposition and identity checks, then ITI-41; a failure keeps the document to resend."""
        ins, oid = self._ins(patient)
        client = self._dmp()
        try:
            if "dmp-skips-td02" not in self.defects:
                status = client.check_dmp(ins, oid)
                if not status.found or status.status != "ACTIF":
                    return self._not_sent(document, "pas de DMP actif pour ce patient")
                if status.opposition and "dmp-feeds-despite-opposition" not in self.defects:
                    return self._not_sent(document, "le patient s'est opposé à l'alimentation de son DMP")
            if "dmp-td03-before-feeding" in self.defects:
                client.set_authorization(ins, oid, "AJOUT")
            cda = produce_cda(document.request)
            if "dmp-cda-missing-trait" in self.defects:  # the birth name loses its qualifier BR
                cda = cda.replace(b' qualifier="BR"', b"", 1)
            codes = () if "dmp-ignores-confidentiality" in self.defects else document.confidentiality
            submission = build_submission(
                [DocumentToSubmit(cda, FORMATS["N1"] if document.level == "N1" else FORMATS[self.practice.kind])],
                author=self._author(),
                institution=self._institution(),
                source_id=self.practice.oid_root + ".99",
                signing_key_pem=self.keys["key"],
                signing_cert_pem=self.keys["cert"],
                replaces=document.replaces,
                confidentiality_extra=codes,
            )
            _apply_metadata_defects(submission, self.defects)
            client.provide_and_register(submission.request, submission.documents, ins, oid)
        except DmpError as error:
            if "XDSDocumentUniqueIdError" in error.codes and document.status == "en_erreur":
                # Sent again after a timeout: the DMP had filed these very bytes (a different content
                # would be XDSNonIdenticalHash). The document is on the DMP.
                return self._sent(patient, document, None)
            if "dmp-drops-failed-document" in self.defects:
                with self._lock:
                    self.documents.pop(document.local_id, None)
                return {**document.to_json(), "statut": "abandonne", "erreur": str(error)}
            document.status, document.error = "en_erreur", str(error)
            patient.trace("alimentation_dmp", None, resultat="erreur", erreur=str(error))
            return document.to_json()
        return self._sent(patient, document, submission.entry_uuids.get(document.unique_id))

    def _sent(self, patient: PatientView, document: DmpDocument, entry_uuid: str | None) -> dict[str, Any]:
        document.status, document.error, document.entry_uuid = "envoye", None, entry_uuid
        patient.trace("alimentation_dmp", None, resultat="envoye", document=document.unique_id)
        return document.to_json()

    def _not_sent(self, document: DmpDocument, reason: str) -> dict[str, Any]:
        document.status, document.error = "non_envoye", reason
        return document.to_json()

    def _ins(self, patient: PatientView) -> tuple[str, str]:
        """The INS the DMP may receive: only a qualified identity's, with the DMP environment's OID."""
        qualified = patient.statut == "qualifiee" or "dmp-sends-unqualified-ins" in self.defects
        if patient.ins is None or not qualified:
            raise ActionError("identity_not_qualified", "the DMP needs the INS of a qualified identity", status=409)
        ins = patient.ins["matricule"] + patient.ins["cle"]
        return ins, self.oid_mapping.get(patient.ins["oid"], patient.ins["oid"])

    def _document(self, patient: PatientView, unique_id: str) -> DmpDocument:
        for document in self.documents.values():
            if document.patient_id == patient.patient_id and document.unique_id == unique_id:
                return document
        raise ActionError("unknown_document", f"no document {unique_id} for this patient", status=404)

    def _entry(self, patient: PatientView, unique_id: str) -> DocumentEntry:
        ins, oid = self._ins(patient)
        for entry in self._dmp().find_documents(ins, oid):
            if entry.unique_id == unique_id:
                return entry
        raise ActionError("unknown_document", f"the DMP lists no approved document {unique_id}", status=404)

    def _author(self) -> Author:
        session = self.psc_identity()
        if session is not None:
            return Author(session.idnps, session.family, session.given)
        author = self.practice.author
        return Author(self.practice.professional.idnps, author.family_name, author.given_name)

    def _institution(self) -> Institution:
        return Institution(self.practice.organisation.name, self.practice.organisation.id)

    def _submitter(self) -> dict[str, Any]:
        return {
            "author": self._author(),
            "institution": self._institution(),
            "source_id": self.practice.oid_root + ".99",
        }

    def _professional(self) -> Professional:
        """AIR: the software's own user; PSC: the logged-in PS (profession as the software knows its users)."""
        session = self.psc_identity()
        local = self.practice.professional
        if session is None:
            return local
        return Professional(
            session.idnps, f"{session.family} {session.given}".strip(), local.profession, local.specialty
        )

    def _vihf(self, ins: str, oid: str, purpose: str) -> etree._Element:
        session = None if "dmp-psc-mode-without-token" in self.defects else self.psc_identity()
        professional = self._professional()
        if "dmp-vihf-generic-id" in self.defects and session is None and getattr(self._sending, "active", False):
            professional = replace(professional, idnps=GENERIC_ACCOUNT, name="SECRETARIAT MEDICAL")
        request = VihfRequest(
            professional=professional,
            structure_id=self.practice.organisation.id,
            secteur=self.practice.secteur,
            patient_ins=OTHER_PATIENT if "dmp-vihf-other-patient" in self.defects else ins,
            patient_oid=oid,
            purpose=purpose,
            mode="PSC" if session else "AIR",
            psc_token=session.access_token if session else None,
            lps_nom=f"SEGUR REFERENCE {self.profile.upper()}",
            lps_version=self.version,
            lps_homologation=f"SEGUR-REF-{self.profile.upper()}-DMP",
            issue_instant=dt.datetime.now(dt.UTC),
        )
        assertion = build_vihf(request, key_pem=self.keys["key"], cert_pem=self.keys["cert"])
        return security_header(_vihf_defects(assertion, self.defects, self.keys))

    def _dmp(self) -> DmpClient:
        if self.client is None:
            raise ActionError("not_configured", "call configure with services.dmp first", status=409)
        return self.client


# Defects of the VIHF: each leaves the assertion wrong in one way the DMP refuses (or, for
# dmp-vihf-no-lifetime, warns about: only homologation mode fails it).
GENERIC_ACCOUNT = "899900000003"  # a shared "secretariat" account: Luhn-valid, but nobody in particular
OTHER_PATIENT = "279035121518197"  # a valid INS of someone else
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"


def _vihf_defects(assertion: etree._Element, defects: set[str], keys: dict[str, bytes]) -> etree._Element:
    if "dmp-unsigned-vihf" in defects:
        for signature in assertion.findall(f"{{{DSIG}}}Signature"):
            assertion.remove(signature)
    if "dmp-tampered-vihf" in defects:
        for value in assertion.iter(f"{{{SAML}}}AttributeValue"):
            if value.getparent().get("Name") == "LPS_Version":
                value.text = (value.text or "") + "-modifie"
    if "dmp-vihf-wrong-auth-mode" in defects:
        assertion = _resigned(assertion, keys, "Authentification_Mode", "DIRECTE")
    if "dmp-vihf-no-lifetime" in defects:  # valid and signed, but never expires: a warning, not a refusal
        for conditions in assertion.findall(f"{{{SAML}}}Conditions"):
            assertion.remove(conditions)
        assertion = sign_assertion(assertion, key_pem=keys["key"], cert_pem=keys["cert"])
    if "dmp-vihf-wrong-role" in defects:  # a doctor's specialty (second Role value) left out
        roles = [a for a in assertion.iter(f"{{{SAML}}}Attribute") if a.get("Name", "").endswith(":subject:role")]
        for role in roles:
            for extra in role.findall(f"{{{SAML}}}AttributeValue")[1:]:
                role.remove(extra)
        assertion = sign_assertion(assertion, key_pem=keys["key"], cert_pem=keys["cert"])
    return assertion


def _resigned(assertion: etree._Element, keys: dict[str, bytes], name: str, text: str) -> etree._Element:
    for attribute in assertion.iter(f"{{{SAML}}}Attribute"):
        if attribute.get("Name") == name:
            attribute.find(f"{{{SAML}}}AttributeValue").text = text
    return sign_assertion(assertion, key_pem=keys["key"], cert_pem=keys["cert"])


def _apply_metadata_defects(submission: Any, defects: set[str]) -> None:
    """Defects of the XDS submission: a hash that does not match, a classCode the typeCode forbids."""
    rim = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"
    if "dmp-hash-mismatch" in defects:
        for key, data in submission.documents.items():
            if b"ClinicalDocument" in data[:4096]:
                submission.documents[key] = data + b"\n"
                break
    if "dmp-wrong-class-code" in defects:
        for node in submission.request.iter(f"{rim}Classification"):
            if node.get("classificationScheme") == CLASS_CODE_SCHEME and node.get("nodeRepresentation") != "":
                node.set("nodeRepresentation", "52")
                break


def _differences(traits: dict[str, Any], status: Any) -> list[str]:
    """Traits on which the DMP's identity and the local identity disagree (first given name compared)."""
    local_given = traits["prenoms"].split()[:1]
    differences = []
    if status.family and status.family.upper() != traits["nom_naissance"].upper():
        differences.append("nom de naissance")
    if status.given and [name.upper() for name in status.given[:1]] != [name.upper() for name in local_given]:
        differences.append("premier prénom")
    if status.gender and status.gender != traits["sexe"]:
        differences.append("sexe")
    if status.birth_date and status.birth_date != traits["date_naissance"].replace("-", ""):
        differences.append("date de naissance")
    return differences


def _entry_json(entry: DocumentEntry) -> dict[str, Any]:
    return {
        "unique_id": entry.unique_id,
        "type_code": entry.type_code,
        "confidentialite": entry.confidentiality,
        "statut": entry.status.rsplit(":", 1)[-1],
    }
