"""Writes a run directory: rapport.json, rapport.html, evidence files, and the ``latest`` link.

JUnit (junit.xml) and Allure (allure-results/) are written by pytest's own plugins into
the same directory; this module adds what a référencement dossier needs on top.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

from segur.catalogue import load_catalogue
from segur.harness import Harness
from segur.journal import payload, read_journal
from segur.recorder import aggregate, summary, verdict
from segur.redaction import redact
from segur.rem import apply_overlay
from segur.reports.allure import write_environment
from segur.reports.html import render_html


def write_report(harness: Harness) -> dict[str, Any]:
    """Build and write the report of a finished run; returns rapport.json's content."""
    out = harness.options.out_dir
    catalogue = load_catalogue()
    journal_path = out / "evidence" / "journal.jsonl"
    records = {r["seq"]: r for r in read_journal(journal_path)} if journal_path.exists() else {}
    for result in harness.scenarios:
        for seq in range(result.journal_start + 1, result.journal_end + 1):
            found = (records.get(seq) or {}).get("outcome", {}).get("findings") or []
            result.note_findings(found, f"échange #{seq}")
    entries = aggregate(catalogue, harness.options.couloir, harness.scenarios, harness.options.mode)
    for entry in entries:
        entry["preuves"] = []
        for scenario in entry["scenarios"]:
            files = _write_evidence(out, scenario, records)
            scenario["echanges"] = files
            for proof in scenario["preuves"]:
                proof["echanges"] = files
                entry["preuves"].append(proof)
    report = {
        **harness.run_info(),
        "ended": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "verdict": verdict(entries),
        "summary": summary(entries),
        "journal": "evidence/journal.jsonl",
        "journal_note": "journal brut : contient les secrets et jetons en clair, réservé à l'éditeur",
        "exigences": entries,
    }
    if harness.overlay is not None:
        apply_overlay(report, harness.overlay)
    (out / "rapport.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "rapport.html").write_text(render_html(report, out), encoding="utf-8")
    if (out / "allure-results").is_dir():
        write_environment(report, out / "allure-results")
    _point_latest(out)
    return report


def _write_evidence(out: Path, scenario: dict[str, Any], records: dict[int, dict[str, Any]]) -> list[dict[str, str]]:
    """One request and one response file per exchange, under evidence/<scenario id>/, credentials masked."""
    first, last = scenario["journal"]
    folder = out / "evidence" / _safe(scenario["id"])
    files = []
    for seq in range(first, last + 1):
        record = records.get(seq)
        if record is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{seq:04d}-{record['mock']}-{_safe(record['operation'])}"
        entry = {"seq": str(seq), "mock": record["mock"], "operation": record["operation"]}
        for which in ("request", "response"):
            path = folder / f"{stem}-{which}{_suffix(record, which)}"
            path.write_bytes(redact(payload(record, which)))
            entry[which] = str(path.relative_to(out))
        entry["outcome"] = redact(json.dumps(record["outcome"], ensure_ascii=False).encode()).decode()
        files.append(entry)
    return files


def _suffix(record: dict[str, Any], which: str) -> str:
    """What a reviewer's tools open the file with: a submitted message is an .eml, a mail dialogue text."""
    operation = record["operation"]
    if operation == "smtp-submission" and which == "request":
        return ".eml"
    if operation.startswith(("smtp-", "imap-", "probe-")):
        return ".txt"
    return ".http"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _point_latest(out: Path) -> None:
    link = out.parent / "latest"
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(out.name, link)
    except OSError:
        pass
