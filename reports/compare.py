"""``segur report compare OLD NEW``: what changed between two runs, for release gating in CI.

A release gate must fail when a requirement the previous release met is no longer met, and
must not fail because the catalogue moved under it. Statuses are therefore split in two:

* outcomes of the software, ranked best first: ``conforme``, ``non_teste``, ``non_conforme``.
  ``conforme`` -> ``non_teste`` is a regression (the proof is gone); ``non_teste`` sits above
  ``non_conforme`` because an untested requirement has not been shown to fail;
* outcomes of the catalogue and couloir: ``non_applicable`` (REM scope), ``preuve_manuelle``
  and ``externe`` (verification kind). A move into or out of these is a change of perimeter,
  listed as a change, never as a regression or an improvement.

The verdict going ``conforme`` -> ``non_conforme`` also fails the gate (exit code 1).

A PRECONISATION that regresses is listed with the regressions, marked non-blocking, and does not
fail the gate: it does not decide the verdict either (segur/recorder.py), and a gate stricter than
the référencement would block releases the dossier accepts.
"""

from __future__ import annotations

import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from segur.reports.html import LABELS

RANKED = ("conforme", "non_teste", "non_conforme")
PRECONISATION = "PRECONISATION"
EXIT_OK, EXIT_REGRESSION, EXIT_UNREADABLE = 0, 1, 2
REPORT_NAME = "rapport.json"
MAX_REPORT_BYTES = 256 * 1024 * 1024  # a zipped rapport.json announcing more is refused before it is inflated


class ReportError(ValueError):
    """The input is not a readable run: missing, not JSON, or not shaped like rapport.json."""


@dataclass(frozen=True)
class Change:
    """One requirement's difference; ``old``/``new`` is the status, None when absent from that run.

    ``nature`` is the newer run's (the catalogue the release is judged by); reports without one are EXIGENCE.
    """

    id: str
    titre: str
    old: str | None
    new: str | None
    details: tuple[str, ...] = ()
    nature: str = "EXIGENCE"

    @property
    def preconisation(self) -> bool:
        return self.nature == PRECONISATION

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "titre": self.titre, "nature": self.nature, "ancien": self.old, "nouveau": self.new,
                "details": list(self.details)}  # fmt: skip


@dataclass
class Comparison:
    old: dict[str, Any]  # run identity: sut, couloir, catalogue_version, started, verdict
    new: dict[str, Any]
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)  # status moved in or out of the perimeter
    changed_findings: list[Change] = field(default_factory=list)  # same status, other constats or messages
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict_regressed(self) -> bool:
        return self.old["verdict"] == "conforme" and self.new["verdict"] != "conforme"

    @property
    def blocking_regressions(self) -> list[Change]:
        return [c for c in self.regressions if not c.preconisation]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.blocking_regressions or self.verdict_regressed else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "ancien": self.old,
            "nouveau": self.new,
            "verdict": {"ancien": self.old["verdict"], "nouveau": self.new["verdict"]},
            "bloquant": self.exit_code == EXIT_REGRESSION,
            "avertissements": self.warnings,
            "regressions": [c.to_json() | {"bloquant": not c.preconisation} for c in self.regressions],
            "ameliorations": [c.to_json() for c in self.improvements],
            "changements": [c.to_json() for c in self.changed],
            "constats_modifies": [c.to_json() for c in self.changed_findings],
            "exigences_ajoutees": [c.to_json() for c in self.added],
            "exigences_retirees": [c.to_json() for c in self.removed],
        }


def load_report(path: Path) -> dict[str, Any]:
    """rapport.json from a run directory, the file itself, or a bundle zip (its top folder's, read in place)."""
    try:
        if path.is_dir():
            raw = (path / REPORT_NAME).read_bytes()
        elif zipfile.is_zipfile(path):
            raw = _read_from_zip(path)
        else:
            raw = path.read_bytes()
        report = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile) as error:
        raise ReportError(f"{path}: {error}") from error
    _check_shape(path, report)
    return report


def compare_reports(old: dict[str, Any], new: dict[str, Any]) -> Comparison:
    """Requirement by requirement, in the new run's order; requirements only the old run has come last."""
    comparison = Comparison(_identity(old), _identity(new))
    for key, label in (
        ("couloir", "couloirs différents"),
        ("catalogue_version", "versions du catalogue différentes"),
        ("mode", "modes différents (bac-a-sable / homologation)"),
    ):
        if old.get(key) != new.get(key):
            comparison.warnings.append(f"{label} : {old.get(key)} → {new.get(key)}")
    before = {e["id"]: e for e in old["exigences"]}
    after_ids = {e["id"] for e in new["exigences"]}
    for entry in new["exigences"]:
        previous = before.get(entry["id"])
        if previous is None:
            comparison.added.append(_change(entry, None, entry["statut"]))
        else:
            _classify(comparison, previous, entry)
    comparison.removed = [_change(e, e["statut"], None) for e in old["exigences"] if e["id"] not in after_ids]
    return comparison


def render_text(comparison: Comparison) -> str:
    """For a reviewer or a CI log: one line per requirement, grouped, most serious first."""
    lines = [f"Ancien rapport : {_describe(comparison.old)}", f"Nouveau rapport : {_describe(comparison.new)}"]
    lines += [f"Attention : {warning}" for warning in comparison.warnings]
    old_verdict, new_verdict = LABELS[comparison.old["verdict"]], LABELS[comparison.new["verdict"]]
    lines.append(
        f"Verdict : {old_verdict} → {new_verdict}" if old_verdict != new_verdict else f"Verdict : {new_verdict}"
    )
    groups = (
        ("Régressions", comparison.regressions),
        ("Améliorations", comparison.improvements),
        ("Changements de périmètre", comparison.changed),
        ("Constats modifiés", comparison.changed_findings),
        ("Exigences ajoutées", comparison.added),
        ("Exigences retirées", comparison.removed),
    )
    for title, changes in groups:
        if changes:
            lines += ["", f"{title} ({len(changes)}) :"] + [_line(change) for change in changes]
    if comparison.exit_code == EXIT_REGRESSION:
        result = "régression, publication bloquée"
    elif comparison.regressions:
        result = f"aucune régression bloquante ({len(comparison.regressions)} préconisation(s) en régression)"
    else:
        result = "aucune régression"
    lines += ["", f"Résultat : {result}"]
    return "\n".join(lines) + "\n"


def compare_command(old: Path, new: Path, *, fmt: str = "text", out: TextIO | None = None) -> int:
    """Entry point for ``segur report compare OLD NEW [--format text|json]``: 0, 1 on a regression, 2 unreadable."""
    try:
        comparison = compare_reports(load_report(old), load_report(new))
    except ReportError as error:
        print(f"segur: rapport illisible : {error}", file=sys.stderr)
        return EXIT_UNREADABLE
    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps(comparison.to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(render_text(comparison))
    return comparison.exit_code


def _read_from_zip(path: Path) -> bytes:
    """The bundle keeps everything under one top folder; its rapport.json is the run's report."""
    with zipfile.ZipFile(path) as archive:
        members = [
            i for i in archive.infolist() if i.filename.count("/") == 1 and i.filename.endswith("/" + REPORT_NAME)
        ]
        if len(members) != 1:
            raise ReportError(f"{path}: expected one <dossier>/{REPORT_NAME} in the zip, found {len(members)}")
        if members[0].file_size > MAX_REPORT_BYTES:
            raise ReportError(f"{path}: {members[0].filename} is larger than {MAX_REPORT_BYTES} bytes")
        with archive.open(members[0]) as handle:
            return handle.read(MAX_REPORT_BYTES + 1)


def _check_shape(path: Path, report: Any) -> None:
    """Enough of the rapport.json contract for the comparison to never stop half-way on a KeyError."""
    if (
        not isinstance(report, dict)
        or report.get("verdict") not in LABELS
        or not isinstance(report.get("exigences"), list)
    ):
        raise ReportError(f"{path}: not a rapport.json (verdict and exigences expected)")
    for entry in report["exigences"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or entry.get("statut") not in LABELS:
            raise ReportError(f"{path}: exigence without id or with an unknown statut: {str(entry)[:80]}")


def _identity(report: dict[str, Any]) -> dict[str, Any]:
    sut = report.get("sut") or {}
    return {
        "sut": " ".join(str(sut[k]) for k in ("name", "version") if sut.get(k)),
        "couloir": report.get("couloir"),
        "catalogue_version": report.get("catalogue_version"),
        "started": report.get("started"),
        "verdict": report["verdict"],
    }


def _change(entry: dict[str, Any], old: str | None, new: str | None, details: tuple[str, ...] = ()) -> Change:
    return Change(entry["id"], entry.get("titre", ""), old, new, details, entry.get("nature") or "EXIGENCE")


def _classify(comparison: Comparison, old: dict[str, Any], new: dict[str, Any]) -> None:
    before, after = old["statut"], new["statut"]
    if before == after:
        details = _finding_changes(old, new)
        if details:
            comparison.changed_findings.append(_change(new, before, after, details))
    elif before in RANKED and after in RANKED:
        worse = RANKED.index(after) > RANKED.index(before)
        target = comparison.regressions if worse else comparison.improvements
        target.append(_change(new, before, after, tuple(new.get("messages", ())) if worse else ()))
    else:
        comparison.changed.append(_change(new, before, after, _perimeter_changes(old, new)))


def _finding_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    """Constats compared by (rule, location), so a reworded message alone does not read as a new defect."""
    before, after = _constats(old), _constats(new)
    details = [f"+ {rule} {location}".rstrip() for rule, location in sorted(after - before)]
    details += [f"- {rule} {location}".rstrip() for rule, location in sorted(before - after)]
    old_messages, new_messages = set(old.get("messages", ())), set(new.get("messages", ()))
    details += [f"+ « {m} »" for m in sorted(new_messages - old_messages)]
    details += [f"- « {m} »" for m in sorted(old_messages - new_messages)]
    return tuple(details)


def _constats(entry: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["rule"], c.get("location", "")) for s in entry.get("scenarios", ()) for c in s.get("constats", ())}


def _perimeter_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    """Why the perimeter moved, when the catalogue says so (verification kind, REMs)."""
    details = []
    if old.get("verification") != new.get("verification"):
        details.append(f"vérification {old.get('verification')} → {new.get('verification')}")
    if old.get("rems") != new.get("rems"):
        details.append(f"REM {' '.join(old.get('rems') or ())} → {' '.join(new.get('rems') or ())}")
    return tuple(details)


def _describe(identity: dict[str, Any]) -> str:
    return (
        f"{identity['sut'] or 'logiciel sans nom'}, couloir {identity['couloir']}, "
        f"catalogue {identity['catalogue_version']}, lancé le {identity['started']}, {LABELS[identity['verdict']]}"
    )


def _line(change: Change) -> str:
    before = LABELS[change.old] if change.old else "absente"
    after = LABELS[change.new] if change.new else "absente"
    status = after if change.old == change.new else f"{before} → {after}"
    details = f" ({' ; '.join(change.details)})" if change.details else ""
    nature = " [préconisation, non bloquante]" if change.preconisation else ""
    return f"  {change.id} : {status}{nature} — {change.titre}{details}"
