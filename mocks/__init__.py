"""National-service mocks (one package each) and the runtime they share."""

from __future__ import annotations

from collections.abc import Callable

from segur.mocks.runtime.service import MockService
from segur.pki import Pki


def create_mocks(names: list[str], pki: Pki) -> list[MockService]:
    """Instantiate mocks by name; later services (dmp, mss) register here."""
    from segur.mocks.insi import InsiMock
    from segur.mocks.psc import PscMock

    factories: dict[str, Callable[[], MockService]] = {"insi": InsiMock, "psc": lambda: PscMock(pki)}
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise ValueError(f"unknown mock(s) {unknown}; available: {', '.join(factories)}")
    return [factories[name]() for name in names]
