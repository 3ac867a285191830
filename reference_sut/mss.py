"""The reference SUT's MSSanté feature: what a compliant DPI / LGC does with secure health mail.

Rules it follows, each switched off by one named defect (defects.py): STARTTLS before any
authentication (SC.MSS/CONF.07); a valid PSC token at each authentication and one reconnection
when the operator ends a session because the token expired (SC.MSS/CONF.11); the IMAP session
closed when the PS's session ends (SC.MSS/CONF.10); the token never on disk (SC.MSS/CONF.28);
the applicative BAL opened with the organisation certificate auth-cli only (SC.MSS/CONF.27);
X-MSS-NIL, X-MSS-CODECDA, X-MSS-INS, X-MSS-MES and the subject as the Référentiel socle MSSanté
#2 asks (SC.MSS/CONF.14/15/16/21/25), one patient per message with IHE_XDM.ZIP and the PDF
(SC.MSS/CONF.23), a read receipt asked when the user wants one (MSS/UX.33); on reception the
patient is the one METADATA.XML names (SC.MSS/CONF.24) and the subject is shown without its
``XDM/1.0/DDM+`` marker (MSS/va1.01); "annule et remplace" (MSS/va1.13); failed messages kept
and sent again (MSS/PROV.04).

Modelled (not public): the X-MSS-NIL value; the PDF "type" part of its name; how "annule et
remplace" shows in the message (the CDA's relatedDocument RPLC as for the DMP, plus
In-Reply-To/References to the earlier Message-ID and a sentence in the body); for an identity
that is not qualified, the document names the patient by the local identifier only (INS left
out, structured N3 body so no rendering shows an INS) and X-MSS-INS is N.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import json
import posixpath
import re
import threading
import time
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from lxml import etree

from segur.reference_sut.cda import VOLETS, CdaId, CdaPatient, CdaRequest, pdf_lines, produce_cda, replacement
from segur.reference_sut.dmp import (
    FORMATS,
    PARIS,
    PRACTICES,
    PatientView,
    Practice,
    cda_patient,
    document_request,
)
from segur.reference_sut.errors import ActionError
from segur.reference_sut.mss_client import (
    ImapSession,
    Login,
    MssError,
    MssSettings,
    RevocationList,
    TlsPolicy,
    send_message,
)
from segur.reference_sut.pdf import make_pdf
from segur.reference_sut.psc_client import PscClient, PscError
from segur.reference_sut.xdm import build_xdm, document_metadata
from segur.reference_sut.xds_metadata import Author, Institution
from segur.validation import MalformedXml, UnsafeXml, parse_untrusted
from segur.xds import ebrim
from segur.xds.metadata import InsOids

MSS_ACTIONS = ("send_mss_message", "replace_mss_message", "resend_mss_messages", "read_mss_mailbox")
NIL = "SEGURREF0001"
SUBJECT_MARKER = "XDM/1.0/DDM+"
XDM_NAME = "IHE_XDM.ZIP"
PATIENT_DOMAIN = "patient.mssante.fr"
PDF_TYPES = {"LDL-SES": "Lettre_de_liaison", "VSM": "Synthese_medicale"}
ATTEMPTS = 3
RETRY_PAUSE = 0.1  # seconds between two attempts after a 4xx
MAX_ARCHIVE_BYTES = 50 * 1024 * 1024
KEPT = ("en_attente", "en_erreur")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The defect mss-two-patients adds a second patient's archive: a fictitious one (Luhn-valid INS, test OID).
OTHER_PATIENT = CdaPatient(
    ins="279035121518197",
    birth_family_name="AUTRE",
    given_names=("PATIENTE",),
    birth_date=dt.date(1979, 3, 5),
    gender="F",
    local_id="X000001",
    local_id_oid="1.2.250.1.999.9.1",
    ins_oid="1.2.250.1.213.1.4.10",
    birthplace_cog="51215",
)


@dataclass
class MssMessage:
    """A message the software composed, and where it stands with the operator."""

    local_id: str
    patient_id: str
    recipient: str
    request: CdaRequest
    qualified: bool
    read_receipt: bool
    block_reply: bool
    message_id: str = ""
    subject: str = ""
    status: str = "a_envoyer"  # a_envoyer | envoye | en_attente | en_erreur
    error: str | None = None
    replaces: MssMessage | None = None
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "sujet": self.subject,
            "destinataire": self.recipient,
            "statut": self.status,
            "erreur": self.error,
        }


@dataclass
class MssFeature:
    profile: str
    defects: set[str]
    data_dir: Path
    psc_client: Callable[[], PscClient | None]
    patients: Callable[[], list[PatientView]]
    produced: Callable[[str, str], CdaRequest | None]
    """The request of a document produced earlier (patient_id, document_id), from the DMP feature."""
    settings: MssSettings | None = None
    bal_applicative: str = ""
    bal_personnelles: dict[str, str] = field(default_factory=dict)
    certificates: dict[str, tuple[str, str]] = field(default_factory=dict)
    keys: dict[str, bytes] = field(default_factory=dict)
    oid_mapping: dict[str, str] = field(default_factory=dict)
    messages: dict[str, MssMessage] = field(default_factory=dict)
    imap: ImapSession | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def practice(self) -> Practice:
        return PRACTICES[self.profile]

    def configure(self, mss: dict[str, Any], pki: dict[str, Any], oid_mapping: dict[str, str]) -> None:
        certificates = pki["certificates"]
        with self._lock:
            self._close_imap()
            timeout = float(mss.get("timeout", 10.0))
            revocation = (
                None
                if "mss-no-crl-check" in self.defects
                else RevocationList(
                    mss["crl_url"],
                    pki["ca"],
                    self.data_dir / "mss-operateur.crl.pem",
                    timeout=timeout,
                    keep="mss-forgets-crl" not in self.defects,
                )
            )
            tls = TlsPolicy(
                pki["ca"],
                revocation,
                legacy="mss-accepts-legacy-tls" in self.defects,
                verify="mss-no-certificate-check" not in self.defects,
                fail_open="mss-forgets-crl" in self.defects,
            )
            self.settings = MssSettings(mss["smtp_url"], mss["imap_url"], tls, timeout)
            self.bal_applicative = str(mss.get("bal_applicative") or "")
            self.bal_personnelles = {str(k): str(v) for k, v in (mss.get("bal_personnelles") or {}).items()}
            self.certificates = {
                name: (certificates[name]["cert"], certificates[name]["key"]) for name in ("auth-cli", "sign")
            }
            self.keys = {
                "key": Path(certificates["sign"]["key"]).read_bytes(),
                "cert": Path(certificates["sign"]["cert"]).read_bytes(),
            }
            self.oid_mapping = dict(mss.get("ins_oid_mapping") or oid_mapping)

    def reset(self) -> None:
        with self._lock:
            self._close_imap()
            self.messages.clear()

    def session_ended(self) -> None:
        """The PS logged out or their refresh token was refused: end the IMAP session and forget the BAL."""
        if "mss-keeps-session" in self.defects:
            return
        with self._lock:
            if self.imap is not None and self.imap.login.token is not None:
                self._close_imap()

    def messages_of(self, patient_id: str) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.messages.values() if m.patient_id == patient_id]

    # -- actions -----------------------------------------------------------------------------------

    def send(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        recipient = self._recipient(patient, str(params.get("destinataire") or ""))
        qualified = patient.statut == "qualifiee" and patient.ins is not None
        document_id = params.get("document_id")
        if document_id:
            request = self.produced(patient.patient_id, str(document_id))
            if request is None:
                raise ActionError("unknown_document", f"no document {document_id} for this patient", status=404)
        else:
            request = self._new_request(patient, qualified, params)
        message = self._new_message(
            patient, recipient, request, qualified, bool(params.get("accuse_lecture")), params, replaces=None
        )
        return self._deliver(message)

    def replace(self, patient: PatientView, params: dict[str, Any]) -> dict[str, Any]:
        """Annule et remplace: the corrected CDA replaces the earlier one (RPLC, same setId, version + 1)."""
        previous = next(
            (
                m
                for m in self.messages.values()
                if m.patient_id == patient.patient_id and m.message_id == params.get("message_id")
            ),
            None,
        )
        if previous is None:
            raise ActionError("unknown_message", f"no message {params.get('message_id')!r} for this patient", 404)
        number = next(self._ids)
        document_id = CdaId(f"{self._oid_base}.{number}")
        request = replacement(
            previous.request,
            document_id=document_id,
            effective_time=dt.datetime.now(PARIS).replace(microsecond=0),
            text=("Version corrigée du document.", *previous.request.text),
        )
        if "mss-replace-as-new" in self.defects:
            request = replace(request, related_document=None, set_id=CdaId(f"{document_id.root}.0"), version_number=1)
        message = self._new_message(
            patient,
            previous.recipient,
            request,
            previous.qualified,
            previous.read_receipt,
            {"bloquer_reponse": previous.block_reply},
            replaces=None if "mss-replace-as-new" in self.defects else previous,
        )
        return self._deliver(message)

    def resend(self, patient_id: str | None) -> dict[str, Any]:
        kept = [
            m
            for m in list(self.messages.values())
            if m.status in KEPT and (patient_id is None or m.patient_id == patient_id)
        ]
        return {"messages": [self._deliver(message) for message in kept]}

    def read(self) -> dict[str, Any]:
        """New messages of the BAL: each integrated with the patient its METADATA.XML names, an MDN when asked."""
        reconnected = False
        while True:
            with self._lock:
                try:
                    session = self._imap_session(fresh=reconnected)
                    unseen = session.unseen()
                    break
                except MssError as error:
                    self._close_imap()
                    if error.expired and not reconnected and "mss-no-reconnect" not in self.defects:
                        reconnected = True
                        continue
                    return {"messages": [], "erreur": str(error)}
        shown = []
        for uid, raw in unseen:
            parsed = BytesParser(policy=policy.default).parsebytes(raw)
            if parsed.get_content_type() != "multipart/report":  # DSN and MDN about our own messages
                shown.append(self._receive(parsed, session.login))
            try:
                session.mark_seen(uid)
            except MssError:
                break
        return {"messages": shown}

    # -- sending -----------------------------------------------------------------------------------

    @property
    def _oid_base(self) -> str:
        """MSS document ids: a branch of the software's root, per process, apart from the DMP feature's."""
        return f"{self.practice.oid_root}.5.{id(self) % 100_000}"

    def _recipient(self, patient: PatientView, destinataire: str) -> str:
        if destinataire == "patient":
            if patient.ins is None or patient.statut != "qualifiee":
                raise ActionError(
                    "identity_not_qualified", "the patient's Mon espace santé address needs a qualified INS", 409
                )
            return f"{patient.ins['matricule']}{patient.ins['cle']}@{PATIENT_DOMAIN}"
        if not _ADDRESS.match(destinataire):
            raise ActionError("invalid_recipient", f"destinataire must be 'patient' or an address: {destinataire!r}")
        return destinataire

    def _new_request(self, patient: PatientView, qualified: bool, params: dict[str, Any]) -> CdaRequest:
        """As produce_document does, without the DMP; N3 when the identity is not qualified (no INS rendered)."""
        practice = self.practice
        document_id = CdaId(f"{self._oid_base}.{next(self._ids)}")
        if qualified and patient.ins is not None:
            ins, oid = patient.ins["matricule"] + patient.ins["cle"], patient.ins["oid"]
        else:  # a placeholder the CDA loses again in _cda (CdaPatient insists on an INS)
            ins, oid = "0" * 15, practice.oid_root + ".1"
        recipient = cda_patient(patient, practice, ins, self.oid_mapping.get(oid, oid))
        return document_request(practice, "N1" if qualified else "N3", recipient, document_id, params)

    def _new_message(
        self,
        patient: PatientView,
        recipient: str,
        request: CdaRequest,
        qualified: bool,
        read_receipt: bool,
        params: dict[str, Any],
        replaces: MssMessage | None,
    ) -> MssMessage:
        login = self._login()
        message = MssMessage(
            local_id=f"M{next(self._ids):05d}",
            patient_id=patient.patient_id,
            recipient=recipient,
            request=request,
            qualified=qualified,
            read_receipt=read_receipt,
            block_reply=bool(params.get("bloquer_reponse")) and recipient.endswith("@" + PATIENT_DOMAIN),
            message_id=make_msgid(domain=login.address.rsplit("@", 1)[1]),
            subject=_subject(request, "mss-bad-subject" in self.defects),
            replaces=replaces,
        )
        with self._lock:
            self.messages[message.local_id] = message
        return message

    def _deliver(self, message: MssMessage) -> dict[str, Any]:
        """Up to three attempts on 4xx, one reconnection with a fresh token when the session expired."""
        attempts, reconnected = 0, False
        while True:
            login = self._login(force_refresh=reconnected)
            try:
                raw = self._compose(message, login)
                send_message(
                    self._settings(),
                    login,
                    [message.recipient],
                    raw,
                    auth_before_starttls="mss-auth-before-starttls" in self.defects,
                )
            except MssError as error:
                if error.expired and not reconnected and "mss-no-reconnect" not in self.defects:
                    reconnected = True
                    continue
                attempts += 1
                if error.temporary and not error.expired and attempts < ATTEMPTS:
                    time.sleep(RETRY_PAUSE)
                    continue
                return self._failed(message, error)
            message.status, message.error = "envoye", None
            return message.to_json()

    def _failed(self, message: MssMessage, error: MssError) -> dict[str, Any]:
        if "mss-drops-failed-message" in self.defects:
            with self._lock:
                self.messages.pop(message.local_id, None)
            return {**message.to_json(), "statut": "abandonne", "erreur": str(error)}
        message.status = "en_attente" if error.temporary and not error.expired else "en_erreur"
        message.error = str(error)
        return message.to_json()

    def _compose(self, message: MssMessage, login: Login) -> bytes:
        if not message.attachments:
            message.attachments = self._attachments(message)
        email = EmailMessage()
        # mss-from-header-mismatch: a generic no-reply address in From, the BAL only in the envelope.
        generic = "ne-pas-repondre@" + login.address.rpartition("@")[2]
        email["From"] = generic if "mss-from-header-mismatch" in self.defects else login.address
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=True)
        email["Message-ID"] = message.message_id
        if message.replaces is not None:
            email["In-Reply-To"] = message.replaces.message_id
            email["References"] = message.replaces.message_id
        if "mss-no-nil" not in self.defects:
            email["X-MSS-NIL"] = NIL
        if "mss-no-codecda" not in self.defects:
            email["X-MSS-CODECDA"] = VOLETS[message.request.kind].type_code.code
        email["X-MSS-INS"] = "O" if message.qualified or "mss-ins-o-unqualified" in self.defects else "N"
        if message.block_reply and "mss-no-fin" not in self.defects:
            email["X-MSS-MES"] = "FIN"
        if message.read_receipt and "mss-no-mdn-request" not in self.defects:
            email["Disposition-Notification-To"] = login.address
        # mss-latin1-text: the text part in ISO-8859-1, as software built for Windows code pages still does.
        charset = "iso-8859-1" if "mss-latin1-text" in self.defects else "utf-8"
        email.set_content(_body(message, self.practice.organisation.name), charset=charset, cte="quoted-printable")
        for filename, subtype, data in message.attachments:
            email.add_attachment(data, maintype="application", subtype=subtype, filename=filename)
        return email.as_bytes(policy=policy.SMTP)

    def _attachments(self, message: MssMessage) -> list[tuple[str, str, bytes]]:
        """IHE_XDM.ZIP and the PDF rendering beside it (SC.MSS/CONF.23)."""
        request = message.request
        cda = _cda(request, message.qualified)
        if "mss-xdm-cda-missing-trait" in self.defects:  # the birth name loses its qualifier BR
            cda = cda.replace(b' qualifier="BR"', b"", 1)
        archives = [self._xdm(request, cda, message.qualified)]
        if "mss-two-patients" in self.defects:
            other = replace(request, patient=OTHER_PATIENT, document_id=CdaId(f"{request.document_id.root}.9"))
            archives.append(self._xdm(other, produce_cda(other), True))
        lines = pdf_lines(request)
        if not message.qualified:
            lines = [line.replace(f", INS {request.patient.ins}", "") for line in lines]
        name = "compte-rendu.pdf" if "mss-pdf-generic-name" in self.defects else _pdf_name(request)
        pdf = (name, "pdf", make_pdf(lines))
        return [*((XDM_NAME, "zip", archive) for archive in archives), pdf]

    def _xdm(self, request: CdaRequest, cda: bytes, qualified: bool) -> bytes:
        local_oid = self.practice.oid_root + ".1"
        oids = InsOids() if qualified else InsOids(local_oid, local_oid)
        author = self.practice.author
        metadata = document_metadata(
            cda,
            format_code=FORMATS["N1"] if request.level == "N1" else FORMATS[request.kind],
            author=Author(author.idnps, author.family_name, author.given_name),
            institution=Institution(self.practice.organisation.name, self.practice.organisation.id),
            source_id=self.practice.oid_root + ".99",
            keys=self.keys,
            oids=oids,
        )
        tamper = _wrong_hash if "mss-xdm-bad-hash" in self.defects else None
        return build_xdm(cda, metadata, title=request.title or VOLETS[request.kind].default_title, tamper=tamper)

    # -- authentication ----------------------------------------------------------------------------

    def _login(self, force_refresh: bool = False) -> Login:
        """The logged-in PS's personal BAL with a valid token (XOAUTH2), else (DPI) the applicative BAL (EXTERNAL)."""
        client = self.psc_client()
        session = client.session if client is not None else None
        if "mss-app-bal-despite-ps" in self.defects and self.profile == "dpi":
            session = None
        if client is not None and session is not None:
            try:
                if force_refresh:  # the operator said the token expired: believe it, whatever our clock says
                    session.expires_at = 0.0
                session = client.ensure_fresh()
            except PscError:
                session = None
                self.session_ended()
        if session is not None:
            address = self.bal_personnelles.get(session.national_id)
            if address is None:
                raise ActionError("mss_no_bal", f"no personal MSSanté BAL known for {session.national_id}", 409)
            if "mss-token-on-disk" in self.defects:
                record = {"bal": address, "access_token": session.access_token}
                (self.data_dir / "mss-session.json").write_text(json.dumps(record))
            return Login(address, token=session.access_token, national_id=session.national_id)
        if self.profile != "dpi" or not self.bal_applicative:
            raise ActionError("mss_no_session", "log in with Pro Santé Connect to use your MSSanté mailbox", 409)
        certificate = "sign" if "mss-app-wrong-certificate" in self.defects else "auth-cli"
        return Login(self.bal_applicative, certificate=self.certificates[certificate])

    def _current_address(self) -> str | None:
        client = self.psc_client()
        if client is not None and client.session is not None and "mss-app-bal-despite-ps" not in self.defects:
            return self.bal_personnelles.get(client.session.national_id)
        return self.bal_applicative if self.profile == "dpi" else None

    def _imap_session(self, fresh: bool) -> ImapSession:
        if self.imap is not None and not fresh:
            if "mss-keeps-session" in self.defects or self._current_address() == self.imap.login.address:
                return self.imap
            self._close_imap()
        self.imap = ImapSession(self._settings(), self._login(force_refresh=fresh))
        return self.imap

    def _close_imap(self) -> None:
        if self.imap is not None:
            self.imap.logout()
            self.imap = None

    def _settings(self) -> MssSettings:
        if self.settings is None:
            raise ActionError("not_configured", "call configure with services.mss first", status=409)
        return self.settings

    # -- receiving ---------------------------------------------------------------------------------

    def _receive(self, parsed: EmailMessage, login: Login) -> dict[str, Any]:
        subject = " ".join(str(parsed.get("Subject", "")).split())
        shown = subject if "mss-shows-xdm-prefix" in self.defects else subject.replace(SUBJECT_MARKER, "", 1)
        archive = next(
            (
                part.get_payload(decode=True)
                for part in parsed.iter_attachments()
                if (part.get_filename() or "").upper() == XDM_NAME
            ),
            None,
        )
        received = read_archive(archive) if isinstance(archive, bytes) else Received()
        if "mss-patient-from-subject" in self.defects:
            patient = self._patient_named_in(subject)
            ins = patient.ins["matricule"] + patient.ins["cle"] if patient and patient.ins else None
        else:
            ins = received.ins
            patient = self._patient_with_ins(ins) if ins else None
        mdn_sent = False
        asked = parseaddr(str(parsed.get("Disposition-Notification-To", "")))[1]
        if asked:
            mdn_sent = self._send_mdn(parsed, asked, login)
        return {
            "message_id": str(parsed.get("Message-ID", "")).strip(),
            "sujet": shown,
            "expediteur": parseaddr(str(parsed.get("From", "")))[1],
            "patient_ins": ins,
            "patient_id": patient.patient_id if patient else None,
            "documents": received.documents,
            "integre": patient is not None and received.documents > 0 and received.intact,
            "mdn_envoye": mdn_sent,
        }

    def _patient_with_ins(self, ins: str) -> PatientView | None:
        for patient in self.patients():
            if patient.ins and patient.ins["matricule"] + patient.ins["cle"] == ins:
                return patient
        return None

    def _patient_named_in(self, subject: str) -> PatientView | None:
        """The defect mss-patient-from-subject: a name and birth date read from the subject."""
        text = _plain(subject)
        for patient in self.patients():
            traits = patient.traits
            birth = dt.date.fromisoformat(traits["date_naissance"]).strftime("%d/%m/%Y")
            if f"{_plain(traits['nom_naissance'])} {_plain(traits['prenoms'])}" in text and birth in text:
                return patient
        return None

    def _send_mdn(self, original: EmailMessage, to: str, login: Login) -> bool:
        """RFC 8098 MDN ``displayed``: the user opened the message in the software."""
        try:
            send_message(self._settings(), login, [to], build_mdn(original, login.address, to))
        except MssError:
            return False
        return True


@dataclass(frozen=True)
class Received:
    """What the software takes from an incoming IHE_XDM.ZIP: the patient (INS) and the documents."""

    ins: str | None = None
    documents: int = 0
    intact: bool = False


def read_archive(data: bytes) -> Received:
    """The submission set's patientId (CX.1) and whether every document matches its hash and size."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            if sum(i.file_size for i in infos) > MAX_ARCHIVE_BYTES or any(_unsafe(i.filename) for i in infos):
                return Received()
            files = {info.filename: archive.read(info) for info in infos}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return Received()
    ins, documents, intact = None, 0, True
    for path, content in files.items():
        if not path.upper().startswith("IHE_XDM/") or not path.upper().endswith("/METADATA.XML"):
            continue
        try:
            root = parse_untrusted(content)
        except (UnsafeXml, MalformedXml):
            return Received()
        directory = posixpath.dirname(path)
        for package in root.iter(f"{ebrim.RIM}RegistryPackage"):
            ins = ins or _identifier(package, ebrim.SS_PATIENT_ID).split("^", 1)[0] or None
        for entry in root.iter(f"{ebrim.RIM}ExtrinsicObject"):
            document = files.get(posixpath.normpath(posixpath.join(directory, _slot(entry, "URI"))))
            documents += 1
            intact = intact and _matches(entry, document)
    return Received(ins, documents, intact and documents > 0)


def build_mdn(original: EmailMessage, reporter: str, to: str) -> bytes:
    """A disposition notification (RFC 8098 §3): human part, machine part, the original's headers."""
    report = EmailMessage()
    report["From"] = reporter
    report["To"] = to
    report["Subject"] = f"Accusé de lecture : {original.get('Subject', '')}"
    report["Date"] = formatdate(localtime=True)
    report["Message-ID"] = make_msgid(domain=reporter.rsplit("@", 1)[1])
    report["X-MSS-NIL"] = NIL
    original_id = str(original.get("Message-ID", "")).strip()
    if original_id:
        report["In-Reply-To"] = original_id
        report["References"] = original_id
    text = EmailMessage()
    text.set_content(
        f"Le message {original_id} a été affiché par {reporter}.\n", charset="utf-8", cte="quoted-printable"
    )
    fields = [
        "Reporting-UA: segur-reference-sut; SEGUR REFERENCE",
        f"Final-Recipient: rfc822;{reporter}",
        *([f"Original-Message-ID: {original_id}"] if original_id else []),
        "Disposition: manual-action/MDN-sent-automatically; displayed",
    ]
    headers = original.as_bytes(policy=policy.SMTP).split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    report["MIME-Version"] = "1.0"
    report["Content-Type"] = "multipart/report; report-type=disposition-notification"
    report.set_payload(
        [
            text,
            _part("message/disposition-notification", "\r\n".join(fields) + "\r\n"),
            _part("text/rfc822-headers", headers + "\r\n"),
        ]
    )
    return report.as_bytes(policy=policy.SMTP)


def _part(content_type: str, text: str) -> EmailMessage:
    part = EmailMessage()
    part["Content-Type"] = content_type
    part.set_payload(text)
    return part


def _subject(request: CdaRequest, bad: bool) -> str:
    """``XDM/1.0/DDM+<libellé> <NOM> <prénoms> <JJ/MM/AAAA>`` (ECO.2.1.3), names as the CDA's first given."""
    patient = request.patient
    label = VOLETS[request.kind].type_code.display
    person = f"{patient.birth_family_name} {' '.join(patient.given_names)}"
    if bad:
        return f"{label} - {person}"
    return f"{SUBJECT_MARKER}{label} {person} {patient.birth_date.strftime('%d/%m/%Y')}"


def _pdf_name(request: CdaRequest) -> str:
    patient = request.patient
    person = re.sub(r"[^A-Z0-9]+", "_", _plain(f"{patient.birth_family_name} {' '.join(patient.given_names)}"))
    return f"{request.effective_time:%Y%m%d}_{PDF_TYPES[request.kind]}_{person.strip('_')}.pdf"


def _body(message: MssMessage, organisation: str) -> str:
    patient = message.request.patient
    lines = [
        "Bonjour,",
        "",
        f"Veuillez trouver ci-joint le document concernant {' '.join(patient.given_names)} "
        f"{patient.birth_family_name}, né(e) le {patient.birth_date:%d/%m/%Y}.",
    ]
    if message.replaces is not None:
        previous = message.replaces
        lines.append(
            f"Ce document annule et remplace le document {previous.request.document_id.root} "
            f"envoyé dans le message {previous.message_id}."
        )
    return "\n".join([*lines, "", "Cordialement,", organisation, ""])


def _cda(request: CdaRequest, qualified: bool) -> bytes:
    """The CDA; without a qualified identity the placeholder INS is removed, the local id stays."""
    cda = produce_cda(request)
    if qualified:
        return cda
    root = parse_untrusted(cda)
    role = root.find("{urn:hl7-org:v3}recordTarget/{urn:hl7-org:v3}patientRole")
    assert role is not None
    role.remove(role.find("{urn:hl7-org:v3}id"))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")


def _wrong_hash(metadata: etree._Element) -> None:
    """The defect mss-xdm-bad-hash: METADATA.XML announces a SHA-1 the document does not have."""
    for slot in metadata.iter(f"{ebrim.RIM}Slot"):
        if slot.get("name") == "hash":
            slot.find(f"{ebrim.RIM}ValueList/{ebrim.RIM}Value").text = "0" * 40


def _matches(entry: etree._Element, document: bytes | None) -> bool:
    """The document is there, with the SHA-1 and size its DocumentEntry announces (ITI-32 media)."""
    if document is None:
        return False
    return _slot(entry, "hash").lower() == hashlib.sha1(document).hexdigest() and _slot(entry, "size") == str(
        len(document)
    )


def _slot(element: etree._Element, name: str) -> str:
    for slot in element.iterfind(f"{ebrim.RIM}Slot"):
        if slot.get("name") == name:
            value = slot.find(f"{ebrim.RIM}ValueList/{ebrim.RIM}Value")
            return (value.text or "").strip() if value is not None else ""
    return ""


def _identifier(element: etree._Element, scheme: str) -> str:
    for identifier in element.iterfind(f"{ebrim.RIM}ExternalIdentifier"):
        if identifier.get("identificationScheme") == scheme:
            return identifier.get("value", "")
    return ""


def _unsafe(name: str) -> bool:
    return name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name)


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).upper().split())
