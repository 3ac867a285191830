"""The ``manual`` adapter: a human operates the software, the harness watches the mocks.

Triggering actions print an instruction and wait (up to ``timeout``) for the traffic they
must cause at the mocks; observations the harness cannot make are asked as yes/no
questions, or, when nobody is at the terminal, left ``non_teste`` with the reason.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from segur.sut.base import OBSERVABLE, OBSERVATIONS, SutActionError, SutAdapter

INSTRUCTIONS = {
    "register_patient": "Créez le patient {traits_text} (avec recherche d'antériorité).",
    "fetch_ins": "Appelez INSi pour le patient {patient_id} (mode {mode}).",
    "verify_ins": "Vérifiez l'INS du patient {patient_id} auprès d'INSi.",
    "qualify_identity": "Enregistrez le justificatif {justificatif} pour le patient {patient_id}.",
    "login_ps": "Connectez-vous avec Pro Santé Connect (mode {mode}) en tant que {national_id}.",
    "use_ps_session": "Dans le logiciel connecté, rouvrez la fiche du professionnel connecté (relecture PSC).",
    "logout_ps": "Déconnectez-vous du logiciel (fin de session Pro Santé Connect).",
    "check_dmp": "Ouvrez le DMP du patient {patient_id} (test d'existence et d'autorisation).",
    "produce_document": "Validez un document (lettre de liaison / synthèse) pour le patient {patient_id}.",
    "publish_document": "Envoyez au DMP un document de niveau {niveau} pour le patient {patient_id} "
    "(confidentialité : {confidentialite}).",
    "resend_dmp_documents": "Relancez l'envoi au DMP des documents en attente du patient {patient_id}.",
    "consult_dmp": "Consultez le DMP du patient {patient_id} (motif {motif}) et ouvrez ses documents.",
    "mask_document": "Masquez aux professionnels le document {unique_id} du patient {patient_id} dans le DMP.",
    "replace_document": "Remplacez dans le DMP le document {unique_id} du patient {patient_id} (version corrigée).",
    "delete_document": "Supprimez du DMP le document {unique_id} du patient {patient_id}.",
    "send_mss_message": "Envoyez par MSSanté un document du patient {patient_id} à {destinataire} "
    "(accusé de lecture : {accuse_lecture} ; réponse du patient bloquée : {bloquer_reponse}).",
    "replace_mss_message": "Envoyez par MSSanté une version corrigée qui annule et remplace le message {message_id} "
    "du patient {patient_id}.",
    "resend_mss_messages": "Relancez l'envoi des messages MSSanté en attente ou en erreur (patient {patient_id}).",
    "read_mss_mailbox": "Relevez la boîte aux lettres MSSanté et ouvrez les nouveaux messages.",
}
# Actions whose effect is visible at a mock: the adapter waits for a new journal record.
EXPECTED_TRAFFIC = {
    "fetch_ins": "insi",
    "verify_ins": "insi",
    "login_ps": "psc",
    "use_ps_session": "psc",
    "logout_ps": "psc",
    "check_dmp": "dmp",
    "produce_document": "dmp",
    "publish_document": "dmp",
    "resend_dmp_documents": "dmp",
    "consult_dmp": "dmp",
    "mask_document": "dmp",
    "replace_document": "dmp",
    "delete_document": "dmp",
    "send_mss_message": "mss",
    "replace_mss_message": "mss",
    "resend_mss_messages": "mss",
    "read_mss_mailbox": "mss",
}


class ManualSut(SutAdapter):
    kind = "manual"

    def __init__(self, timeout: float = 120.0, interactive: bool = False) -> None:
        self.timeout = timeout
        self.interactive = interactive
        self.traffic_probe: Callable[[str, int], int] | None = None
        self._patients = 0

    def describe(self) -> dict[str, Any]:
        return {"name": "logiciel opéré manuellement", "version": "?", "adapter": self.kind}

    def act(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if action in OBSERVATIONS:
            raise SutActionError("manual_observation", f"{action} needs an operator's observation")
        if action == "configure":
            self._say(f"[configure] {params.get('summary', '')}")
            return {}
        if action == "reset":
            self._say("── Nouveau scénario : partez d'une base sans les patients des scénarios précédents.")
            return {}
        template = INSTRUCTIONS.get(action, action)
        traits_text = " ".join(str(v) for v in params.get("traits", {}).values())
        self._say("→ " + template.format_map(_Default(params, traits_text=traits_text)))
        start = self.traffic_probe("", 0) if self.traffic_probe else 0
        if self.interactive:
            input("   Appuyez sur Entrée une fois l'action faite… ")
        mock = EXPECTED_TRAFFIC.get(action)
        if mock and self.traffic_probe is not None and not self._wait_for(mock, start):
            raise SutActionError("no_traffic", f"no {mock} request within {self.timeout:g} s")
        if action == "register_patient":
            self._patients += 1
            return {"patient_id": params.get("patient_id") or f"MANUEL-{self._patients}", OBSERVABLE: False}
        return {OBSERVABLE: False}

    def ask(self, question: str) -> bool | None:
        if not self.interactive:
            return None
        while True:
            answer = input(f"   {question} [o/n] ").strip().lower()
            if answer in ("o", "oui", "y", "yes", "n", "non", "no"):
                return answer[0] in "oy"

    def _wait_for(self, mock: str, since: int) -> bool:
        deadline = time.monotonic() + self.timeout
        assert self.traffic_probe is not None
        while time.monotonic() < deadline:
            if self.traffic_probe(mock, since) > since:
                return True
            time.sleep(0.2)
        return False

    @staticmethod
    def _say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"
