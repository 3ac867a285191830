"""INSi steps: drive the SUT's INS calls and judge them against what the INSi mock saw.

The journal is the ground truth: a Then step compares what the SUT says it did (its
traces, its stored INS) with the exchanges the mock recorded during the scenario.
"""

from __future__ import annotations

from typing import Any

from pytest_bdd import given, parsers, then, when

from segur.journal import payload
from segur.steps.common import NotExercised, ScenarioContext

AUTHORISED_CNS = ("INSI-AUTO", "INSI-MANU")


def insi_exchanges(ctx: ScenarioContext) -> list[dict[str, Any]]:
    """INSi exchanges of this scenario (the control API filters by mock)."""
    return ctx.harness.journal(ctx.journal_start, "insi")


def searches(ctx: ScenarioContext) -> list[dict[str, Any]]:
    return [r for r in insi_exchanges(ctx) if r["operation"].startswith("rechercherIns")]


@given("le téléservice INSi est disponible")
def insi_available(ctx: ScenarioContext) -> None:
    assert ctx.harness.endpoints["mocks"]["insi"]["endpoints"], "le bouchon INSi ne tourne pas"


@given("l'INSi répond par une erreur SOAP au prochain appel")
def insi_soap_fault(ctx: ScenarioContext) -> None:
    ctx.harness.inject_fault("insi", {"kind": "soap_fault", "code": "siram_90"})


@given("l'INSi ne répond pas dans les délais au prochain appel")
def insi_timeout(ctx: ScenarioContext) -> None:
    ctx.harness.inject_fault("insi", {"kind": "timeout", "delay": ctx.harness.options.fault_delay})


@given("l'INSi répond par une erreur HTTP 503 au prochain appel")
def insi_http_error(ctx: ScenarioContext) -> None:
    ctx.harness.inject_fault("insi", {"kind": "http_error", "status": 503})


def _fetch(ctx: ScenarioContext, mode: str, **extra: Any) -> None:
    ctx.act("fetch_ins", patient_id=ctx.patient_id, mode=mode, **extra)


def _require_accepted_calls(ctx: ScenarioContext) -> None:
    refused = [r for r in insi_exchanges(ctx) if r["outcome"].get("refused") or r["outcome"].get("fault")]
    if refused and not any(r["outcome"].get("injected") for r in refused):
        first = refused[0]["outcome"]
        raise NotExercised(f"l'INSi a refusé l'appel ({first.get('fault') or first.get('refused')})")
    if not searches(ctx):
        raise NotExercised("le logiciel n'a fait aucun appel INSi")


@when("le logiciel interroge l'INSi par les traits pour ce patient")
@given("le logiciel a interrogé l'INSi par les traits pour ce patient")
def fetch_by_traits(ctx: ScenarioContext) -> None:
    _fetch(ctx, "traits")
    _require_accepted_calls(ctx)


@given(parsers.parse("l'INS du patient {recherche} été recherchée auprès de l'INSi"))
def fetched_or_not(ctx: ScenarioContext, recherche: str) -> None:
    """Outline form: ``a`` runs the retrieval, ``n'a pas`` leaves the identity untouched."""
    if recherche == "a":
        fetch_by_traits(ctx)


@when(parsers.parse('le logiciel interroge l\'INSi avec la carte Vitale "{matricule}" pour ce patient'))
def fetch_by_card(ctx: ScenarioContext, matricule: str) -> None:
    _fetch(ctx, "carte_vitale", carte_vitale={"matricule": matricule[:13], "cle": matricule[13:]})
    _require_accepted_calls(ctx)


@when("le logiciel appelle l'INSi pour ce patient, quelle que soit la réponse")
def call_whatever_answer(ctx: ScenarioContext) -> None:
    """For the authentication requirement: a refusal by the mock is what is under test."""
    _fetch(ctx, "traits")


@when("le logiciel tente d'interroger l'INSi pour ce patient")
def try_fetch(ctx: ScenarioContext) -> None:
    """For outage scenarios: the injected fault must have been reached, or nothing was tested."""
    _fetch(ctx, "traits")
    if not any(r["outcome"].get("injected") for r in insi_exchanges(ctx)):
        raise NotExercised("la panne injectée n'a pas été atteinte par le logiciel")


@when("le logiciel vérifie l'INS de ce patient")
def verify(ctx: ScenarioContext) -> None:
    ctx.act("verify_ins", patient_id=ctx.patient_id)
    _require_accepted_calls(ctx)


@then(parsers.parse('l\'INSi a répondu avec le code retour "{code}"'))
def insi_answered(ctx: ScenarioContext, code: str) -> None:
    codes = [r["outcome"].get("code_cr") for r in searches(ctx)]
    assert codes and codes[-1] == code, f"l'INSi a répondu {codes}, le scénario attend {code}"


@then("le logiciel a tracé chaque appel INSi avec son code retour")
def traced_with_code(ctx: ScenarioContext) -> None:
    calls = ctx.traces("recherche_ins", "Chaque appel INSi est-il tracé avec son code retour (00, 01, 02) ?")
    if calls is None:
        return
    expected = [r["outcome"]["code_cr"] for r in searches(ctx)]
    traced = [t.get("code_cr") for t in calls]
    assert traced == expected, f"codes retour tracés {traced}, codes renvoyés par l'INSi {expected}"


@then("le logiciel a tracé la vérification avec son résultat")
def verification_traced(ctx: ScenarioContext) -> None:
    verifications = ctx.traces("verification_ins", "La vérification de l'INS est-elle tracée avec son résultat ?")
    if verifications is None:
        return
    expected = searches(ctx)[-1]["outcome"]["code_cr"]
    assert verifications, "aucune trace de vérification de l'INS"
    assert verifications[-1].get("code_cr") == expected, (
        f"la trace de vérification porte {verifications[-1].get('code_cr')!r}, l'INSi a répondu {expected}"
    )


@then("chaque appel INSi a été authentifié par un certificat IGC-Santé INSI-AUTO ou INSI-MANU")
def certificate_cn(ctx: ScenarioContext) -> None:
    exchanges = insi_exchanges(ctx)
    assert exchanges, "le logiciel n'a fait aucun appel INSi"
    for record in exchanges:
        cn = record["peer"].get("cn")
        assert record["outcome"].get("refused") != "tls", (
            f"appel #{record['seq']} refusé en TLS : {record['outcome'].get('reason')}"
        )
        assert cn in AUTHORISED_CNS, f"appel #{record['seq']} avec un certificat de CN {cn!r}"
        assert record["peer"].get("issuer_cn", "").startswith("TEST AC IGC-SANTE"), "émetteur inattendu"


def _stored_ins(ctx: ScenarioContext, question: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    patient = ctx.patient(question)
    return patient, (_last_found(ctx) if patient is not None else {})


def _last_found(ctx: ScenarioContext) -> dict[str, Any]:
    """INSACTIF of the last 00 answer, read from the journal's raw response."""
    from lxml import etree

    found = [r for r in searches(ctx) if r["outcome"].get("code_cr") == "00"]
    assert found, "l'INSi n'a renvoyé aucune identité dans ce scénario"
    raw = payload(found[-1], "response")
    root = etree.fromstring(raw.split(b"\r\n\r\n", 1)[1])
    ns = {"r": "http://www.cnamts.fr/INSiResultat"}
    return {
        "matricule": root.findtext(".//r:INSACTIF/r:IdIndividu/r:NumIdentifiant", namespaces=ns),
        "cle": root.findtext(".//r:INSACTIF/r:IdIndividu/r:Cle", namespaces=ns),
        "oid": root.findtext(".//r:INSACTIF/r:OID", namespaces=ns),
        "liste_prenom": root.findtext(".//r:TIQ/r:ListePrenom", namespaces=ns),
        "nom_naissance": root.findtext(".//r:TIQ/r:NomNaissance", namespaces=ns),
    }


@then("le logiciel a enregistré l'INS actif renvoyé par l'INSi")
def stored_active_ins(ctx: ScenarioContext) -> None:
    patient, insi = _stored_ins(ctx, "L'INS affiché est-il l'INS actif renvoyé par l'INSi ?")
    if patient is None:
        return
    stored = patient.get("ins") or {}
    assert stored.get("matricule") == insi["matricule"] and stored.get("cle") == insi["cle"], (
        f"INS enregistré {stored.get('matricule')}/{stored.get('cle')}, INS actif {insi['matricule']}/{insi['cle']}"
    )


@then("l'OID enregistré est celui renvoyé par l'INSi")
def stored_oid(ctx: ScenarioContext) -> None:
    patient, insi = _stored_ins(ctx, "L'OID de l'INS est-il celui renvoyé par l'INSi ?")
    if patient is not None:
        stored = (patient.get("ins") or {}).get("oid")
        assert stored == insi["oid"], f"OID enregistré {stored}, OID renvoyé {insi['oid']}"


@then("le logiciel n'a pas enregistré l'INS renvoyé")
def ins_not_stored(ctx: ScenarioContext) -> None:
    patient = ctx.patient("Le logiciel a-t-il refusé l'INS dont la clé est invalide ?")
    if patient is not None:
        assert not patient.get("ins"), f"INS {patient['ins']} enregistré malgré une clé invalide"


@then("les traits du patient sont ceux renvoyés par l'INSi")
def traits_replaced(ctx: ScenarioContext) -> None:
    patient, insi = _stored_ins(ctx, "Les traits affichés sont-ils ceux renvoyés par l'INSi ?")
    if patient is None:
        return
    traits = patient["traits"]
    assert (traits.get("nom_naissance"), traits.get("prenoms")) == (insi["nom_naissance"], insi["liste_prenom"]), (
        f"traits conservés {traits.get('nom_naissance')} / {traits.get('prenoms')}, "
        f"INSi : {insi['nom_naissance']} / {insi['liste_prenom']}"
    )


@then(parsers.parse('le logiciel a relancé la recherche avec le prénom "{prenom}"'))
def retried_with(ctx: ScenarioContext, prenom: str) -> None:
    sent = [r["correlation"].get("prenom", "").upper() for r in searches(ctx)]
    assert prenom.upper() in sent[1:], f"prénoms envoyés à l'INSi : {sent}"


@then("le logiciel signale l'indisponibilité de l'INSi sans conclure à l'absence d'identité")
def outage_reported(ctx: ScenarioContext) -> None:
    calls = ctx.traces(
        "recherche_ins", "Le logiciel a-t-il signalé l'indisponibilité d'INSi (et non « aucune identité ») ?"
    )
    if calls is None:
        return
    assert ctx.last_result.get("code_cr") != "01", "l'indisponibilité d'INSi a été présentée comme un code 01"
    assert calls and calls[-1].get("code_cr") != "01", "l'indisponibilité d'INSi a été tracée comme un code 01"
