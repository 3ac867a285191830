"""The ``segur`` command line.

Exit codes of ``segur run``: 0 conforme, 1 non conforme, 2 usage or configuration error,
3 SUT unreachable, 4 harness internal error. ``segur validate``: 0 no error finding, 1 at least
one, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from segur import __version__
from segur.catalogue import COULOIR_REMS, load_catalogue
from segur.recorder import BAC_A_SABLE, MODES

if TYPE_CHECKING:
    from segur.validation import Finding

EXIT_CONFORME, EXIT_NON_CONFORME, EXIT_USAGE, EXIT_SUT_UNREACHABLE, EXIT_INTERNAL = 0, 1, 2, 3, 4
# Where `segur exigences import` keeps the official REM texts, and where `segur run` looks for them.
DEFAULT_OVERLAY = Path(".segur/rem.json")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"segur: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segur", description="Ségur conformance harness")
    parser.add_argument("--version", action="version", version=f"segur {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND")

    run = commands.add_parser("run", help="run a couloir's scenarios against a SUT and write the report")
    run.add_argument("--couloir", required=True, choices=sorted(COULOIR_REMS))
    run.add_argument(
        "--sut", help="reference[:defects] | http://HOST:PORT | python:mod:Class | manual (default: reference)"
    )
    run.add_argument("--out", type=Path, help="run directory (default reports/out/<run-id>)")
    run.add_argument("--pki", type=Path, default=Path(".segur/pki"), help="test PKI directory")
    run.add_argument("--quiet", action="store_true", help="no progress output (CI)")
    run.add_argument("--interactive", action="store_true", help="manual SUT: ask the operator")
    run.add_argument("--manual-timeout", type=float, help="manual SUT: seconds to wait for traffic (default 120)")
    run.add_argument("--insi-idam", action="append", default=[], help="your IDAM number, accepted by the INSi mock")
    run.add_argument(
        "--psc-redirect-uri", action="append", default=[], help="your PSC redirect URI, registered at the PSC mock"
    )
    run.add_argument(
        "--psc-post-logout-uri", action="append", default=[], help="your PSC post-logout redirect URI (registered)"
    )
    run.add_argument(
        "--mode",
        choices=MODES,
        default=BAC_A_SABLE,
        help="bac-a-sable: verdict on errors; homologation: also fails CRITIQUE requirements on warnings, "
        "refuses uncommitted adapter config, records replay.json",
    )
    run.add_argument("--sut-config", type=Path, help="YAML adapter settings (sut, insi_idam, psc_redirect_uris, ...)")
    run.add_argument("--rem", type=Path, help=f"REM overlay from `segur exigences import` (default {DEFAULT_OVERLAY})")
    run.add_argument(
        "--cisis",
        type=Path,
        metavar="DIR",
        help="your CI-SIS package: the DMP mock also checks each CDA with its schema and Schematrons",
    )
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="both couloirs against the reference SUT")
    demo.add_argument("--pki", type=Path, default=Path(".segur/pki"))
    demo.set_defaults(handler=_demo)

    mocks = commands.add_parser("mocks", help="run mocks standalone").add_subparsers(metavar="ACTION")
    up = mocks.add_parser("up", help="serve mocks until Ctrl-C; prints one JSON line with endpoints and PKI")
    up.add_argument(
        "--only", default="insi,psc,dmp,mss", help="comma-separated mocks (default: all of insi,psc,dmp,mss)"
    )
    up.add_argument("--port", action="append", default=[], metavar="MOCK=PORT", help="fixed port for a mock")
    up.add_argument("--control-port", type=int, default=0)
    up.add_argument(
        "--dmp-workers",
        type=int,
        default=None,
        help="processes for the DMP's VIHF/XDS/CDA checks, for concurrent clients (default: one per CPU; 0: inline)",
    )
    up.add_argument("--cisis", type=Path, metavar="DIR", help="your CI-SIS package, for the DMP's CDA checks")
    up.add_argument("--pki", type=Path, default=Path(".segur/pki"))
    up.add_argument("--journal", type=Path, default=Path(".segur/journal.jsonl"))
    up.set_defaults(handler=_mocks_up)

    exigences = commands.add_parser("exigences", help="print the requirement catalogue, or import an official REM")
    exigences.add_argument("--couloir", choices=sorted(COULOIR_REMS))
    exigences.add_argument("--format", choices=("csv", "json"), default="csv")
    exigences.set_defaults(handler=_exigences)
    rem_import = exigences.add_subparsers(metavar="ACTION").add_parser(
        "import", help="read an ANS REM spreadsheet (xlsx) into the overlay every run then shows"
    )
    rem_import.add_argument("workbook", type=Path, metavar="REM.xlsx")
    rem_import.add_argument("--out", type=Path, default=DEFAULT_OVERLAY, help=f"overlay (default {DEFAULT_OVERLAY})")
    rem_import.set_defaults(handler=_exigences_import)

    _report_parser(commands)

    sut = commands.add_parser("sut", help="reference SUT information").add_subparsers(metavar="ACTION")
    defects = sut.add_parser("defects", help="the reference SUT's defects and the requirements each breaks")
    defects.add_argument("--json", action="store_true")
    defects.set_defaults(handler=_defects)

    validate = commands.add_parser("validate", help="validate artefacts with the project's rules; exit 1 on errors")
    validate.add_argument("artefact", choices=sorted(VALIDATORS), help="what the files are")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--cisis", type=Path, metavar="DIR", help="your CI-SIS package: schema, Schematron, JDV")
    validate.add_argument(
        "--pki", type=Path, default=Path(".segur/pki"), help="vihf, xds: test PKI whose CA signatures must chain to"
    )
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(handler=_validate)

    pki = commands.add_parser("pki", help="test PKI").add_subparsers(metavar="ACTION")
    init = pki.add_parser("init", help="generate the test PKI in DIR (kept if already there)")
    init.add_argument("directory", type=Path)
    init.set_defaults(handler=_pki_init)
    return parser


def _report_parser(commands: argparse._SubParsersAction) -> None:
    """`segur report …`: what a reviewer and a release pipeline do with a finished run directory."""
    report = commands.add_parser("report", help="bundle, verify, export, compare a run; Allure; coverage")
    actions = report.add_subparsers(metavar="ACTION")

    bundle = actions.add_parser("bundle", help="one zip with the report, JUnit, evidence and MANIFEST.sha256")
    bundle.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    bundle.add_argument("--out", type=Path, help="zip file (default RUN_DIR.zip)")
    bundle.add_argument("--sign-key", type=Path, help="PEM private key: adds MANIFEST.sha256.p7s (CMS, detached)")
    bundle.add_argument("--sign-cert", type=Path, help="PEM certificate of --sign-key")
    bundle.add_argument("--key-password-env", metavar="VAR", help="environment variable holding the key's password")
    bundle.add_argument(
        "--include-raw-journal", action="store_true", help="also ship evidence/journal.jsonl, secrets in clear"
    )
    bundle.set_defaults(handler=_report_bundle)

    verify = actions.add_parser("verify", help="recompute MANIFEST.sha256 (and check its signature); 1 on change")
    verify.add_argument("bundle", type=Path, metavar="BUNDLE")
    verify.add_argument("--ca", type=Path, help="PEM CA the manifest signature must chain to")
    verify.set_defaults(handler=_report_verify)

    export = actions.add_parser("export", help="the results in the REM layout, one row per proof")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    export.add_argument("--format", choices=("xlsx",), default="xlsx")
    export.add_argument("--out", type=Path, help="file (default RUN_DIR/rapport-rem.xlsx)")
    export.add_argument("--rem", type=Path, help=f"REM overlay (default: the run's, else {DEFAULT_OVERLAY})")
    export.set_defaults(handler=_report_export)

    allure = actions.add_parser("allure", help="the Allure HTML report of a run, offline (needs an Allure CLI)")
    allure.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    allure.add_argument("--out", type=Path, help="report folder (default RUN_DIR/allure-report)")
    allure.add_argument("--allure", help="Allure CLI to use (default: SEGUR_ALLURE, PATH, .segur/tools/allure)")
    allure.set_defaults(handler=_report_allure)

    compare = actions.add_parser("compare", help="requirements that regressed or improved; 1 on a regression")
    compare.add_argument("old", type=Path, metavar="OLD", help="run directory, rapport.json or bundle")
    compare.add_argument("new", type=Path, metavar="NEW")
    compare.add_argument("--format", choices=("text", "json"), default="text")
    compare.set_defaults(handler=_report_compare)

    coverage = actions.add_parser("coverage", help="CSV: requirement -> scenarios -> proofs, and how each is proven")
    coverage.add_argument("--couloir", choices=sorted(COULOIR_REMS))
    coverage.add_argument("--out", type=Path, help="CSV file (default: standard output)")
    coverage.set_defaults(handler=_report_coverage)


def _report_bundle(args: argparse.Namespace) -> int:
    import os

    from segur.reports.bundle import ManifestSigner, write_bundle

    signer = None
    if args.sign_key or args.sign_cert:
        if not (args.sign_key and args.sign_cert):
            raise ValueError("--sign-key and --sign-cert go together")
        password = os.environ.get(args.key_password_env, "").encode() if args.key_password_env else None
        signer = ManifestSigner.from_files(args.sign_key, args.sign_cert, password=password or None)
    path = write_bundle(args.run_dir, args.out, signer=signer, include_raw_journal=args.include_raw_journal)
    print(f"bundle: {path}")
    return 0


def _report_verify(args: argparse.Namespace) -> int:
    from segur.reports.bundle import verify_bundle

    check = verify_bundle(args.bundle, ca=args.ca)
    for line in [*check.notes, *check.problems]:
        print(f"  {line}")
    signed = f", signé par {check.signer}" if check.signer else ""
    print(f"{args.bundle}: {'intègre' if check.ok else 'ALTÉRÉ'} ({check.files} fichier(s){signed})")
    return 0 if check.ok else 1


def _report_export(args: argparse.Namespace) -> int:
    from segur.rem import export_xlsx, load_overlay

    report = _read_run_report(args.run_dir)
    replay = args.run_dir / "replay.json"
    used = (json.loads(replay.read_text(encoding="utf-8")).get("rem") or {}) if replay.is_file() else {}
    overlay_path = args.rem or (Path(used["chemin"]) if used.get("chemin") else None)
    overlay_path = overlay_path or (DEFAULT_OVERLAY if DEFAULT_OVERLAY.is_file() else None)
    overlay = load_overlay(overlay_path) if overlay_path else None
    path = export_xlsx(report, args.out or args.run_dir / "rapport-rem.xlsx", overlay)
    print(f"REM: {path}")
    return 0


def _report_allure(args: argparse.Namespace) -> int:
    from segur.reports.allure import generate

    return generate(args.run_dir, args.out, allure=args.allure)


def _report_compare(args: argparse.Namespace) -> int:
    from segur.reports.compare import compare_command

    return compare_command(args.old, args.new, fmt=args.format)


def _report_coverage(args: argparse.Namespace) -> int:
    from segur.reports.coverage import coverage_command

    return coverage_command(args.couloir, args.out)


def _read_run_report(run_dir: Path) -> dict:
    path = run_dir / "rapport.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} has no rapport.json (is it a `segur run` directory?)")
    return json.loads(path.read_text(encoding="utf-8"))


def _exigences_import(args: argparse.Namespace) -> int:
    from segur.rem import read_rem, write_overlay

    overlay = read_rem(args.workbook)
    known = {e.id for e in load_catalogue().exigences}
    unknown = sorted(set(overlay.exigences) - known)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_overlay(overlay, args.out)
    print(f"{len(overlay.exigences)} exigence(s) du REM lues dans {args.workbook} -> {args.out}")
    if unknown:
        print(f"absentes du catalogue du harnais ({len(unknown)}) : {', '.join(unknown)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """Command-line options win over the SUT config file, whose lists add to theirs."""
    from segur.replay import load_sut_config
    from segur.runner import run_couloir

    config = load_sut_config(args.sut_config) if args.sut_config else {}
    rem = args.rem or (Path(config["rem"]) if "rem" in config else None)
    if rem is None and DEFAULT_OVERLAY.is_file():
        rem = DEFAULT_OVERLAY
    return run_couloir(
        args.couloir,
        args.sut or config.get("sut", "reference"),
        out=args.out,
        pki=args.pki,
        quiet=args.quiet,
        interactive=args.interactive,
        manual_timeout=args.manual_timeout or float(config.get("manual_timeout", 120.0)),
        insi_idam=[*config.get("insi_idam", []), *args.insi_idam],
        psc_redirect_uris=[*config.get("psc_redirect_uris", []), *args.psc_redirect_uri],
        psc_post_logout_uris=[*config.get("psc_post_logout_uris", []), *args.psc_post_logout_uri],
        mode=args.mode,
        rem_overlay=rem,
        sut_config=args.sut_config,
        cisis=args.cisis or (Path(config["cisis"]) if "cisis" in config else None),
    )


def _demo(args: argparse.Namespace) -> int:
    from segur.runner import run_couloir

    codes = [run_couloir(couloir, "reference", pki=args.pki) for couloir in sorted(COULOIR_REMS)]
    return max(codes)


def _mocks_up(args: argparse.Namespace) -> int:
    from segur.mocks import create_mocks
    from segur.mocks.runtime.host import HostConfig, MockHost
    from segur.pki import ensure_pki

    ports = {}
    for item in args.port:
        name, _, port = item.partition("=")
        if not port.isdigit():
            raise ValueError(f"--port expects MOCK=PORT, got {item!r}")
        ports[name] = int(port)
    pki = ensure_pki(args.pki)
    if args.cisis is not None:
        from segur.cisis import CisisPackage

        CisisPackage(args.cisis)  # a folder that is no CI-SIS package is a usage error, before anything listens
    services = create_mocks(args.only.split(","), pki, dmp_workers=args.dmp_workers, cisis=args.cisis)
    config = HostConfig(pki=pki, journal_path=args.journal, ports=ports, control_port=args.control_port)
    host = MockHost(services, config)

    async def serve() -> None:
        print(json.dumps(await host.start_async()), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await host.stop_async()

    asyncio.run(serve())
    host.journal.close()
    return 0


def _exigences(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    entries = catalogue.for_couloir(args.couloir) if args.couloir else list(catalogue.exigences)
    if args.format == "json":
        print(json.dumps({"version": catalogue.version, "exigences": [e.to_json() for e in entries]}, indent=2))
        return 0
    columns = ("id", "titre", "socle", "rems", "nature", "criticite", "profil", "verification", "source", "id_officiel")
    writer = csv.writer(sys.stdout)
    writer.writerow(columns)
    for exigence in entries:
        row = exigence.to_json()
        row["rems"] = " ".join(row["rems"])
        row["source"] = f"{row['source']['document']} ({row['source']['version']})"
        writer.writerow([row[c] if row[c] is not None else "" for c in columns])
    return 0


def _defects(args: argparse.Namespace) -> int:
    from segur.reference_sut.defects import DEFECTS

    if args.json:
        print(json.dumps([vars(d) for d in DEFECTS.values()], ensure_ascii=False, indent=2))
    else:
        for defect in DEFECTS.values():
            blocks = f" (non testé : {', '.join(defect.blocks)})" if defect.blocks else ""
            print(f"{defect.name:28} casse {', '.join(defect.breaks)}{blocks}\n{'':28} {defect.description}")
    return 0


def _cda_validator(args: argparse.Namespace) -> Callable[[bytes], list[Finding]]:
    """The CDA layers, with the user's CI-SIS package (schema, Schematrons, value sets) when given."""
    from segur.cda import validate_cda

    if args.cisis is None:
        return validate_cda
    from segur.cisis import CisisPackage

    schema, layers = CisisPackage(args.cisis).cda_checks()
    return lambda data: validate_cda(data, schema=schema, extra_layers=layers)


def _vihf_validator(args: argparse.Namespace) -> Callable[[bytes], list[Finding]]:
    """A VIHF file: the saml2:Assertion, its wsse:Security header, or a whole SOAP request carrying it."""
    from segur.pki import ensure_pki
    from segur.validation import parse_untrusted
    from segur.vihf import WSSE, verify_vihf

    trusted = ensure_pki(args.pki).trust_bundle()

    def validate(data: bytes) -> list[Finding]:
        try:
            root = parse_untrusted(data)
        except ValueError:
            return verify_vihf(data, trusted_ca_pem=trusted)[1]
        security = root if root.tag == f"{{{WSSE}}}Security" else root.find(f".//{{{WSSE}}}Security")
        return verify_vihf(security if security is not None else data, trusted_ca_pem=trusted)[1]

    return validate


def _xds_validator(args: argparse.Namespace) -> Callable[[bytes], list[Finding]]:
    """An ITI-41 ProvideAndRegisterDocumentSetRequest with its documents inline (base64), alone or in a SOAP body."""
    import base64

    from segur.pki import ensure_pki
    from segur.validation import parse_untrusted
    from segur.xds import validate_submission
    from segur.xds.ebrim import XDSB

    trusted = ensure_pki(args.pki).trust_bundle()

    def validate(data: bytes) -> list[Finding]:
        try:
            root = parse_untrusted(data)
        except ValueError as error:
            return [Finding("XDS-XML", "error", str(error))]
        tag = f"{XDSB}ProvideAndRegisterDocumentSetRequest"
        request = root if root.tag == tag else root.find(f".//{tag}")
        if request is None:
            return [Finding("XDS-XML", "error", "no xdsb:ProvideAndRegisterDocumentSetRequest in the file")]
        documents = {
            element.get("id", ""): base64.b64decode("".join((element.text or "").split()))
            for element in request.findall(f"{XDSB}Document")
        }
        return validate_submission(request, documents, trusted_ca_pem=trusted)

    return validate


# Artefact -> factory of its validator (built once per run, e.g. to compile the schema once).
VALIDATORS: dict[str, Callable[[argparse.Namespace], Callable[[bytes], list[Finding]]]] = {
    "cda": _cda_validator,
    "vihf": _vihf_validator,
    "xds": _xds_validator,
}


def _validate(args: argparse.Namespace) -> int:
    from segur.cda import line_of
    from segur.validation import parse_untrusted

    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        raise ValueError(f"no such file: {', '.join(missing)}")
    validator = VALIDATORS[args.artefact](args)
    report = []
    for path in args.files:
        data = path.read_bytes()
        findings = validator(data)
        try:
            root = parse_untrusted(data)
        except ValueError:
            root = None
        rows = [{**f.to_json(), "line": line_of(root, f.location) if root is not None else None} for f in findings]
        report.append({"file": str(path), "findings": rows})
    errors = sum(row["severity"] == "error" for entry in report for row in entry["findings"])
    if args.format == "json":
        print(json.dumps({"files": report, "errors": errors}, ensure_ascii=False, indent=2))
    else:
        for entry in report:
            for row in entry["findings"]:
                where = f"{entry['file']}:{row['line']}" if row["line"] else entry["file"]
                print(f"{where} {row['severity']} {row['rule']} {row.get('location', '-')} {row['message']}")
        warnings = sum(row["severity"] == "warning" for entry in report for row in entry["findings"])
        print(f"{len(report)} file(s), {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def _pki_init(args: argparse.Namespace) -> int:
    from segur.pki import ensure_pki

    print(json.dumps(ensure_pki(args.directory).describe(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
