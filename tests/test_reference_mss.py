"""The reference SUT's MSSanté feature against the real MSSanté and PSC mocks: each rule holds, each defect breaks it.

Messages are read back from the mock's journal (what the operator received) and judged by the
harness's own checker, segur.mss.validate_mss_message, which must find no error in a compliant one.
"""

from __future__ import annotations

import itertools
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from segur.ins import ins_key
from segur.journal import payload
from segur.mocks.runtime.faults import FaultRule
from segur.mocks.runtime.host import MockHost
from segur.mss import read_xdm, validate_mss_message
from segur.pki import Pki
from segur.reference_sut.errors import ActionError
from segur.reference_sut.software import IdentitySoftware

GP, DOCTOR = "899910000019", "899910000027"
GP_BAL = "generaliste.medecin-test@cabinet-test.mssante.fr"
DPI_BAL = "dpi@hopital-test.mssante.fr"
BALS = {
    "bal_applicative": DPI_BAL,
    "bal_personnelles": {DOCTOR: "hospitalier.medecin-test@hopital-test.mssante.fr", GP: GP_BAL},
}
ZOE = {
    "nom_naissance": "ADRUN",
    "prenoms": "ZOE",
    "sexe": "F",
    "date_naissance": "1975-12-31",
    "lieu_naissance": "63220",
}
ZOE_INS = "2751263220749" + ins_key("2751263220749")
HL7 = "{urn:hl7-org:v3}"


@pytest.fixture(autouse=True)
def fresh(host: MockHost) -> None:
    host.services["mss"].reset()
    host.services["psc"].seed({"ciba": {"interval": 0.01, "pending_polls": 0, "outcome": "accept"}})


_dirs = itertools.count()


def software(host: MockHost, pki: Pki, tmp_path: Path, profile: str = "dpi", *defects: str) -> IdentitySoftware:
    """A configured SUT (configure shaped like the harness's) with ZOE registered and qualified."""
    data_dir = tmp_path / f"sut{next(_dirs)}"
    data_dir.mkdir()
    sut = IdentitySoftware(profile, defects, "1.0.0", data_dir=data_dir)
    endpoints = host.endpoints()["mocks"]
    smtp_url, imap_url, crl_url = endpoints["mss"]["endpoints"][:3]
    sut.configure(
        {
            "services": {
                "insi": {"url": "https://127.0.0.1:9/insi"},
                "psc": {
                    "discovery_url": endpoints["psc"]["endpoints"][0] + "/.well-known/wallet-openid-configuration",
                    "client_id": "segur-sut",
                    "client_secret": "segur-sut-secret",
                },
                "dmp": {
                    "url": "https://127.0.0.1:9/dmp",
                    "ins_oid_mapping": {"1.2.250.1.213.1.4.8": "1.2.250.1.213.1.4.10"},
                },
                "mss": {"smtp_url": smtp_url, "imap_url": imap_url, "crl_url": crl_url, "timeout": 5, **BALS},
            },
            "pki": pki.describe(),
        }
    )
    return sut


def zoe(sut: IdentitySoftware, qualified: bool = True) -> str:
    patient_id = sut.register_patient({"traits": ZOE})["patient_id"]
    patient = sut.patients[patient_id]
    patient.ins = {"matricule": ZOE_INS[:13], "cle": ZOE_INS[13:], "oid": "1.2.250.1.213.1.4.8"}
    patient.statut = "qualifiee" if qualified else "recuperee"
    return patient_id


def login(sut: IdentitySoftware, national_id: str = GP) -> None:
    assert sut.login_ps({"mode": "ciba", "national_id": national_id})["connecte"]


def records(host: MockHost, since: int, operation: str | None = None) -> list[dict[str, Any]]:
    found = host.journal.since(since, mock="mss")
    return [r for r in found if operation is None or r["operation"] == operation]


def submitted(host: MockHost, since: int) -> list[bytes]:
    return [payload(r, "request") for r in records(host, since, "smtp-submission")]


def errors(raw: bytes, **options: Any) -> set[tuple[str, str]]:
    return {(f.rule, f.requirement) for f in validate_mss_message(raw, **options) if f.severity == "error"}


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


def cda_of(raw: bytes) -> etree._Element:
    archive = next(p for p in parse(raw).iter_attachments() if p.get_filename() == "IHE_XDM.ZIP")
    (document,) = read_xdm(archive.get_payload(decode=True)).documents.values()
    return etree.fromstring(document)


# -- sending ---------------------------------------------------------------------------------------


def test_a_dpi_without_ps_sends_from_its_applicative_bal_with_the_auth_cli_certificate(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path)
    patient_id, since = zoe(sut), host.journal.last_seq
    result = sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL, "accuse_lecture": True})
    assert result["statut"] == "envoye" and result["erreur"] is None
    assert result["sujet"].startswith("XDM/1.0/DDM+Lettre de liaison") and result["sujet"].endswith("ZOE 31/12/1975")
    (auth,) = records(host, since, "smtp-auth")
    assert auth["outcome"]["mechanism"] == "EXTERNAL" and auth["correlation"]["certificate_cn"].endswith("AUTH_CLI")
    assert not records(host, since, "smtp-plaintext")
    (raw,) = submitted(host, since)
    assert errors(raw, ins_qualified=True, expect_mdn=True, block_patient_reply=False) == set()
    assert b"X-MSS-INS: O" in raw and b"X-MSS-CODECDA: 11490-0" in raw and b"Disposition-Notification-To" in raw
    assert sut.get_patient({"patient_id": patient_id})["messages_mss"] == [result]


def test_a_ps_writes_to_the_patient_with_xoauth2_and_forbids_the_reply(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path, "lgc")
    patient_id = zoe(sut)
    login(sut)
    since = host.journal.last_seq
    result = sut.send_mss_message({"patient_id": patient_id, "destinataire": "patient", "bloquer_reponse": True})
    assert (result["statut"], result["destinataire"]) == ("envoye", f"{ZOE_INS}@patient.mssante.fr")
    (auth,) = records(host, since, "smtp-auth")
    assert (auth["outcome"]["mechanism"], auth["correlation"]["national_id"]) == ("XOAUTH2", GP)
    (raw,) = submitted(host, since)
    assert errors(raw, ins_qualified=True, block_patient_reply=True) == set()
    assert b"X-MSS-MES: FIN" in raw and b"From: " + GP_BAL.encode() in raw
    token = sut.psc.session.access_token.encode()
    assert all(token not in path.read_bytes() for path in sut.data_dir.rglob("*") if path.is_file())


def test_an_lgc_without_ps_session_has_no_mailbox(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path, "lgc")
    with pytest.raises(ActionError) as refused:
        sut.send_mss_message({"patient_id": zoe(sut), "destinataire": GP_BAL})
    assert refused.value.code == "mss_no_session"


def test_an_identity_not_qualified_travels_without_ins_and_with_x_mss_ins_n(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path)
    patient_id, since = zoe(sut, qualified=False), host.journal.last_seq
    assert sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL})["statut"] == "envoye"
    (raw,) = submitted(host, since)
    assert b"X-MSS-INS: N" in raw and ZOE_INS.encode() not in raw
    assert not {finding for finding in errors(raw, ins_qualified=False) if finding[0].startswith("MSS-")}
    with pytest.raises(ActionError):
        sut.send_mss_message({"patient_id": patient_id, "destinataire": "patient"})


@pytest.mark.parametrize(
    ("defect", "params", "options", "expected"),
    [
        ("mss-no-nil", {}, {}, ("MSS-NIL", "SC.MSS/CONF.16")),
        ("mss-no-codecda", {}, {}, ("MSS-CODECDA", "SC.MSS/CONF.15")),
        ("mss-ins-o-unqualified", {}, {"ins_qualified": False}, ("MSS-INS", "SC.MSS/CONF.14")),
        ("mss-no-fin", {"destinataire": "patient", "bloquer_reponse": True}, {"block_patient_reply": True},
         ("MSS-MES", "SC.MSS/CONF.21")),
        ("mss-bad-subject", {}, {}, ("MSS-SUBJECT", "SC.MSS/CONF.25")),
        ("mss-two-patients", {}, {}, ("MSS-XDM-COUNT", "SC.MSS/CONF.23")),
        ("mss-no-mdn-request", {"accuse_lecture": True}, {"expect_mdn": True}, ("MSS-MDN", "MSS/UX.33")),
        ("mss-xdm-bad-hash", {}, {}, ("XDM-HASH", "MSS/PROV.01")),
        ("mss-xdm-cda-missing-trait", {}, {}, ("XDM-CDA:CDA-SM-024", "MSS/PROV.01")),
    ],
)  # fmt: skip
def test_each_header_defect_is_caught_by_the_harness_checker(host, pki, tmp_path, defect, params, options, expected):
    sut = software(host, pki, tmp_path, "dpi", defect)
    patient_id, since = zoe(sut, qualified=options.get("ins_qualified", True)), host.journal.last_seq
    sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL, **params})
    (raw,) = submitted(host, since)
    assert expected in errors(raw, **options)


def test_auth_before_starttls_is_refused_by_the_operator(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path, "lgc", "mss-auth-before-starttls")
    patient_id = zoe(sut)
    login(sut)
    since = host.journal.last_seq
    assert sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL})["statut"] == "envoye"
    (plaintext,) = records(host, since, "smtp-plaintext")
    assert payload(plaintext, "request").startswith(b"AUTH XOAUTH2")


def test_the_applicative_bal_refuses_the_signature_certificate(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path, "dpi", "mss-app-wrong-certificate")
    result = sut.send_mss_message({"patient_id": zoe(sut), "destinataire": GP_BAL})
    assert result["statut"] == "en_erreur" and result["erreur"].startswith("535")


def test_the_token_on_disk_defect_leaves_it_in_the_data_dir(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path, "lgc", "mss-token-on-disk")
    patient_id = zoe(sut)
    login(sut)
    sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL})
    assert sut.psc.session.access_token in (sut.data_dir / "mss-session.json").read_text()


# -- errors, resending, annule et remplace ----------------------------------------------------------


def fault(host: MockHost, status: int, count: int) -> None:
    mss = host.services["mss"]
    mss.faults.add(
        FaultRule.from_json(
            {"kind": "smtp_reply", "operation": "mail", "status": status, "count": count}, mss.fault_kinds
        )
    )


def test_a_4xx_is_retried_three_times_then_kept_and_resent(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path)
    patient_id = zoe(sut)
    fault(host, 451, 3)
    started = time.monotonic()
    kept = sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL})
    assert kept["statut"] == "en_attente" and kept["erreur"].startswith("451") and time.monotonic() - started < 5
    fault(host, 554, 1)
    failed = sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL})
    assert failed["statut"] == "en_erreur" and failed["erreur"].startswith("554")
    statuses = [m["statut"] for m in sut.get_patient({"patient_id": patient_id})["messages_mss"]]
    assert statuses == ["en_attente", "en_erreur"]
    since = host.journal.last_seq
    resent = sut.resend_mss_messages({"patient_id": patient_id})["messages"]
    assert [m["statut"] for m in resent] == ["envoye", "envoye"]
    assert {m["message_id"] for m in resent} == {kept["message_id"], failed["message_id"]}
    assert len(submitted(host, since)) == 2


def test_the_drop_defect_forgets_a_failed_message(host, pki, tmp_path) -> None:
    sut = software(host, pki, tmp_path, "dpi", "mss-drops-failed-message")
    patient_id = zoe(sut)
    fault(host, 554, 1)
    assert sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL})["statut"] == "abandonne"
    assert sut.resend_mss_messages({})["messages"] == []


@pytest.mark.parametrize("defect", [None, "mss-replace-as-new"])
def test_annule_et_remplace_sends_the_next_version_of_the_document(host, pki, tmp_path, defect) -> None:
    sut = software(host, pki, tmp_path, "dpi", *filter(None, [defect]))
    patient_id, since = zoe(sut), host.journal.last_seq
    first = sut.send_mss_message({"patient_id": patient_id, "destinataire": GP_BAL})
    second = sut.replace_mss_message({"patient_id": patient_id, "message_id": first["message_id"]})
    assert second["statut"] == "envoye" and second["message_id"] != first["message_id"]
    before, after = (cda_of(raw) for raw in submitted(host, since))
    assert errors(submitted(host, since)[1], ins_qualified=True) == set()
    parent = after.find(f"{HL7}relatedDocument[@typeCode='RPLC']/{HL7}parentDocument/{HL7}id")
    same_set = before.find(f"{HL7}setId").get("root") == after.find(f"{HL7}setId").get("root")
    if defect:
        assert parent is None and not same_set
    else:
        assert parent.get("root") == before.find(f"{HL7}id").get("root") and same_set
        assert after.find(f"{HL7}versionNumber").get("value") == "2"


# -- receiving ---------------------------------------------------------------------------------------


def sent_to_gp(host: MockHost, pki: Pki, tmp_path: Path, **params: Any) -> dict[str, Any]:
    """The DPI writes to the GP about ZOE."""
    sender = software(host, pki, tmp_path)
    return sender.send_mss_message({"patient_id": zoe(sender), "destinataire": GP_BAL, **params})


def test_the_gp_reads_the_message_files_it_under_the_metadata_patient_and_answers_the_mdn(host, pki, tmp_path):
    sent = sent_to_gp(host, pki, tmp_path, accuse_lecture=True)
    reader = software(host, pki, tmp_path, "lgc")
    patient_id = zoe(reader)
    login(reader)
    since = host.journal.last_seq
    (read,) = reader.read_mss_mailbox({})["messages"]
    assert read["message_id"] == sent["message_id"] and read["expediteur"] == DPI_BAL
    assert read["sujet"] == sent["sujet"].removeprefix("XDM/1.0/DDM+")
    assert (read["patient_ins"], read["patient_id"], read["documents"]) == (ZOE_INS, patient_id, 1)
    assert read["integre"] and read["mdn_envoye"]
    (mdn,) = submitted(host, since)
    report = parse(mdn)
    assert (report.get_content_type(), report.get_param("report-type")) == (
        "multipart/report",
        "disposition-notification",
    )
    assert f"Original-Message-ID: {sent['message_id']}".encode() in mdn and b"X-MSS-NIL" in mdn
    assert reader.read_mss_mailbox({})["messages"] == []  # marked \Seen
    assert len(records(host, since, "imap-authenticate")) == 1  # one session kept open across reads


@pytest.mark.parametrize("defect", ["mss-patient-from-subject", "mss-shows-xdm-prefix"])
def test_receiving_defects(host, pki, tmp_path, defect) -> None:
    sent = sent_to_gp(host, pki, tmp_path)
    reader = software(host, pki, tmp_path, "lgc", defect)
    local = reader.register_patient({"traits": ZOE})["patient_id"]  # ZOE known here without INS
    login(reader)
    (read,) = reader.read_mss_mailbox({})["messages"]
    if defect == "mss-shows-xdm-prefix":
        assert read["sujet"] == sent["sujet"] and read["patient_ins"] == ZOE_INS and read["patient_id"] is None
    else:
        assert (read["patient_ins"], read["patient_id"]) == (None, local)


# -- session rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("defect", [None, "mss-keeps-session"])
def test_logout_closes_the_imap_session(host, pki, tmp_path, defect) -> None:
    reader = software(host, pki, tmp_path, "lgc", *filter(None, [defect]))
    login(reader)
    reader.read_mss_mailbox({})
    since = host.journal.last_seq
    reader.logout_ps({})
    logouts = records(host, since, "imap-logout")
    assert len(logouts) == (0 if defect else 1)
    assert (reader.mss.imap is None) is (defect is None)


@pytest.mark.parametrize("defect", [None, "mss-no-reconnect"])
def test_an_expired_session_is_reopened_once_with_a_fresh_token(host, pki, tmp_path, defect) -> None:
    sent_to_gp(host, pki, tmp_path)
    reader = software(host, pki, tmp_path, "lgc", *filter(None, [defect]))
    login(reader)
    reader.read_mss_mailbox({})  # opens the session (and reads the message)
    sent_to_gp(host, pki, tmp_path)
    imap = host.services["mss"].imap
    late = iter([time.time() + 3600])
    imap.clock = lambda: next(late, None) or time.time()  # the token expires, once, for the kept session
    since = host.journal.last_seq
    try:
        result = reader.read_mss_mailbox({})
    finally:
        imap.clock = time.time
    if defect:
        assert result["messages"] == [] and "EXPIRED" in result["erreur"]
    else:
        assert len(result["messages"]) == 1 and len(records(host, since, "imap-authenticate")) == 1
        assert reader.psc.session.refreshes == 1
