import pytest

from segur.ins import ins_key, key_is_valid


@pytest.mark.parametrize(
    ("matricule", "key"),
    [
        ("2751263220749", "74"),
        ("1090763220834", "89"),
        ("2090763220834", "39"),
        ("1090763220888", "35"),
        ("180032B020401", "23"),
    ],
)
def test_published_test_identities_have_their_published_key(matricule, key):
    assert ins_key(matricule) == key


def test_corsica_departments_use_19_and_18():
    assert ins_key("180032A020401") == ins_key("1800319020401")
    assert ins_key("180032B020401") == ins_key("1800318020401")


def test_hermann_gatien_key_60_does_not_validate():
    assert not key_is_valid("1810363220456", "60")
    assert key_is_valid("1810363220456", ins_key("1810363220456"))


@pytest.mark.parametrize("bad", ["", "12345", "2751263220749X", "27512632207A9"])
def test_malformed_matricule_is_rejected(bad):
    with pytest.raises(ValueError):
        ins_key(bad)
    assert not key_is_valid(bad, "00")
