"""Verdict model: from scenario outcomes to per-requirement status.

A scenario names its requirements through tags only. A failure in a Given/When step
means the requirement could not be exercised (``non_teste``); an assertion failing in a
Then step means the software does not meet it (``non_conforme``). Per requirement: any
``non_conforme`` wins, then any ``non_teste``, else ``conforme``.

Two modes. ``bac-a-sable`` (the default, for a vendor's own runs) shows the validators'
warnings and decides on errors only. ``homologation`` (the run attached to a dossier) also
fails a CRITIQUE requirement on any warning found in its scenarios: a reviewer does not
accept "probably fine" on what the référencement calls critical.

Nature plays no part in a requirement's status, only in the verdict: a PRECONISATION is judged
and shown like any requirement, the homologation rule included, so the vendor sees what to fix,
but it never decides (a recommendation is not a condition of the référencement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segur.catalogue import Catalogue, Exigence

CONFORME, NON_CONFORME, NON_TESTE = "conforme", "non_conforme", "non_teste"
NON_APPLICABLE, PREUVE_MANUELLE, EXTERNE = "non_applicable", "preuve_manuelle", "externe"
STATUSES = (CONFORME, NON_CONFORME, NON_TESTE, NON_APPLICABLE, PREUVE_MANUELLE, EXTERNE)
BAC_A_SABLE, HOMOLOGATION = "bac-a-sable", "homologation"
MODES = (BAC_A_SABLE, HOMOLOGATION)


@dataclass
class StepResult:
    keyword: str
    type: str
    text: str
    statut: str = "passe"
    message: str = ""


@dataclass
class ScenarioResult:
    feature: str
    name: str
    exigences: list[str]
    started: str
    journal_start: int
    steps: list[StepResult] = field(default_factory=list)
    statut: str = CONFORME
    message: str = ""
    ended: str = ""
    journal_end: int = 0
    parameters: dict[str, str] = field(default_factory=dict)
    # Validator findings behind this scenario's verdict (rule, severity, message, location, requirement, origine):
    # those the mocks journaled and those the Then steps computed.
    findings: list[dict[str, str]] = field(default_factory=list)

    def note_findings(self, findings: list[dict[str, str]], origine: str) -> None:
        """Keep findings for the report once, whichever step or exchange surfaced them first."""
        for finding in findings:
            noted = {**finding, "origine": origine}
            key = (noted["rule"], noted.get("location", ""), noted["message"])
            if all((f["rule"], f.get("location", ""), f["message"]) != key for f in self.findings):
                self.findings.append(noted)

    def fail(self, step: StepResult, error: BaseException) -> None:
        """Classify a failing step: Then + AssertionError = non conforme, anything else = not tested."""
        message = str(error) or type(error).__name__
        if isinstance(error, AssertionError):
            # pytest's assertion rewriting appends "assert …/where …" for developers; reviewers get our sentence.
            message = message.split("\nassert ", 1)[0]
        if step.type == "then" and isinstance(error, AssertionError):
            step.statut, self.statut = "echec", NON_CONFORME
        else:
            step.statut, self.statut = "non_execute", NON_TESTE
            message = f"{type(error).__name__}: {message}" if not isinstance(error, AssertionError) else message
        step.message = self.message = message


def aggregate(
    catalogue: Catalogue, couloir: str, scenarios: list[ScenarioResult], mode: str = BAC_A_SABLE
) -> list[dict[str, Any]]:
    """One entry per requirement of the catalogue, with its status and the scenarios that prove it."""
    entries = []
    for exigence in catalogue.exigences:
        linked = [s for s in scenarios if exigence.id in s.exigences]
        statut, messages = _status(exigence, couloir, linked)
        if mode == HOMOLOGATION and statut == CONFORME and exigence.criticite == "CRITIQUE":
            warnings = critical_warnings(exigence.id, linked)
            if warnings:
                statut = NON_CONFORME
                said = (f"mode homologation, avertissement [{w['rule']}] {w['message']}" for w in warnings)
                messages = list(dict.fromkeys(said))[:5]
        entries.append(
            {
                **exigence.to_json(),
                "statut": statut,
                "scenarios": [_scenario_ref(exigence, index, s) for index, s in enumerate(linked, start=1)],
                "messages": messages,
            }
        )
    return entries


def _status(exigence: Exigence, couloir: str, linked: list[ScenarioResult]) -> tuple[str, list[str]]:
    if not exigence.applies_to(couloir):
        return NON_APPLICABLE, [f"ne s'applique pas au couloir {couloir}"]
    if exigence.verification == "manuelle":
        return PREUVE_MANUELLE, ["preuve manuelle (vidéo ou capture) à fournir par l'éditeur"]
    if exigence.verification == "externe":
        return EXTERNE, ["attestation externe (CNDA / CNAM) à joindre au dossier"]
    if not linked:
        return NON_TESTE, ["aucun scénario de ce couloir ne vérifie cette exigence"]
    messages = [f"{s.name}: {s.message}" for s in linked if s.statut != CONFORME]
    for statut in (NON_CONFORME, NON_TESTE):
        if any(s.statut == statut for s in linked):
            return statut, messages
    return CONFORME, []


def critical_warnings(exigence_id: str, linked: list[ScenarioResult]) -> list[dict[str, str]]:
    """Warnings that count against a requirement: those tied to it, and those tied to none in its scenarios."""
    return [
        f
        for scenario in linked
        for f in scenario.findings
        if f["severity"] == "warning" and f.get("requirement", exigence_id) in ("", exigence_id)
    ]


def _scenario_ref(exigence: Exigence, index: int, scenario: ScenarioResult) -> dict[str, Any]:
    scenario_id = f"{exigence.id}.{index:02d}"
    thens = [step for step in scenario.steps if step.type == "then"]
    return {
        "id": scenario_id,
        "nom": scenario.name,
        "feature": scenario.feature,
        "statut": scenario.statut,
        "message": scenario.message,
        "parametres": scenario.parameters,
        "etapes": [vars(step) for step in scenario.steps],
        "preuves": [
            {"id": f"{scenario_id}.{n:02d}", "texte": step.text, "statut": step.statut, "message": step.message}
            for n, step in enumerate(thens, start=1)
        ],
        "journal": [scenario.journal_start + 1, scenario.journal_end],
        "constats": scenario.findings,
    }


def verdict(entries: list[dict[str, Any]]) -> str:
    """``conforme`` only if every applicable automatic EXIGENCE is ``conforme``."""
    deciding = [e for e in entries if e["nature"] == "EXIGENCE" and e["verification"] == "automatique"]
    applicable = [e for e in deciding if e["statut"] != NON_APPLICABLE]
    return CONFORME if applicable and all(e["statut"] == CONFORME for e in applicable) else NON_CONFORME


def summary(entries: list[dict[str, Any]]) -> dict[str, int]:
    return {status: sum(1 for e in entries if e["statut"] == status) for status in STATUSES}
