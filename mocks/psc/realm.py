"""The esante-wallet realm's behaviour: settings, sessions, codes, tokens and CIBA requests.

No HTTP here (protocol.py is the wire). Everything sits behind one lock because three
callers share it: the mock loop, the control API (seed / reset) and other mocks of the same
host that accept PSC access tokens through ``check_access_token``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ClaimError, JoseError
from joserfc.jwk import RSAKey

from segur.mocks.psc.clients import AUTH_METHODS, GRANT_TYPES, Client, default_clients, merge_client
from segur.mocks.psc.directory import Professional, default_professionals, professional_from_json
from segur.pki import Pki

REALM_PATH = "/auth/realms/esante-wallet"
OIDC_PATH = "/protocol/openid-connect"
WALLET_PATH = REALM_PATH + OIDC_PATH + "/auth"
ACR = "eidas1"
# The fault ``low_acr`` answers Keycloak's own "0": the level of an authentication that was not made
# now (an SSO cookie), below the eIDAS substantial level PSC asserts with "eidas1".
LOW_ACR = "0"
CODE_LIFETIME = 60.0
# token_lifetime governs access tokens; an ID token lives at least this long, so that a SUT checking
# it right after the exchange never races a one-second access token set by a scenario.
ID_TOKEN_MIN_LIFETIME = 60
SLOW_DOWN_STEP = 5.0
MEANS = ("CARD", "MOBILE")
SUPPORTED_SCOPES = ("openid", "scope_all", "profile")
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")
ID_TOKEN_FAULTS = ("forged_id_token_signature", "wrong_nonce", "wrong_aud", "expired_id_token", "low_acr")
CIBA_FAULTS = ("ciba_refused", "ciba_expired")  # taken at the CIBA request, decide its outcome
CIBA_POLL_FAULTS = ("ciba_slow_down",)  # taken at a poll: that poll answers slow_down
CIBA_OUTCOMES = ("accept", "refuse", "expire")
LOGIN_OUTCOMES = ("accept", "refuse", "timeout")
WRONG_AUDIENCE = "psc-autre-client"
CLAIMS_SUPPORTED = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "sid",
    "preferred_username",
    "given_name",
    "family_name",
    "SubjectNameID",
    "otherIds",
    "SubjectOrganization",
    "SubjectOrganizationID",
    "SubjectRole",
    "Secteur_Activite",
    "SubjectRefPro",
    "authMode",
)
SEED_FIELDS = {
    "clients",
    "professionals",
    "next_login",
    "ciba",
    "token_lifetime",
    "refresh_lifetime",
    "tolerate_standard_discovery",
}


class OAuthError(Exception):
    """An OAuth 2.0 refusal: rendered as ``{"error", "error_description"}``; ``outcome`` goes to the journal."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        *,
        headers: list[tuple[str, str]] | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or []
        self.outcome = outcome or {}


@dataclass
class Settings:
    """What a test tunes through the control API; ``next_login`` is consumed by one authorize request."""

    token_lifetime: int = 120
    refresh_lifetime: int = 1800
    tolerate_standard_discovery: bool = False
    ciba_interval: float = 5
    ciba_pending_polls: int = 1
    ciba_outcome: str = "accept"
    ciba_expires_in: float = 120
    next_login: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "token_lifetime": self.token_lifetime,
            "refresh_lifetime": self.refresh_lifetime,
            "tolerate_standard_discovery": self.tolerate_standard_discovery,
            "ciba": {
                "interval": self.ciba_interval,
                "pending_polls": self.ciba_pending_polls,
                "outcome": self.ciba_outcome,
                "expires_in": self.ciba_expires_in,
            },
            "next_login": self.next_login,
        }


@dataclass
class Session:
    """A Keycloak user session: one authentication of one professional for one client."""

    sid: str
    client_id: str
    national_id: str
    means: str
    auth_time: int
    scope: str
    nonce: str | None
    ended_by: str = ""  # "" while active, else "logout" or "code_replay"


@dataclass
class CodeGrant:
    session: Session
    client_id: str
    redirect_uri: str
    challenge: str
    expires: float  # time.monotonic()
    used: bool = False


@dataclass
class RefreshGrant:
    session: Session
    client_id: str
    iat: int
    exp: int
    scope: str
    revoked: bool = False


@dataclass
class CibaRequest:
    auth_req_id: str
    client_id: str
    national_id: str
    channel: str
    scope: str
    binding_message: str
    interval: float
    expires_in: float
    expires_at: float  # time.monotonic()
    pending_left: int
    injected: str | None = None
    last_poll: float | None = None
    state: str = "pending"  # pending | issued | denied | expired


@dataclass
class Issued:
    """A token response and what the journal records about it."""

    body: dict[str, Any]
    outcome: dict[str, Any] = field(default_factory=dict)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_s256(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)), RFC 7636 §4.2."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _number(name: str, value: Any, *, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        raise ValueError(f"{name} must be a {'non-negative integer' if integer else 'non-negative number'}")
    return value


def expiry(now: float, lifetime: int) -> int:
    """``exp`` rounded up, so a token lives at least ``lifetime`` seconds; 0 gives one expired on arrival."""
    return math.ceil(now + lifetime) if lifetime else int(now)


def json_number(value: float) -> float:
    """2.0 as 2: intervals and lifetimes are integers on the wire unless a test asked for a fraction."""
    return int(value) if float(value).is_integer() else value


class Realm:
    """One realm's state. Keys live as long as the mock: a SUT that cached the JWKS stays right after a reset."""

    def __init__(self, pki: Pki | None = None) -> None:
        self.pki = pki
        self.lock = threading.RLock()
        self.signing_key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self._forged_key: RSAKey | None = None
        self.urls: list[str] = []
        self._restore()

    def _restore(self) -> None:
        self.clients: dict[str, Client] = default_clients()
        self.professionals: dict[str, Professional] = default_professionals()
        self.settings = Settings()
        self.sessions: dict[str, Session] = {}
        self.codes: dict[str, CodeGrant] = {}
        self.access_tokens: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.ciba_requests: dict[str, CibaRequest] = {}
        self.assertion_ids: dict[tuple[str, str], float] = {}

    def reset(self) -> None:
        with self.lock:
            self._restore()

    # --- where the realm lives ------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return (self.urls[0] if self.urls else "https://127.0.0.1") + REALM_PATH

    def endpoint(self, name: str, *, mtls: bool = False) -> str:
        """``name`` relative to /protocol/openid-connect, on the issuer's host or its mTLS alias."""
        base = self.urls[2] if mtls and len(self.urls) > 2 else (self.urls[0] if self.urls else "https://127.0.0.1")
        return base + REALM_PATH + OIDC_PATH + name

    @property
    def authorization_endpoint(self) -> str:
        return (self.urls[1] if len(self.urls) > 1 else "https://127.0.0.1") + WALLET_PATH

    def metadata(self) -> dict[str, Any]:
        """The wallet-openid-configuration document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.endpoint("/token"),
            "introspection_endpoint": self.endpoint("/token/introspect"),
            "userinfo_endpoint": self.endpoint("/userinfo"),
            "end_session_endpoint": self.endpoint("/logout"),
            "jwks_uri": self.endpoint("/certs"),
            "backchannel_authentication_endpoint": self.endpoint("/ext/ciba/auth"),
            "grant_types_supported": list(GRANT_TYPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "claims_supported": list(CLAIMS_SUPPORTED),
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "acr_values_supported": [ACR],
            "id_token_signing_alg_values_supported": ["RS256"],
            "userinfo_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "code_challenge_methods_supported": ["S256"],
            "backchannel_token_delivery_modes_supported": ["poll"],
            "backchannel_user_code_parameter_supported": False,
            "tls_client_certificate_bound_access_tokens": True,
            "mtls_endpoint_aliases": {
                "token_endpoint": self.endpoint("/token", mtls=True),
                "introspection_endpoint": self.endpoint("/token/introspect", mtls=True),
                "userinfo_endpoint": self.endpoint("/userinfo", mtls=True),
                "backchannel_authentication_endpoint": self.endpoint("/ext/ciba/auth", mtls=True),
            },
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.as_dict(private=False)]}

    # --- control API ----------------------------------------------------------------------------

    def seed(self, state: dict[str, Any]) -> None:
        """Merge ``state`` (see SEED_FIELDS); all of it is validated before any of it applies."""
        if not isinstance(state, dict):
            raise ValueError("the PSC state must be a JSON object")
        unknown = set(state) - SEED_FIELDS
        if unknown:
            raise ValueError(f"unknown PSC state fields: {sorted(unknown)}")
        with self.lock:
            clients = dict(self.clients)
            for entry in _list(state, "clients"):
                client_id = entry.get("client_id") if isinstance(entry, dict) else None
                client = merge_client(clients.get(client_id) if isinstance(client_id, str) else None, entry)
                clients[client.client_id] = client
            professionals = dict(self.professionals)
            for entry in _list(state, "professionals"):
                professional = professional_from_json(entry)
                professionals[professional.national_id] = professional
            settings = replace(self.settings)
            if "next_login" in state:
                settings.next_login = _next_login(state["next_login"], professionals)
            if "ciba" in state:
                _merge_ciba(settings, state["ciba"])
            if "token_lifetime" in state:
                settings.token_lifetime = int(_number("token_lifetime", state["token_lifetime"], integer=True))
            if "refresh_lifetime" in state:
                settings.refresh_lifetime = int(_number("refresh_lifetime", state["refresh_lifetime"], integer=True))
            if "tolerate_standard_discovery" in state:
                if not isinstance(state["tolerate_standard_discovery"], bool):
                    raise ValueError("tolerate_standard_discovery must be a boolean")
                settings.tolerate_standard_discovery = state["tolerate_standard_discovery"]
            self.clients, self.professionals, self.settings = clients, professionals, settings

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "issuer": self.issuer,
                "discovery": self.issuer + "/.well-known/wallet-openid-configuration",
                "clients": [client.to_json() for client in self.clients.values()],
                "professionals": [professional.summary() for professional in self.professionals.values()],
                **self.settings.to_json(),
                "active_sessions": sum(1 for session in self.sessions.values() if not session.ended_by),
            }

    # --- authentication -------------------------------------------------------------------------

    def take_next_login(self) -> dict[str, str] | None:
        """The pre-selected login, once."""
        with self.lock:
            chosen, self.settings.next_login = self.settings.next_login, None
            return chosen

    def login(self, client_id: str, national_id: str, means: str, scope: str, nonce: str | None) -> Session:
        with self.lock:
            if national_id not in self.professionals:
                raise ValueError(f"unknown professional {national_id!r}")
            if means not in MEANS:
                raise ValueError(f"means must be one of {MEANS}")
            session = Session(
                sid=str(uuid.uuid4()),
                client_id=client_id,
                national_id=national_id,
                means=means,
                auth_time=int(time.time()),
                scope=granted_scope(scope),
                nonce=nonce,
            )
            self.sessions[session.sid] = session
            return session

    def issue_code(self, session: Session, redirect_uri: str, challenge: str) -> str:
        with self.lock:
            code = f"{secrets.token_urlsafe(32)}.{session.sid}"
            self.codes[code] = CodeGrant(session, session.client_id, redirect_uri, challenge, _clock() + CODE_LIFETIME)
            return code

    def redeem_code(
        self, client: Client, code: str, redirect_uri: str | None, verifier: str | None
    ) -> tuple[Session, str]:
        """The session behind ``code``, and ``"verified"`` or ``"absent"`` for PKCE; OAuthError otherwise.

        A code is spent by its first redemption attempt, good or bad; a second one revokes what the
        first produced (RFC 6749 §4.1.2).
        """
        with self.lock:
            grant = self.codes.get(code)
            if grant is None:
                raise OAuthError("invalid_grant", "Code not valid")
            if grant.used:
                grant.session.ended_by = grant.session.ended_by or "code_replay"
                raise OAuthError("invalid_grant", "Code already used: the tokens issued from it are revoked")
            grant.used = True
            if grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "Code was issued to another client")
            if _clock() >= grant.expires:
                raise OAuthError("invalid_grant", "Code expired")
            if redirect_uri is None:
                raise OAuthError("invalid_request", "Missing parameter: redirect_uri")
            if redirect_uri != grant.redirect_uri:
                raise OAuthError("invalid_grant", "Incorrect redirect_uri")
            if grant.challenge:
                if verifier is None:
                    raise OAuthError("invalid_grant", "PKCE code verifier not specified", outcome={"pkce": "missing"})
                if not valid_pkce_value(verifier):
                    raise OAuthError("invalid_grant", "Invalid code verifier", outcome={"pkce": "malformed"})
                if not hmac.compare_digest(pkce_s256(verifier), grant.challenge):
                    raise OAuthError("invalid_grant", "PKCE verification failed", outcome={"pkce": "mismatch"})
                return grant.session, "verified"
            if verifier is not None:
                raise OAuthError(
                    "invalid_grant",
                    "code_verifier sent but the authorization request had no code_challenge",
                    outcome={"pkce": "unexpected"},
                )
            return grant.session, "absent"

    def redeem_refresh(self, client: Client, token: str) -> Session:
        """The session of a valid refresh token, which is revoked: refresh tokens rotate."""
        with self.lock:
            grant = self.refresh_tokens.get(token)
            if grant is None:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            if grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "Refresh token was issued to another client")
            if grant.revoked or grant.session.ended_by:
                raise OAuthError("invalid_grant", "Refresh token revoked or session ended")
            if time.time() >= grant.exp:
                raise OAuthError("invalid_grant", "Refresh token expired")
            grant.revoked = True
            return grant.session

    def issue_tokens(
        self, session: Session, client: Client, fault: str | None = None, bound_to: str | None = None
    ) -> Issued:
        """Access, ID and (if the client may refresh) refresh tokens; ``fault`` is an ID_TOKEN_FAULTS kind;
        ``bound_to`` a client-certificate thumbprint the access token is bound to (``cnf``)."""
        with self.lock:
            professional = self.professionals[session.national_id]
            clock = time.time()
            now = int(clock)
            lifetime = self.settings.token_lifetime
            acr = LOW_ACR if fault == "low_acr" else ACR
            # What Keycloak puts in both tokens; each then adds its own (typ, exp, scope / at_hash, nonce).
            common = {
                "iat": now,
                "auth_time": session.auth_time,
                "iss": self.issuer,
                "aud": client.client_id,
                "sub": professional.sub,
                "azp": client.client_id,
                "session_state": session.sid,
                "acr": acr,
                "sid": session.sid,
                "authMode": session.means,
                "preferred_username": session.national_id,
            }
            access_claims: dict[str, Any] = {
                **common,
                "exp": expiry(clock, lifetime),
                "jti": str(uuid.uuid4()),
                "typ": "Bearer",
                "scope": session.scope,
            }
            if bound_to:
                access_claims["cnf"] = {"x5t#S256": bound_to}
            access_token = self.sign(access_claims)
            self.access_tokens[access_claims["jti"]] = session
            id_claims: dict[str, Any] = {
                **common,
                "exp": expiry(clock, max(lifetime, ID_TOKEN_MIN_LIFETIME)),
                "jti": str(uuid.uuid4()),
                "typ": "ID",
                "at_hash": b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16]),
            }
            if session.nonce is not None:
                id_claims["nonce"] = session.nonce
            if fault == "wrong_nonce":
                id_claims["nonce"] = "autre-" + secrets.token_urlsafe(12)
            elif fault == "wrong_aud":
                id_claims["aud"] = id_claims["azp"] = WRONG_AUDIENCE
            elif fault == "expired_id_token":
                id_claims["iat"], id_claims["exp"] = now - ID_TOKEN_MIN_LIFETIME - 60, now - 60
            id_token = self.sign(id_claims, forged=fault == "forged_id_token_signature")
            body: dict[str, Any] = {
                "access_token": access_token,
                "expires_in": lifetime,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "id_token": id_token,
                "not-before-policy": 0,
                "session_state": session.sid,
                "scope": session.scope,
            }
            refresh = "refresh_token" in client.grant_types
            if refresh:
                token = secrets.token_urlsafe(48)
                exp = expiry(clock, self.settings.refresh_lifetime)
                self.refresh_tokens[token] = RefreshGrant(session, client.client_id, now, exp, session.scope)
                body["refresh_token"] = token
                body["refresh_expires_in"] = self.settings.refresh_lifetime
            outcome: dict[str, Any] = {
                "access_token_jti": access_claims["jti"],
                "access_token_exp": access_claims["exp"],
                "id_token_jti": id_claims["jti"],
                "refresh_token_issued": refresh,
            }
            if fault:
                outcome["injected"] = fault
            return Issued(body, outcome)

    def sign(self, claims: dict[str, Any], *, forged: bool = False) -> str:
        """RS256 with our ``kid``; ``forged`` signs with another key under the same ``kid``."""
        key = self.signing_key
        if forged:
            if self._forged_key is None:
                self._forged_key = RSAKey.generate_key(2048, parameters={"kid": self.signing_key.kid})
            key = self._forged_key
        return jwt.encode({"alg": "RS256", "kid": self.signing_key.kid}, claims, key, algorithms=["RS256"])

    def _verify(self, token: str) -> dict[str, Any] | None:
        try:
            return jwt.decode(token, self.signing_key, algorithms=["RS256"]).claims
        except (JoseError, ValueError, TypeError):
            return None

    def check_access_token(self, token: str) -> tuple[str, dict[str, Any] | None]:
        """``("valid", claims)`` or ``("unknown" | "expired" | "revoked", claims or None)``."""
        with self.lock:
            claims = self._verify(token)
            if claims is None or claims.get("typ") != "Bearer" or claims.get("iss") != self.issuer:
                return "unknown", None
            session = self.access_tokens.get(str(claims.get("jti")))
            if session is None:
                return "unknown", None
            if time.time() >= claims.get("exp", 0):
                return "expired", claims
            if session.ended_by:
                return "revoked", claims
            return "valid", claims

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 answer as Keycloak gives it; ``{"active": false}`` tells nothing more."""
        with self.lock:
            status, claims = self.check_access_token(token)
            if status == "valid" and claims is not None:
                keys = ("iss", "sub", "aud", "exp", "iat", "jti", "scope", "acr", "azp", "sid", "authMode", "cnf")
                return {
                    "active": True,
                    **{key: claims[key] for key in keys if key in claims},
                    "client_id": claims["azp"],
                    "token_type": "Bearer",
                    "preferred_username": claims["preferred_username"],
                    "username": claims["preferred_username"],
                    "SubjectNameID": claims["preferred_username"],
                }
            grant = self.refresh_tokens.get(token)
            if grant is not None and not grant.revoked and not grant.session.ended_by and time.time() < grant.exp:
                return {
                    "active": True,
                    "token_type": "Refresh",
                    "iss": self.issuer,
                    "sub": self.professionals[grant.session.national_id].sub,
                    "aud": self.issuer,
                    "client_id": grant.client_id,
                    "azp": grant.client_id,
                    "exp": grant.exp,
                    "iat": grant.iat,
                    "scope": grant.scope,
                    "sid": grant.session.sid,
                }
            return {"active": False}

    def userinfo(self, claims: dict[str, Any]) -> dict[str, Any]:
        """The userinfo claims for a valid access token's claims."""
        with self.lock:
            session = self.access_tokens[claims["jti"]]
            professional = self.professionals[session.national_id]
            return professional.userinfo(scope_all="scope_all" in session.scope.split(), auth_mode=session.means)

    def id_token_hint(self, token: str) -> dict[str, Any]:
        """Claims of an ID token this realm signed (expired is fine: logout comes late); ValueError otherwise."""
        claims = self._verify(token)
        if claims is None:
            raise ValueError("id_token_hint is not an ID token signed by this realm")
        if claims.get("typ") != "ID" or claims.get("iss") != self.issuer:
            raise ValueError("id_token_hint is not an ID token of this realm")
        return claims

    def end_session(self, sid: str) -> bool:
        """Logout: every token of the session stops being active. False if it had already ended."""
        with self.lock:
            session = self.sessions.get(sid)
            if session is None or session.ended_by:
                return False
            session.ended_by = "logout"
            return True

    def session_of(self, sid: str) -> Session | None:
        with self.lock:
            return self.sessions.get(sid)

    # --- client authentication ------------------------------------------------------------------

    def verify_client_assertion(self, client: Client, assertion: str, audiences: list[str]) -> None:
        """RFC 7523 client assertion: signature with the registered key, iss = sub = client, aud, exp, fresh jti."""
        try:
            keys = client.verification_keys(self.pki)
        except ValueError as error:
            raise ValueError(f"client cannot use private_key_jwt: {error}") from error
        try:
            header = jws.extract_compact(assertion.encode("ascii")).protected
        except (JoseError, ValueError, TypeError, UnicodeError) as error:
            raise ValueError("client_assertion is not a compact JWS") from error
        alg = header.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            raise ValueError(f"client_assertion alg {alg!r} is not accepted (use one of {ASSERTION_ALGORITHMS})")
        kid = header.get("kid")
        candidates = [key for key in keys if kid is not None and key.kid == kid] or keys
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                claims = jwt.decode(assertion, key, algorithms=[alg]).claims
                break
            except (JoseError, ValueError, TypeError):
                continue
        if claims is None:
            raise ValueError("client_assertion signature does not verify with the client's registered key")
        registry = jwt.JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": client.client_id},
            sub={"essential": True, "value": client.client_id},
            aud={"essential": True, "values": audiences},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except ClaimError as error:
            raise ValueError(f"client_assertion claims: {error.description or error.error}") from error
        with self.lock:
            now = time.time()
            self.assertion_ids = {key: exp for key, exp in self.assertion_ids.items() if exp > now}
            replay_key = (client.client_id, str(claims["jti"]))
            if replay_key in self.assertion_ids:
                raise ValueError("client_assertion jti already used")
            self.assertion_ids[replay_key] = float(claims["exp"])

    # --- CIBA -----------------------------------------------------------------------------------

    def ciba_start(
        self, client: Client, national_id: str, channel: str, scope: str, binding_message: str, injected: str | None
    ) -> CibaRequest:
        with self.lock:
            settings = self.settings
            request = CibaRequest(
                auth_req_id=secrets.token_urlsafe(32),
                client_id=client.client_id,
                national_id=national_id,
                channel=channel,
                scope=scope,
                binding_message=binding_message,
                interval=settings.ciba_interval,
                expires_in=settings.ciba_expires_in,
                expires_at=_clock() + settings.ciba_expires_in,
                pending_left=settings.ciba_pending_polls,
                injected=injected,
            )
            self.ciba_requests[request.auth_req_id] = request
            return request

    def ciba_request(self, auth_req_id: str) -> CibaRequest | None:
        with self.lock:
            return self.ciba_requests.get(auth_req_id)

    def ciba_poll(
        self, client: Client, auth_req_id: str, take_fault: Callable[[tuple[str, ...]], str | None]
    ) -> tuple[Session, dict[str, Any]]:
        """A poll of the token endpoint (CIBA §10-11, slow_down as RFC 8628 §3.5); OAuthError until accepted.

        ``take_fault(kinds)`` consumes a pending fault of one of ``kinds`` for this poll, if any.
        """
        with self.lock:
            request = self.ciba_requests.get(auth_req_id)
            if request is None or request.client_id != client.client_id:
                raise OAuthError("invalid_grant", "Invalid auth_req_id")
            now = _clock()
            since = None if request.last_poll is None else now - request.last_poll
            required = request.interval
            outcome: dict[str, Any] = {
                "since_last_poll": None if since is None else round(since, 3),
                "interval": json_number(required),
            }
            request.last_poll = now

            def refuse(error: str, description: str) -> OAuthError:
                return OAuthError(error, description, outcome=outcome)

            if request.state == "issued":
                raise refuse("invalid_grant", "auth_req_id already used")
            if request.state == "denied":
                raise refuse("access_denied", "The user refused the authentication")
            if request.state == "expired" or now >= request.expires_at:
                request.state = "expired"
                raise refuse("expired_token", "The authentication request expired")
            too_soon = since is not None and since < required
            injected_slow_down = None if too_soon else take_fault(CIBA_POLL_FAULTS)
            if too_soon or injected_slow_down:
                request.interval = required + SLOW_DOWN_STEP
                outcome["next_interval"] = json_number(request.interval)
                if injected_slow_down:
                    outcome["injected"] = injected_slow_down
                wait = json_number(request.interval)
                raise refuse("slow_down", f"Slow down: poll no more often than every {wait} s")
            if request.pending_left > 0:
                request.pending_left -= 1
                raise refuse("authorization_pending", "The user has not answered yet")
            injected = request.injected or take_fault(CIBA_FAULTS)
            if injected:
                outcome["injected"] = injected
            forced = {"ciba_refused": "refuse", "ciba_expired": "expire"}
            decision = forced.get(injected or "", self.settings.ciba_outcome)
            if decision == "refuse":
                request.state = "denied"
                raise refuse("access_denied", "The user refused the authentication")
            if decision == "expire":
                request.state = "expired"
                raise refuse("expired_token", "The authentication request expired")
            request.state = "issued"
            session = self.login(client.client_id, request.national_id, request.channel, request.scope, None)
            return session, outcome


def granted_scope(requested: str) -> str:
    """Keycloak grants the requested scopes it knows, openid first."""
    asked = requested.split()
    return " ".join(["openid", *[scope for scope in SUPPORTED_SCOPES[1:] if scope in asked]])


def valid_pkce_value(value: str) -> bool:
    """43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)."""
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return 43 <= len(value) <= 128 and set(value) <= allowed


def _clock() -> float:
    return time.monotonic()


def _list(state: dict[str, Any], name: str) -> list[Any]:
    value = state.get(name, [])
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list")
    return value


def _next_login(value: Any, professionals: dict[str, Professional]) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("next_login must be a JSON object or null")
    unknown = set(value) - {"national_id", "means", "outcome"}
    if unknown:
        raise ValueError(f"unknown next_login fields: {sorted(unknown)}")
    chosen = {"means": "CARD", "outcome": "accept", **value}
    if chosen.get("national_id") not in professionals:
        raise ValueError(f"next_login.national_id must be a known professional, got {chosen.get('national_id')!r}")
    if chosen["means"] not in MEANS:
        raise ValueError(f"next_login.means must be one of {MEANS}")
    if chosen["outcome"] not in LOGIN_OUTCOMES:
        raise ValueError(f"next_login.outcome must be one of {LOGIN_OUTCOMES}")
    return chosen


def _merge_ciba(settings: Settings, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError("ciba must be a JSON object")
    unknown = set(value) - {"interval", "pending_polls", "outcome", "expires_in"}
    if unknown:
        raise ValueError(f"unknown ciba fields: {sorted(unknown)}")
    if "interval" in value:
        settings.ciba_interval = _number("ciba.interval", value["interval"])
    if "pending_polls" in value:
        settings.ciba_pending_polls = int(_number("ciba.pending_polls", value["pending_polls"], integer=True))
    if "expires_in" in value:
        settings.ciba_expires_in = _number("ciba.expires_in", value["expires_in"])
    if "outcome" in value:
        if value["outcome"] not in CIBA_OUTCOMES:
            raise ValueError(f"ciba.outcome must be one of {CIBA_OUTCOMES}")
        settings.ciba_outcome = value["outcome"]
