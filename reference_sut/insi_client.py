"""The reference SUT's INSi client: builds the CNAM request, calls over mTLS, reads RESULTAT.

Written independently of the INSi mock on purpose (the self-test must not pass because
both sides share a bug): its own XML building and parsing, its own key check.
"""

from __future__ import annotations

import datetime as dt
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from lxml import etree

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
CTXLPS = "urn:siram:lps:ctxlps"
CTXBAM = "urn:siram:bam:ctxbam"
RECSANS = "http://www.cnamts.fr/INSiRecSans"
RECVIT = "http://www.cnamts.fr/INSiRecVit"
RESULTAT = "http://www.cnamts.fr/INSiResultat"
ACTION = "urn:ServiceIdentiteCertifiee:1.0.0:"
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class InsiUnavailable(Exception):
    """INSi did not give an answer (fault, HTTP error, timeout): never the same as CR 01."""


@dataclass
class InsRecord:
    matricule: str
    cle: str
    oid: str


@dataclass
class InsiAnswer:
    code_cr: str
    libelle: str
    actif: InsRecord | None = None
    historique: list[InsRecord] = field(default_factory=list)
    traits: dict[str, str] = field(default_factory=dict)


@dataclass
class InsiSettings:
    url: str
    ca: str
    cert: str
    key: str
    idam: str
    software_name: str
    software_version: str
    timeout: float = 10.0


class InsiClient:
    def __init__(self, settings: InsiSettings, bearer: Callable[[], str | None] = lambda: None) -> None:
        """``bearer`` gives the logged-in professional's PSC access token, if any, for each call."""
        self.settings = settings
        self.bearer = bearer
        context = ssl.create_default_context(cafile=settings.ca)
        context.load_cert_chain(settings.cert, settings.key)
        self._http = httpx.Client(verify=context, timeout=settings.timeout)

    def close(self) -> None:
        self._http.close()

    def search_traits(self, nom: str, prenom: str, sexe: str, date_naissance: str, lieu: str | None) -> InsiAnswer:
        body = etree.Element(f"{{{RECSANS}}}RECSANSVITALE", nsmap={None: RECSANS})
        for name, value in (
            ("NomNaissance", nom),
            ("Prenom", prenom),
            ("Sexe", sexe),
            ("DateNaissance", date_naissance),
            ("LieuNaissance", lieu),
        ):
            if value:
                etree.SubElement(body, f"{{{RECSANS}}}{name}").text = value
        return self._call("rechercherInsAvecTraitsIdentite", body)

    def search_vitale(self, matricule: str, cle: str, nom: str, date_naissance: str) -> InsiAnswer:
        body = etree.Element(f"{{{RECVIT}}}RECVITALE", nsmap={None: RECVIT})
        ident = etree.SubElement(body, f"{{{RECVIT}}}MatriculeIndividu")
        etree.SubElement(ident, f"{{{RECVIT}}}NumIdentifiant").text = matricule
        etree.SubElement(ident, f"{{{RECVIT}}}Cle").text = cle
        etree.SubElement(body, f"{{{RECVIT}}}NomNaissance").text = nom
        etree.SubElement(body, f"{{{RECVIT}}}DateNaissance").text = date_naissance
        etree.SubElement(body, f"{{{RECVIT}}}RangNaissance").text = "1"
        return self._call("rechercherInsAvecCarteVitale", body)

    def _call(self, operation: str, payload: etree._Element) -> InsiAnswer:
        envelope = self._envelope(operation, payload)
        headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{ACTION}{operation}"'}
        token = self.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.post(self.settings.url, content=envelope, headers=headers)
        except httpx.HTTPError as error:
            raise InsiUnavailable(f"{type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise InsiUnavailable(f"HTTP {response.status_code}: {_fault_text(response.content)}")
        return _read_resultat(response.content)

    def _envelope(self, operation: str, payload: etree._Element) -> bytes:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA, "lps": CTXLPS, "bam": CTXBAM})
        header = etree.SubElement(root, f"{{{SOAP}}}Header")
        lps = etree.SubElement(header, f"{{{CTXLPS}}}ContexteLPS", Nature="CTXLPS", Version="01_00")
        etree.SubElement(lps, f"{{{CTXLPS}}}Id").text = str(uuid.uuid4())
        etree.SubElement(lps, f"{{{CTXLPS}}}Temps").text = now
        etree.SubElement(lps, f"{{{CTXLPS}}}Emetteur").text = "segur-reference-sut"
        software = etree.SubElement(lps, f"{{{CTXLPS}}}LPS")
        etree.SubElement(software, f"{{{CTXLPS}}}IDAM", R="4").text = self.settings.idam
        etree.SubElement(software, f"{{{CTXLPS}}}Version").text = self.settings.software_version
        etree.SubElement(software, f"{{{CTXLPS}}}Instance").text = "reference-1"
        etree.SubElement(software, f"{{{CTXLPS}}}Nom").text = self.settings.software_name
        bam = etree.SubElement(header, f"{{{CTXBAM}}}ContexteBAM", Version="01_02")
        etree.SubElement(bam, f"{{{CTXBAM}}}Id").text = str(uuid.uuid4())
        etree.SubElement(bam, f"{{{CTXBAM}}}Temps").text = now
        etree.SubElement(bam, f"{{{CTXBAM}}}COUVERTURE")
        etree.SubElement(header, f"{{{WSA}}}Action").text = ACTION + operation
        etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"uuid:{uuid.uuid4()}"
        etree.SubElement(etree.SubElement(root, f"{{{SOAP}}}Body"), payload.tag).extend(list(payload))
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _fault_text(content: bytes) -> str:
    try:
        root = etree.fromstring(content, _SAFE_PARSER)
    except etree.XMLSyntaxError:
        return content[:200].decode("utf-8", "replace")
    return " ".join(t.strip() for t in root.itertext() if t.strip())[:300]


def _read_resultat(content: bytes) -> InsiAnswer:
    try:
        root = etree.fromstring(content, _SAFE_PARSER)
    except etree.XMLSyntaxError as error:
        raise InsiUnavailable(f"unreadable INSi answer: {error}") from error
    resultat = root.find(f".//{{{RESULTAT}}}RESULTAT")
    if resultat is None:
        raise InsiUnavailable("INSi answer without RESULTAT")

    def text(element: etree._Element | None, path: str) -> str:
        if element is None:
            return ""
        return (element.findtext("/".join(f"{{{RESULTAT}}}{p}" for p in path.split("/"))) or "").strip()

    def record(element: etree._Element) -> InsRecord:
        return InsRecord(
            text(element, "IdIndividu/NumIdentifiant"), text(element, "IdIndividu/Cle"), text(element, "OID")
        )

    answer = InsiAnswer(text(resultat, "CR/CodeCR"), text(resultat, "CR/LibelleCR"))
    individu = resultat.find(f"{{{RESULTAT}}}INDIVIDU")
    if individu is not None:
        answer.actif = record(individu.find(f"{{{RESULTAT}}}INSACTIF"))
        answer.historique = [record(e) for e in individu.findall(f"{{{RESULTAT}}}INSHISTO")]
        tiq = individu.find(f"{{{RESULTAT}}}TIQ")
        answer.traits = {
            "nom_naissance": text(tiq, "NomNaissance"),
            "prenoms": text(tiq, "ListePrenom"),
            "sexe": text(tiq, "Sexe"),
            "date_naissance": text(tiq, "DateNaissance"),
            "lieu_naissance": text(tiq, "LieuNaissance"),
        }
    return answer
