"""MSSanté steps: drive the SUT's secure mail and judge it on what the operator mock received.

The evidence is the mock's journal: each submitted message is re-read from its raw bytes and
checked by ``segur.mss.validate_mss_message`` (headers, subject, IHE_XDM, PDF, MIME); the SASL
and IMAP records say how the software authenticated, when it reconnected, when it closed. A
Then step keeps only the findings of its own requirement, so one defect fails one requirement.
"""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.utils import parseaddr
from typing import Any

from pytest_bdd import given, parsers, then, when

from segur.cisis import package_checks
from segur.ins import ins_key
from segur.journal import payload
from segur.mss import archive_of_message, validate_mss_message
from segur.mss.compose import Patient, incoming_message
from segur.steps.common import NotExercised, ScenarioContext
from segur.steps.psc import access_token_expired, psc_exchanges
from segur.sut import SutActionError
from segur.validation import Finding, parse_untrusted

HL7 = {"h": "urn:hl7-org:v3"}
# Addresses of the mock's seeded BALs (mocks/mss/mailboxes.yaml), by the professional's libellé.
BALS = {
    "médecin hospitalier": "hospitalier.medecin-test@hopital-test.mssante.fr",
    "médecin généraliste": "generaliste.medecin-test@cabinet-test.mssante.fr",
    "pharmacien d'officine": "officine.pharmacien-test@officine-test.mssante.fr",
}
PROBES = {
    "un serveur limité à TLS 1.0 et 1.1": "tls-legacy",
    "un serveur aux suites de chiffrement faibles": "weak-ciphers",
    "un serveur sans STARTTLS qui propose l'authentification en clair": "plain-auth",
    "un certificat serveur expiré": "expired-certificate",
    "un certificat serveur révoqué": "revoked-certificate",
}
STARTTLS_PROBES = ("tls-legacy", "weak-ciphers", "expired-certificate", "revoked-certificate")
GOING_ON = {"AUTH", "MAIL", "RCPT", "DATA", "AUTHENTICATE", "LOGIN", "SELECT", "EXAMINE"}
SENT = "envoye"
# Who writes to the SUT in receiving scenarios, and about whom (INSi and DMP mocks' ZOE; LOUIS for the subject).
COLLEAGUE = "pluriactif.medecin-test@cabinet-test.mssante.fr"
ZOE = Patient("2751263220749" + ins_key("2751263220749"), "ADRUN", "ZOE", dt.date(1975, 12, 31))
LOUIS = Patient("1850275056014" + ins_key("1850275056014"), "DUPONT", "LOUIS", dt.date(1985, 2, 2), "M")


def mss_records(ctx: ScenarioContext, *operations: str) -> list[dict[str, Any]]:
    records = ctx.harness.journal(ctx.journal_start, "mss")
    return [r for r in records if not operations or r["operation"] in operations]


def submissions(ctx: ScenarioContext) -> list[bytes]:
    """The messages the operator accepted from the SUT during the scenario, as received."""
    accepted = [r for r in mss_records(ctx, "smtp-submission") if not r["outcome"].get("refused")]
    if not accepted:
        raise NotExercised("l'opérateur MSSanté n'a accepté aucun message du logiciel")
    return [payload(r, "request") for r in accepted]


def _send(ctx: ScenarioContext, destinataire: str, **options: Any) -> dict[str, Any]:
    if ctx.patient_id is None:
        raise NotExercised("aucun patient dans le logiciel")
    try:
        result = ctx.act("send_mss_message", patient_id=ctx.patient_id, destinataire=destinataire, **options)
        ctx.last_error = None
    except SutActionError as error:
        ctx.last_result, ctx.last_error = {}, error
        return {}
    ctx.sent_messages.append(result)
    return result


# -- Given -----------------------------------------------------------------------------------------


@given("le service MSSanté est disponible")
def mss_available(ctx: ScenarioContext) -> None:
    """The operator mock runs with its seeded BALs (the reset before each scenario restored them)."""
    assert "mss" in ctx.harness.endpoints["mocks"], "l'opérateur MSSanté n'est pas démarré"


@given(parsers.parse("l'opérateur MSSanté présente {probe}"))
def operator_probe(ctx: ScenarioContext, probe: str) -> None:
    ctx.harness.seed("mss", {"probe": PROBES[probe]})
    ctx.probe = PROBES[probe]


@given("la liste de révocation de l'opérateur MSSanté n'est plus disponible")
def crl_unavailable(ctx: ScenarioContext) -> None:
    ctx.harness.seed("mss", {"crl": "unavailable"})


@given(parsers.parse("l'opérateur MSSanté répondra à la prochaine soumission par l'erreur {status:d}"))
def smtp_error(ctx: ScenarioContext, status: int) -> None:
    code = "4.3.0" if status < 500 else "5.3.0"
    ctx.harness.inject_fault("mss", {"kind": "smtp_reply", "operation": "data", "status": status, "code": code})


@given("un confrère a adressé au logiciel un document pour ce patient, sous un objet au nom d'un autre patient")
def colleague_wrote(ctx: ScenarioContext) -> None:
    """The archive is about ZOE, the subject names LOUIS: only METADATA.XML tells the truth (CONF.24)."""
    recipient = _own_bal(ctx)
    raw = incoming_message(COLLEAGUE, recipient, ZOE, subject_patient=LOUIS)
    ctx.harness.seed("mss", {"deliver": [{"to": recipient, "message": raw.decode("ascii")}]})
    ctx.incoming_ins = ZOE.ins


@given("le jeton d'accès du professionnel a expiré pendant sa session MSSanté")
def token_expired_during_session(ctx: ScenarioContext) -> None:
    access_token_expired(ctx)
    ctx.token_expired_at = ctx.harness.last_seq()


def _own_bal(ctx: ScenarioContext) -> str:
    """The BAL the SUT reads: its professional's when logged in with PSC, else its applicative one."""
    services = ctx.harness.configuration()["services"]["mss"]
    logged_in = ctx.professional and psc_exchanges(ctx, "token")
    national_id = ctx.professional["national_id"] if logged_in else None
    return services["bal_personnelles"].get(national_id) or services["bal_applicative"]


# -- When ------------------------------------------------------------------------------------------


@when(parsers.parse('le logiciel envoie par MSSanté un document de ce patient au professionnel "{libelle}"'))
@given(parsers.parse('le logiciel envoie par MSSanté un document de ce patient au professionnel "{libelle}"'))
def send_to_professional(ctx: ScenarioContext, libelle: str) -> None:
    _send(ctx, BALS[libelle])


@when(parsers.parse("le logiciel envoie par MSSanté un document de ce patient au patient{options}"))
def send_to_patient(ctx: ScenarioContext, options: str) -> None:
    _send(
        ctx,
        "patient",
        accuse_lecture="accusé de lecture" in options,
        bloquer_reponse="bloquant sa réponse" in options,
    )


@when("le logiciel envoie un document corrigé qui annule et remplace le précédent")
def replace_message(ctx: ScenarioContext) -> None:
    if not ctx.sent_messages or not ctx.sent_messages[-1].get("message_id"):
        raise NotExercised("aucun message envoyé à remplacer")
    result = ctx.act("replace_mss_message", patient_id=ctx.patient_id, message_id=ctx.sent_messages[-1]["message_id"])
    ctx.sent_messages.append(result)


@when("le logiciel renvoie les messages MSSanté en attente")
def resend(ctx: ScenarioContext) -> None:
    ctx.act("resend_mss_messages", patient_id=ctx.patient_id)


@when("le logiciel relève sa boîte aux lettres MSSanté")
@given("le logiciel a relevé sa boîte aux lettres MSSanté")
def read_mailbox(ctx: ScenarioContext) -> None:
    try:
        ctx.received = ctx.act("read_mss_mailbox").get("messages", [])
        ctx.last_error = None
    except SutActionError as error:
        ctx.last_result, ctx.last_error = {}, error


# -- Then: the messages themselves -----------------------------------------------------------------


def _message_findings(ctx: ScenarioContext, requirement: str, **options: Any) -> list[Finding]:
    """The submitted messages' findings for ``requirement``, noted for the report; their errors are returned.

    With a CI-SIS package (``--cisis``) the archives' CDA also meet its schema and official schematrons.
    """
    cisis = ctx.harness.options.cisis
    cda_checks = package_checks(str(cisis)) if cisis is not None else None
    findings = []
    for raw in submissions(ctx):
        findings += validate_mss_message(raw, cda_checks=cda_checks, **options)
    own = [f for f in findings if f.requirement == requirement]
    ctx.note(own)
    return [f for f in own if f.severity == "error"]


def _assert_none(findings: list[Finding]) -> None:
    assert not findings, "; ".join(f"[{f.rule}] {f.message}" for f in findings[:5])


MESSAGE_CHECKS = {
    "chaque message soumis porte la référence du logiciel (X-MSS-NIL)": "SC.MSS/CONF.16",
    "chaque message soumis porte le code du document CDA (X-MSS-CODECDA)": "SC.MSS/CONF.15",
    "chaque message soumis a l'objet XDM/1.0/DDM+ au nom du patient": "SC.MSS/CONF.25",
    "chaque message soumis concerne un seul patient, avec son archive IHE_XDM et le PDF": "SC.MSS/CONF.23",
    "l'archive IHE_XDM de chaque message est conforme": "MSS/PROV.01",
    "le PDF joint est nommé selon la convention date_type_NOM_prénom": "MSS/PROV.02",
    "chaque message soumis est un MIME correct (Message-ID, texte en UTF-8)": "MSS/PROV.03",
}


def _message_check(requirement: str):
    def check(ctx: ScenarioContext) -> None:
        _assert_none(_message_findings(ctx, requirement))

    return check


for _phrase, _requirement in MESSAGE_CHECKS.items():
    then(_phrase, target_fixture=None)(_message_check(_requirement))


@then("X-MSS-INS vaut O pour une identité qualifiée, N sinon")
def ins_header(ctx: ScenarioContext) -> None:
    patient = ctx.patient("L'identité du patient est-elle qualifiée ?")
    qualified = None if patient is None else patient["statut"] == "qualifiee"
    _assert_none(_message_findings(ctx, "SC.MSS/CONF.14", ins_qualified=qualified))


@then("le message au patient porte X-MSS-MES: FIN")
def fin_header(ctx: ScenarioContext) -> None:
    _assert_none(_message_findings(ctx, "SC.MSS/CONF.21", block_patient_reply=True))


@then("le message demande un accusé de lecture (Disposition-Notification-To)")
def mdn_requested(ctx: ScenarioContext) -> None:
    _assert_none(_message_findings(ctx, "MSS/UX.33", expect_mdn=True))


@then("le document corrigé remplace le précédent (relatedDocument RPLC, même setId)")
def replaces_previous(ctx: ScenarioContext) -> None:
    messages = submissions(ctx)
    if len(messages) < 2:
        raise NotExercised("le message de remplacement n'a pas été accepté par l'opérateur")
    first, last = _cda_header(messages[0]), _cda_header(messages[-1])
    assert last["id"] != first["id"], "le document corrigé reprend l'identifiant du document remplacé"
    assert last["set_id"] == first["set_id"], f"setId {last['set_id']!r} au lieu de {first['set_id']!r}"
    assert first["id"] in last["replaces"], (
        f"le document corrigé ne remplace pas {first['id']} (relatedDocument RPLC : {last['replaces'] or 'absent'})"
    )


def _cda_header(raw: bytes) -> dict[str, Any]:
    """id, setId and the ids a relatedDocument RPLC replaces, from the message's archived CDA."""
    package = archive_of_message(raw)
    if package is None or not package.cdas:
        raise NotExercised("le message ne porte pas d'archive IHE_XDM avec un CDA")
    root = parse_untrusted(package.documents[package.cdas[0].path])

    def ids(path: str) -> list[str]:
        return [f"{e.get('root')}^{e.get('extension') or ''}" for e in root.xpath(path, namespaces=HL7)]

    return {
        "id": (ids("h:id") or [""])[0],
        "set_id": (ids("h:setId") or [""])[0],
        "replaces": ids("h:relatedDocument[@typeCode='RPLC']/h:parentDocument/h:id"),
    }


# -- Then: sessions and authentication ------------------------------------------------------------


def _accepted_auths(ctx: ScenarioContext, *operations: str) -> list[dict[str, Any]]:
    return [
        r
        for r in mss_records(ctx, *(operations or ("smtp-auth", "imap-authenticate")))
        if not r["outcome"].get("refused") and r["outcome"].get("status", "OK") == "OK"
    ]


@then("le message a été soumis depuis la BAL authentifiée auprès de l'opérateur")
def submitted_from_the_bal(ctx: ScenarioContext) -> None:
    accepted = [r for r in mss_records(ctx, "smtp-submission") if not r["outcome"].get("refused")]
    if not accepted:
        raise NotExercised(f"aucun message accepté par l'opérateur ({ctx.sent_messages or ctx.last_error})")
    for record in accepted:
        who = record["correlation"]
        header = parseaddr(str(message_from_bytes(payload(record, "request")).get("From", "")))[1]
        assert who.get("auth") in ("XOAUTH2", "EXTERNAL"), f"message soumis sans authentification SASL : {who}"
        assert header.lower() == who["from"].lower() == who["address"].lower(), (
            f"BAL authentifiée {who['address']}, enveloppe {who['from']}, en-tête From {header!r} : "
            "le message doit partir de la BAL authentifiée"
        )


@then("le logiciel s'est authentifié sur la BAL personnelle du professionnel avec son jeton Pro Santé Connect")
def xoauth2_as_professional(ctx: ScenarioContext) -> None:
    national_id = ctx.professional["national_id"]
    if not psc_exchanges(ctx, "token"):
        raise NotExercised("le professionnel n'a pas pu se connecter avec Pro Santé Connect")
    auths = _accepted_auths(ctx)
    if not auths:
        raise NotExercised("aucune authentification MSSanté acceptée")
    wrong = [r["correlation"] for r in auths if r["correlation"].get("national_id") != national_id]
    assert not wrong, f"authentification MSSanté sans le jeton PSC de {national_id} : {wrong[0]}"


@then("le logiciel a ouvert sa BAL applicative avec le certificat d'organisation de la structure")
def external_with_organisation_certificate(ctx: ScenarioContext) -> None:
    refused = [r for r in mss_records(ctx, "smtp-auth", "imap-authenticate") if r["outcome"].get("refused")]
    assert not refused, f"authentification refusée par l'opérateur : {refused[0]['outcome']['refused']}"
    external = [r for r in _accepted_auths(ctx) if r["correlation"].get("auth") == "EXTERNAL"]
    assert external, "la BAL applicative n'a pas été ouverte par SASL EXTERNAL avec un certificat d'organisation"
    for record in external:
        assert "AUTH_CLI" in record["correlation"].get("certificate_cn", ""), record["correlation"]


@then("le logiciel ne s'est jamais authentifié avant d'avoir chiffré la session")
def never_plaintext(ctx: ScenarioContext) -> None:
    plaintext = mss_records(ctx, "smtp-plaintext") + [
        r for r in mss_records(ctx, "probe-session") if r["outcome"].get("credentials_sent")
    ]
    assert not plaintext, f"authentification ou envoi en clair : {plaintext[0]['operation']} {plaintext[0]['outcome']}"
    if not mss_records(ctx):
        raise NotExercised("le logiciel n'a pas contacté l'opérateur MSSanté")


@then("le logiciel a refusé de poursuivre avec ce serveur")
def refused_probe(ctx: ScenarioContext) -> None:
    sessions = [r for r in mss_records(ctx, "probe-session") if r["outcome"].get("probe") == ctx.probe]
    if not sessions:
        raise NotExercised(f"le logiciel n'a pas contacté l'opérateur pendant la sonde {ctx.probe}")
    went_on = [r["outcome"] for r in sessions if _went_on(r["outcome"])]
    assert not went_on, (
        f"le logiciel a poursuivi avec un serveur {ctx.probe} (TLS {went_on[0].get('tls')}) : "
        f"commandes {went_on[0].get('commands')}"
    )


def _went_on(outcome: dict[str, Any]) -> bool:
    """Did the client go on once it met what the probe offers? Under a TLS probe that is after STARTTLS:
    what it sent in clear before is SC.MSS/CONF.07's business, not this one's."""
    commands = outcome.get("commands", [])
    if outcome["probe"] in STARTTLS_PROBES:
        commands = commands[commands.index("STARTTLS") + 1 :] if "STARTTLS" in commands else []
    return bool(set(commands) & GOING_ON) or (
        outcome["probe"] == "plain-auth" and bool(outcome.get("credentials_sent"))
    )


@then("le logiciel avait récupéré la liste de révocation quand elle était disponible")
def crl_fetched(ctx: ScenarioContext) -> None:
    fetched = [r for r in mss_records(ctx, "crl-fetch") if r["outcome"].get("served")]
    assert fetched, "le logiciel n'a jamais récupéré la LCR de l'opérateur : il ne peut en garder la dernière valide"


@then("le logiciel a fermé sa session IMAP")
def imap_closed(ctx: ScenarioContext) -> None:
    if not [r for r in _accepted_auths(ctx, "imap-authenticate") if r["correlation"].get("auth") == "XOAUTH2"]:
        raise NotExercised("le logiciel n'avait pas de session IMAP ouverte avec le jeton du professionnel")
    closed = [r for r in mss_records(ctx, "imap-logout") if r["correlation"].get("auth") == "XOAUTH2"]
    assert closed, "la session IMAP du professionnel est restée ouverte après sa déconnexion"


@then("le logiciel s'est ré-authentifié avec un nouveau jeton après l'expiration du précédent")
def reauthenticated(ctx: ScenarioContext) -> None:
    """Whether the software reconnects when the operator ends the session or before, a fresh auth must follow."""
    if ctx.token_expired_at is None:
        raise NotExercised("le jeton d'accès n'a pas expiré pendant le scénario")
    if not [r for r in _accepted_auths(ctx) if r["correlation"].get("auth") == "XOAUTH2"]:
        raise NotExercised("le logiciel n'a pas ouvert de session avec le jeton du professionnel")
    again = [r for r in _accepted_auths(ctx) if r["seq"] > ctx.token_expired_at]
    assert again, "après l'expiration du jeton, le logiciel ne s'est pas ré-authentifié avec un jeton neuf"
    assert ctx.last_error is None, f"la relève a échoué après l'expiration : {ctx.last_error}"


# -- Then: what the software says -----------------------------------------------------------------


@then("le logiciel rattache le document reçu au patient désigné par l'archive IHE_XDM")
def attached_by_metadata(ctx: ScenarioContext) -> None:
    _require_mailbox_opened(ctx)
    assert ctx.received, "le logiciel n'a relevé aucun message"
    identified = {message.get("patient_ins") for message in ctx.received}
    assert identified == {ctx.incoming_ins}, (
        f"patient retenu {identified}, attendu {ctx.incoming_ins} (le patientId de METADATA.XML, pas l'objet)"
    )


@then("le logiciel affiche l'objet sans le préfixe XDM/1.0/DDM+")
def subject_without_prefix(ctx: ScenarioContext) -> None:
    _require_mailbox_opened(ctx)
    if not ctx.received:
        raise NotExercised("aucun message relevé")
    shown = [message["sujet"] for message in ctx.received if "XDM/1.0/DDM" in message.get("sujet", "")]
    assert not shown, f"objet affiché avec le préfixe technique : {shown[0]!r}"


def _require_mailbox_opened(ctx: ScenarioContext) -> None:
    if ctx.last_error is not None:
        raise NotExercised(f"la relève a échoué : {ctx.last_error}")
    if not _accepted_auths(ctx, "imap-authenticate"):
        raise NotExercised("le logiciel n'a pas pu ouvrir sa boîte aux lettres (authentification IMAP refusée)")


@then(parsers.parse('le message a le statut "{statut}"'))
def message_status(ctx: ScenarioContext, statut: str) -> None:
    if not [r for r in mss_records(ctx) if r["outcome"].get("injected")]:
        raise NotExercised("la soumission n'a pas atteint l'erreur programmée chez l'opérateur")
    if ctx.last_error is not None:
        raise AssertionError(f"l'envoi a échoué au lieu d'être conservé : {ctx.last_error}")
    assert ctx.sent_messages, "aucun message envoyé"
    found = ctx.sent_messages[-1].get("statut")
    assert found == statut, f"statut {found!r}, attendu {statut!r} ({ctx.sent_messages[-1].get('erreur')})"


@then("le message conservé est finalement accepté par l'opérateur")
def kept_then_accepted(ctx: ScenarioContext) -> None:
    patient = ctx.patient("Le message en erreur a-t-il été conservé puis renvoyé avec succès ?")
    if patient is None:
        return
    statuses = [message.get("statut") for message in patient.get("messages_mss", [])]
    assert statuses and all(status == SENT for status in statuses), f"messages MSSanté : {statuses}"
    submissions(ctx)
