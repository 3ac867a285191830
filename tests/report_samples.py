"""A small, synthetic run directory laid out as ``segur run`` writes it.

Report tests (HTML, bundle, REM export, comparison) need a run without paying a couloir run:
this writes rapport.json, junit.xml and evidence files with the same shape, one requirement
per status, and a raw journal that still holds the secrets the bundle must not let out; and an
REM workbook for those requirements, for the overlay's import and display.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openpyxl

# Values only the raw journal may hold; the bundle and the reports must never show them.
RAW_SECRETS = {
    "access_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI4OTk5MTAwMDAwMjcifQ.c2lnbmF0dXJlLXNlY3JldA",
    "client_secret": "s3cr3t-client-value-0042",
    "password": "mot-de-passe-bal-9876",
}
REQUEST_XML = (
    b"POST /si-dmp-server/v2/services/repository HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/soap+xml\r\n\r\n"
    b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body><q>1</q></s:Body></s:Envelope>"
)
RESPONSE_JSON = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"active": true, "access_token": "eyJh...[masque]"}'
)


def _scenario(exigence: str, statut: str, *, seq: int, message: str = "", constats: list | None = None) -> dict:
    scenario_id = f"{exigence}.01"
    folder = exigence.replace("/", "_") + ".01"
    exchange = {
        "seq": str(seq),
        "mock": "dmp",
        "operation": "iti-41",
        "request": f"evidence/{folder}/{seq:04d}-dmp-iti-41-request.http",
        "response": f"evidence/{folder}/{seq:04d}-dmp-iti-41-response.http",
        "outcome": json.dumps({"status": 200}),
    }
    then_status = {"conforme": "passe", "non_conforme": "echec"}.get(statut, "non_execute")
    return {
        "id": scenario_id,
        "nom": f"Scénario de {exigence}",
        "feature": "Alimentation du DMP",
        "statut": statut,
        "message": message,
        "parametres": {"document": "LDL-SES"} if statut == "conforme" else {},
        "etapes": [
            {"keyword": "Soit", "type": "given", "text": "le DMP du patient est actif", "statut": "passe",
             "message": ""},
            {"keyword": "Alors", "type": "then", "text": "le DMP accepte le document", "statut": then_status,
             "message": message},
        ],
        "preuves": [{"id": f"{scenario_id}.01", "texte": "le DMP accepte le document", "statut": then_status,
                     "message": message, "echanges": [exchange]}],
        "journal": [seq, seq],
        "echanges": [exchange],
        "constats": constats or [],
    }  # fmt: skip


def _exigence(identifier: str, socle: str, statut: str, *, criticite: str = "MAJEURE", **extra: Any) -> dict:
    verification = {"preuve_manuelle": "manuelle", "externe": "externe"}.get(statut, "automatique")
    return {
        "id": identifier,
        "titre": f"Intitulé de {identifier}",
        "socle": socle,
        "rems": ["DPI", "LGC"],
        "nature": "EXIGENCE",
        "criticite": criticite,
        "profil": None,
        "source": {"id": "test", "document": "REM synthétique", "version": "test"},
        "verification": verification,
        "id_officiel": True,
        "statut": statut,
        "messages": [extra["message"]] if extra.get("message") else [],
        "officiel": None,
        "scenarios": extra.get("scenarios", []),
        "preuves": [p for s in extra.get("scenarios", []) for p in s["preuves"]],
    }


def sample_report() -> dict[str, Any]:
    """One requirement per status, a failing DMP one with a validator finding and an exchange."""
    finding = {
        "rule": "XDSNonIdenticalHash",
        "severity": "error",
        "message": "hash du document différent de celui des métadonnées",
        "location": "/rim:ExtrinsicObject[1]/rim:Slot[@name='hash']",
        "requirement": "DMP/PROV.03",
        "origine": "échange #2",
    }
    exigences = [
        _exigence("INS/va1.02", "INS", "conforme", scenarios=[_scenario("INS/va1.02", "conforme", seq=1)]),
        _exigence(
            "DMP/PROV.03", "DMP", "non_conforme", criticite="CRITIQUE", message="hash différent",
            scenarios=[_scenario("DMP/PROV.03", "non_conforme", seq=2, message="hash différent", constats=[finding])],
        ),
        _exigence("SC.MSS/CONF.16", "MSSANTE", "non_teste", message="aucun scénario"),
        _exigence("SC.MSS/CONF.27", "MSSANTE", "non_applicable"),
        _exigence("MSS/PROV.05", "MSSANTE", "preuve_manuelle"),
        _exigence("INS/va1.99", "INS", "externe"),
    ]  # fmt: skip
    summary = {s: sum(e["statut"] == s for e in exigences) for s in
               ("conforme", "non_conforme", "non_teste", "non_applicable", "preuve_manuelle", "externe")}  # fmt: skip
    return {
        "harness_version": "0.1.0",
        "catalogue_version": "2026.11.5",
        "referentiel": "Ségur vague 2 (test)",
        "couloir": "hopital",
        "sut": {"name": "LOGICIEL TEST", "version": "1.0", "adapter": "reference"},
        "started": "2026-11-23T10:00:00+00:00",
        "ended": "2026-11-23T10:00:30+00:00",
        "mode": "bac-a-sable",
        "versions": {
            "harnais": "0.1.0",
            "catalogue": "2026.11.5",
            "referentiel": "Ségur vague 2 (test)",
            "jeux_de_valeurs": "projet 2026.11",
            "schematron": "aucun paquet CI-SIS",
            "rem": None,
        },
        "verdict": "non_conforme",
        "summary": summary,
        "journal": "evidence/journal.jsonl",
        "journal_note": "journal brut : contient les secrets et jetons en clair, réservé à l'éditeur",
        "exigences": exigences,
    }


def write_sample_run(run_dir: Path, report: dict[str, Any] | None = None) -> Path:
    """rapport.json, junit.xml, evidence files and a raw journal holding RAW_SECRETS, under ``run_dir``."""
    report = report or sample_report()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "rapport.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (run_dir / "rapport.html").write_text("<!DOCTYPE html><title>rapport</title>", encoding="utf-8")
    (run_dir / "junit.xml").write_text("<testsuites><testsuite name='hopital' tests='2'/></testsuites>")
    for entry in report["exigences"]:
        for scenario in entry["scenarios"]:
            for exchange in scenario["echanges"]:
                for which, body in (("request", REQUEST_XML), ("response", RESPONSE_JSON)):
                    path = run_dir / exchange[which]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(body)
    raw = {"seq": 1, "mock": "psc", "operation": "token", "request": RAW_SECRETS, "response": RAW_SECRETS}
    (run_dir / "evidence" / "journal.jsonl").write_text(json.dumps(raw) + "\n", encoding="utf-8")
    return run_dir


# Header variants an REM may carry: line breaks, case, curly apostrophe, "º" for "°", a "(DOIT)" suffix, extra columns.
MAIN_HEADER = [
    "Exigence\nconditionnelle", "PROFIL", "ID  Section", "Section", "Bloc", "Fonction", "Nature de l’exigence",
    "N°\nexigence", "ENONCE de l'exigence (DOIT) ou de la préconisation (DEVRAIT)", "Version", "Nº scénario",
    "Scénario de  conformité ", "N° preuve 1", "Preuve 1", "N° preuve 2", "Preuve 2", "N° preuve 10", "Preuve 10",
]  # fmt: skip
SECOND_HEADER = ["N° exigence", "Énoncé", "Section", "N° scénario", "Scénario de conformité", "N°preuve 1", "Preuve1"]


def _main_rows() -> list[list[object]]:
    ins = ["", "Tous", "INS", "Identité", "Qualification", "Appel INSi", "EXIGENCE", "INS / va1.02 ", "Énoncé INS"]
    dmp = ["Si DMP", "DPI", "DMP", "Alimentation", "Envoi", "ITI-41", "EXIGENCE", "DMP/PROV.03", "Énoncé DMP"]
    return [
        [*ins, 1.0, "INS/va1.02.01", "Scénario INS 1", "INS/va1.02.01.01", "Preuve A", "INS/va1.02.01.02", "Preuve B"],
        # continuation row: the requirement cells are merged with the row above (see write_rem_workbook)
        [*[None] * 9, 1.0, "INS/va1.02.02", "Scénario INS 2", "INS/va1.02.02.01", "Preuve C"],
        [*dmp, 2, "DMP/PROV.03.01", "Scénario DMP 1", "DMP/PROV.03.01.01", "Hash", None, None,
         "DMP/PROV.03.01.10", "Dix"],
        # continuation row left blank, not merged: forward-filled from the requirement above
        [*[None] * 9, 2, "DMP/PROV.03.02", "Scénario DMP 2", "DMP/PROV.03.02.01", "Taille"],
        ["", "", "INS", "Identité", "", "", "EXIGENCE", "SC.INS/CONF.01", "Énoncé hors catalogue", 1,
         "SC.INS/CONF.01.01", "Scénario hors catalogue", "SC.INS/CONF.01.01.01", '=HYPERLINK("http://example.invalid")'],
    ]  # fmt: skip


def write_rem_workbook(path: Path) -> Path:
    """A synthetic REM: notes without header, the REM with its header on row 3 and merged cells, a second REM sheet.

    Its requirements match sample_report()'s (INS/va1.02, DMP/PROV.03, MSS/PROV.05, full proof ids) plus one the
    harness lacks (SC.INS/CONF.01).
    """
    workbook = openpyxl.Workbook()
    notes = workbook.active
    notes.title = "Lisez-moi"
    notes.append(["Référentiel d'exigences multi-couloir — données synthétiques de test"])
    notes.append(["Exigence", "Scénario"])
    sheet = workbook.create_sheet("REM DPI")
    sheet.append(["REM DPI vague 2 (synthétique)"])
    sheet.append([])
    sheet.append(MAIN_HEADER)
    for row in _main_rows():
        sheet.append(row)
    for column in range(1, 10):  # rows 4-5 hold INS/va1.02's two scenarios
        sheet.merge_cells(start_row=4, start_column=column, end_row=5, end_column=column)
    second = workbook.create_sheet("REM MSS")
    second.append(SECOND_HEADER)
    second.append(
        ["MSS/PROV.05", "Énoncé MSS", "Messagerie", "MSS/PROV.05.01", "Scénario MSS", "MSS/PROV.05.01.01", "Capture"]
    )
    workbook.save(path)
    return path
