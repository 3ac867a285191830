"""Evidence journal: every exchange a mock sees, written to disk before the mock answers.

One JSON object per line (JSONL) so that a crash never corrupts what was already
written, and so that the file can be tailed during a manual session. Raw bytes are
kept base64-encoded: the journal is the evidence, the rendering is the report's job.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass
class Exchange:
    """One request/response pair (or one refused connection) seen by a mock."""

    mock: str
    operation: str
    request: bytes
    response: bytes
    started: str
    peer: dict[str, Any] = field(default_factory=dict)
    correlation: dict[str, str] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)

    def to_record(self, seq: int) -> dict[str, Any]:
        return {
            "seq": seq,
            "mock": self.mock,
            "operation": self.operation,
            "started": self.started,
            "recorded": now_iso(),
            "peer": self.peer,
            "correlation": self.correlation,
            "outcome": self.outcome,
            "request_b64": base64.b64encode(self.request).decode(),
            "response_b64": base64.b64encode(self.response).decode(),
        }


class Journal:
    """Append-only, thread-safe JSONL journal with an in-memory index for the control API."""

    def __init__(self, path: Path | str, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fsync = fsync
        self._lock = threading.Lock()
        # Reopening a journal continues its numbering: evidence sequence numbers stay unique.
        self._offset = sum(1 for _ in read_journal(self.path)) if self.path.stat().st_size else 0
        self._records: list[dict[str, Any]] = []

    def record(self, exchange: Exchange) -> dict[str, Any]:
        """Write the exchange durably (one ``write`` of a whole line) and return its record."""
        with self._lock:
            record = exchange.to_record(self._offset + len(self._records) + 1)
            line = memoryview((json.dumps(record, ensure_ascii=False) + "\n").encode())
            while line:
                line = line[os.write(self._fd, line) :]
            if self._fsync:
                os.fsync(self._fd)
            self._records.append(record)
            return record

    def since(self, seq: int = 0, mock: str | None = None) -> list[dict[str, Any]]:
        """Records with a sequence number above ``seq``, optionally for one mock only."""
        with self._lock:
            selected = self._records[max(seq - self._offset, 0) :]
        return [r for r in selected if mock is None or r["mock"] == mock]

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._offset + len(self._records)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def read_journal(path: Path | str) -> Iterator[dict[str, Any]]:
    """Read a journal file back; raw payloads are left base64-encoded."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def payload(record: dict[str, Any], which: str) -> bytes:
    """Decoded raw ``request`` or ``response`` bytes of a journal record."""
    return base64.b64decode(record[f"{which}_b64"])
