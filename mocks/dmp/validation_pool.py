"""The DMP mock's CPU-bound, stateless checks, run in worker processes so that the host's loop keeps serving.

An ITI-41 of a 50 KB CDA costs about 8 ms of CPU, 6 of them in the VIHF signature, the XDS
metadata with its XAdES lot signature and the CDA layers, all holding the GIL: in one asyncio
process the mock used one core. Here those checks run in spawned worker processes (spawn: the
host runs threads, which fork would copy half-locked) while registry state, fault injection,
filing and rendering stay in the host. Inputs cross as bytes (the host serialises each XML
subtree once) and results come back as frozen dataclasses (``Finding``, ``VihfClaims``). Each
process caches what repeats from one request to the next (the signer's validated certificate
chain, for one); no cache changes an answer.

Why not ``concurrent.futures.ProcessPoolExecutor``: jobs and results pass through two helper
threads, which wait for the GIL while the loop thread works (up to the 5 ms switch interval, at
each hop); on the 2-core bench it did no better than no pool (77 against 74-88 submissions/s).
Here each worker has a socket pair that the loop itself reads and writes: no host thread at all.
Each worker is pinned to one of the host's CPUs, round robin: on the shared 2-core bench machine
pinned workers served about 15% more submissions (medians of noisy runs), likely because the
kernel otherwise tends to run a worker woken by the host's write on the host's own CPU.

``workers=0`` runs the same functions on the same bytes inline: the unit tests and small setups get
identical answers without processes. A worker that dies, or whose check outlives ``timeout``, fails
the request it held with ``PoolUnavailable`` and is replaced, so the next request is served.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing
import os
import pickle
import signal
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from segur.cda import validate_cda
from segur.cisis import package_checks
from segur.validation import Finding, MalformedXml, UnsafeXml, has_errors, parse_untrusted
from segur.vihf import VihfClaims, verify_vihf
from segur.xds import InsOids, validate_submission, value_sets

T = TypeVar("T")
_HEADER = 8  # bytes of the big-endian length before each pickled message; a worker sends 8 zeros once warm
_STARTUP_TIMEOUT = 60.0  # seconds a spawned worker may take to import and warm up


class PoolUnavailable(Exception):
    """The checks could not run: their worker died or overran the timeout. The service answers "unavailable"."""


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    sock: socket.socket  # the host's end, non-blocking, read and written by the loop only
    cpu: int | None
    ready: bool = False  # its "warm" message was read: the check timeout starts counting with the check


class ValidationPool:
    """Runs picklable module-level functions in ``workers`` processes (default: one per CPU), or inline for 0.

    Started lazily by the first ``run`` or eagerly by ``start``; stopped by ``close`` or, failing
    that, when the pool is garbage-collected or the interpreter exits (a ``weakref.finalize``).
    ``run`` must be awaited on one event loop at a time.
    """

    def __init__(self, workers: int | None = None, *, timeout: float = 60.0) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        if self.workers < 0 or timeout <= 0:
            raise ValueError("workers must be >= 0 and timeout > 0")
        self.timeout = timeout
        self._all: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._finalizer: weakref.finalize | None = None

    def start(self) -> None:
        """Spawn every worker now, not waiting: each warms up (imports, value sets) before its first check."""
        if self.workers == 0 or self._finalizer is not None:
            return
        self._all, self._idle = [], []
        self._finalizer = weakref.finalize(self, _stop, self._all)
        for _ in range(self.workers):
            self._spawn()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker, its exception re-raised here; ``PoolUnavailable`` if the worker failed."""
        if self.workers == 0:
            return function(*args)
        self.start()
        message = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
        worker = await self._acquire()
        try:
            failed, value = await self._exchange(worker, message)
        except TimeoutError as error:  # before OSError, of which it is a subclass
            self._replace(worker)
            raise PoolUnavailable(f"{error}; the worker was replaced") from None
        except (OSError, EOFError) as error:
            self._replace(worker)
            raise PoolUnavailable(f"a validation worker died ({type(error).__name__}: {error})") from None
        except BaseException:  # cancelled mid-exchange: the worker's next answer would be this one's
            self._replace(worker)
            raise
        self._release(worker)
        if failed:
            raise value
        return value

    def close(self) -> None:
        """Stop the workers, once no check runs (one still running would wait for its timeout); ``run`` restarts."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None
        self._idle = []

    async def _exchange(self, worker: _Worker, message: bytes) -> tuple[bool, Any]:
        if not worker.ready:
            try:
                await asyncio.wait_for(_receive(worker.sock, _HEADER), _STARTUP_TIMEOUT)
            except TimeoutError:
                raise TimeoutError(f"a validation worker did not start in {_STARTUP_TIMEOUT:g} s") from None
            worker.ready = True
        try:
            return await asyncio.wait_for(_request(worker.sock, message), self.timeout)
        except TimeoutError:
            raise TimeoutError(f"the checks took more than {self.timeout:g} s") from None

    def _spawn(self) -> None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        cpu = min(cpus, key=lambda cpu: sum(worker.cpu == cpu for worker in self._all)) if cpus else None
        ours, theirs = socket.socketpair()
        process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(theirs, cpu), name="dmp-validation", daemon=True
        )
        process.start()
        theirs.close()
        ours.setblocking(False)
        worker = _Worker(process, ours, cpu)
        self._all.append(worker)
        self._release(worker)

    async def _acquire(self) -> _Worker:
        while not self._idle:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if self._idle:  # the wake-up this waiter may have received goes to the next one
                    self._wake()
                raise
        return self._idle.pop()

    def _release(self, worker: _Worker) -> None:
        self._idle.append(worker)
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _replace(self, worker: _Worker) -> None:
        """End a worker whose state is unknown and, unless the pool was closed meanwhile, spawn its successor."""
        _end(worker)
        if worker in self._all:
            self._all.remove(worker)
            self._spawn()


def _end(worker: _Worker, grace: float = 0.0) -> None:
    worker.sock.close()
    worker.process.join(grace)  # closing the socket asks the worker to exit; a busy or hung one is killed
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(1.0)


def _stop(workers: list[_Worker]) -> None:
    ending = list(workers)
    workers.clear()
    for worker in ending:
        worker.sock.close()
    for worker in ending:
        _end(worker, grace=1.0)


async def _request(sock: socket.socket, message: bytes) -> tuple[bool, Any]:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, len(message).to_bytes(_HEADER, "big") + message)
    size = int.from_bytes(await _receive(sock, _HEADER), "big")
    return pickle.loads(await _receive(sock, size))


async def _receive(sock: socket.socket, size: int) -> bytearray:
    loop = asyncio.get_running_loop()
    buffer = bytearray(size)
    view, received = memoryview(buffer), 0
    while received < size:
        count = await loop.sock_recv_into(sock, view[received:])
        if count == 0:
            raise EOFError("the worker closed its socket")
        received += count
    return buffer


def _serve(sock: socket.socket, cpu: int | None) -> None:
    """A worker's life: answer ``(function, args)`` messages with ``(failed, result or exception)`` until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the host, which then closes our socket
    if cpu is not None:
        with contextlib.suppress(OSError):  # a CPU gone offline since: stay where the kernel put us
            os.sched_setaffinity(0, {cpu})
    sock.setblocking(True)
    value_sets()  # ~70 ms on first use: paid here rather than by the first submission
    try:
        sock.sendall(bytes(_HEADER))
    except OSError:
        return
    while True:
        try:
            header = _read(sock, _HEADER)
            function, args = pickle.loads(_read(sock, int.from_bytes(header, "big")))
        except (EOFError, OSError):  # the host closed our socket (a reset if our "warm" message was unread)
            return
        try:
            answer = pickle.dumps((False, function(*args)), pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # the host re-raises it, as if the check had run there
            answer = _pickled_error(error)
        try:
            sock.sendall(len(answer).to_bytes(_HEADER, "big") + answer)
        except OSError:
            return


def _read(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view, received = memoryview(buffer), 0
    while received < size:
        count = sock.recv_into(view[received:])
        if count == 0:
            raise EOFError
        received += count
    return buffer


def _pickled_error(error: Exception) -> bytes:
    try:
        return pickle.dumps((True, error), pickle.HIGHEST_PROTOCOL)
    except Exception:
        return pickle.dumps((True, RuntimeError(f"{type(error).__name__}: {error}")), pickle.HIGHEST_PROTOCOL)


def gate_findings(
    security: bytes,
    trusted_ca_pem: bytes,
    submission: tuple[bytes, dict[str, bytes], InsOids] | None,
    cisis: str | None = None,
) -> tuple[VihfClaims | None, list[Finding], list[Finding]]:
    """The VIHF of a serialised ``wsse:Security`` and, once it passed, the checks of an ITI-41 submission.

    ``submission`` is a serialised ProvideAndRegisterDocumentSetRequest, its documents by id and the
    accepted INS OIDs; ``cisis`` the user's CI-SIS package folder, whose schema, Schematrons and value
    sets then check each CDA too. One call for both spares a round trip per request. The VIHF is
    verified without PSC introspection: the PSC mock lives in the host.
    """
    claims, findings = verify_vihf(security, trusted_ca_pem=trusted_ca_pem)
    if submission is None or claims is None or has_errors(findings):
        return claims, findings, []
    return claims, findings, _submission_findings(*submission, trusted_ca_pem, cisis)


def _submission_findings(
    request: bytes, documents: dict[str, bytes], oids: InsOids, trusted_ca_pem: bytes, cisis: str | None
) -> list[Finding]:
    """XDS metadata, lot signature and CDA documents; CDA findings become ``InvalidDocumentContent:<rule>``.

    Each CDA is parsed once, for both the XDS checks (its header against the metadata) and the CDA layers.
    """
    schema, layers = package_checks(cisis) if cisis is not None else (None, [])
    cdas = [key for key, data in documents.items() if data.lstrip()[:1] == b"<" and b"ClinicalDocument" in data[:4096]]
    trees = {}
    for document_id in cdas:
        with contextlib.suppress(UnsafeXml, MalformedXml):  # each layer reports it in its own words
            trees[document_id] = parse_untrusted(documents[document_id])
    findings = validate_submission(
        parse_untrusted(request), documents, oids=oids, trusted_ca_pem=trusted_ca_pem, trees=trees
    )
    for document_id in cdas:
        findings += [
            Finding(
                f"InvalidDocumentContent:{f.rule}",
                f.severity,
                f"document {document_id}: {f.message}",
                f.location,
                f.requirement,
            )
            for f in validate_cda(
                documents[document_id], root=trees.get(document_id), schema=schema, extra_layers=layers
            )
        ]
    return findings
