"""The reference SUT's PSC client, without a provider: PKCE, ID-token and userinfo checks, defects, routes.

Tokens are signed here with locally generated RSA keys (PyJWT + cryptography), so every
check can be shown to accept the good token and refuse exactly the bad one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from segur.pki import Pki
from segur.reference_sut.defects import DEFECTS
from segur.reference_sut.errors import ActionError
from segur.reference_sut.psc_client import (
    IdTokenInvalid,
    NotLoggedIn,
    PscClient,
    PscRefused,
    PscSession,
    PscSettings,
    PscStateMismatch,
    UserinfoInvalid,
    national_id,
    next_interval,
    pkce_challenge,
    read_userinfo,
    validate_id_token,
    with_query,
)
from segur.reference_sut.server import make_server
from segur.reference_sut.software import IdentitySoftware

ISSUER = "https://127.0.0.1:8443/auth/realms/esante-wallet"
CLIENT_ID = "segur-sut"
NONCE = "n-0S6_WzA2Mj"
KID = "psc-key-1"
IDNPS = "810001234567"
SUB = f"f:0b7f2d4e-1c3a-4f5e-9a8b-7c6d5e4f3a2b:{IDNPS}"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


PSC_KEY = _key()
OTHER_KEY = _key()
JWKS = {
    "keys": [
        {**jwt.algorithms.RSAAlgorithm.to_jwk(PSC_KEY.public_key(), as_dict=True), "kid": KID, "use": "sig"},
    ]
}


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": SUB,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "exp": now + 120,
        "iat": now,
        "nonce": NONCE,
        "acr": "eidas1",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(payload: dict[str, Any], key: Any = PSC_KEY, algorithm: str = "RS256", kid: str | None = KID) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def validate(token: str, nonce: str | None = NONCE, defects: tuple[str, ...] = ()) -> dict[str, Any]:
    return validate_id_token(token, JWKS, ISSUER, CLIENT_ID, nonce, defects)


# Each token the validation must refuse.
BAD_TOKENS: dict[str, Callable[[], str]] = {
    "wrong_signature_key": lambda: sign(claims(), key=OTHER_KEY),
    "alg_none": lambda: jwt.encode(claims(), None, algorithm="none"),
    "alg_hs256": lambda: sign(claims(), key="a-shared-secret-of-32-bytes-long!", algorithm="HS256"),
    "unknown_kid": lambda: sign(claims(), kid="not-in-jwks"),
    "wrong_iss": lambda: sign(claims(iss="https://evil.example/realms/esante-wallet")),
    "wrong_aud": lambda: sign(claims(aud="another-client", azp="another-client")),
    "wrong_azp": lambda: sign(claims(aud=[CLIENT_ID, "other"], azp="other")),
    "wrong_nonce": lambda: sign(claims(nonce="replayed")),
    "missing_nonce": lambda: sign(claims(nonce=None)),
    "acr_not_eidas1": lambda: sign(claims(acr="eidas2")),
    "acr_missing": lambda: sign(claims(acr=None)),
    "expired": lambda: sign(claims(exp=int(time.time()) - 300, iat=int(time.time()) - 600)),
    "issued_in_future": lambda: sign(claims(iat=int(time.time()) + 600)),
    "missing_sub": lambda: sign(claims(sub=None)),
}
# The bad tokens each validation defect lets through; every other bad token stays refused.
LETS_THROUGH: dict[str, set[str]] = {
    "psc-accepts-forged-id-token": {"wrong_signature_key", "alg_none", "alg_hs256", "unknown_kid"},
    "psc-no-nonce-check": {"wrong_nonce", "missing_nonce"},
    "psc-accepts-expired-id-token": {"expired"},
}
PKCE_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
PKCE_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    assert pkce_challenge(PKCE_VERIFIER) == PKCE_CHALLENGE


def test_good_id_token_is_accepted() -> None:
    found = validate(sign(claims()))
    assert found["sub"] == SUB and found["acr"] == "eidas1"


def test_ciba_id_token_without_nonce_is_accepted() -> None:
    assert validate(sign(claims(nonce=None)), nonce=None)["sub"] == SUB


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_id_token_is_refused(case: str) -> None:
    with pytest.raises(IdTokenInvalid):
        validate(BAD_TOKENS[case]())


@pytest.mark.parametrize("defect", sorted(LETS_THROUGH))
def test_each_defect_switches_off_exactly_its_check(defect: str) -> None:
    assert validate(sign(claims()), defects=(defect,))["sub"] == SUB
    for case, make in BAD_TOKENS.items():
        if case in LETS_THROUGH[defect]:
            validate(make(), defects=(defect,))
        else:
            with pytest.raises(IdTokenInvalid):
                validate(make(), defects=(defect,))


def test_other_psc_defects_do_not_touch_id_token_validation() -> None:
    others = tuple(name for name in DEFECTS if name.startswith("psc-") and name not in LETS_THROUGH)
    for make in BAD_TOKENS.values():
        with pytest.raises(IdTokenInvalid):
            validate(make(), defects=others)


def test_psc_defects_break_their_requirements() -> None:
    expected = {
        "psc-no-pkce": "PSC/PROV.01",
        "psc-no-state-check": "PSC/PROV.02",
        "psc-no-nonce-check": "PSC/PROV.03",
        "psc-accepts-forged-id-token": "PSC/PROV.04",
        "psc-accepts-expired-id-token": "PSC/PROV.04",
        "psc-no-acr-values": "PSC.08",
        "psc-sub-as-national-id": ("PSC/PROV.05", "DMP/PSC.01"),  # the DMP's PSC mode names the wrong PS too
        "psc-persists-tokens": ("PSC/PROV.06", "SC.MSS/CONF.28"),
        "psc-no-logout": "PSC/PROV.07",
        "psc-ignores-slow-down": "PSC/PROV.08",
        "psc-no-refresh": ("PSC/PROV.09", "SC.MSS/CONF.11"),
    }
    assert {name: DEFECTS[name].breaks for name in expected} == {
        name: r if isinstance(r, tuple) else (r,) for name, r in expected.items()
    }


# -- userinfo and national id ----------------------------------------------------------------------

USERINFO = {"sub": SUB, "SubjectNameID": IDNPS, "given_name": "JEAN", "family_name": "DUPONT"}


def test_national_id_comes_from_subject_name_id_not_sub() -> None:
    assert national_id(USERINFO, {"sub": SUB}) == IDNPS
    assert national_id(USERINFO, {"sub": SUB}, ("psc-sub-as-national-id",)) == SUB
    with pytest.raises(UserinfoInvalid):
        national_id({"sub": SUB}, {"sub": SUB})


def test_userinfo_json_and_signed_jwt() -> None:
    keys: Callable[[str], dict[str, Any]] = lambda token: JWKS  # noqa: E731
    assert read_userinfo("application/json; charset=utf-8", b'{"SubjectNameID": "8"}', keys, ISSUER, CLIENT_ID) == {
        "SubjectNameID": "8"
    }
    signed = sign({**USERINFO, "iss": ISSUER, "aud": CLIENT_ID}).encode()
    assert read_userinfo("application/jwt", signed, keys, ISSUER, CLIENT_ID)["SubjectNameID"] == IDNPS
    for content_type, body in (
        ("application/jwt", sign(USERINFO, key=OTHER_KEY).encode()),
        ("application/jwt", sign({**USERINFO, "iss": "https://evil.example"}).encode()),
        ("application/jwt", jwt.encode(USERINFO, None, algorithm="none").encode()),
        ("text/html", b"<p>login</p>"),
        ("application/json", b"[1]"),
    ):
        with pytest.raises(UserinfoInvalid):
            read_userinfo(content_type, body, keys, ISSUER, CLIENT_ID)


def test_ciba_slow_down_adds_five_seconds_unless_defect() -> None:
    assert next_interval(2, "slow_down") == 7
    assert next_interval(2, "authorization_pending") == 2
    assert next_interval(2, "slow_down", ("psc-ignores-slow-down",)) == 2


def test_with_query_keeps_existing_parameters() -> None:
    url = with_query("https://127.0.0.1:9/auth?kc_idp_hint=wallet", {"state": "a b"})
    assert parse_qs(urlsplit(url).query) == {"kc_idp_hint": ["wallet"], "state": ["a b"]}


# -- client state without network (discovery already cached) ----------------------------------------

METADATA = {
    "issuer": ISSUER,
    "authorization_endpoint": "https://127.0.0.1:9443/auth/realms/esante-wallet/protocol/openid-connect/auth",
    "token_endpoint": ISSUER + "/protocol/openid-connect/token",
    "userinfo_endpoint": ISSUER + "/protocol/openid-connect/userinfo",
    "end_session_endpoint": ISSUER + "/protocol/openid-connect/logout",
    "jwks_uri": ISSUER + "/protocol/openid-connect/certs",
}


@pytest.fixture
def make_client(pki: Pki, tmp_path: Path) -> Iterator[Callable[..., PscClient]]:
    made: list[PscClient] = []

    def make(*defects: str) -> PscClient:
        settings = PscSettings(
            discovery_url=ISSUER + "/.well-known/wallet-openid-configuration",
            client_id=CLIENT_ID,
            client_secret="secret",
            ca=str(pki.ca_cert),
            redirect_uri="http://127.0.0.1:1234/segur/psc/callback",
            post_logout_redirect_uri="http://127.0.0.1:1234/segur/psc/logged-out",
            data_dir=tmp_path,
        )
        client = PscClient(settings, defects)
        client._metadata = dict(METADATA)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_authorization_url_carries_pkce_state_nonce_and_acr(make_client: Callable[..., PscClient]) -> None:
    client = make_client()
    url = client.authorization_url()
    assert url.startswith(METADATA["authorization_endpoint"] + "?")
    query = _query(url)
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["scope"] == "openid scope_all" and query["acr_values"] == "eidas1"
    assert query["redirect_uri"] == "http://127.0.0.1:1234/segur/psc/callback"
    assert query["code_challenge_method"] == "S256"
    pending = client.take_pending(query["state"])
    assert pending.nonce == query["nonce"]
    assert pending.verifier is not None and pkce_challenge(pending.verifier) == query["code_challenge"]
    second = _query(client.authorization_url())
    assert second["state"] != query["state"] and second["nonce"] != query["nonce"]


def test_pkce_and_acr_defects(make_client: Callable[..., PscClient]) -> None:
    query = _query(make_client("psc-no-pkce").authorization_url())
    assert "code_challenge" not in query and "code_challenge_method" not in query and query["acr_values"] == "eidas1"
    query = _query(make_client("psc-no-acr-values").authorization_url())
    assert "acr_values" not in query and query["code_challenge_method"] == "S256"


def test_callback_state_must_match_a_pending_login(make_client: Callable[..., PscClient]) -> None:
    client = make_client()
    state = _query(client.authorization_url())["state"]
    for query in ({"code": "c"}, {"code": "c", "state": "forged"}, {"code": "c", "state": ""}):
        with pytest.raises(PscStateMismatch):
            client.complete(query)
    with pytest.raises(PscRefused) as refused:
        client.complete({"error": "access_denied", "state": state})
    assert refused.value.code == "access_denied"
    with pytest.raises(PscStateMismatch):  # a state is used once
        client.complete({"error": "access_denied", "state": state})


def test_no_state_check_defect_takes_the_pending_login(make_client: Callable[..., PscClient]) -> None:
    client = make_client("psc-no-state-check")
    nonce = _query(client.authorization_url())["nonce"]
    assert client.take_pending("forged").nonce == nonce
    assert client.take_pending(None).nonce is None


def _session(expires_in: float = 120) -> PscSession:
    return PscSession(
        mode="web",
        access_token="at",
        refresh_token="rt",
        id_token="the-id-token",
        expires_at=time.time() + expires_in,
        id_claims={"sub": SUB},
        national_id=IDNPS,
    )


def test_logout_url_and_forgetting(make_client: Callable[..., PscClient]) -> None:
    client = make_client()
    with pytest.raises(NotLoggedIn):
        client.logout_url("http://127.0.0.1:1234/segur/psc/logged-out")
    client.session = _session()
    url = client.logout_url("http://127.0.0.1:1234/segur/psc/logged-out")
    assert url.startswith(METADATA["end_session_endpoint"] + "?")
    query = _query(url)
    assert query["id_token_hint"] == "the-id-token"
    assert query["post_logout_redirect_uri"] == "http://127.0.0.1:1234/segur/psc/logged-out"
    assert query["state"]
    assert client.session is None


def test_ensure_fresh_keeps_a_token_that_is_not_due(make_client: Callable[..., PscClient]) -> None:
    client = make_client()
    with pytest.raises(NotLoggedIn):
        client.ensure_fresh()
    client.session = _session(expires_in=120)
    assert client.ensure_fresh().access_token == "at"
    client = make_client("psc-no-refresh")
    client.session = _session(expires_in=-10)
    assert client.ensure_fresh().access_token == "at"  # the defect: no refresh, the expired token is used


# -- software and server ---------------------------------------------------------------------------


@pytest.fixture
def served(pki: Pki) -> Iterator[tuple[IdentitySoftware, str]]:
    software = IdentitySoftware("dpi", (), "test")
    server = make_server(software)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield software, software.public_url
    finally:
        server.shutdown()
        server.server_close()


def _configure(pki: Pki, base: str) -> dict[str, Any]:
    params = {
        "services": {
            "insi": {"url": "https://127.0.0.1:9/lps"},
            "psc": {
                "discovery_url": ISSUER + "/.well-known/wallet-openid-configuration",
                "client_id": CLIENT_ID,
                "client_secret": "secret",
            },
        },
        "pki": pki.describe(),
    }
    answer = httpx.post(f"{base}/segur/v1/actions/configure", json=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def test_configure_returns_the_psc_uris_and_health_the_data_dir(served: tuple[IdentitySoftware, str], pki: Pki) -> None:
    software, base = served
    result = _configure(pki, base)
    assert result["configured"] == ["insi", "psc"]
    assert result["psc"] == {
        "redirect_uri": f"{base}/segur/psc/callback",
        "post_logout_redirect_uri": f"{base}/segur/psc/logged-out",
    }
    assert base.startswith("http://127.0.0.1:")
    health = httpx.get(f"{base}/segur/v1/health").json()
    assert health["storage_dirs"] == [str(software.data_dir)] and software.data_dir.is_dir()
    assert {"login_ps", "current_user", "use_ps_session", "logout_ps"} <= set(health["actions"])


def test_callback_with_a_forged_state_is_refused_and_remembered(served: tuple[IdentitySoftware, str], pki: Pki) -> None:
    software, base = served
    _configure(pki, base)
    assert software.psc is not None
    software.psc._metadata = dict(METADATA)
    page = httpx.get(f"{base}/segur/psc/callback", params={"code": "c", "state": "forged"})
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "psc_state_mismatch" in page.text and "Traceback" not in page.text
    user = httpx.post(f"{base}/segur/v1/actions/current_user", json={}).json()["result"]
    assert user["connecte"] is False and user["national_id"] is None and user["mode"] is None
    assert user["derniere_erreur"]["code"] == "psc_state_mismatch"
    repeated = httpx.get(f"{base}/segur/psc/callback?state=a&state=b&code=c")
    assert repeated.status_code == 400
    assert httpx.get(f"{base}/segur/psc/logged-out", params={"state": "x"}).status_code == 200
    for action in ("use_ps_session", "logout_ps"):
        refused = httpx.post(f"{base}/segur/v1/actions/{action}", json={})
        assert refused.json()["error"]["code"] == "not_logged_in"
    httpx.post(f"{base}/segur/v1/actions/reset", json={})
    assert httpx.post(f"{base}/segur/v1/actions/current_user", json={}).json()["result"]["derniere_erreur"] is None


def test_login_before_configure_is_refused() -> None:
    software = IdentitySoftware("dpi", (), "test")
    with pytest.raises(ActionError) as refused:
        software.login_ps({"mode": "web"})
    assert refused.value.code == "not_configured"
    assert software.current_user({})["connecte"] is False
