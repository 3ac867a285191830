"""The evidence bundle: what it holds, that any change to it is caught, that secrets never leave in it."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from report_samples import RAW_SECRETS, write_sample_run

from segur.reports import bundle as bundle_module
from segur.reports.bundle import (
    MANIFEST,
    RAW_JOURNAL,
    RAW_JOURNAL_WARNING,
    SIGNATURE,
    BundleError,
    ManifestSigner,
    verify_bundle,
    write_bundle,
)

EVIDENCE = "evidence/DMP_PROV.03.01/0002-dmp-iti-41-request.http"
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl absent")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = write_sample_run(tmp_path / "run-2026-11-23")
    (run / "replay.json").write_text('{"sut": {"name": "LOGICIEL TEST", "client_id": "segur-sut"}}')
    (run / "allure-results").mkdir()
    (run / "allure-results" / "0001-result.json").write_text('{"name": "INS/va1.02", "status": "passed"}')
    return run


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rewrite(bundle: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """Rewrite the zip with ``change`` applied to its {name: bytes} (a valid zip: only the manifest can tell)."""
    content = members(bundle)
    change(content)
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in content.items():
            archive.writestr(name, data)


def test_the_bundle_holds_report_evidence_and_a_manifest_of_every_other_member(run_dir):
    bundle = write_bundle(run_dir)
    assert bundle == run_dir.with_name("run-2026-11-23.zip")
    content = members(bundle)
    top = "run-2026-11-23/"
    names = {name.removeprefix(top) for name in content}
    assert all(name.startswith(top) for name in content)
    assert names == {
        "rapport.html", "rapport.json", "junit.xml", "replay.json", "allure-results/0001-result.json", MANIFEST,
        EVIDENCE, EVIDENCE.replace("request", "response"),
        "evidence/INS_va1.02.01/0001-dmp-iti-41-request.http", "evidence/INS_va1.02.01/0001-dmp-iti-41-response.http",
    }  # fmt: skip
    assert RAW_JOURNAL not in names, "the raw journal holds secrets: left out by default"
    lines = content[top + MANIFEST].decode().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == sorted(names - {MANIFEST}), "sorted, every other member"
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(content[top + name]).hexdigest() == digest


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum absent")
def test_a_reviewer_checks_the_unzipped_bundle_with_sha256sum(run_dir, tmp_path):
    with zipfile.ZipFile(write_bundle(run_dir)) as archive:
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / run_dir.name
    result = subprocess.run(["sha256sum", "--check", "--strict", MANIFEST], cwd=folder, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    (folder / EVIDENCE).write_bytes(b"X" + (folder / EVIDENCE).read_bytes()[1:])
    assert subprocess.run(["sha256sum", "--check", "--quiet", MANIFEST], cwd=folder, capture_output=True).returncode


def test_an_untouched_bundle_verifies(run_dir):
    check = verify_bundle(write_bundle(run_dir))
    assert check.ok and check.problems == [] and check.files == 9
    assert check.signer is None and not check.raw_journal


def test_the_bundle_folder_is_created(run_dir, tmp_path):
    assert verify_bundle(write_bundle(run_dir, tmp_path / "dossier" / "ci" / "bundle.zip")).ok


def test_one_changed_byte_of_one_evidence_file_fails_verify_naming_that_file(run_dir):
    bundle = write_bundle(run_dir)
    name = f"{run_dir.name}/{EVIDENCE}"

    def flip_one_byte(content: dict[str, bytes]) -> None:
        data = bytearray(content[name])
        data[10] ^= 0x01
        content[name] = bytes(data)

    rewrite(bundle, flip_one_byte)
    check = verify_bundle(bundle)
    assert not check.ok and check.problems == [f"modifié : {EVIDENCE}"]


def _add_member(content: dict[str, bytes]) -> None:
    content["run-2026-11-23/evidence/ajout.txt"] = b"ajout"


def _remove_member(content: dict[str, bytes]) -> None:
    del content["run-2026-11-23/junit.xml"]


def _edit_manifest(content: dict[str, bytes]) -> None:
    name = f"run-2026-11-23/{MANIFEST}"
    lines = content[name].decode().splitlines(keepends=True)
    content[name] = "".join(line if "rapport.json" not in line else "0" * 64 + line[64:] for line in lines).encode()


def _drop_manifest_line(content: dict[str, bytes]) -> None:
    name = f"run-2026-11-23/{MANIFEST}"
    content[name] = b"".join(line for line in content[name].splitlines(True) if b"replay.json" not in line)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_add_member, "absent du manifeste : evidence/ajout.txt"),
        (_remove_member, "manquant : junit.xml"),
        (_edit_manifest, "modifié : rapport.json"),
        (_drop_manifest_line, "absent du manifeste : replay.json"),
    ],
)
def test_added_removed_members_and_an_edited_manifest_are_caught(run_dir, change, problem):
    bundle = write_bundle(run_dir)
    rewrite(bundle, change)
    assert verify_bundle(bundle).problems == [problem]


@needs_openssl
def test_a_signed_bundle_verifies_with_its_ca_and_only_with_it(run_dir, pki):
    signer = ManifestSigner.from_files(pki.key("sign"), pki.cert("sign"))
    bundle = write_bundle(run_dir, signer=signer)
    assert f"{run_dir.name}/{SIGNATURE}" in members(bundle)
    unchecked = verify_bundle(bundle)
    assert unchecked.ok and unchecked.signer == signer.subject
    assert unchecked.notes == [f"signé par {signer.subject} ; signature valide, signataire non vérifié (donnez --ca)"]
    checked = verify_bundle(bundle, ca=pki.ca_cert)
    assert checked.ok, checked.problems
    assert checked.signer == signer.subject
    other_ca = verify_bundle(bundle, ca=pki.untrusted.ca_cert)
    assert [p.split(" (")[0] for p in other_ca.problems] == [f"signature invalide : {SIGNATURE}"]
    assert "unable to get local issuer certificate" in other_ca.problems[0]


@needs_openssl
def test_a_forged_verdict_with_a_matching_manifest_is_caught_by_the_signature(run_dir, pki):
    bundle = write_bundle(run_dir, signer=ManifestSigner.from_files(pki.key("sign"), pki.cert("sign")))
    report, manifest = f"{run_dir.name}/rapport.json", f"{run_dir.name}/{MANIFEST}"

    def forge(content: dict[str, bytes]) -> None:
        forged = content[report].replace(b'"verdict": "non_conforme"', b'"verdict": "conforme"')
        old, new = (hashlib.sha256(data).hexdigest().encode() for data in (content[report], forged))
        content[report], content[manifest] = forged, content[manifest].replace(old, new)

    rewrite(bundle, forge)
    for ca in (None, pki.ca_cert):
        check = verify_bundle(bundle, ca=ca)
        assert check.problems == [f"signature invalide : {SIGNATURE} (content verify error)"], ca
        assert check.signer is None, "no signer is named for a signature that does not hold"


@needs_openssl
def test_a_manifest_re_signed_with_another_key_passes_only_as_an_unchecked_signer(run_dir, pki):
    other = ManifestSigner.from_files(pki.untrusted.key("insi-auto"), pki.untrusted.cert("insi-auto"))
    bundle = write_bundle(run_dir, signer=other)
    unchecked = verify_bundle(bundle)
    assert unchecked.ok and unchecked.signer == other.subject, "a valid signature, by whoever holds that key"
    assert unchecked.notes[0].endswith("signataire non vérifié (donnez --ca)")
    assert [p.split(" (")[0] for p in verify_bundle(bundle, ca=pki.ca_cert).problems] == [
        f"signature invalide : {SIGNATURE}"
    ]


def test_without_openssl_a_signature_is_never_reported_fine(run_dir, pki, monkeypatch):
    bundle = write_bundle(run_dir, signer=ManifestSigner.from_files(pki.key("sign"), pki.cert("sign")))
    monkeypatch.setattr(bundle_module.shutil, "which", lambda name: None)
    for ca in (None, pki.ca_cert):
        check = verify_bundle(bundle, ca=ca)
        assert check.problems == [f"signature non vérifiable : {SIGNATURE} (commande openssl introuvable)"]
        assert check.signer is None and not check.ok


def test_an_unsigned_bundle_fails_when_a_ca_is_required(run_dir, pki):
    check = verify_bundle(write_bundle(run_dir), ca=pki.ca_cert)
    assert check.problems == [f"signature absente : {SIGNATURE} (--ca donné)"]


def test_a_wrong_key_or_password_is_a_clear_error(pki):
    with pytest.raises(BundleError, match="ne correspond pas"):
        ManifestSigner.from_files(pki.key("sign"), pki.cert("auth-cli"))
    with pytest.raises(BundleError, match="illisible"):
        ManifestSigner.from_files(pki.key("sign"), pki.cert("sign"), password=b"inutile")


def test_two_bundles_of_the_same_run_are_byte_identical(run_dir, tmp_path):
    first, second = write_bundle(run_dir, tmp_path / "a.zip"), write_bundle(run_dir, tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    assert {info.date_time for info in infos} == {(2026, 11, 23, 10, 0, 0)}
    assert {stat.S_IMODE(info.external_attr >> 16) for info in infos} == {0o644}


def test_secrets_and_private_keys_never_reach_the_bundle(run_dir, pki):
    pem = pki.key("sign").read_bytes()
    planted = run_dir / "evidence" / "DMP_PROV.03.01" / "0003-psc-token-request.http"
    planted.write_bytes(
        b"POST /token HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
        b"grant_type=refresh_token&client_id=segur-sut&client_secret=%s&refresh_token=%s\r\n"
        % (RAW_SECRETS["client_secret"].encode(), RAW_SECRETS["access_token"].encode())
    )
    (run_dir / "evidence" / "DMP_PROV.03.01" / "0004-sut-config.txt").write_bytes(
        b"mss:\n  adresse: dpi@hopital-test.mssante.fr\n  password: %s\ncle: |\n%s"
        % (RAW_SECRETS["password"].encode(), pem)
    )
    replay = {"sut": {"client_id": "segur-sut", "client_secret": RAW_SECRETS["client_secret"]}}
    (run_dir / "replay.json").write_text(json.dumps(replay))
    shown = b"".join(members(write_bundle(run_dir)).values())
    for secret in [*RAW_SECRETS.values(), "c2lnbmF0dXJlLXNlY3JldA"]:
        assert secret.encode() not in shown, secret
    body = [line for line in pem.splitlines() if not line.startswith(b"-----")]
    assert not any(line in shown for line in body), "no line of the private key"
    assert b"-----BEGIN PRIVATE KEY-----[masque]-----END PRIVATE KEY-----" in shown
    assert b"client_id=segur-sut" in shown and b"adresse: dpi@hopital-test.mssante.fr" in shown


def test_binary_members_pass_unchanged(run_dir):
    image = b"\x89PNG\r\n\x1a\npassword=abcdefgh\x00"
    (run_dir / "allure-results" / "capture.png").write_bytes(image)
    assert members(write_bundle(run_dir))[f"{run_dir.name}/allure-results/capture.png"] == image


def test_the_raw_journal_goes_in_only_when_asked_and_is_flagged(run_dir):
    bundle = write_bundle(run_dir, include_raw_journal=True)
    content = members(bundle)
    journal = (run_dir / RAW_JOURNAL).read_bytes()
    assert content[f"{run_dir.name}/{RAW_JOURNAL}"] == journal and RAW_SECRETS["password"].encode() in journal
    assert b"NON MASQU" in content[f"{run_dir.name}/{RAW_JOURNAL_WARNING}"]
    assert f"  {RAW_JOURNAL_WARNING}\n" in content[f"{run_dir.name}/{MANIFEST}"].decode()
    check = verify_bundle(bundle)
    assert check.ok and check.raw_journal and any("NON MASQUÉ" in note for note in check.notes)


def test_links_leaving_the_run_dir_are_refused_and_links_inside_are_followed(run_dir, tmp_path):
    (run_dir / "evidence" / "copie.http").symlink_to(run_dir / EVIDENCE)
    (run_dir / "evidence" / "journal-bis.jsonl").symlink_to(run_dir / RAW_JOURNAL)
    names = members(write_bundle(run_dir))
    assert f"{run_dir.name}/evidence/copie.http" in names
    assert f"{run_dir.name}/evidence/journal-bis.jsonl" not in names, "the raw journal under another name"
    (tmp_path / "ailleurs.txt").write_text("hors du run")
    (run_dir / "evidence" / "fuite.txt").symlink_to(tmp_path / "ailleurs.txt")
    with pytest.raises(BundleError, match="hors du dossier de run"):
        write_bundle(run_dir)


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(BundleError, match=r"rapport\.json"):
        write_bundle(write_sample_run(tmp_path / "run").joinpath("evidence"))


def _zip(path: Path, entries: list[zipfile.ZipInfo | str], data: bytes = b"x") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            archive.writestr(entry, data)
    return path


def _symlink_member() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("run/evidence/lien")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (["run/MANIFEST.sha256", "run/../../etc/cron.d/x"], "chemin refusé : run/../../etc/cron.d/x"),
        (["run/MANIFEST.sha256", "/etc/passwd"], "chemin refusé : /etc/passwd"),
        (["run/MANIFEST.sha256", "run\\..\\x"], "chemin refusé : run\\..\\x"),
        (["run/MANIFEST.sha256", "autre/x"], "hors du dossier racine : autre/x"),
        (["run/MANIFEST.sha256", "x"], "hors du dossier racine : x"),
        (["run/MANIFEST.sha256", _symlink_member()], "lien symbolique refusé : run/evidence/lien"),
    ],
)
def test_zip_traversal_is_refused_before_anything_is_read(tmp_path, entries, problem):
    check = verify_bundle(_zip(tmp_path / "piege.zip", entries))
    assert not check.ok and problem in check.problems and check.files == 0


def test_zip_bombs_are_refused(tmp_path, monkeypatch):
    bomb = _zip(tmp_path / "bombe.zip", ["run/MANIFEST.sha256", "run/evidence/zeros"], b"\0" * (3 << 20))
    assert verify_bundle(bomb).problems == [
        "taux de compression suspect : run/MANIFEST.sha256",
        "taux de compression suspect : run/evidence/zeros",
    ]
    monkeypatch.setattr(bundle_module, "MAX_TOTAL_SIZE", 1 << 20)
    assert verify_bundle(bomb).problems[0].startswith("taille décompressée excessive")


def test_a_file_that_is_not_a_zip_is_a_problem_not_a_crash(tmp_path):
    (tmp_path / "faux.zip").write_bytes(b"pas un zip")
    assert verify_bundle(tmp_path / "faux.zip").problems[0].startswith("archive illisible")
