"""The one HTTP/1.1 server every HTTP-based mock runs on (asyncio + h11, TLS by hand).

Why not uvicorn: the INSi and DMP mocks must read the client certificate and must
journal refused TLS handshakes, which ASGI servers hide. Doing the TLS upgrade
ourselves (``StreamWriter.start_tls``) gives both, and h11 does the HTTP framing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

import h11

from segur.journal import Exchange, Journal, now_iso
from segur.mocks.runtime.loopback import LoopbackServer


@dataclass(frozen=True)
class Limits:
    """Resource limits applied before an application sees a request."""

    max_body: int = 1_000_000
    handshake_timeout: float = 5.0
    idle_timeout: float = 15.0
    read_timeout: float = 10.0


@dataclass
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    raw: bytes
    peer: dict[str, Any]
    started: str

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    def headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", self.content_type), ("Content-Length", str(len(self.body))), *self.extra_headers]


@dataclass
class Handled:
    """What an application returns: the response plus what the journal should say about it."""

    response: HttpResponse
    operation: str
    correlation: dict[str, str] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0


class HttpApp(Protocol):
    """A mock's protocol layer. ``reject`` renders runtime-level refusals in the protocol's own error."""

    name: str

    def handle(self, request: HttpRequest) -> Handled | Awaitable[Handled]: ...

    def reject(self, request: HttpRequest, status: int, reason: str) -> Handled: ...


def peer_info(writer: asyncio.StreamWriter | asyncio.BaseTransport) -> dict[str, Any]:
    """Address and, under TLS, the verified client certificate's subject (from a stream or a transport)."""
    info: dict[str, Any] = {}
    address = writer.get_extra_info("peername")
    if address:
        info["address"] = f"{address[0]}:{address[1]}"
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None:
        info["tls_version"] = ssl_object.version()
        cert = ssl_object.getpeercert()
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            # RFC 8705 thumbprint: what a certificate-bound token's cnf."x5t#S256" must equal.
            info["cert_sha256"] = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        if cert:
            subject = {k: v for rdn in cert.get("subject", ()) for k, v in rdn}
            info["subject"] = ", ".join(f"{k}={v}" for k, v in subject.items())
            info["cn"] = subject.get("commonName", "")
            issuer = {k: v for rdn in cert.get("issuer", ()) for k, v in rdn}
            info["issuer_cn"] = issuer.get("commonName", "")
    return info


class HttpServer(LoopbackServer[None]):
    """Serves one ``HttpApp`` on one port, journaling every exchange before answering it."""

    def __init__(
        self,
        app: HttpApp,
        journal: Journal | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(host, port)
        self.app = app
        self.journal = journal
        self.ssl_context = ssl_context
        self.limits = limits or Limits()
        self.scheme = "https" if ssl_context else "http"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            factory = _PausedUntilTls if self.ssl_context is not None else asyncio.StreamReaderProtocol
            return factory(asyncio.StreamReader(limit=2**16, loop=loop), self._serve, loop=loop)

        await self._listen(protocol)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._hold(writer, None, self._converse(reader, writer))

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.ssl_context is not None and not await self._handshake(writer):
            return
        await self._conversation(reader, writer, peer_info(writer))

    async def _handshake(self, writer: asyncio.StreamWriter) -> bool:
        started = now_iso()
        try:
            await asyncio.wait_for(writer.start_tls(self.ssl_context), self.limits.handshake_timeout)
            return True
        except (ssl.SSLError, TimeoutError, ConnectionError, OSError) as error:
            self._journal(
                Exchange(
                    mock=self.app.name,
                    operation="tls-handshake",
                    request=b"",
                    response=b"",
                    started=started,
                    peer={"address": _address(writer)},
                    outcome={"refused": "tls", "reason": type(error).__name__ + ": " + str(error)},
                )
            )
            return False

    async def _conversation(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: dict[str, Any]
    ) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            request, refusal = await self._read_request(connection, reader, peer)
            if request is None:
                return
            if refusal is not None:
                status, reason = refusal
                handled = self.app.reject(request, status, reason)
                handled.outcome.setdefault("refused", reason)
                handled.response.extra_headers.append(("Connection", "close"))
            else:
                try:
                    handled = await self._dispatch(request)
                except Exception as error:  # a mock bug must still be answered and journaled
                    handled = self.app.reject(request, 500, f"internal error: {type(error).__name__}: {error}")
                    handled.outcome["internal_error"] = True
                if connection.their_state is not h11.DONE:
                    handled.response.extra_headers.append(("Connection", "close"))
            wire = self._frame(connection, handled.response, head=request.method == "HEAD")
            self._journal(
                Exchange(
                    mock=self.app.name,
                    operation=handled.operation,
                    request=bytes(request.raw),
                    response=wire,
                    started=request.started,
                    peer=peer,
                    correlation=handled.correlation,
                    outcome=handled.outcome,
                )
            )
            if handled.delay:
                await asyncio.sleep(handled.delay)
            writer.write(wire)
            await writer.drain()
            if refusal is not None or connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    @staticmethod
    def _frame(connection: h11.Connection, response: HttpResponse, *, head: bool = False) -> bytes:
        """The exact bytes h11 puts on the wire: they are what the journal keeps as evidence.

        A HEAD answer keeps the application's headers, Content-Length included (RFC 9110 §9.3.2:
        the length a GET would get), but not the body: h11 refuses to frame one, and its error
        here would drop the connection with nothing answered nor journaled.
        """
        wire = connection.send(h11.Response(status_code=response.status, headers=response.headers()))
        if not head:
            wire += connection.send(h11.Data(data=response.body))
        return wire + connection.send(h11.EndOfMessage())

    async def _read_request(
        self, connection: h11.Connection, reader: asyncio.StreamReader, peer: dict[str, Any]
    ) -> tuple[HttpRequest | None, tuple[int, str] | None]:
        """Read one request; a second element names why the runtime refuses it (status, reason)."""
        head: h11.Request | None = None
        raw = bytearray()
        body = bytearray()
        started = now_iso()

        def current() -> HttpRequest:
            return _request(head, raw, body, peer, started)

        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as error:
                return current(), (error.error_status_hint, f"malformed HTTP: {error}")
            if event is h11.NEED_DATA:
                waiting_first_byte = head is None and not raw
                timeout = self.limits.idle_timeout if waiting_first_byte else self.limits.read_timeout
                try:
                    data = await asyncio.wait_for(reader.read(65536), timeout)
                except TimeoutError:
                    return (None, None) if waiting_first_byte else (current(), (408, "request not completed in time"))
                if not data and waiting_first_byte:
                    return None, None
                raw.extend(data)
                connection.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
                declared = dict(event.headers).get(b"content-length", b"")
                if declared.isdigit() and int(declared) > self.limits.max_body:
                    return current(), (413, f"declared body of {int(declared)} bytes exceeds {self.limits.max_body}")
            elif isinstance(event, h11.Data):
                body.extend(event.data)
                if len(body) > self.limits.max_body:
                    return current(), (413, f"body exceeds {self.limits.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return current(), None
            else:
                return None, None

    async def _dispatch(self, request: HttpRequest) -> Handled:
        result = self.app.handle(request)
        if isinstance(result, Awaitable):
            result = await result
        return result

    def _journal(self, exchange: Exchange) -> None:
        if self.journal is not None:
            self.journal.record(exchange)


class _PausedUntilTls(asyncio.StreamReaderProtocol):
    """Leaves the ClientHello on the socket so that ``start_tls`` (not the plain reader) reads it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()
        super().connection_made(transport)


def _address(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return f"{address[0]}:{address[1]}" if address else ""


def _request(
    head: h11.Request | None, raw: bytearray, body: bytearray, peer: dict[str, Any], started: str
) -> HttpRequest:
    if head is None:
        return HttpRequest("", "", {}, b"", bytes(raw), peer, started)
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in head.headers}
    return HttpRequest(
        head.method.decode("ascii", "replace"),
        head.target.decode("ascii", "replace"),
        headers,
        bytes(body),
        bytes(raw),
        peer,
        started,
    )
