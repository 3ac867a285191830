"""Test PKI generated on first use: an IGC-Santé-like CA and the certificates every mock and SUT needs.

Nothing here is a real IGC-Santé certificate: the CA only *stands for* "TEST AC IGC-SANTE
ELEMENTAIRE ORGANISATIONS" so that mocks can apply the same rules the national services
apply (chain to the CA, CN INSI-AUTO / INSI-MANU, KeyUsage digitalSignature for signing).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"
PKCS12_PASSWORD = "segur-test"
TEST_FINESS = "990000001"

_ORG = "CENTRE HOSPITALIER DE TEST SEGUR"


@dataclass(frozen=True)
class CertificateSpec:
    """One certificate of the test PKI and why it exists."""

    name: str
    common_name: str
    purpose: str
    server: bool = False
    organisational_unit: str = TEST_FINESS


CERTIFICATES: tuple[CertificateSpec, ...] = (
    CertificateSpec("server", "localhost", "TLS server certificate of every mock", server=True),
    CertificateSpec("insi-auto", "INSI-AUTO", "INSi client certificate, automatic calls"),
    CertificateSpec("insi-manu", "INSI-MANU", "INSi client certificate, calls made by a user"),
    CertificateSpec("auth-cli", "HOPITAL TEST SEGUR AUTH_CLI", "organisation authentication (DMP, MSSanté APP)"),
    CertificateSpec("sign", "HOPITAL TEST SEGUR SIGN", "organisation signature (VIHF)"),
    CertificateSpec("cps", "899700000001 MEDECIN TEST", "professional, CPS-like", organisational_unit="CPS"),
)
SERVER_NAMES = ("localhost", "auth.localhost", "wallet.localhost")


@dataclass(frozen=True)
class Pki:
    """Paths of a generated test PKI; every certificate has ``<name>.pem``, ``.key.pem`` and ``.p12``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key.pem"

    def pkcs12(self, name: str) -> Path:
        return self.directory / f"{name}.p12"

    @property
    def untrusted(self) -> Pki:
        """A second CA and an INSI-AUTO certificate it issued: what a mock must refuse at TLS level."""
        return Pki(self.directory / "untrusted")

    def describe(self) -> dict[str, object]:
        """Paths as printed by `segur mocks up` and `segur pki init`."""
        return {
            "directory": str(self.directory),
            "ca": str(self.ca_cert),
            "pkcs12_password": PKCS12_PASSWORD,
            "certificates": {
                spec.name: {
                    "cn": spec.common_name,
                    "purpose": spec.purpose,
                    "cert": str(self.cert(spec.name)),
                    "key": str(self.key(spec.name)),
                    "pkcs12": str(self.pkcs12(spec.name)),
                }
                for spec in CERTIFICATES
            },
        }


def ensure_pki(directory: Path | str) -> Pki:
    """Return the PKI in ``directory``, generating it atomically if it is not complete yet."""
    pki = Pki(Path(directory))
    if (pki.directory / "manifest.json").exists():
        return pki
    pki.directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pki-", dir=pki.directory.parent))
    try:
        _generate(staging, CA_COMMON_NAME, CERTIFICATES)
        _generate(staging / "untrusted", "UNTRUSTED TEST CA", (CERTIFICATES[1],))
        (staging / "manifest.json").write_text(json.dumps(Pki(staging).describe(), indent=2))
        try:
            staging.rename(pki.directory)
        except OSError:
            if not (pki.directory / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return pki


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG)]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _generate(directory: Path, ca_name: str, specs: tuple[CertificateSpec, ...]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SEGUR HARNESS TEST PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, ca_name),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory, "ca", ca_cert, ca_key)
    for spec in specs:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(spec.common_name, None if spec.server else spec.organisational_unit))
            .issuer_name(ca_subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if spec.server:
            names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            usage = [ExtendedKeyUsageOID.SERVER_AUTH]
        else:
            usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        _write(directory, spec.name, builder.sign(ca_key, hashes.SHA256()), key)


def _key_usage(cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write(directory: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / f"{name}.key.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(key_path, 0o600)
    p12 = pkcs12.serialize_key_and_certificates(
        name.encode(), key, cert, None, serialization.BestAvailableEncryption(PKCS12_PASSWORD.encode())
    )
    (directory / f"{name}.p12").write_bytes(p12)
