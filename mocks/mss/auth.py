"""SASL for the operator's SMTP and IMAP: XOAUTH2 with a PSC access token, EXTERNAL with an organisation certificate.

XOAUTH2 is Google's mechanism, which MSSanté operators adopted for Pro Santé Connect: the client
sends ``user=<address>^Aauth=Bearer <token>^A^A``; on refusal the server answers one challenge
carrying a base64 JSON error and the client sends an empty line before the final refusal. The
token is checked by introspection at the PSC mock (same host) and the address must be a BAL the
professional owns (PER) or is delegated on (ORG). EXTERNAL (RFC 4422 appendix A) takes the
identity from the client certificate the TLS handshake verified: only an APP BAL registered
for that certificate opens that way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segur.mocks.mss.mailboxes import Bal, MailboxDirectory

XOAUTH2 = "XOAUTH2"
EXTERNAL = "EXTERNAL"


@dataclass(frozen=True)
class Principal:
    """Who authenticated, and the one BAL the session opened."""

    mechanism: str
    address: str
    national_id: str = ""
    certificate_cn: str = ""
    token_expires: float | None = None  # the access token's exp (epoch s): the session ends when it passes

    def correlation(self) -> dict[str, str]:
        """What every journal record of the session says about who it is (SMTP and IMAP alike)."""
        who = {"national_id": self.national_id} if self.national_id else {"certificate_cn": self.certificate_cn}
        return {"address": self.address, "auth": self.mechanism, **who}


class AuthRefused(Exception):
    """A refused authentication; ``challenge`` is XOAUTH2's JSON error, sent before the final refusal."""

    def __init__(self, reason: str, *, challenge: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.challenge = challenge


def xoauth2_error(status: str = "401") -> bytes:
    return json.dumps({"status": status, "schemes": "bearer", "scope": "openid scope_all"}).encode()


class MssAuthenticator:
    """Decides both mechanisms against the mailbox directory; ``introspect`` is the PSC mock's (RFC 7662 view)."""

    def __init__(self, directory: MailboxDirectory, introspect: Callable[[str], dict[str, Any]] | None) -> None:
        self.directory = directory
        self.introspect = introspect

    def xoauth2(self, response: bytes) -> Principal:
        """Check an XOAUTH2 initial response (already base64-decoded)."""
        user, token = _parse_xoauth2(response)
        if self.introspect is None:
            raise AuthRefused("no PSC mock in this host: XOAUTH2 tokens cannot be checked", challenge=xoauth2_error())
        claims = self.introspect(token)
        if not claims.get("active"):
            raise AuthRefused("PSC access token inactive (expired, revoked or unknown)", challenge=xoauth2_error())
        national_id = str(claims.get("SubjectNameID") or claims.get("preferred_username") or "")
        bal = self._open_bal(user)
        if not bal.opened_by(national_id):
            raise AuthRefused(
                f"{national_id or 'this token'} neither owns nor is delegated on {bal.address}",
                challenge=xoauth2_error("403"),
            )
        expires = claims.get("exp")
        return Principal(XOAUTH2, bal.address, national_id, token_expires=float(expires) if expires else None)

    def external(self, peer: dict[str, Any], authzid: str) -> Principal:
        """EXTERNAL: the verified client certificate opens the APP BAL registered for it (``authzid`` picks one)."""
        common_name = str(peer.get("cn", ""))
        if not common_name:
            raise AuthRefused("EXTERNAL needs a client certificate presented in the TLS handshake")
        bals = self.directory.for_certificate(common_name)
        if authzid:
            bals = [bal for bal in bals if bal.address.lower() == authzid.strip().lower()]
        if not bals:
            raise AuthRefused(f"no applicative BAL {authzid or ''} is registered for certificate {common_name!r}")
        bal = self._open_bal(bals[0].address)
        return Principal(EXTERNAL, bal.address, certificate_cn=common_name)

    def _open_bal(self, address: str) -> Bal:
        bal = self.directory.find(address)
        if bal is None:
            raise AuthRefused(f"no mailbox {address!r} at this operator", challenge=xoauth2_error("400"))
        if bal.state != "open":
            raise AuthRefused(f"mailbox {address} is closed", challenge=xoauth2_error("400"))
        return bal


def _parse_xoauth2(response: bytes) -> tuple[str, str]:
    try:
        text = response.decode("ascii")
    except UnicodeDecodeError:
        raise AuthRefused("XOAUTH2 response is not ASCII", challenge=xoauth2_error("400")) from None
    if not text.endswith("\x01\x01"):
        raise AuthRefused("XOAUTH2 response must end with ^A^A", challenge=xoauth2_error("400"))
    fields = dict(part.partition("=")[::2] for part in text[:-2].split("\x01"))
    user, auth = fields.get("user", ""), fields.get("auth", "")
    scheme, _, token = auth.partition(" ")
    if not user or scheme.lower() != "bearer" or not token.strip():
        raise AuthRefused("XOAUTH2 needs user=<address> and auth=Bearer <token>", challenge=xoauth2_error("400"))
    return user, token.strip()
