"""Fixtures for the mock tests: the test PKI, one INSi mock host per session, mTLS clients.

The host listens on free ports (port 0) and runs with small limits and short timeouts, so
that a test about a refusal is answered quickly and a hang fails on the client's timeout.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from segur.mocks import create_mocks
from segur.mocks.dmp import DmpMock
from segur.mocks.insi import InsiMock
from segur.mocks.psc import PscMock
from segur.mocks.runtime.host import HostConfig, MockHost
from segur.mocks.runtime.http import Limits
from segur.mocks.runtime.service import MockService
from segur.pki import Pki, ensure_pki

INSI_LIMITS = Limits(max_body=200_000, handshake_timeout=2.0, idle_timeout=5.0, read_timeout=2.0)
CLIENT_TIMEOUT = 5.0
"""Seconds a client waits for the mock: every refusal must come well before it."""


def client_tls_context(pki: Pki, cert_name: str | None, issuer: Pki | None = None) -> ssl.SSLContext:
    """Trusts the test CA and presents ``cert_name`` as issued by ``issuer`` (default: the test CA).

    ``cert_name=None`` presents no certificate. httpx 0.28 ignores ``cert=`` when ``verify``
    is a context, so the client certificate goes into the context.
    """
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert_name is not None:
        source = issuer or pki
        context.load_cert_chain(str(source.cert(cert_name)), str(source.key(cert_name)))
    return context


@dataclass
class RunningMock:
    """A started mock host, its endpoints, and its control API as a tester reaches it."""

    host: MockHost
    mock: MockService
    endpoints: dict[str, Any]
    pki: Pki
    limits: Limits
    control_client: httpx.Client
    client_timeout: float = CLIENT_TIMEOUT

    @property
    def control(self) -> str:
        return self.endpoints["control"]

    def control_get(self, path: str) -> Any:
        response = self.control_client.get(self.control + path)
        assert response.status_code == 200, response.text
        return response.json()

    def control_post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        response = self.control_client.post(self.control + path, json=data or {})
        assert response.status_code == 200, response.text
        return response.json()

    def last_seq(self) -> int:
        return self.host.journal.last_seq

    def journal_since(self, seq: int) -> list[dict[str, Any]]:
        """This mock's journal records after ``seq``, read through the control API as a step would."""
        return self.control_get(f"/journal?since={seq}&mock={self.mock.name}")["records"]


def serve(mock: MockService, pki: Pki, folder: Path, limits: Limits, kind: type[RunningMock]) -> Iterator[Any]:
    """Run ``mock`` alone on free ports for a session fixture; stopped when the fixture ends."""
    host = MockHost([mock], HostConfig(pki=pki, journal_path=folder / "journal.jsonl", limits=limits))
    endpoints = host.start()
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT) as control_client:
            yield kind(host, mock, endpoints, pki, limits, control_client)
    finally:
        host.stop()


def reset_around(running: RunningMock) -> Iterator[Any]:
    running.control_post("/reset")
    yield running
    running.control_post("/reset")


class RunningInsi(RunningMock):
    @property
    def url(self) -> str:
        return self.endpoints["mocks"]["insi"]["endpoints"][0]

    def wait_for_record(
        self, since: int, predicate: Callable[[dict[str, Any]], bool], timeout: float = CLIENT_TIMEOUT
    ) -> dict[str, Any]:
        """The first record after ``since`` matching ``predicate``, polling up to ``timeout``.

        Only for refusals the client may notice before the server journals them (a failed
        TLS handshake); an answered exchange is journaled before its answer is sent.
        """
        deadline = time.monotonic() + timeout
        while True:
            matching = [record for record in self.journal_since(since) if predicate(record)]
            if matching:
                return matching[0]
            assert time.monotonic() < deadline, f"no matching journal record after seq {since} in {timeout} s"
            time.sleep(0.02)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki") / "pki")


@pytest.fixture(scope="session")
def insi_mock(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningInsi]:
    yield from serve(InsiMock(), pki, tmp_path_factory.mktemp("journal"), INSI_LIMITS, RunningInsi)


@pytest.fixture
def fresh_insi(insi_mock: RunningInsi) -> Iterator[RunningInsi]:
    """The session's INSi mock back to its seeded defaults, without pending faults, before and after a test."""
    yield from reset_around(insi_mock)


@pytest.fixture
def tls_context(pki: Pki) -> Callable[..., ssl.SSLContext]:
    """Factory: ``tls_context("insi-auto")`` is a client context for raw sockets (see ``client_tls_context``)."""
    return lambda cert_name="insi-auto", issuer=None: client_tls_context(pki, cert_name, issuer)


@pytest.fixture
def insi_client(pki: Pki) -> Iterator[Callable[..., httpx.Client]]:
    """Factory: ``insi_client("insi-auto")`` is a keep-alive mTLS client, closed after the test.

    ``insi_client(None)`` presents no certificate; ``issuer=pki.untrusted`` takes the
    certificate from the untrusted CA; ``timeout`` overrides ``CLIENT_TIMEOUT``.
    """
    clients: list[httpx.Client] = []

    def make(cert_name: str | None = "insi-auto", *, issuer: Pki | None = None, timeout: float = CLIENT_TIMEOUT):
        client = httpx.Client(verify=client_tls_context(pki, cert_name, issuer), timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- PSC ----------------------------------------------------------------------------------------

PSC_LIMITS = Limits(max_body=64_000, handshake_timeout=2.0, idle_timeout=5.0, read_timeout=2.0)


class RunningPsc(RunningMock):
    """The PSC mock's three listeners (auth, wallet, mtls) by name."""

    @property
    def issuer(self) -> str:
        return self.endpoints["mocks"]["psc"]["endpoints"][0]

    @property
    def authorization_endpoint(self) -> str:
        return self.endpoints["mocks"]["psc"]["endpoints"][1]

    @property
    def mtls_issuer(self) -> str:
        return self.endpoints["mocks"]["psc"]["endpoints"][2]

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/wallet-openid-configuration"

    def endpoint(self, name: str, *, mtls: bool = False) -> str:
        """``endpoint("/token")`` is the token endpoint; ``mtls=True`` its RFC 8705 alias."""
        return (self.mtls_issuer if mtls else self.issuer) + "/protocol/openid-connect" + name

    def seed(self, state: dict[str, Any]) -> Any:
        return self.control_post("/mocks/psc/state", state)

    def fault(self, kind: str, **rule: Any) -> Any:
        return self.control_post("/mocks/psc/faults", {"kind": kind, **rule})


@pytest.fixture(scope="session")
def psc_mock(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPsc]:
    yield from serve(PscMock(pki), pki, tmp_path_factory.mktemp("psc-journal"), PSC_LIMITS, RunningPsc)


@pytest.fixture
def fresh_psc(psc_mock: RunningPsc) -> Iterator[RunningPsc]:
    """The session's PSC mock back to its defaults (clients, professionals, settings, no faults), before and after."""
    yield from reset_around(psc_mock)


@pytest.fixture
def psc_http(pki: Pki) -> Iterator[Callable[..., httpx.Client]]:
    """Factory: ``psc_http()`` trusts the test CA; ``psc_http("auth-cli")`` also presents that certificate."""
    clients: list[httpx.Client] = []

    def make(cert_name: str | None = None, *, timeout: float = CLIENT_TIMEOUT) -> httpx.Client:
        client = httpx.Client(verify=client_tls_context(pki, cert_name), timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class RunningDmp(RunningMock):
    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT/si-dmp-server/v2/services/``: a service name completes it."""
        return self.endpoints["mocks"]["dmp"]["endpoints"][0]


@pytest.fixture(scope="session")
def dmp_mock(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDmp]:
    limits = Limits(max_body=2_000_000, handshake_timeout=2.0, idle_timeout=5.0, read_timeout=2.0)
    yield from serve(
        DmpMock(pki, max_document_bytes=500_000), pki, tmp_path_factory.mktemp("journal"), limits, RunningDmp
    )


@pytest.fixture
def fresh_dmp(dmp_mock: RunningDmp) -> Iterator[RunningDmp]:
    yield from reset_around(dmp_mock)


@pytest.fixture(scope="module")
def host(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockHost]:
    """The PSC and MSSanté mocks in one host, as in a run (XOAUTH2 tokens introspected); one per test module."""
    journal = Path(tmp_path_factory.mktemp("psc-mss")) / "journal.jsonl"
    running = MockHost(create_mocks(["psc", "mss"], pki), HostConfig(pki=pki, journal_path=journal))
    running.start()
    try:
        yield running
    finally:
        running.stop()
