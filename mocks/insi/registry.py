"""The INSi mock's identity registry and its matching rules (no wire format here).

Matching follows the CNAM service as documented for vendors: birth name, sex and birth
date must be equal after normalisation (upper case, accents removed, spaces collapsed),
the first first name sent must be one of the identity's first names, and the birthplace
(COG) must be equal when it is sent. One match answers 00, none 01, several 02.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from segur.ins import ins_key

CR_FOUND, CR_NONE, CR_SEVERAL = "00", "01", "02"
LIBELLES_CR = {CR_FOUND: "OK", CR_NONE: "Aucune identite trouvee", CR_SEVERAL: "Plusieurs identites trouvees"}


def normalise(text: str | None) -> str:
    """Upper case without accents, single spaces; what the service compares."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.upper().split())


@dataclass(frozen=True)
class InsRecord:
    matricule: str
    cle: str
    oid: str
    date_debut: str | None = None
    date_fin: str | None = None


@dataclass(frozen=True)
class Identity:
    nom_naissance: str
    prenoms: str
    sexe: str
    date_naissance: str
    lieu_naissance: str
    actif: InsRecord
    historique: tuple[InsRecord, ...] = ()
    source: str = "seeded"

    @property
    def first_names(self) -> list[str]:
        return normalise(self.prenoms).split(" ")


@dataclass(frozen=True)
class TraitsQuery:
    nom_naissance: str
    prenoms: tuple[str, ...]
    sexe: str
    date_naissance: str
    lieu_naissance: str | None = None


@dataclass(frozen=True)
class VitaleQuery:
    matricule: str
    date_naissance: str
    nom_naissance: str | None = None


@dataclass
class SearchResult:
    code: str
    identities: list[Identity] = field(default_factory=list)

    @property
    def libelle(self) -> str:
        return LIBELLES_CR[self.code]

    @property
    def identity(self) -> Identity | None:
        return self.identities[0] if self.code == CR_FOUND else None


def _result(matches: list[Identity]) -> SearchResult:
    if not matches:
        return SearchResult(CR_NONE)
    return SearchResult(CR_FOUND if len(matches) == 1 else CR_SEVERAL, matches)


class IdentityRegistry:
    """Identities known to the mock; seeded from ``identities.yaml`` and the control API."""

    def __init__(self, identities: list[Identity] | None = None, idam: set[str] | None = None) -> None:
        self.identities = list(identities or [])
        self.idam = set(idam or ())

    @classmethod
    def default(cls) -> IdentityRegistry:
        data = yaml.safe_load(resources.files("segur.mocks.insi").joinpath("identities.yaml").read_text("utf-8"))
        oids = data["oid_mapping"]
        return cls([identity_from_json(entry, oids) for entry in data["identities"]], set(data["idam_autorises"]))

    def search_traits(self, query: TraitsQuery) -> SearchResult:
        first = normalise(query.prenoms[0]) if query.prenoms else ""
        matches = [
            identity
            for identity in self.identities
            if normalise(identity.nom_naissance) == normalise(query.nom_naissance)
            and identity.sexe == query.sexe
            and identity.date_naissance == query.date_naissance
            and (first in identity.first_names or first == normalise(identity.prenoms))
            and (not query.lieu_naissance or identity.lieu_naissance == query.lieu_naissance)
        ]
        return _result(matches)

    def search_vitale(self, query: VitaleQuery) -> SearchResult:
        matches = [
            identity
            for identity in self.identities
            if query.matricule in {identity.actif.matricule, *(h.matricule for h in identity.historique)}
            and identity.date_naissance == query.date_naissance
            and (not query.nom_naissance or normalise(identity.nom_naissance) == normalise(query.nom_naissance))
        ]
        return _result(matches)


def identity_from_json(entry: dict[str, Any], oids: dict[str, str] | None = None) -> Identity:
    """Build an identity from the data-file / control-API shape; keys are computed unless given."""
    oids = oids or {"nir": "1.2.250.1.213.1.4.8", "nia": "1.2.250.1.213.1.4.9"}

    def record(item: dict[str, Any], default_oid: str) -> InsRecord:
        matricule = str(item["matricule"])
        return InsRecord(
            matricule=matricule,
            cle=str(item.get("cle") or ins_key(matricule)),
            oid=str(item.get("oid") or default_oid),
            date_debut=item.get("date_debut"),
            date_fin=item.get("date_fin"),
        )

    actif = record(entry, oids["nir"])
    required = ("nom_naissance", "prenoms", "sexe", "date_naissance", "lieu_naissance")
    missing = [name for name in required if not entry.get(name)]
    if missing:
        raise ValueError(f"identity {entry.get('matricule')}: missing {missing}")
    if entry["sexe"] not in ("M", "F"):
        raise ValueError(f"identity {actif.matricule}: sexe must be M or F")
    return Identity(
        nom_naissance=str(entry["nom_naissance"]),
        prenoms=str(entry["prenoms"]),
        sexe=str(entry["sexe"]),
        date_naissance=str(entry["date_naissance"]),
        lieu_naissance=str(entry["lieu_naissance"]),
        actif=actif,
        historique=tuple(record(h, actif.oid) for h in entry.get("historique", ())),
        source=str(entry.get("source", "seeded")),
    )


def identity_to_json(identity: Identity) -> dict[str, Any]:
    return {
        "nom_naissance": identity.nom_naissance,
        "prenoms": identity.prenoms,
        "sexe": identity.sexe,
        "date_naissance": identity.date_naissance,
        "lieu_naissance": identity.lieu_naissance,
        "matricule": identity.actif.matricule,
        "cle": identity.actif.cle,
        "oid": identity.actif.oid,
        "historique": [vars(h) for h in identity.historique],
        "source": identity.source,
    }
