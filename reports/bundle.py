"""Evidence bundle: one zip that a reviewer can check offline, and ``segur report verify`` to check it.

The bundle holds what a référencement reviewer reads (rapport.html, rapport.json, junit.xml,
replay.json, the per-exchange evidence files, allure-results) under one folder named after
the run, and ``MANIFEST.sha256``: the SHA-256 of every other member in plain ``sha256sum``
format, so that ``sha256sum -c MANIFEST.sha256`` works without this tool. A user-supplied
key can sign the manifest as a detached CMS (PKCS#7) signature, ``MANIFEST.sha256.p7s``,
which ``openssl cms -verify -binary -inform DER -in MANIFEST.sha256.p7s -content MANIFEST.sha256
-CAfile ca.pem -purpose any`` checks: CMS is the standard an auditor's tools already know. Verify
always checks that signature (whoever edits a member can also recompute the manifest), and the
signer's chain when given the CA.

Every text member is redacted (segur.redaction) before it is hashed and written, so the
manifest vouches for exactly the bytes a reader sees. The raw journal stays on the machine
unless explicitly asked for. Two bundles of the same run are byte-identical (sorted members,
fixed timestamps and permissions) so that a re-export can be compared by its hash; a CMS
signature carries its signing time, so only unsigned bundles are byte-identical.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from segur.redaction import redact

MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.p7s"
RAW_JOURNAL = "evidence/journal.jsonl"
RAW_JOURNAL_WARNING = "JOURNAL-BRUT-NON-MASQUE.txt"
REQUIRED_FILES = ("rapport.html", "rapport.json", "junit.xml")
OPTIONAL_FILES = ("replay.json",)
TREES = ("evidence", "allure-results")
# Already-encoded formats: redaction could only corrupt them, and they are not where credentials are written.
BINARY_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".zip", ".gz", ".der", ".p12", ".pfx", ".p7s", ".p7m", ".webm"}
)
# Zip-bomb guard for bundles of unknown origin: a real run is tens of MB, and its text compresses
# about 10:1; deflate tops out near 1000:1, which only crafted members reach.
MAX_TOTAL_SIZE = 2 * 1024**3
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
FILE_MODE = 0o644
_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
_MANIFEST_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")
_RAW_JOURNAL_TEXT = (
    "ATTENTION : ce paquet contient evidence/journal.jsonl, le journal BRUT de la campagne, NON MASQUÉ.\n"
    "Mots de passe, secrets clients, clés et jetons d'accès y figurent en clair.\n"
    "Ne le transmettez qu'à l'éditeur du logiciel testé, jamais à un tiers.\n"
).encode()


class BundleError(ValueError):
    """The run directory cannot be bundled as asked (not a run, link leaving it, bad key); a ValueError for the CLI."""


@dataclass(frozen=True)
class ManifestSigner:
    """A user's key and certificate: signs the manifest as detached CMS, SHA-256, certificate embedded."""

    key: pkcs7.PKCS7PrivateKeyTypes
    certificate: x509.Certificate

    @classmethod
    def from_files(cls, key: Path, cert: Path, password: bytes | None = None) -> ManifestSigner:
        """PEM private key (optionally encrypted with ``password``) and the PEM certificate of its public key."""
        try:
            private = serialization.load_pem_private_key(Path(key).read_bytes(), password=password)
            certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
        except (OSError, ValueError, TypeError) as error:
            raise BundleError(f"clé {key} ou certificat {cert} illisible (mot de passe ?) : {error}") from None
        if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise BundleError(f"{key} : clé {type(private).__name__} non prise en charge par CMS (RSA ou EC)")
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if private.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
            raise BundleError(f"{key} ne correspond pas au certificat {cert}")
        return cls(private, certificate)

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def sign(self, manifest: bytes) -> bytes:
        """DER CMS SignedData over ``manifest`` as bytes (Binary: no MIME canonicalisation of line ends)."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
        )


@dataclass
class BundleCheck:
    """Outcome of ``verify_bundle``: every problem names the member it is about."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    signer: str | None = None
    raw_journal: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def write_bundle(
    run_dir: Path, out: Path | None = None, *, signer: ManifestSigner | None = None, include_raw_journal: bool = False
) -> Path:
    """Write the evidence bundle of ``run_dir`` (default ``<run_dir>.zip`` beside it) and return its path.

    WARNING, ``include_raw_journal=True``: evidence/journal.jsonl then goes into the bundle AS IS,
    UNREDACTED, with every password, client secret, private key and token of the run in clear
    (base64-encoded, so redaction cannot even see them). Only for the vendor's own use; the bundle
    then also carries JOURNAL-BRUT-NON-MASQUE.txt, listed in the manifest, and verify says so.
    """
    root = Path(run_dir).resolve()
    if not root.is_dir():
        raise BundleError(f"{run_dir} : dossier de run introuvable")
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise BundleError(f"{run_dir} n'est pas un dossier de run complet : {', '.join(missing)} manquant(s)")
    stamp = _timestamp(root / "rapport.json")
    sources = _collect(root, include_raw_journal)
    out = Path(out) if out is not None else root.with_name(root.name + ".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp")
    digests: dict[str, str] = {}
    try:
        with zipfile.ZipFile(staging, "w") as archive:
            for name, path in sorted(sources.items()):
                data = _shown(name, path.read_bytes())
                digests[name] = hashlib.sha256(data).hexdigest()
                _add(archive, f"{root.name}/{name}", data, stamp)
            if include_raw_journal:
                digests[RAW_JOURNAL_WARNING] = hashlib.sha256(_RAW_JOURNAL_TEXT).hexdigest()
                _add(archive, f"{root.name}/{RAW_JOURNAL_WARNING}", _RAW_JOURNAL_TEXT, stamp)
            manifest = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests)).encode()
            _add(archive, f"{root.name}/{MANIFEST}", manifest, stamp)
            if signer is not None:
                _add(archive, f"{root.name}/{SIGNATURE}", signer.sign(manifest), stamp)
        os.replace(staging, out)
    finally:
        staging.unlink(missing_ok=True)
    return out


def verify_bundle(bundle: Path, *, ca: Path | None = None) -> BundleCheck:
    """Recompute the manifest of ``bundle`` and check its signature, if any (openssl cms); with ``ca``, also
    that the signer chains to it.

    An unsafe archive (paths leaving the top folder, links, oversized or over-compressed members)
    is reported and nothing of it is read.
    """
    check = BundleCheck()
    try:
        archive = zipfile.ZipFile(bundle)
    except (OSError, zipfile.BadZipFile) as error:
        check.problems.append(f"archive illisible : {bundle} ({error})")
        return check
    with archive:
        members = _safe_members(archive.infolist(), check.problems)
        if check.problems:
            return check
        if MANIFEST not in members:
            check.problems.append(f"manifeste absent : {MANIFEST}")
            return check
        manifest = _read(archive, members[MANIFEST], check.problems)
        entries = _parse_manifest(manifest, check.problems) if manifest is not None else {}
        check.files = len(entries)
        for name, expected in sorted(entries.items()):
            if name not in members:
                check.problems.append(f"manquant : {name}")
            elif _digest(archive, members[name], check.problems) not in (expected.lower(), None):
                check.problems.append(f"modifié : {name}")
        for name in sorted(set(members) - set(entries) - {MANIFEST, SIGNATURE}):
            check.problems.append(f"absent du manifeste : {name}")
        check.raw_journal = RAW_JOURNAL in entries or RAW_JOURNAL_WARNING in entries
        if check.raw_journal:
            check.notes.append(f"contient le journal brut NON MASQUÉ ({RAW_JOURNAL}) : secrets en clair")
        signature = _read(archive, members[SIGNATURE], check.problems) if SIGNATURE in members else None
    if signature is None:
        if ca is not None and SIGNATURE not in members:
            check.problems.append(f"signature absente : {SIGNATURE} (--ca donné)")
        return check
    _check_signature(check, manifest or b"", signature, ca)
    return check


def _collect(root: Path, include_raw_journal: bool) -> dict[str, Path]:
    """Bundle name (relative to the run dir) -> file to read; links must stay inside the run dir."""
    journal = (root / RAW_JOURNAL).resolve()
    files = {name: _inside(root, root / name) for name in REQUIRED_FILES}
    files.update({name: _inside(root, root / name) for name in OPTIONAL_FILES if (root / name).exists()})
    for tree in TREES:
        top = root / tree
        if not top.exists():
            continue
        _inside(root, top)
        for folder, dirnames, filenames in os.walk(top):
            for name in dirnames:
                if (Path(folder) / name).is_symlink():
                    _inside(root, Path(folder) / name)  # not descended: its files are bundled where they live
            for name in filenames:
                path = Path(folder) / name
                relative, target = path.relative_to(root).as_posix(), _inside(root, path)
                if target == journal and not (include_raw_journal and relative == RAW_JOURNAL):
                    continue  # the raw journal, or a link to it under another name
                if any(c in relative for c in "\n\r\\"):
                    raise BundleError(f"{relative!r} : nom de fichier non représentable dans {MANIFEST}")
                files[relative] = target
    return files


def _inside(root: Path, path: Path) -> Path:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as error:
        raise BundleError(f"{path} : lien cassé ou fichier illisible ({error})") from None
    if not target.is_relative_to(root):
        raise BundleError(f"{path} : lien symbolique hors du dossier de run ({target}), refusé")
    return target


def _timestamp(report: Path) -> tuple[int, int, int, int, int, int]:
    """The run's start, for every member: the bundle's bytes then depend on the run only."""
    try:
        started = json.loads(report.read_text(encoding="utf-8")).get("started")
    except (OSError, ValueError, AttributeError) as error:
        raise BundleError(f"{report} illisible : {error}") from None
    try:
        when = dt.datetime.fromisoformat(started)
    except (TypeError, ValueError):
        return _EPOCH
    return _EPOCH if when.year < _EPOCH[0] else (when.year, when.month, when.day, when.hour, when.minute, when.second)


def _shown(name: str, data: bytes) -> bytes:
    if name == RAW_JOURNAL or Path(name).suffix.lower() in BINARY_SUFFIXES:
        return data
    return redact(data)


def _add(archive: zipfile.ZipFile, name: str, data: bytes, stamp: tuple[int, ...]) -> None:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so that external_attr carries the permissions on every platform
    info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
    archive.writestr(info, data)


def _safe_members(infos: list[zipfile.ZipInfo], problems: list[str]) -> dict[str, zipfile.ZipInfo]:
    """Members by name relative to the single top folder; refuses what an unzip could be tricked with."""
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_SIZE:
        problems.append(f"taille décompressée excessive : {total} octets (limite {MAX_TOTAL_SIZE})")
        return {}
    members: dict[str, zipfile.ZipInfo] = {}
    top = None
    for info in infos:
        name = info.filename
        parts = name.rstrip("/").split("/")
        if name.startswith("/") or "\\" in name or re.match(r"[A-Za-z]:", name) or {"", ".", ".."} & set(parts):
            problems.append(f"chemin refusé : {name}")
            continue
        top = top or parts[0]
        if parts[0] != top or (len(parts) == 1 and not info.is_dir()):
            problems.append(f"hors du dossier racine : {name}")
        elif stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"lien symbolique refusé : {name}")
        elif info.flag_bits & 0x1:
            problems.append(f"membre chiffré refusé : {name}")
        elif info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            problems.append(f"taux de compression suspect : {name}")
        elif not info.is_dir():
            relative = "/".join(parts[1:])
            if relative in members:
                problems.append(f"en double : {relative}")
            members[relative] = info
    return members


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, problems: list[str]) -> bytes | None:
    try:
        return archive.read(info)
    except _UNREADABLE as error:
        problems.append(f"illisible : {info.filename} ({error})")
        return None


def _digest(archive: zipfile.ZipFile, info: zipfile.ZipInfo, problems: list[str]) -> str | None:
    """SHA-256 of a member, read in chunks (zipfile stops at the declared size and checks the CRC)."""
    digest = hashlib.sha256()
    try:
        with archive.open(info) as member:
            while chunk := member.read(1 << 20):
                digest.update(chunk)
    except _UNREADABLE as error:
        problems.append(f"illisible : {info.filename} ({error})")
        return None
    return digest.hexdigest()


def _parse_manifest(manifest: bytes, problems: list[str]) -> dict[str, str]:
    entries: dict[str, str] = {}
    try:
        lines = manifest.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        problems.append(f"manifeste illisible : {MANIFEST} n'est pas en UTF-8")
        return entries
    for number, line in enumerate(lines, 1):
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None:
            problems.append(f"manifeste illisible : {MANIFEST} ligne {number}")
        elif match[2] in entries:
            problems.append(f"en double dans le manifeste : {match[2]}")
        else:
            entries[match[2]] = match[1]
    return entries


def _check_signature(check: BundleCheck, manifest: bytes, signature: bytes, ca: Path | None) -> None:
    """Check the CMS signature over the manifest, always: a recomputed manifest passes every digest.

    Without ``ca`` the signer can be anyone holding a key, so the note says its chain was not checked.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        check.problems.append(f"signature non vérifiable : {SIGNATURE} (commande openssl introuvable)")
        return
    try:
        failure, signer = _openssl_cms_verify(openssl, manifest, signature, ca)
    except (OSError, subprocess.SubprocessError) as error:
        check.problems.append(f"signature non vérifiable : {SIGNATURE} (openssl : {error})")
        return
    if failure:
        check.problems.append(f"signature invalide : {SIGNATURE} ({failure})")
        return
    check.signer = signer
    if ca is None:
        check.notes.append(f"signé par {signer} ; signature valide, signataire non vérifié (donnez --ca)")
    else:
        check.notes.append(f"signé par {signer} ; signature vérifiée (CA {ca})")


def _openssl_cms_verify(openssl: str, manifest: bytes, signature: bytes, ca: Path | None) -> tuple[str, str]:
    """Why OpenSSL refuses the signature over ``manifest`` (empty when it accepts it), and the signer's subject.

    With ``ca`` the signer's chain to it is checked too; ``-purpose any`` because the signer certificate
    is the user's own (often a TLS client or organisation certificate), not an S/MIME one. Without
    ``ca``, ``-noverify``: the signature and the manifest's digest only. The subject is read from the
    certificate OpenSSL verified with (``-signer``), not from whatever certificates the file embeds.
    """
    if ca is not None and not Path(ca).is_file():
        return f"CA introuvable : {ca}", ""
    with tempfile.TemporaryDirectory(prefix="segur-verify-") as folder:
        content, der, signer = Path(folder) / MANIFEST, Path(folder) / SIGNATURE, Path(folder) / "signer.pem"
        content.write_bytes(manifest)
        der.write_bytes(signature)
        command = [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(der), "-content", str(content)]
        command += ["-noverify"] if ca is None else ["-CAfile", str(ca), "-purpose", "any"]
        command += ["-signer", str(signer), "-out", os.devnull]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode == 0:
            certificates = x509.load_pem_x509_certificates(signer.read_bytes())
            return "", certificates[0].subject.rfc4514_string()
    # OpenSSL error lines: <thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:<data>
    errors = re.findall(r"error:[0-9A-F]+:[^:]*:[^:]*:([^:]*):[^:]*:\d+:(.*)", result.stderr)
    if not errors:
        return result.stderr.strip() or f"openssl cms a échoué ({result.returncode})", ""
    reason, data = errors[-1]
    return (f"{reason} : {data.strip()}" if data.strip() else reason), ""
