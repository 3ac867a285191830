"""Masks credentials in captured exchanges before they become evidence files, attachments or a bundle.

A référencement dossier travels (to reviewers, into tickets): a bearer token or a client
secret in it would be usable by whoever reads it. JWTs keep their header and claims, which
are evidence, and lose their signature, which is what makes them usable. Opaque tokens are
cut to a short prefix so that two exchanges can still be matched by eye; passwords and
client secrets have nothing to match and are masked whole. The raw journal
(evidence/journal.jsonl) keeps everything, for the vendor only.

Every rule is idempotent (masking masked text changes nothing): the bundle redacts files
that the report builder already redacted.
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
# Names in configuration files (YAML, .env, INI); an optional prefix such as ``smtp_`` is allowed.
SETTING_NAMES = (
    b"client_secret",
    b"password",
    b"passwd",
    b"passphrase",
    b"secret",
    b"refresh_token",
    b"access_token",
    b"id_token",
    b"api_key",
)
# Masked whole: a prefix of a password is part of the password.
_WHOLE = re.compile(rb"(?i)(?:^|[_.-])(?:password|passwd|passphrase|secret|client_secret)$")
_NAMES = b"|".join(SECRET_NAMES)
# An OAuth ``code`` only travels in query strings and forms (RFC 6749 4.1.2, 4.1.3); a JSON "code" is a
# result code (INSi CR "00", a SUT error), which is evidence.
_JSON_NAMES = b"|".join(name for name in SECRET_NAMES if name != b"code")
_JWT = re.compile(rb"(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.)[A-Za-z0-9_-]+")
_AUTH_HEADER = re.compile(rb"(?im)^((?:proxy-)?authorization:[ \t]*\w+[ \t]+)(\S+)")
_JSON_FIELD = re.compile(rb'("(' + _JSON_NAMES + rb')"\s*:\s*")([^"]*)(")')
_FORM_FIELD = re.compile(rb"((?:^|[?&\s])(" + _NAMES + rb")=)([^&\s\"'<>]*)")
# Any PEM private key (PKCS#1, PKCS#8, ENCRYPTED, EC, OPENSSH, PGP); a truncated block is masked to the end.
_PEM_KEY = re.compile(rb"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
# ``name: value`` / ``name = value`` at the start of a line, unquoted key (quoted keys are JSON, handled above).
_SETTING = re.compile(
    rb"(?im)^([ \t]*(?:-[ \t]+)?((?:[a-z0-9]+[_.-])*(?:" + b"|".join(SETTING_NAMES) + rb"))[ \t]*[:=][ \t]*)"
    rb"(?:([\"'])([^\r\n]*?)\3|([^\s\"'#|>][^\r\n]*?))(?=[ \t]*(?:\r?$|[ \t]#))"
)
# SASL (SMTP AUTH, RFC 4954; IMAP AUTHENTICATE, RFC 9051): the initial response and the client's
# base64 lines carry the credentials; the command, the mechanism and the server prompts stay.
# EXTERNAL and ANONYMOUS carry no secret. Commands and mechanisms are upper case, as clients send them.
_SASL_PROMPT = rb"(?:334|\+)(?:[ \t][^\r\n]*)?"
_BASE64_LINE = rb"[A-Za-z0-9+/]+=*"
_SASL = re.compile(
    rb"(?m)^((?:[A-Za-z0-9.]+[ \t]+)?(?:AUTH|AUTHENTICATE)[ \t]+(?!EXTERNAL\b|ANONYMOUS\b)[A-Z0-9_-]+)"
    rb"([ \t]+(?:" + _BASE64_LINE + rb"|=))?[ \t]*(?=\r?$)"
    rb"((?:\r?\n(?:" + _SASL_PROMPT + rb"|" + _BASE64_LINE + rb")(?=\r?$))*)"
)
_SASL_CLIENT_LINE = re.compile(rb"(?m)^(?!" + _SASL_PROMPT + rb"(?=\r?$))" + _BASE64_LINE + rb"(?=\r?$)")
# IMAP ``tag LOGIN user password`` (the user is evidence, the password is not); quoted, atom or literal.
_IMAP_STRING = rb'(?:"(?:[^"\\\r\n]|\\.)*"|[^\s"{]+)'
_IMAP_LOGIN = re.compile(
    rb"(?m)^([A-Za-z0-9.]+[ \t]+LOGIN[ \t]+" + _IMAP_STRING + rb"[ \t]+)"
    rb"(" + _IMAP_STRING + rb"|\{\d+\+?\}\r?\n[^\r\n]*)(?=[ \t]*\r?$)"
)


def redact(raw: bytes) -> bytes:
    """The same message with every credential masked (headers, JSON, forms, settings, PEM keys, SASL, IMAP LOGIN)."""
    raw = _PEM_KEY.sub(lambda m: b"-----BEGIN %s-----%s-----END %s-----" % (m[1], MASK, m[1]), raw)
    raw = _JWT.sub(rb"\1" + MASK, raw)
    raw = _AUTH_HEADER.sub(lambda m: m[1] + _shorten(b"", m[2]), raw)
    raw = _JSON_FIELD.sub(lambda m: m[1] + _shorten(m[2], m[3]) + m[4], raw)
    raw = _FORM_FIELD.sub(lambda m: m[1] + _shorten(m[2], m[3]), raw)
    raw = _SETTING.sub(_setting, raw)
    raw = _SASL.sub(lambda m: m[1] + (b" " + MASK if m[2] else b"") + _SASL_CLIENT_LINE.sub(MASK, m[3]), raw)
    return _IMAP_LOGIN.sub(lambda m: m[1] + MASK, raw)


def _setting(match: re.Match[bytes]) -> bytes:
    quote = match[3] or b""
    value = match[4] if match[3] else match[5]
    return match[1] + quote + _shorten(match[2], value) + quote


def _shorten(name: bytes, value: bytes) -> bytes:
    """JWTs were already cut to header.claims.[masque]; passwords go whole; anything else keeps 4 characters."""
    if value.endswith(MASK) or not value:
        return value
    if _WHOLE.search(name):
        return MASK
    return value[:4] + b"..." + MASK
