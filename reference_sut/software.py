"""The reference SUT's identity management: a small, compliant DPI / LGC identity module.

It implements the harness's action vocabulary the way the INS referential asks, and each
named defect (reference_sut/defects.py) switches off exactly one rule.
"""

from __future__ import annotations

import atexit
import datetime as dt
import itertools
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from segur.reference_sut.cda import CdaRequest
from segur.reference_sut.dmp import DmpFeature, PatientView, PscIdentity
from segur.reference_sut.dmp_client import DmpError
from segur.reference_sut.errors import ActionError
from segur.reference_sut.insi_client import InsiAnswer, InsiClient, InsiSettings, InsiUnavailable
from segur.reference_sut.mss import MssFeature
from segur.reference_sut.psc_client import PscClient, PscError, PscSession, PscSettings, UserinfoInvalid, national_id

PROVISOIRE, RECUPEREE, VALIDEE, QUALIFIEE = "provisoire", "recuperee", "validee", "qualifiee"
PSC_CALLBACK = "/segur/psc/callback"
PSC_LOGGED_OUT = "/segur/psc/logged-out"
HIGH_TRUST_DOCUMENTS = {"carte_identite", "passeport", "titre_sejour", "livret_famille", "extrait_naissance"}
OID_NIR = "1.2.250.1.213.1.4.8"


def ins_key(matricule: str, *, corsica_bug: bool = False) -> str:
    digits = matricule.upper()
    if corsica_bug:
        digits = digits.replace("2A", "20").replace("2B", "20")
    digits = digits.replace("2A", "19").replace("2B", "18")
    if len(digits) != 13 or not digits.isdigit():
        return ""
    return f"{97 - int(digits) % 97:02d}"


@dataclass
class Patient:
    patient_id: str
    traits: dict[str, Any]
    statut: str = PROVISOIRE
    ins: dict[str, str] | None = None
    justificatif: str | None = None
    traces: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "statut": self.statut,
            "traits": self.traits,
            "ins": self.ins,
            "justificatif": self.justificatif,
            "traces": self.traces,
        }


def _normalise(text: str) -> str:
    return " ".join(str(text).upper().split())


class IdentitySoftware:
    """Holds patients and the PS session in memory; one instance per SUT process."""

    def __init__(self, profile: str, defects: tuple[str, ...], version: str, data_dir: Path | None = None) -> None:
        self.profile = profile
        self.defects = set(defects)
        self.version = version
        self.patients: dict[str, Patient] = {}
        self.insi: InsiClient | None = None
        self.insi_psc_profile: str | None = None  # configure: how INSi calls carry the PS (None: they do not)
        self.psc: PscClient | None = None
        self.psc_error: dict[str, str] | None = None
        # Where the server can be reached; set by make_server once bound (PSC redirect URIs).
        self.public_url = "http://127.0.0.1"
        # The software's own files: the harness searches them for leaked tokens (PSC/PROV.06).
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="segur-reference-sut-"))
            atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
        self.data_dir = data_dir
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.dmp = DmpFeature(profile, self.defects, version, self._psc_identity)
        self.mss = MssFeature(
            profile, self.defects, self.data_dir, lambda: self.psc, self._patient_views, self._produced_request
        )

    # -- actions -------------------------------------------------------------------------------

    def configure(self, params: dict[str, Any]) -> dict[str, Any]:
        insi = params["services"]["insi"]
        pki = params["pki"]["certificates"]
        certificate = "auth-cli" if "wrong-certificate-cn" in self.defects else "insi-auto"
        settings = InsiSettings(
            url=insi["url"],
            ca=params["pki"]["ca"],
            cert=pki[certificate]["cert"],
            key=pki[certificate]["key"],
            idam=f"SEGUR-REF-{self.profile.upper()}-0001",
            software_name=f"SEGUR REFERENCE {self.profile.upper()}",
            software_version=self.version,
            timeout=float(insi.get("timeout", 10.0)),
        )
        with self._lock:
            if self.insi is not None:
                self.insi.close()
            self.insi = InsiClient(settings, bearer=self._psc_bearer)
            self.insi_psc_profile = insi.get("psc_profile")
        configured = ["insi"]
        urls = self.psc_urls()
        psc = params["services"].get("psc")
        if psc:
            psc_settings = PscSettings(
                discovery_url=psc["discovery_url"],
                client_id=psc["client_id"],
                client_secret=psc["client_secret"],
                ca=params["pki"]["ca"],
                redirect_uri=urls["redirect_uri"],
                post_logout_redirect_uri=urls["post_logout_redirect_uri"],
                data_dir=self.data_dir,
                timeout=float(psc.get("timeout", 10.0)),
            )
            with self._lock:
                if self.psc is not None:
                    self.psc.close()
                self.psc = PscClient(psc_settings, self.defects)
                self.psc_error = None
            configured.append("psc")
        dmp = params["services"].get("dmp")
        if dmp:
            self.dmp.configure(dmp, params["pki"])
            configured.append("dmp")
        mss = params["services"].get("mss")
        if mss:
            self.mss.configure(mss, params["pki"], self.dmp.oid_mapping)
            configured.append("mss")
        return {"configured": configured, "certificate": certificate, "psc": urls}

    def reset(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.patients.clear()
            self.dmp.reset()
            self.mss.reset()
            if self.psc is not None:
                self.psc.forget()
            self.psc_error = None
        return {"reset": True}

    # -- Pro Santé Connect ---------------------------------------------------------------------

    def psc_urls(self) -> dict[str, str]:
        """The URIs PSC sends the PS's browser back to; the harness registers them at the mock."""
        base = self.public_url.rstrip("/")
        return {"redirect_uri": base + PSC_CALLBACK, "post_logout_redirect_uri": base + PSC_LOGGED_OUT}

    def login_ps(self, params: dict[str, Any]) -> dict[str, Any]:
        """``web``: the authorization URL for the PS's browser; ``ciba``: log in on the PS's phone (blocks)."""
        client = self._psc_client()
        mode = params.get("mode", "web")
        if mode == "web":
            try:
                return {"authorization_url": client.authorization_url()}
            except PscError as error:
                raise self._psc_failure(error) from error
        if mode == "ciba":
            hint = params.get("national_id")
            if not hint:
                raise ActionError("missing_national_id", "mode ciba needs the PS's national_id (IDNPS)")
            binding = params.get("binding_message")
            try:
                session = client.ciba_login(str(hint), str(binding) if binding else None)
            except PscError as error:
                raise self._psc_failure(error) from error
            self.psc_error = None
            return {"connecte": True, "national_id": session.national_id}
        raise ActionError("unknown_mode", f"mode must be web or ciba, not {mode!r}")

    def complete_psc_login(self, query: dict[str, str]) -> PscSession:
        """The browser came back to the redirect URI (server route); a failure is kept for current_user."""
        client = self._psc_client()
        try:
            session = client.complete(query)
        except PscError as error:
            raise self._psc_failure(error) from error
        self.psc_error = None
        return session

    def receive_redirect(self, params: dict[str, Any]) -> dict[str, Any]:
        """The browser reached one of our redirect URIs without an HTTP server in between (native app)."""
        url = urlsplit(str(params["url"]))
        if url.path == PSC_CALLBACK:
            session = self.complete_psc_login(dict(parse_qsl(url.query, keep_blank_values=True)))
            return {"connecte": True, "national_id": session.national_id}
        if url.path == PSC_LOGGED_OUT:
            return {"deconnecte": True}
        raise ActionError("unknown_redirect", f"not one of our redirect URIs: {url.path}", status=404)

    def current_user(self, params: dict[str, Any]) -> dict[str, Any]:
        session = self.psc.session if self.psc is not None else None
        return {
            "connecte": session is not None,
            "national_id": session.national_id if session else None,
            "nom": session.nom if session else None,
            "prenom": session.prenom if session else None,
            "auth_mode": session.auth_mode if session else None,
            "mode": session.mode if session else None,
            "derniere_erreur": self.psc_error,
        }

    def use_ps_session(self, params: dict[str, Any]) -> dict[str, Any]:
        """Something that needs the PS's session: refresh when due, then call userinfo with the token."""
        client = self._psc_client()
        try:
            before = client.session.refreshes if client.session else 0
            session = client.ensure_fresh()
            info = client.userinfo(session.access_token)
            if "sub" in info and info["sub"] != session.id_claims["sub"]:
                raise UserinfoInvalid("userinfo sub differs from the session's")
            found = national_id(info, session.id_claims, self.defects)
        except PscError as error:
            if client.session is None:  # the refresh token was refused: the PS's MSSanté session ends too
                self.mss.session_ended()
            raise ActionError(error.code, str(error), error.status) from error
        return {"national_id": found, "rafraichi": session.refreshes > before}

    def logout_ps(self, params: dict[str, Any]) -> dict[str, Any]:
        """Forget the session at once and hand the browser PSC's end-session URL."""
        client = self._psc_client()
        try:
            if "psc-no-logout" in self.defects:
                client.drop_session()
                return {"logout_url": None}
            return {"logout_url": client.logout_url(self.psc_urls()["post_logout_redirect_uri"])}
        except PscError as error:
            raise ActionError(error.code, str(error), error.status) from error
        finally:
            self.mss.session_ended()

    def _psc_failure(self, error: PscError) -> ActionError:
        with self._lock:
            self.psc_error = {"code": error.code, "message": str(error)}
        return ActionError(error.code, str(error), error.status)

    def _psc_bearer(self) -> str | None:
        """INS/PSC.01 (profile psc-bearer): INSi calls carry the logged-in PS's fresh PSC token."""
        if self.insi_psc_profile != "psc-bearer" or "insi-without-psc" in self.defects:
            return None
        if self.psc is None or self.psc.session is None:
            return None
        try:
            return self.psc.ensure_fresh().access_token
        except PscError:
            return None

    def _psc_identity(self) -> PscIdentity | None:
        """The PS logged in with PSC and a fresh access token, for the DMP's VIHF in PSC mode."""
        if self.psc is None or self.psc.session is None:
            return None
        try:
            session = self.psc.ensure_fresh()
        except PscError:
            return None
        return PscIdentity(session.national_id, session.access_token, session.nom or "", session.prenom or "")

    def _psc_client(self) -> PscClient:
        if self.psc is None:
            raise ActionError("not_configured", "call configure with services.psc first", status=409)
        return self.psc

    def register_patient(self, params: dict[str, Any]) -> dict[str, Any]:
        traits = _traits(params.get("traits") or {})
        with self._lock:
            if "no-anteriority-search" not in self.defects:
                for patient in self.patients.values():
                    if _same_person(patient.traits, traits):
                        return {"patient_id": patient.patient_id, "cree": False}
            patient_id = f"P{next(self._ids):06d}"
            self.patients[patient_id] = Patient(patient_id, traits)
            return {"patient_id": patient_id, "cree": True}

    def fetch_ins(self, params: dict[str, Any]) -> dict[str, Any]:
        patient = self._patient(params)
        mode = params.get("mode", "traits")
        answer, tried = self._search(patient, mode, params.get("carte_vitale"))
        if answer is None:
            return {"code_cr": None, "erreur": "insi_indisponible", "statut": patient.statut}
        result: dict[str, Any] = {"code_cr": answer.code_cr, "prenoms_essayes": tried}
        if answer.code_cr == "00" and answer.actif is not None:
            rejected = self._accept(patient, answer)
            if rejected:
                result["ins_rejete"] = rejected
        result["statut"] = patient.statut
        return result

    def verify_ins(self, params: dict[str, Any]) -> dict[str, Any]:
        patient = self._patient(params)
        if patient.ins is None:
            raise ActionError("no_ins", "the patient has no INS to verify")
        traits = patient.traits
        try:
            answer = self._client().search_traits(
                traits["nom_naissance"],
                traits["prenoms"].split(" ")[0],
                traits["sexe"],
                traits["date_naissance"],
                traits.get("lieu_naissance"),
            )
        except InsiUnavailable as error:
            self._trace(patient, "verification_ins", None, erreur=str(error))
            return {"code_cr": None, "erreur": "insi_indisponible"}
        same = answer.actif is not None and answer.actif.matricule == patient.ins["matricule"]
        outcome = "concordant" if same else "discordant"
        if "no-verification-trace" not in self.defects:
            self._trace(patient, "verification_ins", answer.code_cr, resultat=outcome)
        return {"code_cr": answer.code_cr, "resultat": outcome}

    def qualify_identity(self, params: dict[str, Any]) -> dict[str, Any]:
        patient = self._patient(params)
        document = params.get("justificatif", "")
        trusted = document in HIGH_TRUST_DOCUMENTS or "status-without-document" in self.defects
        if not trusted:
            raise ActionError("untrusted_document", f"{document!r} is not a high-trust identity document")
        with self._lock:
            patient.justificatif = document
            patient.statut = QUALIFIEE if patient.statut == RECUPEREE else VALIDEE
        return {"statut": patient.statut}

    def get_patient(self, params: dict[str, Any]) -> dict[str, Any]:
        patient = self._patient(params)
        documents = [d.to_json() for d in self.dmp.documents.values() if d.patient_id == patient.patient_id]
        return {
            **patient.to_json(),
            "documents_dmp": documents,
            "messages_mss": self.mss.messages_of(patient.patient_id),
        }

    # -- DMP: the patient comes from here, the rules from reference_sut/dmp.py ------------------

    def check_dmp(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.check_dmp(view))

    def produce_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.produce_document(view, params))

    def publish_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.publish_document(view, params))

    def resend_dmp_documents(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.resend_dmp_documents(view))

    def consult_dmp(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.consult_dmp(view, params))

    def mask_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.mask_document(view, params))

    def replace_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.replace_document(view, params))

    def delete_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._dmp_action(params, lambda view: self.dmp.delete_document(view, params))

    def _dmp_action(self, params: dict[str, Any], action: Callable[[PatientView], dict[str, Any]]) -> dict[str, Any]:
        view = self._view(self._patient(params))
        try:
            return action(view)
        except DmpError as error:  # the DMP refused or did not answer: say so, with its codes
            raise ActionError("dmp_error", str(error), status=502) from error

    def _view(self, patient: Patient) -> PatientView:
        return PatientView(
            patient.patient_id,
            patient.traits,
            patient.statut,
            patient.ins,
            lambda operation, code, **details: self._trace(patient, operation, code, **details),
        )

    # -- MSSanté: the patient comes from here, the rules from reference_sut/mss.py ----------------

    def send_mss_message(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.mss.send(self._view(self._patient(params)), params)

    def replace_mss_message(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.mss.replace(self._view(self._patient(params)), params)

    def resend_mss_messages(self, params: dict[str, Any]) -> dict[str, Any]:
        patient_id = self._patient(params).patient_id if params.get("patient_id") else None
        return self.mss.resend(patient_id)

    def read_mss_mailbox(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.mss.read()

    def _patient_views(self) -> list[PatientView]:
        with self._lock:
            return [self._view(patient) for patient in self.patients.values()]

    def _produced_request(self, patient_id: str, document_id: str) -> CdaRequest | None:
        """A document produce_document made for this patient: MSSanté sends it as it is."""
        document = self.dmp.documents.get(document_id)
        return document.request if document is not None and document.patient_id == patient_id else None

    def export_identity(self, params: dict[str, Any]) -> dict[str, Any]:
        """The identity as it would leave the software in any exchange (document, message, DMP)."""
        patient = self._patient(params)
        identity: dict[str, Any] = {"traits": patient.traits, "statut": patient.statut}
        may_carry_ins = patient.statut == QUALIFIEE or "sends-ins-unqualified" in self.defects
        if patient.ins is not None and may_carry_ins:
            identity["ins"] = patient.ins
        return {"usage": params.get("usage", "document"), "identite": identity}

    # -- rules ---------------------------------------------------------------------------------

    def _search(self, patient: Patient, mode: str, carte: dict[str, str] | None) -> tuple[InsiAnswer | None, list[str]]:
        traits = patient.traits
        client = self._client()
        if mode == "carte_vitale":
            if not carte:
                raise ActionError("missing_card", "mode carte_vitale needs carte_vitale {matricule, cle}")
            attempts = [None]
        elif mode == "traits":
            first_names = traits["prenoms"].split(" ")
            attempts = first_names if "no-first-name-retry" not in self.defects else first_names[:1]
        else:
            raise ActionError("unknown_mode", f"mode must be traits or carte_vitale, not {mode!r}")
        tried: list[str] = []
        answer: InsiAnswer | None = None
        for first_name in attempts:
            try:
                if first_name is None:
                    answer = client.search_vitale(
                        carte["matricule"], carte.get("cle", ""), traits["nom_naissance"], traits["date_naissance"]
                    )
                else:
                    tried.append(first_name)
                    answer = client.search_traits(
                        traits["nom_naissance"],
                        first_name,
                        traits["sexe"],
                        traits["date_naissance"],
                        traits.get("lieu_naissance"),
                    )
            except InsiUnavailable as error:
                if "insi-error-as-no-identity" in self.defects:
                    self._trace(patient, "recherche_ins", "01", mode=mode)
                    return InsiAnswer("01", "Aucune identite trouvee"), tried
                self._trace(patient, "recherche_ins", None, mode=mode, erreur=str(error))
                return None, tried
            code = answer.code_cr if "no-return-code-trace" not in self.defects else None
            self._trace(patient, "recherche_ins", code, mode=mode, prenom=first_name)
            if answer.code_cr != "01":
                break
        return answer, tried

    def _accept(self, patient: Patient, answer: InsiAnswer) -> str | None:
        record = answer.actif
        assert record is not None
        if "takes-historic-ins" in self.defects and answer.historique:
            record = answer.historique[0]
        if "ins-no-key-check" not in self.defects:
            expected = ins_key(record.matricule, corsica_bug="corsica-key-bug" in self.defects)
            if expected != record.cle:
                self._trace(patient, "controle_cle", answer.code_cr, resultat="cle_invalide")
                return "cle_invalide"
        oid = OID_NIR if "forces-nir-oid" in self.defects else record.oid
        with self._lock:
            patient.ins = {"matricule": record.matricule, "cle": record.cle, "oid": oid}
            if "keeps-typed-traits" not in self.defects:
                patient.traits = {**patient.traits, **answer.traits}
            if "status-without-document" in self.defects:
                patient.statut = QUALIFIEE
            else:
                patient.statut = QUALIFIEE if patient.statut == VALIDEE else RECUPEREE
        return None

    def _trace(self, patient: Patient, operation: str, code_cr: str | None, **details: Any) -> None:
        entry: dict[str, Any] = {"horodatage": dt.datetime.now(dt.UTC).isoformat(), "operation": operation}
        if code_cr is not None:
            entry["code_cr"] = code_cr
        entry.update({k: v for k, v in details.items() if v is not None})
        with self._lock:
            patient.traces.append(entry)

    def _patient(self, params: dict[str, Any]) -> Patient:
        patient = self.patients.get(str(params.get("patient_id")))
        if patient is None:
            raise ActionError("unknown_patient", f"no patient {params.get('patient_id')!r}", status=404)
        return patient

    def _client(self) -> InsiClient:
        if self.insi is None:
            raise ActionError("not_configured", "call configure with the INSi endpoint first", status=409)
        return self.insi


def _traits(raw: dict[str, Any]) -> dict[str, Any]:
    required = ("nom_naissance", "prenoms", "sexe", "date_naissance")
    missing = [name for name in required if not raw.get(name)]
    if missing:
        raise ActionError("missing_traits", f"missing traits: {missing}")
    prenoms = raw["prenoms"] if isinstance(raw["prenoms"], str) else " ".join(raw["prenoms"])
    traits = {name: str(raw[name]) for name in required}
    traits["prenoms"] = _normalise(prenoms)
    traits["nom_naissance"] = _normalise(traits["nom_naissance"])
    if raw.get("lieu_naissance"):
        traits["lieu_naissance"] = str(raw["lieu_naissance"])
    return traits


def _same_person(known: dict[str, Any], typed: dict[str, Any]) -> bool:
    """Anteriority: same birth name, first first name, sex and birth date."""
    return (
        known["nom_naissance"] == typed["nom_naissance"]
        and known["prenoms"].split(" ")[0] == typed["prenoms"].split(" ")[0]
        and known["sexe"] == typed["sexe"]
        and known["date_naissance"] == typed["date_naissance"]
    )
