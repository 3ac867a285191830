"""Clients registered in the realm, and the keys that authenticate them.

One registered authentication method per client, as on PSC: a client that authenticates
otherwise (say ``client_secret_post`` when it registered ``client_secret_basic``) is refused,
which is how a SUT's configuration mistake shows up before production does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

from segur.pki import Pki

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
GRANT_TYPES = ("authorization_code", "refresh_token", CIBA_GRANT)
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth")
_CERTIFICATE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class Client:
    """A client as registered (the shape of clients.yaml and of the control API's ``clients``)."""

    client_id: str
    token_endpoint_auth_method: str = "client_secret_basic"
    client_secret: str | None = None
    tls_client_auth_subject_cn: str | None = None
    jwks: dict[str, Any] | None = None
    certificate: str | None = None
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    require_pkce: bool = False
    userinfo_signed_response_alg: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As the snapshot shows it: secrets redacted."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.client_secret is not None:
            data["client_secret"] = "***"
        return data

    def verification_keys(self, pki: Pki | None) -> list[Key]:
        """The public keys a ``private_key_jwt`` assertion may be signed with; ValueError if there are none."""
        if self.jwks is not None:
            return list(KeySet.import_key_set(self.jwks))  # type: ignore[arg-type]
        if self.certificate is None:
            raise ValueError("no jwks nor certificate registered")
        if pki is None:
            raise ValueError("the mock has no test PKI, so the registered certificate cannot be read")
        path = pki.cert(self.certificate) if "/" not in self.certificate else pki.directory / self.certificate
        try:
            pem = Path(path).read_bytes()
        except OSError as error:
            raise ValueError(f"registered certificate {self.certificate!r} cannot be read: {error}") from error
        for key_type in (RSAKey, ECKey):
            try:
                return [key_type.import_key(pem)]
            except (JoseError, ValueError, TypeError):
                continue
        raise ValueError(f"registered certificate {self.certificate!r} holds no RSA or EC key")


_FIELDS = {f.name for f in fields(Client)}


def merge_client(existing: Client | None, entry: dict[str, Any]) -> Client:
    """Apply a partial or full entry on top of ``existing`` (or of the defaults); ValueError if invalid."""
    if not isinstance(entry, dict):
        raise ValueError("a client must be a JSON object")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ValueError(f"unknown client fields: {sorted(unknown)}")
    client_id = entry.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ValueError("client_id is required")
    base = existing or Client(client_id=client_id)
    client = replace(base, **{key: value for key, value in entry.items() if key != "client_id"})
    _validate(client)
    return client


def _validate(client: Client) -> None:
    method = client.token_endpoint_auth_method
    if method not in AUTH_METHODS:
        raise ValueError(f"token_endpoint_auth_method must be one of {AUTH_METHODS}, got {method!r}")
    if method in ("client_secret_basic", "client_secret_post") and not isinstance(client.client_secret, str):
        raise ValueError(f"{client.client_id}: {method} needs a client_secret")
    if method == "tls_client_auth" and not isinstance(client.tls_client_auth_subject_cn, str):
        raise ValueError(f"{client.client_id}: tls_client_auth needs tls_client_auth_subject_cn")
    if method == "private_key_jwt" and client.jwks is None and client.certificate is None:
        raise ValueError(f"{client.client_id}: private_key_jwt needs jwks or certificate")
    if client.jwks is not None:
        try:
            KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"{client.client_id}: jwks is not a JWK set: {error}") from error
    if client.certificate is not None:
        parts = Path(client.certificate).parts if isinstance(client.certificate, str) else ()
        if not parts or ".." in parts or not all(_CERTIFICATE_NAME.match(part) for part in parts):
            raise ValueError(f"{client.client_id}: certificate must name a file inside the test PKI")
    for name in ("redirect_uris", "post_logout_redirect_uris", "grant_types"):
        value = getattr(client, name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"{client.client_id}: {name} must be a list of strings")
    unknown_grants = set(client.grant_types) - set(GRANT_TYPES)
    if unknown_grants:
        raise ValueError(f"{client.client_id}: grant_types must be among {GRANT_TYPES}, got {sorted(unknown_grants)}")
    if not isinstance(client.require_pkce, bool):
        raise ValueError(f"{client.client_id}: require_pkce must be a boolean")
    if client.userinfo_signed_response_alg not in (None, "RS256"):
        raise ValueError(f"{client.client_id}: userinfo_signed_response_alg must be RS256 or absent")


def default_clients() -> dict[str, Client]:
    """The packaged clients.yaml, keyed by client_id."""
    text = resources.files("segur.mocks.psc").joinpath("clients.yaml").read_text(encoding="utf-8")
    clients = [merge_client(None, entry) for entry in yaml.safe_load(text)["clients"]]
    return {client.client_id: client for client in clients}
