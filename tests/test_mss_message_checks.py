"""Checks on a submitted MSSanté message: a correct one passes, each mutation is caught with its rule and exigence."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from dmp_requests import DOMINIQUE, ZOE
from test_mss_xdm import build_xdm, patient_cx

from segur.mss import patient_of_message, validate_mss_message
from segur.validation import Finding

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PDF_NAME = "20261120_Lettre_de_liaison_ADRTROIS_DOMINIQUE.pdf"
SUBJECT = "XDM/1.0/DDM+Lettre de liaison à la sortie d'un établissement de soins ADRTROIS DOMINIQUE 12/05/1982"
HEADERS = {
    "From": "hospitalier.medecin-test@ch-test.mssante.fr",
    "To": "generaliste.medecin-test@cabinet-test.mssante.fr",
    "Subject": SUBJECT,
    "Message-ID": "<20261120103000.42@ch-test.mssante.fr>",
    "Disposition-Notification-To": "hospitalier.medecin-test@ch-test.mssante.fr",
    "X-MSS-NIL": "DEV935997",
    "X-MSS-CODECDA": "11490-0",
    "X-MSS-INS": "O",
}
PATIENT = f"{DOMINIQUE}@patient.mssante.fr"


def message(attachments: list[tuple[str, str, bytes]] | None = None, **headers: str | None) -> bytes:
    """A correct message to a GP about DOMINIQUE; ``headers`` replace (None removes) the defaults."""
    email = EmailMessage()
    for name, value in {**HEADERS, **{k.replace("_", "-"): v for k, v in headers.items()}}.items():
        if value is not None:
            email[name] = value
    email.set_content("Bonjour,\nveuillez trouver la lettre de liaison de votre patient.\n")
    if attachments is None:
        attachments = [("IHE_XDM.ZIP", "application/zip", build_xdm()), (PDF_NAME, "application/pdf", PDF)]
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return email.as_bytes()


def errors(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, f.requirement) for f in findings if f.severity == "error"}


def test_a_correct_message_has_no_error() -> None:
    findings = validate_mss_message(message(), ins_qualified=True, expect_mdn=True)
    assert [f for f in findings if f.severity == "error"] == []
    assert patient_of_message(message()) == DOMINIQUE


def test_a_message_without_document_needs_only_nil_and_a_message_id() -> None:
    raw = message([], Subject="Question", X_MSS_CODECDA=None, X_MSS_INS=None)
    assert errors(validate_mss_message(raw, ins_qualified=True)) == set()
    assert patient_of_message(raw) is None


def test_a_message_to_mon_espace_sante_with_fin_passes() -> None:
    raw = message(To=PATIENT, X_MSS_MES="FIN")
    assert errors(validate_mss_message(raw, ins_qualified=True, block_patient_reply=True)) == set()


ZIP = ("IHE_XDM.ZIP", "application/zip", build_xdm())
PDF_PART = (PDF_NAME, "application/pdf", PDF)


@pytest.mark.parametrize(
    ("mutation", "options", "expected"),
    [
        ({"X_MSS_NIL": None}, {}, ("MSS-NIL", "SC.MSS/CONF.16")),
        ({"X_MSS_NIL": "DEV 935997"}, {}, ("MSS-NIL", "SC.MSS/CONF.16")),
        ({"X_MSS_CODECDA": None}, {}, ("MSS-CODECDA", "SC.MSS/CONF.15")),
        ({"X_MSS_CODECDA": "34112-3"}, {}, ("MSS-CODECDA", "SC.MSS/CONF.15")),
        ({"X_MSS_CODECDA": "11490-0^2.16.840.1.113883.6.1"}, {}, ("MSS-CODECDA", "SC.MSS/CONF.15")),
        ({"X_MSS_INS": None}, {}, ("MSS-INS", "SC.MSS/CONF.14")),
        ({"X_MSS_INS": "N"}, {"ins_qualified": True}, ("MSS-INS", "SC.MSS/CONF.14")),
        ({"X_MSS_INS": "O"}, {"ins_qualified": False}, ("MSS-INS", "SC.MSS/CONF.14")),
        ({"X_MSS_INS": "Oui"}, {}, ("MSS-INS", "SC.MSS/CONF.14")),
        ({"X_MSS_INS": f"O; {ZOE}"}, {}, ("MSS-INS-MISMATCH", "SC.MSS/CONF.14")),
        ({"To": PATIENT}, {"block_patient_reply": True}, ("MSS-MES", "SC.MSS/CONF.21")),
        ({"To": PATIENT, "X_MSS_MES": "fin"}, {}, ("MSS-MES", "SC.MSS/CONF.21")),
        ({"X_MSS_MES": "FIN"}, {}, ("MSS-MES", "SC.MSS/CONF.21")),
        ({"Subject": "Lettre de liaison ADRTROIS DOMINIQUE"}, {}, ("MSS-SUBJECT", "SC.MSS/CONF.25")),
        ({"Subject": SUBJECT.replace("ADRTROIS", "DUPONT")}, {}, ("MSS-SUBJECT", "SC.MSS/CONF.25")),
        ({"Subject": SUBJECT.replace("12/05/1982", "1982-05-12")}, {}, ("MSS-SUBJECT-DATE", "SC.MSS/CONF.25")),
        ({"Message_ID": None}, {}, ("MSS-MIME-MESSAGE-ID", "MSS/PROV.03")),
        ({"Message_ID": "20261120.42@ch-test"}, {}, ("MSS-MIME-MESSAGE-ID", "MSS/PROV.03")),
        ({"Disposition_Notification_To": None}, {"expect_mdn": True}, ("MSS-MDN", "MSS/UX.33")),
    ],
)
def test_each_header_mutation_is_caught(mutation: dict, options: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in errors(validate_mss_message(message(**mutation), **options))


@pytest.mark.parametrize(
    ("attachments", "expected"),
    [
        ([ZIP, ZIP, PDF_PART], ("MSS-XDM-COUNT", "SC.MSS/CONF.23")),
        ([ZIP], ("MSS-PDF-ABSENT", "SC.MSS/CONF.23")),
        (
            [(*ZIP[:2], build_xdm(patient_id=patient_cx(ZOE), set_patient_id=patient_cx(ZOE))), PDF_PART],
            ("XDM-PATIENT-CDA", "SC.MSS/CONF.23"),
        ),
        ([ZIP, ("compte rendu.pdf", "application/pdf", PDF)], ("MSS-PDF-NAME", "MSS/PROV.02")),
        ([ZIP, ("2026-11-20_LDL_ADRTROIS_DOMINIQUE.pdf", "application/pdf", PDF)], ("MSS-PDF-NAME", "MSS/PROV.02")),
        ([ZIP, ("20261120_LDL_DUPONT_DOMINIQUE.pdf", "application/pdf", PDF)], ("MSS-PDF-NAME", "MSS/PROV.02")),
        ([ZIP, (PDF_NAME, "application/pdf", b"not a pdf")], ("MSS-PDF-CONTENT", "SC.MSS/CONF.23")),
        ([(*ZIP[:2], build_xdm(hash="0" * 40)), PDF_PART], ("XDM-HASH", "MSS/PROV.01")),
        ([(*ZIP[:2], b"PK\x03\x04 truncated"), PDF_PART], ("XDM-ZIP-CORRUPT", "MSS/PROV.01")),
    ],
)
def test_each_attachment_mutation_is_caught(attachments: list, expected: tuple[str, str]) -> None:
    assert expected in errors(validate_mss_message(message(attachments)))


def test_x_mss_headers_without_an_archive_are_refused() -> None:
    findings = errors(validate_mss_message(message([PDF_PART])))
    assert {("MSS-CODECDA", "SC.MSS/CONF.15"), ("MSS-INS", "SC.MSS/CONF.14")} <= findings
    assert ("MSS-SUBJECT", "SC.MSS/CONF.25") in findings


def test_a_missing_fin_is_a_warning_when_the_reply_choice_is_unknown() -> None:
    findings = validate_mss_message(message(To=PATIENT))
    assert [(f.rule, f.severity) for f in findings if f.rule == "MSS-MES"] == [("MSS-MES", "warning")]


def test_the_subject_label_may_be_truncated_or_count_documents() -> None:
    truncated = "XDM/1.0/DDM+Lettre de liaison a la sortie d'un etabl ADRTROIS DOMINIQUE 12/05/1982"
    assert validate_mss_message(message(Subject=truncated), ins_qualified=True) == []
    wrong = "XDM/1.0/DDM+Ordonnance ADRTROIS DOMINIQUE 12/05/1982"
    assert [f.rule for f in validate_mss_message(message(Subject=wrong))] == ["MSS-SUBJECT-LABEL"]


def _raw_text_part(content_type: str, body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items() if not name.startswith("X-MSS-C"))
    head = head.replace(SUBJECT, "Question").replace("X-MSS-INS: O\r\n", "")
    return (
        f"{head}MIME-Version: 1.0\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("content_type", "body", "rule"),
    [
        ("text/plain", b"Bonjour", "MSS-MIME-CHARSET"),
        ("text/plain; charset=iso-8859-1", "Réponse".encode("latin-1"), "MSS-MIME-CHARSET"),
        ("text/plain; charset=utf-8", b"R\xe9ponse \xff", "MSS-MIME-UTF8"),
    ],
)
def test_text_parts_must_declare_and_be_utf8(content_type: str, body: bytes, rule: str) -> None:
    assert errors(validate_mss_message(_raw_text_part(content_type, body))) == {(rule, "MSS/PROV.03")}


def test_the_raw_builder_gives_a_clean_baseline() -> None:
    assert errors(validate_mss_message(_raw_text_part("text/plain; charset=utf-8", "Réponse".encode()))) == set()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff garbage without headers",
        b'Content-Type: multipart/mixed; boundary="b"\r\nMessage-ID: <a@b>\r\n\r\n--b\r\nContent-Type: text/plain\r\n',
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all",
        b'To: <<<@@@>>>, "unterminated\r\nSubject: =?utf-8?q?=FF?=\r\nX-MSS-NIL: A\r\n\r\nbody',
        message()[: len(message()) // 2],
    ],
)
def test_malformed_mime_gives_findings_never_exceptions(raw: bytes) -> None:
    findings = validate_mss_message(raw, expect_mdn=True, ins_qualified=True)
    assert any(f.severity == "error" for f in findings)
    patient_of_message(raw)
