"""What every mock provides to the host: its listeners, its seedable state, its faults."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from segur.journal import Journal
from segur.mocks.runtime.faults import COMMON_FAULT_KINDS, FaultInjector
from segur.mocks.runtime.http import HttpApp
from segur.pki import Pki


@dataclass(frozen=True)
class Listener:
    """One port a mock listens on; ``path`` is what the endpoint URL advertises."""

    app: HttpApp
    path: str = "/"
    tls: bool = True
    require_client_cert: bool = True
    max_body: int | None = None  # overrides the host's limit for a service whose requests carry documents


class StreamServer(Protocol):
    """A server the host starts and stops on its loop: ``HttpServer``, or a mail protocol's own."""

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class StreamSettings:
    """What the host gives a stream listener's server: where to listen and where to journal."""

    journal: Journal
    pki: Pki
    host: str
    port: int


@dataclass(frozen=True)
class StreamListener:
    """A port speaking another protocol than HTTP (SMTP, IMAP): the mock builds the server, the host runs it."""

    build: Callable[[StreamSettings], StreamServer]


class MockService(ABC):
    """A national-service mock. State changes come only through ``seed`` and ``reset``."""

    name: str
    fault_kinds: tuple[str, ...] = COMMON_FAULT_KINDS

    def __init__(self) -> None:
        self.faults = FaultInjector()

    @abstractmethod
    def listeners(self) -> list[Listener | StreamListener]: ...

    def bound(self, urls: list[str]) -> None:  # noqa: B027 - only mocks that advertise their own URLs need it
        """Told, once its servers run, the base URL of each listener (same order as ``listeners``).

        A mock whose answers name its endpoints (OIDC discovery, WSDL addresses) needs the ports
        the host picked.
        """

    def close(self) -> None:  # noqa: B027 - only mocks that own processes or files need it
        """The host stopped serving: release what the mock owns beyond its listeners (worker processes)."""

    @abstractmethod
    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        """Merge ``state`` (JSON from the control API) into the mock; return a summary."""

    @abstractmethod
    def reset(self) -> None:
        """Back to the seeded defaults; pending faults are dropped too."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """The current state as JSON, for testers and for evidence."""
