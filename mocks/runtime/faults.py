"""Fault injection shared by all mocks: the next matching request fails the way a test asks."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# Every mock understands these; a mock adds its own (``soap_fault``, PSC token faults…).
COMMON_FAULT_KINDS = ("timeout", "http_error")


@dataclass
class FaultRule:
    """Applies to the next ``count`` requests whose operation matches (``*`` for any)."""

    kind: str
    operation: str = "*"
    count: int = 1
    delay: float = 30.0
    status: int = 503
    code: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any], kinds: tuple[str, ...] = COMMON_FAULT_KINDS) -> FaultRule:
        unknown = set(data) - {"kind", "operation", "count", "delay", "status", "code"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        rule = cls(**data)
        if rule.kind not in kinds:
            raise ValueError(f"fault kind must be one of {kinds}, got {rule.kind!r}")
        if rule.count < 1 or not 0 <= rule.delay <= 300 or not 400 <= rule.status <= 599:
            raise ValueError("count >= 1, 0 <= delay <= 300 and 400 <= status <= 599 are required")
        return rule


@dataclass
class FaultInjector:
    """Thread-safe queue of pending fault rules (the control API writes, the mock loop reads)."""

    rules: list[FaultRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def take(self, operation: str, kinds: tuple[str, ...] | None = None) -> FaultRule | None:
        """Consume one use of the first rule matching ``operation`` (and, if given, one of ``kinds``).

        ``kinds`` lets a mock look for faults that only make sense at one point of its
        protocol (a forged ID token at token issuance) without consuming the others.
        """
        with self._lock:
            for rule in self.rules:
                if rule.operation in ("*", operation) and (kinds is None or rule.kind in kinds):
                    rule.count -= 1
                    if rule.count == 0:
                        self.rules.remove(rule)
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [vars(rule).copy() for rule in self.rules]
