"""National-service mocks (one package each) and the runtime they share."""

from __future__ import annotations

from segur.mocks.runtime.service import MockService


def create_mocks(names: list[str]) -> list[MockService]:
    """Instantiate mocks by name; later services (psc, dmp, mss) register here."""
    from segur.mocks.insi import InsiMock

    factories = {"insi": InsiMock}
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise ValueError(f"unknown mock(s) {unknown}; available: {', '.join(factories)}")
    return [factories[name]() for name in names]
