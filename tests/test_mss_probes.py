"""The MSSanté mock's security probes, met by real clients: a careful one refuses, a careless one is seen going on.

Each probe is set through the control API and applies to the same smtp/imap ports; every probed
session ends in one ``probe-session`` journal record. The CRL listener serves the test CA's CRL.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import json
import smtplib
import ssl
import time
import warnings
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography import x509

from segur.journal import read_journal
from segur.mocks.mss.probes import WEAK_SUITES
from segur.mocks.runtime.host import MockHost
from segur.pki import CERTIFICATES, Pki, ensure_pki

GP_BAL = "generaliste.medecin-test@cabinet-test.mssante.fr"
SECRET = "mot-de-passe-en-clair"
TLS_PROBES = ["tls-legacy", "weak-ciphers", "expired-certificate", "revoked-certificate"]


@pytest.fixture(autouse=True)
def fresh(host: MockHost) -> None:
    host.services["mss"].reset()


def control(host: MockHost, state: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{host.endpoints()['control']}/mocks/mss/state", json=state)


def ports(host: MockHost) -> tuple[int, int]:
    smtp_url, imap_url = host.endpoints()["mocks"]["mss"]["endpoints"][:2]
    return int(smtp_url.rsplit(":", 1)[1]), int(imap_url.rsplit(":", 1)[1])


def careful(pki: Pki) -> ssl.SSLContext:
    """What a conforming SUT uses: TLS 1.2 minimum, the test CA, the CRL checked for the server certificate."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(pki.crl))
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def careless(pki: Pki, kind: str) -> ssl.SSLContext:
    """Accepts the probe: old versions and any suite, no certificate check (or, for revocation, no CRL)."""
    if kind == "revoked-certificate":
        return ssl.create_default_context(cafile=str(pki.ca_cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def xoauth2_attempt(client: smtplib.SMTP) -> None:
    """Send a (bogus) bearer token, then the empty line ending XOAUTH2's error challenge."""
    bogus = base64.b64encode(b"user=x\x01auth=Bearer not-a-token\x01\x01").decode()
    if client.docmd("AUTH", "XOAUTH2 " + bogus)[0] == 334:
        client.docmd("")


def sessions(host: MockHost, since: int, count: int) -> list[dict[str, Any]]:
    """The ``probe-session`` outcomes after ``since``: written when the server sees the close, so waited for."""
    deadline = time.monotonic() + 5
    while True:
        found = [r["outcome"] for r in host.journal.since(since, mock="mss") if r["operation"] == "probe-session"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def skip_unservable(kind: str) -> None:
    if kind == "tls-legacy" and not (ssl.HAS_TLSv1 or ssl.HAS_TLSv1_1):
        pytest.skip(f"{ssl.OPENSSL_VERSION} cannot serve TLS 1.0/1.1")


@pytest.mark.parametrize("kind", TLS_PROBES)
def test_a_careful_client_refuses_each_tls_probe_on_both_ports(host, pki, kind) -> None:
    skip_unservable(kind)
    assert control(host, {"probe": kind}).json()["probe"] == kind
    smtp_port, imap_port = ports(host)
    before = host.journal.last_seq
    with pytest.raises(ssl.SSLError), smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as client:
        client.starttls(context=careful(pki))
    imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=5)
    with pytest.raises(ssl.SSLError):
        imap.starttls(ssl_context=careful(pki))
    with contextlib.suppress(OSError):  # imaplib closed the socket when the handshake failed
        imap.shutdown()
    found = sessions(host, before, 2)
    assert sorted(s["protocol"] for s in found) == ["imap", "smtp"]
    for session in found:
        assert session["probe"] == kind and session["handshake_refused"] and not session["went_on"], session
        assert session["commands"][-1] == "STARTTLS" and session["tls"] == {}


@pytest.mark.parametrize("kind", TLS_PROBES)
def test_a_careless_client_goes_on_and_the_journal_shows_it(host, pki, kind) -> None:
    skip_unservable(kind)
    control(host, {"probe": kind})
    smtp_port, imap_port = ports(host)
    before = host.journal.last_seq
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as client:
        client.starttls(context=careless(pki, kind))
        client.ehlo()
        xoauth2_attempt(client)
    imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=5)
    imap.starttls(ssl_context=careless(pki, kind))
    with pytest.raises(imaplib.IMAP4.error):
        imap.authenticate("XOAUTH2", lambda _: b"user=x\x01auth=Bearer not-a-token\x01\x01")
    imap.logout()
    for session in sessions(host, before, 2):
        assert session["went_on"] and not session["handshake_refused"] and session["tls"], session
    smtp_session, imap_session = sorted(sessions(host, before, 2), key=lambda s: s["protocol"], reverse=True)
    assert "AUTH" in smtp_session["commands"] and "AUTHENTICATE" in imap_session["commands"]
    if kind == "tls-legacy":
        assert smtp_session["tls"]["version"] in ("TLSv1", "TLSv1.1")
    if kind == "weak-ciphers":
        assert smtp_session["tls"]["version"] == "TLSv1.2"
        assert smtp_session["tls"]["cipher"] in WEAK_SUITES.split(":")


def test_implicit_tls_a_starttls_client_gets_no_banner_and_a_tls_first_client_is_seen(host, pki) -> None:
    control(host, {"probe": "implicit-tls"})
    smtp_port, imap_port = ports(host)
    before = host.journal.last_seq
    with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
        smtplib.SMTP("127.0.0.1", smtp_port, timeout=0.5)
    with pytest.raises((TimeoutError, imaplib.IMAP4.abort)):
        imaplib.IMAP4("127.0.0.1", imap_port, timeout=0.5)
    refused = sessions(host, before, 2)
    assert all(s["probe"] == "implicit-tls" and s["handshake_refused"] and not s["commands"] for s in refused)
    before = host.journal.last_seq
    with smtplib.SMTP_SSL("127.0.0.1", smtp_port, context=careful(pki), timeout=5) as client:
        client.ehlo()
        assert client.has_extn("auth") and not client.has_extn("starttls")
        xoauth2_attempt(client)
    imap = imaplib.IMAP4_SSL("127.0.0.1", imap_port, ssl_context=careful(pki), timeout=5)
    assert "AUTH=XOAUTH2" in imap.capabilities
    imap.logout()
    smtp_session, imap_session = sorted(sessions(host, before, 2), key=lambda s: s["protocol"], reverse=True)
    assert smtp_session["went_on"] and smtp_session["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert imap_session["tls"] and not imap_session["went_on"]


def test_plain_auth_a_careful_client_leaves_and_credentials_in_clear_are_journaled_redacted(host) -> None:
    control(host, {"probe": "plain-auth"})
    smtp_port, imap_port = ports(host)
    before = host.journal.last_seq
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("starttls") and "PLAIN" in client.esmtp_features["auth"]
    imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=5)
    assert "STARTTLS" not in imap.capabilities and "LOGINDISABLED" not in imap.capabilities
    imap.logout()
    assert all(not s["went_on"] and not s["credentials_sent"] for s in sessions(host, before, 2))
    before = host.journal.last_seq
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        client.login(GP_BAL, SECRET)
    imap = imaplib.IMAP4("127.0.0.1", imap_port, timeout=5)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(GP_BAL, SECRET)
    imap.logout()
    found = sorted(sessions(host, before, 2), key=lambda s: s["protocol"], reverse=True)
    assert [(s["credentials_sent"], s["went_on"]) for s in found] == [(["PLAIN", "LOGIN"], True), (["LOGIN"], True)]
    plain = base64.b64encode(f"\0{GP_BAL}\0{SECRET}".encode()).decode()
    for record in read_journal(host.config.journal_path):
        assert SECRET not in json.dumps(record) and plain not in json.dumps(record), record["operation"]


def test_the_control_api_sets_shows_refuses_and_resets_the_probe(host) -> None:
    assert control(host, {"probe": "weak-ciphers"}).status_code == 200
    state = httpx.get(f"{host.endpoints()['control']}/mocks/mss/state").json()
    assert state["probe"] == "weak-ciphers"
    assert control(host, {"probe": "sslv2"}).status_code == 400
    assert control(host, {"probe": None}).json()["probe"] is None
    control(host, {"probe": "plain-auth", "crl": "unavailable"})
    assert httpx.post(f"{host.endpoints()['control']}/reset").status_code == 200
    state = httpx.get(f"{host.endpoints()['control']}/mocks/mss/state").json()
    assert (state["probe"], state["crl"]) == (None, "available")


def revoked_serials(pki: Pki) -> set[int]:
    """The serials of the PKI's ``revoked`` certificates (the probe's server, the DMP's signer): the CRL's content."""
    names = [spec.name for spec in CERTIFICATES if spec.status == "revoked"]
    assert names == ["server-revoked", "sign-revoked"]
    return {x509.load_pem_x509_certificate(pki.cert(name).read_bytes()).serial_number for name in names}


def test_the_crl_lists_the_revoked_certificate_only_and_can_be_made_unavailable(host, pki) -> None:
    url = host.endpoints()["mocks"]["mss"]["endpoints"][2]
    assert url.startswith("http://") and url.endswith("/crl/test-ca.crl")
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(answer.content)
    assert {entry.serial_number for entry in crl} == revoked_serials(pki)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert crl.is_signature_valid(ca.public_key()) and crl.next_update_utc > crl.last_update_utc
    assert x509.load_pem_x509_crl(httpx.get(url.replace(".crl", ".pem")).content) == crl
    control(host, {"crl": "unavailable"})
    assert httpx.get(url).status_code == 503


def test_a_pki_generated_before_the_probes_is_completed_by_the_same_ca(tmp_path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    ca = pki.ca_cert.read_bytes()
    for name in ("server-expired", "server-revoked", "sign-revoked"):
        for path in (pki.cert(name), pki.key(name), pki.pkcs12(name)):
            path.unlink()
    pki.crl.unlink()
    pki.crl_der.unlink()
    ensure_pki(pki.directory)
    assert pki.ca_cert.read_bytes() == ca
    expired = x509.load_pem_x509_certificate(pki.cert("server-expired").read_bytes())
    assert expired.not_valid_after_utc < datetime.now(UTC)
    assert {entry.serial_number for entry in x509.load_der_x509_crl(pki.crl_der.read_bytes())} == revoked_serials(pki)
