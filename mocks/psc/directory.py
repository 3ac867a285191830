"""The professionals PSC can authenticate, and the userinfo claims PSC builds from the Annuaire Santé.

The claim shapes follow what PSC answers (``SubjectRefPro`` with exercices and activities,
``SubjectRole`` as ``code^OID``, ``otherIds``...): a SUT parses these, so they must look like
the real thing even though every value is fictitious.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from segur.rpps import luhn_valid

# Keycloak names a federated user "f:<federation provider id>:<external id>"; the provider id is
# one per realm, so every professional shares it (as on PSC).
FEDERATION_PROVIDER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:segur-harness:psc:user-federation"))
OID_PROFESSION = "1.2.250.1.213.1.1.5.5"
OID_SECTEUR_ACTIVITE = "1.2.250.1.71.4.2.4"
PSI_LOCALE = "1.2.250.1.213.1.3.1.1"
PALIER_AUTHENTIFICATION = "APPPRIP3^1.2.250.1.213.1.5.1.1.1"

EXERCICE_FIELDS = (
    "codeProfession",
    "codeCategorieProfessionnelle",
    "codeCiviliteDexercice",
    "nomDexercice",
    "prenomDexercice",
    "codeTypeSavoirFaire",
    "codeSavoirFaire",
)
ACTIVITY_FIELDS = (
    "codeModeExercice",
    "codeSecteurDactivite",
    "codeSectionPharmacien",
    "codeRole",
    "numeroSiretSite",
    "numeroSirenSite",
    "numeroFinessSite",
    "numeroFinessetablissementJuridique",
    "identifiantTechniqueDeLaStructure",
    "raisonSocialeSite",
    "enseigneCommercialeSite",
    "complementDestinataire",
    "complementPointGeographique",
    "numeroVoie",
    "indiceRepetitionVoie",
    "codeTypeDeVoie",
    "libelleVoie",
    "mentionDistribution",
    "bureauCedex",
    "codePostal",
    "codeCommune",
    "codePays",
    "telephone",
    "telephone2",
    "telecopie",
    "adresseEMail",
    "codeDepartement",
    "ancienIdentifiantDeLaStructure",
    "autoriteDenregistrement",
)
_PROFESSIONAL_FIELDS = {"rpps", "adeli", "codeCivilite", "family_name", "given_name", "libelle", "exercices"}


@dataclass(frozen=True)
class Professional:
    """One professional of the Annuaire Santé as PSC sees it; ``national_id`` is the IDNPS."""

    national_id: str
    origin: str  # "RPPS" or "ADELI"
    civilite: str
    family_name: str
    given_name: str
    libelle: str  # how scenarios and the login page name this test professional
    exercices: tuple[dict[str, Any], ...]

    @property
    def sub(self) -> str:
        return f"f:{FEDERATION_PROVIDER_ID}:{self.national_id}"

    def userinfo(self, *, scope_all: bool, auth_mode: str) -> dict[str, Any]:
        """The userinfo claims; without ``scope_all`` PSC releases only who the user is."""
        claims: dict[str, Any] = {
            "sub": self.sub,
            "preferred_username": self.national_id,
            "SubjectNameID": self.national_id,
        }
        if not scope_all:
            return claims
        first = self.exercices[0]["activities"][0] if self.exercices and self.exercices[0]["activities"] else {}
        claims.update(
            {
                "email_verified": False,
                "given_name": self.given_name,
                "family_name": self.family_name,
                "otherIds": [{"identifiant": self.national_id, "origine": self.origin, "qualite": 1}],
                "SubjectOrganization": first.get("raisonSocialeSite", ""),
                "SubjectOrganizationID": first.get("identifiantTechniqueDeLaStructure", ""),
                "Secteur_Activite": f"{first['codeSecteurDactivite']}^{OID_SECTEUR_ACTIVITE}" if first else "",
                "SubjectRole": [f"{exercice['codeProfession']}^{OID_PROFESSION}" for exercice in self.exercices],
                "SubjectRefPro": {
                    "codeCivilite": self.civilite,
                    "exercices": [_copy_exercice(exercice) for exercice in self.exercices],
                },
                "PSI_Locale": PSI_LOCALE,
                "Palier_Authentification": PALIER_AUTHENTIFICATION,
                "UITVersion": "1.0",
                "Acces_Regulation_Medicale": "FAUX",
                "Mode_Acces_Raison": "",
                "authMode": auth_mode,
            }
        )
        return claims

    def summary(self) -> dict[str, str]:
        """What the control API's snapshot shows: enough for a step to pick a professional by ``libelle``."""
        return {
            "national_id": self.national_id,
            "identifier_type": self.origin,
            "libelle": self.libelle,
            "family_name": self.family_name,
            "given_name": self.given_name,
        }

    def to_json(self) -> dict[str, Any]:
        number = self.national_id[1:]
        return {
            ("rpps" if self.origin == "RPPS" else "adeli"): number,
            "codeCivilite": self.civilite,
            "family_name": self.family_name,
            "given_name": self.given_name,
            "libelle": self.libelle,
            "exercices": [_copy_exercice(exercice) for exercice in self.exercices],
        }


def _copy_exercice(exercice: dict[str, Any]) -> dict[str, Any]:
    return {**exercice, "activities": [dict(activity) for activity in exercice["activities"]]}


def professional_from_json(entry: dict[str, Any]) -> Professional:
    """Validate one entry (YAML or control API); PSC would never emit a malformed RPPS, nor does the mock."""
    if not isinstance(entry, dict):
        raise ValueError("a professional must be a JSON object")
    unknown = set(entry) - _PROFESSIONAL_FIELDS
    if unknown:
        raise ValueError(f"unknown professional fields: {sorted(unknown)}")
    rpps, adeli = entry.get("rpps"), entry.get("adeli")
    if (rpps is None) == (adeli is None):
        raise ValueError("a professional has exactly one of rpps or adeli")
    if rpps is not None:
        if not (isinstance(rpps, str) and len(rpps) == 11 and luhn_valid(rpps)):
            raise ValueError(f"rpps must be 11 digits with a valid Luhn key, got {rpps!r}")
        national_id, origin = "8" + rpps, "RPPS"
    else:
        if not (isinstance(adeli, str) and len(adeli) == 9 and adeli.isdigit()):
            raise ValueError(f"adeli must be 9 digits, got {adeli!r}")
        national_id, origin = "0" + adeli, "ADELI"
    for name in ("family_name", "given_name"):
        if not isinstance(entry.get(name), str) or not entry[name]:
            raise ValueError(f"{name} is required (a non-empty string)")
    exercices = entry.get("exercices")
    if not isinstance(exercices, list) or not exercices:
        raise ValueError("exercices must be a non-empty list")
    return Professional(
        national_id=national_id,
        origin=origin,
        civilite=str(entry.get("codeCivilite", "")),
        family_name=entry["family_name"],
        given_name=entry["given_name"],
        libelle=str(entry.get("libelle", "")),
        exercices=tuple(_exercice(exercice) for exercice in exercices),
    )


def _exercice(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("an exercice must be a JSON object")
    unknown = set(data) - {*EXERCICE_FIELDS, "activities"}
    if unknown:
        raise ValueError(f"unknown exercice fields: {sorted(unknown)}")
    if not data.get("codeProfession"):
        raise ValueError("an exercice needs codeProfession")
    activities = data.get("activities", [])
    if not isinstance(activities, list) or not activities:
        raise ValueError("an exercice needs at least one activity")
    exercice: dict[str, Any] = {field: str(data.get(field, "")) for field in EXERCICE_FIELDS}
    exercice["activities"] = [_activity(activity) for activity in activities]
    return exercice


def _activity(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        raise ValueError("an activity must be a JSON object")
    unknown = set(data) - set(ACTIVITY_FIELDS)
    if unknown:
        raise ValueError(f"unknown activity fields: {sorted(unknown)}")
    if not data.get("codeSecteurDactivite"):
        raise ValueError("an activity needs codeSecteurDactivite")
    return {field: str(data.get(field, "")) for field in ACTIVITY_FIELDS}


def default_professionals() -> dict[str, Professional]:
    """The packaged professionals.yaml, keyed by national id."""
    text = resources.files("segur.mocks.psc").joinpath("professionals.yaml").read_text(encoding="utf-8")
    professionals = [professional_from_json(entry) for entry in yaml.safe_load(text)["professionals"]]
    return {professional.national_id: professional for professional in professionals}
