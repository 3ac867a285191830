"""National-service mocks (one package each) and the runtime they share."""

from __future__ import annotations

from pathlib import Path

from segur.mocks.runtime.service import MockService
from segur.pki import Pki

AVAILABLE = ("insi", "psc", "dmp", "mss")


def create_mocks(
    names: list[str], pki: Pki, *, dmp_workers: int | None = 0, cisis: Path | None = None
) -> list[MockService]:
    """Instantiate mocks by name.

    ``dmp_workers``: processes for the DMP's checks (None: one per CPU), for a mock serving
    concurrent clients; a couloir run sends one request at a time and keeps them inline.
    ``cisis``: the user's CI-SIS package, whose schema and official Schematrons the DMP applies to each CDA.
    """
    from segur.mocks.dmp import DmpMock
    from segur.mocks.insi import InsiMock
    from segur.mocks.mss import MssMock
    from segur.mocks.psc import PscMock

    unknown = [name for name in names if name not in AVAILABLE]
    if unknown:
        raise ValueError(f"unknown mock(s) {unknown}; available: {', '.join(AVAILABLE)}")
    psc = PscMock(pki) if "psc" in names else None
    # INSi, the DMP and MSSanté accept the professional's PSC token when the PSC mock runs beside them.
    built: dict[str, MockService | None] = {
        "insi": InsiMock(psc.validate_access_token if psc else None) if "insi" in names else None,
        "psc": psc,
        "dmp": DmpMock(pki, psc.introspect_access_token if psc else None, workers=dmp_workers, cisis=cisis)
        if "dmp" in names
        else None,
        "mss": MssMock(psc.introspect_access_token if psc else None) if "mss" in names else None,
    }
    return [service for name in names if (service := built[name]) is not None]
