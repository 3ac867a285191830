"""Steps every couloir uses: patients in the SUT, RNIV statuses, identity exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from segur.harness import Harness
from segur.sut import SutActionError
from segur.sut.base import OBSERVABLE
from segur.validation import Finding

TRAIT_COLUMNS = ("nom_naissance", "prenoms", "sexe", "date_naissance", "lieu_naissance")


class NotExercised(Exception):
    """The scenario never reached what its requirement is about (a mock refused the call, the SUT
    stopped earlier): the requirement is ``non_teste``, never ``non_conforme``."""


@dataclass
class ScenarioContext:
    """What a scenario's steps share: the patient in play and the SUT's last answers."""

    harness: Harness
    journal_start: int = 0
    patient_id: str | None = None
    typed_traits: dict[str, Any] = field(default_factory=dict)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    last_result: dict[str, Any] = field(default_factory=dict)
    last_error: SutActionError | None = None
    professional: dict[str, Any] = field(default_factory=dict)
    pages: list[dict[str, Any]] = field(default_factory=list)
    document_unique_id: str | None = None
    sent_messages: list[dict[str, Any]] = field(default_factory=list)  # MSSanté: what send/replace answered
    received: list[dict[str, Any]] = field(default_factory=list)  # MSSanté: what read_mss_mailbox answered
    probe: str | None = None  # MSSanté: the security probe the operator presents
    incoming_ins: str | None = None  # MSSanté: the INS of the archive the harness sent to the SUT
    token_expired_at: int | None = None  # MSSanté: journal sequence number when the PSC access token expired

    def note(self, findings: list[Finding]) -> None:
        """Findings a Then step computed itself (not journaled by a mock) go to the report's constats."""
        if self.harness.current is not None:
            self.harness.current.note_findings([f.to_json() for f in findings], "étape")

    def act(self, action: str, **params: Any) -> dict[str, Any]:
        assert self.harness.sut is not None
        self.last_result = self.harness.sut.act(action, params)
        return self.last_result

    def observe(self, action: str, question: str) -> dict[str, Any] | None:
        """SUT state for a Then step; with a human operator, ``None`` once they answered yes."""
        try:
            return self.harness.sut.act(action, {"patient_id": self.patient_id})
        except SutActionError as error:
            if error.code != "manual_observation":
                raise
        self.confirm(question)
        return None

    def confirm(self, question: str) -> None:
        """Ask the operator; no answer leaves the requirement untested, "non" fails it."""
        answer = self.harness.sut.ask(question)
        if answer is None:
            raise NotImplementedError(f"observation manuelle requise : {question}")
        assert answer, f"l'opérateur a répondu non : {question}"

    def outcome_seen(self, result: dict[str, Any]) -> bool:
        """False when the adapter could not see what its action produced (a human did it)."""
        return result.get(OBSERVABLE, True)

    def patient(self, question: str) -> dict[str, Any] | None:
        return self.observe("get_patient", question)

    def traces(self, operation: str, question: str) -> list[dict[str, Any]] | None:
        """The SUT's traces of one operation, or ``None`` once an operator confirmed ``question``."""
        patient = self.patient(question)
        return None if patient is None else [t for t in patient["traces"] if t["operation"] == operation]


@pytest.fixture
def ctx(harness: Harness) -> ScenarioContext:
    harness.reset_mocks()
    harness.sut.act("reset", {})
    return ScenarioContext(harness, journal_start=harness.last_seq())


def _register(ctx: ScenarioContext, traits: dict[str, Any]) -> None:
    ctx.typed_traits = traits
    result = ctx.act("register_patient", traits=traits)
    ctx.registrations.append(result)
    ctx.patient_id = result["patient_id"]


@given("le patient suivant est enregistré dans le logiciel")
def register_from_table(ctx: ScenarioContext, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert len(rows) == 1, "one patient per table"
    _register(ctx, {k: v for k, v in zip(header, rows[0], strict=True) if v})


@given(
    parsers.parse(
        'le patient "{nom_naissance}" "{prenoms}" de sexe {sexe} né le {date_naissance} à {lieu_naissance} '
        "est enregistré dans le logiciel"
    )
)
def register_inline(
    ctx: ScenarioContext, nom_naissance: str, prenoms: str, sexe: str, date_naissance: str, lieu_naissance: str
) -> None:
    _register(
        ctx, dict(zip(TRAIT_COLUMNS, (nom_naissance, prenoms, sexe, date_naissance, lieu_naissance), strict=True))
    )


@when("le même patient est saisi une seconde fois")
def register_again(ctx: ScenarioContext) -> None:
    _register(ctx, dict(ctx.typed_traits))


@given(parsers.parse('l\'identité a été contrôlée sur le justificatif "{justificatif}"'))
@when(parsers.parse('l\'identité est contrôlée sur le justificatif "{justificatif}"'))
def qualify(ctx: ScenarioContext, justificatif: str) -> None:
    try:
        ctx.act("qualify_identity", patient_id=ctx.patient_id, justificatif=justificatif)
        ctx.last_error = None
    except SutActionError as error:
        ctx.last_result, ctx.last_error = {}, error


@given(parsers.parse('le justificatif d\'identité présenté est "{justificatif}"'))
def document_presented(ctx: ScenarioContext, justificatif: str) -> None:
    """Outline form of the step above; ``aucun`` means no document was presented."""
    if justificatif != "aucun":
        qualify(ctx, justificatif)


@then("le logiciel retrouve le patient existant au lieu d'en créer un nouveau")
def same_patient(ctx: ScenarioContext) -> None:
    first, second = ctx.registrations[0], ctx.registrations[-1]
    if not ctx.outcome_seen(second):
        ctx.confirm("Le logiciel a-t-il retrouvé le dossier existant au lieu d'en créer un second ?")
        return
    assert second["patient_id"] == first["patient_id"], (
        f"un second dossier {second['patient_id']} a été créé au lieu de retrouver {first['patient_id']}"
    )


@then(parsers.parse('l\'identité a le statut "{statut}"'))
def status_is(ctx: ScenarioContext, statut: str) -> None:
    patient = ctx.patient(f"L'identité affiche-t-elle le statut « {statut} » ?")
    if patient is not None:
        assert patient["statut"] == statut, f"statut {patient['statut']!r}, attendu {statut!r}"


@then("le justificatif est refusé comme insuffisant")
def document_refused(ctx: ScenarioContext) -> None:
    if ctx.last_error is None and not ctx.outcome_seen(ctx.last_result):
        ctx.confirm("Le logiciel a-t-il refusé ce justificatif comme insuffisant pour qualifier l'identité ?")
        return
    assert ctx.last_error is not None, "le logiciel a accepté un justificatif qui n'est pas de haut niveau de confiance"


@then("l'INS ne figure dans l'identité exportée que si l'identité est qualifiée")
def export_carries_ins_only_if_qualified(ctx: ScenarioContext) -> None:
    patient = ctx.patient("L'INS n'apparaît-il dans les échanges que pour une identité qualifiée ?")
    if patient is None:
        return
    exported = ctx.act("export_identity", patient_id=ctx.patient_id, usage="document")["identite"]
    if patient["statut"] == "qualifiee":
        assert exported.get("ins"), "l'identité qualifiée est exportée sans son INS"
    else:
        assert not exported.get("ins"), (
            f"l'INS {exported['ins'].get('matricule')} est transmis pour une identité au statut {patient['statut']}"
        )
