"""Throughput and latency of the INSi mock: keep-alive mTLS clients sending traits searches.

The mock host runs in its own Python process (so that it does not share a GIL with the
clients), and each client is a process with one keep-alive httpx client. Usage:

    .venv/bin/python bench/insi_bench.py --seconds 5 --clients 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the request builder the tests use
from insi_requests import CONTENT_TYPE, read_resultat, traits_request

from segur.pki import Pki, ensure_pki

# Started with `python -c`: prints the endpoints as one JSON line, serves until stdin closes.
HOST_PROGRAM = """
import json, sys
from pathlib import Path
from segur.mocks.insi import InsiMock
from segur.mocks.runtime.host import HostConfig, MockHost
from segur.pki import Pki
host = MockHost([InsiMock()], HostConfig(pki=Pki(Path(sys.argv[1])), journal_path=Path(sys.argv[2])))
print(json.dumps(host.start()), flush=True)
sys.stdin.read()
host.stop()
"""

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


def start_host(work: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    pki = ensure_pki(work / "pki")
    process = subprocess.Popen(
        [sys.executable, "-c", HOST_PROGRAM, str(pki.directory), str(work / "journal.jsonl")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise SystemExit(f"the mock host did not start (exit code {process.returncode})")
    return process, json.loads(line)


def stop_host(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bench(seconds: float, clients: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="insi-bench-") as tmp:
        work = Path(tmp)
        host, endpoints = start_host(work)
        try:
            url = endpoints["mocks"]["insi"]["endpoints"][0]
            spawn = multiprocessing.get_context("spawn")
            ready = spawn.Barrier(clients)
            results = spawn.Queue()
            workers = [
                spawn.Process(target=run_client, args=(url, str(work / "pki"), seconds, ready, results))
                for _ in range(clients)
            ]
            for worker in workers:
                worker.start()
            outcomes = [results.get(timeout=seconds + 120) for _ in workers]
            for worker in workers:
                worker.join(timeout=30)
        finally:
            stop_host(host)
        journal_lines = sum(1 for _ in (work / "journal.jsonl").open())
    latencies = sorted(latency for outcome in outcomes for latency in outcome["latencies"])
    requests = len(latencies)
    return {
        "requests": requests,
        "errors": sum(outcome["errors"] for outcome in outcomes),
        "requests_per_second": sum(len(o["latencies"]) / o["elapsed"] for o in outcomes),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100, method="inclusive")[98] * 1000 if requests > 1 else 0.0,
        "journal_records": journal_lines,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each client sends (default 5)")
    parser.add_argument("--clients", type=int, default=2, help="client processes, one connection each (default 2)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1:
        parser.error("--seconds must be > 0 and --clients >= 1")
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
