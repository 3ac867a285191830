"""PSC mock data and state: test professionals, userinfo shapes, seeding, and token validation for other mocks.

The professionals file is read directly (not through the loader) so that the Luhn test proves
the file itself; the userinfo shapes are checked on the wire, as a SUT receives them.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import yaml

from segur.mocks.psc import PscMock
from segur.mocks.psc.directory import ACTIVITY_FIELDS, EXERCICE_FIELDS
from segur.rpps import luhn_valid

pytestmark = pytest.mark.usefixtures("fresh_psc")

REDIRECT = "https://sut.segur.test/psc/retour"
BASIC = ("segur-sut", "segur-sut-secret")
SUB = re.compile(r"^f:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:(?P<id>[0-9]+)$")
ROLE = re.compile(r"^[0-9]{2}\^1\.2\.250\.1\.213\.1\.1\.5\.5$")
SECTEUR = re.compile(r"^SA[0-9]{2}\^1\.2\.250\.1\.71\.4\.2\.4$")


def packaged_professionals() -> list[dict[str, Any]]:
    text = resources.files("segur.mocks.psc").joinpath("professionals.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["professionals"]


def national_ids() -> list[str]:
    return [("8" + entry["rpps"]) if "rpps" in entry else ("0" + entry["adeli"]) for entry in packaged_professionals()]


@pytest.fixture
def http(psc_mock, psc_http) -> httpx.Client:
    psc_mock.seed({"clients": [{"client_id": "segur-sut", "redirect_uris": [REDIRECT]}]})
    return psc_http()


def tokens(psc, http: httpx.Client, national_id: str, scope: str = "openid scope_all") -> dict[str, Any]:
    psc.seed({"next_login": {"national_id": national_id, "means": "CARD"}})
    query = {"response_type": "code", "client_id": "segur-sut", "redirect_uri": REDIRECT, "scope": scope}
    redirect = http.get(psc.authorization_endpoint + "?" + urlencode(query))
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    return http.post(psc.endpoint("/token"), data=form, auth=BASIC).json()


def access_token(psc, http: httpx.Client, national_id: str, scope: str = "openid scope_all") -> str:
    return tokens(psc, http, national_id, scope)["access_token"]


def userinfo(psc, http: httpx.Client, token: str) -> httpx.Response:
    return http.get(psc.endpoint("/userinfo"), headers={"Authorization": f"Bearer {token}"})


# --- identifiers -------------------------------------------------------------------------------


def test_luhn_check():
    assert luhn_valid("99910000019")
    assert luhn_valid("79927398713")  # the classic example
    assert not luhn_valid("99910000018")
    assert not luhn_valid("9991000001X")
    assert not luhn_valid("")


@pytest.mark.parametrize("entry", packaged_professionals(), ids=lambda entry: entry["given_name"])
def test_every_rpps_is_luhn_valid_and_names_are_fictitious(entry):
    if "rpps" in entry:
        assert re.fullmatch(r"[0-9]{11}", entry["rpps"])
        assert luhn_valid(entry["rpps"]), entry["rpps"]
    else:
        assert re.fullmatch(r"[0-9]{9}", entry["adeli"])
    assert entry["family_name"].endswith("-TEST")


def test_the_set_covers_the_cases_it_exists_for():
    entries = packaged_professionals()
    modes = [{a["codeModeExercice"] for e in entry["exercices"] for a in e["activities"]} for entry in entries]
    assert any("L" in mode for mode in modes), "a libéral"
    assert any(a.get("numeroFinessSite") for entry in entries for e in entry["exercices"] for a in e["activities"])
    assert any(e["codeProfession"] == "21" for entry in entries for e in entry["exercices"]), "a pharmacist"
    assert any(
        len(entry["exercices"]) >= 2 and sum(len(e["activities"]) for e in entry["exercices"]) >= 3 for entry in entries
    )
    assert any("adeli" in entry for entry in entries), "a professional without RPPS"


# --- userinfo shapes on the wire ----------------------------------------------------------------


@pytest.mark.parametrize("national_id", national_ids())
def test_userinfo_has_psc_claim_shapes(psc_mock, http, national_id):
    response = userinfo(psc_mock, http, access_token(psc_mock, http, national_id))
    assert response.status_code == 200
    claims = response.json()
    match = SUB.match(claims["sub"])
    assert match and match["id"] == national_id
    assert claims["SubjectNameID"] == claims["preferred_username"] == national_id
    origin = "RPPS" if national_id.startswith("8") else "ADELI"
    assert claims["otherIds"] == [{"identifiant": national_id, "origine": origin, "qualite": 1}]
    assert isinstance(claims["given_name"], str) and isinstance(claims["family_name"], str)
    assert isinstance(claims["SubjectOrganization"], str) and claims["SubjectOrganization"]
    assert SECTEUR.match(claims["Secteur_Activite"])
    assert claims["SubjectRole"] and all(ROLE.match(role) for role in claims["SubjectRole"])
    assert claims["authMode"] == "CARD"
    ref = claims["SubjectRefPro"]
    assert ref["codeCivilite"] in ("M", "MME")
    assert len(claims["SubjectRole"]) == len(ref["exercices"])
    for exercice in ref["exercices"]:
        assert set(exercice) == {*EXERCICE_FIELDS, "activities"}
        assert all(isinstance(exercice[name], str) for name in EXERCICE_FIELDS)
        assert exercice["activities"]
        for activity in exercice["activities"]:
            assert set(activity) == set(ACTIVITY_FIELDS)
            assert all(isinstance(value, str) for value in activity.values())


def test_pluriactive_professional_has_two_exercices_and_three_activities(psc_mock, http):
    claims = userinfo(psc_mock, http, access_token(psc_mock, http, "899910000043")).json()
    exercices = claims["SubjectRefPro"]["exercices"]
    assert [e["codeProfession"] for e in exercices] == ["10", "21"]
    assert sum(len(e["activities"]) for e in exercices) == 3
    assert claims["SubjectRole"] == ["10^1.2.250.1.213.1.1.5.5", "21^1.2.250.1.213.1.1.5.5"]


def test_without_scope_all_only_the_identity_is_released(psc_mock, http):
    claims = userinfo(psc_mock, http, access_token(psc_mock, http, "899910000019", scope="openid")).json()
    assert set(claims) == {"sub", "preferred_username", "SubjectNameID"}


# --- control API state --------------------------------------------------------------------------


def test_seeded_professional_can_log_in_until_reset(psc_mock, http):
    newcomer = {
        "rpps": "99910000050",
        "codeCivilite": "MME",
        "family_name": "SAGE-FEMME-TEST",
        "given_name": "SEEDEE",
        "exercices": [{"codeProfession": "50", "activities": [{"codeSecteurDactivite": "SA07"}]}],
    }
    snapshot = psc_mock.seed({"professionals": [{**newcomer, "libelle": "sage-femme ajoutée"}]})
    assert {"national_id": "899910000050", "identifier_type": "RPPS", "libelle": "sage-femme ajoutée"}.items() <= next(
        professional for professional in snapshot["professionals"] if professional["national_id"] == "899910000050"
    ).items()
    claims = userinfo(psc_mock, http, access_token(psc_mock, http, "899910000050")).json()
    assert claims["family_name"] == "SAGE-FEMME-TEST"
    assert claims["SubjectRefPro"]["exercices"][0]["activities"][0]["codePostal"] == ""
    psc_mock.control_post("/reset")
    refused = psc_mock.control_client.post(
        psc_mock.control + "/mocks/psc/state", json={"next_login": {"national_id": "899910000050"}}
    )
    assert refused.status_code == 400


@pytest.mark.parametrize(
    "state",
    [
        pytest.param({"inconnu": 1}, id="unknown-field"),
        pytest.param({"ciba": {"interval": -1}}, id="negative-interval"),
        pytest.param({"ciba": {"outcome": "maybe"}}, id="bad-ciba-outcome"),
        pytest.param({"ciba": {"polls": 1}}, id="unknown-ciba-field"),
        pytest.param({"token_lifetime": "120"}, id="lifetime-as-string"),
        pytest.param({"tolerate_standard_discovery": "yes"}, id="not-a-bool"),
        pytest.param({"next_login": {"national_id": "899910000019", "means": "SMS"}}, id="bad-means"),
        pytest.param({"clients": [{"client_id": "x", "token_endpoint_auth_method": "none"}]}, id="public-client"),
        pytest.param({"clients": [{"client_id": "x", "client_secret": "s", "colour": "bleu"}]}, id="client-field"),
        pytest.param({"clients": [{"client_id": "x", "token_endpoint_auth_method": "private_key_jwt"}]}, id="no-key"),
        pytest.param({"clients": [{"client_id": "segur-sut", "grant_types": ["password"]}]}, id="bad-grant"),
        pytest.param(
            {"professionals": [{"rpps": "99910000018", "family_name": "A", "given_name": "B", "exercices": []}]},
            id="rpps-bad-luhn",
        ),
    ],
)
def test_invalid_state_is_refused_and_changes_nothing(psc_mock, state):
    before = psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json()
    response = psc_mock.control_client.post(psc_mock.control + "/mocks/psc/state", json=state)
    assert response.status_code == 400, response.text
    assert psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json() == before


def test_snapshot_names_professionals_by_libelle(psc_mock):
    snapshot = psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json()
    by_libelle = {professional["libelle"]: professional for professional in snapshot["professionals"]}
    assert by_libelle["médecin généraliste"]["national_id"] == "899910000019"
    assert by_libelle["médecin hospitalier"]["national_id"] == "899910000027"
    assert by_libelle["psychologue sans RPPS"]["identifier_type"] == "ADELI"
    assert len(by_libelle) == len(snapshot["professionals"]), "libellés are unique"


def test_snapshot_redacts_secrets_and_counts_sessions(psc_mock, http):
    access_token(psc_mock, http, "899910000019")
    snapshot = psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json()
    secrets = {client["client_id"]: client["client_secret"] for client in snapshot["clients"]}
    assert secrets["segur-sut"] == "***"
    assert secrets["segur-sut-jwt"] is None
    assert snapshot["active_sessions"] == 1
    assert snapshot["ciba"] == {"interval": 5, "pending_polls": 1, "outcome": "accept", "expires_in": 120}
    assert (snapshot["token_lifetime"], snapshot["refresh_lifetime"]) == (120, 1800)
    assert snapshot["discovery"] == psc_mock.discovery_url
    psc_mock.control_post("/reset")
    assert psc_mock.control_client.get(psc_mock.control + "/mocks/psc/state").json()["active_sessions"] == 0


def test_token_lifetime_from_state(psc_mock, http):
    psc_mock.seed({"token_lifetime": 30, "refresh_lifetime": 60})
    psc_mock.seed({"next_login": {"national_id": "899910000019"}})
    query = {"response_type": "code", "client_id": "segur-sut", "redirect_uri": REDIRECT, "scope": "openid"}
    redirect = http.get(psc_mock.authorization_endpoint + "?" + urlencode(query))
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    body = http.post(psc_mock.endpoint("/token"), data=form, auth=BASIC).json()
    assert (body["expires_in"], body["refresh_expires_in"]) == (30, 60)


# --- validate_access_token (for the other mocks of the host) ------------------------------------


def test_validate_access_token_for_other_mocks(psc_mock, http):
    issued = tokens(psc_mock, http, "899910000027")
    token = issued["access_token"]
    claims = psc_mock.mock.validate_access_token(token)
    assert (claims["preferred_username"], claims["acr"], claims["azp"]) == ("899910000027", "eidas1", "segur-sut")
    http.get(psc_mock.endpoint("/logout"), params={"id_token_hint": issued["id_token"]})
    with pytest.raises(ValueError, match="revoked"):
        psc_mock.mock.validate_access_token(token)
    with pytest.raises(ValueError, match="unknown"):
        psc_mock.mock.validate_access_token(token[:-4] + "AAAA")
    with pytest.raises(ValueError, match="unknown"):
        psc_mock.mock.validate_access_token("pas-un-jeton")
    psc_mock.control_post("/reset")
    with pytest.raises(ValueError, match="unknown"):
        psc_mock.mock.validate_access_token(token)


def test_without_a_pki_a_certificate_client_cannot_authenticate():
    """``PscMock()`` (no PKI) still serves, but a client registered with a PKI certificate is refused."""
    mock = PscMock()
    client = mock.realm.clients["segur-sut-jwt"]
    with pytest.raises(ValueError, match="no test PKI"):
        mock.realm.verify_client_assertion(client, "a.b.c", [mock.realm.issuer])
