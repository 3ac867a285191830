"""The shared HTTP runtime (mocks/runtime/http.py) on the wire, through the INSi mock.

The INSi mock has no HEAD handling of its own, so what a HEAD gets from it is the runtime's
doing: h11 refuses to frame a body after a HEAD, and the runtime once let that error drop the
connection with nothing answered nor journaled.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import pytest
from insi_requests import CONTENT_TYPE, read_fault, read_resultat, traits_request

from segur.journal import payload

pytestmark = pytest.mark.usefixtures("fresh_insi")


def read_head(tls: ssl.SSLSocket, buffered: bytes) -> tuple[bytes, bytes]:
    """One response head (up to the blank line) and the bytes already read past it; a hang raises TimeoutError."""
    received = bytearray(buffered)
    while b"\r\n\r\n" not in received:
        chunk = tls.recv(65536)
        assert chunk, f"connection closed after {bytes(received)!r}"
        received.extend(chunk)
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers


def test_head_is_answered_without_a_body_journaled_and_the_connection_stays_usable(insi_mock, tls_context):
    address = urlsplit(insi_mock.url)
    host = f"{address.hostname}:{address.port}"
    search = traits_request("ADRUN", "ZOE", "F", "1975-12-31")
    post = (
        f"POST {address.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {len(search)}\r\n\r\n"
    ).encode() + search
    seq = insi_mock.last_seq()
    with (
        socket.create_connection((address.hostname, address.port), timeout=insi_mock.client_timeout) as raw,
        tls_context().wrap_socket(raw, server_hostname=address.hostname) as tls,
    ):
        tls.sendall(f"HEAD {address.path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head, rest = read_head(tls, b"")
        status, headers = parse_head(head)
        assert status >= 400, "whatever the INSi app says to a HEAD, it is said"
        assert int(headers["content-length"]) > 0, "the length of the body a GET would have had"
        assert headers.get("connection") != "close"

        # Had a body followed the HEAD answer, it would come before the POST's answer.
        tls.sendall(post)
        second, rest = read_head(tls, rest)
        second_status, second_headers = parse_head(second)
        while len(rest) < int(second_headers["content-length"]):
            chunk = tls.recv(65536)
            assert chunk, "connection closed in the middle of the POST's answer"
            rest += chunk
        assert second_status == 200
        assert read_resultat(rest).code_cr == "00"

    head_record, post_record = insi_mock.journal_since(seq)
    assert payload(head_record, "request").startswith(b"HEAD /lps ")
    assert payload(head_record, "response") == head, "the journal keeps exactly what was sent: the head only"
    assert head_record["outcome"]["fault"] == "siram_10"
    assert post_record["outcome"] == {"code_cr": "00"}


def test_get_still_carries_its_body(insi_mock, insi_client):
    """The HEAD rule must not touch other methods: a GET's refusal comes with its SOAP fault body."""
    response = insi_client().get(insi_mock.url)
    assert response.status_code == 400
    assert int(response.headers["content-length"]) == len(response.content) > 0
    assert read_fault(response.content).subcode == "siram_10"
