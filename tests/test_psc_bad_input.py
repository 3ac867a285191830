"""Bad input and injected faults at the PSC mock: the right OAuth error, quickly, and journaled.

Each refusal must be an OAuth 2.0 error (``{"error", "error_description"}``, 400 or 401 as
Keycloak answers) or, where a browser is at the other end, an HTML page - never a stack
trace, never a hang (the client gives up after 5 s) - and its exchange must be in the journal
with the error in its outcome. The ID-token faults are checked the way a SUT would notice
them: with joserfc and authlib's ID-token rules.
"""

from __future__ import annotations

import base64
import html
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError
from joserfc.jwk import KeySet, OctKey, RSAKey

from segur.mocks.psc.realm import pkce_s256

pytestmark = pytest.mark.usefixtures("fresh_psc")

REDIRECT = "https://sut.segur.test/psc/retour"
LOGOUT_REDIRECT = "https://sut.segur.test/psc/deconnecte"
GP = "899910000019"
BASIC = ("segur-sut", "segur-sut-secret")
VERIFIER = "verificateur-pkce-de-test-" + "x" * 40
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def http(psc_mock, psc_http) -> httpx.Client:
    psc_mock.seed(
        {
            "clients": [
                {"client_id": cid, "redirect_uris": [REDIRECT], "post_logout_redirect_uris": [LOGOUT_REDIRECT]}
                for cid in ("segur-sut", "segur-sut-post", "segur-sut-jwt", "segur-sut-mtls")
            ]
        }
    )
    return psc_http()


def authorize_url(psc, **params: str) -> str:
    query = {
        "response_type": "code",
        "client_id": "segur-sut",
        "redirect_uri": REDIRECT,
        "scope": "openid scope_all",
        "state": "etat-1",
        "nonce": "nonce-1",
        "acr_values": "eidas1",
        "code_challenge": pkce_s256(VERIFIER),
        "code_challenge_method": "S256",
        **params,
    }
    return psc.authorization_endpoint + "?" + urlencode({k: v for k, v in query.items() if v is not None})


def get_code(psc, http: httpx.Client, **params: str) -> str:
    psc.seed({"next_login": {"national_id": GP, "means": "CARD", "outcome": "accept"}})
    response = http.get(authorize_url(psc, **params))
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


def code_flow(psc, http: httpx.Client) -> dict[str, Any]:
    code = get_code(psc, http)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    response = http.post(psc.endpoint("/token"), data=form, auth=BASIC)
    assert response.status_code == 200, response.text
    return response.json()


def journaled(psc, seq: int, operation: str) -> dict[str, Any]:
    """The last record of ``operation`` after ``seq``: every exchange is journaled before its answer."""
    records = [record for record in psc.journal_since(seq) if record["operation"] == operation]
    assert records, f"no {operation} record after seq {seq}"
    return records[-1]


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert "Traceback" not in response.text


def location_query(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)


# --- token endpoint ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        pytest.param({"grant_type": "password", "username": "x"}, 400, "unsupported_grant_type", id="unknown-grant"),
        pytest.param({}, 400, "invalid_request", id="missing-grant-type"),
        pytest.param({"grant_type": "authorization_code"}, 400, "invalid_request", id="missing-code"),
        pytest.param({"grant_type": "authorization_code", "code": "x"}, 400, "invalid_grant", id="unknown-code"),
        pytest.param({"grant_type": "refresh_token", "refresh_token": "x"}, 400, "invalid_grant", id="bad-refresh"),
        pytest.param({"grant_type": "urn:openid:params:grant-type:ciba"}, 400, "invalid_request", id="no-auth-req"),
        pytest.param(
            {"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": "x"}, 400, "invalid_grant", id="ciba-id"
        ),
    ],
)
def test_token_request_refusals(psc_mock, http, form, status, error):
    seq = psc_mock.last_seq()
    assert_oauth_error(http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC), status, error)
    record = journaled(psc_mock, seq, "token")
    assert record["outcome"]["error"] == error
    assert record["correlation"]["client_auth"] == "client_secret_basic"


def test_grant_not_allowed_for_the_client(psc_mock, http):
    psc_mock.seed({"clients": [{"client_id": "segur-sut", "grant_types": ["authorization_code"]}]})
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    assert_oauth_error(http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC), 400, "unauthorized_client")


def test_code_replay_revokes_and_is_journaled(psc_mock, http):
    code = get_code(psc_mock, http)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    first = http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC)
    assert first.status_code == 200
    seq = psc_mock.last_seq()
    assert_oauth_error(http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC), 400, "invalid_grant")
    record = journaled(psc_mock, seq, "token")
    assert "already used" in record["outcome"]["error_description"]
    assert record["correlation"]["national_id"] == GP
    introspection = http.post(
        psc_mock.endpoint("/token/introspect"), data={"token": first.json()["refresh_token"]}, auth=BASIC
    )
    assert introspection.json() == {"active": False}


@pytest.mark.parametrize(
    ("change", "error", "pkce"),
    [
        pytest.param({"redirect_uri": REDIRECT + "/autre"}, "invalid_grant", None, id="redirect-uri-mismatch"),
        pytest.param({"redirect_uri": None}, "invalid_request", None, id="redirect-uri-missing"),
        pytest.param({"code_verifier": None}, "invalid_grant", "missing", id="pkce-verifier-missing"),
        pytest.param({"code_verifier": "y" * 50}, "invalid_grant", "mismatch", id="pkce-verifier-wrong"),
        pytest.param({"code_verifier": "court"}, "invalid_grant", "malformed", id="pkce-verifier-malformed"),
    ],
)
def test_code_exchange_refusals(psc_mock, http, change, error, pkce):
    code = get_code(psc_mock, http)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    form = {k: v for k, v in {**form, **change}.items() if v is not None}
    seq = psc_mock.last_seq()
    assert_oauth_error(http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC), 400, error)
    outcome = journaled(psc_mock, seq, "token")["outcome"]
    assert outcome["error"] == error
    assert outcome.get("pkce") == pkce


def test_verifier_without_challenge_is_refused_and_absent_pkce_is_journaled(psc_mock, http):
    code = get_code(psc_mock, http, code_challenge=None, code_challenge_method=None)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    assert_oauth_error(http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC), 400, "invalid_grant")
    seq = psc_mock.last_seq()
    code = get_code(psc_mock, http, code_challenge=None, code_challenge_method=None)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC).status_code == 200
    assert journaled(psc_mock, seq, "token")["outcome"]["pkce"] == "absent"
    assert journaled(psc_mock, seq, "authorize")["correlation"]["code_challenge_method"] == ""


# --- client authentication --------------------------------------------------------------------


def assertion(psc, key: Any, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "segur-sut-jwt",
        "sub": "segur-sut-jwt",
        "aud": psc.endpoint("/token"),
        "exp": now + 60,
        "iat": now,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode({"alg": alg}, payload, key, algorithms=[alg])


def unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_wrong_secret_and_wrong_method_are_invalid_client(psc_mock, http):
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    seq = psc_mock.last_seq()
    wrong = http.post(psc_mock.endpoint("/token"), data=form, auth=("segur-sut", "mauvais"))
    assert_oauth_error(wrong, 401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    as_post = http.post(
        psc_mock.endpoint("/token"), data={**form, "client_id": "segur-sut", "client_secret": "segur-sut-secret"}
    )
    assert_oauth_error(as_post, 401, "invalid_client")
    assert "registered for client_secret_basic" in as_post.json()["error_description"]
    nothing = http.post(psc_mock.endpoint("/token"), data={**form, "client_id": "segur-sut"})
    assert_oauth_error(nothing, 401, "invalid_client")
    unknown = http.post(psc_mock.endpoint("/token"), data=form, auth=("inconnu", "x"))
    assert_oauth_error(unknown, 401, "invalid_client")
    records = [record for record in psc_mock.journal_since(seq) if record["operation"] == "token"]
    assert [record["correlation"]["client_auth"] for record in records] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
        "client_secret_basic",
    ]
    assert all(record["outcome"]["error"] == "invalid_client" for record in records)


def test_two_authentication_methods_at_once(psc_mock, http):
    form = {"grant_type": "refresh_token", "refresh_token": "x", "client_secret": "segur-sut-secret"}
    assert_oauth_error(http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC), 400, "invalid_request")


def test_malformed_basic_header(psc_mock, http):
    headers = {"Authorization": "Basic ***pas-du-base64***"}
    response = http.post(psc_mock.endpoint("/token"), data={"grant_type": "refresh_token"}, headers=headers)
    assert_oauth_error(response, 401, "invalid_client")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda psc, key, other: unsigned({"iss": "segur-sut-jwt", "sub": "segur-sut-jwt"}), id="alg-none"),
        pytest.param(lambda psc, key, other: "pas.un.jwt", id="malformed"),
        pytest.param(lambda psc, key, other: assertion(psc, other), id="other-key"),
        pytest.param(lambda psc, key, other: assertion(psc, key, aud="https://ailleurs.test/token"), id="wrong-aud"),
        pytest.param(lambda psc, key, other: assertion(psc, key, exp=int(time.time()) - 30), id="expired"),
        pytest.param(lambda psc, key, other: assertion(psc, key, iss="segur-sut"), id="wrong-iss"),
        pytest.param(lambda psc, key, other: assertion(psc, OctKey.import_key(b"s" * 32), "HS256"), id="hs256"),
    ],
)
def test_bad_client_assertions_are_invalid_client(psc_mock, http, make):
    key = RSAKey.import_key(psc_mock.pki.key("auth-cli").read_bytes())
    value = make(psc_mock, key, RSAKey.generate_key(2048))
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "x",
        "client_id": "segur-sut-jwt",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": value,
    }
    seq = psc_mock.last_seq()
    assert_oauth_error(http.post(psc_mock.endpoint("/token"), data=form), 401, "invalid_client")
    record = journaled(psc_mock, seq, "token")
    assert record["correlation"]["client_auth"] == "private_key_jwt"
    assert record["outcome"]["error"] == "invalid_client"


def test_client_assertion_jti_cannot_be_replayed(psc_mock, http):
    key = RSAKey.import_key(psc_mock.pki.key("auth-cli").read_bytes())
    value = assertion(psc_mock, key)
    form = {"token": "x", "client_assertion_type": ASSERTION_TYPE, "client_assertion": value}
    assert http.post(psc_mock.endpoint("/token/introspect"), data=form).json() == {"active": False}
    replayed = http.post(psc_mock.endpoint("/token/introspect"), data=form)
    assert_oauth_error(replayed, 401, "invalid_client")
    assert "jti" in replayed.json()["error_description"]


def test_tls_client_auth_needs_the_mtls_alias_and_the_registered_cn(psc_mock, http, psc_http):
    form = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "segur-sut-mtls"}
    on_issuer = http.post(psc_mock.endpoint("/token"), data=form)
    assert_oauth_error(on_issuer, 401, "invalid_client")
    assert "mTLS endpoint aliases" in on_issuer.json()["error_description"]
    wrong_cn = psc_http("insi-auto").post(psc_mock.endpoint("/token", mtls=True), data=form)
    assert_oauth_error(wrong_cn, 401, "invalid_client")
    right_cn = psc_http("auth-cli").post(psc_mock.endpoint("/token", mtls=True), data=form)
    assert_oauth_error(right_cn, 400, "invalid_grant")


# --- transport and framing ----------------------------------------------------------------------


def test_oversized_body_is_413_oauth_json(psc_mock, http):
    seq = psc_mock.last_seq()
    body = {"grant_type": "refresh_token", "refresh_token": "x" * (psc_mock.limits.max_body + 10)}
    response = http.post(psc_mock.endpoint("/token"), data=body, auth=BASIC)
    assert_oauth_error(response, 413, "invalid_request")
    record = journaled(psc_mock, seq, "token")
    assert record["outcome"]["error"] == "invalid_request"
    assert "exceeds" in record["outcome"]["refused"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"grant_type": "refresh_token"}', "application/json", id="json"),
        pytest.param(b"grant_type=refresh_token&refresh_token=%ff%fe", None, id="bad-percent-escape"),
        pytest.param(b"grant_type=refresh_token&refresh_token=\xff", None, id="non-ascii"),
        pytest.param(b"grant_type=refresh_token&grant_type=refresh_token", None, id="repeated-parameter"),
        pytest.param(b"grant_type=refresh_token", "text/plain", id="text-plain"),
    ],
)
def test_malformed_form_bodies(psc_mock, http, content, content_type):
    headers = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
    seq = psc_mock.last_seq()
    response = http.post(psc_mock.endpoint("/token"), content=content, headers=headers, auth=BASIC)
    assert_oauth_error(response, 400, "invalid_request")
    assert journaled(psc_mock, seq, "token")["outcome"]["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("method", "name", "allowed"),
    [
        pytest.param("GET", "/token", "POST", id="get-token"),
        pytest.param("PUT", "/userinfo", "GET, POST", id="put-userinfo"),
        pytest.param("DELETE", "/certs", "GET", id="delete-certs"),
        pytest.param("GET", "/ext/ciba/auth", "POST", id="get-ciba"),
    ],
)
def test_wrong_http_method_is_405(psc_mock, http, method, name, allowed):
    seq = psc_mock.last_seq()
    response = http.request(method, psc_mock.endpoint(name))
    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["allow"] == allowed
    assert psc_mock.journal_since(seq)[-1]["outcome"]["error"] == "invalid_request"


def test_unknown_path_and_authorization_endpoint_on_the_issuer_host(psc_mock, http):
    assert_oauth_error(http.get(psc_mock.issuer + "/nimporte-quoi"), 404, "not_found")
    seq = psc_mock.last_seq()
    wrong_host = http.get(psc_mock.endpoint("/auth") + "?client_id=segur-sut")
    assert_oauth_error(wrong_host, 404, "not_found")
    assert "wallet host" in wrong_host.json()["error_description"]
    assert journaled(psc_mock, seq, "authorize")["outcome"]["error"] == "not_found"


def test_standard_discovery_path_only_when_tolerated(psc_mock, http):
    standard = psc_mock.issuer + "/.well-known/openid-configuration"
    seq = psc_mock.last_seq()
    assert_oauth_error(http.get(standard), 404, "not_found")
    assert journaled(psc_mock, seq, "discovery")["correlation"] == {"document": "openid-configuration"}
    psc_mock.seed({"tolerate_standard_discovery": True})
    assert http.get(standard).json()["issuer"] == psc_mock.issuer


# --- authorization endpoint --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"redirect_uri": "https://attaquant.test/vol"}, "n'est pas enregistrée", id="unregistered-uri"),
        pytest.param({"redirect_uri": REDIRECT + "/"}, "n'est pas enregistrée", id="uri-not-exact"),
        pytest.param({"redirect_uri": None}, "redirect_uri est absent", id="no-uri"),
        pytest.param({"client_id": "inconnu"}, "n'est pas enregistré", id="unknown-client"),
    ],
)
def test_authorize_errors_shown_as_a_page_never_redirected(psc_mock, http, params, message):
    psc_mock.seed({"next_login": {"national_id": GP}})
    seq = psc_mock.last_seq()
    response = http.get(authorize_url(psc_mock, **params))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert message in html.unescape(response.text)
    record = journaled(psc_mock, seq, "authorize")
    assert record["outcome"]["error"] in ("invalid_request", "invalid_client")
    assert psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json()["next_login"] is not None


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
        pytest.param({"response_type": None}, "invalid_request", id="no-response-type"),
        pytest.param({"scope": "scope_all"}, "invalid_scope", id="no-openid"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="pkce-plain"),
        pytest.param({"code_challenge_method": None}, "invalid_request", id="pkce-no-method"),
        pytest.param({"code_challenge": None}, "invalid_request", id="pkce-method-no-challenge"),
        pytest.param({"code_challenge": "trop-court"}, "invalid_request", id="pkce-malformed"),
    ],
)
def test_authorize_errors_redirected_with_state(psc_mock, http, params, error):
    seq = psc_mock.last_seq()
    query = location_query(http.get(authorize_url(psc_mock, **params)))
    assert query["error"] == [error]
    assert query["state"] == ["etat-1"]
    assert "code" not in query
    record = journaled(psc_mock, seq, "authorize")
    assert record["outcome"]["error"] == error
    assert record["outcome"]["redirected"] is True


def test_pkce_required_by_the_client(psc_mock, http):
    psc_mock.seed({"clients": [{"client_id": "segur-sut", "require_pkce": True}]})
    query = location_query(http.get(authorize_url(psc_mock, code_challenge=None, code_challenge_method=None)))
    assert query["error"] == ["invalid_request"]
    assert "PKCE" in query["error_description"][0]


def test_preselected_refusal_and_timeout(psc_mock, http):
    psc_mock.seed({"next_login": {"national_id": GP, "outcome": "refuse"}})
    query = location_query(http.get(authorize_url(psc_mock, state=None)))
    assert query["error"] == ["access_denied"]
    assert "state" not in query, "no state sent, none echoed"
    psc_mock.seed({"next_login": {"national_id": GP, "outcome": "timeout"}})
    seq = psc_mock.last_seq()
    page = http.get(authorize_url(psc_mock))
    assert page.status_code == 200
    assert "<form" in page.text
    outcome = journaled(psc_mock, seq, "authorize")["outcome"]
    assert outcome["preselected"] == "timeout"
    assert outcome["login_page"] is True


# --- userinfo, introspection, logout, CIBA -----------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, "missing", id="missing"),
        pytest.param({"Authorization": "Basic eDp5"}, "missing", id="wrong-scheme"),
        pytest.param({"Authorization": "Bearer pas-un-jeton"}, "unknown", id="garbage"),
    ],
)
def test_userinfo_without_a_valid_token(psc_mock, http, headers, status):
    seq = psc_mock.last_seq()
    response = http.get(psc_mock.endpoint("/userinfo"), headers=headers)
    assert_oauth_error(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert journaled(psc_mock, seq, "userinfo")["outcome"]["token"] == status


def test_userinfo_with_an_expired_token(psc_mock, http):
    psc_mock.seed({"token_lifetime": 0})
    token = code_flow(psc_mock, http)["access_token"]
    seq = psc_mock.last_seq()
    response = http.get(psc_mock.endpoint("/userinfo"), headers={"Authorization": f"Bearer {token}"})
    assert_oauth_error(response, 401, "invalid_token")
    record = journaled(psc_mock, seq, "userinfo")
    assert record["outcome"]["token"] == "expired"
    assert record["correlation"] == {"national_id": GP, "client_id": "segur-sut"}
    with pytest.raises(ValueError, match="expired"):
        psc_mock.mock.validate_access_token(token)


def test_introspection_needs_client_authentication(psc_mock, http):
    assert_oauth_error(http.post(psc_mock.endpoint("/token/introspect"), data={"token": "x"}), 401, "invalid_client")
    assert_oauth_error(http.post(psc_mock.endpoint("/token/introspect"), data={}, auth=BASIC), 400, "invalid_request")


def test_logout_refusals_are_pages(psc_mock, http):
    id_token = code_flow(psc_mock, http)["id_token"]
    seq = psc_mock.last_seq()
    unregistered = http.get(
        psc_mock.endpoint("/logout"),
        params={"id_token_hint": id_token, "post_logout_redirect_uri": "https://attaquant.test/"},
    )
    assert unregistered.status_code == 400
    assert "location" not in unregistered.headers
    forged = jwt.encode({"alg": "RS256"}, {"typ": "ID", "iss": psc_mock.issuer, "sid": "x"}, RSAKey.generate_key())
    assert http.get(psc_mock.endpoint("/logout"), params={"id_token_hint": forged}).status_code == 400
    assert http.get(psc_mock.endpoint("/logout")).status_code == 400
    records = [record for record in psc_mock.journal_since(seq) if record["operation"] == "logout"]
    assert [record["outcome"]["session_ended"] for record in records] == [False, False, False]
    assert all(record["outcome"]["error"] == "invalid_request" for record in records)
    done = http.get(psc_mock.endpoint("/logout"), params={"id_token_hint": id_token})
    assert done.status_code == 200
    assert "déconnecté" in done.text


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        pytest.param({"login_hint": "899999999999"}, 400, "unknown_user_id", id="unknown-user"),
        pytest.param({"login_hint": None}, 400, "invalid_request", id="no-login-hint"),
        pytest.param({"binding_message": None}, 400, "invalid_binding_message", id="no-binding-message"),
        pytest.param({"binding_message": "4"}, 400, "invalid_binding_message", id="one-digit"),
        pytest.param({"binding_message": "123"}, 400, "invalid_binding_message", id="three-digits"),
        pytest.param({"binding_message": "ab"}, 400, "invalid_binding_message", id="letters"),
        pytest.param({"scope": "scope_all"}, 400, "invalid_scope", id="no-openid"),
        pytest.param({"channel": "SMS"}, 400, "invalid_request", id="bad-channel"),
    ],
)
def test_ciba_request_refusals(psc_mock, http, change, status, error):
    form = {"login_hint": GP, "binding_message": "42", "scope": "openid scope_all", **change}
    seq = psc_mock.last_seq()
    response = http.post(
        psc_mock.endpoint("/ext/ciba/auth"), data={k: v for k, v in form.items() if v is not None}, auth=BASIC
    )
    assert_oauth_error(response, status, error)
    assert journaled(psc_mock, seq, "ciba_auth")["outcome"]["error"] == error


def test_ciba_not_allowed_for_the_client_and_auth_req_id_of_another_client(psc_mock, http):
    form = {"login_hint": GP, "binding_message": "42", "scope": "openid"}
    started = http.post(psc_mock.endpoint("/ext/ciba/auth"), data=form, auth=BASIC).json()
    poll = {"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": started["auth_req_id"]}
    post_auth = {"client_id": "segur-sut-post", "client_secret": "segur-sut-post-secret"}
    other = http.post(psc_mock.endpoint("/token"), data={**poll, **post_auth})
    assert_oauth_error(other, 400, "invalid_grant")
    psc_mock.seed({"clients": [{"client_id": "segur-sut", "grant_types": ["authorization_code"]}]})
    response = http.post(psc_mock.endpoint("/ext/ciba/auth"), data=form, auth=BASIC)
    assert_oauth_error(response, 400, "unauthorized_client")


# --- injected faults ---------------------------------------------------------------------------


def id_token_claims(psc, http: httpx.Client, id_token: str, access_token: str) -> CodeIDToken:
    keys = KeySet.import_key_set(http.get(psc.endpoint("/certs")).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": psc.issuer},
            "aud": {"essential": True, "value": "segur-sut"},
            "acr": {"essential": True, "value": "eidas1"},
        },
        params={"nonce": "nonce-1", "client_id": "segur-sut", "access_token": access_token},
    )
    claims.validate()
    return claims


@pytest.mark.parametrize(
    ("kind", "raised", "claim"),
    [
        pytest.param("forged_id_token_signature", BadSignatureError, None, id="forged-signature"),
        pytest.param("wrong_nonce", InvalidClaimError, "nonce", id="wrong-nonce"),
        pytest.param("wrong_aud", InvalidClaimError, "aud", id="wrong-aud"),
        pytest.param("expired_id_token", ExpiredTokenError, "exp", id="expired"),
        pytest.param("low_acr", InvalidClaimError, "acr", id="low-acr"),
    ],
)
def test_id_token_faults_are_caught_by_a_standard_validation(psc_mock, http, kind, raised, claim):
    psc_mock.fault(kind, operation="token")
    seq = psc_mock.last_seq()
    tokens = code_flow(psc_mock, http)
    with pytest.raises(raised) as caught:
        id_token_claims(psc_mock, http, tokens["id_token"], tokens["access_token"])
    if claim:
        assert caught.value.claim == claim
    assert journaled(psc_mock, seq, "token")["outcome"]["injected"] == kind
    header = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[0] + "=="))
    published = http.get(psc_mock.endpoint("/certs")).json()["keys"][0]["kid"]
    assert header["kid"] == published, "a forged token still names the published kid"
    again = code_flow(psc_mock, http)
    id_token_claims(psc_mock, http, again["id_token"], again["access_token"])  # the fault was used once


def test_userinfo_http_error_and_introspection_inactive(psc_mock, http):
    tokens = code_flow(psc_mock, http)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    psc_mock.fault("http_error", operation="userinfo", status=502)
    seq = psc_mock.last_seq()
    failed = http.get(psc_mock.endpoint("/userinfo"), headers=bearer)
    assert_oauth_error(failed, 502, "server_error")
    assert journaled(psc_mock, seq, "userinfo")["outcome"]["injected"] == "http_error"
    assert http.get(psc_mock.endpoint("/userinfo"), headers=bearer).status_code == 200

    psc_mock.fault("inactive_introspection")
    seq = psc_mock.last_seq()
    introspect = psc_mock.endpoint("/token/introspect")
    assert http.post(introspect, data={"token": tokens["access_token"]}, auth=BASIC).json() == {"active": False}
    record = journaled(psc_mock, seq, "introspect")
    assert record["outcome"] == {"injected": "inactive_introspection", "active": False, "token_type": ""}
    assert http.post(introspect, data={"token": tokens["access_token"]}, auth=BASIC).json()["active"] is True


def test_timeout_fault_delays_the_answer(psc_mock, http):
    psc_mock.fault("timeout", operation="certs", delay=0.3)
    seq = psc_mock.last_seq()
    started = time.monotonic()
    assert http.get(psc_mock.endpoint("/certs")).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert journaled(psc_mock, seq, "certs")["outcome"] == {"injected": "timeout"}
    psc_mock.fault("timeout", operation="discovery", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        http.get(psc_mock.discovery_url, timeout=0.2)


def test_logout_accepts_an_expired_id_token_hint(psc_mock, http):
    """Logout often comes after the ID token expired: its signature is what counts."""
    psc_mock.fault("expired_id_token", operation="token")
    id_token = code_flow(psc_mock, http)["id_token"]
    seq = psc_mock.last_seq()
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_REDIRECT, "state": "s"}
    response = http.get(psc_mock.endpoint("/logout"), params=params)
    assert response.headers["location"] == LOGOUT_REDIRECT + "?state=s"
    assert journaled(psc_mock, seq, "logout")["outcome"] == {"session_ended": True}


def test_head_is_answered_without_a_body_and_journaled(psc_mock, http):
    """HEAD must not kill the connection: the answer has no body, as HTTP requires."""
    seq = psc_mock.last_seq()
    response = http.head(psc_mock.endpoint("/certs"))
    assert (response.status_code, response.headers["allow"], response.content) == (405, "GET", b"")
    assert journaled(psc_mock, seq, "certs")["outcome"]["error"] == "invalid_request"
