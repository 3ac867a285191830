"""The lifecycle the mocks' own stream servers share: listen on one port, track each connection, end them all on stop.

The HTTP server (http.py) and the IMAP server (mss/imap.py) are both ``asyncio`` servers whose
connections are long-lived tasks; stopping the mock must cancel those tasks, not wait for idle
clients. (The SMTP server runs on aiosmtpd's protocol objects and keeps its own lifecycle.)
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

State = TypeVar("State")


class LoopbackServer(Generic[State]):
    """One listening socket and the connection tasks it spawned, each with the ``State`` its server keeps."""

    scheme = "tcp"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.requested_port = port
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task[None], State] = {}

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def _listen(self, protocol_factory: Callable[[], asyncio.BaseProtocol]) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol_factory, self.host, self.requested_port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def _hold(self, writer: asyncio.StreamWriter, state: State, conversation: Awaitable[None]) -> None:
        """Run one connection's conversation as a tracked task; a dropped peer or ``stop`` ends it quietly."""
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = state
        try:
            await conversation
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            self._connections.pop(task, None)
            with contextlib.suppress(Exception):
                writer.close()
