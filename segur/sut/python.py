"""The ``python`` adapter: an importable class with one method per action (``python:module:Class``)."""

from __future__ import annotations

from typing import Any

from segur.sut.base import SutActionError, SutAdapter


class PythonSut(SutAdapter):
    """Methods take the parameter dict and return the result dict; ``describe()`` is optional."""

    kind = "python"

    def __init__(self, instance: Any, spec: str) -> None:
        self.instance = instance
        self.spec = spec

    def describe(self) -> dict[str, Any]:
        described = getattr(self.instance, "describe", None)
        info = described() if callable(described) else {"name": type(self.instance).__name__, "version": "?"}
        return {**info, "adapter": self.kind, "target": self.spec}

    def act(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self.instance, action, None)
        if method is None:
            raise SutActionError("unknown_action", f"{type(self.instance).__name__} has no {action}()")
        try:
            return method(params)
        except SutActionError:
            raise
        except Exception as error:
            raise SutActionError(type(error).__name__, str(error)) from error
