"""INSi on behalf of a PSC-logged-in professional (profile ``psc-bearer``, our model of SC.INS/PSC.01).

The PSC access token rides on the organisation's mTLS connection as ``Authorization: Bearer``;
the INSi mock checks it with the PSC mock of the same host and journals whose call it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from insi_requests import CONTENT_TYPE, TRAITS, read_fault, traits_request

from segur.mocks import create_mocks
from segur.mocks.runtime.host import HostConfig, MockHost
from segur.pki import Pki

GENERALISTE = "899910000019"


@pytest.fixture(scope="module")
def insi_and_psc(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MockHost, dict]]:
    journal = Path(tmp_path_factory.mktemp("insi-psc")) / "journal.jsonl"
    host = MockHost(create_mocks(["insi", "psc"], pki), HostConfig(pki=pki, journal_path=journal))
    endpoints = host.start()
    try:
        yield host, endpoints
    finally:
        host.stop()


def psc_token(host: MockHost, *, lifetime: int = 120) -> str:
    """A real access token of the PSC mock, issued as after a completed login."""
    realm = host.services["psc"].realm
    realm.settings.token_lifetime = lifetime
    session = realm.login("segur-sut", GENERALISTE, "CARD", "openid scope_all", None)
    return realm.issue_tokens(session, realm.clients["segur-sut"]).body["access_token"]


def call_insi(endpoints: dict, insi_client, authorization: str | None) -> httpx.Response:
    headers = {"Content-Type": f'{CONTENT_TYPE}; action="urn:ServiceIdentiteCertifiee:1.0.0:{TRAITS}"'}
    if authorization:
        headers["Authorization"] = authorization
    body = traits_request("ADRUN", "ZOE", "F", "1975-12-31", "63220")
    return insi_client("insi-auto").post(endpoints["mocks"]["insi"]["endpoints"][0], content=body, headers=headers)


def last_record(host: MockHost) -> dict:
    return host.journal.since(host.journal.last_seq - 1)[-1]


def test_a_valid_psc_token_names_the_professional_in_the_journal(insi_and_psc, insi_client):
    host, endpoints = insi_and_psc
    response = call_insi(endpoints, insi_client, f"Bearer {psc_token(host)}")
    assert response.status_code == 200, response.text
    record = last_record(host)
    assert record["correlation"]["ps_national_id"] == GENERALISTE
    assert record["correlation"]["psc_profile"] == "psc-bearer"


def test_without_a_token_the_call_is_the_organisations_alone(insi_and_psc, insi_client):
    host, endpoints = insi_and_psc
    assert call_insi(endpoints, insi_client, None).status_code == 200
    assert "ps_national_id" not in last_record(host)["correlation"]


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [("Bearer pas-un-jwt", "unknown"), ("Basic c2VndXI6eA==", "not accepted")],
)
def test_bad_credentials_get_a_soap_fault(insi_and_psc, insi_client, authorization, reason):
    host, endpoints = insi_and_psc
    response = call_insi(endpoints, insi_client, authorization)
    assert response.status_code == 400
    assert read_fault(response.content).subcode == "desir_570"
    outcome = last_record(host)["outcome"]
    assert outcome.get("fault") == "desir_570" and reason in outcome["detail"]


def test_an_expired_psc_token_is_refused(insi_and_psc, insi_client):
    host, endpoints = insi_and_psc
    response = call_insi(endpoints, insi_client, f"Bearer {psc_token(host, lifetime=0)}")
    assert read_fault(response.content).subcode == "desir_570"
    assert "expired" in last_record(host)["outcome"]["detail"]
