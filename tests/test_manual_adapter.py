"""Steps judged by a human under ``--sut manual``: the operator's answer decides, not the adapter's echo."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from segur.steps.common import ScenarioContext, document_refused, qualify, same_patient
from segur.sut.manual import ManualSut


def operator_context(monkeypatch: pytest.MonkeyPatch, answers: list[str] | None) -> ScenarioContext:
    """A context over a manual adapter; ``answers`` feed input(), ``None`` means nobody is at the terminal."""
    sut = ManualSut(timeout=0.1, interactive=answers is not None)
    replies = iter(answers or [])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(replies))
    return ScenarioContext(SimpleNamespace(sut=sut), patient_id="MANUEL-1")


@pytest.mark.parametrize(("answer", "refused"), [("o", True), ("n", False)])
def test_hand_typed_refusal_of_a_document_is_asked(monkeypatch, answer, refused):
    ctx = operator_context(monkeypatch, ["", answer])
    qualify(ctx, "carte_vitale")
    if refused:
        document_refused(ctx)
    else:
        with pytest.raises(AssertionError, match="l'opérateur a répondu non"):
            document_refused(ctx)


def test_without_operator_the_refusal_is_left_untested(monkeypatch):
    ctx = operator_context(monkeypatch, None)
    qualify(ctx, "carte_vitale")
    with pytest.raises(NotImplementedError, match="observation manuelle requise"):
        document_refused(ctx)


def test_second_registration_is_judged_by_the_operator_not_by_adapter_ids(monkeypatch):
    ctx = operator_context(monkeypatch, ["o"])
    ctx.registrations = [{"patient_id": f"MANUEL-{n}", "observable": False} for n in (1, 2)]
    same_patient(ctx)


def test_an_automatic_adapters_refusal_needs_no_operator(monkeypatch):
    ctx = operator_context(monkeypatch, None)
    ctx.last_result = {}
    with pytest.raises(AssertionError, match="a accepté un justificatif"):
        document_refused(ctx)


def test_a_manual_suts_psc_uris_come_from_the_run_options():
    """The manual adapter's configure reports nothing: the vendor's URIs are given on the command line."""
    from segur.harness import RunOptions, psc_registrations

    options = RunOptions("ville", psc_redirect_uris=("lgc://psc/retour",), psc_post_logout_redirect_uris=("lgc://fin",))
    client = psc_registrations({}, options)["psc"]["clients"][0]
    assert client["redirect_uris"] == ["lgc://psc/retour"]
    assert client["post_logout_redirect_uris"] == ["lgc://fin"]
    assert psc_registrations({}, RunOptions("ville")) == {}
