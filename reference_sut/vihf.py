"""The reference SUT's VIHF: the SAML 2.0 assertion, signed with the organisation's signature certificate,
that every DMP request carries in its ``wsse:Security`` header.

Written independently of the harness's verifier (``segur.vihf``) on purpose: the self-test must
not pass because both sides share a misreading. The wire form follows the public ANS material
(IG "volet transmission document CDA" VIHF mapping, DRIMbox and TLSi samples): ``Issuer`` is the
certificate's DN, ``NameID`` the IDNPS, roles and purpose of use are hl7v3 ``CE`` elements, the
patient is ``<INS>^^^&<OID>&ISO^NH``, AIR is ``Authentification_Mode`` ``INDIRECTE_RENFORCEE`` with
``AuthnContextDecl`` ``APP_BROWSER_AUTH``. The PSC mode is modelled (not public): the access token
travels in attribute ``Jeton_PSC`` and ``AuthnContextDecl`` is ``PRO_SANTE_CONNECT``.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree
from lxml.builder import ElementMaker
from signxml import XMLSigner
from signxml.algorithms import SignatureConstructionMethod

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

VIHF_VERSION = "3.0"
G15_PROFESSION = ("1.2.250.1.71.1.2.7", "TRE_G15-ProfessionSante")
SPECIALTY_SYSTEMS = {  # profession -> code system of the second Role
    "10": ("1.2.250.1.71.4.2.5", "TRE_R01-EnsembleSavoirFaire-CISIS"),
    "21": ("1.2.250.1.71.4.2.6", "TRE_G05-SousSectionTableauCNOP"),
}
PURPOSE_SYSTEM = "1.2.250.1.213.1.1.4.248"
PURPOSES = {"normal": "Accès normal", "bris_de_glace": "Accès bris de glace", "centre_15": "Accès centre 15"}
AUTHN = {  # mode -> (AuthnContextClassRef, AuthnContextDecl)
    "AIR": ("urn:oasis:names:tc:SAML:2.0:ac:classes:Password", "APP_BROWSER_AUTH"),
    "PSC": ("urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered", "PRO_SANTE_CONNECT"),
}


@dataclass(frozen=True)
class Professional:
    """The logged-in professional: IDNPS ("8" + RPPS), display name, G15 profession, specialty when required."""

    idnps: str
    name: str
    profession: str
    specialty: str | None = None


@dataclass(frozen=True, kw_only=True)
class VihfRequest:
    """Everything one VIHF states; ``secteur`` is the bare code (``SA07``), ``lifetime`` in seconds."""

    professional: Professional
    structure_id: str
    secteur: str
    patient_ins: str
    patient_oid: str = "1.2.250.1.213.1.4.10"
    purpose: str = "normal"
    mode: Literal["AIR", "PSC"] = "AIR"
    psc_token: str | None = None
    lps_nom: str
    lps_version: str
    lps_homologation: str
    issue_instant: datetime
    lifetime: int = 300


class _Signer(XMLSigner):
    def check_deprecated_methods(self) -> None:
        """signxml refuses SHA-1 outright; a named defect (and its test) must be able to emit it."""


def build_vihf(request: VihfRequest, *, key_pem: bytes, cert_pem: bytes) -> etree._Element:
    """The signed ``saml2:Assertion`` for ``request``; ValueError when the request cannot be encoded."""
    certificate = x509.load_pem_x509_certificates(cert_pem)[0]
    return sign_assertion(_assertion(request, certificate.subject.rfc4514_string()), key_pem=key_pem, cert_pem=cert_pem)


def sign_assertion(
    assertion: etree._Element,
    *,
    key_pem: bytes,
    cert_pem: bytes,
    signature_algorithm: str = "rsa-sha256",
    digest_algorithm: str = "sha256",
) -> etree._Element:
    """A signed copy of ``assertion``: any previous signature replaced by an enveloped one right after Issuer.

    Exclusive c14n, the certificate (chain) of ``cert_pem`` in KeyInfo/X509Data, the reference on the
    assertion ID. The algorithms are parameters only so that a defect can weaken them.
    """
    unsigned = copy.deepcopy(assertion)
    for old in unsigned.findall(f"{{{DS}}}Signature"):
        unsigned.remove(old)
    issuer = unsigned.find(f"{{{SAML}}}Issuer")
    position = 0 if issuer is None else unsigned.index(issuer) + 1
    unsigned.insert(position, etree.Element(f"{{{DS}}}Signature", {"Id": "placeholder"}, nsmap={"ds": DS}))
    signer = _Signer(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=signature_algorithm,
        digest_algorithm=digest_algorithm,
        c14n_algorithm=EXC_C14N,
    )
    return signer.sign(unsigned, key=_private_key(key_pem), cert=cert_pem.decode(), id_attribute="ID")


@lru_cache(maxsize=4)
def _private_key(key_pem: bytes) -> PrivateKeyTypes:
    """Loading validates the RSA key (about 40 ms): once per key, not once per DMP request."""
    return load_pem_private_key(key_pem, password=None)


def security_header(assertion: etree._Element) -> etree._Element:
    """``wsse:Security`` (mustUnderstand) with ``assertion`` moved into it, ready for the SOAP 1.2 header."""
    security = etree.Element(f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "soap": SOAP})
    security.set(f"{{{SOAP}}}mustUnderstand", "true")
    security.append(assertion)
    return security


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("VIHF instants must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _assertion(request: VihfRequest, issuer: str) -> etree._Element:
    if (request.mode == "PSC") != (request.psc_token is not None):
        raise ValueError("a PSC token goes with mode PSC, and only with it")
    if request.purpose not in PURPOSES:
        raise ValueError(f"unknown purpose of use {request.purpose!r}")
    issued = _instant(request.issue_instant)
    saml = ElementMaker(namespace=SAML, nsmap={"saml2": SAML, "xsi": XSI})
    class_ref, decl = AUTHN[request.mode]
    attributes = [
        _text("VIHF_Version", VIHF_VERSION),
        _text("Authentification_Mode", "INDIRECTE_RENFORCEE"),
        _text("Identifiant_Structure", request.structure_id),
        _text("Secteur_Activite", f"{request.secteur}^1.2.250.1.71.4.2.4"),
        _text("urn:oasis:names:tc:xspa:1.0:subject:subject-id", request.professional.name),
        _coded("urn:oasis:names:tc:xacml:2.0:subject:role", "Role", _roles(request.professional)),
        _coded(
            "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
            "PurposeOfUse",
            [(request.purpose, PURPOSE_SYSTEM, "mode acces VIHF 1.0", PURPOSES[request.purpose])],
        ),
        _text(
            "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
            f"{request.patient_ins}^^^&{request.patient_oid}&ISO^NH",
        ),
        _text("Ressource_URN", "urn:dmp"),
        _text("LPS_Nom", request.lps_nom),
        _text("LPS_Version", request.lps_version),
        _text("LPS_ID_HOMOLOGATION_DMP", request.lps_homologation),
    ]
    if request.psc_token is not None:
        attributes.append(_text("Jeton_PSC", request.psc_token))
    return saml.Assertion(
        saml.Issuer(issuer, Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"),
        saml.Subject(saml.NameID(request.professional.idnps)),
        saml.Conditions(
            NotBefore=issued,
            NotOnOrAfter=_instant(request.issue_instant + timedelta(seconds=request.lifetime)),
        ),
        saml.AuthnStatement(
            saml.AuthnContext(saml.AuthnContextClassRef(class_ref), saml.AuthnContextDecl(decl)),
            AuthnInstant=issued,
        ),
        saml.AttributeStatement(*attributes),
        ID=f"_{uuid.uuid4().hex}",
        IssueInstant=issued,
        Version="2.0",
    )


def _roles(professional: Professional) -> list[tuple[str, str, str, str]]:
    roles = [(professional.profession, *G15_PROFESSION, "")]
    specialty_system = SPECIALTY_SYSTEMS.get(professional.profession)
    if specialty_system is not None and professional.specialty is None:
        raise ValueError(f"profession {professional.profession} needs its specialty in the VIHF")
    if professional.specialty is not None:
        if specialty_system is None:
            raise ValueError(f"no specialty encoding for profession {professional.profession}")
        roles.append((professional.specialty, *specialty_system, ""))
    return roles


def _text(name: str, value: str) -> etree._Element:
    attribute = etree.Element(f"{{{SAML}}}Attribute", Name=name)
    etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
    return attribute


def _coded(name: str, element: str, codes: list[tuple[str, str, str, str]]) -> etree._Element:
    """An attribute whose values are hl7v3 CE elements: (code, codeSystem, codeSystemName, displayName)."""
    attribute = etree.Element(f"{{{SAML}}}Attribute", Name=name)
    for code, system, system_name, display in codes:
        value = etree.SubElement(attribute, f"{{{SAML}}}AttributeValue")
        coded = etree.SubElement(value, f"{{{HL7}}}{element}", nsmap={None: HL7})
        coded.set(f"{{{XSI}}}type", "CE")
        coded.set("code", code)
        coded.set("codeSystem", system)
        coded.set("codeSystemName", system_name)
        if display:
            coded.set("displayName", display)
    return attribute
