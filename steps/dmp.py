"""DMP steps: drive the SUT's DMP feature and judge it on what the DMP mock received.

The evidence is the journal's raw requests: each is re-read here (HTTP framing, SOAP 1.2, MTOM,
the VIHF re-verified with ``segur.vihf``, the submitted CDA and its metadata), so a Then step
judges the bytes the software sent, never its own account of them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import h11
from lxml import etree
from pytest_bdd import given, parsers, then, when

from segur.journal import payload
from segur.mocks.runtime.http import HttpRequest
from segur.mocks.runtime.soap import SoapEnvelope, read_envelope
from segur.rpps import luhn_valid
from segur.steps.common import NotExercised, ScenarioContext, qualify, register_inline
from segur.steps.insi import fetch_by_traits
from segur.sut import SutActionError
from segur.vihf import VihfClaims, verify_vihf
from segur.xds import ebrim

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
HL7 = "urn:hl7-org:v3"
XDSB = "urn:ihe:iti:xds-b:2007"
VIHF_FAULTS = ("DMPInvalidVihf", "DMPVihfPatientMismatch")
N1_FORMAT = "urn:ihe:iti:xds-sd:pdf:2008"
N1_TEMPLATE = "1.3.6.1.4.1.19376.1.2.20"


@dataclass
class DmpExchange:
    """One journaled DMP exchange, re-read from its raw request."""

    record: dict[str, Any]
    trusted_ca_pem: bytes

    @property
    def operation(self) -> str:
        return self.record["operation"]

    @property
    def outcome(self) -> dict[str, Any]:
        return self.record["outcome"]

    @cached_property
    def soap(self) -> SoapEnvelope | None:
        try:
            return read_envelope(_http_request(payload(self.record, "request")), allow_mtom=True)
        except Exception:  # evidence the mock refused to read: the checks say so, they do not crash
            return None

    @cached_property
    def vihf(self) -> tuple[VihfClaims | None, list[Any]]:
        security = self.soap.header_child(WSSE, "Security") if self.soap is not None else None
        if security is None:
            return None, []
        return verify_vihf(security, trusted_ca_pem=self.trusted_ca_pem)

    def documents(self) -> list[tuple[etree._Element, bytes]]:
        """ITI-41: each DocumentEntry (ExtrinsicObject) with the bytes of its document."""
        if self.soap is None or self.operation != "iti41":
            return []
        contents = {el.get("id"): self.soap.binary(el) for el in self.soap.payload.findall(f"{{{XDSB}}}Document")}
        return [
            (entry, contents.get(entry.get("id"), b""))
            for entry in self.soap.payload.iter(f"{ebrim.RIM}ExtrinsicObject")
        ]


def _http_request(raw: bytes) -> HttpRequest:
    """De-frame a journaled HTTP/1.1 request with h11 (Content-Length or chunked alike)."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(raw)
    head, body = None, bytearray()
    while True:
        event = connection.next_event()
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body.extend(event.data)
        else:
            break
    if head is None:
        raise ValueError("no HTTP request in the journal record")
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in head.headers}
    return HttpRequest(head.method.decode(), head.target.decode(), headers, bytes(body), raw, {}, "")


def dmp_exchanges(ctx: ScenarioContext, *operations: str) -> list[DmpExchange]:
    ca = ctx.harness.pki.trust_bundle()
    records = ctx.harness.journal(ctx.journal_start, "dmp")
    return [DmpExchange(r, ca) for r in records if not operations or r["operation"] in operations]


def _about_patient(exchange: DmpExchange, matricule: str) -> bool:
    return exchange.record["correlation"].get("ins", "")[:13] == matricule


def _patient_ins(ctx: ScenarioContext) -> str:
    """The scenario patient's matricule, as INSi gave it (works whatever the SUT adapter can observe)."""
    found = [
        r["correlation"]["ins"] for r in ctx.harness.journal(ctx.journal_start, "insi") if r["correlation"].get("ins")
    ]
    if not found:
        raise NotExercised("le patient n'a pas d'INS : le DMP ne peut pas être concerné")
    return found[-1][:13]


def _require_vihf_accepted(exchanges: list[DmpExchange]) -> None:
    refused = [e for e in exchanges if e.outcome.get("fault") in VIHF_FAULTS]
    if refused:
        raise NotExercised(f"le DMP a refusé le VIHF ({refused[0].outcome['fault']}) : voir DMP/PROV.01")


def _act(ctx: ScenarioContext, action: str, **params: Any) -> dict[str, Any]:
    try:
        result = ctx.act(action, patient_id=ctx.patient_id, **params)
        ctx.last_error = None
    except SutActionError as error:
        ctx.last_result, ctx.last_error = {}, error
        return {}
    return result


# -- Given ------------------------------------------------------------------------------------


@given("le DMP est disponible")
def dmp_available(ctx: ScenarioContext) -> None:
    assert ctx.harness.endpoints["mocks"]["dmp"]["endpoints"], "le bouchon DMP ne tourne pas"


@given(
    parsers.parse(
        'le patient "{nom_naissance}" "{prenoms}" de sexe {sexe} né le {date_naissance} à {lieu_naissance} '
        "a une identité qualifiée dans le logiciel"
    )
)
def qualified_patient(
    ctx: ScenarioContext, nom_naissance: str, prenoms: str, sexe: str, date_naissance: str, lieu_naissance: str
) -> None:
    """Registered, INS fetched from INSi, identity checked on an ID card: the DMP may receive its INS."""
    register_inline(ctx, nom_naissance, prenoms, sexe, date_naissance, lieu_naissance)
    fetch_by_traits(ctx)
    qualify(ctx, "carte_identite")
    if ctx.last_error is not None:
        raise NotExercised(f"l'identité n'a pas pu être qualifiée : {ctx.last_error}")
    patient = ctx.observe("get_patient", "L'identité du patient a-t-elle le statut « identité qualifiée » ?")
    if patient is not None and patient["statut"] != "qualifiee":
        raise NotExercised(f"l'identité a le statut {patient['statut']!r} : le DMP ne peut recevoir son INS")


FAULTS = {
    "une erreur SOAP": {"kind": "soap_fault", "code": "DMPServiceUnavailable"},
    "une erreur du registre": {"kind": "registry_error", "code": "XDSRegistryBusy"},
    "un dépassement de délai": {"kind": "timeout"},
}


@given(parsers.parse("le DMP répond au prochain envoi par {panne}"))
def dmp_fault(ctx: ScenarioContext, panne: str) -> None:
    fault = {**FAULTS[panne], "operation": "iti41"}
    if fault["kind"] == "timeout":
        fault["delay"] = ctx.harness.options.fault_delay
    ctx.harness.inject_fault("dmp", fault)


# -- When -------------------------------------------------------------------------------------


@when("le logiciel teste le DMP de ce patient")
def check_dmp(ctx: ScenarioContext) -> None:
    _act(ctx, "check_dmp")


@when("un document est validé pour ce patient")
def produce(ctx: ScenarioContext) -> None:
    _act(ctx, "produce_document")


@when(parsers.parse("le logiciel envoie au DMP un document de niveau {niveau} pour ce patient"))
@given(parsers.parse("le logiciel a envoyé au DMP un document de niveau {niveau} pour ce patient"))
def publish(ctx: ScenarioContext, niveau: str) -> None:
    _act(ctx, "publish_document", niveau=niveau)


@when("le logiciel envoie au DMP un document masqué aux professionnels pour ce patient")
def publish_masked(ctx: ScenarioContext) -> None:
    _act(ctx, "publish_document", niveau="N1", confidentialite=["MASQUE_PS"])


@when("le logiciel consulte le DMP de ce patient")
def consult(ctx: ScenarioContext) -> None:
    _act(ctx, "consult_dmp", motif="normal")


@when("le logiciel consulte le DMP de ce patient en mode bris de glace")
def consult_emergency(ctx: ScenarioContext) -> None:
    _act(ctx, "consult_dmp", motif="bris_de_glace")


def _published_unique_id(ctx: ScenarioContext) -> str:
    feeds = [e for e in dmp_exchanges(ctx, "iti41") if e.outcome.get("status") == "Success"]
    if not feeds:
        raise NotExercised("aucun document n'a été accepté par le DMP pour ce patient")
    entries = [entry for entry, _ in feeds[-1].documents() if _slot_code(entry, ebrim.DE_TYPE_CODE) != "E1762"]
    return _external_id(entries[0], ebrim.DE_UNIQUE_ID)


@when(parsers.parse("le logiciel {action} ce document dans le DMP"))
def document_action(ctx: ScenarioContext, action: str) -> None:
    actions = {"masque": ("mask_document", {"masque": True}), "remplace": ("replace_document", {}),
               "supprime": ("delete_document", {})}  # fmt: skip
    name, params = actions[action]
    ctx.document_unique_id = _published_unique_id(ctx)
    _act(ctx, name, unique_id=ctx.document_unique_id, **params)


@when("le logiciel relance l'envoi des documents en attente")
def resend(ctx: ScenarioContext) -> None:
    _act(ctx, "resend_dmp_documents")


# -- Then -------------------------------------------------------------------------------------


@then("le logiciel a testé le DMP du patient (TD0.2) avant chaque alimentation")
def td02_before_feeding(ctx: ScenarioContext) -> None:
    ins = _patient_ins(ctx)
    exchanges = [e for e in dmp_exchanges(ctx) if _about_patient(e, ins) or e.operation == "iti41"]
    feeds = [index for index, e in enumerate(exchanges) if e.operation == "iti41"]
    if not feeds:
        raise NotExercised("le logiciel n'a envoyé aucun document au DMP")
    for index in feeds:
        earlier = [e.operation for e in exchanges[:index]]
        assert "td02" in earlier, "un document a été envoyé au DMP sans test d'existence préalable (TD0.2)"


@then("le logiciel signale que l'identité du DMP diffère de l'identité locale")
def divergence_alert(ctx: ScenarioContext) -> None:
    tests = dmp_exchanges(ctx, "td02")
    if not tests:
        raise NotExercised("le logiciel n'a pas testé le DMP (TD0.2)")
    _require_vihf_accepted(tests)
    if not ctx.outcome_seen(ctx.last_result):
        ctx.confirm("Le logiciel a-t-il alerté que l'identité du DMP diffère de l'identité locale ?")
        return
    assert ctx.last_result.get("divergence") and ctx.last_result.get("alerte"), (
        f"aucune alerte de divergence d'identité : {ctx.last_result}"
    )


@then("le logiciel n'a demandé aucune autorisation (TD0.3) pour alimenter le DMP")
def no_td03(ctx: ScenarioContext) -> None:
    feeds = dmp_exchanges(ctx, "iti41")
    if not feeds:
        raise NotExercised("le logiciel n'a envoyé aucun document au DMP")
    asked = dmp_exchanges(ctx, "td03")
    assert not asked, f"le logiciel a appelé TD0.3 ({len(asked)} fois) pour alimenter le DMP"


def _opposition_seen(ctx: ScenarioContext, ins: str) -> None:
    tests = [e for e in dmp_exchanges(ctx, "td02") if _about_patient(e, ins)]
    if not tests:
        raise NotExercised("le logiciel n'a pas testé le DMP : il n'a pas pu apprendre l'opposition")


@then("le logiciel n'a pas consulté le DMP de ce patient")
def no_consultation(ctx: ScenarioContext) -> None:
    ins = _patient_ins(ctx)
    _opposition_seen(ctx, ins)
    reads = [e for e in dmp_exchanges(ctx, "iti18", "iti43") if _about_patient(e, ins)]
    assert not reads, "le logiciel a consulté le DMP malgré l'opposition du patient"


@then("le logiciel n'a pas alimenté le DMP de ce patient")
def no_feeding(ctx: ScenarioContext) -> None:
    ins = _patient_ins(ctx)
    _opposition_seen(ctx, ins)
    feeds = [e for e in dmp_exchanges(ctx, "iti41") if _about_patient(e, ins)]
    assert not feeds, "le logiciel a alimenté le DMP malgré l'opposition du patient"


@then("le logiciel n'a pas envoyé l'INS de ce patient au DMP")
def unqualified_ins_kept(ctx: ScenarioContext) -> None:
    ins = _patient_ins(ctx)
    sent = [e.operation for e in dmp_exchanges(ctx) if _about_patient(e, ins)]
    assert not sent, f"l'INS d'une identité non qualifiée a été envoyée au DMP ({', '.join(sent)})"


@then("le logiciel a listé puis ouvert les documents du DMP")
def consulted(ctx: ScenarioContext) -> None:
    exchanges = dmp_exchanges(ctx, "iti18", "iti43")
    _require_vihf_accepted(exchanges)
    if not [e for e in dmp_exchanges(ctx, "iti41") if e.outcome.get("status") == "Success"]:
        raise NotExercised("aucun document n'a été accepté par le DMP : il n'y a rien à ouvrir")
    operations = [e.operation for e in exchanges]
    assert "iti18" in operations, "le logiciel n'a pas recherché les documents du DMP (ITI-18)"
    assert "iti43" in operations[operations.index("iti18") :], "le logiciel n'a ouvert aucun document (ITI-43)"


def _verified_claims(ctx: ScenarioContext) -> list[VihfClaims]:
    exchanges = dmp_exchanges(ctx)
    if not exchanges:
        raise NotExercised("le logiciel n'a fait aucun appel au DMP")
    claims = [e.vihf[0] for e in exchanges]
    if any(claim is None for claim in claims):
        raise NotExercised("un VIHF n'a pas pu être vérifié (signature) : voir DMP/PROV.01")
    return [claim for claim in claims if claim is not None]


@then("chaque appel au DMP porte un VIHF valide, signé par l'organisation, pour le patient concerné")
def vihf_valid(ctx: ScenarioContext) -> None:
    exchanges = dmp_exchanges(ctx)
    if not exchanges:
        raise NotExercised("le logiciel n'a fait aucun appel au DMP")
    for exchange in exchanges:
        errors = [
            f for f in exchange.outcome.get("findings", []) if f["severity"] == "error" and f["rule"].startswith("VIHF")
        ]
        assert exchange.outcome.get("fault") not in VIHF_FAULTS and not errors, (
            f"VIHF refusé par le DMP ({exchange.operation}) : "
            + "; ".join(f"[{f['rule']}] {f['message']}" for f in errors[:3])
        )


@then("chaque appel au DMP porte un VIHF en authentification indirecte renforcée (AIR)")
def vihf_air(ctx: ScenarioContext) -> None:
    for claim in _verified_claims(ctx):
        assert (claim.authentication_mode, claim.authn_context_decl) == ("INDIRECTE_RENFORCEE", "APP_BROWSER_AUTH"), (
            f"VIHF en mode {claim.authentication_mode} / {claim.authn_context_decl}, "
            "attendu INDIRECTE_RENFORCEE / APP_BROWSER_AUTH"
        )


@then("chaque VIHF désigne nominativement le professionnel auteur, par son identifiant RPPS")
def vihf_names_the_author(ctx: ScenarioContext) -> None:
    claims = _verified_claims(ctx)
    authors = {
        person.split("^", 1)[0]
        for exchange in dmp_exchanges(ctx, "iti41")
        for entry, _ in exchange.documents()
        for person in _author_people(entry)
    }
    if not authors:
        raise NotExercised("aucun document envoyé : l'auteur ne peut pas être comparé au VIHF")
    for claim in claims:
        assert claim.subject_id.startswith("8") and luhn_valid(claim.subject_id[1:]), (
            f"le VIHF ne désigne pas un professionnel par son RPPS : {claim.subject_id}"
        )
        assert claim.subject_id in authors, (
            f"le VIHF désigne {claim.subject_id}, un identifiant générique et non l'auteur {sorted(authors)}"
        )


@then("chaque appel au DMP porte un VIHF en mode Pro Santé Connect avec le jeton du professionnel connecté")
def vihf_psc(ctx: ScenarioContext) -> None:
    expected = ctx.professional.get("national_id")
    user = ctx.observe("current_user", "Le professionnel est-il connecté au logiciel par Pro Santé Connect ?")
    if not expected or (user is not None and not user.get("connecte")):
        raise NotExercised("aucun professionnel ne s'est connecté avec Pro Santé Connect")
    for claim in _verified_claims(ctx):
        assert claim.psc_token and claim.authn_context_decl == "PRO_SANTE_CONNECT", (
            f"VIHF sans jeton Pro Santé Connect (mode {claim.authn_context_decl})"
        )
        assert claim.subject_id == expected, f"le VIHF désigne {claim.subject_id}, le professionnel connecté {expected}"


def _accepted_feeds(ctx: ScenarioContext) -> list[DmpExchange]:
    feeds = dmp_exchanges(ctx, "iti41")
    if not feeds:
        raise NotExercised("le logiciel n'a envoyé aucun document au DMP")
    _require_vihf_accepted(feeds)
    return feeds


@then("le DMP a accepté les métadonnées XDS de la soumission")
def metadata_accepted(ctx: ScenarioContext) -> None:
    for feed in _accepted_feeds(ctx):
        errors = [
            f for f in feed.outcome.get("findings", [])
            if f["severity"] == "error" and f["rule"].startswith("XDS")
        ]  # fmt: skip
        assert not errors, "métadonnées refusées : " + "; ".join(f"{f['rule']}: {f['message']}" for f in errors[:3])


@then("le document envoyé est conforme au CI-SIS (structuration minimale)")
def cda_conform(ctx: ScenarioContext) -> None:
    for feed in _accepted_feeds(ctx):
        errors = [
            f for f in feed.outcome.get("findings", [])
            if f["severity"] == "error" and f["rule"].startswith("InvalidDocumentContent")
        ]  # fmt: skip
        assert not errors, "document non conforme : " + "; ".join(f"{f['rule']}: {f['message']}" for f in errors[:3])


@then("le document est parti au DMP en niveau N1, avec son PDF embarqué")
def n1_with_pdf(ctx: ScenarioContext) -> None:
    documents = [
        (entry, data)
        for feed in _accepted_feeds(ctx)
        for entry, data in feed.documents()
        if _slot_code(entry, ebrim.DE_TYPE_CODE) != "E1762"
    ]
    assert documents, "la soumission ne contient aucun document"
    for entry, data in documents:
        assert _slot_code(entry, ebrim.DE_FORMAT_CODE) == N1_FORMAT, (
            f"formatCode {_slot_code(entry, ebrim.DE_FORMAT_CODE)}, attendu {N1_FORMAT} (N1)"
        )
        body = etree.fromstring(data).find(f"{{{HL7}}}component/{{{HL7}}}nonXMLBody/{{{HL7}}}text")
        assert body is not None and body.get("mediaType") == "application/pdf", "pas de corps nonXMLBody PDF"
        assert base64.b64decode("".join((body.text or "").split())).startswith(b"%PDF-"), "le corps n'est pas un PDF"


@then("le logiciel a envoyé le document au DMP de lui-même")
def sent_automatically(ctx: ScenarioContext) -> None:
    unique_id = ctx.last_result.get("unique_id")
    _require_vihf_accepted(dmp_exchanges(ctx))
    if not ctx.outcome_seen(ctx.last_result):
        ctx.confirm("Le document validé est-il parti au DMP sans autre action de l'utilisateur ?")
        return
    sent = {
        _external_id(entry, ebrim.DE_UNIQUE_ID) for feed in dmp_exchanges(ctx, "iti41") for entry, _ in feed.documents()
    }
    assert unique_id in sent, f"le document {unique_id} validé n'a pas été envoyé au DMP"


def _stored(ctx: ScenarioContext, unique_id: str) -> list[dict[str, Any]]:
    return [d for d in ctx.harness.state("dmp")["documents"] if d["uniqueId"] == unique_id]


@then(parsers.parse('le DMP enregistre le document avec le code de confidentialité "{code}"'))
def stored_with_confidentiality(ctx: ScenarioContext, code: str) -> None:
    unique_id = _published_unique_id(ctx)
    versions = _stored(ctx, unique_id)
    current = [d for d in versions if d["status"].endswith("Approved")]
    assert current and code in current[-1]["confidentiality"], (
        f"le document {unique_id} est enregistré avec {current[-1]['confidentiality'] if current else 'rien'}"
    )


@then("le document est supprimé du DMP")
def deleted(ctx: ScenarioContext) -> None:
    unique_id = ctx.document_unique_id or ""
    statuses = {d["status"].rsplit(":", 1)[-1] for d in _stored(ctx, unique_id)}
    if not dmp_exchanges(ctx, "iti57") and "Deleted" not in statuses:
        raise AssertionError("le logiciel n'a pas demandé la suppression au DMP (ITI-57)")
    assert "Deleted" in statuses, f"le document {unique_id} n'est pas supprimé du DMP (statuts {sorted(statuses)})"


@then("le nouveau document remplace l'ancien dans le DMP")
def replaced(ctx: ScenarioContext) -> None:
    unique_id = ctx.document_unique_id or ""
    old = _stored(ctx, unique_id)
    if len(dmp_exchanges(ctx, "iti41")) < 2:
        raise NotExercised("le logiciel n'a pas envoyé de nouvelle version")
    assert old and all(d["status"].endswith("Deprecated") for d in old), (
        f"l'ancien document {unique_id} n'est pas remplacé (RPLC) : {[d['status'] for d in old]}"
    )


@then("le logiciel signale l'erreur du DMP et garde le document pour le renvoyer")
def error_kept(ctx: ScenarioContext) -> None:
    if not any(e.outcome.get("injected") for e in dmp_exchanges(ctx, "iti41")):
        raise NotExercised("la panne injectée n'a pas été atteinte par le logiciel")
    patient = ctx.patient("Le logiciel a-t-il affiché l'erreur du DMP et gardé le document pour un nouvel envoi ?")
    if patient is None:
        return
    pending = [d for d in patient.get("documents_dmp", []) if d["statut"] == "en_erreur"]
    assert pending and pending[0].get("erreur"), "le document refusé par le DMP n'est plus proposé à l'envoi"


@then("le DMP a reçu le document après la relance")
def received_after_resend(ctx: ScenarioContext) -> None:
    feeds = dmp_exchanges(ctx, "iti41")
    if any(e.outcome.get("status") == "Success" for e in feeds):  # after a timeout, the first one may have been filed
        return
    if feeds and not feeds[-1].outcome.get("injected") and feeds[-1].outcome.get("status") == "Failure":
        raise NotExercised("le DMP a refusé le document lui-même à la relance : voir DMP/PROV.02 et DMP/PROV.03")
    raise AssertionError("le DMP n'a pas reçu le document après la relance")


def _external_id(entry: etree._Element, scheme: str) -> str:
    for identifier in entry.iter(f"{ebrim.RIM}ExternalIdentifier"):
        if identifier.get("identificationScheme") == scheme:
            return identifier.get("value", "")
    return ""


def _slot_code(entry: etree._Element, scheme: str) -> str:
    for classification in entry.iter(f"{ebrim.RIM}Classification"):
        if classification.get("classificationScheme") == scheme:
            return classification.get("nodeRepresentation", "")
    return ""


def _author_people(entry: etree._Element) -> list[str]:
    return [
        value.text or ""
        for classification in entry.iter(f"{ebrim.RIM}Classification")
        if classification.get("classificationScheme") == ebrim.DE_AUTHOR
        for slot in classification.iter(f"{ebrim.RIM}Slot")
        if slot.get("name") == "authorPerson"
        for value in slot.iter(f"{ebrim.RIM}Value")
    ]
