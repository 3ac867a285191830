"""The INSi mock on the wire: SOAP 1.2 at /lps, mTLS with INSI-AUTO/INSI-MANU, CNAM namespaces.

Fault codes are the harness's model of the service's ``siram_*`` / ``desir_*`` families
(the public contract defines the ``siram:Erreur`` detail, not the list of codes):
see FAULTS below and docs/mocks.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from segur.mocks.insi.registry import (
    IdentityRegistry,
    InsRecord,
    SearchResult,
    TraitsQuery,
    VitaleQuery,
)
from segur.mocks.runtime.faults import FaultInjector
from segur.mocks.runtime.http import Handled, HttpRequest, HttpResponse
from segur.mocks.runtime.soap import SoapProblem, envelope, fault, read_envelope

NS_RECSANS = "http://www.cnamts.fr/INSiRecSans"
NS_RECVIT = "http://www.cnamts.fr/INSiRecVit"
NS_RESULTAT = "http://www.cnamts.fr/INSiResultat"
NS_CTXLPS = "urn:siram:lps:ctxlps"
NS_CTXBAM = "urn:siram:bam:ctxbam"
NS_SIRAM = "urn:siram"
NS_WSA = "http://www.w3.org/2005/08/addressing"
ACTION_PREFIX = "urn:ServiceIdentiteCertifiee:1.0.0:"
OPERATIONS = {
    "rechercherInsAvecTraitsIdentite": f"{{{NS_RECSANS}}}RECSANSVITALE",
    "rechercherInsAvecCarteVitale": f"{{{NS_RECVIT}}}RECVITALE",
}
AUTHORISED_CNS = ("INSI-AUTO", "INSI-MANU")

# code -> (sender fault?, reason). Runtime refusals and SOAP problems map onto these.
FAULTS: dict[str, tuple[bool, str]] = {
    "siram_10": (True, "Requete mal formee"),
    "siram_11": (True, "Type de contenu non supporte"),
    "siram_12": (True, "Declaration DOCTYPE ou d'entite refusee"),
    "siram_20": (True, "En-tete obligatoire absent ou invalide"),
    "siram_30": (True, "Operation inconnue"),
    "siram_40": (True, "Requete trop volumineuse"),
    "siram_50": (True, "Donnees de recherche invalides"),
    "siram_90": (False, "Service momentanement indisponible"),
    "desir_550": (True, "Logiciel non autorise (IDAM inconnu)"),
    "desir_560": (True, "Certificat d'authentification non autorise pour ce service"),
    "desir_570": (True, "Jeton Pro Sante Connect invalide, expire ou revoque"),
}
# Our model: the real INSi code for a bad PSC token is not public.
PSC_TOKEN_FAULT = "desir_570"
_PROBLEM_CODES = {"malformed": "siram_10", "content_type": "siram_11", "doctype": "siram_12"}


class InsiApp:
    """HTTP application of the INSi mock; the registry is shared with the control API."""

    name = "insi"

    def __init__(
        self, registry: IdentityRegistry, faults: FaultInjector, psc_tokens: Callable[[str], dict] | None = None
    ) -> None:
        self.registry = registry
        self.faults = faults
        self.psc_tokens = psc_tokens

    def reject(self, request: HttpRequest, status: int, reason: str) -> Handled:
        code = "siram_40" if status == 413 else "siram_90" if status >= 500 else "siram_10"
        handled = self._fault(code, reason, operation="rejected", outcome={"http_status": status})
        handled.response.status = status  # 413 / 408 / 400 say more than the fault's generic 400
        return handled

    def handle(self, request: HttpRequest) -> Handled:
        try:
            return self._handle(request)
        except SoapProblem as problem:
            code = problem.code if problem.code.startswith(("siram", "desir")) else _PROBLEM_CODES[problem.code]
            return self._fault(code, problem.reason, operation=problem.operation)

    def _handle(self, request: HttpRequest) -> Handled:
        if request.path != "/lps":
            raise SoapProblem("siram_30", f"no service at {request.path}; the INSi endpoint is /lps")
        cn = request.peer.get("cn", "")
        if cn not in AUTHORISED_CNS:
            raise SoapProblem("desir_560", f"client certificate CN {cn!r} is not INSI-AUTO or INSI-MANU")
        soap = read_envelope(request)
        operation = soap.action.removeprefix(ACTION_PREFIX) if soap.action.startswith(ACTION_PREFIX) else ""
        if operation not in OPERATIONS:
            raise SoapProblem("siram_30", f"unknown action {soap.action!r}")
        if soap.payload.tag != OPERATIONS[operation]:
            raise SoapProblem("siram_10", f"{operation} expects {OPERATIONS[operation]}, got {soap.payload.tag}")
        context = _read_context(soap)
        if context["idam"] not in self.registry.idam:
            raise SoapProblem("desir_550", f"IDAM {context['idam']!r} is not authorised", operation=operation)
        correlation = {"operation": operation, "certificate_cn": cn, **context, **self._professional(request)}
        injected = self.faults.take(operation)
        if injected is not None and injected.kind == "soap_fault":
            return self._fault(
                injected.code or "siram_90",
                "fault injected by the control API",
                operation=operation,
                outcome={"injected": "soap_fault"},
            )
        if injected is not None and injected.kind == "http_error":
            response = HttpResponse(injected.status, b"Service Unavailable")
            return Handled(response, operation, correlation, {"injected": "http_error"})
        try:
            result, query = self._search(operation, soap.payload)
        except SoapProblem as problem:
            problem.operation = operation
            raise
        correlation.update(query)
        if result.identity is not None:
            correlation["ins"] = result.identity.actif.matricule
        body = envelope(_resultat(result))
        handled = Handled(
            HttpResponse(200, body, "application/soap+xml; charset=utf-8"),
            operation,
            correlation,
            {"code_cr": result.code},
        )
        if injected is not None:
            handled.delay = injected.delay
            handled.outcome["injected"] = f"timeout ({injected.delay:g} s)"
        return handled

    def _professional(self, request: HttpRequest) -> dict[str, str]:
        """Profile ``psc-bearer`` (our model, see docs/mocks.md): the professional's PSC access token
        rides along as ``Authorization: Bearer`` on the organisation's mTLS connection."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not token:
            return {}
        if scheme.lower() != "bearer" or self.psc_tokens is None:
            raise SoapProblem(PSC_TOKEN_FAULT, f"{scheme} credentials are not accepted here")
        try:
            claims = self.psc_tokens(token.strip())
        except ValueError as error:
            raise SoapProblem(PSC_TOKEN_FAULT, str(error)) from error
        return {"ps_national_id": str(claims.get("preferred_username", "")), "psc_profile": "psc-bearer"}

    def _search(self, operation: str, payload: etree._Element) -> tuple[SearchResult, dict[str, str]]:
        if operation == "rechercherInsAvecTraitsIdentite":
            query = TraitsQuery(
                nom_naissance=_required(payload, NS_RECSANS, "NomNaissance"),
                prenoms=tuple(p.text or "" for p in payload.findall(f"{{{NS_RECSANS}}}Prenom")),
                sexe=_required(payload, NS_RECSANS, "Sexe"),
                date_naissance=_required(payload, NS_RECSANS, "DateNaissance"),
                lieu_naissance=payload.findtext(f"{{{NS_RECSANS}}}LieuNaissance"),
            )
            if not query.prenoms or query.sexe not in ("M", "F"):
                raise SoapProblem("siram_50", "Prenom and Sexe (M or F) are required")
            result = self.registry.search_traits(query)
            return result, {"nom": query.nom_naissance, "prenom": query.prenoms[0], "code_cr": result.code}
        matricule = payload.find(f"{{{NS_RECVIT}}}MatriculeIndividu")
        number = matricule.findtext(f"{{{NS_RECVIT}}}NumIdentifiant") if matricule is not None else None
        if not number:
            raise SoapProblem("siram_50", "MatriculeIndividu/NumIdentifiant is required")
        vitale = VitaleQuery(
            matricule=number,
            date_naissance=_required(payload, NS_RECVIT, "DateNaissance"),
            nom_naissance=payload.findtext(f"{{{NS_RECVIT}}}NomNaissance"),
        )
        result = self.registry.search_vitale(vitale)
        return result, {"matricule_carte": number, "code_cr": result.code}

    def _fault(self, code: str, detail: str, *, operation: str, outcome: dict[str, Any] | None = None) -> Handled:
        # A tester may inject a code the harness does not model: answer it as a server-side fault.
        sender, reason = FAULTS.get(code, (False, "Erreur injectee"))
        erreur = etree.Element(f"{{{NS_SIRAM}}}Erreur", nsmap={"siram": NS_SIRAM})
        erreur.set("severite", "fatale" if not sender else "erreur")
        erreur.set("code", code)
        erreur.text = detail
        status, body = fault(sender=sender, subcode=("siram", NS_SIRAM, code), reason=reason, detail=erreur)
        response = HttpResponse(status, body, "application/soap+xml; charset=utf-8")
        return Handled(response, operation, {}, {"fault": code, "detail": detail, **(outcome or {})})


def _required(payload: etree._Element, namespace: str, local: str) -> str:
    value = payload.findtext(f"{{{namespace}}}{local}")
    if not value:
        raise SoapProblem("siram_50", f"{local} is required")
    return value.strip()


def _read_context(soap: Any) -> dict[str, str]:
    """ContexteLPS (with the IDAM), ContexteBAM and wsa:MessageID are mandatory headers."""
    lps = soap.header_child(NS_CTXLPS, "ContexteLPS")
    if lps is None or lps.get("Nature") != "CTXLPS" or not lps.get("Version"):
        raise SoapProblem("siram_20", "ContexteLPS header (Nature=CTXLPS, Version) is required")
    idam = lps.findtext(f"{{{NS_CTXLPS}}}LPS/{{{NS_CTXLPS}}}IDAM")
    if not idam or not lps.findtext(f"{{{NS_CTXLPS}}}Id") or not lps.findtext(f"{{{NS_CTXLPS}}}Temps"):
        raise SoapProblem("siram_20", "ContexteLPS needs Id, Temps and LPS/IDAM")
    bam = soap.header_child(NS_CTXBAM, "ContexteBAM")
    if bam is None or not bam.get("Version") or bam.find(f"{{{NS_CTXBAM}}}COUVERTURE") is None:
        raise SoapProblem("siram_20", "ContexteBAM header (Version, COUVERTURE) is required")
    message_id = soap.header_child(NS_WSA, "MessageID")
    if message_id is None or not (message_id.text or "").strip():
        raise SoapProblem("siram_20", "wsa:MessageID header is required")
    return {
        "idam": idam.strip(),
        "lps_nom": lps.findtext(f"{{{NS_CTXLPS}}}LPS/{{{NS_CTXLPS}}}Nom") or "",
        "lps_version": lps.findtext(f"{{{NS_CTXLPS}}}LPS/{{{NS_CTXLPS}}}Version") or "",
        "message_id": message_id.text.strip(),
    }


def _resultat(result: SearchResult) -> etree._Element:
    """RESULTAT in the schema's element order (the real service's INSHISTO order is not valid)."""
    root = etree.Element(f"{{{NS_RESULTAT}}}RESULTAT", nsmap={None: NS_RESULTAT, "ns2": NS_RECSANS, "ns3": NS_RECVIT})

    def add(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, f"{{{NS_RESULTAT}}}{local}")
        if text is not None:
            child.text = text
        return child

    cr = add(root, "CR")
    add(cr, "CodeCR", result.code)
    add(cr, "LibelleCR", result.libelle)
    identity = result.identity
    if identity is None:
        return root
    individu = add(root, "INDIVIDU")

    def ins(local: str, record: InsRecord) -> None:
        element = add(individu, local)
        id_individu = add(element, "IdIndividu")
        add(id_individu, "NumIdentifiant", record.matricule)
        add(id_individu, "Cle", record.cle)
        add(element, "OID", record.oid)
        if record.date_debut:
            add(element, "DateDeb", record.date_debut)
        if record.date_fin:
            add(element, "DateFin", record.date_fin)

    ins("INSACTIF", identity.actif)
    for historic in identity.historique:
        ins("INSHISTO", historic)
    tiq = add(individu, "TIQ")
    add(tiq, "NomNaissance", identity.nom_naissance)
    add(tiq, "ListePrenom", identity.prenoms)
    add(tiq, "Sexe", identity.sexe)
    add(tiq, "DateNaissance", identity.date_naissance)
    add(tiq, "LieuNaissance", identity.lieu_naissance)
    return root
