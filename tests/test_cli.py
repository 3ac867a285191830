"""The documented command line: catalogue, defects, PKI, mocks up, exit codes, adapters."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys

import httpx
import pytest
from harness_runs import TESTS, run_couloir, segur, statuses
from test_dmp_cisis import write_package

from segur.journal import payload, read_journal
from segur.reference_sut.defects import DEFECTS


def test_exigences_csv_lists_the_couloir_catalogue(tmp_path):
    done = segur("exigences", "--couloir", "hopital", "--format", "csv", cwd=tmp_path)
    assert done.returncode == 0
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {"INS/va1.38", "INS/va1.58", "INS/PROV.09"} <= {row["id"] for row in rows}
    assert {row["verification"] for row in rows} == {"automatique", "manuelle", "externe"}


def test_sut_defects_json_names_each_defect_and_what_it_breaks(tmp_path):
    done = segur("sut", "defects", "--json", cwd=tmp_path)
    listed = {item["name"]: item for item in json.loads(done.stdout)}
    assert set(listed) == set(DEFECTS)
    assert listed["ins-no-key-check"]["breaks"] == ["INS/PROV.03"]


def test_pki_init_writes_pem_and_pkcs12(tmp_path):
    done = segur("pki", "init", str(tmp_path / "pki"), cwd=tmp_path)
    described = json.loads(done.stdout)
    auto = described["certificates"]["insi-auto"]
    assert auto["cn"] == "INSI-AUTO"
    assert all(os.path.exists(auto[kind]) for kind in ("cert", "key", "pkcs12"))


def test_report_allure_without_a_cli_says_how_to_get_one(tmp_path):
    (tmp_path / "run" / "allure-results").mkdir(parents=True)
    env = {"PATH": os.path.dirname(sys.executable), "SEGUR_ALLURE": ""}
    done = segur("report", "allure", str(tmp_path / "run"), cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "npm install --prefix .segur/tools/allure allure@3" in done.stdout


def test_usage_errors_exit_2(tmp_path):
    assert segur("run", "--couloir", "hopital", "--sut", "reference:nope", cwd=tmp_path).returncode == 2
    assert (
        segur("run", "--couloir", "hopital", "--sut", "ftp://x", "--out", str(tmp_path / "o"), cwd=tmp_path).returncode
        == 2
    )
    assert segur("run", "--couloir", "mars", cwd=tmp_path).returncode == 2


def test_unreachable_sut_exits_3(tmp_path, pki):
    code, _ = run_couloir("hopital", "http://127.0.0.1:9", tmp_path / "run", pki.directory)
    assert code == 3


def test_mocks_up_prints_endpoints_then_serves_until_terminated(tmp_path, pki):
    process = subprocess.Popen(
        [sys.executable, "-m", "segur.cli", "mocks", "up", "--only", "insi", "--pki", str(pki.directory),
         "--journal", str(tmp_path / "journal.jsonl")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        described = json.loads(process.stdout.readline())
        assert described["mocks"]["insi"]["endpoints"][0].endswith("/lps")
        assert described["pki"]["certificates"]["insi-manu"]["cn"] == "INSI-MANU"
        assert httpx.get(described["control"] + "/health").json() == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_python_adapter_runs_an_importable_class(tmp_path, pki):
    code, report = run_couloir(
        "hopital", "python:python_sut_example:ReferenceInProcess", tmp_path / "run", pki.directory
    )
    assert code == 0, report
    assert report["sut"]["adapter"] == "python"


def test_manual_adapter_without_operator_marks_requirements_non_teste(tmp_path, pki):
    code, report = run_couloir("hopital", "manual", tmp_path / "run", pki.directory, "--manual-timeout", "0.2")
    assert code == 1
    found = statuses(report)
    assert found["INS/va1.38"] == "non_teste"
    reasons = " ".join(m for e in report["exigences"] for m in e["messages"])
    assert "no_traffic" in reasons or "observation manuelle" in reasons


@pytest.mark.parametrize(("answer", "expected"), [("o", "conforme"), ("n", "non_conforme")])
def test_manual_adapter_asks_the_operator_what_it_cannot_observe(tmp_path, pki, answer, expected):
    """A scripted operator: Enter after each instruction, then the same answer to every yes/no question.

    Nobody really calls INSi, so traffic-based requirements stay non_teste; the anteriority search
    (INS/va1.02) is judged only from the operator's answer, never from the adapter's own patient ids.
    """
    code, report = run_couloir(
        "hopital", "manual", tmp_path / "run", pki.directory, "--manual-timeout", "0.1", "--interactive",
        stdin=f"{answer}\n" * 400,
    )  # fmt: skip
    assert code == 1, report
    found = statuses(report)
    assert found["INS/va1.02"] == expected
    assert found["INS/va1.38"] == "non_teste"


@pytest.mark.parametrize("command", [["run", "--couloir", "ville", "--quiet"], ["mocks", "up", "--only", "dmp"]])
def test_a_cisis_folder_that_is_no_package_is_a_usage_error(tmp_path, pki, command):
    """Refused before any mock listens or any scenario runs, saying what the folder lacks."""
    done = segur(*command, "--pki", str(pki.directory), "--cisis", str(tmp_path / "nothing"), cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "is not a CI-SIS package: infrastructure/cda/CDA_extended.xsd is missing" in done.stderr


@pytest.mark.timeout(300)  # a couloir run plus the Allure CLI, on a shared 2-core machine
def test_run_directory_holds_every_artefact(tmp_path, pki):
    """One ville run, with a (fake) CI-SIS package so that the package it applied is named and replayable too."""
    out = tmp_path / "run"
    package = write_package(tmp_path / "TestContenuCDA")
    code, report = run_couloir("ville", "reference", out, pki.directory, "--cisis", str(package))
    assert code == 0
    assert report["versions"]["schematron"].startswith("TestContenuCDA: 1 schematron(s), sha256 ")
    assert report["versions"]["schematron"] in (out / "rapport.html").read_text()
    assert f"--cisis {package}" in json.loads((out / "replay.json").read_text())["commande"]
    for name in ("rapport.json", "rapport.html", "junit.xml", "evidence/journal.jsonl"):
        assert (out / name).is_file(), name
    assert list((out / "allure-results").glob("*-result.json"))
    assert (tmp_path / "latest").resolve() == out.resolve()
    entry = next(e for e in report["exigences"] if e["id"] == "INS/va1.38")
    proof = entry["preuves"][0]
    assert proof["id"] == "INS/va1.38.01.01"
    request_file = out / proof["echanges"][0]["request"]
    assert b"RECSANSVITALE" in request_file.read_bytes()
    html = (out / "rapport.html").read_text()
    assert "Conforme" in html and "INS/va1.38" in html and "<script" in html and "//" not in html.split("<body")[0]
    for key in ("harness_version", "catalogue_version", "sut", "started", "ended", "verdict", "summary"):
        assert key in report
    allure = " ".join(p.read_text() for p in (out / "allure-results").glob("*-result.json"))
    assert '"story"' in allure and "INS/va1.38" in allure and "couloir ville" in allure
    assert "ScenarioContext" not in allure, "fixtures must not show up as Allure step parameters"
    assert_no_token_leaves_the_raw_journal(out)
    for result in (out / "allure-results").glob("*-result.json"):
        names = [p["name"] for p in json.loads(result.read_text()).get("parameters", [])]
        assert len(names) == len(set(names)), f"duplicate Allure parameters {names}"
    assert_allure_results_tell_the_requirement_story(out / "allure-results")
    assert_allure_cli_renders(out)


def assert_allure_results_tell_the_requirement_story(results):
    """Epic = couloir, feature = socle, story = requirement, severity from criticité, a link, parameters,
    data tables and exchanges attached, and the run's environment."""
    by_story = {}
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        labels = {(label["name"], label["value"]) for label in result["labels"]}
        for name, value in labels:
            if name == "story":
                by_story.setdefault(value.split()[0], []).append((result, labels))
    result, labels = by_story["DMP/PROV.01"][0]
    assert {("epic", "couloir ville"), ("feature", "DMP"), ("severity", "critical")} <= labels
    link = next(link for link in result["links"] if link["name"] == "DMP/PROV.01")
    assert link["url"] == "../rapport.html#exigence-DMP_PROV.01"
    assert "id='exigence-DMP_PROV.01'" in (results.parent / "rapport.html").read_text(), "the link lands on the row"
    assert any(a["name"].startswith("#") and "dmp" in a["name"] for a in result["attachments"]), "no exchange"
    everything = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert any(r.get("parameters") for r in everything), "Scenario Outline examples are Allure parameters"
    step_attachments = [a for r in everything for step in r.get("steps", []) for a in step.get("attachments", [])]
    assert any(a["name"] == "Data table" for a in step_attachments), "data tables are attached to their step"
    applicable = {e["id"] for e in json.loads((results.parent / "rapport.json").read_text())["exigences"]
                  if e["statut"] != "non_applicable"}  # fmt: skip
    assert applicable == set(by_story), "every applicable requirement is an Allure story, with or without scenario"
    properties = (results / "environment.properties").read_text(encoding="ascii")
    assert "Couloir=ville" in properties and "Catalogue=" in properties and "Jeux\\ de\\ valeurs=" in properties


def assert_allure_cli_renders(out):
    """`segur report allure` with the npm Allure 3 CLI that scripts/ensure-allure installs (make test runs it)."""
    cli = TESTS.parent / ".segur/tools/allure/node_modules/.bin/allure"
    if not cli.is_file():
        if os.environ.get("SEGUR_SKIP_ALLURE") == "1":
            return
        pytest.fail("no Allure CLI: run scripts/ensure-allure (or set SEGUR_SKIP_ALLURE=1 to skip explicitly)")
    done = segur("report", "allure", str(out), "--allure", str(cli), cwd=out.parent)
    assert done.returncode == 0, done.stderr + done.stdout
    environment = json.loads((out / "allure-report" / "widgets" / "allure_environment.json").read_text())
    assert {"name": "Couloir", "values": ["ville"]} in environment
    assert (out / "allure-report" / "index.html").is_file()


def test_tests_dir_is_where_python_sut_example_lives():
    assert (TESTS / "python_sut_example.py").exists()


def assert_no_token_leaves_the_raw_journal(out):
    """Every PSC token and client secret of the run is in journal.jsonl only, never in shared files."""
    secrets = {b"segur-sut-secret"}
    for record in read_journal(out / "evidence" / "journal.jsonl"):
        if record["operation"] == "token" and not record["outcome"].get("error"):
            answer = json.loads(payload(record, "response").split(b"\r\n\r\n", 1)[1])
            secrets |= {answer[k].encode().rsplit(b".", 1)[-1] for k in ("access_token", "refresh_token", "id_token")}
    assert len(secrets) > 3, "the run issued no PSC token"
    shared = [p for p in out.rglob("*") if p.is_file() and p.name != "journal.jsonl"]
    for path in shared:
        content = path.read_bytes()
        leaked = [s[:8] for s in secrets if s in content]
        assert not leaked, f"{path.relative_to(out)} holds raw credentials {leaked}"
