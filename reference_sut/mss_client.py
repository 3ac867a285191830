"""The reference SUT's MSSanté mail client: SMTP submission and IMAP, both upgraded by STARTTLS.

Stdlib only (smtplib, imaplib, ssl), nothing from mocks/: the self-test must not pass because
client and operator share a bug. Rules it keeps: STARTTLS before any authentication, TLS 1.2 at
least, only the CA given at ``configure`` trusted (SC.MSS/CONF.07); SASL XOAUTH2 with the PS's
Pro Santé Connect access token (``user=<BAL>^Aauth=Bearer <token>^A^A``, Google's mechanism the
MSSanté operators adopted) or EXTERNAL with the organisation certificate presented in the
handshake (SC.MSS/CONF.27). The token lives in memory only (SC.MSS/CONF.28): ``Login`` hides it
from its repr, and no exception text carries it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import imaplib
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

SMTP_EXPIRED = "4.7.0"


@dataclass(frozen=True)
class MssSettings:
    smtp_url: str
    imap_url: str
    tls: TlsPolicy
    timeout: float = 10.0


class RevocationList:
    """The operator CA's CRL: fetched before each connection, the last valid one kept on disk (SC.MSS/CONF.22).

    A fetched CRL is used only when the CA signed it and its nextUpdate is to come; when the
    distribution point fails, the copy kept from the last good fetch is used while it is still
    valid. With no valid CRL at all the connection is refused: revocation cannot be checked.
    ``keep`` False is the defect mss-forgets-crl (no copy: a failed fetch means no check).
    """

    def __init__(self, url: str, ca: str, kept: Path, *, timeout: float, keep: bool = True) -> None:
        self.url, self.kept, self.timeout, self.keep = url, kept, timeout, keep
        self._ca = x509.load_pem_x509_certificate(Path(ca).read_bytes())
        self._lock = threading.Lock()

    def current(self) -> Path | None:
        """The file of the CRL to check against (ssl loads CRLs from files only), or None when none is valid."""
        with self._lock:
            fetched = self._fetch()
            if fetched is not None:
                self.kept.write_text(fetched)
                return self.kept
            if self.keep and self.kept.exists() and self._valid(self.kept.read_text()):
                return self.kept
            self.kept.unlink(missing_ok=True)
            return None

    def _fetch(self) -> str | None:
        try:
            response = httpx.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            crl = x509.load_der_x509_crl(response.content)
        except (httpx.HTTPError, ValueError):
            return None
        pem = crl.public_bytes(Encoding.PEM).decode()
        return pem if self._valid(pem) else None

    def _valid(self, pem: str) -> bool:
        try:
            crl = x509.load_pem_x509_crl(pem.encode())
        except ValueError:
            return False
        next_update = crl.next_update_utc
        return (
            crl.is_signature_valid(self._ca.public_key())  # type: ignore[arg-type]
            and next_update is not None
            and next_update > dt.datetime.now(dt.UTC)
        )


@dataclass(frozen=True)
class TlsPolicy:
    """How the client judges the operator's TLS. Each relaxation is one named defect of the reference SUT."""

    ca: str
    revocation: RevocationList | None  # None: the defect mss-no-crl-check
    legacy: bool = False  # mss-accepts-legacy-tls: TLS 1.0 and every cipher suite
    verify: bool = True  # mss-no-certificate-check: any certificate, expired or not
    fail_open: bool = False  # mss-forgets-crl: no CRL copy kept, no revocation check when the fetch fails

    def context(self, login: Login) -> ssl.SSLContext:
        """The test CA only, TLS 1.2 minimum, hostname and CRL checked; the organisation certificate for EXTERNAL."""
        context = ssl.create_default_context(cafile=self.ca)
        if self.legacy:
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.set_ciphers("ALL:@SECLEVEL=0")
        else:
            context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.revocation is not None:
            crl = self.revocation.current()
            if crl is not None:
                context.load_verify_locations(cafile=str(crl))
                context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
            elif not self.fail_open:
                raise MssError("no valid CRL of the operator's CA: its certificate's revocation cannot be checked")
        if login.certificate is not None:
            context.load_cert_chain(*login.certificate)
        return context


@dataclass(frozen=True)
class Login:
    """How one BAL is opened: XOAUTH2 when ``token`` is set, else EXTERNAL with ``certificate`` (cert, key)."""

    address: str
    token: str | None = field(default=None, repr=False)
    certificate: tuple[str, str] | None = None
    national_id: str | None = None

    @property
    def mechanism(self) -> str:
        return "XOAUTH2" if self.token is not None else "EXTERNAL"

    def initial_response(self) -> str:
        """XOAUTH2's ``user=...^Aauth=Bearer ...^A^A``; EXTERNAL's authorization identity (the APP BAL)."""
        if self.token is None:
            return self.address
        return f"user={self.address}\x01auth=Bearer {self.token}\x01\x01"


class MssError(Exception):
    """The operator refused or could not be reached; ``code`` is the SMTP reply code (None: network/TLS)."""

    def __init__(self, message: str, code: int | None = None, *, expired: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.expired = expired

    @property
    def temporary(self) -> bool:
        """4xx and network failures are worth retrying (RFC 5321 §4.2.1); 5xx are not."""
        return self.code is None or 400 <= self.code < 500


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise MssError(f"{url} names no host and port")
    return parts.hostname, parts.port


def send_message(
    settings: MssSettings,
    login: Login,
    recipients: list[str],
    message: bytes,
    *,
    auth_before_starttls: bool = False,
) -> None:
    """Submit ``message`` from the login's BAL; raises ``MssError`` with the operator's reply code.

    ``auth_before_starttls`` is the defect mss-auth-before-starttls: the credentials go out in
    clear first (the operator refuses them), then the normal path.
    """
    host, port = _endpoint(settings.smtp_url)
    try:
        with smtplib.SMTP(host, port, timeout=settings.timeout) as smtp:
            smtp.ehlo()
            if auth_before_starttls:
                smtp.docmd("AUTH", f"{login.mechanism} {_b64(login.initial_response())}")
            smtp.starttls(context=settings.tls.context(login))
            smtp.ehlo()
            smtp.auth(login.mechanism, _sasl(login), initial_response_ok=True)
            refused = smtp.sendmail(login.address, recipients, message)
    except smtplib.SMTPRecipientsRefused as error:
        code, reply = next(iter(error.recipients.values()))
        raise MssError(f"{code} {reply.decode('utf-8', 'replace')}", code) from None
    except smtplib.SMTPResponseException as error:
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else str(error)
        expired = error.smtp_code == 421 and SMTP_EXPIRED in text
        raise MssError(f"{error.smtp_code} {text}", error.smtp_code, expired=expired) from None
    except (smtplib.SMTPException, OSError) as error:
        raise MssError(f"SMTP {host}:{port}: {type(error).__name__}: {error}") from None
    if refused:
        code, reply = next(iter(refused.values()))
        raise MssError(f"{code} {reply.decode('utf-8', 'replace')}", code)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _sasl(login: Login) -> Callable[..., str]:
    """The initial response first; an empty answer to XOAUTH2's error challenge, as the mechanism asks."""

    def authobject(challenge: bytes | None = None) -> str:
        return login.initial_response() if challenge is None else ""

    return authobject


class ImapSession:
    """One authenticated IMAP session on a BAL's INBOX, kept open between reads."""

    def __init__(self, settings: MssSettings, login: Login) -> None:
        self.login = login
        host, port = _endpoint(settings.imap_url)
        try:
            self._imap = imaplib.IMAP4(host, port, timeout=settings.timeout)
        except OSError as error:
            raise MssError(f"IMAP {host}:{port}: {type(error).__name__}: {error}") from None
        try:
            self._imap.starttls(ssl_context=settings.tls.context(login))
            answers = iter([login.initial_response().encode()])
            self._imap.authenticate(login.mechanism, lambda _challenge: next(answers, b""))
            self._check(self._imap.select("INBOX"), "SELECT")
        except (imaplib.IMAP4.error, OSError) as error:
            self.close()
            raise _imap_error(error) from None

    def unseen(self) -> list[tuple[str, bytes]]:
        """The INBOX's unseen messages as (UID, bytes), read with BODY.PEEK: \\Seen is set once handled."""
        try:
            found = self._check(self._imap.uid("SEARCH", "UNSEEN"), "SEARCH")
            messages = []
            for uid in (found[0] or b"").split():
                data = self._check(self._imap.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")
                raw = next((item[1] for item in data if isinstance(item, tuple)), b"")
                messages.append((uid.decode(), raw))
            return messages
        except (imaplib.IMAP4.error, OSError) as error:
            raise _imap_error(error) from None

    def mark_seen(self, uid: str) -> None:
        try:
            self._check(self._imap.uid("STORE", uid, "+FLAGS", "(\\Seen)"), "STORE")
        except (imaplib.IMAP4.error, OSError) as error:
            raise _imap_error(error) from None

    def logout(self) -> None:
        """LOGOUT, tolerating a server that already closed the connection."""
        try:
            self._imap.logout()
        except (imaplib.IMAP4.error, OSError):
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._imap.shutdown()

    @staticmethod
    def _check(answer: tuple[str, list], command: str) -> list:
        status, data = answer
        if status != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise imaplib.IMAP4.error(f"{command} {status} {text}")
        return data


def _imap_error(error: Exception) -> MssError:
    """``* BYE [EXPIRED]`` (the PSC token ran out) is told apart: the caller reconnects once."""
    text = str(error)
    expired = isinstance(error, imaplib.IMAP4.abort) and "EXPIRED" in text.upper()
    return MssError(f"IMAP: {type(error).__name__}: {text}", None, expired=expired)
