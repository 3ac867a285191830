"""The harness's own incoming messages pass the harness's checks, and can name another patient in the subject."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

from segur.ins import ins_key
from segur.mss import patient_of_message, read_xdm, validate_mss_message
from segur.mss.compose import Patient, incoming_message

ZOE = Patient("2751263220749" + ins_key("2751263220749"), "ADRUN", "ZOE", dt.date(1975, 12, 31))
LOUIS = Patient("1850275056014" + ins_key("1850275056014"), "DUPONT", "LOUIS", dt.date(1985, 2, 2), "M")
SENDER = "hospitalier.medecin-test@hopital-test.mssante.fr"
RECIPIENT = "generaliste.medecin-test@cabinet-test.mssante.fr"


def test_a_composed_message_passes_every_message_and_archive_check() -> None:
    raw = incoming_message(SENDER, RECIPIENT, ZOE)
    assert validate_mss_message(raw, ins_qualified=True) == []
    assert patient_of_message(raw) == ZOE.ins


def test_the_subject_can_name_another_patient_than_the_archive() -> None:
    raw = incoming_message(SENDER, RECIPIENT, ZOE, subject_patient=LOUIS)
    subject = message_from_bytes(raw, policy=policy.default)["Subject"]
    assert subject.startswith("XDM/1.0/DDM+") and subject.endswith("DUPONT LOUIS 02/02/1985")
    assert patient_of_message(raw) == ZOE.ins
    (attachment,) = [
        part
        for part in message_from_bytes(raw, policy=policy.default).iter_attachments()
        if part.get_filename() == "IHE_XDM.ZIP"
    ]
    assert read_xdm(attachment.get_content()).patient_id == f"{ZOE.ins}^^^&1.2.250.1.213.1.4.10&ISO^NH"
