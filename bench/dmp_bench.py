"""DMP mock throughput: full ITI-41 submissions of a 50 KB CDA, and CDA validation speed by layer.

ITI-41: every submission the mock receives goes through the whole gate (mTLS, MTOM, VIHF signature),
the XDS metadata and XAdES checks and the CDA layers (a)+(b), then is filed. Each client process
prepares its submissions (signed VIHF, signed lot) before the clock starts, so the figures are the
mock's. In-process CPU: the same submissions through the mock's handler in this process, checks
inline, timed in CPU seconds (the figure to compare changes by on a shared machine). CDA
validation: layers (a, own structural checks)+(b) on the same documents, and the official ANS
schematrons through the XSLT 3 engine when ``--cisis`` points at a TestContenuCDA package. Usage:

    .venv/bin/python bench/dmp_bench.py --seconds 5 --clients 2 [--cpu-submissions N] [--cisis DIR] [--examples DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import ssl
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from _common import journal_records, run_clients, start_host, stop_host, summarize  # bench/ is on sys.path when run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the request builders the tests use
from dmp_requests import DOMINIQUE, cda, client, submission

from segur.cda import validate_cda
from segur.ins import OID_INS_NIR_TEST
from segur.mocks.dmp import DmpMock
from segur.mocks.dmp.protocol import BASE_PATH
from segur.mocks.runtime.http import HttpRequest
from segur.pki import Pki, ensure_pki
from segur.reference_sut.dmp_client import ITI41, DmpClient, attachments, raise_registry_errors

N3_FORMAT = "urn:asip:ci-sis:ldl-ses:2017"
AUTH_CLI = "HOPITAL TEST SEGUR AUTH_CLI"  # the client certificate's CN, as the TLS layer hands it to the mock
FILLER = tuple(f"Ligne {n} du compte rendu synthétique : évolution favorable, pas d'événement." for n in range(190))


class _Target:
    """What ``dmp_requests.client`` needs of a running mock."""

    def __init__(self, base_url: str, pki: Pki) -> None:
        self.base_url = base_url
        self.pki = pki
        self.client_timeout = 30.0


def fifty_kb_cda(number: int) -> bytes:
    return cda(level="N3", document_id=f"1.2.250.1.999.1.1.9.{os.getpid()}.{number}", text=FILLER)


def prepared_submissions(dpi: DmpClient, pki: Pki, count: int) -> list[tuple[str, str, bytes]]:
    """URL, Content-Type and body of ``count`` ITI-41 requests, each of its own 50 KB CDA under a fresh VIHF."""
    prepared = []
    for number in range(count):
        lot = submission(pki, fifty_kb_cda(number), format_code=N3_FORMAT)
        parts = attachments(lot.request, lot.documents)
        prepared.append(dpi.prepare("repository", ITI41, lot.request, DOMINIQUE, OID_INS_NIR_TEST, "normal", parts))
    return prepared


class _Sender:
    """One keep-alive mTLS connection posting prepared requests with the standard library's HTTP client.

    The clients share the mock's two cores: httpx plus parsing each answer cost ~2 ms of CPU per
    submission there, http.client and a look for the Success status under 1 ms, which leaves the
    mock the CPU the figures are about. The warm-up goes through the DPI client, answer parsed.
    """

    SUCCESS = b"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"

    def __init__(self, base_url: str, pki: Pki) -> None:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.cert("auth-cli")), str(pki.key("auth-cli")))
        url = urllib.parse.urlsplit(base_url)
        self.connection = http.client.HTTPSConnection(url.hostname or "", url.port, context=context, timeout=30)

    def accepted(self, url: str, content_type: str, body: bytes) -> bool:
        """Whether the mock answered 200 with a Success RegistryResponse."""
        self.connection.request("POST", urllib.parse.urlsplit(url).path, body, {"Content-Type": content_type})
        response = self.connection.getresponse()
        answer = response.read()
        return response.status == 200 and self.SUCCESS in answer


def run_client(base_url: str, pki_dir: str, count: int, seconds: float, ready: Any, results: Any) -> None:
    """Prepare ``count`` submissions, wait for the others, then send them for at most ``seconds``."""
    pki = Pki(Path(pki_dir))
    dpi = client(_Target(base_url, pki))
    prepared = prepared_submissions(dpi, pki, count + 1)
    answer, _ = dpi.send(*prepared.pop())  # warm-up: the mock's caches; the full client reads the answer
    raise_registry_errors(answer)
    dpi.close()
    sender = _Sender(base_url, pki)
    latencies: list[float] = []
    errors = 0
    ready.wait(timeout=300)
    started = time.perf_counter()
    for request in prepared:
        before = time.perf_counter()
        if before - started > seconds:
            break
        try:
            errors += not sender.accepted(*request)
        except (OSError, http.client.HTTPException):
            errors += 1
            sender = _Sender(base_url, pki)
        latencies.append(time.perf_counter() - before)
    results.put({"latencies": latencies, "errors": errors, "elapsed": time.perf_counter() - started})
    sender.connection.close()


def bench_iti41(seconds: float, clients: int, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as tmp:
        work = Path(tmp)
        host, endpoints = start_host(work, "dmp")
        try:
            base_url = endpoints["mocks"]["dmp"]["endpoints"][0]
            outcomes = run_clients(run_client, (base_url, str(work / "pki"), count, seconds), clients, timeout=600)
        finally:
            stop_host(host)
        journaled = journal_records(work)
    return {**summarize(outcomes), "journal_records": journaled}


def cpu_per_submission(count: int, rounds: int = 3) -> float:
    """Milliseconds of CPU one ITI-41 costs the mock's own handler, its checks inline (``workers=0``), in this process.

    On a shared machine the wall-clock rate follows the neighbours' load; CPU time spent in one
    process much less so. The best of ``rounds`` rounds (the registry emptied before each) is
    kept, since other processes only ever add to it. No TLS, HTTP parsing nor journal: the mock's work.
    """
    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as tmp:
        pki = ensure_pki(Path(tmp) / "pki")
        mock = DmpMock(pki, workers=0)
        dpi = client(_Target(f"https://dmp.invalid{BASE_PATH}", pki))
        requests = [
            HttpRequest("POST", f"{BASE_PATH}repository", {"content-type": kind}, body, body, {"cn": AUTH_CLI}, "")
            for _, kind, body in prepared_submissions(dpi, pki, count)
        ]
        dpi.close()
        asyncio.run(_handle(mock, requests[:5]))  # warm-up: value sets, compiled XPaths, the signer's chain
        figures = []
        for _ in range(rounds):
            mock.reset()
            started = time.process_time()
            asyncio.run(_handle(mock, requests))
            figures.append((time.process_time() - started) / count * 1000)
    return min(figures)


async def _handle(mock: DmpMock, requests: list[HttpRequest]) -> None:
    for request in requests:
        handled = await mock.app.handle(request)
        if handled.outcome.get("status") != "Success":
            raise SystemExit(f"the in-process submission was refused: {handled.outcome}")


def bench_validation(documents: list[bytes], cisis: Path | None, seconds: float) -> dict[str, float | str]:
    """MB/s of layers (a)+(b), and of the official schematrons when a package is given."""
    figures: dict[str, float | str] = {"documents": len(documents), "megabytes": sum(map(len, documents)) / 1e6}
    figures["own_layers_mb_s"] = _throughput(lambda data: validate_cda(data), documents, seconds)
    if cisis is None:
        figures["schematron"] = "not measured: give --cisis DIR (a TestContenuCDA package with its schematrons)"
        return figures
    from segur.cisis import CisisPackage
    from segur.validation import parse_untrusted

    package = CisisPackage(cisis)
    layer = package.schematron_layer()
    schema = package.cda_schema()
    figures["schema_and_own_rules_mb_s"] = _throughput(
        lambda data: validate_cda(data, schema=schema), documents, seconds
    )
    figures["schematron_mb_s"] = _throughput(lambda data: layer(data, parse_untrusted(data)), documents, seconds)
    return figures


def _throughput(validate: Any, documents: list[bytes], seconds: float) -> float:
    for data in documents:  # warm-up: compiled XPaths, schematron compilation
        validate(data)
    total, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for data in documents:
            validate(data)
            total += len(data)
    return total / 1e6 / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measure lasts (default 5)")
    parser.add_argument("--clients", type=int, default=2, help="client processes, one connection each (default 2)")
    parser.add_argument("--submissions", type=int, default=400, help="prepared per client (default 400)")
    parser.add_argument("--cisis", type=Path, help="your CI-SIS TestContenuCDA package, for the schematron figures")
    default_examples = Path(__file__).resolve().parents[2] / "shared" / "cisis" / "ExemplesCDA"
    parser.add_argument(
        "--examples",
        type=Path,
        default=default_examples if default_examples.is_dir() else None,
        help="a folder of CDA documents to validate as well (default: ../shared examples if present)",
    )
    parser.add_argument(
        "--cpu-submissions",
        type=int,
        default=100,
        help="submissions for the in-process CPU figure, handler only (default 100; 0 skips it)",
    )
    args = parser.parse_args(argv)
    if args.cpu_submissions > 0:
        cpu = cpu_per_submission(args.cpu_submissions)
        print(f"in-process CPU: {cpu:.2f} ms per ITI-41 (mock handler, checks inline, best of 3 rounds)")
    figures = bench_iti41(args.seconds, args.clients, args.submissions)
    print(
        f"DMP mock bench: {args.clients} mTLS client(s), ITI-41 of a {len(fifty_kb_cda(0)) / 1000:.0f} KB CDA "
        f"(VIHF + MTOM + XDS metadata + XAdES + CDA layers a+b), host in its own process, {os.cpu_count()} CPU(s)"
    )
    print(f"throughput:  {figures['requests_per_second']:.0f} submissions/s ({figures['requests']} submissions)")
    print(f"latency p50: {figures['p50_ms']:.1f} ms")
    print(f"latency p99: {figures['p99_ms']:.1f} ms")
    print(f"errors:      {figures['errors']} (fault, registry error or no answer)")
    print(f"journaled:   {figures['journal_records']} records (warm-up included)")
    documents = [fifty_kb_cda(0), cda(level="N1"), cda(level="N3")]
    if args.examples is not None:
        documents += [path.read_bytes() for path in sorted(args.examples.glob("*.xml"))]
    validation = bench_validation(documents, args.cisis, args.seconds)
    print(f"CDA validation on {validation['documents']} documents ({validation['megabytes']:.1f} MB):")
    print(f"  layers (a: own checks) + (b):     {validation['own_layers_mb_s']:.1f} MB/s")
    if "schematron_mb_s" in validation:
        print(f"  layers (a: CDA_extended.xsd) + (b): {validation['schema_and_own_rules_mb_s']:.1f} MB/s")
        print(f"  official schematrons (XSLT 3):     {validation['schematron_mb_s']:.2f} MB/s")
    else:
        print(f"  official schematrons: {validation['schematron']}")
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
