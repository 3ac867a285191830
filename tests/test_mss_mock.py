"""The MSSanté mock in a host beside the PSC mock: real PSC tokens, real clients, receipts, control API, journal."""

from __future__ import annotations

import base64
import datetime as dt
import imaplib
import json
import shutil
import smtplib
import ssl
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest

from segur.ins import ins_key
from segur.journal import payload, read_journal
from segur.mocks.mss.receipts import parse_report
from segur.mocks.runtime.host import MockHost
from segur.mss.compose import Patient, incoming_message
from segur.pki import Pki

GENERALISTE = "899910000019"
GP_BAL = "generaliste.medecin-test@cabinet-test.mssante.fr"
DOCTOR_BAL = "hospitalier.medecin-test@hopital-test.mssante.fr"
PATIENT_BAL = f"2751263220749{ins_key('2751263220749')}@patient.mssante.fr"


@pytest.fixture(autouse=True)
def fresh(host: MockHost) -> None:
    host.services["mss"].reset()


def psc_token(host: MockHost, national_id: str = GENERALISTE) -> str:
    realm = host.services["psc"].realm
    session = realm.login("segur-sut", national_id, "CARD", "openid scope_all", None)
    return realm.issue_tokens(session, realm.clients["segur-sut"]).body["access_token"]


def ports(host: MockHost) -> tuple[int, int]:
    smtp_url, imap_url = host.endpoints()["mocks"]["mss"]["endpoints"][:2]
    return int(smtp_url.rsplit(":", 1)[1]), int(imap_url.rsplit(":", 1)[1])


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def tls(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_cert))


def letter(sender: str, recipient: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, "Compte rendu"
    message["Message-ID"] = "<cr-1@cabinet-test.mssante.fr>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Bonjour, voici le compte rendu.")
    return message


def submit(host: MockHost, pki: Pki, message: EmailMessage, token: str, **options: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", ports(host)[0], timeout=10) as client:
        client.starttls(context=tls(pki))
        client.ehlo()
        code, _ = client.docmd("AUTH", "XOAUTH2 " + base64.b64encode(xoauth2(message["From"], token)).decode())
        assert code == 235
        client.send_message(message, **options)


def inbox(host: MockHost, pki: Pki, address: str, token: str) -> list[bytes]:
    client = imaplib.IMAP4("127.0.0.1", ports(host)[1], timeout=10)
    try:
        client.starttls(ssl_context=tls(pki))
        client.authenticate("XOAUTH2", lambda _: xoauth2(address, token))
        client.select("INBOX", readonly=True)
        _, numbers = client.search(None, "ALL")
        bodies = []
        for number in numbers[0].split():
            _, data = client.fetch(number, "(BODY.PEEK[])")
            bodies.append(data[0][1])
        return bodies
    finally:
        client.logout()


def test_a_professional_writes_to_a_colleague_who_reads_it_over_imap_with_a_psc_token(host, pki) -> None:
    submit(host, pki, letter(GP_BAL, DOCTOR_BAL), psc_token(host))
    (received,) = inbox(host, pki, DOCTOR_BAL, psc_token(host, "899910000027"))
    assert b"voici le compte rendu" in received and b"Message-ID: <cr-1@cabinet-test.mssante.fr>" in received


def test_a_patient_mailbox_answers_the_mdn_and_the_operator_the_dsn(host, pki) -> None:
    zoe = Patient(PATIENT_BAL.partition("@")[0], "ADRUN", "ZOE", dt.date(1975, 12, 31))
    message = message_from_bytes(incoming_message(GP_BAL, PATIENT_BAL, zoe), policy=policy.default)
    message["Disposition-Notification-To"] = GP_BAL
    submit(host, pki, message, psc_token(host), rcpt_options=["NOTIFY=SUCCESS,FAILURE"], mail_options=["ENVID=Env-1"])
    reports = [parse_report(raw) for raw in inbox(host, pki, GP_BAL, psc_token(host))]
    by_type = {report.report_type: report for report in reports}
    assert set(by_type) == {"delivery-status", "disposition-notification"}
    assert by_type["delivery-status"].envid == "Env-1"
    assert by_type["delivery-status"].recipients[0].action == "delivered"
    mdn = by_type["disposition-notification"]
    assert (mdn.original_message_id, mdn.disposition, mdn.error_code) == (message["Message-ID"], "processed", "")


def test_mon_espace_sante_answers_an_error_mdn_to_a_message_it_cannot_integrate(host, pki) -> None:
    submit(host, pki, letter(GP_BAL, PATIENT_BAL, Disposition_Notification_To=GP_BAL), psc_token(host))
    (mdn,) = [parse_report(raw) for raw in inbox(host, pki, GP_BAL, psc_token(host))]
    assert (mdn.disposition_modifier, mdn.error_code) == ("error", "903")


def test_a_closed_patient_mailbox_bounces_as_a_dsn(host, pki) -> None:
    closed = f"2840663220213{ins_key('2840663220213')}@patient.mssante.fr"
    submit(host, pki, letter(GP_BAL, closed), psc_token(host))
    (bounce,) = [parse_report(raw) for raw in inbox(host, pki, GP_BAL, psc_token(host))]
    assert (bounce.recipients[0].action, bounce.recipients[0].status) == ("failed", "5.2.1")


def test_the_control_api_seeds_a_mailbox_that_real_clients_then_use(host, pki) -> None:
    control = host.endpoints()["control"]
    seeded = httpx.post(
        f"{control}/mocks/mss/state",
        json={"bals": [{"address": "nouveau.medecin@cabinet-test.mssante.fr", "owners": [GENERALISTE]}]},
    )
    assert seeded.status_code == 200, seeded.text
    submit(host, pki, letter(GP_BAL, "nouveau.medecin@cabinet-test.mssante.fr"), psc_token(host))
    assert len(inbox(host, pki, "nouveau.medecin@cabinet-test.mssante.fr", psc_token(host))) == 1
    refused = httpx.post(f"{control}/mocks/mss/state", json={"bals": [{"address": "x@y.mssante.fr", "kind": "BAL"}]})
    assert refused.status_code == 400


def test_every_exchange_is_journaled_without_the_token(host, pki) -> None:
    token, reader = psc_token(host), psc_token(host, "899910000027")
    before = host.journal.last_seq
    submit(host, pki, letter(GP_BAL, DOCTOR_BAL), token)
    inbox(host, pki, DOCTOR_BAL, reader)
    records = host.journal.since(before, mock="mss")
    operations = [record["operation"] for record in records]
    assert {"smtp-auth", "smtp-submission", "imap-authenticate", "imap-fetch"} <= set(operations)
    sasl = base64.b64encode(xoauth2(GP_BAL, token))
    for record in read_journal(host.config.journal_path):
        seen = payload(record, "request") + payload(record, "response") + json.dumps(record).encode()
        assert token.encode() not in seen and reader.encode() not in seen and sasl not in seen, record["operation"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_sends_and_reads_with_starttls_and_a_bearer_token(host, pki, tmp_path) -> None:
    smtp_port, imap_port = ports(host)
    token = psc_token(host)
    mail = tmp_path / "mail.eml"
    mail.write_bytes(bytes(letter(GP_BAL, DOCTOR_BAL)))
    common = ["curl", "--silent", "--show-error", "--ssl-reqd", "--cacert", str(pki.ca_cert), "--oauth2-bearer"]
    sent = subprocess.run(
        [
            *common,
            token,
            "--user",
            GP_BAL,
            f"smtp://127.0.0.1:{smtp_port}",
            "--mail-from",
            GP_BAL,
            "--mail-rcpt",
            DOCTOR_BAL,
            "--upload-file",
            str(mail),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr
    read = subprocess.run(
        [*common, psc_token(host, "899910000027"), "--user", DOCTOR_BAL, f"imap://127.0.0.1:{imap_port}/INBOX;UID=1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    assert "voici le compte rendu" in read.stdout


def test_the_control_api_delivers_a_colleagues_message_that_imap_then_serves(host, pki) -> None:
    control = host.endpoints()["control"]
    message = bytes(letter(GP_BAL, DOCTOR_BAL)).decode("ascii")
    delivered = httpx.post(f"{control}/mocks/mss/state", json={"deliver": [{"to": DOCTOR_BAL, "message": message}]})
    assert delivered.status_code == 200, delivered.text
    (received,) = inbox(host, pki, DOCTOR_BAL, psc_token(host, "899910000027"))
    assert b"voici le compte rendu" in received
    unknown = httpx.post(
        f"{control}/mocks/mss/state", json={"deliver": [{"to": "personne@hopital-test.mssante.fr", "message": "x"}]}
    )
    assert unknown.status_code == 400 and "no mailbox" in unknown.text
