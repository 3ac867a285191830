"""Delivery and disposition reports of the MSSanté operator mock: DSN (RFC 3464) and MDN (RFC 8098).

The SMTP server answers a DSN request (RFC 3461 NOTIFY/RET/ENVID/ORCPT) with ``build_dsn``; the
patient side answers a Disposition-Notification-To with ``build_mdn``; harness steps and the
reference SUT read both with ``parse_report``, which refuses anything that is not a well-formed
``multipart/report`` (RFC 6522) so that a SUT's malformed receipt fails a step with its reason.

RET: RFC 3461 §4.3 lets the MTA choose when RET is absent; this mock returns headers only, so
health content never travels back in a report nobody asked it in. Following the same section,
the full message is returned only when the report notifies a failure.

MES_ERRORS, the ``Error: <code>^<label>`` values of the error MDNs Mon espace santé sends when
the patient's space refuses a message, are MODELLED. Searched without finding the table: ANS
pages and FAQ on Mon espace santé and MSSanté, the Référentiel socle MSSanté #2 (clients, 2021),
the ASIP DST/DSFT MSSanté (2013-2014), doc.devbox-sante.fr on the X-MSS-* headers, and ANS GitHub
repositories. Researched facts the labels rest on: a professional must initiate the exchange
(esante.gouv.fr FAQ Mon espace santé); a patient-bound message carries its documents as CDA in an
IHE_XDM archive (Référentiel #2, ECO.2.4.x, quoted by doc.devbox-sante.fr); the 25 MB limit is
the one ``mailboxes.PATIENT_MAX_MESSAGE_BYTES`` uses. Codes and wording are ours. The labels are
French without diacritics because MDN fields are US-ASCII (RFC 8098 ``text``; UTF-8 would need
RFC 6533's message/global-disposition-notification), and RFC 2047 words are not allowed there.
"""

from __future__ import annotations

import email
import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message, MIMEPart
from email.mime.multipart import MIMEMultipart
from email.policy import SMTP, default

DSN = "delivery-status"
MDN = "disposition-notification"
ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")
DISPOSITION_TYPES = ("displayed", "deleted", "dispatched", "processed")
AUTOMATIC_MODE = "automatic-action/MDN-sent-automatically"
MANUAL_MODE = "manual-action/MDN-sent-manually"
_MODE = re.compile(r"^(automatic|manual)-action/MDN-sent-(automatically|manually)$", re.IGNORECASE)
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_MES_ERROR = re.compile(r"^(\d{3})\^(.+)$")

MES_ERRORS: dict[str, str] = {
    "900": "Aucun compte Mon espace sante pour ce patient",
    "901": "Compte Mon espace sante cloture ou messagerie desactivee",
    "902": "Patient mineur : message a adresser a son representant legal",
    "903": "Message sans archive IHE_XDM",
    "904": "Archive IHE_XDM invalide",
    "905": "Document CDA invalide",
    "906": "Message trop volumineux (25 Mo au plus)",
}


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's outcome as the SMTP server knows it; ``orcpt`` is the ORCPT value, xtext-decoded."""

    address: str
    action: str
    status: str
    diagnostic: str = ""
    orcpt: str = ""
    remote_mta: str = ""


@dataclass(frozen=True)
class RecipientReport:
    """One recipient as read back from a report; an MDN has exactly one, without action nor status."""

    final_recipient: str
    original_recipient: str = ""
    action: str = ""
    status: str = ""
    diagnostic: str = ""
    remote_mta: str = ""


@dataclass(frozen=True)
class Report:
    """What a DSN or an MDN says, in the terms a harness step asserts on."""

    report_type: str
    reporting: str
    recipients: tuple[RecipientReport, ...]
    returned: str = ""
    envid: str = ""
    arrival: datetime | None = None
    disposition_mode: str = ""
    disposition: str = ""
    disposition_modifier: str = ""
    original_message_id: str = ""
    error_code: str = ""
    error_label: str = ""


def build_dsn(
    sender: str,
    recipients: list[RecipientStatus],
    original: bytes,
    *,
    envid: str = "",
    ret: str = "",
    reporting_host: str = "mss-mock.localhost",
    arrival: datetime | None = None,
) -> bytes:
    """A DSN from MAILER-DAEMON@``reporting_host`` to ``sender`` about ``recipients`` of ``original``."""
    if not recipients:
        raise ValueError("a DSN reports on at least one recipient")
    if ret.upper() not in ("", "FULL", "HDRS"):
        raise ValueError(f"RET must be FULL or HDRS, not {ret!r}")
    for recipient in recipients:
        if recipient.action not in ACTIONS:
            raise ValueError(f"Action must be one of {ACTIONS}, not {recipient.action!r}")
        if not _STATUS.match(recipient.status):
            raise ValueError(f"Status must be an RFC 3463 code x.y.z, not {recipient.status!r}")
    actions = {recipient.action for recipient in recipients}
    outcome = "Failure" if "failed" in actions else "Delay" if "delayed" in actions else "Success"
    lines = [f"Message à {r.address} : {r.action} ({r.status}) {r.diagnostic}".rstrip() for r in recipients]
    human = (
        "Ceci est un avis de remise automatique du serveur de messagerie.\n"
        + "\n".join(lines)
        + "\n\nThis is an automatic delivery status notification.\n"
        + "\n".join(f"Message to {r.address}: {r.action} ({r.status})" for r in recipients)
        + "\n"
    )
    per_message = [
        ("Reporting-MTA", f"dns; {reporting_host}"),
        ("Original-Envelope-Id", envid),
        ("Arrival-Date", email.utils.format_datetime(arrival or datetime.now(UTC))),
    ]
    groups = [_fields(per_message)] + [
        _fields(
            [
                ("Original-Recipient", _typed(r.orcpt) if r.orcpt else ""),
                ("Final-Recipient", _typed(r.address)),
                ("Action", r.action),
                ("Status", r.status),
                ("Remote-MTA", f"dns; {r.remote_mta}" if r.remote_mta else ""),
                ("Diagnostic-Code", f"smtp; {r.diagnostic}" if r.diagnostic else ""),
            ]
        )
        for r in recipients
    ]
    full = ret.upper() == "FULL" and outcome == "Failure"
    report = _report(DSN, human, groups, _returned(original, full))
    report["From"] = f"MAILER-DAEMON@{reporting_host}"
    report["To"] = sender
    report["Subject"] = f"Delivery Status Notification ({outcome})"
    report["Auto-Submitted"] = "auto-replied"
    report["Message-ID"] = email.utils.make_msgid(domain=reporting_host)
    return report.as_bytes(policy=SMTP)


def build_mdn(
    original: bytes,
    *,
    reporter: str,
    disposition: str = "processed",
    error: str | None = None,
    manual: bool = False,
    include_headers: bool = True,
) -> bytes:
    """An MDN from ``reporter`` (the recipient's address) about ``original``; ``error`` is a MES_ERRORS code.

    Original-Recipient is known only when the delivering MTA wrote that header from the ORCPT (RFC 8098 §3.2.3).
    """
    message = email.message_from_bytes(original, policy=default)
    dnt = message.get_all("Disposition-Notification-To", [])
    notify = [address for _, address in email.utils.getaddresses(dnt) if address]
    if not notify:
        raise ValueError("the original message has no Disposition-Notification-To")
    if disposition not in DISPOSITION_TYPES:
        raise ValueError(f"disposition must be one of {DISPOSITION_TYPES}, not {disposition!r}")
    if error is not None and error not in MES_ERRORS:
        raise ValueError(f"unknown Mon espace santé error code {error!r}")
    subject = str(message.get("Subject", ""))
    outcome = f"refusé ({error} {MES_ERRORS[error]})" if error else disposition
    human = (
        f"Accusé de réception du message « {subject} » adressé à {reporter} : {outcome}.\n\n"
        f'Disposition notification for the message "{subject}" sent to {reporter}: '
        f"{'refused, error ' + error if error else disposition}.\n"
    )
    mode = MANUAL_MODE if manual else AUTOMATIC_MODE
    fields = _fields(
        [
            ("Reporting-UA", f"{reporter.rpartition('@')[2]}; segur-harness MSSante mock"),
            ("Original-Recipient", str(message.get("Original-Recipient", ""))),
            ("Final-Recipient", _typed(reporter)),
            ("Original-Message-ID", str(message.get("Message-ID", ""))),
            ("Disposition", f"{mode}; {disposition}/Error" if error else f"{mode}; {disposition}"),
            ("Error", f"{error}^{MES_ERRORS[error]}" if error else ""),
        ]
    )
    report = _report(MDN, human, [fields], _returned(original, False) if include_headers else None)
    report["From"] = reporter
    report["To"] = notify[0]
    report["Subject"] = f"Accusé de réception: {subject}"
    if not manual:
        report["Auto-Submitted"] = "auto-replied"
    report["Message-ID"] = email.utils.make_msgid(domain=reporter.rpartition("@")[2] or None)
    return report.as_bytes(policy=SMTP)


def parse_report(raw: bytes) -> Report:
    """Read a DSN or an MDN strictly: any deviation from RFC 6522/3464/8098 raises ValueError with the reason."""
    message = email.message_from_bytes(raw, policy=default)
    if message.get_content_type() != "multipart/report":
        raise ValueError(f"not a multipart/report but {message.get_content_type()}")
    if message.defects:
        raise ValueError(f"malformed MIME structure: {type(message.defects[0]).__name__}")
    report_type = str(message.get_param("report-type", "")).lower()
    if report_type not in (DSN, MDN):
        raise ValueError(f"report-type must be {DSN} or {MDN}, not {report_type!r}")
    parts = message.get_payload()
    if len(parts) not in (2, 3):
        raise ValueError(f"a report has 2 or 3 parts, this one has {len(parts)}")
    if parts[0].get_content_maintype() != "text":
        raise ValueError(f"first part must be human-readable text, not {parts[0].get_content_type()}")
    if parts[1].get_content_type() != f"message/{report_type}":
        raise ValueError(f"second part must be message/{report_type}, not {parts[1].get_content_type()}")
    groups = parts[1].get_payload()
    if not isinstance(groups, list) or not groups:
        raise ValueError(f"message/{report_type} part has no fields")
    returned = _returned_kind(parts[2]) if len(parts) == 3 else ""
    if report_type == DSN:
        return _read_dsn(groups, returned)
    return _read_mdn(groups[0], returned)


def _read_dsn(groups: list[Message], returned: str) -> Report:
    per_message, per_recipient = groups[0], groups[1:]
    reporting = _required(per_message, "Reporting-MTA")
    if not per_recipient:
        raise ValueError("a DSN needs at least one per-recipient group")
    recipients = []
    for group in per_recipient:
        action = _required(group, "Action").lower()
        if action not in ACTIONS:
            raise ValueError(f"Action must be one of {ACTIONS}, not {action!r}")
        status = _required(group, "Status").split(" ")[0]
        if not _STATUS.match(status):
            raise ValueError(f"Status is not an RFC 3463 code: {status!r}")
        diagnostic = _field(group, "Diagnostic-Code")
        recipients.append(
            RecipientReport(
                final_recipient=_address(_required(group, "Final-Recipient")),
                original_recipient=_address(_field(group, "Original-Recipient")),
                action=action,
                status=status,
                diagnostic=diagnostic.partition(";")[2].strip() if diagnostic else "",
                remote_mta=_field(group, "Remote-MTA").partition(";")[2].strip(),
            )
        )
    arrival = _field(per_message, "Arrival-Date")
    try:
        arrival_date = email.utils.parsedate_to_datetime(arrival) if arrival else None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Arrival-Date is not an RFC 5322 date: {arrival!r}") from exc
    return Report(
        report_type=DSN,
        reporting=reporting.partition(";")[2].strip(),
        recipients=tuple(recipients),
        returned=returned,
        envid=_field(per_message, "Original-Envelope-Id"),
        arrival=arrival_date,
    )


def _read_mdn(fields: Message, returned: str) -> Report:
    mode, _, rest = _required(fields, "Disposition").partition(";")
    mode = mode.replace(" ", "")
    if not _MODE.match(mode):
        raise ValueError(f"Disposition mode is not action-mode/sending-mode: {mode!r}")
    kind, _, modifier = rest.strip().partition("/")
    if kind.lower() not in DISPOSITION_TYPES:
        raise ValueError(f"Disposition type must be one of {DISPOSITION_TYPES}, not {kind!r}")
    if modifier and modifier.lower() != "error":
        raise ValueError(f"the only disposition modifier is error, not {modifier!r}")
    error = _field(fields, "Error")
    matched = _MES_ERROR.match(error)
    code, label = matched.groups() if matched else ("", error)
    recipient = RecipientReport(
        final_recipient=_address(_required(fields, "Final-Recipient")),
        original_recipient=_address(_field(fields, "Original-Recipient")),
    )
    return Report(
        report_type=MDN,
        reporting=_field(fields, "Reporting-UA").partition(";")[0].strip(),
        recipients=(recipient,),
        returned=returned,
        disposition_mode=mode,
        disposition=kind.lower(),
        disposition_modifier=modifier.lower(),
        original_message_id=_field(fields, "Original-Message-ID"),
        error_code=code,
        error_label=label,
    )


def _report(report_type: str, human: str, groups: list[Message], returned: Message | None) -> MIMEMultipart:
    """The multipart/report skeleton (RFC 6522): human text, machine fields, optionally the original."""
    report = MIMEMultipart("report", report_type=report_type, policy=SMTP)
    text = MIMEPart(policy=SMTP)
    text.set_content(human, cte="quoted-printable")
    machine = Message(policy=SMTP)
    machine["Content-Type"] = f"message/{report_type}"
    machine.set_payload(groups)
    report.attach(text)
    report.attach(machine)
    if returned is not None:
        report.attach(returned)
    report["Date"] = email.utils.format_datetime(datetime.now(UTC))
    return report


def _returned(original: bytes, full: bool) -> Message:
    """The original as message/rfc822 (RET=FULL) or its header block as text/rfc822-headers."""
    part = MIMEPart(policy=SMTP)
    if full:
        part.set_content(email.message_from_bytes(original, policy=SMTP))
        return part
    header_block = re.split(rb"\r?\n\r?\n", original, maxsplit=1)[0]
    part.set_content(header_block.decode("utf-8", "replace") + "\n", subtype="rfc822-headers")
    return part


def _returned_kind(part: Message) -> str:
    kinds = {"message/rfc822": "full", "text/rfc822-headers": "headers"}
    if part.get_content_type() not in kinds:
        raise ValueError(f"third part must be message/rfc822 or text/rfc822-headers, not {part.get_content_type()}")
    return kinds[part.get_content_type()]


def _fields(pairs: list[tuple[str, str]]) -> Message:
    """One block of report fields; empty values are the optional fields this report leaves out."""
    block = Message(policy=SMTP)
    for name, value in pairs:
        if value:
            block[name] = value
    return block


def _typed(address: str) -> str:
    """``address-type; address`` as DSN and MDN fields want it; a value that already has its type is kept."""
    return address if ";" in address else f"rfc822; {address}"


def _address(typed: str) -> str:
    if not typed:
        return ""
    kind, separator, address = typed.partition(";")
    if not separator or not kind.strip() or not address.strip():
        raise ValueError(f"recipient field is not address-type;address: {typed!r}")
    return address.strip()


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _required(block: Message, name: str) -> str:
    value = _field(block, name)
    if not value:
        raise ValueError(f"missing {name} field")
    return value
