"""Runs a set of mocks and their control API on one asyncio loop, in the foreground or a thread.

The same entry point serves `segur mocks up`, the pytest session and, later, a container.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from segur.journal import Journal
from segur.mocks.runtime.control import ControlApp
from segur.mocks.runtime.http import HttpServer, Limits
from segur.mocks.runtime.service import Listener, MockService, StreamListener, StreamServer, StreamSettings
from segur.mocks.runtime.tls import server_context
from segur.pki import Pki


@dataclass
class HostConfig:
    pki: Pki
    journal_path: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    control_port: int = 0
    limits: Limits = field(default_factory=Limits)
    fsync: bool = False


class MockHost:
    """Owns the journal, the servers and the loop; ``endpoints()`` describes what runs."""

    def __init__(self, services: list[MockService], config: HostConfig) -> None:
        self.config = config
        self.services = {service.name: service for service in services}
        self.journal = Journal(config.journal_path, fsync=config.fsync)
        self._servers: dict[str, list[tuple[StreamServer, str]]] = {}
        self._control: HttpServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start_async(self) -> dict[str, Any]:
        for name, service in self.services.items():
            self._servers[name] = []
            for index, listener in enumerate(service.listeners()):
                port = self.config.ports.get(name, 0) if index == 0 else 0
                server, path = self._server(listener, port)
                await server.start()
                self._servers[name].append((server, path))
            service.bound([server.url for server, _ in self._servers[name]])
        self._control = HttpServer(
            ControlApp(self.services, self.journal, self.endpoints),
            None,
            host=self.config.host,
            port=self.config.control_port,
        )
        await self._control.start()
        return self.endpoints()

    def _server(self, listener: Listener | StreamListener, port: int) -> tuple[StreamServer, str]:
        if isinstance(listener, StreamListener):
            return listener.build(StreamSettings(self.journal, self.config.pki, self.config.host, port)), ""
        context = server_context(self.config.pki, require_client_cert=listener.require_client_cert)
        server = HttpServer(
            listener.app,
            self.journal,
            host=self.config.host,
            port=port,
            ssl_context=context if listener.tls else None,
            limits=replace(self.config.limits, max_body=listener.max_body or self.config.limits.max_body),
        )
        return server, listener.path

    async def stop_async(self) -> None:
        servers = [server for listeners in self._servers.values() for server, _ in listeners]
        if self._control is not None:
            servers.append(self._control)
        await asyncio.gather(*(server.stop() for server in servers), return_exceptions=True)
        for service in self.services.values():
            service.close()

    def endpoints(self) -> dict[str, Any]:
        """The JSON description printed by `segur mocks up` and served at GET /mocks."""
        return {
            "control": self._control.url if self._control else None,
            "journal": str(self.config.journal_path),
            "mocks": {
                name: {"endpoints": [server.url + path for server, path in listeners]}
                for name, listeners in self._servers.items()
            },
            "pki": self.config.pki.describe(),
        }

    def start(self) -> dict[str, Any]:
        """Start on a background thread (pytest sessions, runs); returns the endpoints."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="segur-mocks", daemon=True)
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(timeout=30)

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop_async(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None
        self.journal.close()
