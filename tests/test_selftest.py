"""The self-test: the reference SUT is conforme, and every named defect is caught exactly.

Each defect's run must be non_conforme on the requirements it lists in ``breaks``,
non_teste on those in ``blocks``, and conforme on every other automatic requirement:
this is how we prove that each check can fail and that checks do not bleed into each other.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from harness_runs import run_couloir, statuses

from segur.catalogue import load_catalogue
from segur.reference_sut.defects import DEFECTS

CATALOGUE = load_catalogue()
AUTOMATIC = [e.id for e in CATALOGUE.exigences if e.verification == "automatique"]


def automatic_in(couloir: str) -> list[str]:
    """The automatic requirements of a couloir's REM (SC.MSS/CONF.27 is DPI only, for one)."""
    return [e.id for e in CATALOGUE.for_couloir(couloir) if e.verification == "automatique"]


@pytest.fixture(scope="module")
def defect_runs(tmp_path_factory, pki):
    """All defect runs at once (they are independent processes); hopital couloir."""
    root = tmp_path_factory.mktemp("defects")
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {
            name: pool.submit(
                run_couloir, "hopital", f"reference:{name}", root / name, pki.directory, "--mode", defect.mode
            )
            for name, defect in DEFECTS.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("couloir", ["hopital", "ville"])
def test_reference_sut_is_conforme(couloir, tmp_path, pki):
    code, report = run_couloir(couloir, "reference", tmp_path / "run", pki.directory)
    assert code == 0, report
    assert report["verdict"] == "conforme"
    found = statuses(report)
    assert all(found[identifier] == "conforme" for identifier in automatic_in(couloir)), found
    assert found["INS/PROV.08"] == "preuve_manuelle" and found["INS/PROV.10"] == "externe"


@pytest.mark.timeout(2700)  # the first one waits for all 72 defect runs (about 20 min on 2 cores)
@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_breaks_exactly_its_requirements(name, defect_runs):
    code, report = defect_runs[name]
    defect = DEFECTS[name]
    assert code == 1, report
    assert report["verdict"] == "non_conforme"
    found = statuses(report)
    expected = {
        identifier: "non_conforme"
        if identifier in defect.breaks
        else "non_teste"
        if identifier in defect.blocks
        else "conforme"
        for identifier in AUTOMATIC
    }
    assert {identifier: found[identifier] for identifier in AUTOMATIC} == expected


@pytest.mark.parametrize("name", sorted(n for n, d in DEFECTS.items() if d.mode == "homologation"))
def test_homologation_defect_only_warns_in_bac_a_sable(name, tmp_path, pki):
    """Warnings are shown but do not decide in the default mode: the same run is conforme there."""
    code, report = run_couloir("hopital", f"reference:{name}", tmp_path / "run", pki.directory)
    assert code == 0, report
    assert report["mode"] == "bac-a-sable"
    warned = [
        finding
        for entry in report["exigences"]
        if entry["id"] in DEFECTS[name].breaks
        for scenario in entry["scenarios"]
        for finding in scenario["constats"]
        if finding["severity"] == "warning"
    ]
    assert warned, "the warning must be shown in bac-a-sable too"


def test_defect_run_ville_reports_the_broken_requirement(tmp_path, pki):
    code, report = run_couloir("ville", "reference:ins-no-key-check", tmp_path / "run", pki.directory)
    assert code == 1
    found = statuses(report)
    assert found["INS/PROV.03"] == "non_conforme"
    assert [i for i in automatic_in("ville") if found[i] != "conforme"] == ["INS/PROV.03"]
    failing = next(e for e in report["exigences"] if e["id"] == "INS/PROV.03")
    assert any("clé invalide" in m for m in failing["messages"]), failing["messages"]
    assert not any("\nassert " in m for m in failing["messages"]), "pytest's rewriting noise reached the report"


def test_every_automatic_requirement_has_a_defect_that_breaks_it():
    """A check no faulty SUT can fail proves nothing: each one needs its named defect."""
    broken = {identifier for defect in DEFECTS.values() for identifier in defect.breaks}
    assert [identifier for identifier in AUTOMATIC if identifier not in broken] == []
