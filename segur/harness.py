"""One harness run's live parts: test PKI, mocks, SUT adapter, and the scenario recorder.

Created by the pytest plugin when ``--couloir`` is given (``segur run`` gives it), so the
same session works from the CLI and from a plain ``pytest scenarios/hopital --couloir hopital``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml

from segur import __version__
from segur.catalogue import load_catalogue
from segur.cisis import CisisPackage
from segur.ins import OID_INS_NIA, OID_INS_NIA_TEST, OID_INS_NIR, OID_INS_NIR_TEST
from segur.mocks import create_mocks
from segur.mocks.runtime.host import HostConfig, MockHost
from segur.pki import ensure_pki
from segur.recorder import BAC_A_SABLE, HOMOLOGATION, ScenarioResult
from segur.rem import RemOverlay, load_overlay
from segur.replay import adapter_files, replay_record, require_committed
from segur.sut import SutAdapter, open_sut
from segur.sut.manual import ManualSut
from segur.sut.reference import ReferenceSut

COULOIRS = ("hopital", "ville")
MOCKS = ["insi", "psc", "dmp", "mss"]
# INSi answers with the production INS OIDs (as the qualification platform does); the DMP mock, like
# the DMP test platform, expects the test OIDs. The SUT is told the mapping instead of guessing it.
DMP_INS_OID_MAPPING = {OID_INS_NIR: OID_INS_NIR_TEST, OID_INS_NIA: OID_INS_NIA_TEST}
# The PSC client the SUT is given at `configure` (one of the PSC mock's default clients).
PSC_CLIENT = {"client_id": "segur-sut", "client_secret": "segur-sut-secret"}
PSC_DISCOVERY = "/.well-known/wallet-openid-configuration"
# The BALs the SUT is given at `configure`: in real life the software's applicative BAL is set up with
# the operator and a professional's BALs come from the Annuaire Santé (modelled: docs/vendors.md#mssanté).
MSS_BALS = {
    "bal_applicative": "dpi@hopital-test.mssante.fr",
    "bal_personnelles": {
        "899910000027": "hospitalier.medecin-test@hopital-test.mssante.fr",
        "899910000019": "generaliste.medecin-test@cabinet-test.mssante.fr",
        "899910000035": "officine.pharmacien-test@officine-test.mssante.fr",
        "899910000043": "pluriactif.medecin-test@cabinet-test.mssante.fr",
    },
}
# How INSi calls carry the PSC identity: our model, the real wire form is not public (docs/mocks.md).
INSI_PSC_PROFILE = "psc-bearer"


@dataclass
class RunOptions:
    couloir: str
    sut: str = "reference"
    out_dir: Path = Path("reports/out/run")
    pki_dir: Path = Path(".segur/pki")
    quiet: bool = False
    interactive: bool = False
    manual_timeout: float = 120.0
    service_timeout: float = 10.0
    fault_delay: float = 30.0
    insi_idam: tuple[str, ...] = ()
    ciba_interval: float = 5.0
    # The vendor's own PSC URIs, for SUTs whose `configure` cannot report them (manual adapter).
    psc_redirect_uris: tuple[str, ...] = ()
    psc_post_logout_redirect_uris: tuple[str, ...] = ()
    mode: str = BAC_A_SABLE
    # The official REM texts (`segur exigences import`), shown beside the project's own catalogue.
    rem_overlay: Path | None = None
    # The vendor's adapter settings file (`--sut-config`): recorded in replay.json, committed in homologation.
    sut_config: Path | None = None
    # The user's CI-SIS package (`--cisis`): its schema and official Schematrons check every CDA the DMP receives.
    cisis: Path | None = None


@dataclass
class Harness:
    options: RunOptions
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    scenarios: list[ScenarioResult] = field(default_factory=list)
    host: MockHost | None = None
    sut: SutAdapter | None = None
    sut_info: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)
    control: httpx.Client | None = None
    # What the SUT's configure answer asked to register at the mocks; re-seeded after every reset.
    registrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # "browser" (the harness GETs the SUT's redirect URIs) or "action" (receive_redirect).
    psc_redirect_delivery: str = "browser"
    overlay: RemOverlay | None = None
    # The scenario being played, so that Then steps can hand their validator findings to the report.
    current: ScenarioResult | None = None
    # The schematron package the run applies, as the report names it.
    schematron_version: str = "règles du projet (aucun paquet CI-SIS)"

    def start(self) -> None:
        options = self.options
        if options.mode == HOMOLOGATION:
            require_committed(adapter_files(options.sut, options.sut_config))
        if options.rem_overlay is not None:
            self.overlay = load_overlay(options.rem_overlay)
        if options.cisis is not None:
            package = CisisPackage(options.cisis)  # refuses a folder that is no package
            self.schematron_version = package.version()
            package.compile_profiles()  # the DMP mock checks inline, in this process: its first answer stays quick
        evidence = options.out_dir / "evidence"
        evidence.mkdir(parents=True, exist_ok=True)
        self.pki = ensure_pki(options.pki_dir)
        self.host = MockHost(
            create_mocks(MOCKS, self.pki, cisis=options.cisis),
            HostConfig(pki=self.pki, journal_path=evidence / "journal.jsonl"),
        )
        self.endpoints = self.host.start()
        self.control = httpx.Client(base_url=self.endpoints["control"], timeout=30)
        self.sut = open_sut(
            options.sut,
            profile=options.couloir,
            manual_timeout=options.manual_timeout,
            interactive=options.interactive,
        )
        if isinstance(self.sut, ReferenceSut):
            # The reference SUT accepts short timeouts, which keeps the outage scenarios fast.
            options.service_timeout, options.fault_delay, options.ciba_interval = 0.5, 1.5, 0.2
        if isinstance(self.sut, ManualSut):
            self.sut.traffic_probe = lambda mock, since: len(self.journal(since, mock or None)) + since
        self.sut_info = {**self.sut.start(), "couloir": options.couloir}
        replay = replay_record(options, self.sut_info, self.pki.ca_cert, self.run_info()["versions"])
        (options.out_dir / "replay.json").write_text(json.dumps(replay, ensure_ascii=False, indent=2), encoding="utf-8")
        configured = self.sut.act("configure", self.configuration())
        self.registrations = psc_registrations(configured, options)
        self.psc_redirect_delivery = (configured.get("psc") or {}).get("redirect_delivery", "browser")
        self.reseed()

    def configuration(self) -> dict[str, Any]:
        """What the SUT is told: mock endpoints and test PKI (the `configure` action)."""
        insi_url = self.endpoints["mocks"]["insi"]["endpoints"][0]
        discovery = self.endpoints["mocks"]["psc"]["endpoints"][0] + PSC_DISCOVERY
        dmp_url = self.endpoints["mocks"]["dmp"]["endpoints"][0]
        smtp_url, imap_url, crl_url = self.endpoints["mocks"]["mss"]["endpoints"][:3]
        return {
            "couloir": self.options.couloir,
            "services": {
                "insi": {"url": insi_url, "timeout": self.options.service_timeout, "psc_profile": INSI_PSC_PROFILE},
                "psc": {"discovery_url": discovery, **PSC_CLIENT},
                "dmp": {
                    "url": dmp_url,
                    "timeout": self.options.service_timeout,
                    "ins_oid_mapping": DMP_INS_OID_MAPPING,
                },
                "mss": {
                    "smtp_url": smtp_url,
                    "imap_url": imap_url,
                    "crl_url": crl_url,
                    "timeout": self.options.service_timeout,
                    **MSS_BALS,
                },
            },
            "pki": self.endpoints["pki"],
            "summary": f"INSi: {insi_url} — PSC: {discovery} (client {PSC_CLIENT['client_id']}) — DMP: {dmp_url}"
            f" — MSSanté: {smtp_url}, {imap_url}",
        }

    def stop(self) -> None:
        if self.sut is not None:
            self.sut.stop()
        if self.control is not None:
            self.control.close()
        if self.host is not None:
            self.host.stop()

    # -- control API ---------------------------------------------------------------------------

    def journal(self, since: int = 0, mock: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if mock:
            params["mock"] = mock
        return self._control("GET", "/journal", params=params)["records"]

    def last_seq(self) -> int:
        return self._control("GET", "/journal", params={"since": 10**9})["last_seq"]

    def seed(self, mock: str, state: dict[str, Any]) -> dict[str, Any]:
        return self._control("POST", f"/mocks/{mock}/state", json=state)

    def state(self, mock: str) -> dict[str, Any]:
        return self._control("GET", f"/mocks/{mock}/state")

    def inject_fault(self, mock: str, fault: dict[str, Any]) -> dict[str, Any]:
        return self._control("POST", f"/mocks/{mock}/faults", json=fault)

    def reset_mocks(self) -> None:
        """Back to defaults, keeping what the run was configured with (IDAM, PSC redirect URIs)."""
        self._control("POST", "/reset")
        self.reseed()

    def reseed(self) -> None:
        if self.options.insi_idam:
            self.seed("insi", {"idam": list(self.options.insi_idam)})
        for mock, state in self.registrations.items():
            self.seed(mock, state)

    def _control(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        assert self.control is not None, "harness not started"
        response = self.control.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def run_info(self) -> dict[str, Any]:
        catalogue = load_catalogue()
        return {
            "harness_version": __version__,
            "catalogue_version": catalogue.version,
            "referentiel": catalogue.referentiel,
            "couloir": self.options.couloir,
            "sut": self.sut_info,
            "started": self.started,
            "mode": self.options.mode,
            "versions": {
                "harnais": __version__,
                "catalogue": catalogue.version,
                "referentiel": catalogue.referentiel,
                "jeux_de_valeurs": value_sets_version(),
                "schematron": self.schematron_version,
                "rem": None,
            },
        }


def value_sets_version() -> str:
    """The shipped XDS value sets: how many, the newest ANS version they transcribe, and a digest of the file."""
    text = resources.files("segur.xds").joinpath("valuesets.yaml").read_text(encoding="utf-8")
    sets = yaml.safe_load(text)["value_sets"]
    newest = max(str(spec.get("version", "")) for spec in sets.values())
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{len(sets)} jeux, ANS {newest[:8]} (valuesets.yaml sha256 {digest})"


def psc_registrations(configured: dict[str, Any], options: RunOptions) -> dict[str, dict[str, Any]]:
    """The SUT's PSC redirect URIs (from its `configure` answer and the run options) become registered."""
    psc = configured.get("psc") or {}
    client = {
        "client_id": PSC_CLIENT["client_id"],
        "redirect_uris": [*filter(None, [psc.get("redirect_uri")]), *options.psc_redirect_uris],
        "post_logout_redirect_uris": [
            *filter(None, [psc.get("post_logout_redirect_uri")]),
            *options.psc_post_logout_redirect_uris,
        ],
    }
    return {"psc": {"clients": [client]}} if client["redirect_uris"] or client["post_logout_redirect_uris"] else {}
