"""National-service mocks (one package each) and the runtime they share."""

from __future__ import annotations

from segur.mocks.runtime.service import MockService
from segur.pki import Pki


def create_mocks(names: list[str], pki: Pki) -> list[MockService]:
    """Instantiate mocks by name; later services (dmp, mss) register here."""
    from segur.mocks.insi import InsiMock
    from segur.mocks.psc import PscMock

    unknown = [name for name in names if name not in ("insi", "psc")]
    if unknown:
        raise ValueError(f"unknown mock(s) {unknown}; available: insi, psc")
    psc = PscMock(pki) if "psc" in names else None
    # INSi accepts the professional's PSC token when the PSC mock runs beside it.
    built: dict[str, MockService | None] = {
        "insi": InsiMock(psc.validate_access_token if psc else None) if "insi" in names else None,
        "psc": psc,
    }
    return [service for name in names if (service := built[name]) is not None]
