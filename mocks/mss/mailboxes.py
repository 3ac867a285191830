"""The operator's mailboxes (BAL): who may open them, what they hold, what delivery does to them.

One directory is shared by the SMTP and IMAP servers and the control API, so a message submitted
over SMTP is in the recipient's INBOX for the next IMAP FETCH. Every method takes the lock: the
control API seeds from the host's loop while tests may read from another thread.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from segur.ins import ins_key

PATIENT_DOMAIN = "patient.mssante.fr"
# Mon espace santé refuses messages above 25 MB (its published limit), the operator's own BALs 50 MB.
PATIENT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024
OPERATOR_MAX_MESSAGE_BYTES = 50 * 1024 * 1024
KINDS = ("PER", "ORG", "APP", "PAT")
DEFAULT_FOLDERS = ("INBOX", "Sent")


class Undeliverable(Exception):
    """Why a recipient cannot receive: an SMTP reply code and enhanced status (RFC 3463) with a reason."""

    def __init__(self, code: int, status: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.status = status
        self.reason = reason


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    internal_date: dt.datetime
    flags: set[str] = field(default_factory=set)


@dataclass
class Folder:
    """An IMAP mailbox: UIDs strictly ascending, never reused while ``uid_validity`` stays."""

    name: str
    uid_validity: int
    uid_next: int = 1
    messages: list[StoredMessage] = field(default_factory=list)

    def append(self, raw: bytes, flags: set[str] | None = None, when: dt.datetime | None = None) -> StoredMessage:
        message = StoredMessage(self.uid_next, raw, when or dt.datetime.now(dt.UTC), set(flags or ()))
        self.uid_next += 1
        self.messages.append(message)
        return message

    def expunge(self) -> list[int]:
        """Remove \\Deleted messages; their sequence numbers, highest first (each stays valid as announced)."""
        removed = [number for number, message in enumerate(self.messages, 1) if "\\Deleted" in message.flags]
        self.messages = [message for message in self.messages if "\\Deleted" not in message.flags]
        return removed[::-1]


@dataclass
class Bal:
    """A mailbox. ``owners`` and ``delegates`` are professionals' national ids (IDNPS)."""

    address: str
    kind: str
    folders: dict[str, Folder]
    owners: tuple[str, ...] = ()
    delegates: tuple[str, ...] = ()
    certificate_cn: str = ""
    state: str = "open"
    minor: bool = False
    max_message_bytes: int = OPERATOR_MAX_MESSAGE_BYTES

    def opened_by(self, national_id: str) -> bool:
        return national_id in self.owners or national_id in self.delegates

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "owners": list(self.owners),
            "delegates": list(self.delegates),
            "certificate_cn": self.certificate_cn,
            "state": self.state,
            "minor": self.minor,
            "max_message_bytes": self.max_message_bytes,
            "folders": {name: len(folder.messages) for name, folder in self.folders.items()},
        }


class MailboxDirectory:
    """The operator's BALs by lower-cased address, and the domains it serves."""

    def __init__(self, domains: tuple[str, ...], bals: list[Bal]) -> None:
        self.lock = threading.RLock()
        self.domains = tuple(domain.lower() for domain in domains)
        self.bals = {bal.address.lower(): bal for bal in bals}
        self._on_delivery: list[Callable[[Bal, StoredMessage], None]] = []

    def on_delivery(self, callback: Callable[[Bal, StoredMessage], None]) -> None:
        """Call ``callback`` after each delivery (outside the lock): IMAP wakes its IDLE sessions, receipts follow."""
        self._on_delivery.append(callback)

    @classmethod
    def default(cls) -> MailboxDirectory:
        data = yaml.safe_load(resources.files(__package__).joinpath("mailboxes.yaml").read_text("utf-8"))
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MailboxDirectory:
        unknown = set(data) - {"operator_domains", "bals", "patients"}
        if unknown:
            raise ValueError(f"unknown mailbox fields: {sorted(unknown)}")
        bals = [bal_from_json(entry) for entry in data.get("bals", [])]
        bals += [patient_bal_from_json(entry) for entry in data.get("patients", [])]
        return cls(tuple(data.get("operator_domains", ())), bals)

    def find(self, address: str) -> Bal | None:
        with self.lock:
            return self.bals.get(address.strip().lower())

    def add(self, bal: Bal) -> None:
        with self.lock:
            self.bals[bal.address.lower()] = bal

    def serves(self, address: str) -> bool:
        """Whether the address is in one of this operator's domains (or the patient domain)."""
        domain = address.rpartition("@")[2].lower()
        return domain == PATIENT_DOMAIN or domain in self.domains

    def for_certificate(self, common_name: str) -> list[Bal]:
        with self.lock:
            return [bal for bal in self.bals.values() if bal.kind == "APP" and bal.certificate_cn == common_name]

    def deliver(self, address: str, raw: bytes) -> Bal:
        """File ``raw`` in the recipient's INBOX, or say why not (unknown, closed, too large)."""
        with self.lock:
            bal = self.find(address)
            if bal is None:
                raise Undeliverable(550, "5.1.1", f"no mailbox {address} at this operator")
            if bal.state != "open":
                raise Undeliverable(550, "5.2.1", f"mailbox {address} is closed")
            if bal.minor:  # modelled: a minor's space takes no mail from professionals directly
                raise Undeliverable(
                    550, "5.7.1", f"{address} is a minor's Mon espace santé: write to a legal representative"
                )
            if len(raw) > bal.max_message_bytes:
                raise Undeliverable(
                    552, "5.2.3", f"message of {len(raw)} bytes exceeds {address}'s limit of {bal.max_message_bytes}"
                )
            message = bal.folders["INBOX"].append(raw)
        for callback in self._on_delivery:
            callback(bal, message)
        return bal

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"domains": list(self.domains), "bals": [bal.to_json() for bal in self.bals.values()]}


_UID_VALIDITY = itertools.count(1)


def new_folders() -> dict[str, Folder]:
    return {name: Folder(name, next(_UID_VALIDITY)) for name in DEFAULT_FOLDERS}


def bal_from_json(data: dict[str, Any]) -> Bal:
    """A professional, organisational or applicative BAL from mailboxes.yaml or the control API."""
    allowed = {"address", "kind", "owners", "delegates", "certificate_cn", "state", "max_message_bytes"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown BAL fields: {sorted(unknown)}")
    kind = str(data.get("kind", "PER"))
    if kind not in KINDS[:3]:
        raise ValueError(f"BAL kind must be PER, ORG or APP, got {kind!r}")
    if kind == "APP" and not data.get("certificate_cn"):
        raise ValueError("an APP BAL needs the certificate_cn of the organisation certificate that opens it")
    return Bal(
        address=_address(data),
        kind=kind,
        folders=new_folders(),
        owners=tuple(str(owner) for owner in data.get("owners", ())),
        delegates=tuple(str(delegate) for delegate in data.get("delegates", ())),
        certificate_cn=str(data.get("certificate_cn", "")),
        state=_state(data),
        max_message_bytes=int(data.get("max_message_bytes", OPERATOR_MAX_MESSAGE_BYTES)),
    )


def patient_bal_from_json(data: dict[str, Any]) -> Bal:
    """A Mon espace santé mailbox: ``matricule`` (13 characters, key computed) or ``ins`` (15)."""
    unknown = set(data) - {"matricule", "ins", "state", "minor"}
    if unknown:
        raise ValueError(f"unknown patient mailbox fields: {sorted(unknown)}")
    if "ins" in data:
        ins = str(data["ins"])
    elif "matricule" in data:
        matricule = str(data["matricule"])
        ins = matricule + ins_key(matricule)
    else:
        raise ValueError("a patient mailbox needs its matricule or ins")
    if len(ins) != 15 or ins[13:] != ins_key(ins[:13]):
        raise ValueError(f"{ins!r} is not an INS matricule with a valid key")
    return Bal(
        address=f"{ins}@{PATIENT_DOMAIN}",
        kind="PAT",
        folders=new_folders(),
        state=_state(data),
        minor=bool(data.get("minor", False)),
        max_message_bytes=PATIENT_MAX_MESSAGE_BYTES,
    )


def _address(data: dict[str, Any]) -> str:
    address = str(data.get("address", "")).strip()
    local, _, domain = address.partition("@")
    if not local or "." not in domain:
        raise ValueError(f"{address!r} is not a mailbox address")
    return address


def _state(data: dict[str, Any]) -> str:
    state = str(data.get("state", "open"))
    if state not in ("open", "closed"):
        raise ValueError(f"mailbox state must be open or closed, got {state!r}")
    return state
