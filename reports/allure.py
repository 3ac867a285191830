"""Allure: requirement labels, what allure-results/ gets at the end of a run, and the offline HTML report.

allure-pytest-bdd writes one result per scenario during the run (the pytest plugin adds the
epic, feature, story, severity and link labels made here, and the exchange attachments); this
module adds what only the end of a run knows (verdict, SUT, referential versions, and a skipped
result for each requirement no scenario covered) and drives whichever Allure CLI the user has.
The JavaScript Allure 3 CLI (npm package ``allure``) needs no Java, so it is the one we
suggest; Allure 2's works the same way for ``generate``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segur.catalogue import Exigence, load_catalogue
from segur.recorder import NON_APPLICABLE
from segur.reports.html import html_id

# Where `scripts/ensure-allure` (and the how-to below) installs the npm CLI, relative to the working directory.
LOCAL_CLI = Path(".segur/tools/allure/node_modules/.bin/allure")
HOW_TO_GET = (
    "no Allure command line found. Install the JavaScript Allure 3 CLI (no Java needed) with\n"
    "  npm install --prefix .segur/tools/allure allure@3\n"
    "or put `allure` on PATH, or name it with --allure or SEGUR_ALLURE; then run this command again.\n"
    "The raw results are in {results}; rapport.html does not need Allure."
)
SEVERITIES = {"CRITIQUE": "critical", "MAJEURE": "normal", "MINEURE": "minor"}


def requirement_labels(couloir: str, exigences: Iterable[Exigence]) -> list[tuple[str, str]]:
    """Allure labels (name, value) of a result proving ``exigences``: epic couloir, feature socle, story requirement."""
    labels = [("epic", f"couloir {couloir}")]
    for exigence in exigences:
        labels += [
            ("feature", exigence.socle),
            ("story", f"{exigence.id} {exigence.titre}"),
            ("severity", SEVERITIES[exigence.criticite]),
        ]
    return labels


def requirement_link(exigence: Exigence) -> str:
    """The requirement's row in rapport.html, relative to allure-report/ beside it."""
    return f"../rapport.html#exigence-{html_id(exigence.id)}"


def write_uncovered(report: dict[str, Any], results: Path) -> None:
    """A skipped Allure result for each requirement of the couloir that no scenario covered (manual, external or
    untested), saying why, so that Allure lists every requirement as rapport.html does.

    Ids derive from couloir and requirement only, so reruns line up in Allure's history.
    """
    from allure_commons.logger import AllureFileLogger
    from allure_commons.model2 import Label, Link, Status, StatusDetails, TestResult
    from allure_commons.types import LinkType

    entries = {entry["id"]: entry for entry in report["exigences"]}
    couloir = report["couloir"]
    ended = int(dt.datetime.fromisoformat(report["ended"]).timestamp() * 1000)
    logger = AllureFileLogger(results)
    for exigence in load_catalogue().exigences:
        entry = entries[exigence.id]
        if entry["scenarios"] or entry["statut"] == NON_APPLICABLE:
            continue
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"segur:{couloir}:{exigence.id}")
        labels = [Label(name=name, value=value) for name, value in requirement_labels(couloir, [exigence])]
        logger.report_result(
            TestResult(
                uuid=str(key),
                historyId=key.hex,
                testCaseId=key.hex,
                fullName=f"couloir {couloir}: {exigence.id}",
                titlePath=[f"couloir {couloir}", exigence.socle],
                name=f"{exigence.id} {exigence.titre}",
                status=Status.SKIPPED,
                statusDetails=StatusDetails(message=f"{entry['statut']}: {'; '.join(entry['messages'])}"),
                start=ended,
                stop=ended,
                labels=labels,
                links=[Link(type=LinkType.LINK, url=requirement_link(exigence), name=exigence.id)],
            )
        )


def environment(report: dict[str, Any]) -> dict[str, str]:
    """What Allure's Environment widget shows: who was tested, against which referential, with what verdict."""
    sut = report.get("sut", {})
    versions = report.get("versions", {})
    values = {
        "Couloir": report.get("couloir", ""),
        "Logiciel": f"{sut.get('name', '?')} {sut.get('version', '')}".strip(),
        "Adaptateur": str(sut.get("adapter", "")),
        "Mode": report.get("mode", ""),
        "Verdict": report.get("verdict", ""),
        "Harnais": versions.get("harnais", report.get("harness_version", "")),
        "Catalogue": versions.get("catalogue", report.get("catalogue_version", "")),
        "Referentiel": versions.get("referentiel", report.get("referentiel", "")),
        "Jeux de valeurs": versions.get("jeux_de_valeurs", ""),
        "Schematron": versions.get("schematron", ""),
        "REM": versions.get("rem") or "aucun",
    }
    return {key: str(value) for key, value in values.items() if value}


def write_environment(report: dict[str, Any], results: Path) -> Path:
    """allure-results/environment.properties, in the Java properties syntax both Allure 2 and 3 read."""
    results.mkdir(parents=True, exist_ok=True)
    lines = [f"{_escape(key, key=True)}={_escape(value)}" for key, value in environment(report).items()]
    path = results / "environment.properties"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def _escape(text: str, *, key: bool = False) -> str:
    """Java properties escaping: separators and backslashes escaped, non-ASCII as \\uXXXX (the format is Latin-1)."""
    specials = "\\=:#!" + (" " if key else "")
    out = []
    for char in text.replace("\n", " "):
        if char in specials:
            out.append("\\" + char)
        elif ord(char) > 0x7E:
            out.append("".join(f"\\u{unit:04x}" for unit in _utf16_units(char)))
        else:
            out.append(char)
    return "".join(out)


def _utf16_units(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def find_allure(explicit: str | None = None) -> list[str] | None:
    """The Allure CLI to run: --allure, then SEGUR_ALLURE, then `allure` on PATH, then the project-local npm one."""
    for candidate in (explicit, os.environ.get("SEGUR_ALLURE")):
        if candidate:
            return [candidate]
    on_path = shutil.which("allure")
    if on_path:
        return [on_path]
    return [str(LOCAL_CLI.resolve())] if LOCAL_CLI.is_file() else None


def generate(run_dir: Path, out: Path | None = None, *, allure: str | None = None, timeout: float = 600) -> int:
    """Generate the Allure HTML report of a run, offline; 0 on success, 2 when no CLI is there (with the how-to)."""
    results = run_dir / "allure-results"
    if not results.is_dir():
        raise ValueError(f"{run_dir} has no allure-results/ (is it a `segur run` directory?)")
    command = find_allure(allure)
    if command is None:
        print(f"segur: {HOW_TO_GET.format(results=results)}")
        return 2
    out = out or run_dir / "allure-report"
    name = f"Ségur {run_dir.name}"
    try:
        done = subprocess.run(
            [*command, "generate", str(results), "--output", str(out), "--name", name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except OSError as error:
        raise ValueError(f"cannot run the Allure CLI {command[0]}: {error}") from error
    if done.returncode != 0 or not (out / "index.html").is_file():
        raise ValueError(f"Allure CLI failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
    print(f"Allure report: {out / 'index.html'}")
    return 0
