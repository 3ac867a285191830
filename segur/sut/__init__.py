"""SUT adapters: how the harness commands the software under test.

Every adapter implements the same action vocabulary (see ``ACTIONS`` and
segur/sut/openapi.yaml); ``open_sut`` turns the ``--sut`` option into an adapter.
"""

from __future__ import annotations

from segur.sut.base import ACTIONS, SutActionError, SutAdapter, SutUnreachable, open_sut

__all__ = ["ACTIONS", "SutActionError", "SutAdapter", "SutUnreachable", "open_sut"]
