"""Pro Santé Connect steps: the harness plays the professional's browser and judges on the PSC journal.

In the web flow the SUT only hands over an authorization URL; the harness follows it to the
PSC mock (whose login is pre-selected through the control API) and back to the SUT's redirect
URI, exactly as a browser would. What the SUT then claims (``current_user``) is compared with
what the mock issued and saw.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pytest_bdd import given, parsers, then, when

from segur.journal import payload
from segur.steps.common import NotExercised, ScenarioContext
from segur.sut import SutActionError

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
# Scenario wording -> PSC mock fault kind (docs/mocks.md lists them).
ID_TOKEN_DEFECTS = {
    "signé par une autre clé": "forged_id_token_signature",
    "expiré": "expired_id_token",
    "destiné à un autre client": "wrong_aud",
    "de niveau inférieur à eidas1": "low_acr",
    "porteur d'un autre nonce": "wrong_nonce",
}
MEANS = {"carte CPS": "CARD", "e-CPS": "MOBILE"}
SLOW_DOWN_INCREMENT = 5.0  # CIBA Core §11 / RFC 8628 §3.5: every later poll waits 5 s more
POLL_TOLERANCE = 0.05  # clock granularity between the SUT's timer, the journal and token ``exp``


def psc_exchanges(ctx: ScenarioContext, operation: str | None = None) -> list[dict[str, Any]]:
    records = ctx.harness.journal(ctx.journal_start, "psc")
    return [r for r in records if operation is None or r["operation"] == operation]


def token_grants(ctx: ScenarioContext, grant_type: str) -> list[dict[str, Any]]:
    return [r for r in psc_exchanges(ctx, "token") if r["correlation"].get("grant_type") == grant_type]


def issued_tokens(ctx: ScenarioContext) -> list[str]:
    """Every token value PSC handed out in this scenario, read from the journaled responses."""
    values = []
    for record in psc_exchanges(ctx, "token"):
        if record["outcome"].get("error"):
            continue
        body = payload(record, "response").split(b"\r\n\r\n", 1)[-1]
        answer = json.loads(body or b"{}")
        values += [answer[k] for k in ("access_token", "refresh_token", "id_token") if answer.get(k)]
    return values


def _browser(ctx: ScenarioContext) -> httpx.Client:
    return httpx.Client(verify=ctx.harness.endpoints["pki"]["ca"], timeout=15, follow_redirects=False)


def _visit(ctx: ScenarioContext, url: str, tamper_state: bool = False) -> None:
    """Follow redirects like a browser; optionally alter ``state`` on the way back to the SUT."""
    psc_origins = {urlsplit(u).netloc for u in ctx.harness.endpoints["mocks"]["psc"]["endpoints"]}
    with _browser(ctx) as browser:
        for _ in range(6):
            at_sut = urlsplit(url).netloc not in psc_origins
            if tamper_state and at_sut:
                url = _altered_state(url)
            if at_sut and ctx.harness.psc_redirect_delivery == "action":
                _deliver(ctx, url)
                return
            response = browser.get(url)
            ctx.pages.append({"url": url, "status": response.status_code})
            location = response.headers.get("location")
            if not response.is_redirect or not location:
                return
            url = str(response.url.join(location))


def _deliver(ctx: ScenarioContext, url: str) -> None:
    """What the OS does for a native app's redirect URI: hand the URL to the software itself."""
    try:
        ctx.act("receive_redirect", url=url)
        ctx.pages.append({"url": url, "status": "delivered"})
    except SutActionError as error:
        ctx.pages.append({"url": url, "status": f"refused: {error}"})


def _altered_state(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if "state" in query:
        query["state"] = query["state"][::-1] + "x"
    return urlunsplit(parts._replace(query=urlencode(query)))


def _professional(ctx: ScenarioContext, libelle: str) -> dict[str, Any]:
    known = ctx.harness.state("psc")["professionals"]
    found = [p for p in known if p.get("libelle") == libelle]
    assert found, f"professionnel de test inconnu : {libelle!r} (connus : {[p.get('libelle') for p in known]})"
    return found[0]


@given(parsers.parse('le professionnel "{libelle}" est inscrit à Pro Santé Connect'))
def enrolled(ctx: ScenarioContext, libelle: str) -> None:
    ctx.professional = _professional(ctx, libelle)


@given(parsers.parse("Pro Santé Connect renverra un jeton d'identité {defaut}"))
def id_token_defect(ctx: ScenarioContext, defaut: str) -> None:
    ctx.harness.inject_fault("psc", {"kind": ID_TOKEN_DEFECTS[defaut], "operation": "token"})


@given(parsers.parse("Pro Santé Connect délivre des jetons d'accès valables {seconds:d} seconde"))
def short_tokens(ctx: ScenarioContext, seconds: int) -> None:
    ctx.harness.seed("psc", {"token_lifetime": seconds})


@given("Pro Santé Connect demandera au logiciel de ralentir sa scrutation CIBA")
def ciba_slow_down(ctx: ScenarioContext) -> None:
    ctx.harness.seed("psc", {"ciba": {"pending_polls": 0}})
    ctx.harness.inject_fault("psc", {"kind": "ciba_slow_down", "operation": "token"})


@when(parsers.parse("le professionnel se connecte avec Pro Santé Connect par le navigateur avec sa {moyen}"))
@given(parsers.parse("le professionnel s'est connecté avec Pro Santé Connect par le navigateur avec sa {moyen}"))
def web_login(ctx: ScenarioContext, moyen: str) -> None:
    _web_login(ctx, moyen)


@when("le navigateur revient vers le logiciel avec un state altéré")
def web_login_tampered(ctx: ScenarioContext) -> None:
    _web_login(ctx, "carte CPS", tamper_state=True)


def _web_login(ctx: ScenarioContext, moyen: str, tamper_state: bool = False) -> None:
    professional = ctx.professional
    ctx.harness.seed(
        "psc",
        {"next_login": {"national_id": professional["national_id"], "means": MEANS[moyen], "outcome": "accept"}},
    )
    started = ctx.act("login_ps", mode="web", national_id=professional["national_id"])
    if not ctx.outcome_seen(started):
        return
    url = started.get("authorization_url")
    if not url:
        raise NotExercised("le logiciel n'a pas fourni d'URL d'autorisation Pro Santé Connect")
    _visit(ctx, url, tamper_state=tamper_state)
    if not psc_exchanges(ctx, "authorize"):
        raise NotExercised("la demande d'autorisation n'est pas parvenue à Pro Santé Connect")


@when("le professionnel se connecte avec Pro Santé Connect par CIBA")
def ciba_login(ctx: ScenarioContext) -> None:
    ctx.harness.seed("psc", {"ciba": {"interval": ctx.harness.options.ciba_interval}})
    try:
        ctx.act("login_ps", mode="ciba", national_id=ctx.professional["national_id"])
        ctx.last_error = None
    except SutActionError as error:
        ctx.last_result, ctx.last_error = {}, error
    if not psc_exchanges(ctx, "ciba_auth"):
        raise NotExercised(f"aucune demande CIBA n'est parvenue à Pro Santé Connect ({ctx.last_error})")


@when("le professionnel se déconnecte du logiciel")
def logout(ctx: ScenarioContext) -> None:
    ended = ctx.act("logout_ps")
    if ended.get("logout_url"):
        _visit(ctx, ended["logout_url"])


@given("le jeton d'accès a expiré")
def access_token_expired(ctx: ScenarioContext) -> None:
    """Waits for a deadline the mock announced (the token's ``exp``), not for a guessed duration."""
    expiries = [
        r["outcome"]["access_token_exp"] for r in psc_exchanges(ctx, "token") if "access_token_exp" in r["outcome"]
    ]
    if not expiries:
        raise NotExercised("aucun jeton d'accès n'a été délivré")
    remaining = max(expiries) + POLL_TOLERANCE - time.time()
    if remaining > 0:
        time.sleep(remaining)


@when("le logiciel utilise la session du professionnel")
def use_session(ctx: ScenarioContext) -> None:
    """A refusal is kept, not raised: PSC refusing a stale token is what the Then step judges."""
    try:
        ctx.act("use_ps_session")
        ctx.last_error = None
    except SutActionError as error:
        ctx.last_result, ctx.last_error = {}, error


def _current_user(ctx: ScenarioContext, question: str) -> dict[str, Any] | None:
    return ctx.observe("current_user", question)


@then("le logiciel affiche le professionnel connecté")
def logged_in(ctx: ScenarioContext) -> None:
    user = _current_user(ctx, "Le logiciel affiche-t-il le professionnel connecté par Pro Santé Connect ?")
    if user is not None:
        error = user.get("derniere_erreur") or {}
        assert user.get("connecte"), (
            f"aucun professionnel connecté ({error.get('code', '')} {error.get('message', '')})"
        )


@then("le logiciel identifie le professionnel par son identifiant national (SubjectNameID)")
def national_id(ctx: ScenarioContext) -> None:
    user = _current_user(ctx, "Le logiciel affiche-t-il l'identifiant national du professionnel (8 + RPPS) ?")
    if user is None:
        return
    if not user.get("connecte"):
        raise NotExercised("la connexion n'a pas abouti")
    expected = ctx.professional["national_id"]
    assert user.get("national_id") == expected, (
        f"identifiant retenu {user.get('national_id')!r}, attendu le SubjectNameID {expected!r}"
    )


@then("le logiciel refuse la connexion")
def login_refused(ctx: ScenarioContext) -> None:
    user = _current_user(ctx, "Le logiciel a-t-il refusé la connexion (aucun professionnel connecté) ?")
    if user is not None:
        assert not user.get("connecte"), f"le logiciel a connecté {user.get('national_id')} malgré l'anomalie"


@then("le logiciel n'affiche plus de professionnel connecté")
def logged_out(ctx: ScenarioContext) -> None:
    user = _current_user(ctx, "Le logiciel n'affiche-t-il plus de professionnel connecté ?")
    if user is not None:
        assert not user.get("connecte"), "le professionnel est toujours connecté après la déconnexion"


@then("la demande d'autorisation porte un défi PKCE S256")
def pkce_challenge(ctx: ScenarioContext) -> None:
    requests = psc_exchanges(ctx, "authorize")
    methods = [r["correlation"].get("code_challenge_method", "") for r in requests]
    assert methods and all(m == "S256" for m in methods), f"méthodes PKCE reçues : {methods or 'aucune demande'}"


@then("l'échange du code présente le code_verifier correspondant")
def pkce_verifier(ctx: ScenarioContext) -> None:
    grants = token_grants(ctx, "authorization_code")
    if not grants:
        raise NotExercised("le code d'autorisation n'a pas été échangé")
    assert all(g["outcome"].get("pkce") == "verified" for g in grants), (
        f"vérification PKCE à l'échange du code : {[g['outcome'].get('pkce') for g in grants]}"
    )


@then(parsers.parse('la demande d\'authentification exige le niveau "{acr}"'))
def acr_requested(ctx: ScenarioContext, acr: str) -> None:
    requests = psc_exchanges(ctx, "authorize") + psc_exchanges(ctx, "ciba_auth")
    if not requests:
        raise NotExercised("aucune demande d'authentification n'est parvenue à Pro Santé Connect")
    for record in requests:
        asked = record["correlation"].get("acr_values", "").split()
        assert acr in asked, f"{record['operation']} #{record['seq']} demande acr_values={asked or 'absent'}"


@then("aucun jeton émis par Pro Santé Connect ne figure dans les fichiers du logiciel")
def tokens_not_on_disk(ctx: ScenarioContext) -> None:
    directories = ctx.harness.sut_info.get("storage_dirs")
    if not directories:
        ctx.confirm("Le logiciel ne conserve-t-il les jetons Pro Santé Connect qu'en mémoire (jamais sur disque) ?")
        return
    tokens = [t.encode() for t in issued_tokens(ctx)]
    if not tokens:
        raise NotExercised("Pro Santé Connect n'a délivré aucun jeton")
    for directory in directories:
        for path in Path(directory).rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert not any(token in content for token in tokens), f"jeton PSC écrit en clair dans {path}"


@then("Pro Santé Connect a reçu la fin de session")
def session_ended(ctx: ScenarioContext) -> None:
    ended = [r for r in psc_exchanges(ctx, "logout") if r["outcome"].get("session_ended")]
    assert ended, "le logiciel n'a pas fermé la session Pro Santé Connect (aucun appel end_session abouti)"


@then("le logiciel a espacé ses scrutations CIBA de l'intervalle demandé, ralentissement compris")
def polls_spaced(ctx: ScenarioContext) -> None:
    polls = token_grants(ctx, CIBA_GRANT)
    if not any(p["outcome"].get("error") == "slow_down" for p in polls):
        raise NotExercised("Pro Santé Connect n'a jamais demandé de ralentir (slow_down non atteint)")
    for poll in polls:
        waited, required = poll["outcome"].get("since_last_poll"), poll["outcome"].get("interval")
        if waited is None or poll["outcome"].get("injected"):
            continue
        assert waited >= required - POLL_TOLERANCE, (
            f"scrutation #{poll['seq']} après {waited:.2f} s, l'intervalle exigé était de {required:g} s"
        )


@then("le jeton d'accès a été renouvelé avant d'être présenté")
def refreshed_before_use(ctx: ScenarioContext) -> None:
    uses = psc_exchanges(ctx, "userinfo")
    if not uses:
        raise NotExercised("le logiciel n'a pas utilisé la session auprès de Pro Santé Connect")
    stale = [u for u in uses if u["outcome"].get("token") != "valid"]
    assert not stale, f"jeton présenté à Pro Santé Connect : {[u['outcome'].get('token') for u in stale]}"
    assert token_grants(ctx, "refresh_token"), "le jeton d'accès n'a jamais été renouvelé (refresh_token)"


@then("chaque appel INSi porte l'authentification Pro Santé Connect du professionnel connecté")
def insi_on_behalf_of_professional(ctx: ScenarioContext) -> None:
    calls = [r for r in ctx.harness.journal(ctx.journal_start, "insi") if r["operation"].startswith("rechercherIns")]
    if not calls:
        raise NotExercised("le logiciel n'a fait aucun appel INSi")
    if not any(not r["outcome"].get("error") for r in psc_exchanges(ctx, "token")):
        raise NotExercised("le professionnel n'a pas pu se connecter à Pro Santé Connect")
    expected = ctx.professional["national_id"]
    for call in calls:
        found = call["correlation"].get("ps_national_id")
        assert found == expected, (
            f"appel INSi #{call['seq']} "
            + (f"au nom de {found}" if found else "sans jeton Pro Santé Connect")
            + f", attendu au nom du professionnel connecté {expected}"
        )
