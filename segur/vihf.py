"""The VIHF verifier: the signed SAML 2.0 assertion every DMP web service request carries in ``wsse:Security``.

The DMP mock calls ``verify_vihf`` on every request, turns each error finding into a SOAP Fault
and compares the returned claims with the request (patient, author). The verifier trusts nothing
it has not seen signed: the structure around the assertion is checked first (one assertion, no
nested assertion, no ID collision, signature enveloped and referencing that very assertion), then
the signature is verified with signxml, and every claim is read from ``VerifyResult.signed_xml``,
never from the tree that came in.

Researched (public sources):
- attribute names, ``Ressource_URN`` = ``urn:dmp``, ``Issuer`` = DN of the organisation's signature
  ("cachet") certificate with Format X509SubjectName, NameID = the professional's identifier, first
  ``Role`` = profession (TRE_G15, 1.2.250.1.71.1.2.7), second ``Role`` required for doctors (10,
  TRE_R01 savoir-faire, 1.2.250.1.71.4.2.5) and pharmacists (21, TRE_G05 sous-section CNOP,
  1.2.250.1.71.4.2.6), Role/PurposeOfUse as hl7v3 ``CE`` elements, PurposeOfUse code system
  1.2.250.1.213.1.1.4.248, ``Secteur_Activite`` = ``SAxx^1.2.250.1.71.4.2.4``, resource-id
  ``<INS>^^^&<OID>&ISO^NH``, ``Authentification_Mode`` = ``INDIRECTE_RENFORCEE`` with
  ``AuthnContextDecl`` ``APP_BROWSER_AUTH`` for AIR: ANS IG "volet transmission document CDA"
  (mapping VIHF), ANS DRIMbox and TLSi editor kit samples, DevBox-Santé homologation notes
  (EX_AIR-050: ``CONF_EXI_PGSSIS`` for "AIR simplifié"), ANS PSC-to-VIHF gateway policy
  (``MobileTwoFactorUnregistered``), TRE OIDs from the ANS terminology IG.
- exclusive c14n and an enveloped signature referencing the assertion ID: the same samples.

Modelled (not public, so chosen here and kept in one place):
- the PSC mode: the VIHF carries the Pro Santé Connect access token in attribute ``Jeton_PSC`` and
  declares ``AuthnContextDecl`` ``PRO_SANTE_CONNECT``;
- RSA-SHA256/SHA-256 only (the samples above still show RSA-SHA1; the harness refuses it);
- ``Conditions`` is optional in the ANS mapping: its absence is a warning, bounds are enforced;
- ``Authentification_Mode`` other than ``INDIRECTE_RENFORCEE`` is refused (Ségur DPI/LGC use AIR).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import SignatureConfiguration, VerifyResult, XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.exceptions import SignXMLException

from segur.ins import OID_INS_NIA, OID_INS_NIA_TEST, OID_INS_NIR, OID_INS_NIR_TEST, key_is_valid
from segur.rpps import luhn_valid
from segur.validation import Finding, MalformedXml, Severity, UnsafeXml, parse_untrusted
from segur.xds.certificates import UntrustedCertificate, verify_chain

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
NS = {"wsse": WSSE, "saml2": SAML, "ds": DS, "hl7": HL7}

ISSUER_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
AUTHN_CLASS_PREFIX = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
AUTHENTICATION_MODE = "INDIRECTE_RENFORCEE"
DECL_PSC = "PRO_SANTE_CONNECT"
AUTHN_DECLS = ("APP_BROWSER_AUTH", "CONF_EXI_PGSSIS", DECL_PSC)
VIHF_VERSIONS = ("3.0", "4.0")
PURPOSES = ("normal", "bris_de_glace", "centre_15")
PURPOSE_SYSTEM = "1.2.250.1.213.1.1.4.248"
PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"
SPECIALTY_SYSTEMS = {"10": "1.2.250.1.71.4.2.5", "21": "1.2.250.1.71.4.2.6"}
INS_OIDS = (OID_INS_NIR, OID_INS_NIA, OID_INS_NIR_TEST, OID_INS_NIA_TEST)
RESOURCE_URN = "urn:dmp"
CLOCK_SKEW = timedelta(seconds=30)

ATTR_VERSION = "VIHF_Version"
ATTR_MODE = "Authentification_Mode"
ATTR_STRUCTURE = "Identifiant_Structure"
ATTR_SECTEUR = "Secteur_Activite"
ATTR_SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
ATTR_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
ATTR_PURPOSE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
ATTR_RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
ATTR_RESOURCE_URN = "Ressource_URN"
ATTR_LPS_NOM = "LPS_Nom"
ATTR_LPS_VERSION = "LPS_Version"
ATTR_LPS_HOMOLOGATION = "LPS_ID_HOMOLOGATION_DMP"
ATTR_PSC_TOKEN = "Jeton_PSC"

RULES: dict[str, str] = {
    "VIHF-XML": "the header is refused before reading: DOCTYPE/entities, not well-formed, not wsse:Security",
    "VIHF-ASSERTION-COUNT": "the header carries exactly one saml2:Assertion",
    "VIHF-WRAPPING": "the signature is enveloped in, and references, the one assertion whose claims are read",
    "VIHF-ID-DUPLICATE": "the assertion ID is unique in the header",
    "VIHF-ASSERTION": "SAML 2.0 Version, an xs:ID ID and a UTC IssueInstant",
    "VIHF-CONDITIONS": "Conditions NotBefore/NotOnOrAfter are present and readable",
    "VIHF-EXPIRED": "the assertion is used before NotOnOrAfter",
    "VIHF-NOT-YET-VALID": "the assertion is used after NotBefore and IssueInstant",
    "VIHF-SIGNATURE-MISSING": "the assertion is signed",
    "VIHF-SIGNATURE-ALGORITHM": "exclusive c14n, RSA-SHA256, SHA-256 digest, enveloped transform",
    "VIHF-SIGNATURE-INVALID": "the signature value and digest verify",
    "VIHF-CERT": "KeyInfo/X509Data carries the signing certificate",
    "VIHF-CERT-UNTRUSTED": "the signing certificate chains to the trusted CA and is valid now",
    "VIHF-CERT-KEY-USAGE": "the signing certificate allows digitalSignature",
    "VIHF-ISSUER": "Issuer (X509SubjectName) is the signing certificate's subject DN",
    "VIHF-NAMEID": "Subject/NameID is the professional's IDNPS (8 + RPPS with its Luhn key)",
    "VIHF-VERSION": "VIHF_Version is a known version",
    "VIHF-AUTHN-MODE": "Authentification_Mode is INDIRECTE_RENFORCEE (AIR)",
    "VIHF-AUTHN-CONTEXT": "AuthnStatement declares a SAML class and the primary authentication method",
    "VIHF-STRUCTURE": "Identifiant_Structure is a national structure identifier",
    "VIHF-SECTEUR": "Secteur_Activite is SAxx^1.2.250.1.71.4.2.4",
    "VIHF-SUBJECT-ID": "subject-id names the professional",
    "VIHF-ROLE": "Role carries the profession as an hl7 CE",
    "VIHF-ROLE-SPECIALTY": "doctors and pharmacists carry their specialty as the second Role",
    "VIHF-PURPOSE": "PurposeOfUse is normal, bris_de_glace or centre_15",
    "VIHF-RESOURCE-ID": "resource-id is the patient's INS as <INS>^^^&<OID>&ISO^NH with a valid key",
    "VIHF-RESOURCE-URN": "Ressource_URN is urn:dmp",
    "VIHF-LPS-NOM": "LPS_Nom names the software",
    "VIHF-LPS-VERSION": "LPS_Version gives its version",
    "VIHF-LPS-HOMOLOGATION": "LPS_ID_HOMOLOGATION_DMP gives its DMP homologation number",
    "VIHF-PSC-TOKEN": "in PSC mode the VIHF carries an active Pro Santé Connect access token",
    "VIHF-PSC-SUBJECT": "the PSC token belongs to the professional the VIHF names",
}

_ASSERTION = f"{{{SAML}}}Assertion"
_SECURITY = f"{{{WSSE}}}Security"
_SIGNATURE = f"{{{DS}}}Signature"
_HERE = "/saml2:Assertion"
_ID_NAMES = ("ID", "Id", "id")
_SIGNED_INFO = f"{_HERE}/ds:Signature/ds:SignedInfo"
_NCNAME = re.compile(r"^[A-Za-z_][\w.-]*$")
_IDNPS = re.compile(r"^8[0-9]{11}$")
_STRUCTURE = re.compile(r"^[0-4][0-9A-Z]{8,19}$")
_SECTEUR = re.compile(r"^(SA[0-9]{2})\^1\.2\.250\.1\.71\.4\.2\.4$")
_RESOURCE_ID = re.compile(r"^([0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6})([0-9]{2})\^\^\^&([0-9.]+)&ISO\^NH$")
_DN_ALIASES = {  # names other tools print (Windows: S, E) that RFC 4514 parsers do not know
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
}
_DN_SPACES = re.compile(r"(?<!\\)\s*([,+])\s*")
_DN_TYPES = re.compile(r"(^|(?<!\\)[,+])([A-Za-z][A-Za-z0-9-]*)=")
_TRANSFORMS = [
    SignatureConstructionMethod.enveloped.value,
    CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value,
]
_SIGNATURE_CONFIG = SignatureConfiguration(
    location="./",
    expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)


@dataclass(frozen=True)
class VihfClaims:
    """What a verified VIHF says, read from the signed XML only; "" where the VIHF lacks a value.

    ``roles`` is ((code, codeSystem), ...): the profession first, then the specialty.
    ``psc_token`` is the Pro Santé Connect access token in PSC mode, else None.
    """

    subject_id: str
    subject_name: str
    roles: tuple[tuple[str, str], ...]
    purpose_of_use: str
    resource_id: str
    patient_ins: str
    patient_oid: str
    structure_id: str
    secteur_activite: str
    authentication_mode: str
    authn_context: str
    authn_context_decl: str
    lps_nom: str
    lps_version: str
    lps_homologation: str
    psc_token: str | None
    vihf_version: str
    issuer: str
    signing_certificate_subject: str
    assertion_id: str


class _Findings(list[Finding]):
    """Findings with their rule ids checked against ``RULES``, so that the catalogue of rules cannot drift."""

    def error(self, rule: str, message: str, location: str = _HERE) -> None:
        self.add(rule, "error", message, location)

    def add(self, rule: str, severity: Severity, message: str, location: str = _HERE) -> None:
        if rule not in RULES:
            raise KeyError(f"undocumented VIHF rule {rule}")
        self.append(Finding(rule, severity, message, location))


def verify_vihf(
    security: etree._Element | bytes,
    *,
    trusted_ca_pem: bytes,
    now: datetime | None = None,
    psc_tokens: Callable[[str], dict[str, Any]] | None = None,
) -> tuple[VihfClaims | None, list[Finding]]:
    """Verify the VIHF in ``security`` (``wsse:Security``, the assertion itself, or their raw bytes).

    Claims are None when the assertion cannot be trusted (structure, signature, certificate);
    otherwise they are returned with every finding about their content. ``psc_tokens`` is an
    introspection callback: given the token, it returns the RFC 7662 answer (or raises).
    Comparing the claims with the SOAP request is the caller's job.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    findings = _Findings()
    root = _root(security, findings)
    assertion = _the_assertion(root, findings) if root is not None else None
    signature = _the_signature(root, assertion, findings) if assertion is not None else None
    if assertion is None or signature is None or findings:
        return None, findings
    signed = _verify_signature(assertion, signature, trusted_ca_pem, now, findings)
    if signed is None:
        return None, findings
    claims = _read_claims(*signed, now, findings)
    if claims.psc_token is not None and psc_tokens is not None:
        _check_psc_token(claims, psc_tokens, findings)
    return claims, findings


def _root(security: etree._Element | bytes, findings: _Findings) -> etree._Element | None:
    if isinstance(security, bytes):
        try:
            security = parse_untrusted(security)
        except (UnsafeXml, MalformedXml) as error:
            findings.error("VIHF-XML", str(error), "/")
            return None
    if security.getroottree().docinfo.doctype or any(True for _ in security.iter(etree.Entity)):
        findings.error("VIHF-XML", "DOCTYPE and entity declarations are not accepted", "/")
        return None
    if security.tag not in (_SECURITY, _ASSERTION):
        findings.error("VIHF-XML", f"expected wsse:Security or saml2:Assertion, got {security.tag}", "/")
        return None
    return security


def _the_assertion(root: etree._Element, findings: _Findings) -> etree._Element | None:
    """The one top-level assertion, after the structural anti-wrapping checks on the whole header."""
    top = [root] if root.tag == _ASSERTION else root.findall("saml2:Assertion", NS)
    if len(top) != 1:
        findings.error("VIHF-ASSERTION-COUNT", f"the header carries {len(top)} top-level saml2:Assertion, not 1", "/")
    assertion_id = top[0].get("ID") if top else None
    if top and not assertion_id:
        findings.error("VIHF-ASSERTION", "the assertion has no ID: a signature cannot reference it")
    if assertion_id:
        holders = [
            element
            for element in root.iter()
            if any(v == assertion_id and etree.QName(k).localname in _ID_NAMES for k, v in element.attrib.items())
        ]
        if len(holders) > 1:
            findings.error("VIHF-ID-DUPLICATE", f"ID {assertion_id!r} is carried by {len(holders)} elements")
    for assertion in top:
        if assertion.find(".//saml2:Assertion", NS) is not None:
            findings.error("VIHF-WRAPPING", "an assertion is nested inside the assertion (Advice, Extensions...)")
    return top[0] if len(top) == 1 and assertion_id else None


def _the_signature(root: etree._Element, assertion: etree._Element, findings: _Findings) -> etree._Element | None:
    """The signature enveloped in the assertion; one elsewhere that references the assertion is a wrapping attempt.

    Other signatures in the header (a WS-Security message signature) are none of the VIHF's business.
    """
    enveloped = assertion.findall("ds:Signature", NS)
    reference = f"#{assertion.get('ID')}"
    elsewhere = [
        signature
        for signature in root.iter(_SIGNATURE)
        if signature.getparent() is not assertion
        and any(ref.get("URI") == reference for ref in signature.iterfind("ds:SignedInfo/ds:Reference", NS))
    ]
    if elsewhere:
        findings.error("VIHF-WRAPPING", "a ds:Signature referencing the assertion sits outside it")
    if not enveloped:
        if not elsewhere:
            findings.error("VIHF-SIGNATURE-MISSING", "the assertion is not signed")
        return None
    if len(enveloped) > 1:
        findings.error("VIHF-WRAPPING", f"the assertion carries {len(enveloped)} signatures")
        return None
    signature = enveloped[0]
    signed_info = signature.find("ds:SignedInfo", NS)
    if signed_info is None:
        findings.error("VIHF-SIGNATURE-INVALID", "the signature has no SignedInfo", f"{_HERE}/ds:Signature")
        return None
    _check_algorithms(signed_info, assertion.get("ID", ""), findings)
    return signature


def _check_algorithms(signed_info: etree._Element, assertion_id: str, findings: _Findings) -> None:
    def algorithm(path: str, element: etree._Element = signed_info) -> str | None:
        found = element.find(path, NS)
        return None if found is None else found.get("Algorithm")

    c14n = algorithm("ds:CanonicalizationMethod")
    if c14n != CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value:
        findings.error("VIHF-SIGNATURE-ALGORITHM", f"canonicalization {c14n} is not exclusive c14n", _SIGNED_INFO)
    method = algorithm("ds:SignatureMethod")
    if method != SignatureMethod.RSA_SHA256.value:
        findings.error("VIHF-SIGNATURE-ALGORITHM", f"signature method {method} is not RSA-SHA256", _SIGNED_INFO)
    references = signed_info.findall("ds:Reference", NS)
    if len(references) != 1:
        findings.error("VIHF-WRAPPING", f"SignedInfo has {len(references)} references, not 1", _SIGNED_INFO)
        return
    reference = references[0]
    if reference.get("URI") != f"#{assertion_id}":
        findings.error(
            "VIHF-WRAPPING", f"the signature references {reference.get('URI')!r}, not the assertion #{assertion_id}"
        )
    transforms = [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)]
    if transforms != _TRANSFORMS:
        findings.error("VIHF-SIGNATURE-ALGORITHM", f"transforms {transforms} are not enveloped + exclusive c14n")
    digest = algorithm("ds:DigestMethod", reference)
    if digest != DigestAlgorithm.SHA256.value:
        findings.error("VIHF-SIGNATURE-ALGORITHM", f"digest {digest} is not SHA-256", _SIGNED_INFO)


def _verify_signature(
    assertion: etree._Element, signature: etree._Element, trusted_ca_pem: bytes, now: datetime, findings: _Findings
) -> tuple[etree._Element, x509.Certificate] | None:
    """The signed assertion as signxml returns it, with the certificate that signed it; None on any failure."""
    chain = _certificate_chain(signature, findings)
    if not chain:
        return None
    leaf = chain[0]
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.digital_signature:
        findings.error("VIHF-CERT-KEY-USAGE", f"certificate {leaf.subject.rfc4514_string()} lacks digitalSignature")
        return None
    try:
        verify_chain(chain, trusted_ca_pem, now)
    except UntrustedCertificate as error:
        findings.error("VIHF-CERT-UNTRUSTED", f"{leaf.subject.rfc4514_string()} does not chain to the CA: {error}")
        return None
    try:
        result = XMLVerifier().verify(
            assertion,
            x509_cert=leaf,
            id_attribute="ID",
            expect_config=replace(_SIGNATURE_CONFIG, verification_time=now),
        )
    except (SignXMLException, etree.LxmlError, ValueError) as error:
        findings.error("VIHF-SIGNATURE-INVALID", f"signature does not verify: {error}", f"{_HERE}/ds:Signature")
        return None
    signed = result.signed_xml if isinstance(result, VerifyResult) else None
    if signed is None or signed.tag != _ASSERTION or signed.get("ID") != assertion.get("ID"):
        findings.error("VIHF-WRAPPING", "what the signature covers is not the assertion")
        return None
    return signed, leaf


def _certificate_chain(signature: etree._Element, findings: _Findings) -> list[x509.Certificate]:
    texts = [el.text or "" for el in signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)]
    if not texts:
        findings.error("VIHF-CERT", "KeyInfo/X509Data carries no X509Certificate", f"{_HERE}/ds:Signature/ds:KeyInfo")
        return []
    try:
        return [x509.load_der_x509_certificate(base64.b64decode("".join(t.split()), validate=True)) for t in texts]
    except (ValueError, binascii.Error) as error:
        findings.error("VIHF-CERT", f"unreadable X509Certificate: {error}", f"{_HERE}/ds:Signature/ds:KeyInfo")
        return []


def _attribute_path(name: str) -> str:
    return f"{_HERE}/saml2:AttributeStatement/saml2:Attribute[@Name='{name}']"


class _SignedAttributes:
    """The signed assertion's attributes by name; each read records its finding under the caller's rule."""

    def __init__(self, signed: etree._Element, findings: _Findings) -> None:
        self.findings = findings
        self.by_name: dict[str, list[etree._Element]] = {}
        for attribute in signed.iterfind("saml2:AttributeStatement/saml2:Attribute", NS):
            self.by_name.setdefault(attribute.get("Name", ""), []).append(attribute)

    def _values(self, name: str, rule: str) -> list[etree._Element]:
        found = self.by_name.get(name, [])
        if len(found) != 1:
            how = "missing" if not found else f"present {len(found)} times"
            self.findings.error(rule, f"attribute {name} is {how}", _attribute_path(name))
            return []
        values = found[0].findall("saml2:AttributeValue", NS)
        if not values:
            self.findings.error(rule, f"attribute {name} has no AttributeValue", _attribute_path(name))
        return values

    def text(self, name: str, rule: str, *, required: bool = True) -> str:
        if not required and name not in self.by_name:
            return ""
        values = self._values(name, rule)
        if not values:
            return ""
        text = (values[0].text or "").strip()
        if len(values) != 1 or len(values[0]) or not text:
            self.findings.error(rule, f"attribute {name} must carry one non-empty text value", _attribute_path(name))
            return ""
        return text

    def coded(self, name: str, rule: str, local_name: str) -> list[tuple[str, str]]:
        """The (code, codeSystem) of each value, each an hl7v3 CE element such as ``<Role code codeSystem/>``."""
        codes = []
        for value in self._values(name, rule):
            elements = [child for child in value if isinstance(child.tag, str)]
            coded = elements[0] if len(elements) == 1 and elements[0].tag == f"{{{HL7}}}{local_name}" else None
            if coded is None or not coded.get("code") or not coded.get("codeSystem"):
                message = f"each {name} value must be one hl7:{local_name} with code and codeSystem"
                self.findings.error(rule, message, _attribute_path(name))
                return []
            codes.append((coded.get("code", ""), coded.get("codeSystem", "")))
        return codes


def _read_claims(
    signed: etree._Element, certificate: x509.Certificate, now: datetime, findings: _Findings
) -> VihfClaims:
    _check_validity(signed, now, findings)
    attributes = _SignedAttributes(signed, findings)
    class_ref, decl = _authn_context(signed, findings)

    version = attributes.text(ATTR_VERSION, "VIHF-VERSION")
    if version and version not in VIHF_VERSIONS:
        findings.error("VIHF-VERSION", f"VIHF_Version {version!r} is not one of {VIHF_VERSIONS}")
    mode = attributes.text(ATTR_MODE, "VIHF-AUTHN-MODE")
    if mode and mode != AUTHENTICATION_MODE:
        findings.error("VIHF-AUTHN-MODE", f"Authentification_Mode {mode!r} is not {AUTHENTICATION_MODE}")
    structure = attributes.text(ATTR_STRUCTURE, "VIHF-STRUCTURE")
    if structure and not _STRUCTURE.match(structure):
        findings.error("VIHF-STRUCTURE", f"{structure!r} is not a national structure id (type digit + id)")
    secteur = attributes.text(ATTR_SECTEUR, "VIHF-SECTEUR")
    secteur_match = _SECTEUR.match(secteur)
    if secteur and not secteur_match:
        findings.error("VIHF-SECTEUR", f"Secteur_Activite {secteur!r} is not SAxx^1.2.250.1.71.4.2.4")
    urn = attributes.text(ATTR_RESOURCE_URN, "VIHF-RESOURCE-URN")
    if urn and urn != RESOURCE_URN:
        findings.error("VIHF-RESOURCE-URN", f"Ressource_URN {urn!r} is not {RESOURCE_URN}")
    resource_id = attributes.text(ATTR_RESOURCE_ID, "VIHF-RESOURCE-ID")
    patient_ins, patient_oid = _patient(resource_id, findings) if resource_id else ("", "")
    psc_token = attributes.text(ATTR_PSC_TOKEN, "VIHF-PSC-TOKEN", required=False) or None
    if decl == DECL_PSC and psc_token is None:
        findings.error("VIHF-PSC-TOKEN", f"PSC mode declared but no {ATTR_PSC_TOKEN}", _attribute_path(ATTR_PSC_TOKEN))
    if psc_token is not None and decl != DECL_PSC:
        findings.error("VIHF-AUTHN-CONTEXT", f"a PSC token is carried but AuthnContextDecl is {decl!r}, not {DECL_PSC}")

    return VihfClaims(
        subject_id=_name_id(signed, findings),
        subject_name=attributes.text(ATTR_SUBJECT_ID, "VIHF-SUBJECT-ID"),
        roles=_roles(attributes.coded(ATTR_ROLE, "VIHF-ROLE", "Role"), findings),
        purpose_of_use=_purpose(attributes.coded(ATTR_PURPOSE, "VIHF-PURPOSE", "PurposeOfUse"), findings),
        resource_id=resource_id,
        patient_ins=patient_ins,
        patient_oid=patient_oid,
        structure_id=structure,
        secteur_activite=secteur_match.group(1) if secteur_match else "",
        authentication_mode=mode,
        authn_context=class_ref,
        authn_context_decl=decl,
        lps_nom=attributes.text(ATTR_LPS_NOM, "VIHF-LPS-NOM"),
        lps_version=attributes.text(ATTR_LPS_VERSION, "VIHF-LPS-VERSION"),
        lps_homologation=attributes.text(ATTR_LPS_HOMOLOGATION, "VIHF-LPS-HOMOLOGATION"),
        psc_token=psc_token,
        vihf_version=version,
        issuer=_issuer(signed, certificate, findings),
        signing_certificate_subject=_subject(certificate)[0],
        assertion_id=signed.get("ID", ""),
    )


def _instant(text: str | None) -> datetime | None:
    """An xs:dateTime in UTC as SAML requires (``Z`` suffix); None when absent or malformed."""
    if not text or not text.endswith("Z"):
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def _check_validity(signed: etree._Element, now: datetime, findings: _Findings) -> None:
    if signed.get("Version") != "2.0":
        findings.error("VIHF-ASSERTION", f"Version {signed.get('Version')!r} is not SAML 2.0")
    if not _NCNAME.match(signed.get("ID", "")):
        findings.error("VIHF-ASSERTION", f"ID {signed.get('ID')!r} is not an xs:ID (it must not start with a digit)")
    issued = _instant(signed.get("IssueInstant"))
    if issued is None:
        findings.error("VIHF-ASSERTION", f"IssueInstant {signed.get('IssueInstant')!r} is not a UTC xs:dateTime")
    elif issued > now + CLOCK_SKEW:
        findings.error("VIHF-NOT-YET-VALID", f"issued at {issued.isoformat()}, after now ({now.isoformat()})")
    conditions = signed.find("saml2:Conditions", NS)
    if conditions is None or (conditions.get("NotBefore") is None and conditions.get("NotOnOrAfter") is None):
        findings.add("VIHF-CONDITIONS", "warning", "no Conditions NotBefore/NotOnOrAfter: the lifetime is unbounded")
        return
    bounds = {name: conditions.get(name) for name in ("NotBefore", "NotOnOrAfter")}
    parsed = {name: _instant(text) for name, text in bounds.items() if text is not None}
    where = f"{_HERE}/saml2:Conditions"
    for name, value in parsed.items():
        if value is None:
            findings.error("VIHF-CONDITIONS", f"{name} {bounds[name]!r} is not a UTC xs:dateTime", where)
    not_before, not_after = parsed.get("NotBefore"), parsed.get("NotOnOrAfter")
    if not_before is not None and not_before > now + CLOCK_SKEW:
        findings.error(
            "VIHF-NOT-YET-VALID", f"not valid before {not_before.isoformat()} (now {now.isoformat()})", where
        )
    if not_after is not None and not_after <= now - CLOCK_SKEW:
        findings.error("VIHF-EXPIRED", f"expired at {not_after.isoformat()} (now {now.isoformat()})", where)


def _authn_context(signed: etree._Element, findings: _Findings) -> tuple[str, str]:
    statements = signed.findall("saml2:AuthnStatement", NS)
    where = f"{_HERE}/saml2:AuthnStatement/saml2:AuthnContext"
    if len(statements) != 1:
        findings.error("VIHF-AUTHN-CONTEXT", f"{len(statements)} AuthnStatement, not 1", where)
        return "", ""
    class_ref = statements[0].findtext("saml2:AuthnContext/saml2:AuthnContextClassRef", "", NS).strip()
    decl = statements[0].findtext("saml2:AuthnContext/saml2:AuthnContextDecl", "", NS).strip()
    if not class_ref.startswith(AUTHN_CLASS_PREFIX):
        findings.error("VIHF-AUTHN-CONTEXT", f"AuthnContextClassRef {class_ref!r} is not a SAML 2.0 class", where)
    if decl not in AUTHN_DECLS:
        findings.error("VIHF-AUTHN-CONTEXT", f"AuthnContextDecl {decl!r} is not one of {AUTHN_DECLS}", where)
    return class_ref, decl


_DnKey = tuple[tuple[tuple[str, str], ...], ...]


def _dn_key(name: x509.Name) -> _DnKey:
    """A DN as comparable RDNs: attribute types by OID, values case- and space-insensitive (RFC 4518 in short)."""
    return tuple(
        tuple(sorted((a.oid.dotted_string, " ".join(str(a.value).split()).casefold()) for a in rdn))
        for rdn in name.rdns
    )


@lru_cache(maxsize=64)
def _issuer_key(text: str) -> _DnKey | None:
    """The DN an Issuer text names, or None; cached: an organisation sends the same Issuer every time."""
    canonical = _DN_TYPES.sub(lambda m: m.group(1) + m.group(2).upper() + "=", _DN_SPACES.sub(r"\1", text))
    try:
        return _dn_key(x509.Name.from_rfc4514_string(canonical, _DN_ALIASES))
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _subject(certificate: x509.Certificate) -> tuple[str, _DnKey]:
    """The signing certificate's subject, as RFC 4514 text and as a DN key; cached per certificate (by its DER)."""
    return certificate.subject.rfc4514_string(), _dn_key(certificate.subject)


def _issuer(signed: etree._Element, certificate: x509.Certificate, findings: _Findings) -> str:
    """Issuer must name the signing certificate as a DN, written as RFC 4514 or as other tools print DNs.

    Accepted variations: X.500 order, spaces around separators, attribute types in any case, Windows'
    S= and E=; values compare case- and space-insensitively.
    """
    issuer = signed.find("saml2:Issuer", NS)
    where = f"{_HERE}/saml2:Issuer"
    if issuer is None or not (issuer.text or "").strip():
        findings.error("VIHF-ISSUER", "the assertion has no Issuer", where)
        return ""
    text = (issuer.text or "").strip()
    if issuer.get("Format") != ISSUER_FORMAT:
        findings.error("VIHF-ISSUER", f"Issuer Format {issuer.get('Format')!r} is not {ISSUER_FORMAT}", where)
    named = _issuer_key(text)
    if named is None:
        findings.error("VIHF-ISSUER", f"Issuer {text!r} is not a distinguished name", where)
        return text
    subject_text, subject = _subject(certificate)
    if named not in (subject, subject[::-1]):
        message = f"Issuer {text!r} is not the signing certificate's subject {subject_text!r}"
        findings.error("VIHF-ISSUER", message, where)
    return text


def _name_id(signed: etree._Element, findings: _Findings) -> str:
    name_id = signed.findtext("saml2:Subject/saml2:NameID", "", NS).strip()
    if not _IDNPS.match(name_id) or not luhn_valid(name_id[1:]):
        message = f"NameID {name_id!r} is not an IDNPS (8 + an 11-digit RPPS with a valid Luhn key)"
        findings.error("VIHF-NAMEID", message, f"{_HERE}/saml2:Subject/saml2:NameID")
    return name_id


def _roles(codes: list[tuple[str, str]], findings: _Findings) -> tuple[tuple[str, str], ...]:
    if not codes:
        return ()
    profession, system = codes[0]
    expected = SPECIALTY_SYSTEMS.get(profession) if system == PROFESSION_SYSTEM else None
    if expected is not None and (len(codes) < 2 or codes[1][1] != expected):
        found = f"codeSystem {codes[1][1]}" if len(codes) > 1 else "no second Role"
        message = f"profession {profession} needs its specialty (codeSystem {expected}) as second Role, got {found}"
        findings.error("VIHF-ROLE-SPECIALTY", message, _attribute_path(ATTR_ROLE))
    return tuple(codes)


def _purpose(codes: list[tuple[str, str]], findings: _Findings) -> str:
    if not codes:
        return ""
    code, system = codes[0]
    if len(codes) != 1 or code not in PURPOSES or system != PURPOSE_SYSTEM:
        message = f"PurposeOfUse must be one of {PURPOSES} in codeSystem {PURPOSE_SYSTEM}, got {codes}"
        findings.error("VIHF-PURPOSE", message, _attribute_path(ATTR_PURPOSE))
    return code


def _patient(resource_id: str, findings: _Findings) -> tuple[str, str]:
    where = _attribute_path(ATTR_RESOURCE_ID)
    match = _RESOURCE_ID.match(resource_id)
    if match is None:
        findings.error("VIHF-RESOURCE-ID", f"resource-id {resource_id!r} is not <INS>^^^&<OID>&ISO^NH", where)
        return "", ""
    matricule, key, oid = match.groups()
    if oid not in INS_OIDS:
        findings.error("VIHF-RESOURCE-ID", f"resource-id authority {oid} is not an INS OID", where)
    if not key_is_valid(matricule, key):
        findings.error("VIHF-RESOURCE-ID", f"INS {matricule}{key} has a wrong key", where)
    return matricule + key, oid


def _check_psc_token(claims: VihfClaims, psc_tokens: Callable[[str], dict[str, Any]], findings: _Findings) -> None:
    """Introspect the carried PSC token: active, an access token, and of the professional the VIHF names."""
    where = _attribute_path(ATTR_PSC_TOKEN)
    try:
        answer = psc_tokens(claims.psc_token or "")
    except Exception as error:  # the callback talks to PSC: any failure means the token is not proven
        findings.error("VIHF-PSC-TOKEN", f"the PSC token could not be checked: {error}", where)
        return
    if answer.get("active") is not True:
        findings.error("VIHF-PSC-TOKEN", "the PSC token is not active (expired, revoked or unknown)", where)
        return
    if answer.get("token_type", "Bearer") != "Bearer":
        findings.error("VIHF-PSC-TOKEN", f"the PSC token is a {answer.get('token_type')} token, not an access token")
    subject = answer.get("SubjectNameID") or answer.get("preferred_username")
    if subject != claims.subject_id:
        message = f"the PSC token belongs to {subject!r}, the VIHF names {claims.subject_id!r}"
        findings.error("VIHF-PSC-SUBJECT", message, where)
