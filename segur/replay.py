"""What a run needs to be replayed (replay.json), the SUT adapter config file, and homologation's preconditions.

A run attached to a référencement dossier must be reproducible by someone else: the reviewer
(or the vendor, a year later) needs the exact harness, catalogue, options, PKI and adapter
configuration. In ``homologation`` mode the adapter configuration must also be committed: a
result obtained with uncommitted settings cannot be traced back to anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

# Keys a SUT adapter config file may set, and what `segur run` option each stands for.
CONFIG_KEYS = {
    "sut": "--sut",
    "insi_idam": "--insi-idam",
    "psc_redirect_uris": "--psc-redirect-uri",
    "psc_post_logout_uris": "--psc-post-logout-uri",
    "manual_timeout": "--manual-timeout",
    "rem": "--rem",
    "cisis": "--cisis",
}
# Distributions whose versions change what the harness accepts or writes.
RECORDED_PACKAGES = ("segur-harness", "pytest", "pytest-bdd", "lxml", "signxml", "cryptography", "aiosmtpd", "saxonche")


def load_sut_config(path: Path) -> dict[str, Any]:
    """The vendor's adapter settings (YAML), checked key by key so a typo is an error, not a silent default."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read SUT config {path}: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"SUT config {path} must be a mapping of {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"SUT config {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(CONFIG_KEYS)}")
    for key in ("insi_idam", "psc_redirect_uris", "psc_post_logout_uris"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"SUT config {path}: {key} must be a list of strings")
    if "sut" in data and not isinstance(data["sut"], str):
        raise ValueError(f"SUT config {path}: sut must be a string such as http://127.0.0.1:8080")
    if "manual_timeout" in data and not isinstance(data["manual_timeout"], int | float):
        raise ValueError(f"SUT config {path}: manual_timeout must be a number of seconds")
    for key in ("rem", "cisis"):  # relative to the config file, as the vendor keeps both beside it
        if key in data:
            data[key] = str((path.parent / str(data[key])).resolve())
    return data


def adapter_files(sut: str, sut_config: Path | None) -> list[Path]:
    """The files that configure the adapter: the config file, and the module of a ``python:`` adapter."""
    files = [sut_config] if sut_config is not None else []
    if sut.startswith("python:"):
        spec = importlib.util.find_spec(sut.split(":")[1])
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            files.append(Path(spec.origin))
    return files


def git_state(path: Path) -> dict[str, Any] | None:
    """Commit and cleanliness of the working tree holding ``path``; None outside any git working tree."""
    folder = path.resolve().parent

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)

    try:
        head = git("rev-parse", "HEAD")
    except OSError:
        return None
    if head.returncode != 0:
        return None
    status = git("status", "--porcelain", "--", str(path.resolve()))
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip()) or status.returncode != 0}


def require_committed(files: list[Path]) -> None:
    """Homologation refuses adapter configuration that is not committed as it is used."""
    for path in files:
        state = git_state(path)
        if state is None:
            raise ValueError(f"homologation: {path} is not in a git working tree; commit the adapter configuration")
        if state["dirty"]:
            raise ValueError(f"homologation: {path} has uncommitted changes; commit them before an homologation run")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replay_record(options: Any, sut_info: dict[str, Any], pki_ca: Path, versions: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to run the same couloir again and compare: options, versions, files and their digests."""
    files = adapter_files(options.sut, options.sut_config)
    command = ["segur", "run", "--couloir", options.couloir, "--sut", options.sut, "--mode", options.mode]
    command += [f"--insi-idam={idam}" for idam in options.insi_idam]
    command += [f"--psc-redirect-uri={uri}" for uri in options.psc_redirect_uris]
    command += [f"--psc-post-logout-uri={uri}" for uri in options.psc_post_logout_redirect_uris]
    if options.sut_config is not None:
        command += ["--sut-config", str(options.sut_config)]
    if options.rem_overlay is not None:
        command += ["--rem", str(options.rem_overlay)]
    if options.cisis is not None:
        command += ["--cisis", str(options.cisis)]
    return {
        "commande": shlex.join(command),
        "argv": sys.argv,
        "couloir": options.couloir,
        "mode": options.mode,
        "sut": {"option": options.sut, **{k: sut_info.get(k) for k in ("name", "version", "adapter", "defects")}},
        "versions": versions,
        "harnais_git": git_state(Path(__file__)),
        "fichiers_adaptateur": [
            {"chemin": str(path), "sha256": sha256_of(path), "git": git_state(path)} for path in files
        ],
        "rem": {"chemin": str(options.rem_overlay), "sha256": sha256_of(options.rem_overlay)}
        if options.rem_overlay is not None
        else None,
        "pki": {"dossier": str(options.pki_dir), "ac_sha256": sha256_of(pki_ca)},
        "options": {
            "insi_idam": list(options.insi_idam),
            "psc_redirect_uris": list(options.psc_redirect_uris),
            "psc_post_logout_uris": list(options.psc_post_logout_redirect_uris),
            "manual_timeout": options.manual_timeout,
            "service_timeout": options.service_timeout,
        },
        "python": platform.python_version(),
        "paquets": {name: _version(name) for name in RECORDED_PACKAGES},
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
