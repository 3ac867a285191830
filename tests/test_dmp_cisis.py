"""The DMP mock with the user's CI-SIS package (`segur run --cisis DIR`): each CDA it receives also meets the
package's schema and official Schematrons, inline or in a worker, and the report names the package applied.

The package is a fake one the test writes, laid out as the ANS TestContenuCDA package (no ANS file here).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dmp_requests import DOMINIQUE, cda, client, submission
from test_cisis_package import XSD

from conftest import RunningDmp, serve
from segur.cisis import CisisPackage
from segur.ins import OID_INS_NIR_TEST
from segur.mocks.dmp import DmpMock
from segur.mocks.runtime.http import Limits
from segur.pki import Pki
from segur.reference_sut.dmp_client import DmpError

N1_FORMAT = "urn:ihe:iti:xds-sd:pdf:2008"
FORBIDDEN = "INTERDIT"
PROFILE = f"""<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <ns prefix="cda" uri="urn:hl7-org:v3"/>
  <pattern id="IHE"><rule context="cda:ClinicalDocument">
    <assert id="TEST-TITRE" test="not(contains(cda:title, '{FORBIDDEN}'))">the title says {FORBIDDEN}</assert>
  </rule></pattern>
</schema>"""


def write_package(folder: Path) -> Path:
    for name, text in {
        "infrastructure/cda/CDA_extended.xsd": XSD,
        "jeuxDeValeurs/README": "no value set: the package decides which bindings apply",
        "schematrons/profils/IHE.sch": PROFILE,
    }.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=[0, 1], ids=["inline", "worker"])
def checked_dmp(request: pytest.FixtureRequest, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    package = write_package(tmp_path_factory.mktemp("cisis"))
    limits = Limits(max_body=2_000_000, handshake_timeout=2.0, idle_timeout=5.0, read_timeout=2.0)
    mock = DmpMock(pki, workers=request.param, cisis=package)  # the host stops the worker with the mock
    yield from serve(mock, pki, tmp_path_factory.mktemp("journal"), limits, RunningDmp)


def publish(running: RunningDmp, **changes: object) -> dict:
    dpi = client(running)
    try:
        lot = submission(running.pki, cda(DOMINIQUE, **changes), format_code=N1_FORMAT)
        since = running.last_seq()
        try:
            dpi.provide_and_register(lot.request, lot.documents, DOMINIQUE, OID_INS_NIR_TEST)
        except DmpError as error:
            return {"codes": error.codes, "record": running.journal_since(since)[-1]}
        return {"codes": [], "record": running.journal_since(since)[-1]}
    finally:
        dpi.close()


def test_a_document_the_official_schematrons_accept_is_filed_and_says_which_ran(checked_dmp: RunningDmp) -> None:
    outcome = publish(checked_dmp, document_id="1.2.250.1.999.1.1.7.1")
    assert outcome["codes"] == []
    rules = {finding["rule"]: finding for finding in outcome["record"]["outcome"]["findings"]}
    assert "profils/IHE.sch" in rules["InvalidDocumentContent:CISIS-SCHEMATRONS"]["message"]


def test_a_document_an_official_schematron_refuses_gets_a_registry_error(checked_dmp: RunningDmp) -> None:
    outcome = publish(checked_dmp, document_id="1.2.250.1.999.1.1.7.2", title=f"Lettre {FORBIDDEN}")
    assert "InvalidDocumentContent" in outcome["codes"]
    assert outcome["record"]["outcome"]["status"] == "Failure"
    errors = {f["rule"] for f in outcome["record"]["outcome"]["findings"] if f["severity"] == "error"}
    assert errors == {"InvalidDocumentContent:TEST-TITRE"}


def test_the_package_version_names_the_folder_its_commit_and_a_digest_of_its_rules(tmp_path: Path) -> None:
    package = write_package(tmp_path / "TestContenuCDA-3-0")
    first = CisisPackage(package).version()
    assert first.startswith("TestContenuCDA-3-0: 1 schematron(s), sha256 ")
    (package / ".git" / "refs" / "heads").mkdir(parents=True)
    (package / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="ascii")
    (package / ".git" / "refs" / "heads" / "main").write_text("7cd489b" + "0" * 33 + "\n", encoding="ascii")
    assert CisisPackage(package).version() == first.replace(":", " (git 7cd489b00000):", 1)
    (package / "schematrons" / "profils" / "IHE.sch").write_text(PROFILE.replace("TEST-TITRE", "AUTRE"), "utf-8")
    assert CisisPackage(package).version().rsplit(" ", 1)[1] != first.rsplit(" ", 1)[1]
