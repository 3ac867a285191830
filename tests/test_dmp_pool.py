"""The DMP mock's validation workers: in-process answers, and a dead or hung worker never hangs the mock."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from dmp_requests import DOMINIQUE, HOSPITAL_DOCTOR, ZOE, cda, client, submission
from lxml import etree

from segur.ins import OID_INS_NIR_TEST
from segur.mocks.dmp import DmpMock
from segur.mocks.dmp.protocol import BASE_PATH
from segur.mocks.dmp.validation_pool import PoolUnavailable, ValidationPool
from segur.mocks.runtime.faults import FaultRule
from segur.mocks.runtime.http import Handled, HttpRequest
from segur.pki import Pki
from segur.reference_sut.dmp_client import ITI41, DmpClient, attachments

N1_FORMAT = "urn:ihe:iti:xds-sd:pdf:2008"
SOAP = "http://www.w3.org/2003/05/soap-envelope"


@dataclass
class _Target:
    """What ``dmp_requests.client`` needs to build requests; nothing listens at ``base_url``."""

    pki: Pki
    base_url: str = "https://dmp.invalid" + BASE_PATH
    client_timeout: float = 5.0


@pytest.fixture(scope="module")
def dpi(pki: Pki) -> Iterator[DmpClient]:
    builder = client(_Target(pki))
    yield builder
    builder.close()


@pytest.fixture(scope="module")
def in_process(pki: Pki) -> Iterator[DmpMock]:
    mock = DmpMock(pki, max_document_bytes=500_000, workers=0)
    yield mock
    mock.close()


@pytest.fixture(scope="module")
def pooled(pki: Pki) -> Iterator[DmpMock]:
    mock = DmpMock(pki, max_document_bytes=500_000, workers=1)
    yield mock
    mock.close()


def iti41(
    pki: Pki, dpi: DmpClient, number: int, *, vihf_ins: str = DOMINIQUE, mangle: Callable[[bytes], bytes] | None = None
) -> HttpRequest:
    """An ITI-41 of a CDA for DOMINIQUE under a VIHF for ``vihf_ins``; ``mangle`` alters documents after signing."""
    lot = submission(pki, cda(document_id=f"1.2.250.1.999.1.1.7.{os.getpid()}.{number}"), format_code=N1_FORMAT)
    documents = {key: mangle(data) if mangle else data for key, data in lot.documents.items()}
    parts = attachments(lot.request, documents)
    url, content_type, body = dpi.prepare("repository", ITI41, lot.request, vihf_ins, OID_INS_NIR_TEST, "normal", parts)
    target = url.removeprefix("https://dmp.invalid")
    peer = {"cn": "HOPITAL TEST SEGUR AUTH_CLI"}
    return HttpRequest("POST", target, {"content-type": content_type}, body, body, peer, "")


def handled(mock: DmpMock, request: HttpRequest) -> Handled:
    return asyncio.run(mock.app.handle(request))


def journaled(answer: Handled) -> tuple[int, str, dict, dict]:
    """What the journal keeps of an exchange, besides the bytes, and the HTTP status."""
    return answer.response.status, answer.operation, answer.correlation, answer.outcome


def fault_code(answer: Handled) -> str:
    root = etree.fromstring(answer.response.body)
    return root.findtext(f".//{{{SOAP}}}Subcode/{{{SOAP}}}Value", "").split(":")[-1]


def _with_body(request: HttpRequest, mangle: Callable[[bytes], bytes]) -> HttpRequest:
    body = mangle(request.body)
    assert body != request.body
    return HttpRequest(request.method, request.target, request.headers, body, body, request.peer, request.started)


def _forged_vihf(body: bytes) -> bytes:
    return body.replace(b"HOSPITALIER MEDECIN-TEST", b"HOSPITALIER MEDECIN-FAUX", 1)


def _oversized_cda(data: bytes) -> bytes:
    """Over the fixtures' 500 KB document limit."""
    return data + b"<!--" + b"x" * 600_000 + b"-->" if b"ClinicalDocument" in data[:4096] else data


def _altered_cda(data: bytes) -> bytes:
    """A comment after the CDA's root: still well-formed, no longer the document the metadata and the lot hash."""
    return data + b"<!-- altered after signing -->" if b"ClinicalDocument" in data[:4096] else data


@pytest.mark.parametrize(
    ("number", "build", "expected"),
    [
        (1, lambda pki, dpi, n: iti41(pki, dpi, n), "Success"),
        (2, lambda pki, dpi, n: _with_body(iti41(pki, dpi, n), _forged_vihf), "DMPInvalidVihf"),
        (3, lambda pki, dpi, n: iti41(pki, dpi, n, vihf_ins=ZOE), "DMPVihfPatientMismatch"),
        (4, lambda pki, dpi, n: iti41(pki, dpi, n, mangle=_altered_cda), "Failure"),
        (5, lambda pki, dpi, n: iti41(pki, dpi, n, mangle=_oversized_cda), "DMPRequestTooLarge"),
        (6, lambda pki, dpi, n: _with_body(iti41(pki, dpi, n, mangle=_oversized_cda), _forged_vihf), "DMPInvalidVihf"),
    ],
    ids=["valid", "forged-vihf", "vihf-of-another-patient", "hash-mismatch", "oversized", "oversized-forged-vihf"],
)
def test_the_pool_answers_and_journals_as_in_process_checks(
    pki: Pki, dpi: DmpClient, in_process: DmpMock, pooled: DmpMock, number: int, build: Callable, expected: str
) -> None:
    request = build(pki, dpi, number)
    inline, worker = handled(in_process, request), handled(pooled, request)
    assert journaled(worker) == journaled(inline)
    assert worker.outcome.get("status", worker.outcome.get("fault")) == expected
    if expected == "Failure":
        assert "XDSRepositoryMetadataError" in worker.outcome["errors"], worker.outcome


@pytest.mark.parametrize(
    ("number", "introspection", "expected"),
    [
        (20, {"active": True, "SubjectNameID": HOSPITAL_DOCTOR.idnps}, "Success"),
        (21, {"active": False}, "DMPInvalidVihf"),
    ],
    ids=["active-token", "revoked-token"],
)
def test_a_psc_mode_vihf_is_introspected_in_the_host(
    pki: Pki,
    in_process: DmpMock,
    pooled: DmpMock,
    monkeypatch: pytest.MonkeyPatch,
    number: int,
    introspection: dict,
    expected: str,
) -> None:
    """The introspection callback reaches the PSC mock's state: it cannot cross to a worker."""
    for mock in (in_process, pooled):
        monkeypatch.setattr(mock.app, "psc_tokens", lambda token: introspection)
    psc_dpi = client(_Target(pki), mode="PSC", psc_token="jeton-psc-de-test")
    try:
        request = iti41(pki, psc_dpi, number)
    finally:
        psc_dpi.close()
    inline, worker = handled(in_process, request), handled(pooled, request)
    assert journaled(worker) == journaled(inline)
    assert worker.outcome.get("status", worker.outcome.get("fault")) == expected
    if expected == "DMPInvalidVihf":
        assert [finding["rule"] for finding in worker.outcome["findings"]] == ["VIHF-PSC-TOKEN"]


def test_an_injected_fault_comes_before_the_submission_checks(
    pki: Pki, dpi: DmpClient, in_process: DmpMock, pooled: DmpMock
) -> None:
    request = iti41(pki, dpi, 30, mangle=_altered_cda)
    for mock in (in_process, pooled):
        mock.faults.add(FaultRule("soap_fault", "iti41"))
    inline, worker = handled(in_process, request), handled(pooled, request)
    assert journaled(worker) == journaled(inline)
    assert worker.outcome == {
        "fault": "DMPServiceUnavailable",
        "detail": "fault injected by the control API",
        "injected": "soap_fault",
    }
    assert pooled.faults.pending() == in_process.faults.pending() == []


def test_a_killed_worker_answers_unavailable_and_the_next_request_is_served(pki: Pki, dpi: DmpClient) -> None:
    mock = DmpMock(pki, workers=1)
    try:
        pid = asyncio.run(mock.app.pool.run(os.getpid))
        assert pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        unavailable = handled(mock, iti41(pki, dpi, 10))
        assert (unavailable.response.status, fault_code(unavailable)) == (500, "DMPServiceUnavailable")
        assert unavailable.outcome["fault"] == "DMPServiceUnavailable"
        assert unavailable.operation == "iti41"
        served = handled(mock, iti41(pki, dpi, 11))
        assert served.outcome["status"] == "Success", served.outcome
        assert asyncio.run(mock.app.pool.run(os.getpid)) != pid
    finally:
        mock.close()


def test_a_check_that_raises_raises_in_the_host_and_the_worker_stays() -> None:
    pool = ValidationPool(1)
    try:
        with pytest.raises(ValueError, match="invalid literal"):
            asyncio.run(pool.run(int, "pas un nombre"))
        assert asyncio.run(pool.run(int, "42")) == 42
    finally:
        pool.close()


def test_a_hung_check_times_out_and_its_worker_is_replaced() -> None:
    pool = ValidationPool(1, timeout=0.5)
    try:
        hung = asyncio.run(pool.run(os.getpid))
        with pytest.raises(PoolUnavailable, match=r"more than 0\.5 s"):
            asyncio.run(pool.run(time.sleep, 3600))  # stands for a check that never ends
        assert not _alive(hung)
        assert asyncio.run(pool.run(os.getpid)) != hung
    finally:
        pool.close()


def test_close_and_garbage_collection_stop_the_workers() -> None:
    pool = ValidationPool(2)
    first = _worker_pids(pool)
    pool.close()
    assert not any(_alive(pid) for pid in first)
    again = _worker_pids(pool)  # a closed pool starts again when used
    assert again.isdisjoint(first)
    del pool
    gc.collect()
    assert not any(_alive(pid) for pid in again)


def test_zero_workers_check_in_the_host_process(in_process: DmpMock) -> None:
    assert asyncio.run(in_process.app.pool.run(os.getpid)) == os.getpid()


def _worker_pids(pool: ValidationPool) -> set[int]:
    async def both() -> set[int]:
        return set(await asyncio.gather(*(pool.run(os.getpid) for _ in range(2))))

    return asyncio.run(both())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_host_started_with_dmp_workers_starts_them_and_stops_them_with_itself(pki: Pki, tmp_path) -> None:
    from segur.mocks import create_mocks
    from segur.mocks.runtime.host import HostConfig, MockHost

    (dmp,) = create_mocks(["dmp"], pki, dmp_workers=1)
    host = MockHost([dmp], HostConfig(pki=pki, journal_path=tmp_path / "journal.jsonl"))
    host.start()
    try:
        started = [worker.process.pid for worker in dmp.app.pool._all]
        assert len(started) == 1 and _alive(started[0])
    finally:
        host.stop()
    assert not _alive(started[0])
