"""The MSSanté operator's mailboxes and SASL decisions, before any wire: who opens which BAL, what delivery refuses."""

from __future__ import annotations

import time

import pytest

from segur.ins import ins_key
from segur.mocks.mss.auth import AuthRefused, MssAuthenticator
from segur.mocks.mss.mailboxes import (
    PATIENT_DOMAIN,
    PATIENT_MAX_MESSAGE_BYTES,
    MailboxDirectory,
    Undeliverable,
    bal_from_json,
    patient_bal_from_json,
)

HOSPITAL_DOCTOR = "899910000027"
DOCTOR_BAL = "hospitalier.medecin-test@hopital-test.mssante.fr"
SECRETARIAT = "secretariat.cardiologie@hopital-test.mssante.fr"
DOMINIQUE = "182052A004123" + ins_key("182052A004123")


def tokens(**national_ids: str):
    """A PSC introspection stand-in: ``token -> national id``; anything else is inactive."""

    def introspect(token: str) -> dict:
        if token not in national_ids:
            return {"active": False}
        return {"active": True, "SubjectNameID": national_ids[token], "exp": int(time.time()) + 120}

    return introspect


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


@pytest.fixture
def directory() -> MailboxDirectory:
    return MailboxDirectory.default()


def test_the_seeded_directory_has_every_kind_and_patient_addresses_carry_the_ins_key(
    directory: MailboxDirectory,
) -> None:
    kinds = {bal["kind"] for bal in directory.snapshot()["bals"]}
    assert kinds == {"PER", "ORG", "APP", "PAT"}
    patient = directory.find(f"{DOMINIQUE}@{PATIENT_DOMAIN}")
    assert patient is not None and patient.max_message_bytes == PATIENT_MAX_MESSAGE_BYTES
    assert directory.find(DOCTOR_BAL.upper()) is directory.find(DOCTOR_BAL)
    assert directory.serves(f"x@{PATIENT_DOMAIN}") and directory.serves("x@hopital-test.mssante.fr")
    assert not directory.serves("x@autre-operateur.mssante.fr")


def test_delivery_files_in_the_inbox_and_refuses_unknown_closed_and_oversized(directory: MailboxDirectory) -> None:
    bal = directory.deliver(DOCTOR_BAL, b"Subject: test\r\n\r\nbonjour\r\n")
    assert [message.uid for message in bal.folders["INBOX"].messages] == [1]
    with pytest.raises(Undeliverable) as unknown:
        directory.deliver("personne@hopital-test.mssante.fr", b"x")
    assert (unknown.value.code, unknown.value.status) == (550, "5.1.1")
    with pytest.raises(Undeliverable) as closed:
        directory.deliver("fermee.medecin-test@cabinet-test.mssante.fr", b"x")
    assert closed.value.status == "5.2.1"
    with pytest.raises(Undeliverable, match="minor") as minor:
        directory.deliver(f"2100175123456{ins_key('2100175123456')}@{PATIENT_DOMAIN}", b"x")
    assert minor.value.status == "5.7.1"
    with pytest.raises(Undeliverable) as large:
        directory.deliver(f"{DOMINIQUE}@{PATIENT_DOMAIN}", b"x" * (PATIENT_MAX_MESSAGE_BYTES + 1))
    assert (large.value.code, large.value.status) == (552, "5.2.3")


def test_expunge_announces_sequence_numbers_highest_first_and_uids_are_never_reused(
    directory: MailboxDirectory,
) -> None:
    inbox = directory.find(DOCTOR_BAL).folders["INBOX"]
    for number in range(4):
        inbox.append(f"Subject: {number}\r\n\r\n".encode())
    inbox.messages[1].flags.add("\\Deleted")
    inbox.messages[3].flags.add("\\Deleted")
    assert inbox.expunge() == [4, 2]
    assert [message.uid for message in inbox.messages] == [1, 3]
    assert inbox.append(b"Subject: again\r\n\r\n").uid == 5


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"address": "x@y.mssante.fr", "kind": "BAL"}, "kind"),
        ({"address": "x@y.mssante.fr", "kind": "APP"}, "certificate_cn"),
        ({"address": "pas-une-adresse", "kind": "PER"}, "not a mailbox address"),
        ({"address": "x@y.mssante.fr", "state": "suspended"}, "open or closed"),
        ({"address": "x@y.mssante.fr", "owner": "1"}, "unknown BAL fields"),
    ],
)
def test_seeding_refuses_what_it_does_not_understand(entry: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        bal_from_json(entry)


def test_a_patient_mailbox_needs_a_valid_ins() -> None:
    assert patient_bal_from_json({"ins": DOMINIQUE}).address == f"{DOMINIQUE}@{PATIENT_DOMAIN}"
    with pytest.raises(ValueError, match="valid key"):
        patient_bal_from_json({"ins": DOMINIQUE[:13] + "00"})


def test_xoauth2_opens_the_professionals_own_and_delegated_bals_only(directory: MailboxDirectory) -> None:
    authenticator = MssAuthenticator(directory, tokens(good=HOSPITAL_DOCTOR, pharmacist="899910000035"))
    own = authenticator.xoauth2(xoauth2(DOCTOR_BAL, "good"))
    assert (own.mechanism, own.address, own.national_id) == ("XOAUTH2", DOCTOR_BAL, HOSPITAL_DOCTOR)
    assert own.token_expires is not None and own.token_expires > time.time()
    assert authenticator.xoauth2(xoauth2(SECRETARIAT, "good")).address == SECRETARIAT
    with pytest.raises(AuthRefused, match="neither owns nor is delegated") as other:
        authenticator.xoauth2(xoauth2(DOCTOR_BAL, "pharmacist"))
    assert b'"status": "403"' in other.value.challenge


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (xoauth2(DOCTOR_BAL, "expired-or-unknown"), "inactive"),
        (xoauth2("personne@hopital-test.mssante.fr", "good"), "no mailbox"),
        (xoauth2("fermee.medecin-test@cabinet-test.mssante.fr", "good"), "closed"),
        (f"user={DOCTOR_BAL}\x01auth=Bearer good\x01".encode(), "must end"),
        (f"user={DOCTOR_BAL}\x01auth=Basic abc\x01\x01".encode(), "auth=Bearer"),
        ("user=é\x01auth=Bearer good\x01\x01".encode(), "not ASCII"),
    ],
)
def test_xoauth2_refusals_carry_the_json_challenge(directory: MailboxDirectory, response: bytes, reason: str) -> None:
    with pytest.raises(AuthRefused, match=reason) as refused:
        MssAuthenticator(directory, tokens(good=HOSPITAL_DOCTOR)).xoauth2(response)
    assert refused.value.challenge is not None and b'"schemes": "bearer"' in refused.value.challenge


def test_xoauth2_without_a_psc_mock_is_refused(directory: MailboxDirectory) -> None:
    with pytest.raises(AuthRefused, match="no PSC mock"):
        MssAuthenticator(directory, None).xoauth2(xoauth2(DOCTOR_BAL, "good"))


def test_external_opens_the_applicative_bal_of_the_certificate_only(directory: MailboxDirectory) -> None:
    authenticator = MssAuthenticator(directory, None)
    peer = {"cn": "HOPITAL TEST SEGUR AUTH_CLI"}
    assert authenticator.external(peer, "").address == "dpi@hopital-test.mssante.fr"
    assert authenticator.external(peer, "DPI@hopital-test.mssante.fr").mechanism == "EXTERNAL"
    with pytest.raises(AuthRefused, match="client certificate"):
        authenticator.external({}, "")
    with pytest.raises(AuthRefused, match="no applicative BAL"):
        authenticator.external({"cn": "INSI-AUTO"}, "")
    with pytest.raises(AuthRefused, match="no applicative BAL"):
        authenticator.external(peer, DOCTOR_BAL)
