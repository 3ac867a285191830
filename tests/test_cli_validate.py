"""``segur validate cda``: exit codes, text and JSON reports (run in-process: it is pure parsing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cda_samples import n1_document, remove, set_attribute, structured_document

from segur.cli import main

CISIS = Path(__file__).resolve().parents[2] / "shared" / "cisis"


@pytest.fixture
def files(tmp_path):
    valid = tmp_path / "vsm.xml"
    valid.write_bytes(structured_document())
    invalid = tmp_path / "n1-bad.xml"
    invalid.write_bytes(set_attribute("hl7:confidentialityCode", "code", "X")(n1_document()))
    warned = tmp_path / "minute.xml"
    warned.write_bytes(set_attribute("hl7:effectiveTime", "value", "202401151030+0100")(structured_document()))
    malformed = tmp_path / "truncated.xml"
    malformed.write_bytes(structured_document()[:100])
    return {"valid": valid, "invalid": invalid, "warned": warned, "malformed": malformed}


def test_valid_documents_exit_0_with_a_summary(files, capsys):
    assert main(["validate", "cda", str(files["valid"]), str(files["warned"])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "2 file(s), 0 error(s), 1 warning(s)"
    assert (
        out[0].startswith(f"{files['warned']}:")
        and " warning CDA-SM-012 /hl7:ClinicalDocument/hl7:effectiveTime " in out[0]
    )


def test_an_error_in_any_file_exits_1_and_names_file_line_rule_and_xpath(files, capsys):
    assert main(["validate", "cda", str(files["valid"]), str(files["invalid"])]) == 1
    [line, summary] = capsys.readouterr().out.splitlines()
    source_line = next(
        number
        for number, text in enumerate(files["invalid"].read_text().splitlines(), start=1)
        if "<confidentialityCode" in text
    )
    prefix = f"{files['invalid']}:{source_line} error CDA-SM-013 /hl7:ClinicalDocument/hl7:confidentialityCode "
    assert line.startswith(prefix)
    assert summary == "2 file(s), 1 error(s), 0 warning(s)"


def test_json_report_lists_every_file_and_counts_errors(files, capsys):
    paths = [str(files[name]) for name in ("valid", "invalid", "malformed")]
    assert main(["validate", "cda", *paths, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 2
    assert [entry["file"] for entry in report["files"]] == paths
    assert report["files"][0]["findings"] == []
    [finding] = report["files"][1]["findings"]
    assert finding["rule"] == "CDA-SM-013"
    assert finding["location"] == "/hl7:ClinicalDocument/hl7:confidentialityCode"
    assert isinstance(finding["line"], int)
    [malformed] = report["files"][2]["findings"]
    assert (malformed["rule"], malformed["severity"], malformed["line"]) == ("CDA-XML-002", "error", None)


def test_missing_file_is_a_usage_error(files, tmp_path, capsys):
    assert main(["validate", "cda", str(files["valid"]), str(tmp_path / "absent.xml")]) == 2
    assert "absent.xml" in capsys.readouterr().err


def test_a_folder_that_is_not_a_cisis_package_is_a_usage_error(files, tmp_path):
    assert main(["validate", "cda", str(files["valid"]), "--cisis", str(tmp_path)]) == 2


@pytest.mark.shared
@pytest.mark.skipif(not CISIS.is_dir(), reason=f"CI-SIS material not found in {CISIS}")
def test_cisis_package_adds_its_schema_and_value_sets(files, tmp_path, capsys):
    no_id = tmp_path / "no-id.xml"
    no_id.write_bytes(remove("hl7:id")(structured_document()))
    not_j02 = tmp_path / "not-j02.xml"
    facility = "hl7:componentOf//hl7:healthCareFacility/hl7:code"
    not_j02.write_bytes(set_attribute(facility, "code", "SA99")(structured_document()))
    paths = [str(files["valid"]), str(no_id), str(not_j02)]
    assert main(["validate", "cda", *paths, "--cisis", str(CISIS), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    by_file = [
        {finding["rule"] for finding in entry["findings"] if finding["severity"] == "error"}
        for entry in report["files"]
    ]
    assert by_file[0] == set()
    assert "CDA-XSD-ELEMENT_CONTENT" in by_file[1]
    assert by_file[2] == {"CDA-VS-002"}


def test_unknown_artefact_is_a_usage_error(files):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "pdf", str(files["valid"])])
    assert exit_info.value.code == 2


def test_validate_vihf_accepts_the_reference_vihf_and_refuses_a_tampered_one(tmp_path, pki, capsys):
    from dmp_requests import DOMINIQUE, vihf_factory
    from lxml import etree

    security = vihf_factory(pki)(DOMINIQUE, "1.2.250.1.213.1.4.10", "normal")
    good = tmp_path / "vihf.xml"
    good.write_bytes(etree.tostring(security))
    assert main(["validate", "vihf", str(good), "--pki", str(pki.directory)]) == 0
    capsys.readouterr()
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(etree.tostring(security).replace(b"HOMOL-TEST-0001", b"HOMOL-TEST-0002"))
    assert main(["validate", "vihf", str(tampered), "--pki", str(pki.directory), "--format", "json"]) == 1
    rules = {f["rule"] for f in json.loads(capsys.readouterr().out)["files"][0]["findings"]}
    assert any(rule.startswith("VIHF-SIGNATURE") for rule in rules), rules


def test_validate_xds_checks_a_submission_with_inline_documents(tmp_path, pki, capsys):
    import base64

    from dmp_requests import cda, submission
    from lxml import etree

    lot = submission(pki, cda(), format_code="urn:ihe:iti:xds-sd:pdf:2008")
    for element in lot.request.findall("{urn:ihe:iti:xds-b:2007}Document"):
        element.text = base64.b64encode(lot.documents[element.get("id")]).decode()
    good = tmp_path / "iti41.xml"
    good.write_bytes(etree.tostring(lot.request))
    assert main(["validate", "xds", str(good), "--pki", str(pki.directory)]) == 0
    broken = tmp_path / "broken.xml"
    broken.write_bytes(etree.tostring(lot.request).replace(b"&amp;1.2.250.1.213.1.4.10&amp;", b"&amp;1.2.3&amp;"))
    assert main(["validate", "xds", str(broken), "--pki", str(pki.directory)]) == 1
    assert "error" in capsys.readouterr().out
