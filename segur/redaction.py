"""Masks credentials in captured HTTP exchanges before they become evidence files or attachments.

A référencement dossier travels (to reviewers, into tickets): a bearer token or a client
secret in it would be usable by whoever reads it. JWTs keep their header and claims, which
are evidence, and lose their signature, which is what makes them usable. Opaque values are
cut to a short prefix so that two exchanges can still be matched by eye. The raw journal
(evidence/journal.jsonl) keeps everything, for the vendor only.
"""

from __future__ import annotations

import re

MASK = b"[masque]"
# Parameter and JSON field names whose value is a credential (OAuth 2.0, OIDC, CIBA).
SECRET_NAMES = (
    b"access_token",
    b"refresh_token",
    b"id_token",
    b"id_token_hint",
    b"client_secret",
    b"client_assertion",
    b"code_verifier",
    b"code",
    b"auth_req_id",
    b"password",
)
_NAMES = b"|".join(SECRET_NAMES)
_JWT = re.compile(rb"(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.)[A-Za-z0-9_-]+")
_AUTH_HEADER = re.compile(rb"(?im)^((?:proxy-)?authorization:[ \t]*\w+[ \t]+)(\S+)")
_JSON_FIELD = re.compile(rb'("(?:' + _NAMES + rb')"\s*:\s*")([^"]*)(")')
_FORM_FIELD = re.compile(rb"((?:^|[?&\s])(?:" + _NAMES + rb")=)([^&\s\"'<>]*)")


def redact(raw: bytes) -> bytes:
    """The same HTTP message with every credential masked (headers, JSON, forms, query strings)."""
    raw = _JWT.sub(rb"\1" + MASK, raw)
    raw = _AUTH_HEADER.sub(lambda m: m.group(1) + _shorten(m.group(2)), raw)
    raw = _JSON_FIELD.sub(lambda m: m.group(1) + _shorten(m.group(2)) + m.group(3), raw)
    return _FORM_FIELD.sub(lambda m: m.group(1) + _shorten(m.group(2)), raw)


def _shorten(value: bytes) -> bytes:
    """JWTs were already cut to header.claims.[masque]; anything else keeps 4 characters."""
    if value.endswith(MASK) or not value:
        return value
    return value[:4] + b"..." + MASK
