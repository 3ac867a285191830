"""DSN and MDN of the MSSanté mock: what they carry survives build → parse, and malformed reports are refused."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.policy import default

import pytest

from segur.mocks.mss.receipts import (
    MES_ERRORS,
    RecipientStatus,
    build_dsn,
    build_mdn,
    parse_report,
)

SENDER = "hospitalier.medecin-test@hopital-test.mssante.fr"
PATIENT = "275126322074974@patient.mssante.fr"
COLLEAGUE = "generaliste.medecin-test@cabinet-test.mssante.fr"
ORIGINAL = (
    f"From: Dr Hospitalier <{SENDER}>\r\nTo: {PATIENT}\r\n"
    "Subject: Compte rendu d'hospitalisation\r\nMessage-ID: <cr-1@hopital-test.mssante.fr>\r\n"
    f"Original-Recipient: rfc822; {PATIENT}\r\n"
    f"Disposition-Notification-To: Dr Hospitalier <{SENDER}>\r\n\r\nCORPS-CONFIDENTIEL du message.\r\n"
).encode()
ARRIVAL = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)
FAILED = RecipientStatus(
    COLLEAGUE,
    "failed",
    "5.1.1",
    "550 5.1.1 BAL inconnue",
    orcpt=f"rfc822;{COLLEAGUE}",
    remote_mta="mx.cabinet-test.mssante.fr",
)
DELIVERED = RecipientStatus(PATIENT, "delivered", "2.0.0")


def dsn(recipients: list[RecipientStatus] | None = None, **options) -> bytes:
    return build_dsn(SENDER, recipients or [FAILED, DELIVERED], ORIGINAL, arrival=ARRIVAL, **options)


def parts_of(raw: bytes) -> tuple[email.message.EmailMessage, list[str]]:
    message = email.message_from_bytes(raw, policy=default)
    return message, [part.get_content_type() for part in message.iter_parts()]


def test_dsn_round_trip_carries_every_field():
    report = parse_report(dsn(envid="ENV-42", ret="FULL"))
    assert (report.report_type, report.reporting, report.envid) == ("delivery-status", "mss-mock.localhost", "ENV-42")
    assert report.arrival == ARRIVAL
    failed, delivered = report.recipients
    assert (failed.final_recipient, failed.original_recipient) == (COLLEAGUE, COLLEAGUE)
    assert (failed.action, failed.status, failed.diagnostic) == ("failed", "5.1.1", "550 5.1.1 BAL inconnue")
    assert failed.remote_mta == "mx.cabinet-test.mssante.fr"
    assert (delivered.final_recipient, delivered.action, delivered.status) == (PATIENT, "delivered", "2.0.0")
    assert (delivered.original_recipient, delivered.diagnostic) == ("", "")


def test_dsn_is_a_multipart_report_from_the_mailer_daemon():
    message, types = parts_of(dsn(ret="FULL"))
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert types == ["text/plain", "message/delivery-status", "message/rfc822"]
    assert message["From"] == "MAILER-DAEMON@mss-mock.localhost"
    assert message["To"] == SENDER
    assert message["Subject"] == "Delivery Status Notification (Failure)"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Message-ID"] and message["Date"]


def test_ret_full_returns_the_whole_original():
    message, _ = parts_of(dsn(ret="full"))
    returned = list(message.iter_parts())[2].get_content()
    assert returned["Message-ID"] == "<cr-1@hopital-test.mssante.fr>"
    assert "CORPS-CONFIDENTIEL" in returned.get_content()
    assert parse_report(dsn(ret="FULL")).returned == "full"


@pytest.mark.parametrize("ret", ["HDRS", ""])
def test_ret_hdrs_and_absent_return_headers_only(ret):
    raw = dsn(ret=ret)
    message, types = parts_of(raw)
    assert types[2] == "text/rfc822-headers"
    headers = list(message.iter_parts())[2].get_content()
    assert "Message-ID: <cr-1@hopital-test.mssante.fr>" in headers
    assert b"CORPS-CONFIDENTIEL" not in raw
    assert parse_report(raw).returned == "headers"


def test_success_dsn_returns_headers_even_with_ret_full():
    report = parse_report(dsn([DELIVERED], ret="FULL"))
    assert report.returned == "headers"
    assert email.message_from_bytes(dsn([DELIVERED]), policy=default)["Subject"].endswith("(Success)")


def test_delayed_dsn_subject():
    delayed = RecipientStatus(COLLEAGUE, "delayed", "4.4.1", "421 4.4.1 pas de réponse")
    assert "(Delay)" in email.message_from_bytes(dsn([delayed]), policy=default)["Subject"]


def test_envid_and_orcpt_are_left_out_when_not_given():
    raw = dsn([DELIVERED])
    fields = list(email.message_from_bytes(raw, policy=default).iter_parts())[1].as_string()
    assert "Original-Envelope-Id" not in fields and "Original-Recipient" not in fields
    report = parse_report(raw)
    assert (report.envid, report.recipients[0].original_recipient) == ("", "")


def test_human_part_is_utf8_french_and_english():
    message, _ = parts_of(dsn())
    text = next(message.iter_parts())
    assert text.get_content_charset() == "utf-8"
    assert f"Message à {COLLEAGUE}" in text.get_content()
    assert f"Message to {COLLEAGUE}: failed" in text.get_content()


@pytest.mark.parametrize(
    ("recipients", "options", "reason"),
    [
        ([], {}, "at least one recipient"),
        ([RecipientStatus(PATIENT, "bounced", "5.0.0")], {}, "Action"),
        ([RecipientStatus(PATIENT, "failed", "550")], {}, "Status"),
        ([DELIVERED], {"ret": "BODY"}, "RET"),
    ],
)
def test_dsn_refuses_invalid_input(recipients, options, reason):
    with pytest.raises(ValueError, match=reason):
        build_dsn(SENDER, recipients, ORIGINAL, **options)


def test_mdn_processed_round_trip():
    raw = build_mdn(ORIGINAL, reporter=PATIENT)
    message, types = parts_of(raw)
    assert message.get_param("report-type") == "disposition-notification"
    assert types == ["text/plain", "message/disposition-notification", "text/rfc822-headers"]
    assert message["To"] == SENDER
    assert message["Subject"] == "Accusé de réception: Compte rendu d'hospitalisation"
    assert message["Auto-Submitted"] == "auto-replied"
    report = parse_report(raw)
    assert (report.report_type, report.reporting) == ("disposition-notification", "patient.mssante.fr")
    assert report.disposition_mode == "automatic-action/MDN-sent-automatically"
    assert (report.disposition, report.disposition_modifier, report.error_code) == ("processed", "", "")
    assert report.original_message_id == "<cr-1@hopital-test.mssante.fr>"
    assert report.recipients[0].final_recipient == PATIENT
    assert report.recipients[0].original_recipient == PATIENT
    assert report.returned == "headers"


def test_mdn_displayed_is_sent_manually():
    raw = build_mdn(ORIGINAL, reporter=PATIENT, disposition="displayed", manual=True, include_headers=False)
    message, types = parts_of(raw)
    assert types == ["text/plain", "message/disposition-notification"]
    assert message["Auto-Submitted"] is None
    report = parse_report(raw)
    assert (report.disposition_mode, report.disposition) == ("manual-action/MDN-sent-manually", "displayed")
    assert report.returned == ""


def test_mes_errors_are_the_codes_900_to_906_with_ascii_labels():
    assert sorted(MES_ERRORS) == [str(code) for code in range(900, 907)]
    assert all(label.isascii() for label in MES_ERRORS.values())


@pytest.mark.parametrize("code", sorted(MES_ERRORS))
def test_every_mes_error_produces_an_mdn_that_parses_back(code):
    raw = build_mdn(ORIGINAL, reporter=PATIENT, error=code)
    assert b"processed/Error" in raw
    report = parse_report(raw)
    assert (report.disposition, report.disposition_modifier) == ("processed", "error")
    assert (report.error_code, report.error_label) == (code, MES_ERRORS[code])
    text = next(email.message_from_bytes(raw, policy=default).iter_parts()).get_content()
    assert MES_ERRORS[code] in text


@pytest.mark.parametrize(
    ("original", "options", "reason"),
    [
        (ORIGINAL.replace(b"Disposition-Notification-To", b"X-Other"), {}, "Disposition-Notification-To"),
        (ORIGINAL, {"error": "999"}, "unknown Mon espace sant"),
        (ORIGINAL, {"disposition": "read"}, "disposition must be"),
    ],
)
def test_mdn_refuses_invalid_input(original, options, reason):
    with pytest.raises(ValueError, match=reason):
        build_mdn(original, reporter=PATIENT, **options)


def mutated(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert old in raw
    return raw.replace(old, new, 1)


DSN_RAW = dsn(envid="ENV-42", ret="FULL")
MDN_RAW = build_mdn(ORIGINAL, reporter=PATIENT, error="903")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (ORIGINAL, "not a multipart/report"),
        (mutated(DSN_RAW, b"multipart/report", b"multipart/mixed"), "not a multipart/report"),
        (mutated(DSN_RAW, b'report-type="delivery-status"', b'report-type="feedback-report"'), "report-type"),
        (mutated(DSN_RAW, b"Content-Type: message/delivery-status", b"Content-Type: text/plain"), "second part"),
        (mutated(DSN_RAW, b"Reporting-MTA", b"X-Reporting"), "missing Reporting-MTA"),
        (mutated(DSN_RAW, b"Final-Recipient", b"X-Final"), "missing Final-Recipient"),
        (mutated(DSN_RAW, b"Action: failed", b"Action: bounced"), "Action must be"),
        (mutated(DSN_RAW, b"Status: 5.1.1", b"Status: 550"), "RFC 3463"),
        (mutated(DSN_RAW, b"Arrival-Date: Tue, 04 Mar 2025", b"Arrival-Date: 04/03/2025"), "Arrival-Date"),
        (mutated(DSN_RAW, b"Final-Recipient: rfc822; ", b"Final-Recipient: "), "address-type;address"),
        (mutated(DSN_RAW, b"Content-Type: message/rfc822", b"Content-Type: application/pdf"), "third part"),
        (DSN_RAW[: DSN_RAW.rindex(b"--=")], "malformed MIME"),
        (mutated(MDN_RAW, b"automatic-action/MDN-sent-automatically", b"sometimes"), "Disposition mode"),
        (mutated(MDN_RAW, b"processed/Error", b"read/Error"), "Disposition type"),
        (mutated(MDN_RAW, b"processed/Error", b"processed/warning"), "modifier"),
        (mutated(MDN_RAW, b"Disposition:", b"X-Disposition:"), "missing Disposition"),
    ],
)
def test_malformed_reports_are_refused(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_report(raw)
