"""The reference SUT's refusals, shared by its features (identity, PSC, DMP) and its trigger API server."""

from __future__ import annotations


class ActionError(Exception):
    """A refused action; ``code`` is part of the trigger API contract."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
