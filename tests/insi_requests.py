"""INSi messages as a client sends them, and readers for what the mock answers.

Shared by the tests (pytest puts this folder on ``sys.path``) and by ``bench/insi_bench.py``
(which adds it). Written apart from the mock's own code on purpose, so that a test does not
pass because both sides share a mistake: the envelope is built with lxml from the CNAM
namespaces, and answers are read back by path, not through the mock's classes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
CTXLPS = "urn:siram:lps:ctxlps"
CTXBAM = "urn:siram:bam:ctxbam"
RECSANS = "http://www.cnamts.fr/INSiRecSans"
RECVIT = "http://www.cnamts.fr/INSiRecVit"
RESULTAT = "http://www.cnamts.fr/INSiResultat"
SIRAM = "urn:siram"

CONTENT_TYPE = "application/soap+xml; charset=utf-8"
ACTION_PREFIX = "urn:ServiceIdentiteCertifiee:1.0.0:"
TRAITS = "rechercherInsAvecTraitsIdentite"
VITALE = "rechercherInsAvecCarteVitale"
IDAM = "SEGUR-REF-DPI-0001"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def traits_request(
    nom: str,
    prenoms: str | Sequence[str],
    sexe: str,
    date_naissance: str,
    lieu_naissance: str | None = None,
    **envelope_options: Any,
) -> bytes:
    """A rechercherInsAvecTraitsIdentite envelope (RECSANSVITALE); options as for ``insi_envelope``."""
    payload = etree.Element(f"{{{RECSANS}}}RECSANSVITALE", nsmap={None: RECSANS})
    etree.SubElement(payload, f"{{{RECSANS}}}NomNaissance").text = nom
    for prenom in [prenoms] if isinstance(prenoms, str) else prenoms:
        etree.SubElement(payload, f"{{{RECSANS}}}Prenom").text = prenom
    etree.SubElement(payload, f"{{{RECSANS}}}Sexe").text = sexe
    etree.SubElement(payload, f"{{{RECSANS}}}DateNaissance").text = date_naissance
    if lieu_naissance:
        etree.SubElement(payload, f"{{{RECSANS}}}LieuNaissance").text = lieu_naissance
    return insi_envelope(TRAITS, payload, **envelope_options)


def vitale_request(matricule: str, date_naissance: str, nom: str | None = None, **envelope_options: Any) -> bytes:
    """A rechercherInsAvecCarteVitale envelope (RECVITALE) with the card's individual matricule."""
    payload = etree.Element(f"{{{RECVIT}}}RECVITALE", nsmap={None: RECVIT})
    individu = etree.SubElement(payload, f"{{{RECVIT}}}MatriculeIndividu")
    etree.SubElement(individu, f"{{{RECVIT}}}NumIdentifiant").text = matricule
    if nom:
        etree.SubElement(payload, f"{{{RECVIT}}}NomNaissance").text = nom
    etree.SubElement(payload, f"{{{RECVIT}}}DateNaissance").text = date_naissance
    return insi_envelope(VITALE, payload, **envelope_options)


def insi_envelope(
    operation: str,
    payload: etree._Element,
    *,
    idam: str = IDAM,
    action: str | None = None,
    message_id: str | None = None,
    contexte_lps: bool = True,
    contexte_bam: bool = True,
) -> bytes:
    """SOAP 1.2 envelope with the headers the service requires: ContexteLPS, ContexteBAM, wsa:Action/MessageID.

    ``action`` overrides the wsa:Action (default: the operation's); ``contexte_lps`` /
    ``contexte_bam`` set to False leave that header out, to build invalid requests.
    """
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    root = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12, "wsa": WSA})
    header = etree.SubElement(root, f"{{{SOAP12}}}Header")
    if contexte_lps:
        lps = etree.SubElement(
            header, f"{{{CTXLPS}}}ContexteLPS", {"Nature": "CTXLPS", "Version": "01_00"}, nsmap={"ctxlps": CTXLPS}
        )
        etree.SubElement(lps, f"{{{CTXLPS}}}Id").text = str(uuid.uuid4())
        etree.SubElement(lps, f"{{{CTXLPS}}}Temps").text = now
        software = etree.SubElement(lps, f"{{{CTXLPS}}}LPS")
        etree.SubElement(software, f"{{{CTXLPS}}}IDAM", {"R": "4"}).text = idam
        etree.SubElement(software, f"{{{CTXLPS}}}Version").text = "1.0"
        etree.SubElement(software, f"{{{CTXLPS}}}Instance").text = "segur-tests"
        etree.SubElement(software, f"{{{CTXLPS}}}Nom").text = "SEGUR HARNESS TESTS"
    if contexte_bam:
        bam = etree.SubElement(header, f"{{{CTXBAM}}}ContexteBAM", {"Version": "01_02"}, nsmap={"ctxbam": CTXBAM})
        etree.SubElement(bam, f"{{{CTXBAM}}}Id").text = str(uuid.uuid4())
        etree.SubElement(bam, f"{{{CTXBAM}}}Temps").text = now
        etree.SubElement(bam, f"{{{CTXBAM}}}COUVERTURE")
    etree.SubElement(header, f"{{{WSA}}}Action").text = action if action is not None else ACTION_PREFIX + operation
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = message_id or f"uuid:{uuid.uuid4()}"
    etree.SubElement(root, f"{{{SOAP12}}}Body").append(payload)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def message_id_of(request: bytes) -> str:
    """The wsa:MessageID of a request built here (to find its exchange in the journal)."""
    return etree.fromstring(request, _PARSER).findtext(f".//{{{WSA}}}MessageID") or ""


@dataclass
class InsRecord:
    matricule: str
    cle: str
    oid: str
    date_debut: str | None = None
    date_fin: str | None = None


@dataclass
class Resultat:
    """A RESULTAT read back by element path; ``element`` is kept for schema validation."""

    element: etree._Element
    code_cr: str
    libelle_cr: str
    actif: InsRecord | None = None
    historique: list[InsRecord] = field(default_factory=list)
    tiq: dict[str, str] = field(default_factory=dict)


def body_child(content: bytes) -> etree._Element:
    """The single child of a SOAP 1.2 Body (RESULTAT or Fault); raises AssertionError otherwise."""
    root = etree.fromstring(content, _PARSER)
    assert root.tag == f"{{{SOAP12}}}Envelope", f"not a SOAP 1.2 envelope: {root.tag}"
    body = root.find(f"{{{SOAP12}}}Body")
    assert body is not None and len(body) == 1, "a SOAP Body holds exactly one element"
    return body[0]


def read_resultat(content: bytes) -> Resultat:
    element = body_child(content)
    assert element.tag == f"{{{RESULTAT}}}RESULTAT", f"expected RESULTAT, got {element.tag}"

    def text(parent: etree._Element, path: str) -> str:
        return (parent.findtext("/".join(f"{{{RESULTAT}}}{step}" for step in path.split("/"))) or "").strip()

    def record(parent: etree._Element) -> InsRecord:
        return InsRecord(
            text(parent, "IdIndividu/NumIdentifiant"),
            text(parent, "IdIndividu/Cle"),
            text(parent, "OID"),
            text(parent, "DateDeb") or None,
            text(parent, "DateFin") or None,
        )

    result = Resultat(element, text(element, "CR/CodeCR"), text(element, "CR/LibelleCR"))
    individu = element.find(f"{{{RESULTAT}}}INDIVIDU")
    if individu is not None:
        actif = individu.find(f"{{{RESULTAT}}}INSACTIF")
        result.actif = record(actif) if actif is not None else None
        result.historique = [record(e) for e in individu.findall(f"{{{RESULTAT}}}INSHISTO")]
        tiq = individu.find(f"{{{RESULTAT}}}TIQ")
        if tiq is not None:
            result.tiq = {etree.QName(child).localname: (child.text or "").strip() for child in tiq}
    return result


@dataclass
class Fault:
    """A SOAP 1.2 Fault read back: Code/Value, the siram subcode's local name, the siram:Erreur detail."""

    code: str
    subcode: str
    reason: str
    erreur: etree._Element | None


def read_fault(content: bytes) -> Fault:
    element = body_child(content)
    assert element.tag == f"{{{SOAP12}}}Fault", f"expected soap:Fault, got {element.tag}"
    value = element.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value")
    subvalue = element.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Subcode/{{{SOAP12}}}Value")
    assert value is not None and subvalue is not None, "a siram fault has Code/Value and Code/Subcode/Value"

    def qname(node: etree._Element) -> etree.QName:
        prefix, _, local = (node.text or "").strip().rpartition(":")
        return etree.QName(node.nsmap.get(prefix or None), local)

    code, sub = qname(value), qname(subvalue)
    assert code.namespace == SOAP12, f"fault code {value.text!r} is not in the SOAP 1.2 namespace"
    assert sub.namespace == SIRAM, f"fault subcode {subvalue.text!r} is not in the siram namespace"
    return Fault(
        code=code.localname,
        subcode=sub.localname,
        reason=element.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or "",
        erreur=element.find(f"{{{SOAP12}}}Detail/{{{SIRAM}}}Erreur"),
    )
