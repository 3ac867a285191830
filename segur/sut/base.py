"""The adapter contract shared by the http, python, manual and reference adapters."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any

# action -> what it must do; the OpenAPI file documents parameters and results.
ACTIONS: dict[str, str] = {
    "configure": "point the software at the mocks (endpoints, test PKI paths)",
    "reset": "forget the patients created by earlier scenarios (optional)",
    "register_patient": "create a patient from typed traits, after an anteriority search",
    "fetch_ins": "call INSi for a patient (mode traits or carte_vitale) and apply the answer",
    "verify_ins": "verify a stored INS against INSi",
    "qualify_identity": "record that a high-trust identity document was checked",
    "get_patient": "return status, traits, INS and traces of a patient",
    "export_identity": "return the identity exactly as it would leave the software in an exchange",
    "login_ps": "start a Pro Santé Connect login (mode web: return the authorization URL; mode ciba: complete it)",
    "current_user": "return the professional logged in through PSC (national id, names, auth mode, last error)",
    "use_ps_session": "do something that needs the PSC session (re-read userinfo), refreshing tokens as needed",
    "logout_ps": "end the PSC session (return the end-session URL the browser must follow)",
    "receive_redirect": "the browser arrives at one of the SUT's redirect URIs (software without an HTTP callback)",
    "check_dmp": "test the patient's DMP (TD0.2): existence, status, authorisation, identity divergence alert",
    "produce_document": "a clinician validates a document for the patient (the software sends it to the DMP itself)",
    "publish_document": "send a new document for the patient to the DMP (level N1 or N3, extra confidentiality)",
    "resend_dmp_documents": "send again the patient's documents the DMP did not take",
    "consult_dmp": "consult the patient's DMP: list the documents and open them",
    "mask_document": "mask (or unmask) a DMP document to other professionals",
    "replace_document": "replace a DMP document with a corrected version",
    "delete_document": "delete a document from the patient's DMP",
    "send_mss_message": "send a document about the patient by MSSanté to a professional or to the patient",
    "replace_mss_message": "send a corrected document that cancels and replaces one sent by MSSanté",
    "resend_mss_messages": "send again the MSSanté messages kept after a temporary or permanent failure",
    "read_mss_mailbox": "read new MSSanté messages over IMAP and integrate the documents they carry",
}
OBSERVATIONS = ("get_patient", "export_identity", "current_user")
# Result key set to False by an adapter that cannot see the outcome of what it triggered
# (a human did it): the step must then ask the operator instead of reading the result.
OBSERVABLE = "observable"


class SutUnreachable(Exception):
    """The SUT cannot be reached at all (exit code 3)."""


class SutActionError(Exception):
    """The SUT refused or failed an action; ``code`` comes from the SUT."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class SutAdapter(ABC):
    kind: str = "abstract"

    def start(self) -> dict[str, Any]:
        """Make the SUT usable; returns its description (name, version, profile)."""
        return self.describe()

    def stop(self) -> None:  # noqa: B027 - most adapters hold nothing to release
        """Release what ``start`` acquired."""

    @abstractmethod
    def describe(self) -> dict[str, Any]: ...

    @abstractmethod
    def act(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one action of the vocabulary; raise ``SutActionError`` when the SUT refuses it."""

    def ask(self, question: str) -> bool | None:
        """Ask a human a yes/no question; ``None`` means nobody can answer (automatic adapters)."""
        return None


def open_sut(spec: str, *, profile: str, manual_timeout: float = 120.0, interactive: bool = False) -> SutAdapter:
    """``reference[:defects]`` | ``http://HOST:PORT`` | ``python:module:Class`` | ``manual``."""
    from segur.sut.http import HttpSut
    from segur.sut.manual import ManualSut
    from segur.sut.python import PythonSut
    from segur.sut.reference import ReferenceSut

    if spec == "reference" or spec.startswith("reference:"):
        return ReferenceSut(profile, spec.partition(":")[2])
    if spec.startswith(("http://", "https://")):
        return HttpSut(spec)
    if spec.startswith("python:"):
        module_name, _, class_name = spec.removeprefix("python:").partition(":")
        if not module_name or not class_name:
            raise ValueError("python SUT must be python:module:Class")
        return PythonSut(getattr(importlib.import_module(module_name), class_name)(), spec)
    if spec == "manual":
        return ManualSut(timeout=manual_timeout, interactive=interactive)
    raise ValueError(f"unknown SUT {spec!r}: use reference[:defects], http://HOST:PORT, python:module:Class or manual")
