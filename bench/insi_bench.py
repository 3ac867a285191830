"""Throughput and latency of the INSi mock: keep-alive mTLS clients sending traits searches.

The mock host runs in its own Python process (so that it does not share a GIL with the
clients), and each client is a process with one keep-alive httpx client. Usage:

    .venv/bin/python bench/insi_bench.py --seconds 5 --clients 2
"""

from __future__ import annotations

import os
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    journal_records,
    load_arguments,
    run_clients,
    start_host,
    stop_host,
    summarize,
)  # bench/ is on sys.path when run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the request builder the tests use
from insi_requests import CONTENT_TYPE, read_resultat, traits_request

from segur.pki import Pki

# A mix of answers (00, 00 with history, 01, 02), so that the figures are not only the cheapest path.
SEARCHES = [
    (("ADRUN", "ZOE", "F", "1975-12-31"), "00"),
    (("ECETINSI", "PIERRE-ALAIN", "M", "2009-07-14"), "00"),
    (("HOUILLES", "PIERRE", "M", "1980-01-01"), "01"),
    (("DE VINCI", "LEONARDO", "M", "1952-04-15"), "02"),
]


def run_client(url: str, pki_dir: str, seconds: float, ready: Any, results: Any) -> None:
    """One client process: warm up the connection, wait for the others, then send for ``seconds``."""
    pki = Pki(Path(pki_dir))
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.cert("insi-auto")), str(pki.key("insi-auto")))
    latencies: list[float] = []
    errors = 0
    with httpx.Client(verify=context, timeout=10.0) as client:
        client.post(url, content=traits_request(*SEARCHES[0][0]), headers={"content-type": CONTENT_TYPE})
        ready.wait(timeout=60)
        started = time.perf_counter()
        deadline = started + seconds
        n = 0
        while (now := time.perf_counter()) < deadline:
            traits, code = SEARCHES[n % len(SEARCHES)]
            body = traits_request(*traits)
            try:
                response = client.post(url, content=body, headers={"content-type": CONTENT_TYPE})
                ok = response.status_code == 200 and read_resultat(response.content).code_cr == code
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - now)
            errors += not ok
            n += 1
        elapsed = time.perf_counter() - started
    results.put({"latencies": latencies, "errors": errors, "elapsed": elapsed})


def bench(seconds: float, clients: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="insi-bench-") as tmp:
        work = Path(tmp)
        host, endpoints = start_host(work, "insi")
        try:
            url = endpoints["mocks"]["insi"]["endpoints"][0]
            outcomes = run_clients(run_client, (url, str(work / "pki"), seconds), clients, timeout=seconds + 120)
        finally:
            stop_host(host)
        journaled = journal_records(work)
    return {**summarize(outcomes), "journal_records": journaled}


def main(argv: list[str] | None = None) -> int:
    args = load_arguments(__doc__.splitlines()[0], argv, "client processes")
    figures = bench(args.seconds, args.clients)
    print(
        f"INSi mock bench: {args.clients} keep-alive mTLS client(s) x {args.seconds:g} s, traits searches, "
        f"host in its own process, {os.cpu_count()} CPU(s)"
    )
    print(f"throughput:  {figures['requests_per_second']:.0f} requests/s ({figures['requests']} requests)")
    print(f"latency p50: {figures['p50_ms']:.2f} ms")
    print(f"latency p99: {figures['p99_ms']:.2f} ms")
    print(f"errors:      {figures['errors']} (non-200 or unexpected CodeCR)")
    print(f"journaled:   {figures['journal_records']} records (warm-up requests included)")
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
