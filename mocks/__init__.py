"""National-service mocks (one package each) and the runtime they share."""

from __future__ import annotations

from segur.mocks.runtime.service import MockService
from segur.pki import Pki

AVAILABLE = ("insi", "psc", "dmp")


def create_mocks(names: list[str], pki: Pki) -> list[MockService]:
    """Instantiate mocks by name; later services (mss) register here."""
    from segur.mocks.dmp import DmpMock
    from segur.mocks.insi import InsiMock
    from segur.mocks.psc import PscMock

    unknown = [name for name in names if name not in AVAILABLE]
    if unknown:
        raise ValueError(f"unknown mock(s) {unknown}; available: {', '.join(AVAILABLE)}")
    psc = PscMock(pki) if "psc" in names else None
    # INSi and the DMP accept the professional's PSC token when the PSC mock runs beside them.
    built: dict[str, MockService | None] = {
        "insi": InsiMock(psc.validate_access_token if psc else None) if "insi" in names else None,
        "psc": psc,
        "dmp": DmpMock(pki, psc.introspect_access_token if psc else None) if "dmp" in names else None,
    }
    return [service for name in names if (service := built[name]) is not None]
