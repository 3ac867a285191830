"""A real OpenID Connect client (authlib) against the PSC mock, end to end over TLS.

Discovery at PSC's own address, the code flow with PKCE S256 (the professional pre-selected
through the control API, as a scenario does), ID-token validation against the JWKS, userinfo,
refresh, introspection and logout; then the same token exchange with ``private_key_jwt`` and
with ``tls_client_auth`` on the mTLS aliases. If authlib accepts the mock, so would a SUT
built on a standard library.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from conftest import client_tls_context

pytestmark = pytest.mark.usefixtures("fresh_psc")

REDIRECT = "https://sut.segur.test/psc/retour"
LOGOUT_REDIRECT = "https://sut.segur.test/psc/deconnecte"
GP = "899910000019"
SCOPE = "openid scope_all"


def register(psc, client_id: str = "segur-sut", **extra: Any) -> None:
    entry = {"client_id": client_id, "redirect_uris": [REDIRECT], "post_logout_redirect_uris": [LOGOUT_REDIRECT]}
    psc.seed({"clients": [{**entry, **extra}]})


@pytest.fixture
def metadata(psc_mock, psc_http) -> dict[str, Any]:
    response = psc_http().get(psc_mock.discovery_url)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def jwks(metadata, psc_http) -> KeySet:
    return KeySet.import_key_set(psc_http().get(metadata["jwks_uri"]).json())


def oidc_client(psc, client_id: str = "segur-sut", secret: Any = "segur-sut-secret", **kwargs: Any) -> OAuth2Client:
    kwargs.setdefault("verify", client_tls_context(psc.pki, None))
    return OAuth2Client(
        client_id,
        secret,
        scope=SCOPE,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        timeout=psc.client_timeout,
        **kwargs,
    )


def login(psc, client: OAuth2Client, metadata: dict[str, Any], national_id: str = GP, means: str = "CARD"):
    """Authorization request with the professional pre-selected; returns (redirect Location, nonce, verifier)."""
    psc.seed({"next_login": {"national_id": national_id, "means": means, "outcome": "accept"}})
    nonce, verifier = generate_token(20), generate_token(64)
    url, client.state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, acr_values="eidas1"
    )
    response = httpx.get(url, verify=client_tls_context(psc.pki, None), timeout=psc.client_timeout)
    assert response.status_code == 302, response.text
    return response.headers["location"], nonce, verifier


def validated_id_token(
    id_token: str, keys: KeySet, metadata: dict[str, Any], client_id: str, nonce: str, access_token: str
) -> CodeIDToken:
    """authlib's ID-token rules (iss, aud, exp, nonce, azp, at_hash) plus PSC's acr, against the published JWKS."""
    token = jwt.decode(id_token, keys, algorithms=metadata["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "acr": {"essential": True, "value": "eidas1"},
        },
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate()
    return claims


def test_discovery_names_psc_endpoints_on_their_hosts(psc_mock, metadata):
    issuer = psc_mock.issuer
    assert metadata["issuer"] == issuer
    assert metadata["authorization_endpoint"] == psc_mock.authorization_endpoint
    assert urlsplit(metadata["authorization_endpoint"]).port != urlsplit(issuer).port
    assert metadata["token_endpoint"] == issuer + "/protocol/openid-connect/token"
    assert metadata["backchannel_authentication_endpoint"] == issuer + "/protocol/openid-connect/ext/ciba/auth"
    assert metadata["mtls_endpoint_aliases"]["token_endpoint"] == psc_mock.endpoint("/token", mtls=True)
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["acr_values_supported"] == ["eidas1"]
    assert "urn:openid:params:grant-type:ciba" in metadata["grant_types_supported"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "tls_client_auth",
    }


def test_code_flow_with_pkce_then_userinfo_refresh_introspection_and_logout(psc_mock, metadata, jwks, psc_http):
    register(psc_mock)
    seq = psc_mock.last_seq()
    with oidc_client(psc_mock) as client:
        location, nonce, verifier = login(psc_mock, client, metadata)
        token = client.fetch_token(metadata["token_endpoint"], authorization_response=location, code_verifier=verifier)
        claims = validated_id_token(token["id_token"], jwks, metadata, "segur-sut", nonce, token["access_token"])
        assert claims["sub"].endswith(":" + GP)
        assert claims["preferred_username"] == GP
        assert claims["authMode"] == "CARD"
        assert token["token_type"] == "Bearer"
        assert token["scope"] == SCOPE
        assert token["not-before-policy"] == 0

        userinfo = client.get(metadata["userinfo_endpoint"])
        assert userinfo.status_code == 200
        assert userinfo.json()["SubjectNameID"] == GP
        assert userinfo.json()["sub"] == claims["sub"]

        first_refresh = token["refresh_token"]
        refreshed = client.refresh_token(metadata["token_endpoint"])
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] != first_refresh
        validated_id_token(refreshed["id_token"], jwks, metadata, "segur-sut", nonce, refreshed["access_token"])
        replayed = client.post(
            metadata["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": first_refresh},
            auth=("segur-sut", "segur-sut-secret"),
        )
        assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant"), "refresh tokens rotate"

        active = client.introspect_token(metadata["introspection_endpoint"], token=refreshed["access_token"]).json()
        assert active["active"] is True
        assert (active["SubjectNameID"], active["client_id"], active["token_type"]) == (GP, "segur-sut", "Bearer")
        assert active["acr"] == "eidas1"
        as_refresh = client.introspect_token(metadata["introspection_endpoint"], token=refreshed["refresh_token"])
        assert as_refresh.json()["token_type"] == "Refresh"
        assert "SubjectNameID" not in as_refresh.json()

        logout = psc_http().get(
            metadata["end_session_endpoint"],
            params={
                "id_token_hint": refreshed["id_token"],
                "post_logout_redirect_uri": LOGOUT_REDIRECT,
                "state": "apres deconnexion",
            },
        )
        assert logout.status_code == 302
        assert logout.headers["location"] == LOGOUT_REDIRECT + "?state=apres+deconnexion"
        assert client.get(metadata["userinfo_endpoint"]).status_code == 401
        inactive = client.introspect_token(metadata["introspection_endpoint"], token=refreshed["access_token"])
        assert inactive.json() == {"active": False}

    records = psc_mock.journal_since(seq)
    operations = [record["operation"] for record in records]
    assert operations[:4] == ["authorize", "token", "userinfo", "token"]
    assert "logout" in operations
    authorize, token_record = records[0], records[1]
    assert authorize["correlation"]["code_challenge_method"] == "S256"
    assert authorize["correlation"]["nonce"] == nonce
    assert authorize["correlation"]["acr_values"] == "eidas1"
    assert token_record["correlation"] == {
        "client_id": "segur-sut",
        "grant_type": "authorization_code",
        "client_auth": "client_secret_basic",
        "national_id": GP,
    }
    assert token_record["outcome"]["pkce"] == "verified"
    assert token_record["outcome"]["refresh_token_issued"] is True
    logout_record = next(record for record in records if record["operation"] == "logout")
    assert logout_record["outcome"] == {"session_ended": True}
    assert logout_record["correlation"] == {"client_id": "segur-sut", "national_id": GP}


def test_state_is_echoed_verbatim_and_the_code_is_single_use(psc_mock, metadata):
    register(psc_mock)
    with oidc_client(psc_mock) as client:
        location, _, verifier = login(psc_mock, client, metadata)
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == [client.state]
        code = query["code"][0]
        assert query["iss"] == [metadata["issuer"]]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
        first = client.post(metadata["token_endpoint"], data=form, auth=("segur-sut", "segur-sut-secret"))
        assert first.status_code == 200
        access_token = first.json()["access_token"]
        again = client.post(metadata["token_endpoint"], data=form, auth=("segur-sut", "segur-sut-secret"))
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
        bearer = {"Authorization": f"Bearer {access_token}"}
        revoked = client.request("GET", metadata["userinfo_endpoint"], headers=bearer, withhold_token=True)
        assert revoked.status_code == 401, "a replayed code revokes the tokens issued from it"


def test_private_key_jwt_client(psc_mock, metadata, jwks):
    register(psc_mock, "segur-sut-jwt")
    seq = psc_mock.last_seq()
    key = RSAKey.import_key(psc_mock.pki.key("auth-cli").read_bytes())
    with oidc_client(psc_mock, "segur-sut-jwt", key, token_endpoint_auth_method="private_key_jwt") as client:
        client.register_client_auth_method(PrivateKeyJWT(metadata["token_endpoint"]))
        location, nonce, verifier = login(psc_mock, client, metadata, national_id="899910000027", means="MOBILE")
        token = client.fetch_token(metadata["token_endpoint"], authorization_response=location, code_verifier=verifier)
        claims = validated_id_token(token["id_token"], jwks, metadata, "segur-sut-jwt", nonce, token["access_token"])
        assert claims["authMode"] == "MOBILE"
        introspected = client.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
        assert introspected.json()["active"] is True
    token_record = next(record for record in psc_mock.journal_since(seq) if record["operation"] == "token")
    assert token_record["correlation"]["client_auth"] == "private_key_jwt"


def token_record_peer(records: list[dict]) -> dict:
    return next(record for record in records if record["operation"] == "token")["peer"]


def test_tls_client_auth_client_on_the_mtls_aliases(psc_mock, metadata, jwks):
    register(psc_mock, "segur-sut-mtls")
    seq = psc_mock.last_seq()
    aliases = metadata["mtls_endpoint_aliases"]
    mtls = client_tls_context(psc_mock.pki, "auth-cli")
    with oidc_client(psc_mock, "segur-sut-mtls", None, token_endpoint_auth_method="none", verify=mtls) as client:
        location, nonce, verifier = login(psc_mock, client, metadata)
        token = client.fetch_token(aliases["token_endpoint"], authorization_response=location, code_verifier=verifier)
        validated_id_token(token["id_token"], jwks, metadata, "segur-sut-mtls", nonce, token["access_token"])
        assert client.get(aliases["userinfo_endpoint"]).json()["SubjectNameID"] == GP
        introspected = client.introspect_token(aliases["introspection_endpoint"], token=token["access_token"])
        assert introspected.json()["active"] is True
        thumbprint = introspected.json()["cnf"]["x5t#S256"]
    # RFC 8705: the access token is bound to auth-cli; presented without that certificate it is refused.
    with oidc_client(psc_mock, "segur-sut-mtls", None, token_endpoint_auth_method="none") as stranger:
        stranger.token = token
        refused = stranger.get(metadata["userinfo_endpoint"])
    assert refused.status_code == 401 and "another client certificate" in refused.json()["error_description"]
    records = psc_mock.journal_since(seq)
    assert records[-1]["outcome"]["token"] == "wrong_certificate"
    assert thumbprint == token_record_peer(records)["cert_sha256"]
    token_record = next(record for record in records if record["operation"] == "token")
    assert token_record["correlation"]["client_auth"] == "tls_client_auth"
    assert token_record["peer"]["cn"] == "HOPITAL TEST SEGUR AUTH_CLI"


def test_signed_userinfo_when_the_client_registered_it(psc_mock, metadata, jwks):
    register(psc_mock, userinfo_signed_response_alg="RS256")
    with oidc_client(psc_mock) as client:
        location, _, verifier = login(psc_mock, client, metadata)
        client.fetch_token(metadata["token_endpoint"], authorization_response=location, code_verifier=verifier)
        response = client.get(metadata["userinfo_endpoint"])
    assert response.headers["content-type"] == "application/jwt"
    claims = jwt.decode(response.text, jwks, algorithms=["RS256"]).claims
    assert (claims["iss"], claims["aud"], claims["SubjectNameID"]) == (metadata["issuer"], "segur-sut", GP)
