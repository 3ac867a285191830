"""The wallet's login page, used by testers in manual sessions: real HTML, a real form, a real redirect.

The page is read with lxml's HTML parser and submitted the way a browser would (its hidden
fields, the radio buttons chosen, the button pressed), so a page a browser cannot use fails here.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import lxml.html
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from segur.mocks.psc.realm import pkce_s256

pytestmark = pytest.mark.usefixtures("fresh_psc")

REDIRECT = "https://sut.segur.test/psc/retour"
PHARMACIST = "899910000035"
VERIFIER = "verificateur-de-la-page-de-connexion-" + "v" * 20


@pytest.fixture
def http(psc_mock, psc_http) -> httpx.Client:
    psc_mock.seed({"clients": [{"client_id": "segur-sut", "redirect_uris": [REDIRECT]}]})
    return psc_http()


def open_login_page(psc, http: httpx.Client) -> tuple[httpx.Response, Any]:
    query = {
        "response_type": "code",
        "client_id": "segur-sut",
        "redirect_uri": REDIRECT,
        "scope": "openid scope_all",
        "state": "etat <page> & co",
        "nonce": "nonce-page",
        "code_challenge": pkce_s256(VERIFIER),
        "code_challenge_method": "S256",
    }
    page = http.get(psc.authorization_endpoint + "?" + urlencode(query))
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    document = lxml.html.fromstring(page.text)
    assert document.get("lang") == "fr"
    [form] = document.forms
    return page, form


def submit(http: httpx.Client, page: httpx.Response, form: Any, **choices: str) -> httpx.Response:
    """What a browser posts: the form's successful controls, the choices made, and the button pressed."""
    values = dict(form.form_values())
    values.update(choices)
    return http.post(urljoin(str(page.url), form.action), data=values)


def test_login_page_is_a_form_listing_professionals_and_means(psc_mock, http):
    page, form = open_login_page(psc_mock, http)
    assert form.method.upper() == "POST"
    assert urljoin(str(page.url), form.action) == psc_mock.authorization_endpoint
    hidden = {element.name: element.value for element in form.inputs if element.get("type") == "hidden"}
    assert hidden["client_id"] == "segur-sut"
    assert hidden["redirect_uri"] == REDIRECT
    assert hidden["state"] == "etat <page> & co"
    assert hidden["code_challenge_method"] == "S256"
    professionals = [element.get("value") for element in form.inputs["national_id"]]
    snapshot = psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json()
    assert professionals == [professional["national_id"] for professional in snapshot["professionals"]]
    assert [element.get("value") for element in form.inputs["means"]] == ["CARD", "MOBILE"]
    labels = html.unescape(page.text)
    assert "Carte CPS" in labels and "e-CPS" in labels
    assert "MEDECIN-TEST GENERALISTE" in labels and "médecin généraliste" in labels
    buttons = {button.get("value"): button.text for button in form.xpath(".//button")}
    assert buttons == {"accept": "Se connecter", "refuse": "Refuser"}


def test_posting_the_form_redirects_with_a_code_for_the_chosen_professional(psc_mock, http):
    seq = psc_mock.last_seq()
    page, form = open_login_page(psc_mock, http)
    answer = submit(http, page, form, national_id=PHARMACIST, means="MOBILE", action="accept")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["etat <page> & co"]
    form_data = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT}
    form_data["code_verifier"] = VERIFIER
    tokens = http.post(psc_mock.endpoint("/token"), data=form_data, auth=("segur-sut", "segur-sut-secret"))
    assert tokens.status_code == 200, tokens.text
    keys = KeySet.import_key_set(http.get(psc_mock.endpoint("/certs")).json())
    claims = jwt.decode(tokens.json()["id_token"], keys, algorithms=["RS256"]).claims
    assert (claims["preferred_username"], claims["authMode"], claims["nonce"]) == (PHARMACIST, "MOBILE", "nonce-page")

    records = psc_mock.journal_since(seq)
    assert [record["operation"] for record in records[:3]] == ["authorize", "login", "token"]
    assert records[0]["outcome"] == {"login_page": True}
    assert records[1]["correlation"]["national_id"] == PHARMACIST
    assert records[1]["correlation"]["means"] == "MOBILE"
    assert records[1]["outcome"] == {"code_issued": True, "national_id": PHARMACIST, "means": "MOBILE"}


def test_refuse_button_redirects_access_denied(psc_mock, http):
    page, form = open_login_page(psc_mock, http)
    answer = submit(http, page, form, action="refuse")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert "code" not in query


def test_unknown_professional_shows_the_form_again(psc_mock, http):
    page, form = open_login_page(psc_mock, http)
    answer = submit(http, page, form, national_id="899999999999", action="accept")
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert lxml.html.fromstring(answer.text).forms, "the form is offered again"


def test_tampered_redirect_uri_in_the_form_is_refused_without_redirect(psc_mock, http):
    page, form = open_login_page(psc_mock, http)
    answer = submit(http, page, form, redirect_uri="https://attaquant.test/", action="accept")
    assert answer.status_code == 400
    assert "location" not in answer.headers
