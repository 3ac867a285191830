"""DMP mock: the shared medical record's XDS.b registry and repository, TD0.2/TD0.3, VIHF-gated, over mTLS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from segur.mocks.dmp.protocol import BASE_PATH, DmpApp
from segur.mocks.dmp.registry import AccessRules, DmpRegistry, patient_from_json
from segur.mocks.dmp.validation_pool import ValidationPool
from segur.mocks.runtime.faults import COMMON_FAULT_KINDS
from segur.mocks.runtime.service import Listener, MockService
from segur.pki import Pki
from segur.xds import InsOids

# The DMP repository's uniqueId on the test platform is not public: this one is the harness's.
REPOSITORY_UNIQUE_ID = "1.2.250.1.213.1.1.9.99.1"
# Requests carry whole documents: the DMP accepts larger bodies than the other mocks.
MAX_REQUEST_BYTES = 20_000_000


class DmpMock(MockService):
    name = "dmp"
    fault_kinds = (*COMMON_FAULT_KINDS, "soap_fault", "registry_error")

    def __init__(
        self,
        pki: Pki,
        psc_tokens: Callable[[str], dict] | None = None,
        *,
        oids: InsOids | None = None,
        max_document_bytes: int = 5_000_000,
        workers: int | None = 0,
        check_timeout: float | None = None,
        cisis: Path | None = None,
    ) -> None:
        """``psc_tokens`` checks the PSC access token a VIHF carries in PSC mode (the PSC mock's, in one host).

        ``workers`` processes run the VIHF, XDS and CDA checks (None: one per CPU; 0, the default:
        in the host's loop, as a couloir run, which sends one request at a time, needs no more); a
        check running longer than ``check_timeout`` seconds answers "unavailable". ``cisis``, the
        user's CI-SIS package, adds its CDA schema, official Schematrons and value sets to the CDA checks;
        the first document of each model then compiles their schematrons in the worker (the ANS
        structuration minimale profile alone takes ~15 s in Saxon), hence a longer default timeout.
        """
        super().__init__()
        self.registry = DmpRegistry(DmpRegistry.default_patients(), AccessRules.default(), REPOSITORY_UNIQUE_ID)
        self.app = DmpApp(
            self.registry,
            self.faults,
            pki.trust_bundle(),
            psc_tokens,
            oids,
            max_document_bytes=max_document_bytes,
            pool=ValidationPool(workers, timeout=check_timeout or (60.0 if cisis is None else 600.0)),
            cisis=cisis,
        )

    def listeners(self) -> list[Listener]:
        return [Listener(self.app, path=BASE_PATH, max_body=MAX_REQUEST_BYTES)]

    def bound(self, urls: list[str]) -> None:
        """The host runs our servers: warm the validation workers before the first request needs them."""
        self.app.pool.start()

    def close(self) -> None:
        """Stop the validation workers."""
        self.app.pool.close()

    def seed(self, state: dict[str, Any]) -> dict[str, Any]:
        """``{"patients": [...], "replace": false}``; patients as in patients.yaml (``ins`` or ``matricule``)."""
        unknown = set(state) - {"patients", "replace"}
        if unknown:
            raise ValueError(f"unknown DMP state fields: {sorted(unknown)}")
        patients = [patient_from_json(entry) for entry in state.get("patients", [])]
        with self.registry.lock:
            if state.get("replace"):
                self.registry.patients.clear()
            self.registry.patients.update({patient.ins: patient for patient in patients})
            return {"patients": sorted(self.registry.patients)}

    def reset(self) -> None:
        with self.registry.lock:
            self.registry.patients = {patient.ins: patient for patient in DmpRegistry.default_patients()}
            self.registry.documents.clear()
            self.registry.submission_sets.clear()
            self.registry.associations.clear()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        return {**self.registry.snapshot(), "pending_faults": self.faults.pending()}
