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
# Form and query parameter names whose value is a credential (OAuth 2.0, OIDC, CIBA).
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
# Key and element names (JSON, Python reprs, XML) whose value is a credential, in snake, kebab or camel
# case, after an optional prefix (``smtp_password``, ``clientSecret``, ``x-api-key``). An OAuth ``code``
# only travels in query strings and forms (RFC 6749 4.1.2, 4.1.3); a JSON "code" is a result code
# (INSi CR "00", a SUT error), which is evidence.
KEY_NAMES = (
    b"access_token",
    b"refresh_token",
    b"id_token_hint",
    b"id_token",
    b"client_secret",
    b"client_assertion",
    b"code_verifier",
    b"auth_req_id",
    b"password",
    b"passwd",
    b"passphrase",
    b"secret",
    b"api_key",
)
# Masked whole: a prefix of a password is part of the password.
_WHOLE = re.compile(rb"(?i)(?:password|passwd|passphrase|secret)$")
_NAMES = b"|".join(SECRET_NAMES)
# The lazy prefix then a word start (after a non-letter, or a lower-to-upper case change) keeps the
# match linear: the name must end where the key does, so "password_policy" is not a credential.
_KEY = (
    rb"[A-Za-z0-9_.-]*?(?:(?<![A-Za-z0-9])|(?<=[a-z0-9])(?=[A-Z]))(?i:"
    + b"|".join(name.replace(b"_", rb"[_-]?") for name in KEY_NAMES)
    + rb")"
)
_JWT = re.compile(rb"(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.)[A-Za-z0-9_-]+")
_AUTH_HEADER = re.compile(rb"(?im)^((?:proxy-)?authorization:[ \t]*\w+[ \t]+)(\S+)")
_KEY_HEADER = re.compile(rb"(?im)^((?:x-)?api-key:[ \t]*)(\S+)")
# A session cookie is a bearer credential: Cookie values go, each name stays; Set-Cookie's attributes
# (Path, HttpOnly, Secure, SameSite) are evidence and stay.
_COOKIE_HEADER = re.compile(rb"(?im)^(cookie:)([^\r\n]*)")
_COOKIE = re.compile(rb"([^=;\s]+=)([^;\r\n]*)")
_SET_COOKIE = re.compile(rb"(?im)^(set-cookie:[ \t]*[^=;\s]+=)([^;\r\n]*)")
# ``"name": "value"`` in JSON, also escaped into JSON strings any number of times (``\\"name\\": …``, a
# body quoted in an Allure or pytest trace), in a Python repr (``'name': '…'``) or HTML-escaped (rapport.html).
_QUOTE = rb"(?i:\"|'|&quot;|&\#34;|&\#x22;|&\#39;|&\#x27;|&apos;)"
_QUOTED_KEY = re.compile(rb"(?<!\\)(\\*)(" + _QUOTE + rb")(" + _KEY + rb")\1\2\s*:\s*\1(" + _QUOTE + rb")")
# ``<password>…</password>``, ``<wsse:Password Type="…">…</wsse:Password>``, also HTML-escaped (``&lt;…``).
_XML_ELEMENT = re.compile(
    rb"((<|&lt;)((?:[A-Za-z_][\w.-]*:)?" + _KEY + rb")(?:\s(?:(?!&gt;)[^<>])*)?(?<!/)(>|&gt;))"
    rb"((?:(?!&lt;)[^<])*)(?=\2/\3\s*\4)"
)
_CUT_ESCAPE = re.compile(rb"\\+(?:u[0-9A-Fa-f]{0,3})?$")
# ``;`` too: ``&amp;code=…`` in HTML.
_FORM_FIELD = re.compile(rb"((?:^|[?&;\s])(" + _NAMES + rb")=)([^&\s\"'<>]*)")
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
    """The same message with every credential masked (headers, cookies, JSON, XML, forms, settings, PEM keys, SASL,
    IMAP LOGIN)."""
    raw = _PEM_KEY.sub(lambda m: b"-----BEGIN %s-----%s-----END %s-----" % (m[1], MASK, m[1]), raw)
    raw = _JWT.sub(rb"\1" + MASK, raw)
    raw = _AUTH_HEADER.sub(lambda m: m[1] + _shorten(b"", m[2]), raw)
    raw = _KEY_HEADER.sub(lambda m: m[1] + _shorten(b"", m[2]), raw)
    raw = _COOKIE_HEADER.sub(lambda m: m[1] + _COOKIE.sub(lambda c: c[1] + _shorten(b"", c[2]), m[2]), raw)
    raw = _SET_COOKIE.sub(lambda m: m[1] + _shorten(b"", m[2]), raw)
    raw = _quoted_values(raw)
    raw = _XML_ELEMENT.sub(lambda m: m[1] + _shorten(m[3], m[5]), raw)
    raw = _FORM_FIELD.sub(lambda m: m[1] + _shorten(m[2], m[3]), raw)
    raw = _SETTING.sub(_setting, raw)
    raw = _SASL.sub(lambda m: m[1] + (b" " + MASK if m[2] else b"") + _SASL_CLIENT_LINE.sub(MASK, m[3]), raw)
    return _IMAP_LOGIN.sub(lambda m: m[1] + MASK, raw)


def _quoted_values(raw: bytes) -> bytes:
    """Values of credential keys; where a value ends depends on how many times it was escaped, so it is scanned."""
    parts: list[bytes] = []
    done = 0
    while key := _QUOTED_KEY.search(raw, done):
        end = _string_end(raw, key.end(), key[4], (len(key[1]) + 1).bit_length() - 1)  # 2**level - 1 backslashes
        parts += [raw[done : key.end()], _shorten(key[3], raw[key.end() : end])]
        done = end
    return b"".join(parts) + raw[done:]


def _string_end(raw: bytes, start: int, quote: bytes, level: int) -> int:
    """Where the value opened at ``start`` ends: its closing quote, escaped ``level`` times, or where the text cuts it.

    Each escaping doubles the backslashes before a quote and adds one, so a quote after ``n``
    backslashes closes the string nested ``depth`` deep when ``n`` halves to an even count after
    ``depth`` halvings: its last ``2**depth - 1`` backslashes escape it, the others are content. A quote
    closing an outer string, a line end or (HTML-escaped text) a tag ends the value early.
    """
    cut = rb"|[\r\n<]" if quote.startswith(b"&") else rb"|[\r\n]"
    for match in re.compile(rb"(?<!\\)(\\*)" + re.escape(quote) + cut, re.IGNORECASE).finditer(raw, start):
        if match[1] is None:
            return match.start()
        backslashes, depth = len(match[1]), 0
        while depth < level and backslashes % 2:
            backslashes, depth = backslashes // 2, depth + 1
        if backslashes % 2 == 0:
            return match.end(1) - (2**depth - 1)
    return len(raw)


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
    # Never half a UTF-8 character or an escape (``\\u00e9``): the bundle's rapport.json must still parse.
    return _CUT_ESCAPE.sub(b"", value[:4].decode("utf-8", "ignore").encode()) + b"..." + MASK
