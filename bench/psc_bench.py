"""Throughput and latency of the PSC mock: token issuances and introspections over keep-alive TLS.

The mock host runs in its own Python process (bench/_common.py); each client is a thread of this
one with its own keep-alive httpx client, authenticating as ``segur-sut`` (client_secret_basic).
A thread gets its first refresh token through one code flow with PKCE (the professional
pre-selected through the control API, as a scenario does), then, for S seconds, rotates it with
the ``refresh_token`` grant: each request issues a new access token, ID token and refresh token,
the mock's costliest answer (two RS256 signatures). Then, for S seconds more, it introspects its
last access token. Threads suffice here, unlike insi_bench's processes: the host is the
bottleneck, and the clients use about a third of a core. Usage:

    .venv/bin/python bench/psc_bench.py --seconds 5 --clients 2
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import secrets
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from _common import journal_records, load_arguments, start_host, stop_host, summarize  # bench/ is on sys.path when run

CLIENT = ("segur-sut", "segur-sut-secret")
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never reached: the code is read from the Location header
PROFESSIONAL = "899910000019"  # médecin généraliste (professionals.yaml)
SCOPE = "openid scope_all"
TARGET_ISSUANCES = 300  # per second, on the 2-core reference machine


def code_flow(http: httpx.Client, control: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """One authorization-code flow with PKCE S256; the token response, whose refresh token starts the rotation.

    Run on the client's own keep-alive connection, it also warms that connection up.
    """
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "client_id": CLIENT[0],
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": SCOPE,
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    httpx.post(f"{control}/mocks/psc/state", json={"next_login": {"national_id": PROFESSIONAL}}).raise_for_status()
    answer = http.get(metadata["authorization_endpoint"], params=params, follow_redirects=False)
    if answer.status_code != 302:
        raise SystemExit(f"the authorization request was answered {answer.status_code}: {answer.text[:200]}")
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    tokens = http.post(metadata["token_endpoint"], data=form, auth=CLIENT)
    if tokens.status_code != 200:
        raise SystemExit(f"the code exchange was answered {tokens.status_code}: {tokens.text[:200]}")
    return tokens.json()


def measure(send: Callable[[], bool], seconds: float) -> dict[str, Any]:
    """Call ``send`` (True when the answer is right) back to back for ``seconds``; latencies and errors."""
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds
    while (now := time.perf_counter()) < deadline:
        try:
            ok = send()
        except (httpx.HTTPError, ValueError):  # ValueError: a body that is not JSON
            ok = False
        latencies.append(time.perf_counter() - now)
        errors += not ok
    return {"latencies": latencies, "errors": errors, "elapsed": time.perf_counter() - started}


def run_client(
    http: httpx.Client,
    tokens: dict[str, Any],
    metadata: dict[str, Any],
    seconds: float,
    ready: threading.Barrier,
    results: dict[str, list[dict[str, Any]]],
) -> None:
    """One client thread: both measures, each started together with the other threads."""

    def refresh() -> bool:
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        response = http.post(metadata["token_endpoint"], data=form, auth=CLIENT)
        issued = response.json() if response.status_code == 200 else {}
        if not all(issued.get(name) for name in ("access_token", "id_token", "refresh_token")):
            return False
        tokens.update(issued)
        return True

    def introspect() -> bool:
        response = http.post(metadata["introspection_endpoint"], data={"token": tokens["access_token"]}, auth=CLIENT)
        return response.status_code == 200 and response.json().get("active") is True

    try:
        ready.wait(timeout=60)
        issuance = measure(refresh, seconds)
        ready.wait(timeout=60)
        introspection = measure(introspect, seconds)
    except BaseException:
        ready.abort()  # the other threads stop waiting for this one
        raise
    results["issuance"].append(issuance)
    results["introspection"].append(introspection)


def bench(seconds: float, clients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="psc-bench-") as tmp:
        work = Path(tmp)
        host, endpoints = start_host(work, "psc")
        try:
            control = endpoints["control"]
            issuer = endpoints["mocks"]["psc"]["endpoints"][0]
            context = ssl.create_default_context(cafile=endpoints["pki"]["ca"])
            state = {
                "clients": [{"client_id": CLIENT[0], "redirect_uris": [REDIRECT_URI]}],
                # The last access token of the first measure is introspected throughout the second.
                "token_lifetime": max(120, math.ceil(seconds) + 60),
            }
            httpx.post(f"{control}/mocks/psc/state", json=state).raise_for_status()
            with contextlib.ExitStack() as stack:
                https = [stack.enter_context(httpx.Client(verify=context, timeout=10.0)) for _ in range(clients)]
                metadata = https[0].get(issuer + "/.well-known/wallet-openid-configuration").raise_for_status().json()
                # One after the other: next_login is a single slot of the realm.
                first_tokens = [code_flow(http, control, metadata) for http in https]
                ready = threading.Barrier(clients)
                results: dict[str, list[dict[str, Any]]] = {"issuance": [], "introspection": []}
                threads = [
                    threading.Thread(target=run_client, args=(http, tokens, metadata, seconds, ready, results))
                    for http, tokens in zip(https, first_tokens, strict=True)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            if len(results["introspection"]) != clients:
                raise SystemExit("a client thread failed (see its traceback above)")
        finally:
            stop_host(host)
        journaled = journal_records(work)
    return {
        "issuance": summarize(results["issuance"]),
        "introspection": summarize(results["introspection"]),
        "journal_records": journaled,
    }


def main(argv: list[str] | None = None) -> int:
    args = load_arguments(__doc__.splitlines()[0], argv, "client threads")
    figures = bench(args.seconds, args.clients)
    issuance, introspection = figures["issuance"], figures["introspection"]
    met = "met" if issuance["requests_per_second"] >= TARGET_ISSUANCES else "NOT met"
    print(
        f"PSC mock bench: {args.clients} keep-alive TLS client thread(s) x {args.seconds:g} s per measure, "
        f"client_secret_basic, host in its own process, {os.cpu_count()} CPU(s)"
    )
    print(
        f"token issuances: {issuance['requests_per_second']:.0f}/s ({issuance['requests']} refresh_token grants; "
        f"target >= {TARGET_ISSUANCES}/s: {met}), p50 {issuance['p50_ms']:.2f} ms, p99 {issuance['p99_ms']:.2f} ms"
    )
    print(
        f"introspections:  {introspection['requests_per_second']:.0f}/s ({introspection['requests']} requests), "
        f"p50 {introspection['p50_ms']:.2f} ms, p99 {introspection['p99_ms']:.2f} ms"
    )
    errors = issuance["errors"] + introspection["errors"]
    print(
        f"errors:          {errors} (issuances {issuance['errors']}: non-200 or a token missing; "
        f"introspections {introspection['errors']}: non-200 or not active)"
    )
    print(f"journaled:       {figures['journal_records']} records (code flows included)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
