"""REM workbook import (overlay) and results export in the REM layout, on a synthetic workbook and report."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest
from report_samples import sample_report, write_rem_workbook, write_sample_run

from segur.rem import (
    HEADERS,
    MAX_UNCOMPRESSED,
    NOT_IN_CATALOGUE,
    OfficialProof,
    RemOverlay,
    apply_overlay,
    export_xlsx,
    load_overlay,
    read_rem,
    write_overlay,
)


@pytest.fixture
def rem_path(tmp_path: Path) -> Path:
    return write_rem_workbook(tmp_path / "REM_DPI_synthetique.xlsx")


def _sheet_rows(path: Path, title: str) -> list[dict[str, object]]:
    sheet = openpyxl.load_workbook(path)[title]
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_read_rem_finds_header_merges_and_forward_fills(rem_path: Path) -> None:
    overlay = read_rem(rem_path)
    assert overlay.source == "REM_DPI_synthetique.xlsx"
    assert overlay.sha256 == hashlib.sha256(rem_path.read_bytes()).hexdigest()
    assert list(overlay.exigences) == ["INS/va1.02", "DMP/PROV.03", "SC.INS/CONF.01", "MSS/PROV.05"]
    ins = overlay.exigences["INS/va1.02"]
    assert (ins.profil, ins.id_section, ins.section, ins.bloc, ins.fonction, ins.nature, ins.enonce) == (
        "Tous", "INS", "Identité", "Qualification", "Appel INSi", "EXIGENCE", "Énoncé INS",
    )  # fmt: skip
    assert [(s.numero, s.texte, [p.numero for p in s.preuves]) for s in ins.scenarios] == [
        ("INS/va1.02.01", "Scénario INS 1", ["INS/va1.02.01.01", "INS/va1.02.01.02"]),
        ("INS/va1.02.02", "Scénario INS 2", ["INS/va1.02.02.01"]),
    ]
    dmp = overlay.exigences["DMP/PROV.03"]
    assert dmp.conditionnelle == "Si DMP"
    assert dmp.scenarios[0].preuves == [
        OfficialProof("DMP/PROV.03.01.01", "Hash"), OfficialProof("DMP/PROV.03.01.10", "Dix"),
    ]  # fmt: skip
    assert dmp.scenarios[1].preuves == [OfficialProof("DMP/PROV.03.02.01", "Taille")]
    # a formula in the REM is read as its cached value (none here), never as formula text
    assert overlay.exigences["SC.INS/CONF.01"].scenarios[0].preuves == [OfficialProof("SC.INS/CONF.01.01.01", "")]
    mss = overlay.exigences["MSS/PROV.05"]
    assert (mss.section, mss.enonce, mss.scenarios[0].preuves) == (
        "Messagerie", "Énoncé MSS", [OfficialProof("MSS/PROV.05.01.01", "Capture")],
    )  # fmt: skip


def test_overlay_round_trips_through_json(rem_path: Path, tmp_path: Path) -> None:
    overlay = read_rem(rem_path)
    assert RemOverlay.from_json(json.loads(json.dumps(overlay.to_json()))) == overlay
    assert load_overlay(write_overlay(overlay, tmp_path / "rem.json")) == overlay
    with pytest.raises(ValueError, match="not a REM overlay"):
        RemOverlay.from_json({"exigences": []})


def test_apply_overlay_sets_officiel_and_lists_unknown_ids(rem_path: Path) -> None:
    overlay = read_rem(rem_path)
    report = apply_overlay(sample_report(), overlay)
    by_id = {e["id"]: e for e in report["exigences"]}
    assert by_id["INS/va1.02"]["officiel"] == {
        "enonce": "Énoncé INS", "section": "Identité", "bloc": "Qualification", "fonction": "Appel INSi",
        "conditionnelle": "", "profil": "Tous",
        "scenarios": [
            {"numero": "INS/va1.02.01", "texte": "Scénario INS 1", "preuves": [
                {"numero": "INS/va1.02.01.01", "texte": "Preuve A"},
                {"numero": "INS/va1.02.01.02", "texte": "Preuve B"},
            ]},
            {"numero": "INS/va1.02.02", "texte": "Scénario INS 2", "preuves": [
                {"numero": "INS/va1.02.02.01", "texte": "Preuve C"}]},
        ],
    }  # fmt: skip
    assert by_id["MSS/PROV.05"]["officiel"]["section"] == "Messagerie"
    assert by_id["SC.MSS/CONF.16"]["officiel"] is None
    assert report["rem_inconnues"] == ["SC.INS/CONF.01"]
    assert report["versions"]["rem"] == f"REM_DPI_synthetique.xlsx (sha256 {overlay.sha256[:12]})"
    json.dumps(report)


def test_export_without_overlay_has_one_row_per_harness_proof(tmp_path: Path) -> None:
    run_dir = write_sample_run(tmp_path / "run")
    out = export_xlsx(sample_report(), run_dir / "rapport-rem.xlsx")
    rows = _sheet_rows(out, "Résultats")
    assert list(rows[0]) == list(HEADERS)
    assert [(r["N° exigence"], r["N° preuve"], r["Statut"]) for r in rows] == [
        ("INS/va1.02", "INS/va1.02.01.01", "Conforme"),
        ("DMP/PROV.03", "DMP/PROV.03.01.01", "Non conforme"),
        ("SC.MSS/CONF.16", None, "Non testé"),
        ("SC.MSS/CONF.27", None, "Non applicable"),
        ("MSS/PROV.05", None, "Preuve manuelle"),
        ("INS/va1.99", None, "Preuve externe"),
    ]
    failing = rows[1]
    assert failing["Fichiers de preuve"].splitlines() == [
        "evidence/DMP_PROV.03.01/0002-dmp-iti-41-request.http", "evidence/DMP_PROV.03.01/0002-dmp-iti-41-response.http",
    ]  # fmt: skip
    assert all((run_dir / p).is_file() for r in rows for p in (r["Fichiers de preuve"] or "").splitlines())
    assert "hash différent" in failing["Constat"] and "XDSNonIdenticalHash" in failing["Constat"]
    assert (failing["ID Section"], failing["Énoncé"], failing["N° scénario"]) == (
        "DMP",
        "Intitulé de DMP/PROV.03",
        "DMP/PROV.03.01",
    )
    assert rows[0]["Scénario du harnais"] == "INS/va1.02.01 — Scénario de INS/va1.02 [document=LDL-SES]"
    assert rows[2]["Constat"] == "aucun scénario"

    sheet = openpyxl.load_workbook(out)["Résultats"]
    status = HEADERS.index("Statut") + 1
    assert sheet.freeze_panes == "A2"
    assert sheet.cell(2, status).fill.fgColor.rgb != sheet.cell(3, status).fill.fgColor.rgb
    assert sheet.cell(2, 1).alignment.wrap_text
    assert sheet.column_dimensions["I"].width == 60
    execution = {r["Élément"]: r["Valeur"] for r in _sheet_rows(out, "Exécution")}
    assert execution["Couloir"] == "hopital" and execution["Verdict"] == "Non conforme"
    assert execution["Mode"] == "bac-a-sable" and execution["Version rem"] == "aucune"
    assert execution["Exigences : Conforme"] == 1 and execution["Exigences : Non conforme"] == 1
    assert execution["Logiciel (SUT)"] == "LOGICIEL TEST 1.0 (adaptateur reference)"


def test_export_with_overlay_has_one_row_per_official_proof(rem_path: Path, tmp_path: Path) -> None:
    overlay = read_rem(rem_path)
    run_dir = write_sample_run(tmp_path / "run")
    out = export_xlsx(sample_report(), run_dir / "rapport-rem.xlsx", overlay)
    rows = _sheet_rows(out, "Résultats")
    assert [(r["N° exigence"], r["N° scénario"], r["N° preuve"], r["Statut"]) for r in rows] == [
        ("INS/va1.02", "INS/va1.02.01", "INS/va1.02.01.01", "Conforme"),
        ("INS/va1.02", "INS/va1.02.01", "INS/va1.02.01.02", "Conforme"),
        ("INS/va1.02", "INS/va1.02.02", "INS/va1.02.02.01", "Conforme"),
        ("DMP/PROV.03", "DMP/PROV.03.01", "DMP/PROV.03.01.01", "Non conforme"),
        ("DMP/PROV.03", "DMP/PROV.03.01", "DMP/PROV.03.01.10", "Non conforme"),
        ("DMP/PROV.03", "DMP/PROV.03.02", "DMP/PROV.03.02.01", "Non conforme"),
        ("SC.MSS/CONF.16", None, None, "Non testé"),
        ("SC.MSS/CONF.27", None, None, "Non applicable"),
        ("MSS/PROV.05", "MSS/PROV.05.01", "MSS/PROV.05.01.01", "Preuve manuelle"),
        ("INS/va1.99", None, None, "Preuve externe"),
        ("SC.INS/CONF.01", "SC.INS/CONF.01.01", "SC.INS/CONF.01.01.01", "Non testé"),
    ]  # fmt: skip
    first = rows[0]
    assert (first["Section"], first["Énoncé"], first["Preuve"]) == ("Identité", "Énoncé INS", "Preuve A")
    assert first["Fichiers de preuve"].splitlines() == [
        "evidence/INS_va1.02.01/0001-dmp-iti-41-request.http", "evidence/INS_va1.02.01/0001-dmp-iti-41-response.http",
    ]  # fmt: skip
    assert "XDSNonIdenticalHash" in rows[4]["Constat"]
    assert rows[3]["Scénario du harnais"] == "DMP/PROV.03.01 — Scénario de DMP/PROV.03"
    assert rows[-1]["Constat"] == NOT_IN_CATALOGUE
    execution = {r["Élément"]: r["Valeur"] for r in _sheet_rows(out, "Exécution")}
    assert execution["REM de l'export"] == f"REM_DPI_synthetique.xlsx (sha256 {overlay.sha256[:12]})"


def test_export_neutralises_formulas(rem_path: Path, tmp_path: Path) -> None:
    report = sample_report()
    entry = report["exigences"][2]
    entry["titre"] = '=HYPERLINK("http://example.invalid","clic")'
    entry["messages"] = ["+1+cmd|' /C calc'!A0", "@SUM(1)", "-2+3"]
    report["sut"]["name"] = "=1+1"
    out = export_xlsx(report, tmp_path / "rem.xlsx", read_rem(rem_path))
    workbook = openpyxl.load_workbook(out)
    cells = [c for sheet in workbook.worksheets for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert not [t for t in texts if t.startswith(("=", "+", "-", "@"))]
    assert '\'=HYPERLINK("http://example.invalid","clic")' in texts
    assert "'+1+cmd|' /C calc'!A0\n@SUM(1)\n-2+3" in texts  # only a cell's first character makes a formula
    assert "'=1+1 1.0 (adaptateur reference)" in texts


def test_refuses_workbook_without_rem_header(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["Exigence", "Énoncé", "Scénario"])
    workbook.save(tmp_path / "autre.xlsx")
    with pytest.raises(ValueError, match="N° exigence"):
        read_rem(tmp_path / "autre.xlsx")


def test_refuses_what_is_not_an_xlsx(tmp_path: Path) -> None:
    text = tmp_path / "rem.xlsx"
    text.write_text("N° exigence;Énoncé\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not an xlsx"):
        read_rem(text)
    other_zip = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "bonjour")
    with pytest.raises(ValueError, match=r"no xl/workbook\.xml"):
        read_rem(other_zip)


def test_refuses_zip_bomb_before_parsing(tmp_path: Path) -> None:
    bomb = tmp_path / "bombe.xlsx"
    chunk = b"\0" * 2**20
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/sharedStrings.xml", "w") as member:
            for _ in range(MAX_UNCOMPRESSED // len(chunk) + 1):
                member.write(chunk)
    assert bomb.stat().st_size < MAX_UNCOMPRESSED // 100
    with pytest.raises(ValueError, match="zip bomb"):
        read_rem(bomb)


FAR_ROW = b'<row r="200000"><c r="A200000" t="inlineStr"><is><t>x</t></is></c></row>'


@pytest.mark.parametrize(
    ("member", "old", "new", "message"),
    [
        ("xl/workbook.xml", b"<workbook", b'<!DOCTYPE w [<!ENTITY a "aaaa">]><workbook', "DOCTYPE"),
        ("xl/worksheets/sheet2.xml", b'<mergeCell ref="A4:A5"', b'<mergeCell ref="A1:XFD1048576"', "merged cells"),
        ("xl/worksheets/sheet2.xml", b'<mergeCell ref="A4:A5"', b'<mergeCell ref="A:A"', "unbounded"),
        ("xl/worksheets/sheet2.xml", b"</sheetData>", FAR_ROW + b"</sheetData>", "rows, more than"),
    ],
)
def test_refuses_hostile_package_parts(
    rem_path: Path, tmp_path: Path, member: str, old: bytes, new: bytes, message: str
) -> None:
    hostile = tmp_path / "hostile.xlsx"
    with zipfile.ZipFile(rem_path) as source, zipfile.ZipFile(hostile, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data.replace(old, new, 1) if info.filename == member else data)
    with zipfile.ZipFile(hostile) as changed, zipfile.ZipFile(rem_path) as original:
        assert changed.read(member) != original.read(member)
    with pytest.raises(ValueError, match=message):
        read_rem(hostile)
