"""CIBA (decoupled authentication on the professional's e-CPS or card) against the PSC mock, with plain httpx.

The professional's answer is the control API's ``ciba`` state or a fault. Waits follow the
interval the mock requires, measured on the monotonic clock from the previous answer, which
is what a well-behaved client does: no guessed sleeps, and tiny intervals keep the tests fast.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

pytestmark = pytest.mark.usefixtures("fresh_psc")

CIBA = "urn:openid:params:grant-type:ciba"
AUTH = ("segur-sut", "segur-sut-secret")
PHARMACIST = "899910000035"


def start(psc, http: httpx.Client, **form: str) -> dict[str, Any]:
    data = {"login_hint": PHARMACIST, "binding_message": "42", "scope": "openid scope_all", **form}
    response = http.post(psc.endpoint("/ext/ciba/auth"), data=data, auth=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def poll(psc, http: httpx.Client, auth_req_id: str) -> httpx.Response:
    return http.post(psc.endpoint("/token"), data={"grant_type": CIBA, "auth_req_id": auth_req_id}, auth=AUTH)


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


class Poller:
    """Polls no faster than the interval, counted from the previous answer (so the mock sees at least that)."""

    def __init__(self, psc, http: httpx.Client, auth_req_id: str, interval: float) -> None:
        self.psc, self.http, self.auth_req_id, self.interval = psc, http, auth_req_id, interval
        self.answered: float | None = None

    def __call__(self) -> httpx.Response:
        if self.answered is not None:
            remaining = self.answered + self.interval - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        response = poll(self.psc, self.http, self.auth_req_id)
        self.answered = time.monotonic()
        return response


def test_pending_polls_then_tokens(psc_mock, psc_http):
    psc_mock.seed({"ciba": {"interval": 0.05, "pending_polls": 2, "outcome": "accept"}})
    http = psc_http()
    seq = psc_mock.last_seq()
    started = start(psc_mock, http, channel="CARD", acr_values="eidas1")
    assert started["interval"] == 0.05
    assert started["expires_in"] == 120
    next_poll = Poller(psc_mock, http, started["auth_req_id"], started["interval"])
    assert error_of(next_poll()) == (400, "authorization_pending")
    assert error_of(next_poll()) == (400, "authorization_pending")
    tokens = next_poll()
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    keys = KeySet.import_key_set(http.get(psc_mock.endpoint("/certs")).json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert (id_token["acr"], id_token["authMode"], id_token["preferred_username"]) == ("eidas1", "CARD", PHARMACIST)
    assert id_token["aud"] == "segur-sut"
    assert "nonce" not in id_token
    userinfo = http.get(psc_mock.endpoint("/userinfo"), headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.json()["SubjectNameID"] == PHARMACIST
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "invalid_grant"), "auth_req_id is spent"

    records = psc_mock.journal_since(seq)
    assert [record["operation"] for record in records[:4]] == ["ciba_auth", "token", "token", "token"]
    assert records[0]["correlation"] == {
        "client_id": "segur-sut",
        "client_auth": "client_secret_basic",
        "national_id": PHARMACIST,
        "binding_message": "42",
        "acr_values": "eidas1",
    }
    assert records[0]["outcome"]["channel"] == "CARD"
    polls = records[1:4]
    assert polls[0]["outcome"]["since_last_poll"] is None
    assert [record["outcome"].get("error") for record in polls] == ["authorization_pending"] * 2 + [None]
    assert all(record["outcome"]["since_last_poll"] >= 0.05 for record in polls[1:])
    assert all(record["outcome"]["interval"] == 0.05 for record in polls)
    assert polls[2]["correlation"]["grant_type"] == CIBA
    assert polls[2]["correlation"]["national_id"] == PHARMACIST
    assert polls[2]["outcome"]["refresh_token_issued"] is True


def test_polling_too_fast_answers_slow_down_and_the_interval_grows(psc_mock, psc_http):
    psc_mock.seed({"ciba": {"interval": 5}})
    http = psc_http()
    seq = psc_mock.last_seq()
    started = start(psc_mock, http)
    assert started["interval"] == 5
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "authorization_pending")
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "slow_down")
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "slow_down")
    polls = [record for record in psc_mock.journal_since(seq) if record["operation"] == "token"]
    assert [record["outcome"]["interval"] for record in polls] == [5, 5, 10]
    assert [record["outcome"].get("next_interval") for record in polls] == [None, 10, 15]
    assert all(record["outcome"]["since_last_poll"] < 5 for record in polls[1:])


def test_injected_slow_down_then_the_grown_interval_is_required(psc_mock, psc_http):
    """Fault ``ciba_slow_down``: the next poll answers slow_down although on time, and the interval grows by 5 s."""
    psc_mock.seed({"ciba": {"interval": 0, "pending_polls": 0}})
    psc_mock.fault("ciba_slow_down", operation="token")
    http = psc_http()
    seq = psc_mock.last_seq()
    started = start(psc_mock, http)
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "slow_down")
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "slow_down"), "5 s not waited"
    polls = [record for record in psc_mock.journal_since(seq) if record["operation"] == "token"]
    first = polls[0]["outcome"]
    assert (first["error"], first["injected"], first["interval"], first["next_interval"]) == (
        "slow_down",
        "ciba_slow_down",
        0,
        5,
    )
    assert "injected" not in polls[1]["outcome"]
    assert polls[1]["outcome"]["interval"] == 5


@pytest.mark.parametrize(
    ("state", "fault", "error"),
    [
        pytest.param({"outcome": "refuse"}, None, "access_denied", id="refused-in-state"),
        pytest.param({}, "ciba_refused", "access_denied", id="fault-refused"),
        pytest.param({"outcome": "expire"}, None, "expired_token", id="expired-in-state"),
        pytest.param({}, "ciba_expired", "expired_token", id="fault-expired"),
        pytest.param({"expires_in": 0}, None, "expired_token", id="expires-in-0"),
    ],
)
def test_refused_or_expired_authentication(psc_mock, psc_http, state, fault, error):
    psc_mock.seed({"ciba": {"interval": 0, "pending_polls": 0, **state}})
    if fault:
        psc_mock.fault(fault)
    http = psc_http()
    seq = psc_mock.last_seq()
    started = start(psc_mock, http)
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, error)
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, error), "the answer stays final"
    records = psc_mock.journal_since(seq)
    assert records[1]["outcome"]["error"] == error
    if fault:
        assert records[0]["outcome"]["injected"] == fault
        assert records[1]["outcome"]["injected"] == fault
        assert psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json()["pending_faults"] == []


def test_ciba_outcome_read_when_the_professional_answers(psc_mock, psc_http):
    """The phone's answer may come after the request: the state at the deciding poll counts."""
    psc_mock.seed({"ciba": {"interval": 0, "pending_polls": 1}})
    http = psc_http()
    started = start(psc_mock, http)
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "authorization_pending")
    psc_mock.seed({"ciba": {"outcome": "refuse"}})
    assert error_of(poll(psc_mock, http, started["auth_req_id"])) == (400, "access_denied")
