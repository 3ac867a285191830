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

from segur.mocks.insi import InsiMock
from segur.mocks.psc import PscMock
from segur.mocks.runtime.host import HostConfig, MockHost
from segur.mocks.runtime.http import Limits
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
class RunningInsi:
    """A started INSi mock host, its endpoints, and access to its control API."""

    host: MockHost
    mock: InsiMock
    endpoints: dict[str, Any]
    limits: Limits
    control_client: httpx.Client
    client_timeout: float = CLIENT_TIMEOUT

    @property
    def url(self) -> str:
        return self.endpoints["mocks"]["insi"]["endpoints"][0]

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
        """INSi journal records after ``seq``, read through the control API as a tester would."""
        return self.control_get(f"/journal?since={seq}&mock=insi")["records"]

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
    mock = InsiMock()
    journal_path = Path(tmp_path_factory.mktemp("journal")) / "journal.jsonl"
    host = MockHost([mock], HostConfig(pki=pki, journal_path=journal_path, limits=INSI_LIMITS))
    endpoints = host.start()
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT) as control_client:
            yield RunningInsi(host, mock, endpoints, INSI_LIMITS, control_client)
    finally:
        host.stop()


@pytest.fixture
def fresh_insi(insi_mock: RunningInsi) -> Iterator[RunningInsi]:
    """The session's INSi mock back to its seeded defaults, without pending faults, before and after a test."""
    insi_mock.control_post("/reset")
    yield insi_mock
    insi_mock.control_post("/reset")


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


@dataclass
class RunningPsc:
    """A started PSC mock host: its three listeners (auth, wallet, mtls), the test PKI and the control API."""

    host: MockHost
    mock: PscMock
    endpoints: dict[str, Any]
    pki: Pki
    limits: Limits
    control_client: httpx.Client
    client_timeout: float = CLIENT_TIMEOUT

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

    @property
    def control(self) -> str:
        return self.endpoints["control"]

    def control_post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        response = self.control_client.post(self.control + path, json=data or {})
        assert response.status_code == 200, response.text
        return response.json()

    def seed(self, state: dict[str, Any]) -> Any:
        return self.control_post("/mocks/psc/state", state)

    def fault(self, kind: str, **rule: Any) -> Any:
        return self.control_post("/mocks/psc/faults", {"kind": kind, **rule})

    def last_seq(self) -> int:
        return self.host.journal.last_seq

    def journal_since(self, seq: int) -> list[dict[str, Any]]:
        """PSC journal records after ``seq``, read through the control API as a scenario step would."""
        response = self.control_client.get(f"{self.control}/journal?since={seq}&mock=psc")
        assert response.status_code == 200, response.text
        return response.json()["records"]


@pytest.fixture(scope="session")
def psc_mock(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPsc]:
    mock = PscMock(pki)
    journal_path = Path(tmp_path_factory.mktemp("psc-journal")) / "journal.jsonl"
    host = MockHost([mock], HostConfig(pki=pki, journal_path=journal_path, limits=PSC_LIMITS))
    endpoints = host.start()
    try:
        with httpx.Client(timeout=CLIENT_TIMEOUT) as control_client:
            yield RunningPsc(host, mock, endpoints, pki, PSC_LIMITS, control_client)
    finally:
        host.stop()


@pytest.fixture
def fresh_psc(psc_mock: RunningPsc) -> Iterator[RunningPsc]:
    """The session's PSC mock back to its defaults (clients, professionals, settings, no faults), before and after."""
    psc_mock.control_post("/reset")
    yield psc_mock
    psc_mock.control_post("/reset")


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
