"""VIHF: the reference SUT's signed assertion verifies with its claims intact, and each kind of
tampering the DMP must refuse gives its own rule id (with claims withheld when trust is broken).

Assertions are built by ``segur.reference_sut.vihf`` and checked by ``segur.vihf``, written apart.
Content checks need a valid signature to be reached, so those cases edit the assertion and sign
it again; signature cases edit it after signing.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from segur.ins import ins_key
from segur.pki import Pki
from segur.reference_sut.vihf import (
    Professional,
    VihfRequest,
    build_vihf,
    security_header,
    sign_assertion,
)
from segur.validation import Finding
from segur.vihf import NS, RULES, VihfClaims, verify_vihf

GP = Professional("899910000019", "GENERALISTE MEDECIN-TEST", "10", "SM54")
HOSPITAL_DOCTOR = Professional("899910000027", "HOSPITALIER MEDECIN-TEST", "10", "SM04")
PHARMACIST = Professional("899910000035", "OFFICINE PHARMACIEN-TEST", "21", "A")
MATRICULE = "1850575112345"
INS = MATRICULE + ins_key(MATRICULE)
PSC_TOKEN = "psc-access-token-of-the-gp"
SAML = NS["saml2"]


@dataclass
class Kit:
    """The test PKI and a correct AIR request; every case starts from there."""

    pki: Pki
    request: VihfRequest = field(
        default_factory=lambda: VihfRequest(
            professional=GP,
            structure_id="1990000001",
            secteur="SA07",
            patient_ins=INS,
            lps_nom="SEGUR REFERENCE SUT",
            lps_version="1.0.0",
            lps_homologation="HOMOL-TEST-0001",
            issue_instant=dt.datetime.now(dt.UTC),
        )
    )

    def build(self, **changes: Any) -> etree._Element:
        request = replace(self.request, **changes)
        return build_vihf(
            request, key_pem=self.pki.key("sign").read_bytes(), cert_pem=self.pki.cert("sign").read_bytes()
        )

    def resign(self, assertion: etree._Element, **algorithms: str) -> etree._Element:
        key, cert = self.pki.key("sign").read_bytes(), self.pki.cert("sign").read_bytes()
        return sign_assertion(assertion, key_pem=key, cert_pem=cert, **algorithms)

    def verify(self, header: etree._Element | bytes, **kwargs: Any) -> tuple[VihfClaims | None, list[Finding]]:
        return verify_vihf(header, trusted_ca_pem=self.pki.ca_cert.read_bytes(), **kwargs)


@pytest.fixture
def kit(pki: Pki) -> Kit:
    return Kit(pki)


def errors(findings: list[Finding]) -> set[str]:
    return {finding.rule for finding in findings if finding.severity == "error"}


def attribute(assertion: etree._Element, name: str) -> etree._Element:
    return assertion.find(f"saml2:AttributeStatement/saml2:Attribute[@Name='{name}']", NS)


def set_value(name: str, value: str) -> Callable[[etree._Element], None]:
    def edit(assertion: etree._Element) -> None:
        attribute(assertion, name).find("saml2:AttributeValue", NS).text = value

    return edit


def drop(path: str) -> Callable[[etree._Element], None]:
    def edit(assertion: etree._Element) -> None:
        for element in assertion.findall(path, NS):
            element.getparent().remove(element)

    return edit


def drop_attribute(name: str) -> Callable[[etree._Element], None]:
    return drop(f"saml2:AttributeStatement/saml2:Attribute[@Name='{name}']")


# --- what a correct VIHF gives --------------------------------------------------------------------


@pytest.mark.parametrize("professional", [GP, HOSPITAL_DOCTOR, PHARMACIST], ids=lambda p: p.name)
def test_air_vihf_verifies_with_the_claims_it_was_built_with(kit: Kit, professional: Professional):
    signed = kit.build(professional=professional)
    claims, findings = kit.verify(security_header(signed))

    assert findings == []
    assert claims is not None
    certificate = x509.load_pem_x509_certificate(kit.pki.cert("sign").read_bytes())
    assert claims.subject_id == professional.idnps
    assert claims.subject_name == professional.name
    assert claims.roles[0] == (professional.profession, "1.2.250.1.71.1.2.7")
    assert claims.roles[1][0] == professional.specialty
    assert (claims.patient_ins, claims.patient_oid) == (INS, "1.2.250.1.213.1.4.10")
    assert claims.resource_id == f"{INS}^^^&1.2.250.1.213.1.4.10&ISO^NH"
    assert (claims.structure_id, claims.secteur_activite, claims.purpose_of_use) == ("1990000001", "SA07", "normal")
    assert (claims.authentication_mode, claims.authn_context_decl) == ("INDIRECTE_RENFORCEE", "APP_BROWSER_AUTH")
    assert (claims.lps_nom, claims.lps_version, claims.lps_homologation) == (
        "SEGUR REFERENCE SUT",
        "1.0.0",
        "HOMOL-TEST-0001",
    )
    assert claims.psc_token is None
    assert claims.vihf_version == "3.0"
    assert claims.issuer == claims.signing_certificate_subject == certificate.subject.rfc4514_string()
    assert claims.assertion_id == signed.get("ID")


def test_psc_vihf_carries_the_token_and_the_verifier_introspects_it(kit: Kit):
    asked: list[str] = []

    def introspect(token: str) -> dict[str, Any]:
        asked.append(token)
        return {"active": True, "token_type": "Bearer", "SubjectNameID": GP.idnps}

    claims, findings = kit.verify(security_header(kit.build(mode="PSC", psc_token=PSC_TOKEN)), psc_tokens=introspect)

    assert findings == []
    assert claims is not None and claims.psc_token == PSC_TOKEN
    assert claims.authn_context_decl == "PRO_SANTE_CONNECT"
    assert asked == [PSC_TOKEN]


def test_the_bare_assertion_verifies_too(kit: Kit):
    claims, findings = kit.verify(kit.build())
    assert findings == [] and claims is not None


def test_claims_come_from_the_signed_xml_not_the_tree_that_came_in(kit: Kit):
    """A comment splitting NameID fools a reader of ``.text`` on the received tree, not one of the c14n output."""
    assertion = kit.build()
    name_id = assertion.find("saml2:Subject/saml2:NameID", NS)
    name_id.text = GP.idnps[:6]
    comment = etree.Comment("split")
    comment.tail = GP.idnps[6:]
    name_id.append(comment)
    signed = kit.resign(assertion)
    assert signed.find("saml2:Subject/saml2:NameID", NS).text == GP.idnps[:6]

    claims, findings = kit.verify(security_header(signed))

    assert findings == [] and claims is not None and claims.subject_id == GP.idnps


def test_issuer_is_compared_as_a_dn_not_as_a_string(kit: Kit):
    """X.500 order, spaces after commas and values in another case name the same certificate."""

    def x500_order(assertion: etree._Element) -> None:
        issuer = assertion.find("saml2:Issuer", NS)
        pairs = [part.split("=", 1) for part in reversed(issuer.text.split(","))]
        issuer.text = ", ".join(f"{kind}={value.lower()}" for kind, value in pairs)

    assertion = kit.build()
    x500_order(assertion)
    claims, findings = kit.verify(security_header(kit.resign(assertion)))
    assert findings == [] and claims is not None


def test_builder_refuses_what_it_cannot_encode(kit: Kit):
    with pytest.raises(ValueError, match="specialty"):
        kit.build(professional=replace(GP, specialty=None))
    with pytest.raises(ValueError, match="PSC token"):
        kit.build(mode="PSC")
    with pytest.raises(ValueError, match="timezone"):
        kit.build(issue_instant=dt.datetime.now())


# --- tampering: each case gives its rule ---------------------------------------------------------


def edited(edit: Callable[[etree._Element], None], **build: Any) -> Callable[[Kit], etree._Element]:
    """Edit before signing: the signature holds, the content check must catch it."""

    def make(kit: Kit) -> etree._Element:
        assertion = kit.build(**build)
        edit(assertion)
        return security_header(kit.resign(assertion))

    return make


def tampered(edit: Callable[[etree._Element], None]) -> Callable[[Kit], etree._Element]:
    """Edit after signing: the signature check must catch it."""

    def make(kit: Kit) -> etree._Element:
        assertion = kit.build()
        edit(assertion)
        return security_header(assertion)

    return make


def alter_signature_value(assertion: etree._Element) -> None:
    value = assertion.find("ds:Signature/ds:SignatureValue", NS)
    value.text = ("A" if value.text[0] != "A" else "B") + value.text[1:]


def evil_twin(signed: etree._Element, assertion_id: str) -> etree._Element:
    """An unsigned assertion naming another professional, as an attacker would forge it."""
    evil = copy.deepcopy(signed)
    drop("ds:Signature")(evil)
    evil.set("ID", assertion_id)
    evil.find("saml2:Subject/saml2:NameID", NS).text = HOSPITAL_DOCTOR.idnps
    return evil


def built(**build: Any) -> Callable[[Kit], etree._Element]:
    return lambda kit: security_header(kit.build(**build))


def issued_in(seconds: int) -> Callable[[Kit], etree._Element]:
    """Issued that far from now (lifetime 300 s), verified now: outside its Conditions."""
    return lambda kit: security_header(kit.build(issue_instant=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)))


def unsigned_assertion_first(kit: Kit) -> etree._Element:
    signed = kit.build()
    header = security_header(signed)
    header.insert(0, evil_twin(signed, "_evil"))
    return header


def signed_one_in_advice(assertion_id: str | None) -> Callable[[Kit], etree._Element]:
    def make(kit: Kit) -> etree._Element:
        signed = kit.build()
        evil = evil_twin(signed, assertion_id or signed.get("ID"))
        advice = etree.Element(f"{{{SAML}}}Advice")
        advice.append(signed)
        evil.find("saml2:Conditions", NS).addnext(advice)
        return security_header(evil)

    return make


def signature_moved_to_header(kit: Kit) -> etree._Element:
    signed = kit.build()
    header = security_header(signed)
    header.append(signed.find("ds:Signature", NS))
    return header


def signed_by_untrusted_ca(kit: Kit) -> etree._Element:
    other = kit.pki.untrusted
    key, cert = other.key("insi-auto").read_bytes(), other.cert("insi-auto").read_bytes()
    return security_header(build_vihf(kit.request, key_pem=key, cert_pem=cert))


def signed_with_sha1(kit: Kit) -> etree._Element:
    return security_header(kit.resign(kit.build(), signature_algorithm="rsa-sha1", digest_algorithm="sha1"))


def signed_without_digital_signature(kit: Kit) -> etree._Element:
    """A certificate of the trusted CA whose KeyUsage is keyEncipherment only."""
    ca_key = serialization.load_pem_private_key(kit.pki.key("ca").read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(kit.pki.ca_cert.read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "HOPITAL TEST SEGUR NO-SIGN")])
    usage = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return security_header(
        build_vihf(kit.request, key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM))
    )


def with_doctype(kit: Kit) -> bytes:
    return b'<!DOCTYPE x [<!ENTITY e "e">]>' + etree.tostring(security_header(kit.build()))


def parsed_with_doctype(kit: Kit) -> etree._Element:
    """Handed over by a caller that parsed it leniently: the verifier still refuses the DOCTYPE."""
    return etree.fromstring(b"<!DOCTYPE x>" + etree.tostring(security_header(kit.build())))


def psc(introspection: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return {"psc_tokens": introspection}


def introspection_fails(token: str) -> dict[str, Any]:
    raise ConnectionError("PSC unreachable")


def set_issuer(assertion: etree._Element) -> None:
    assertion.find("saml2:Issuer", NS).text = "CN=HOPITAL TEST SEGUR AUTH_CLI,OU=990000001,O=CENTRE HOSPITALIER,C=FR"


def set_name_id(assertion: etree._Element) -> None:
    assertion.find("saml2:Subject/saml2:NameID", NS).text = "899910000018"


def set_role_code(position: int, name: str, value: str) -> Callable[[etree._Element], None]:
    def edit(assertion: etree._Element) -> None:
        values = attribute(assertion, "urn:oasis:names:tc:xacml:2.0:subject:role").findall("saml2:AttributeValue", NS)
        values[position][0].set(name, value)

    return edit


def set_purpose(assertion: etree._Element) -> None:
    value = attribute(assertion, "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse").find("saml2:AttributeValue", NS)
    value[0].set("code", "curiosite")


def set_id(assertion: etree._Element) -> None:
    assertion.set("ID", "1f00d")


RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
WRONG_KEY = f"{MATRICULE}{(int(INS[-2:]) % 97) + 1:02d}^^^&1.2.250.1.213.1.4.10&ISO^NH"
PSC_BUILD = {"mode": "PSC", "psc_token": PSC_TOKEN}

# (id, header maker, verify kwargs, expected error rule)
CASES: list[tuple[str, Callable[[Kit], Any], dict[str, Any], str]] = [
    ("doctype-bytes", with_doctype, {}, "VIHF-XML"),
    ("doctype-element", parsed_with_doctype, {}, "VIHF-XML"),
    ("unsigned", tampered(drop("ds:Signature")), {}, "VIHF-SIGNATURE-MISSING"),
    ("signature-value-altered", tampered(alter_signature_value), {}, "VIHF-SIGNATURE-INVALID"),
    ("attribute-changed-after-signing", tampered(set_value("LPS_Nom", "AUTRE LPS")), {}, "VIHF-SIGNATURE-INVALID"),
    ("nameid-changed-after-signing", tampered(set_name_id), {}, "VIHF-SIGNATURE-INVALID"),
    ("signed-by-untrusted-ca", signed_by_untrusted_ca, {}, "VIHF-CERT-UNTRUSTED"),
    ("certificate-without-digital-signature", signed_without_digital_signature, {}, "VIHF-CERT-KEY-USAGE"),
    ("no-certificate-in-keyinfo", tampered(drop("ds:Signature/ds:KeyInfo/ds:X509Data")), {}, "VIHF-CERT"),
    ("sha1-signature", signed_with_sha1, {}, "VIHF-SIGNATURE-ALGORITHM"),
    ("wrapping-unsigned-assertion-first", unsigned_assertion_first, {}, "VIHF-ASSERTION-COUNT"),
    ("wrapping-signed-one-in-advice", signed_one_in_advice("_evil"), {}, "VIHF-WRAPPING"),
    ("wrapping-duplicate-id", signed_one_in_advice(None), {}, "VIHF-ID-DUPLICATE"),
    ("wrapping-signature-moved-out", signature_moved_to_header, {}, "VIHF-WRAPPING"),
    ("id-not-an-xs-id", edited(set_id), {}, "VIHF-ASSERTION"),
    ("issuer-not-the-certificate", edited(set_issuer), {}, "VIHF-ISSUER"),
    ("expired", issued_in(-3600), {}, "VIHF-EXPIRED"),
    ("not-yet-valid", issued_in(+3600), {}, "VIHF-NOT-YET-VALID"),
    ("nameid-not-an-idnps", edited(set_name_id), {}, "VIHF-NAMEID"),
    ("missing-vihf-version", edited(drop_attribute("VIHF_Version")), {}, "VIHF-VERSION"),
    ("missing-authentification-mode", edited(drop_attribute("Authentification_Mode")), {}, "VIHF-AUTHN-MODE"),
    ("missing-identifiant-structure", edited(drop_attribute("Identifiant_Structure")), {}, "VIHF-STRUCTURE"),
    ("missing-secteur-activite", edited(drop_attribute("Secteur_Activite")), {}, "VIHF-SECTEUR"),
    (
        "missing-subject-id",
        edited(drop_attribute("urn:oasis:names:tc:xspa:1.0:subject:subject-id")),
        {},
        "VIHF-SUBJECT-ID",
    ),
    ("missing-role", edited(drop_attribute("urn:oasis:names:tc:xacml:2.0:subject:role")), {}, "VIHF-ROLE"),
    (
        "missing-purpose-of-use",
        edited(drop_attribute("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse")),
        {},
        "VIHF-PURPOSE",
    ),
    ("missing-resource-id", edited(drop_attribute(RESOURCE_ID)), {}, "VIHF-RESOURCE-ID"),
    ("missing-ressource-urn", edited(drop_attribute("Ressource_URN")), {}, "VIHF-RESOURCE-URN"),
    ("missing-lps-nom", edited(drop_attribute("LPS_Nom")), {}, "VIHF-LPS-NOM"),
    ("missing-lps-version", edited(drop_attribute("LPS_Version")), {}, "VIHF-LPS-VERSION"),
    ("missing-lps-homologation", edited(drop_attribute("LPS_ID_HOMOLOGATION_DMP")), {}, "VIHF-LPS-HOMOLOGATION"),
    (
        "missing-authn-context-decl",
        edited(drop("saml2:AuthnStatement/*/saml2:AuthnContextDecl")),
        {},
        "VIHF-AUTHN-CONTEXT",
    ),
    ("mode-indirecte-simple", edited(set_value("Authentification_Mode", "INDIRECTE")), {}, "VIHF-AUTHN-MODE"),
    ("unknown-vihf-version", edited(set_value("VIHF_Version", "9.9")), {}, "VIHF-VERSION"),
    ("structure-id-malformed", edited(set_value("Identifiant_Structure", "hopital")), {}, "VIHF-STRUCTURE"),
    ("secteur-without-oid", edited(set_value("Secteur_Activite", "SA07")), {}, "VIHF-SECTEUR"),
    (
        "doctor-without-specialty",
        edited(drop("saml2:AttributeStatement/*/saml2:AttributeValue[2]")),
        {},
        "VIHF-ROLE-SPECIALTY",
    ),
    (
        "specialty-in-wrong-system",
        edited(set_role_code(1, "codeSystem", "1.2.250.1.71.4.2.6")),
        {},
        "VIHF-ROLE-SPECIALTY",
    ),
    ("role-without-code", edited(set_role_code(0, "code", "")), {}, "VIHF-ROLE"),
    ("unknown-purpose-of-use", edited(set_purpose), {}, "VIHF-PURPOSE"),
    ("resource-id-bare-ins", edited(set_value(RESOURCE_ID, INS)), {}, "VIHF-RESOURCE-ID"),
    ("resource-id-wrong-key", edited(set_value(RESOURCE_ID, WRONG_KEY)), {}, "VIHF-RESOURCE-ID"),
    ("resource-id-not-an-ins-oid", edited(set_value(RESOURCE_ID, f"{INS}^^^&1.2.3&ISO^NH")), {}, "VIHF-RESOURCE-ID"),
    ("wrong-ressource-urn", edited(set_value("Ressource_URN", "urn:dmp:v2")), {}, "VIHF-RESOURCE-URN"),
    ("psc-mode-without-token", edited(drop_attribute("Jeton_PSC"), **PSC_BUILD), {}, "VIHF-PSC-TOKEN"),
    (
        "psc-token-inactive",
        built(**PSC_BUILD),
        psc(lambda token: {"active": False}),
        "VIHF-PSC-TOKEN",
    ),
    ("psc-introspection-fails", built(**PSC_BUILD), psc(introspection_fails), "VIHF-PSC-TOKEN"),
    (
        "psc-token-of-another-professional",
        built(**PSC_BUILD),
        psc(lambda token: {"active": True, "SubjectNameID": HOSPITAL_DOCTOR.idnps}),
        "VIHF-PSC-SUBJECT",
    ),
]

# Before these checks pass nothing in the assertion can be trusted: no claims may come out.
UNTRUSTED = {
    "VIHF-XML",
    "VIHF-ASSERTION-COUNT",
    "VIHF-WRAPPING",
    "VIHF-ID-DUPLICATE",
    "VIHF-SIGNATURE-MISSING",
    "VIHF-SIGNATURE-ALGORITHM",
    "VIHF-SIGNATURE-INVALID",
    "VIHF-CERT",
    "VIHF-CERT-UNTRUSTED",
    "VIHF-CERT-KEY-USAGE",
}


@pytest.mark.parametrize(("make", "verify_kwargs", "rule"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_tampering_gives_its_rule(kit: Kit, make: Callable[[Kit], Any], verify_kwargs: dict[str, Any], rule: str):
    claims, findings = kit.verify(make(kit), **verify_kwargs)

    assert rule in errors(findings), findings
    assert all(finding.message and finding.location for finding in findings)
    if rule in UNTRUSTED:
        assert claims is None
    else:
        assert claims is not None and claims.subject_id, "content findings come with the signed claims"


def test_missing_conditions_is_a_warning_not_a_refusal(kit: Kit):
    claims, findings = kit.verify(edited(drop("saml2:Conditions"))(kit))
    assert claims is not None
    assert [(f.rule, f.severity) for f in findings] == [("VIHF-CONDITIONS", "warning")]


def test_every_rule_has_a_case():
    covered = {case[3] for case in CASES} | {"VIHF-CONDITIONS"}
    assert covered == set(RULES)


def test_malformed_header_gives_findings_not_exceptions(kit: Kit):
    for header in (b"<not-xml", b"<wsse:Security xmlns:wsse='urn:x'/>", etree.Element("Envelope")):
        claims, findings = kit.verify(header)
        assert claims is None and errors(findings) == {"VIHF-XML"}
