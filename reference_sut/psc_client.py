"""The reference SUT's Pro Santé Connect client: OIDC code flow with PKCE, CIBA, refresh, logout.

Written independently of the PSC mock on purpose (the self-test must not pass because both
sides share a bug): PyJWT for every signature and claim check, httpx for the wire, nothing
imported from mocks/. The validation functions are pure so that they can be unit-tested
without a provider; ``PscClient`` only adds the network and the in-memory state.
Tokens live in memory only (PSC/PROV.06), unless the ``psc-persists-tokens`` defect is on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import httpx
import jwt

WELL_KNOWN = "/.well-known/wallet-openid-configuration"
SCOPE = "openid scope_all"
ACR = "eidas1"
ALGORITHMS = ["RS256"]
CIBA_GRANT = "urn:openid:params:grant-type:ciba"
LEEWAY = 10  # seconds of clock skew tolerated on exp / iat
REFRESH_MARGIN = 30  # refresh when the access token expires within this many seconds
PENDING_TTL = 600  # a code-flow login must come back within 10 minutes
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5 / CIBA §11: add 5 s to the interval on slow_down


class PscError(Exception):
    """A PSC login or session failure; ``code`` becomes the trigger API error code."""

    code = "psc_error"
    status = 400

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class PscUnavailable(PscError):
    """PSC did not answer usably (network, TLS, 5xx, unreadable body)."""

    code = "psc_unavailable"
    status = 502


class PscStateMismatch(PscError):
    """The callback's ``state`` is missing or matches no pending login (CSRF, PSC/PROV.02)."""

    code = "psc_state_mismatch"


class IdTokenInvalid(PscError):
    """The ID token failed a check: signature, alg, iss, aud, nonce, acr, exp, iat."""

    code = "id_token_invalid"


class UserinfoInvalid(PscError):
    """The userinfo answer cannot be trusted or lacks the national id."""

    code = "userinfo_invalid"


class PscRefused(PscError):
    """PSC answered an OAuth error (``access_denied``, ``expired_token``, ``invalid_grant``...): code kept."""


class NotLoggedIn(PscError):
    """An action needs a PS session and there is none."""

    code = "not_logged_in"
    status = 409


# -- pure helpers (unit-tested without network) ----------------------------------------------------


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 §4.2 S256: BASE64URL(SHA256(ASCII(verifier))) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def load_jwks(jwks: dict[str, Any] | jwt.PyJWKSet) -> jwt.PyJWKSet:
    """Accept the JWKS JSON or an already-built set."""
    if isinstance(jwks, jwt.PyJWKSet):
        return jwks
    try:
        return jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as error:
        raise PscUnavailable(f"unusable JWKS: {error}") from error


def signing_key(token: str, jwks: jwt.PyJWKSet) -> jwt.PyJWK:
    """The RSA signature key named by the token's ``kid``; never a key the token chooses by other means."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise IdTokenInvalid(f"unreadable JWT header: {error}") from error
    if header.get("alg") not in ALGORITHMS:
        raise IdTokenInvalid(f"alg {header.get('alg')!r} refused: only RS256")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise IdTokenInvalid("JWT header without kid")
    try:
        key = jwks[kid]
    except KeyError as error:
        raise IdTokenInvalid(f"no key {kid!r} in the PSC JWKS") from error
    if key.key_type != "RSA" or (key.public_key_use or "sig") != "sig" or key.algorithm_name not in ALGORITHMS:
        raise IdTokenInvalid(f"key {kid!r} is not an RS256 signature key")
    return key


def validate_id_token(
    token: str,
    jwks: dict[str, Any] | jwt.PyJWKSet,
    issuer: str,
    client_id: str,
    nonce: str | None,
    defects: Collection[str] = (),
    leeway: float = LEEWAY,
) -> dict[str, Any]:
    """Check an ID token as OIDC Core §3.1.3.7 asks; returns its claims or raises ``IdTokenInvalid``.

    ``nonce`` is None for CIBA (no nonce is sent there). Each PSC defect switches off exactly
    one check, which is how the self-test proves the harness sees it.
    """
    forged = "psc-accepts-forged-id-token" in defects
    options: dict[str, Any] = {
        "verify_signature": not forged,
        "verify_exp": "psc-accepts-expired-id-token" not in defects,
        "verify_iat": True,
        "verify_nbf": True,
        "verify_iss": True,
        "verify_aud": True,
        "require": ["iss", "sub", "aud", "exp", "iat"],
    }
    try:
        if forged:
            claims = jwt.decode(token, options=options, audience=client_id, issuer=issuer, leeway=leeway)
        else:
            key = signing_key(token, load_jwks(jwks))
            claims = jwt.decode(
                token, key.key, algorithms=ALGORITHMS, options=options, audience=client_id, issuer=issuer, leeway=leeway
            )
    except jwt.PyJWTError as error:
        raise IdTokenInvalid(f"{type(error).__name__}: {error}") from error
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise IdTokenInvalid(f"azp {azp!r} is not this client")
    if nonce is not None and "psc-no-nonce-check" not in defects:
        received = claims.get("nonce")
        if not isinstance(received, str) or not hmac.compare_digest(received, nonce):
            raise IdTokenInvalid("nonce does not match the one sent")
    if claims.get("acr") != ACR:
        raise IdTokenInvalid(f"acr {claims.get('acr')!r} is not {ACR}")
    return claims


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def read_userinfo(
    content_type: str,
    body: bytes,
    jwks: Callable[[str], dict[str, Any] | jwt.PyJWKSet],
    issuer: str,
    client_id: str,
) -> dict[str, Any]:
    """Userinfo as JSON, or as a signed JWT (``application/jwt``) whose signature must verify.

    ``jwks`` maps the token to the key set, so that keys are only fetched for a signed answer.
    """
    media = media_type(content_type)
    if media == "application/jwt":
        token = body.decode("ascii", "replace").strip()
        try:
            key = signing_key(token, load_jwks(jwks(token)))
            unverified = jwt.decode(token, options={"verify_signature": False})
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=client_id if "aud" in unverified else None,
                issuer=issuer if "iss" in unverified else None,
                options={"verify_aud": "aud" in unverified, "verify_iss": "iss" in unverified},
                leeway=LEEWAY,
            )
        except (IdTokenInvalid, jwt.PyJWTError) as error:
            raise UserinfoInvalid(f"signed userinfo refused: {error}") from error
        return claims
    if media != "application/json":
        raise UserinfoInvalid(f"unexpected userinfo content type {content_type!r}")
    try:
        data = json.loads(body)
    except ValueError as error:
        raise UserinfoInvalid(f"unreadable userinfo: {error}") from error
    if not isinstance(data, dict):
        raise UserinfoInvalid("userinfo is not a JSON object")
    return data


def national_id(userinfo: dict[str, Any], id_claims: dict[str, Any], defects: Collection[str] = ()) -> str:
    """The PS's national id (IDNPS) is userinfo ``SubjectNameID``; ``sub`` is a PSC-internal id."""
    if "psc-sub-as-national-id" in defects:
        return str(id_claims["sub"])
    value = userinfo.get("SubjectNameID")
    if not isinstance(value, str) or not value:
        raise UserinfoInvalid("userinfo without SubjectNameID")
    return value


def next_interval(interval: float, error: str, defects: Collection[str] = ()) -> float:
    """CIBA polling: ``slow_down`` adds 5 s for every later poll; anything else keeps the pace."""
    if error == "slow_down" and "psc-ignores-slow-down" not in defects:
        return interval + SLOW_DOWN_STEP
    return interval


def with_query(url: str, params: dict[str, str]) -> str:
    """Append parameters to an endpoint URL that may already carry a query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- state ---------------------------------------------------------------------------------------


@dataclass
class PscSettings:
    discovery_url: str
    client_id: str
    client_secret: str
    ca: str
    redirect_uri: str
    post_logout_redirect_uri: str
    data_dir: Path
    timeout: float = 10.0
    ciba_max_wait: float = 50.0  # stay under the harness's 60 s per action


@dataclass
class PendingLogin:
    nonce: str | None
    verifier: str | None
    created: float = field(default_factory=time.monotonic)


@dataclass
class PscSession:
    """One PS's session, in memory only."""

    mode: str
    access_token: str
    refresh_token: str | None
    id_token: str
    expires_at: float
    id_claims: dict[str, Any]
    national_id: str
    nom: str | None = None
    prenom: str | None = None
    auth_mode: str | None = None
    refreshes: int = 0


class PscClient:
    """A confidential OIDC client of PSC (client_secret_basic), for one PS at a time."""

    def __init__(
        self, settings: PscSettings, defects: Collection[str] = (), sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.settings = settings
        self.defects = frozenset(defects)
        self._sleep = sleep
        context = ssl.create_default_context(cafile=settings.ca)
        self._http = httpx.Client(verify=context, timeout=settings.timeout, follow_redirects=False)
        self._metadata: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKSet | None = None
        self._pending: dict[str, PendingLogin] = {}
        self._lock = threading.RLock()
        self.session: PscSession | None = None

    def close(self) -> None:
        self._http.close()

    def forget(self) -> None:
        """Drop the session, every pending login and the cached discovery and keys (reset)."""
        with self._lock:
            self.session = None
            self._pending.clear()
            self._metadata = None
            self._jwks = None

    def drop_session(self) -> PscSession:
        """Forget the PS's session locally; raises ``NotLoggedIn`` when there is none."""
        with self._lock:
            session, self.session = self.session, None
        if session is None:
            raise NotLoggedIn("no PS session to log out")
        return session

    # -- discovery and keys ----------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The discovery document, fetched once; every endpoint comes from it (auth and wallet differ)."""
        if self._metadata is None:
            url = self.settings.discovery_url
            if WELL_KNOWN not in url:
                url = url.rstrip("/") + WELL_KNOWN
            data = self._json(self._get(url), "discovery")
            issuer = data.get("issuer")
            if not isinstance(issuer, str) or url != issuer.rstrip("/") + WELL_KNOWN:
                raise PscUnavailable(f"discovery issuer {issuer!r} does not match {url}")
            for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
                if not isinstance(data.get(name), str):
                    raise PscUnavailable(f"discovery without {name}")
            self._metadata = data
        return self._metadata

    def jwks(self, kid: str | None = None) -> jwt.PyJWKSet:
        """The provider's keys; fetched again once when a token names a kid we do not know (rotation)."""
        known = self._jwks is not None and any(key.key_id == kid for key in self._jwks)
        if self._jwks is None or (kid is not None and not known):
            self._jwks = load_jwks(self._json(self._get(self.metadata()["jwks_uri"]), "jwks"))
        return self._jwks

    def _jwks_for(self, token: str) -> jwt.PyJWKSet:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            kid = None
        return self.jwks(kid if isinstance(kid, str) else None)

    # -- authorization code flow -----------------------------------------------------------------

    def authorization_url(self) -> str:
        """A fresh code-flow request: PKCE S256, random state and nonce kept for the callback."""
        endpoint = self.metadata()["authorization_endpoint"]
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
        }
        if "psc-no-acr-values" not in self.defects:
            params["acr_values"] = ACR
        verifier = None
        if "psc-no-pkce" not in self.defects:
            verifier = secrets.token_urlsafe(64)
            params["code_challenge"] = pkce_challenge(verifier)
            params["code_challenge_method"] = "S256"
        with self._lock:
            now = time.monotonic()
            for old in [s for s, p in self._pending.items() if now - p.created > PENDING_TTL]:
                del self._pending[old]
            self._pending[state] = PendingLogin(nonce, verifier)
        return with_query(endpoint, params)

    def take_pending(self, state: str | None) -> PendingLogin:
        """The login this callback answers; unknown or missing state is refused (PSC/PROV.02)."""
        with self._lock:
            pending = self._pending.pop(state, None) if state else None
            if pending is not None and time.monotonic() - pending.created <= PENDING_TTL:
                return pending
            if "psc-no-state-check" in self.defects:
                if self._pending:
                    return self._pending.pop(next(reversed(self._pending)))
                return PendingLogin(None, None)
        raise PscStateMismatch("state missing or unknown: callback refused")

    def complete(self, query: dict[str, str]) -> PscSession:
        """Handle the redirect back from PSC: state, error, code exchange, ID token, userinfo."""
        pending = self.take_pending(query.get("state"))
        if "error" in query:
            raise PscRefused(query.get("error_description") or query["error"], code=query["error"])
        code = query.get("code")
        if not code:
            raise PscError("callback without code", code="missing_code")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.redirect_uri}
        if pending.verifier is not None and "psc-no-pkce" not in self.defects:
            form["code_verifier"] = pending.verifier
        metadata = self.metadata()
        token_endpoint = metadata["token_endpoint"]
        if "psc-single-host" in self.defects:  # the classic bug: every endpoint on the authorize host
            wallet = urlsplit(metadata["authorization_endpoint"])
            token_endpoint = urlunsplit(urlsplit(token_endpoint)._replace(scheme=wallet.scheme, netloc=wallet.netloc))
        tokens = self._oauth_json(self._post(token_endpoint, form), "token")
        return self._open_session("web", tokens, pending.nonce)

    # -- CIBA --------------------------------------------------------------------------------------

    def ciba_login(self, national_id_hint: str, binding_message: str | None = None) -> PscSession:
        """Backchannel login on the PS's mobile app; blocks while polling the token endpoint."""
        metadata = self.metadata()
        endpoint = metadata.get("backchannel_authentication_endpoint")
        if not isinstance(endpoint, str):
            raise PscUnavailable("discovery without backchannel_authentication_endpoint")
        form = {
            "scope": SCOPE,
            "login_hint": national_id_hint,
            "binding_message": binding_message or f"{secrets.randbelow(100):02d}",
        }
        if "psc-no-acr-values" not in self.defects:
            form["acr_values"] = ACR
        answer = self._oauth_json(self._post(endpoint, form), "backchannel authentication")
        auth_req_id = answer.get("auth_req_id")
        if not isinstance(auth_req_id, str) or not auth_req_id:
            raise PscUnavailable("backchannel answer without auth_req_id")
        interval = float(answer.get("interval") or 5)
        expires_in = float(answer.get("expires_in") or 120)
        started = time.monotonic()
        deadline = started + min(expires_in, self.settings.ciba_max_wait)
        while True:
            if time.monotonic() + interval > deadline:
                if expires_in <= self.settings.ciba_max_wait:
                    raise PscRefused("the CIBA request expired before the PS answered", code="expired_token")
                raise PscError(f"no answer within {self.settings.ciba_max_wait:.0f} s", code="ciba_timeout")
            self._sleep(interval)
            response = self._post(metadata["token_endpoint"], {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id})
            if response.status_code == 200:
                return self._open_session("ciba", self._json(response, "token"), None)
            error = self._oauth_error(response)
            if error in ("authorization_pending", "slow_down"):
                interval = next_interval(interval, error, self.defects)
                continue
            raise PscRefused(_error_text(response, error), code=error)

    # -- session ---------------------------------------------------------------------------------

    def ensure_fresh(self) -> PscSession:
        """Refresh the access token (rotating the refresh token) when it expires within 30 s."""
        session = self.session
        if session is None:
            raise NotLoggedIn("no PS session")
        if "psc-no-refresh" in self.defects or session.expires_at - time.time() > REFRESH_MARGIN:
            return session
        if not session.refresh_token:
            self.session = None
            raise NotLoggedIn("the PS session expired and cannot be refreshed")
        try:
            tokens = self._token_request({"grant_type": "refresh_token", "refresh_token": session.refresh_token})
        except PscRefused as error:
            self.session = None
            raise NotLoggedIn(f"refresh refused ({error.code}): the PS must log in again") from error
        self._persist(tokens)
        if not isinstance(tokens.get("access_token"), str):
            raise PscUnavailable("refresh answer without access_token")
        if "id_token" in tokens:
            try:
                claims = validate_id_token(
                    tokens["id_token"],
                    self._jwks_for(tokens["id_token"]),
                    self.metadata()["issuer"],
                    self.settings.client_id,
                    None,
                    self.defects,
                )
                if claims["sub"] != session.id_claims["sub"]:
                    raise IdTokenInvalid("refreshed ID token names another subject")
            except IdTokenInvalid:
                self.session = None
                raise
            session.id_token, session.id_claims = tokens["id_token"], claims
        session.access_token = tokens["access_token"]
        session.refresh_token = tokens.get("refresh_token") or session.refresh_token
        session.expires_at = self._expires_at(tokens)
        session.refreshes += 1
        return session

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """GET userinfo with the Bearer token; JSON or signed JWT."""
        try:
            response = self._http.get(
                self.metadata()["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}
            )
        except httpx.HTTPError as error:
            raise PscUnavailable(f"userinfo: {type(error).__name__}: {error}") from error
        if response.status_code in (401, 403):
            raise PscError(f"userinfo refused the access token (HTTP {response.status_code})", "access_token_rejected")
        if response.status_code != 200:
            raise PscUnavailable(f"userinfo: HTTP {response.status_code}")
        return read_userinfo(
            response.headers.get("content-type", ""),
            response.content,
            self._jwks_for,
            self.metadata()["issuer"],
            self.settings.client_id,
        )

    def logout_url(self, post_logout_redirect_uri: str) -> str:
        """RP-initiated logout URL at end_session_endpoint; the local session is forgotten at once."""
        session = self.drop_session()
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            raise PscUnavailable("discovery without end_session_endpoint")
        return with_query(
            endpoint,
            {
                "id_token_hint": session.id_token,
                "post_logout_redirect_uri": post_logout_redirect_uri,
                "client_id": self.settings.client_id,
                "state": secrets.token_urlsafe(16),
            },
        )

    # -- internals ---------------------------------------------------------------------------------

    def _persist(self, tokens: dict[str, Any]) -> None:
        """Only the ``psc-persists-tokens`` defect writes tokens to disk (PSC/PROV.06)."""
        if "psc-persists-tokens" in self.defects:
            (self.settings.data_dir / "psc-session.json").write_text(json.dumps(tokens))

    def _open_session(self, mode: str, tokens: dict[str, Any], nonce: str | None) -> PscSession:
        self._persist(tokens)
        for name in ("access_token", "id_token"):
            if not isinstance(tokens.get(name), str):
                raise PscUnavailable(f"token answer without {name}")
        if str(tokens.get("token_type", "")).lower() != "bearer":
            raise PscUnavailable(f"token_type {tokens.get('token_type')!r} is not Bearer")
        metadata = self.metadata()
        claims = validate_id_token(
            tokens["id_token"],
            self._jwks_for(tokens["id_token"]),
            metadata["issuer"],
            self.settings.client_id,
            nonce,
            self.defects,
        )
        info = self.userinfo(tokens["access_token"])
        if "sub" in info and info["sub"] != claims["sub"]:
            raise UserinfoInvalid("userinfo sub differs from the ID token's")
        session = PscSession(
            mode=mode,
            access_token=tokens["access_token"],
            refresh_token=tokens.get("refresh_token"),
            id_token=tokens["id_token"],
            expires_at=self._expires_at(tokens),
            id_claims=claims,
            national_id=national_id(info, claims, self.defects),
            nom=info.get("family_name"),
            prenom=info.get("given_name"),
            auth_mode=self._auth_mode(tokens["access_token"]) or info.get("authMode"),
        )
        with self._lock:
            self.session = session
        return session

    def _auth_mode(self, access_token: str) -> str | None:
        """``authMode`` (CARD / MOBILE) from the access token, read only once its signature verifies."""
        try:
            key = signing_key(access_token, self._jwks_for(access_token))
            claims = jwt.decode(
                access_token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=self.metadata()["issuer"],
                options={"verify_aud": False, "verify_exp": False},
            )
        except (PscError, jwt.PyJWTError):
            return None
        value = claims.get("authMode")
        return value if isinstance(value, str) else None

    def _expires_at(self, tokens: dict[str, Any]) -> float:
        """From ``expires_in``; failing that, the access token's own ``exp``; failing that, now."""
        expires_in = tokens.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            return time.time() + float(expires_in)
        try:
            exp = jwt.decode(tokens["access_token"], options={"verify_signature": False}).get("exp")
        except jwt.PyJWTError:
            exp = None
        return float(exp) if isinstance(exp, int | float) else time.time()

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        return self._oauth_json(self._post(self.metadata()["token_endpoint"], form), "token")

    def _post(self, url: str, form: dict[str, str]) -> httpx.Response:
        """POST with client_secret_basic (RFC 6749 §2.3.1: id and secret form-encoded, then Basic)."""
        credentials = f"{quote_plus(self.settings.client_id)}:{quote_plus(self.settings.client_secret)}"
        basic = base64.b64encode(credentials.encode()).decode("ascii")
        try:
            return self._http.post(url, data=form, headers={"Authorization": f"Basic {basic}"})
        except httpx.HTTPError as error:
            raise PscUnavailable(f"{url}: {type(error).__name__}: {error}") from error

    def _get(self, url: str) -> httpx.Response:
        try:
            return self._http.get(url)
        except httpx.HTTPError as error:
            raise PscUnavailable(f"{url}: {type(error).__name__}: {error}") from error

    def _oauth_json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """A 200 JSON body, or the OAuth error as ``PscRefused`` (code kept), or ``PscUnavailable``."""
        if response.status_code == 200:
            return self._json(response, what)
        error = self._oauth_error(response)
        raise PscRefused(f"{what}: {_error_text(response, error)}", code=error)

    @staticmethod
    def _oauth_error(response: httpx.Response) -> str:
        if response.status_code >= 500:
            raise PscUnavailable(f"HTTP {response.status_code}")
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if not isinstance(error, str) or not error:
            raise PscUnavailable(f"HTTP {response.status_code} without an OAuth error")
        return error

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise PscUnavailable(f"{what}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as error:
            raise PscUnavailable(f"{what}: unreadable JSON") from error
        if not isinstance(data, dict):
            raise PscUnavailable(f"{what}: not a JSON object")
        return data


def _error_text(response: httpx.Response, error: str) -> str:
    try:
        description = response.json().get("error_description")
    except (ValueError, AttributeError):
        description = None
    return f"{error}: {description}" if description else error
