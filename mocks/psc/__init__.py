"""Pro Santé Connect mock: the ANS identity provider for professionals (Keycloak realm esante-wallet).

Three listeners, in this order (a contract: ``bound`` and the host's endpoint list follow it):
``auth`` (the issuer), ``wallet`` (authorization endpoint and login form, on its own port as on
PSC) and ``mtls`` (RFC 8705 aliases for ``tls_client_auth`` clients). See protocol.py.
"""

from __future__ import annotations

from typing import Any

from segur.mocks.psc.protocol import PscApp
from segur.mocks.psc.realm import CIBA_FAULTS, CIBA_POLL_FAULTS, ID_TOKEN_FAULTS, REALM_PATH, WALLET_PATH, Realm
from segur.mocks.runtime.faults import COMMON_FAULT_KINDS
from segur.mocks.runtime.service import Listener, MockService
from segur.pki import Pki


class PscMock(MockService):
    name = "psc"
    fault_kinds = (*COMMON_FAULT_KINDS, *ID_TOKEN_FAULTS, "inactive_introspection", *CIBA_FAULTS, *CIBA_POLL_FAULTS)

    def __init__(self, pki: Pki | None = None) -> None:
        """``pki`` lets ``private_key_jwt`` clients register a test-PKI certificate; without it they cannot log in."""
        super().__init__()
        self.realm = Realm(pki)
        self.apps = {listener: PscApp(self.realm, self.faults, listener) for listener in ("auth", "wallet", "mtls")}

    def listeners(self) -> list[Listener]:
        return [
            Listener(self.apps["auth"], path=REALM_PATH, require_client_cert=False),
            Listener(self.apps["wallet"], path=WALLET_PATH, require_client_cert=False),
            Listener(self.apps["mtls"], path=REALM_PATH, require_client_cert=True),
        ]

    def bound(self, urls: list[str]) -> None:
        """Discovery names the issuer, the wallet host and the mTLS aliases: all three ports are needed."""
        with self.realm.lock:
            self.realm.urls = list(urls)

    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        """Merge ``{"clients", "professionals", "next_login", "ciba", "token_lifetime", "refresh_lifetime",
        "tolerate_standard_discovery"}`` (see docs in realm.py); unknown fields are a ValueError."""
        self.realm.seed(state)
        return self.snapshot()

    def reset(self) -> None:
        self.realm.reset()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        return {**self.realm.snapshot(), "pending_faults": self.faults.pending()}

    def validate_access_token(self, token: str) -> dict[str, Any]:
        """Claims of a valid PSC access token, for other mocks of the same host (INSi, DMP, MSSanté).

        Raises ValueError naming why not: ``unknown`` (not signed by this realm or not issued by
        it), ``expired`` or ``revoked`` (logout, code replay).
        """
        status, claims = self.realm.check_access_token(token)
        if status != "valid" or claims is None:
            raise ValueError(f"PSC access token {status}")
        return dict(claims)

    def introspect_access_token(self, token: str) -> dict[str, Any]:
        """RFC 7662 view of a token for other mocks (the DMP's VIHF check): inactive, never an exception."""
        try:
            claims = self.validate_access_token(token)
        except ValueError:
            return {"active": False}
        return {"active": True, "token_type": "Bearer", **claims}
