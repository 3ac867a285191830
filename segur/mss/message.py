"""Checks on a raw MSSanté message a SUT submitted to the operator mock (Ségur REM MSSanté, couloir MSS).

Researched: ANS "Référentiel socle MSSanté #2 – Clients de messageries sécurisées de santé"
(v0.1 2021, https://fr.readkong.com/page/referentiel-socle-mssante-2-clients-de-messageries-8541765;
v1.0.1 2024 quoted at https://doc.devbox-sante.fr/ms-sante/howtos/entete-x-mss), and the CI-SIS
volet "Transmission d'un document CDA-R2 … courriel MSSanté" (github.com/ansforge/
IG-hl7v2-volet-trans-lps-doc-cda-courriel-mss, struct-email-standard.md):

* ``X-MSS-CODECDA`` (ECO.2.4.1, SC.MSS/CONF.15): set when CDA documents travel in an IHE_XDM
  archive, value the CDA header ``code/@code``; several CDA give several values (comma-separated);
  absent when no CDA travels in an IHE_XDM archive.
* ``X-MSS-INS`` (ECO.2.4.2, SC.MSS/CONF.14): same condition; ``O`` when the archive carries a
  qualified INS, ``N`` otherwise.
* ``X-MSS-NIL`` (ECO.2.4.3, SC.MSS/CONF.16): on every message, the "référence produit" given at the
  product's declaration on convergence.esante.gouv.fr (e.g. ``DEV935997``).
* ``X-MSS-MES: FIN`` (ECO.2.2.8, SC.MSS/CONF.21): on a message to a Mon espace santé address
  (``<INS matricule>@patient.mssante.fr``) when the professional forbids the patient's reply.
* Subject ``XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>`` (ECO.2.1.3; the IHE XDM
  e-mail marker ``XDM/1.0/DDM``), date as JJ/MM/AAAA, e.g. ``XDM/1.0/DDM+ECHOGRAPHIE … CORSE
  FIGATELLIX 12/10/1988``.
* One patient per message: one IHE_XDM.ZIP and the PDF rendering beside it (ECO.2.1.1), the PDF
  named like ``20220531_CR_d_imagerie_medicale_CORSE_FIGATELLIX.pdf``.

Modelled (no public rule found): the X-MSS-NIL syntax (one token of letters, digits, ``.-_``), the
libellé check (a prefix of the CDA ``code/@displayName``, or ``<n> documents``: a warning only), the
PDF name rule ``<AAAAMMJJ>_<type>_<NOM>_<prénom>[_<dossier>].pdf`` inferred from the ANS example
(id ``MSS/PROV.02``), MIME hygiene (``MSS/PROV.03``), and X-MSS-MES absence on a patient message
when the caller does not say whether the reply was blocked: a warning, since ECO.2.2.8 makes it
conditional on that choice.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

from segur.cda import CdaChecks
from segur.mss.xdm import XdmCda, XdmError, XdmPackage, read_xdm, xdm_findings
from segur.validation import Finding
from segur.xds import InsOids
from segur.xds.datatypes import parse_cx

CONF_INS = "SC.MSS/CONF.14"
CONF_CODECDA = "SC.MSS/CONF.15"
CONF_NIL = "SC.MSS/CONF.16"
CONF_MES = "SC.MSS/CONF.21"
CONF_ONE_PATIENT = "SC.MSS/CONF.23"
CONF_SUBJECT = "SC.MSS/CONF.25"
PROV_MIME = "MSS/PROV.03"
PROV_PDF = "MSS/PROV.02"
UX_MDN = "MSS/UX.33"
XDM_FILENAME = "IHE_XDM.ZIP"
SUBJECT_MARKER = "XDM/1.0/DDM+"
_PATIENT_ADDRESS = re.compile(r"^[0-9A-Za-z]{15}@patient\.mssante\.fr$", re.IGNORECASE)
_NIL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_MESSAGE_ID = re.compile(rf"^<{_ATOM}(?:\.{_ATOM})*@(?:{_ATOM}(?:\.{_ATOM})*|\[[^\[\]\\\s]*\])>$")
_BIRTH_DATE = re.compile(r"\b([0-9]{2}/[0-9]{2}/[0-9]{4})\b")
_PDF_NAME = re.compile(r"^([0-9]{8})_(.+)\.pdf$", re.IGNORECASE)
_READABLE = (ValueError, TypeError, IndexError, LookupError, AttributeError)
"""What the stdlib header parser may raise on hostile input; the checks turn it into a finding."""


@dataclass
class _Message:
    """The parsed message and what the checks share: its attachments and the archive's content."""

    email: EmailMessage
    findings: list[Finding] = field(default_factory=list)
    archives: list[bytes] = field(default_factory=list)
    pdfs: list[tuple[str, bytes]] = field(default_factory=list)
    package: XdmPackage | None = None

    def headers(self, name: str) -> list[str]:
        try:
            return [str(value).strip() for value in self.email.get_all(name) or []]
        except _READABLE as error:
            self.findings.append(
                Finding("MSS-MIME-HEADER", "error", f"header {name} is unreadable: {error}", "", PROV_MIME)
            )
            return []

    @property
    def cdas(self) -> tuple[XdmCda, ...]:
        return self.package.cdas if self.package is not None else ()

    @property
    def unreadable_archive(self) -> bool:
        """An archive is attached but could not be read: its own finding says so, content checks are moot."""
        return bool(self.archives) and self.package is None


def _parse(raw: bytes) -> _Message:
    message = _Message(BytesParser(policy=policy.default).parsebytes(raw))  # type: ignore[arg-type]
    for part in message.email.walk():
        for defect in part.defects:
            message.findings.append(Finding("MSS-MIME-DEFECT", "error", f"malformed MIME: {defect!r}", "", PROV_MIME))
        if part.is_multipart():
            continue
        filename = (part.get_filename() or "").strip()
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if filename.upper() == XDM_FILENAME:
            message.archives.append(data)
        elif part.get_content_type() == "application/pdf" or filename.lower().endswith(".pdf"):
            message.pdfs.append((filename, data))
        elif part.get_content_maintype() == "text" and not filename:
            message.findings += _text_findings(part, data)
    return message


def _text_findings(part: EmailMessage, data: bytes) -> list[Finding]:
    charset = part.get_param("charset")
    if not isinstance(charset, str):
        return [
            Finding("MSS-MIME-CHARSET", "error", f"{part.get_content_type()} part declares no charset", "", PROV_MIME)
        ]
    if charset.lower() not in ("utf-8", "us-ascii"):
        return [Finding("MSS-MIME-CHARSET", "error", f"text part declares charset {charset}, not UTF-8", "", PROV_MIME)]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return [Finding("MSS-MIME-UTF8", "error", f"text part is not valid UTF-8: {error.reason}", "", PROV_MIME)]
    return []


def _mime_findings(message: _Message) -> list[Finding]:
    ids = message.headers("Message-ID")
    if len(ids) != 1:
        return [
            Finding("MSS-MIME-MESSAGE-ID", "error", f"expected one Message-ID header, found {len(ids)}", "", PROV_MIME)
        ]
    if not _MESSAGE_ID.match(ids[0]):
        return [Finding("MSS-MIME-MESSAGE-ID", "error", f"Message-ID '{ids[0]}' is not <left@right>", "", PROV_MIME)]
    return []


def _nil_findings(message: _Message) -> list[Finding]:
    values = message.headers("X-MSS-NIL")
    if len(values) != 1:
        return [Finding("MSS-NIL", "error", f"expected one X-MSS-NIL header, found {len(values)}", "", CONF_NIL)]
    if not _NIL.match(values[0]):
        message = f"X-MSS-NIL '{values[0]}' is not a product reference (one token, letters/digits/.-_)"
        return [Finding("MSS-NIL", "error", message, "", CONF_NIL)]
    return []


def _archive_findings(message: _Message, oids: InsOids | None, cda_checks: CdaChecks | None) -> list[Finding]:
    if not message.archives:
        return []
    findings = []
    if len(message.archives) > 1:
        text = f"{len(message.archives)} {XDM_FILENAME} attachments: one patient, one archive per message"
        findings.append(Finding("MSS-XDM-COUNT", "error", text, "", CONF_ONE_PATIENT))
    if not message.pdfs:
        text = f"{XDM_FILENAME} is attached without the PDF rendering of its document"
        findings.append(Finding("MSS-PDF-ABSENT", "error", text, "", CONF_ONE_PATIENT))
    try:
        message.package = read_xdm(message.archives[0])
    except XdmError as error:
        return [*findings, error.finding()]
    ins_required = [v.split(";")[0].strip() for v in message.headers("X-MSS-INS")] != ["N"]
    return findings + xdm_findings(message.package, oids=oids, ins_required=ins_required, cda_checks=cda_checks)


def _codecda_findings(message: _Message) -> list[Finding]:
    if message.unreadable_archive:
        return []
    values = [v for header in message.headers("X-MSS-CODECDA") for v in re.split(r"[,\s]+", header) if v]
    expected = {cda.code for cda in message.cdas}
    if not message.cdas:
        if values:
            return [
                Finding("MSS-CODECDA", "error", "X-MSS-CODECDA set but no CDA travels in an IHE_XDM", "", CONF_CODECDA)
            ]
        return []
    if not values:
        return [
            Finding("MSS-CODECDA", "error", f"X-MSS-CODECDA missing (CDA code {sorted(expected)})", "", CONF_CODECDA)
        ]
    if set(values) != expected:
        text = f"X-MSS-CODECDA {values} is not the CDA code(s) {sorted(expected)}"
        return [Finding("MSS-CODECDA", "error", text, "", CONF_CODECDA)]
    return []


def _ins_findings(message: _Message, ins_qualified: bool | None) -> list[Finding]:
    if message.unreadable_archive:
        return []
    values = message.headers("X-MSS-INS")
    if not message.cdas:
        if values:
            return [Finding("MSS-INS", "error", "X-MSS-INS set but no CDA travels in an IHE_XDM", "", CONF_INS)]
        return []
    if len(values) != 1:
        return [Finding("MSS-INS", "error", f"expected one X-MSS-INS header, found {len(values)}", "", CONF_INS)]
    flag, *carried = values[0].replace(";", " ").split()
    if flag not in ("O", "N"):
        return [Finding("MSS-INS", "error", f"X-MSS-INS '{values[0]}' must be O or N", "", CONF_INS)]
    findings = []
    cda_ins = {ins for cda in message.cdas for _, ins in cda.ins}
    if ins_qualified is not None and (flag == "O") != ins_qualified:
        text = f"X-MSS-INS is {flag} but the patient identity is {'' if ins_qualified else 'not '}qualified"
        findings.append(Finding("MSS-INS", "error", text, "", CONF_INS))
    elif flag == "O" and not cda_ins:
        findings.append(Finding("MSS-INS", "error", "X-MSS-INS is O but no CDA carries an INS", "", CONF_INS))
    metadata_ins = (
        {parse_cx(message.package.patient_id).id} if message.package and message.package.patient_id else set()
    )
    for value in carried:
        if value not in cda_ins or (metadata_ins and value not in metadata_ins):
            text = f"X-MSS-INS names INS {value}, the CDA {sorted(cda_ins)} and METADATA.XML {sorted(metadata_ins)}"
            findings.append(Finding("MSS-INS-MISMATCH", "error", text, "", CONF_INS))
    return findings


def _patient_recipients(message: _Message) -> list[str]:
    addresses = getaddresses(message.headers("To") + message.headers("Cc"))
    return [address for _, address in addresses if _PATIENT_ADDRESS.match(address)]


def _mes_findings(message: _Message, block_patient_reply: bool | None) -> list[Finding]:
    values = message.headers("X-MSS-MES")
    to_patient = bool(_patient_recipients(message))
    if values and values != ["FIN"]:
        return [Finding("MSS-MES", "error", f"X-MSS-MES {values} must be exactly FIN", "", CONF_MES)]
    if values and not to_patient:
        return [
            Finding("MSS-MES", "error", "X-MSS-MES set on a message to no @patient.mssante.fr address", "", CONF_MES)
        ]
    if not to_patient or values or block_patient_reply is False:
        return []
    severity = "error" if block_patient_reply else "warning"
    text = "message to Mon espace santé without X-MSS-MES: FIN (the patient may reply)"
    return [Finding("MSS-MES", severity, text, "", CONF_MES)]


def _plain(text: str) -> str:
    """Upper case without accents: the subject and PDF name carry names that way (ECO.2.1.3)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def _day(digits: str) -> dt.date | None:
    """The date of an AAAAMMJJ prefix (CDA TS, PDF name), None when it is not a real date."""
    try:
        return dt.datetime.strptime(digits[:8], "%Y%m%d").date() if len(digits) >= 8 else None
    except ValueError:
        return None


def _subject_findings(message: _Message) -> list[Finding]:
    if message.unreadable_archive:
        return []
    subjects = message.headers("Subject")
    subject = subjects[0] if subjects else ""
    if not message.cdas:
        if SUBJECT_MARKER in subject and not message.archives:
            return [
                Finding("MSS-SUBJECT", "error", f"subject has {SUBJECT_MARKER} but no {XDM_FILENAME}", "", CONF_SUBJECT)
            ]
        return []
    if SUBJECT_MARKER not in subject:
        return [
            Finding(
                "MSS-SUBJECT",
                "error",
                f"subject '{subject}' lacks {SUBJECT_MARKER}<libellé> <NOM> <prénom> <date>",
                "",
                CONF_SUBJECT,
            )
        ]
    rest = _plain(" ".join(subject.split(SUBJECT_MARKER, 1)[1].split()))
    cda = message.cdas[0]
    person = f" {_plain(cda.family)} {_plain(cda.given)}"
    if not cda.family or person not in f" {rest}":
        return [
            Finding("MSS-SUBJECT", "error", f"subject does not name the patient '{person.strip()}'", "", CONF_SUBJECT)
        ]
    findings = []
    label = f" {rest}".split(person, 1)[0].strip()
    expected = f"{len(message.cdas)} DOCUMENTS" if len(message.cdas) > 1 else _plain(cda.display_name)
    if not label or not expected.startswith(label):
        text = f"subject libellé '{label}' is not the document label '{expected}' (or its truncation)"
        findings.append(Finding("MSS-SUBJECT-LABEL", "warning", text, "", CONF_SUBJECT))
    birth = _day(cda.birth_time)
    expected_date = birth.strftime("%d/%m/%Y") if birth else ""
    dates = _BIRTH_DATE.findall(rest)
    if dates != [expected_date]:
        text = f"subject date {dates} is not the birth date {expected_date} (JJ/MM/AAAA)"
        findings.append(Finding("MSS-SUBJECT-DATE", "error", text, "", CONF_SUBJECT))
    return findings


def _pdf_findings(message: _Message) -> list[Finding]:
    findings = []
    for filename, data in message.pdfs:
        if not data.startswith(b"%PDF-"):
            findings.append(Finding("MSS-PDF-CONTENT", "error", f"'{filename}' is not a PDF", "", CONF_ONE_PATIENT))
        if not message.cdas:
            continue
        match = _PDF_NAME.match(filename)
        cda = message.cdas[0]
        person = re.sub(r"[^A-Z0-9]+", "_", _plain(f"{cda.family} {cda.given}"))
        stem = f"{_plain(filename[:-4])}_"
        if match is None or _day(match.group(1)) is None or f"_{person}_" not in stem:
            text = f"PDF name '{filename}' is not <AAAAMMJJ>_<type>_{person}[_<dossier>].pdf"
            findings.append(Finding("MSS-PDF-NAME", "error", text, "", PROV_PDF))
    return findings


def _mdn_findings(message: _Message, expect_mdn: bool) -> list[Finding]:
    if not expect_mdn:
        return []
    addresses = [
        address for _, address in getaddresses(message.headers("Disposition-Notification-To")) if "@" in address
    ]
    if not addresses:
        text = "a read receipt was asked but Disposition-Notification-To is absent or has no address"
        return [Finding("MSS-MDN", "error", text, "", UX_MDN)]
    return []


def validate_mss_message(
    raw: bytes,
    *,
    ins_qualified: bool | None = None,
    expect_mdn: bool = False,
    oids: InsOids | None = None,
    block_patient_reply: bool | None = None,
    cda_checks: CdaChecks | None = None,
) -> list[Finding]:
    """Every finding on one submitted message; malformed MIME or zip gives findings, never an exception.

    ``ins_qualified`` is the identity status the SUT holds for the patient (None: unknown, the
    O/N value is then only checked against the archive); ``block_patient_reply`` whether the
    scenario asked the professional to forbid the patient's reply (None: unknown); ``cda_checks``
    the user's CI-SIS schema and layers for the archive's CDA (``segur.cisis.package_checks``).
    """
    message = _parse(raw)
    findings = _mime_findings(message) + _nil_findings(message) + _archive_findings(message, oids, cda_checks)
    findings += _codecda_findings(message) + _ins_findings(message, ins_qualified)
    findings += _mes_findings(message, block_patient_reply) + _subject_findings(message)
    findings += _pdf_findings(message) + _mdn_findings(message, expect_mdn)
    return message.findings + findings


def archive_of_message(raw: bytes) -> XdmPackage | None:
    """The message's first IHE_XDM.ZIP, read; None when there is none or it cannot be read safely."""
    message = _parse(raw)
    if not message.archives:
        return None
    try:
        return read_xdm(message.archives[0])
    except XdmError:
        return None


def patient_of_message(raw: bytes) -> str | None:
    """The INS (CX.1 of METADATA.XML patientId) a receiving SUT must attach the documents to (SC.MSS/CONF.24)."""
    package = archive_of_message(raw)
    patient_id = package.patient_id if package is not None else None
    return parse_cx(patient_id).id if patient_id else None
