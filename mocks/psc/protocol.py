"""PSC on the wire: Keycloak's OpenID Connect endpoints of the esante-wallet realm, on three listeners.

- ``auth``: the issuer (discovery under PSC's own name, token, userinfo, introspection,
  logout, JWKS, CIBA);
- ``wallet``: the authorization endpoint and its login form, on another port, as PSC serves
  it from wallet.* while the issuer is auth.* (a client assuming one host fails visibly);
- ``mtls``: the RFC 8705 aliases (token, introspection, userinfo, CIBA) that ``tls_client_auth``
  clients must use, with a client certificate required at the handshake.

Every refusal is an OAuth error (JSON ``{"error", "error_description"}`` with Keycloak's status),
or an HTML page where a browser is at the other end and a redirect would be unsafe.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError

from segur.mocks.psc.clients import CIBA_GRANT, GRANT_TYPES, Client
from segur.mocks.psc.pages import login_page, message_page
from segur.mocks.psc.realm import (
    CIBA_FAULTS,
    ID_TOKEN_FAULTS,
    MEANS,
    OIDC_PATH,
    REALM_PATH,
    WALLET_PATH,
    OAuthError,
    Realm,
    granted_scope,
    json_number,
    valid_pkce_value,
)
from segur.mocks.runtime.faults import COMMON_FAULT_KINDS, FaultInjector
from segur.mocks.runtime.http import Handled, HttpRequest, HttpResponse

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
_OIDC = REALM_PATH + OIDC_PATH
_ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    _OIDC + "/token": ("token", ("POST",)),
    _OIDC + "/token/introspect": ("introspect", ("POST",)),
    _OIDC + "/userinfo": ("userinfo", ("GET", "POST")),
    _OIDC + "/ext/ciba/auth": ("ciba_auth", ("POST",)),
}
# path -> (operation, allowed methods), per listener
ROUTES: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "auth": {
        REALM_PATH + "/.well-known/wallet-openid-configuration": ("discovery", ("GET",)),
        REALM_PATH + "/.well-known/openid-configuration": ("discovery", ("GET",)),
        **_ALIASES,
        _OIDC + "/logout": ("logout", ("GET", "POST")),
        _OIDC + "/certs": ("certs", ("GET",)),
        WALLET_PATH: ("authorize", ()),  # served by the wallet host only
    },
    "wallet": {WALLET_PATH: ("authorize", ("GET", "POST"))},
    "mtls": dict(_ALIASES),
}
_BINDING_MESSAGE = re.compile(r"^[0-9]{2}$")


class PageError(Exception):
    """A refusal shown to the user as an HTML page (never a redirect)."""

    def __init__(self, error: str, title: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.title = title
        self.message = message
        self.status = status


@dataclass
class _Record:
    """What the journal will say about the exchange being handled."""

    correlation: dict[str, str] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)


class PscApp:
    """The HTTP application of one PSC listener (``auth``, ``wallet`` or ``mtls``); the realm is shared."""

    name = "psc"

    def __init__(self, realm: Realm, faults: FaultInjector, listener: str) -> None:
        if listener not in ROUTES:
            raise ValueError(f"listener must be one of {sorted(ROUTES)}")
        self.realm = realm
        self.faults = faults
        self.listener = listener

    # --- runtime entry points -------------------------------------------------------------------

    def reject(self, request: HttpRequest, status: int, reason: str) -> Handled:
        """Runtime refusals (413, 408, malformed HTTP, a mock bug as 500) as OAuth errors."""
        route = ROUTES[self.listener].get(request.path)
        operation = route[0] if route else "rejected"
        if operation == "authorize" and request.method == "POST":
            operation = "login"
        error = "server_error" if status >= 500 else "invalid_request"
        body = {"error": error, "error_description": reason}
        return Handled(_json(status, body), operation, {}, {"error": error, "error_description": reason})

    def handle(self, request: HttpRequest) -> Handled:
        route = ROUTES[self.listener].get(request.path)
        if route is None:
            description = f"No PSC endpoint at {request.path} on the {self.listener} host"
            body = {"error": "not_found", "error_description": description}
            return Handled(_json(404, body), "not_found", {}, dict(body))
        operation, methods = route
        if operation == "authorize" and request.method == "POST":
            operation = "login"
        record = _Record()
        fault = self.faults.take(operation, COMMON_FAULT_KINDS)
        if fault is not None and fault.kind == "http_error":
            error = fault.code or ("temporarily_unavailable" if fault.status == 503 else "server_error")
            body = {"error": error, "error_description": "Fault injected through the control API"}
            outcome = {"injected": "http_error", "error": error, "http_status": fault.status}
            return Handled(_json(fault.status, body), operation, {}, outcome)
        try:
            if not methods:
                raise OAuthError(
                    "not_found",
                    "The authorization endpoint is on the wallet host, not the issuer's: read it from discovery",
                    404,
                )
            if request.method not in methods:
                raise OAuthError(
                    "invalid_request",
                    f"HTTP method {request.method} not allowed here (use {' or '.join(methods)})",
                    405,
                    headers=[("Allow", ", ".join(methods))],
                )
            response = getattr(self, f"_{operation}")(request, record)
        except OAuthError as error:
            record.outcome.update({"error": error.error, "error_description": error.description, **error.outcome})
            body = {"error": error.error, "error_description": error.description}
            response = _json(error.status, body, [*NO_STORE, *error.headers])
        except PageError as error:
            record.outcome.update({"error": error.error, "error_description": error.message})
            response = _html(error.status, message_page(error.title, error.message))
        handled = Handled(response, operation, record.correlation, record.outcome)
        if fault is not None:  # timeout: answer, but late
            handled.delay = fault.delay
            handled.outcome["injected"] = "timeout"
        return handled

    def _take(self, operation: str, kinds: tuple[str, ...]) -> str | None:
        rule = self.faults.take(operation, kinds)
        return rule.kind if rule is not None else None

    # --- discovery and keys ---------------------------------------------------------------------

    def _discovery(self, request: HttpRequest, record: _Record) -> HttpResponse:
        document = request.path.rsplit("/", 1)[1]
        record.correlation["document"] = document
        if document == "openid-configuration" and not self.realm.settings.tolerate_standard_discovery:
            raise OAuthError("not_found", "PSC publishes its metadata at /.well-known/wallet-openid-configuration", 404)
        return _json(200, self.realm.metadata())

    def _certs(self, request: HttpRequest, record: _Record) -> HttpResponse:
        return _json(200, self.realm.jwks())

    # --- authorization endpoint (wallet host) ---------------------------------------------------

    def _authorize(self, request: HttpRequest, record: _Record) -> HttpResponse:
        try:
            params, repeated = parse_params(request.query)
        except ValueError as error:
            raise PageError("invalid_request", "Requête invalide", "Paramètres illisibles.") from error
        record.correlation.update(_authorize_correlation(params))
        client, redirect_uri = self._authorize_target(params, repeated)
        try:
            self._check_authorize(client, params, repeated)
        except OAuthError as error:
            return self._redirect_error(record, redirect_uri, params, error)
        chosen = self.realm.take_next_login()
        if chosen is None:
            record.outcome["login_page"] = True
            return self._login_form(params)
        record.outcome.update(
            {"preselected": chosen["outcome"], "national_id": chosen["national_id"], "means": chosen["means"]}
        )
        if chosen["outcome"] == "timeout":  # the professional never completes: the page is all there is
            record.outcome["login_page"] = True
            return self._login_form(params)
        if chosen["outcome"] == "refuse":
            denied = OAuthError("access_denied", "The user refused the authentication")
            return self._redirect_error(record, redirect_uri, params, denied)
        return self._redirect_code(record, client, params, chosen["national_id"], chosen["means"])

    def _login(self, request: HttpRequest, record: _Record) -> HttpResponse:
        """The login form posted back: the parameters are checked again, as if sent anew."""
        if _media_type(request) != FORM:
            raise PageError("invalid_request", "Requête invalide", "Le formulaire doit être envoyé encodé.")
        try:
            params, repeated = parse_params(request.body.decode("ascii"))
        except (UnicodeError, ValueError) as error:
            raise PageError("invalid_request", "Requête invalide", "Formulaire illisible.") from error
        record.correlation.update(_authorize_correlation(params))
        national_id, means = params.get("national_id", ""), params.get("means", "")
        record.correlation.update(national_id=national_id, means=means)
        client, redirect_uri = self._authorize_target(params, repeated)
        try:
            self._check_authorize(client, params, repeated)
        except OAuthError as error:
            return self._redirect_error(record, redirect_uri, params, error)
        action = params.get("action", "accept")
        if action == "refuse":
            denied = OAuthError("access_denied", "The user refused the authentication")
            return self._redirect_error(record, redirect_uri, params, denied)
        problem = ""
        if action != "accept":
            problem = "Action inconnue."
        elif national_id not in self.realm.professionals:
            problem = "Choisissez un professionnel de la liste."
        elif means not in MEANS:
            problem = "Choisissez la carte CPS ou l'e-CPS."
        if problem:
            record.outcome.update({"error": "invalid_request", "error_description": problem, "login_page": True})
            return self._login_form(params, problem, status=400)
        return self._redirect_code(record, client, params, national_id, means)

    def _authorize_target(self, params: dict[str, str], repeated: set[str]) -> tuple[Client, str]:
        """Client and redirect URI, which must be exactly registered before anything is sent back to it."""
        if {"client_id", "redirect_uri"} & repeated:
            raise PageError("invalid_request", "Requête invalide", "client_id ou redirect_uri est répété.")
        client_id = params.get("client_id")
        if not client_id:
            raise PageError("invalid_request", "Requête invalide", "Le paramètre client_id est absent.")
        client = self.realm.clients.get(client_id)
        if client is None:
            raise PageError("invalid_client", "Client inconnu", f"Le client {client_id} n'est pas enregistré.")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise PageError("invalid_request", "Requête invalide", "Le paramètre redirect_uri est absent.")
        if redirect_uri not in client.redirect_uris:
            raise PageError(
                "invalid_request",
                "Adresse de retour refusée",
                f"redirect_uri {redirect_uri} n'est pas enregistrée pour le client {client_id}.",
            )
        return client, redirect_uri

    @staticmethod
    def _check_authorize(client: Client, params: dict[str, str], repeated: set[str]) -> None:
        """Errors that may be redirected to the (registered) redirect URI, RFC 6749 §4.1.2.1."""
        if repeated:
            raise OAuthError("invalid_request", f"Parameters sent more than once: {', '.join(sorted(repeated))}")
        if "authorization_code" not in client.grant_types:
            raise OAuthError("unauthorized_client", "Client not allowed to use the authorization code flow")
        response_type = params.get("response_type")
        if not response_type:
            raise OAuthError("invalid_request", "Missing parameter: response_type")
        if response_type != "code":
            raise OAuthError("unsupported_response_type", f"Unsupported response_type {response_type!r}")
        if "openid" not in params.get("scope", "").split():
            raise OAuthError("invalid_scope", "The openid scope is required")
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if method is not None and method != "S256":
            raise OAuthError("invalid_request", "Invalid parameter: code_challenge_method (S256 only)")
        if challenge is None and method is not None:
            raise OAuthError("invalid_request", "Missing parameter: code_challenge")
        if challenge is not None and method is None:
            raise OAuthError("invalid_request", "Missing parameter: code_challenge_method (plain is not supported)")
        if challenge is not None and not valid_pkce_value(challenge):
            raise OAuthError("invalid_request", "Invalid parameter: code_challenge")
        if challenge is None and client.require_pkce:
            raise OAuthError("invalid_request", "Missing parameter: code_challenge (PKCE is required for this client)")

    def _login_form(self, params: dict[str, str], message: str = "", status: int = 200) -> HttpResponse:
        professionals = list(self.realm.professionals.values())
        return _html(status, login_page(WALLET_PATH, params, professionals, message))

    def _redirect_code(
        self, record: _Record, client: Client, params: dict[str, str], national_id: str, means: str
    ) -> HttpResponse:
        session = self.realm.login(client.client_id, national_id, means, params["scope"], params.get("nonce"))
        code = self.realm.issue_code(session, params["redirect_uri"], params.get("code_challenge", ""))
        record.outcome.update({"code_issued": True, "national_id": national_id, "means": means})
        answer = [*_state(params), ("session_state", session.sid), ("iss", self.realm.issuer), ("code", code)]
        return _redirect(add_query(params["redirect_uri"], answer))

    def _redirect_error(
        self, record: _Record, redirect_uri: str, params: dict[str, str], error: OAuthError
    ) -> HttpResponse:
        record.outcome.update({"error": error.error, "error_description": error.description, "redirected": True})
        answer = [("error", error.error), ("error_description", error.description), *_state(params)]
        return _redirect(add_query(redirect_uri, [*answer, ("iss", self.realm.issuer)]))

    # --- token endpoint -------------------------------------------------------------------------

    def _token(self, request: HttpRequest, record: _Record) -> HttpResponse:
        record.correlation.update(client_id="", grant_type="", client_auth="", national_id="")
        form = _form(request)
        grant_type = form.get("grant_type", "")
        record.correlation["grant_type"] = grant_type
        client = self._authenticate(request, form, record, "/token")
        if not grant_type:
            raise OAuthError("invalid_request", "Missing form parameter: grant_type")
        if grant_type not in GRANT_TYPES:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", f"Client not allowed to use grant_type {grant_type}")
        if grant_type == "authorization_code":
            code = _required(form, "code")
            redirect_uri, verifier = form.get("redirect_uri"), form.get("code_verifier")
            try:
                session, pkce = self.realm.redeem_code(client, code, redirect_uri, verifier)
            except OAuthError:
                grant = self.realm.codes.get(code)
                if grant is not None:
                    record.correlation["national_id"] = grant.session.national_id
                raise
            record.outcome["pkce"] = pkce
        elif grant_type == "refresh_token":
            session = self.realm.redeem_refresh(client, _required(form, "refresh_token"))
        else:
            auth_req_id = _required(form, "auth_req_id")
            pending = self.realm.ciba_request(auth_req_id)
            if pending is not None and pending.client_id == client.client_id:
                record.correlation["national_id"] = pending.national_id
            session, poll = self.realm.ciba_poll(client, auth_req_id, lambda kinds: self._take("token", kinds))
            record.outcome.update(poll)
        record.correlation["national_id"] = session.national_id
        # RFC 8705: a token obtained over the mTLS alias is bound to the certificate that got it.
        bound_to = request.peer.get("cert_sha256") if self.listener == "mtls" else None
        issued = self.realm.issue_tokens(session, client, self._take("token", ID_TOKEN_FAULTS), bound_to=bound_to)
        record.outcome.update(issued.outcome)
        return _json(200, issued.body, NO_STORE)

    def _authenticate(self, request: HttpRequest, form: dict[str, str], record: _Record, endpoint: str) -> Client:
        """The client, authenticated by the one method it registered; ``invalid_client`` (401) otherwise."""
        header = request.headers.get("authorization", "")
        present = {
            "client_secret_basic": header[:6].lower() == "basic ",
            "private_key_jwt": "client_assertion" in form or "client_assertion_type" in form,
            "client_secret_post": "client_secret" in form,
        }
        used = [method for method, is_present in present.items() if is_present]
        if len(used) > 1:
            raise OAuthError("invalid_request", f"More than one client authentication method: {', '.join(used)}")
        challenge = [("WWW-Authenticate", 'Basic realm="esante-wallet"')] if used == ["client_secret_basic"] else []

        def refuse(description: str) -> OAuthError:
            return OAuthError("invalid_client", description, 401, headers=challenge)

        secret = ""
        if used == ["client_secret_basic"]:
            method = "client_secret_basic"
            record.correlation["client_auth"] = method
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
                raw_id, raw_secret = decoded.split(":", 1)
            except (binascii.Error, UnicodeError, ValueError) as error:
                raise refuse("Malformed Basic authorization header") from error
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            if form.get("client_id", client_id) != client_id:
                raise refuse("client_id in the body differs from the Basic credentials")
        elif used == ["private_key_jwt"]:
            method = "private_key_jwt"
            client_id = form.get("client_id") or _unverified_subject(form.get("client_assertion", ""))
        elif used == ["client_secret_post"]:
            method = "client_secret_post"
            client_id, secret = form.get("client_id", ""), form["client_secret"]
        elif self.listener == "mtls":
            method = "tls_client_auth"
            client_id = form.get("client_id", "")
        else:
            method = "none"
            client_id = form.get("client_id", "")
        record.correlation.update(client_id=client_id, client_auth=method)
        client = self.realm.clients.get(client_id) if client_id else None
        if client is None and not client_id:
            raise refuse("Client authentication required")
        if client is None:
            raise refuse("Invalid client or Invalid client credentials")
        registered = client.token_endpoint_auth_method
        if method == "none" and registered == "tls_client_auth":
            raise refuse("tls_client_auth works only on the mTLS endpoint aliases (mtls_endpoint_aliases)")
        if method != registered:
            raise refuse(f"Client {client_id} is registered for {registered}, not {method}")
        if method in ("client_secret_basic", "client_secret_post"):
            if not hmac.compare_digest(secret.encode(), (client.client_secret or "").encode()):
                raise refuse("Invalid client or Invalid client credentials")
        elif method == "private_key_jwt":
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise refuse(f"client_assertion_type must be {ASSERTION_TYPE}")
            if not form.get("client_assertion"):
                raise refuse("Missing client_assertion")
            audiences = [
                self.realm.issuer,
                self.realm.endpoint("/token"),
                self.realm.endpoint("/token", mtls=True),
                self.realm.endpoint(endpoint),
                self.realm.endpoint(endpoint, mtls=True),
            ]
            try:
                self.realm.verify_client_assertion(client, form["client_assertion"], audiences)
            except ValueError as error:
                raise refuse(str(error)) from error
        elif method == "tls_client_auth":
            cn = request.peer.get("cn", "")
            if cn != client.tls_client_auth_subject_cn:
                raise refuse(f"Client certificate CN {cn!r} is not the one registered for {client_id}")
        return client

    # --- userinfo, introspection, logout --------------------------------------------------------

    def _userinfo(self, request: HttpRequest, record: _Record) -> HttpResponse:
        record.correlation.update(national_id="", client_id="")
        token = _bearer(request)
        if token is None:
            record.outcome["token"] = "missing"
            raise _invalid_token("Token not provided")
        status, claims = self.realm.check_access_token(token)
        record.outcome["token"] = status
        if claims is not None:
            record.correlation.update(national_id=str(claims.get("preferred_username", "")))
            record.correlation.update(client_id=str(claims.get("azp", "")))
        if status != "valid" or claims is None:
            raise _invalid_token(f"Token {status}")
        bound_to = (claims.get("cnf") or {}).get("x5t#S256")
        if bound_to and bound_to != request.peer.get("cert_sha256"):
            record.outcome["token"] = "wrong_certificate"
            raise _invalid_token("Token bound to another client certificate (RFC 8705)")
        data = self.realm.userinfo(claims)
        client = self.realm.clients.get(str(claims["azp"]))
        if client is not None and client.userinfo_signed_response_alg == "RS256":
            record.outcome["signed"] = True
            signed = self.realm.sign({**data, "iss": self.realm.issuer, "aud": client.client_id})
            return HttpResponse(200, signed.encode("ascii"), "application/jwt", list(NO_STORE))
        return _json(200, data, NO_STORE)

    def _introspect(self, request: HttpRequest, record: _Record) -> HttpResponse:
        record.correlation.update(client_id="", client_auth="")
        form = _form(request)
        self._authenticate(request, form, record, "/token/introspect")
        answer = self.realm.introspect(_required(form, "token"))
        injected = self._take("introspect", ("inactive_introspection",))
        if injected:
            answer = {"active": False}
            record.outcome["injected"] = injected
        if answer.get("SubjectNameID"):
            record.correlation["national_id"] = answer["SubjectNameID"]
        record.outcome.update(active=answer["active"], token_type=answer.get("token_type", ""))
        return _json(200, answer, NO_STORE)

    def _logout(self, request: HttpRequest, record: _Record) -> HttpResponse:
        """RP-initiated logout: the ID token names the session and the client whose URIs are allowed."""
        record.correlation.update(client_id="", national_id="")
        record.outcome["session_ended"] = False
        try:
            text = request.body.decode("ascii") if request.method == "POST" else request.query
            params, repeated = parse_params(text)
        except (UnicodeError, ValueError) as error:
            raise PageError("invalid_request", "Déconnexion impossible", "Paramètres illisibles.") from error
        if repeated:
            raise PageError("invalid_request", "Déconnexion impossible", "Paramètres répétés.")
        hint = params.get("id_token_hint")
        if not hint:
            raise PageError("invalid_request", "Déconnexion impossible", "id_token_hint est absent.")
        try:
            claims = self.realm.id_token_hint(hint)
        except ValueError as error:
            raise PageError("invalid_request", "Déconnexion impossible", str(error)) from error
        audience = claims.get("aud")
        client_id = str(audience[0] if isinstance(audience, list) and audience else audience or "")
        record.correlation.update(client_id=client_id, national_id=str(claims.get("preferred_username", "")))
        if params.get("client_id", client_id) != client_id:
            raise PageError("invalid_request", "Déconnexion impossible", "client_id ne correspond pas à l'ID token.")
        target = params.get("post_logout_redirect_uri")
        client = self.realm.clients.get(client_id)
        if target is not None and (client is None or target not in client.post_logout_redirect_uris):
            raise PageError(
                "invalid_request",
                "Déconnexion impossible",
                f"post_logout_redirect_uri {target} n'est pas enregistrée pour le client {client_id}.",
            )
        record.outcome["session_ended"] = self.realm.end_session(str(claims.get("sid", "")))
        if target is None:
            return _html(200, message_page("Déconnexion", "Vous êtes déconnecté de Pro Santé Connect."))
        return _redirect(add_query(target, _state(params)))

    # --- CIBA -----------------------------------------------------------------------------------

    def _ciba_auth(self, request: HttpRequest, record: _Record) -> HttpResponse:
        record.correlation.update(client_id="", client_auth="", national_id="", binding_message="", acr_values="")
        form = _form(request)
        national_id = form.get("login_hint", "")
        record.correlation.update(
            national_id=national_id,
            binding_message=form.get("binding_message", ""),
            acr_values=form.get("acr_values", ""),
        )
        client = self._authenticate(request, form, record, "/ext/ciba/auth")
        if CIBA_GRANT not in client.grant_types:
            raise OAuthError("unauthorized_client", "Client not allowed to use CIBA")
        scope = _required(form, "scope")
        if "openid" not in scope.split():
            raise OAuthError("invalid_scope", "The openid scope is required")
        if "login_hint_token" in form or "id_token_hint" in form:
            raise OAuthError("invalid_request", "Only login_hint (the national id) identifies the user here")
        if not national_id:
            raise OAuthError("invalid_request", "Missing parameter: login_hint")
        if national_id not in self.realm.professionals:
            raise OAuthError("unknown_user_id", f"No professional with national id {national_id}")
        if not _BINDING_MESSAGE.match(form.get("binding_message", "")):
            raise OAuthError("invalid_binding_message", "binding_message must be exactly two digits")
        channel = form.get("channel", "MOBILE")
        if channel not in MEANS:
            raise OAuthError("invalid_request", f"channel must be one of {', '.join(MEANS)}")
        injected = self._take("ciba_auth", CIBA_FAULTS)
        pending = self.realm.ciba_start(
            client, national_id, channel, granted_scope(scope), form["binding_message"], injected
        )
        answer = {
            "auth_req_id": pending.auth_req_id,
            "expires_in": json_number(pending.expires_in),
            "interval": json_number(pending.interval),
        }
        record.outcome.update(answer, channel=channel)
        if injected:
            record.outcome["injected"] = injected
        return _json(200, answer, NO_STORE)


# --- helpers -------------------------------------------------------------------------------------


def parse_params(text: str) -> tuple[dict[str, str], set[str]]:
    """Query or form parameters, and the names sent more than once (RFC 6749 §3.1: an error).

    An empty value counts as absent (RFC 6749 §3.1). ValueError for undecodable percent-escapes.
    """
    params: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=200):
        if not value:
            continue
        if name in params:
            repeated.add(name)
        else:
            params[name] = value
    return params, repeated


def add_query(uri: str, pairs: list[tuple[str, str]]) -> str:
    """``uri`` with ``pairs`` appended to its query, keeping the query it already has."""
    parts = urlsplit(uri)
    extra = urlencode(pairs)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def _authorize_correlation(params: dict[str, str]) -> dict[str, str]:
    keys = ("client_id", "redirect_uri", "state", "nonce", "acr_values", "scope", "code_challenge_method")
    return {**{key: params.get(key, "") for key in keys}, "response_type": params.get("response_type", "")}


def _state(params: dict[str, str]) -> list[tuple[str, str]]:
    return [("state", params["state"])] if "state" in params else []


def _media_type(request: HttpRequest) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _form(request: HttpRequest) -> dict[str, str]:
    if not request.body and not _media_type(request):
        return {}  # nothing to misread: the missing parameters are named next
    if _media_type(request) != FORM:
        raise OAuthError("invalid_request", f"Content-Type must be {FORM}")
    try:
        params, repeated = parse_params(request.body.decode("ascii"))
    except (UnicodeError, ValueError) as error:
        raise OAuthError("invalid_request", "Malformed form body") from error
    if repeated:
        raise OAuthError("invalid_request", f"Parameters sent more than once: {', '.join(sorted(repeated))}")
    return params


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"Missing form parameter: {name}")
    return value


def _unverified_subject(assertion: str) -> str:
    """Who the assertion says it is, read before verifying it only to find which key verifies it."""
    try:
        claims = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError, TypeError, UnicodeError):
        return ""
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else ""


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    if request.method == "POST" and _media_type(request) == FORM:
        try:
            params, _ = parse_params(request.body.decode("ascii"))
        except (UnicodeError, ValueError):
            return None
        return params.get("access_token")
    return None


def _invalid_token(description: str) -> OAuthError:
    challenge = f'Bearer realm="esante-wallet", error="invalid_token", error_description="{description}"'
    return OAuthError("invalid_token", description, 401, headers=[("WWW-Authenticate", challenge)])


def _json(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    body = json.dumps(data, ensure_ascii=False).encode()
    return HttpResponse(status, body, "application/json", list(headers or []))


def _html(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(status, body, "text/html; charset=utf-8", [("Cache-Control", "no-store")])


def _redirect(location: str) -> HttpResponse:
    return HttpResponse(302, b"", "text/html; charset=utf-8", [("Location", location), *NO_STORE])
