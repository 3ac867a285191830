"""`segur report …` and `segur exigences import` as a reviewer or a pipeline types them, on a synthetic run."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import openpyxl
import pytest
from harness_runs import segur
from report_samples import sample_report, write_sample_run

from segur.rem import REM_COLUMNS


@pytest.fixture
def run_dir(tmp_path):
    return write_sample_run(tmp_path / "20261123-100000-000-hopital")


def _tamper_one_byte(bundle, member_suffix):
    """Rewrite the zip with one byte of one member flipped, as someone editing evidence would."""
    with zipfile.ZipFile(bundle) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(bundle, "w") as target:
        for info, data in members:
            if info.filename.endswith(member_suffix):
                data = bytes([data[0] ^ 1]) + data[1:]
            target.writestr(info, data)


def test_bundle_then_verify_then_tamper(run_dir, tmp_path):
    bundle = tmp_path / "dossier.zip"
    done = segur("report", "bundle", str(run_dir), "--out", str(bundle), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    verified = segur("report", "verify", str(bundle), cwd=tmp_path)
    assert verified.returncode == 0 and "intègre" in verified.stdout
    _tamper_one_byte(bundle, "-request.http")
    tampered = segur("report", "verify", str(bundle), cwd=tmp_path)
    assert tampered.returncode == 1
    assert "ALTÉRÉ" in tampered.stdout and "modifié : evidence/" in tampered.stdout


def test_signed_bundle_verifies_against_the_ca(run_dir, tmp_path, pki):
    bundle = tmp_path / "signe.zip"
    done = segur(
        "report", "bundle", str(run_dir), "--out", str(bundle),
        "--sign-key", str(pki.key("sign")), "--sign-cert", str(pki.cert("sign")), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    checked = segur("report", "verify", str(bundle), "--ca", str(pki.ca_cert), cwd=tmp_path)
    assert checked.returncode == 0 and "signé par" in checked.stdout, checked.stdout
    unchecked = segur("report", "verify", str(bundle), cwd=tmp_path)
    assert unchecked.returncode == 0 and "signature valide, signataire non vérifié (donnez --ca)" in unchecked.stdout
    wrong = segur("report", "verify", str(bundle), "--ca", str(pki.untrusted.ca_cert), cwd=tmp_path)
    assert wrong.returncode == 1 and "signature invalide" in wrong.stdout
    alone = segur("report", "bundle", str(run_dir), "--sign-key", str(pki.key("sign")), cwd=tmp_path)
    assert alone.returncode == 2 and "go together" in alone.stderr


def test_rem_import_then_export(run_dir, tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Référentiel synthétique"])
    sheet.append([*REM_COLUMNS[:-2], "N° scénario", "Scénario de conformité", "N° preuve 1", "Preuve 1"])
    row = ["", "DPI", "DMP", "Alimentation", "Envoi", "ITI-41", "EXIGENCE", "DMP/PROV.03", "Énoncé officiel"]
    sheet.append([*row, "DMP/PROV.03.01", "Scénario officiel", "DMP/PROV.03.01.01", "Preuve officielle"])
    workbook.save(tmp_path / "REM.xlsx")
    overlay = tmp_path / "rem.json"
    done = segur("exigences", "import", str(tmp_path / "REM.xlsx"), "--out", str(overlay), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 exigence(s)" in done.stdout and json.loads(overlay.read_text())["exigences"]
    out = tmp_path / "resultats.xlsx"
    exported = segur("report", "export", str(run_dir), "--out", str(out), "--rem", str(overlay), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = list(openpyxl.load_workbook(out)["Résultats"].iter_rows(values_only=True))
    official = [r for r in rows if "Preuve officielle" in r]
    assert official and "Non conforme" in official[0]
    refused = segur("exigences", "import", str(run_dir / "rapport.json"), cwd=tmp_path)
    assert refused.returncode == 2


def test_compare_gates_on_regression(run_dir, tmp_path):
    same = segur("report", "compare", str(run_dir), str(run_dir / "rapport.json"), cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    better = sample_report()
    worse = json.loads(json.dumps(better))
    next(e for e in worse["exigences"] if e["id"] == "INS/va1.02")["statut"] = "non_conforme"
    newer = write_sample_run(tmp_path / "newer", worse)
    regressed = segur("report", "compare", str(run_dir), str(newer), "--format", "json", cwd=tmp_path)
    assert regressed.returncode == 1
    assert "INS/va1.02" in regressed.stdout
    unreadable = segur("report", "compare", str(tmp_path / "absent"), str(newer), cwd=tmp_path)
    assert unreadable.returncode == 2


def test_coverage_csv(tmp_path):
    done = segur("report", "coverage", "--couloir", "ville", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    kinds = {row["verification"] for row in rows}
    assert {"automatique", "manuelle", "externe"} <= kinds
    assert any(row["exigence"] == "INS/va1.38" and row["preuve"] for row in rows)
