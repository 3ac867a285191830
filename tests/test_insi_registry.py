"""The INSi mock's matching rules and seed data, without the wire."""

from __future__ import annotations

import pytest

from segur.ins import OID_INS_NIA, OID_INS_NIR, key_is_valid
from segur.mocks.insi import InsiMock
from segur.mocks.insi.registry import (
    CR_FOUND,
    CR_NONE,
    CR_SEVERAL,
    IdentityRegistry,
    TraitsQuery,
    VitaleQuery,
)
from segur.mocks.runtime.faults import FaultRule


@pytest.fixture
def registry() -> IdentityRegistry:
    return IdentityRegistry.default()


def traits(nom: str, prenom: str, sexe: str, naissance: str, lieu: str | None = None) -> TraitsQuery:
    return TraitsQuery(nom, (prenom,), sexe, naissance, lieu)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        pytest.param(traits("ADRUN", "ZOE", "F", "1975-12-31"), CR_FOUND, id="exact traits"),
        pytest.param(traits("ADRUN", "ZOE", "M", "1975-12-31"), CR_NONE, id="wrong sex"),
        pytest.param(traits("ADRUN", "ZOE", "F", "1975-12-30"), CR_NONE, id="wrong birth date"),
        pytest.param(traits("Adrun", "Zoé", "F", "1975-12-31"), CR_FOUND, id="case and accents normalised"),
        pytest.param(traits(" adrun ", "ZOÉ", "F", "1975-12-31"), CR_FOUND, id="spaces and capital accent"),
        pytest.param(traits("TCHITCHI", "ALEXANDRA", "F", "1984-06-21"), CR_FOUND, id="second first name"),
        pytest.param(traits("TCHITCHI", "KATY", "F", "1984-06-21"), CR_NONE, id="first name not in ListePrenom"),
        pytest.param(traits("ADRUN", "ZOE", "F", "1975-12-31", "63220"), CR_FOUND, id="same birthplace"),
        pytest.param(traits("ADRUN", "ZOE", "F", "1975-12-31", "75056"), CR_NONE, id="different birthplace"),
        pytest.param(traits("DE VINCI", "LEONARDO", "M", "1952-04-15"), CR_SEVERAL, id="two identities"),
        pytest.param(traits("HOUILLES", "PIERRE", "M", "1980-01-01"), CR_NONE, id="unknown name"),
    ],
)
def test_traits_matching(registry, query, code):
    assert registry.search_traits(query).code == code


def test_only_the_first_first_name_sent_is_matched(registry):
    query = TraitsQuery("TCHITCHI", ("KATY", "ALEXANDRA"), "F", "1984-06-21")
    assert registry.search_traits(query).code == CR_NONE


def test_several_matches_give_no_identity(registry):
    result = registry.search_traits(traits("DE VINCI", "LEONARDO", "M", "1952-04-15"))
    assert result.code == CR_SEVERAL
    assert result.identity is None
    assert {i.actif.matricule for i in result.identities} == {"1520499127001", "1520499127002"}


def test_no_match_gives_no_identity(registry):
    result = registry.search_traits(traits("HOUILLES", "PIERRE", "M", "1980-01-01"))
    assert result.identity is None
    assert result.libelle == "Aucune identite trouvee"


def test_found_identity_carries_its_ins(registry):
    identity = registry.search_traits(traits("ADRUN", "ZOE", "F", "1975-12-31")).identity
    assert identity is not None
    assert (identity.actif.matricule, identity.actif.cle, identity.actif.oid) == ("2751263220749", "74", OID_INS_NIR)


def test_corsica_identity_key_is_23(registry):
    identity = registry.search_traits(traits("CORSE", "ANTHONY", "M", "1980-03-02")).identity
    assert identity is not None
    assert (identity.actif.matricule, identity.actif.cle) == ("180032B020401", "23")
    assert key_is_valid(identity.actif.matricule, identity.actif.cle)


def test_provisional_matricule_is_returned_with_the_nia_oid(registry):
    identity = registry.search_traits(traits("PROVISOIRE", "MATRICULE", "M", "2009-07-01")).identity
    assert identity is not None
    assert identity.actif.oid == OID_INS_NIA == "1.2.250.1.213.1.4.9"


def test_hermann_gatien_is_returned_with_key_60_which_does_not_validate(registry):
    identity = registry.search_traits(traits("HERMANN", "GATIEN", "M", "1981-03-24")).identity
    assert identity is not None
    assert identity.actif.cle == "60"
    assert not key_is_valid(identity.actif.matricule, identity.actif.cle)


def test_ecetinsi_has_two_historic_ins(registry):
    identity = registry.search_traits(traits("ECETINSI", "PIERRE-ALAIN", "M", "2009-07-14")).identity
    assert identity is not None
    assert identity.actif.matricule == "1090763220834"
    assert [h.matricule for h in identity.historique] == ["2090763220834", "2090663220123"]
    assert [h.cle for h in identity.historique] == ["39", "55"]


@pytest.mark.parametrize(
    ("matricule", "naissance", "nom", "code"),
    [
        pytest.param("2751263220749", "1975-12-31", None, CR_FOUND, id="active matricule"),
        pytest.param("2090763220834", "2009-07-14", None, CR_FOUND, id="historic matricule"),
        pytest.param("2751263220749", "1975-12-31", "Adrun", CR_FOUND, id="with normalised name"),
        pytest.param("2751263220749", "1975-12-31", "AUTRE", CR_NONE, id="with another name"),
        pytest.param("2751263220749", "1975-12-30", None, CR_NONE, id="wrong birth date"),
    ],
)
def test_vitale_matching(registry, matricule, naissance, nom, code):
    assert registry.search_vitale(VitaleQuery(matricule, naissance, nom)).code == code


def test_vitale_with_historic_matricule_returns_the_active_ins(registry):
    identity = registry.search_vitale(VitaleQuery("2090763220834", "2009-07-14")).identity
    assert identity is not None
    assert identity.actif.matricule == "1090763220834"


NEW_IDENTITY = {
    "nom_naissance": "SEGUR",
    "prenoms": "ALICE MARIE",
    "sexe": "F",
    "date_naissance": "2001-02-03",
    "lieu_naissance": "69123",
    "matricule": "2010269123456",
}


def test_seed_adds_an_identity_with_a_computed_key_and_reset_removes_it():
    mock = InsiMock()
    default_count = len(mock.registry.identities)
    summary = mock.seed({"identities": [NEW_IDENTITY], "idam": ["OTHER-IDAM-0001"]})
    assert summary["identities"] == default_count + 1
    assert "OTHER-IDAM-0001" in summary["idam"]
    identity = mock.registry.search_traits(traits("SEGUR", "MARIE", "F", "2001-02-03")).identity
    assert identity is not None
    assert key_is_valid(identity.actif.matricule, identity.actif.cle)
    assert identity.actif.oid == OID_INS_NIR

    mock.reset()
    assert len(mock.registry.identities) == default_count
    assert "OTHER-IDAM-0001" not in mock.registry.idam
    assert mock.registry.search_traits(traits("SEGUR", "MARIE", "F", "2001-02-03")).code == CR_NONE
    assert mock.registry.search_traits(traits("ADRUN", "ZOE", "F", "1975-12-31")).code == CR_FOUND


def test_seed_with_replace_keeps_only_the_seeded_identities():
    mock = InsiMock()
    assert mock.seed({"identities": [NEW_IDENTITY], "replace": True})["identities"] == 1
    assert mock.registry.search_traits(traits("ADRUN", "ZOE", "F", "1975-12-31")).code == CR_NONE
    mock.reset()
    assert mock.registry.search_traits(traits("ADRUN", "ZOE", "F", "1975-12-31")).code == CR_FOUND


def test_seeding_a_duplicate_makes_the_search_ambiguous():
    mock = InsiMock()
    adrun = {**NEW_IDENTITY, "nom_naissance": "ADRUN", "prenoms": "ZOE", "date_naissance": "1975-12-31"}
    mock.seed({"identities": [adrun]})
    assert mock.registry.search_traits(traits("ADRUN", "ZOE", "F", "1975-12-31")).code == CR_SEVERAL


def test_reset_drops_pending_faults():
    mock = InsiMock()
    mock.faults.add(FaultRule(kind="soap_fault"))
    mock.reset()
    assert mock.faults.pending() == []


@pytest.mark.parametrize(
    "state",
    [
        pytest.param({"unknown": 1}, id="unknown field"),
        pytest.param({"identities": [{**NEW_IDENTITY, "sexe": "X"}]}, id="bad sex"),
        pytest.param({"identities": [{k: v for k, v in NEW_IDENTITY.items() if k != "date_naissance"}]}, id="missing"),
        pytest.param({"identities": [{**NEW_IDENTITY, "matricule": "12345"}]}, id="malformed matricule"),
    ],
)
def test_invalid_seed_is_refused_and_changes_nothing(state):
    mock = InsiMock()
    before = mock.snapshot()
    with pytest.raises(ValueError):
        mock.seed(state)
    assert mock.snapshot() == before


def test_mocks_do_not_share_their_registry():
    first, second = InsiMock(), InsiMock()
    first.seed({"identities": [NEW_IDENTITY]})
    assert len(second.registry.identities) == len(first.registry.identities) - 1
