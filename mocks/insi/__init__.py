"""INSi mock: the CNAM INS identity tele-service (SOAP 1.2, mTLS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segur.mocks.insi.protocol import InsiApp
from segur.mocks.insi.registry import IdentityRegistry, identity_from_json, identity_to_json
from segur.mocks.runtime.faults import COMMON_FAULT_KINDS
from segur.mocks.runtime.service import Listener, MockService


class InsiMock(MockService):
    name = "insi"
    fault_kinds = (*COMMON_FAULT_KINDS, "soap_fault")

    def __init__(self, psc_tokens: Callable[[str], dict] | None = None) -> None:
        """``psc_tokens`` validates a PSC access token (the PSC mock's, when both run in one host)."""
        super().__init__()
        self.registry = IdentityRegistry.default()
        self.app = InsiApp(self.registry, self.faults, psc_tokens)

    def listeners(self) -> list[Listener]:
        return [Listener(self.app, path="/lps")]

    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        """``{"identities": [...], "idam": [...], "replace": false}``; identities as in identities.yaml."""
        unknown = set(state) - {"identities", "idam", "replace"}
        if unknown:
            raise ValueError(f"unknown INSi state fields: {sorted(unknown)}")
        identities = [identity_from_json(entry) for entry in state.get("identities", [])]
        if state.get("replace"):
            self.registry.identities.clear()
        self.registry.identities.extend(identities)
        self.registry.idam.update(state.get("idam", []))
        return {"identities": len(self.registry.identities), "idam": sorted(self.registry.idam)}

    def reset(self) -> None:
        default = IdentityRegistry.default()
        self.registry.identities[:] = default.identities
        self.registry.idam.clear()
        self.registry.idam.update(default.idam)
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "identities": [identity_to_json(identity) for identity in self.registry.identities],
            "idam": sorted(self.registry.idam),
            "pending_faults": self.faults.pending(),
        }
