"""The reference SUT's CDA R2 documents for the DMP: LDL-SES (hospital DPI) and VSM (GP software), N1 and N3.

The harness's CDA and XDS-metadata validators run on these documents, so they follow the ANS
CI-SIS as published: the header is the "structuration minimale" (template 1.2.250.1.213.1.1.1.1,
its Schematron in ansforge/TestContenuCDA-3-0), the bodies follow the official examples
LDL-SES_2022.01.xml and VSM_1.4_2022.01.xml and the volet Schematrons (sections they make
mandatory). An N1 document keeps the volet's type code but, as the structuration minimale
demands, carries exactly three templateIds (HL7 France, CI-SIS, IHE XDS-SD) and a PDF body.

A request carries who and when (patient, author, organisation, times, ids) and a few lines of
free text; the structured clinical content is one fixed synthetic case per volet (a short
cardiology stay, a GP summary of the same fictitious patient), enough for every mandatory
section and entry. Output is deterministic: entry and section ids are UUIDs derived from the
document id, nothing reads the clock.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple

from lxml import etree

from segur.reference_sut.pdf import make_pdf

DocumentKind = Literal["LDL-SES", "VSM"]
Level = Literal["N1", "N3"]

HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

OID_INS_NIR = "1.2.250.1.213.1.4.8"
OID_INS_NIA = "1.2.250.1.213.1.4.9"
OID_INS_NIR_TEST = "1.2.250.1.213.1.4.10"
OID_INS_NIA_TEST = "1.2.250.1.213.1.4.11"
OID_IDNPS = "1.2.250.1.71.4.2.1"
OID_STRUCTURE = "1.2.250.1.71.4.2.2"

TEMPLATE_HL7_FRANCE = "2.16.840.1.113883.2.8.2.1"
TEMPLATE_STRUCTURATION_MINIMALE = "1.2.250.1.213.1.1.1.1"
TEMPLATE_XDS_SD = "1.3.6.1.4.1.19376.1.2.20"

LOINC = "2.16.840.1.113883.6.1"
SNOMED_CT = "2.16.840.1.113883.6.96"
CIM_10 = "2.16.840.1.113883.6.3"
TA_ASIP = "1.2.250.1.213.1.1.4.322"
CIS = "1.2.250.1.213.2.3.1"
ATC = "2.16.840.1.113883.6.73"
EDQM = "0.4.0.127.0.16.1.1.2.1"
ACT_CODE = "2.16.840.1.113883.5.4"


class Coded(NamedTuple):
    """A coded value as CDA writes it (code, displayName, codeSystem, codeSystemName)."""

    code: str
    display: str
    system: str
    system_name: str = ""


# The few entries of the ANS value sets the reference SUT uses (JDV_J01, J02, J04, J143, Confidentiality).
AUTHOR_SPECIALTIES: dict[str, str] = {
    "G15_10": "Médecin",
    "G15_10/SM04": "Médecin - Cardiologie et maladies vasculaires (SM)",
    "G15_10/SM26": "Médecin - Qualifié en Médecine Générale (SM)",
    "G15_10/SM27": "Médecin - Médecine interne (SM)",
    "G15_10/SM54": "Médecin - Médecine Générale (SM)",
    "G15_21": "Pharmacien",
}
FACILITY_TYPES: dict[str, str] = {
    "SA01": "Etablissement public de santé",
    "SA04": "Etablissement privé non PSPH",
    "SA05": "Centre de santé",
    "SA07": "Cabinet individuel",
    "SA08": "Cabinet de groupe",
}
PRACTICE_SETTINGS: dict[str, str] = {"ETABLISSEMENT": "Etablissement de santé", "AMBULATOIRE": "Ambulatoire"}
GENDERS: dict[str, str] = {"M": "Masculin", "F": "Féminin"}
CONFIDENTIALITY: dict[str, str] = {"N": "Normal", "R": "Restreint", "V": "Très restreint"}


def _lookup(table: dict[str, str], code: str, system: str, what: str) -> Coded:
    if code not in table:
        raise ValueError(f"{what} {code!r} is not one the reference SUT knows: {sorted(table)}")
    return Coded(code, table[code], system, "")


@dataclass(frozen=True, kw_only=True)
class CdaPatient:
    """The patient as the INS referential identifies them: INS (matricule + key) and the INS traits.

    ``given_names`` are the birth-certificate given names, first one first. ``birthplace_cog``
    is an INS trait the structuration minimale requires with an INS; leaving it out yields a
    document the CDA validator must refuse, which is what a defect needs.
    """

    ins: str
    birth_family_name: str
    given_names: tuple[str, ...]
    birth_date: date
    gender: Literal["M", "F"]
    local_id: str
    local_id_oid: str
    ins_oid: str = OID_INS_NIR_TEST
    used_family_name: str | None = None
    used_given_name: str | None = None
    birthplace_cog: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "given_names", tuple(self.given_names))
        if len(self.ins) != 15:
            raise ValueError(f"an INS is 15 characters (matricule and key), got {self.ins!r}")
        if not self.given_names:
            raise ValueError("the INS traits include at least one birth given name")


@dataclass(frozen=True, kw_only=True)
class CdaAuthor:
    """A health professional identified by RPPS; profession (G15) and specialty (R38) make the J01 code."""

    rpps: str
    family_name: str
    given_name: str
    profession_code: str = "10"
    specialty_code: str | None = None

    def __post_init__(self) -> None:
        if len(self.rpps) != 11 or not self.rpps.isdigit():
            raise ValueError(f"an RPPS number is 11 digits, got {self.rpps!r}")

    @property
    def idnps(self) -> str:
        """The national PS identifier the CI-SIS writes under 1.2.250.1.71.4.2.1: "8" + RPPS."""
        return "8" + self.rpps

    @property
    def specialty(self) -> Coded:
        key = f"G15_{self.profession_code}" + (f"/{self.specialty_code}" if self.specialty_code else "")
        return _lookup(AUTHOR_SPECIALTIES, key, "1.2.250.1.213.1.1.4.5", "profession/specialty")


@dataclass(frozen=True, kw_only=True)
class CdaOrganisation:
    """The structure: ``id`` is its national structure id under 1.2.250.1.71.4.2.2 ("1" + FINESS, "3" + SIRET)."""

    id: str
    name: str
    facility_type_code: str
    practice_setting_code: str

    @property
    def facility_type(self) -> Coded:
        return _lookup(FACILITY_TYPES, self.facility_type_code, "1.2.250.1.71.4.2.4", "facility type (J02)")

    @property
    def practice_setting(self) -> Coded:
        return _lookup(PRACTICE_SETTINGS, self.practice_setting_code, "1.2.250.1.213.1.1.4.9", "practice setting")


@dataclass(frozen=True)
class CdaId:
    """An HL7 instance identifier (II): an OID or UUID root, optionally an extension."""

    root: str
    extension: str = ""


@dataclass(frozen=True, kw_only=True)
class CdaRequest:
    """One document to produce. Times must be timezone-aware: the CI-SIS wants an offset on every timestamp."""

    kind: DocumentKind
    level: Level
    patient: CdaPatient
    author: CdaAuthor
    organisation: CdaOrganisation
    effective_time: datetime
    service_start: datetime
    service_stop: datetime | None
    document_id: CdaId
    set_id: CdaId
    text: tuple[str, ...]
    title: str = ""
    version_number: int = 1
    related_document: CdaId | None = None
    confidentiality: str = "N"

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", tuple(self.text))
        if self.version_number < 1:
            raise ValueError("versionNumber is a positive integer")
        for name in ("effective_time", "service_start", "service_stop"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware")


def replacement(
    previous: CdaRequest, *, document_id: CdaId, effective_time: datetime, text: Sequence[str] | None = None
) -> CdaRequest:
    """The request for the next version of ``previous``: same setId, versionNumber + 1, RPLC of its id.

    The DMP replaces a document through relatedDocument/parentDocument (typeCode RPLC) and keeps
    the lineage by setId; the replacement must have a new id of its own.
    """
    if document_id == previous.document_id:
        raise ValueError("a replacement needs a new document id")
    return replace(
        previous,
        document_id=document_id,
        effective_time=effective_time,
        version_number=previous.version_number + 1,
        related_document=previous.document_id,
        text=tuple(previous.text if text is None else text),
    )


# --- XML building -------------------------------------------------------------------------------


def _add(
    parent: etree._Element, tag: str, text: str | None = None, *, xsi_type: str = "", **attrs: str
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{HL7}}}{tag}", {key: value for key, value in attrs.items() if value})
    if xsi_type:
        element.set(f"{{{XSI}}}type", xsi_type)
    if text is not None:
        element.text = text
    return element


def _coded(parent: etree._Element, tag: str, value: Coded, *, xsi_type: str = "") -> etree._Element:
    return _add(
        parent,
        tag,
        xsi_type=xsi_type,
        code=value.code,
        displayName=value.display,
        codeSystem=value.system,
        codeSystemName=value.system_name,
    )


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S%z")


def _day(moment: date) -> str:
    return moment.strftime("%Y%m%d")


def _interval(parent: etree._Element, tag: str, low: str, high: str = "", *, xsi_type: str = "") -> None:
    element = _add(parent, tag, xsi_type=xsi_type)
    _add(element, "low", value=low)
    if high:
        _add(element, "high", value=high)


def _uid(request: CdaRequest, name: str) -> str:
    """A stable UUID for a section or entry: same document, same ids, so output is byte-identical."""
    seed = f"{request.document_id.root}^{request.document_id.extension}/{name}"
    return str(uuid.uuid5(uuid.NAMESPACE_OID, seed)).upper()


def _person_name(parent: etree._Element, tag: str, author: CdaAuthor) -> None:
    name = _add(_add(parent, tag), "name")
    _add(name, "given", author.given_name)
    _add(name, "family", author.family_name)


def _organisation(parent: etree._Element, tag: str, organisation: CdaOrganisation, *, setting: bool) -> None:
    element = _add(parent, tag)
    _add(element, "id", root=OID_STRUCTURE, extension=organisation.id)
    _add(element, "name", organisation.name)
    if setting:
        _coded(element, "standardIndustryClassCode", organisation.practice_setting)


def _professional(parent: etree._Element, tag: str, request: CdaRequest, *, setting: bool) -> None:
    """assignedAuthor / assignedEntity: IDNPS, J01 code, name, structure."""
    element = _add(parent, tag)
    _add(element, "id", root=OID_IDNPS, extension=request.author.idnps)
    _coded(element, "code", request.author.specialty)
    _person_name(element, "assignedPerson", request.author)
    _organisation(element, "representedOrganization", request.organisation, setting=setting)


# --- sections, narrative and entries -------------------------------------------------------------


def _loinc(code: str, display: str) -> Coded:
    return Coded(code, display, LOINC, "LOINC")


def _ta_asip(code: str, display: str) -> Coded:
    return Coded(code, display, TA_ASIP, "TA_ASIP")


def _snomed(code: str, display: str) -> Coded:
    return Coded(code, display, SNOMED_CT, "SNOMED CT")


class SectionKind(NamedTuple):
    """A section model: its templateIds (CCD / IHE PCC parents, then CI-SIS) and its LOINC code."""

    templates: tuple[str, ...]
    code: Coded


# LDL-SES sections (official example LDL-SES_2022.01.xml, mandatory ones per CI-SIS_LDL-SES_2022.01.sch).
STATUT_DOCUMENT = SectionKind(
    ("1.2.250.1.213.1.1.2.35", "1.2.250.1.213.1.1.2.35.1"), _loinc("33557-0", "Etat d'achèvement")
)
RAISON_RECOMMANDATION = SectionKind(
    ("1.3.6.1.4.1.19376.1.5.3.1.3.1", "1.2.250.1.213.1.1.2.127"), _loinc("42349-1", "Raison de la recommandation")
)
RESULTATS_EVENEMENTS = SectionKind(
    (
        "1.3.6.1.4.1.19376.1.5.3.1.1.21.2.9",
        "1.3.6.1.4.1.19376.1.7.3.1.1.13.7",
        "1.2.250.1.213.1.1.2.163",
        "1.2.250.1.213.1.1.2.163.1",
    ),
    _loinc("42545-4", "Evènements observés"),
)
TRAITEMENTS_SORTIE = SectionKind(
    ("1.3.6.1.4.1.19376.1.5.3.1.3.22", "1.2.250.1.213.1.1.2.146"), _loinc("10183-2", "Traitements à la sortie")
)
RESULTATS_EXAMENS = SectionKind(
    ("1.3.6.1.4.1.19376.1.5.3.1.3.27", "1.2.250.1.213.1.1.2.150"), _loinc("30954-2", "Résultats d'examens")
)
PLAN_DE_SOINS = SectionKind(
    ("2.16.840.1.113883.10.20.1.10", "1.3.6.1.4.1.19376.1.5.3.1.3.36", "1.2.250.1.213.1.1.2.158"),
    _loinc("18776-5", "Plan de soins"),
)
# VSM sections (official example VSM_1.4_2022.01.xml, mandatory top-level ones per CI-SIS_VSM_2023.01.sch).
PATHOLOGIES_ANTECEDENTS = SectionKind(("1.2.250.1.213.1.1.2.29",), _loinc("46612-8", "Conclusions de synthèse"))
HISTORIQUE_ET_PHYSIQUE = SectionKind(("1.2.250.1.213.1.1.2.30",), _loinc("34117-2", "Historique et physique"))
PROBLEMES_ACTIFS = SectionKind(
    ("2.16.840.1.113883.10.20.1.11", "1.3.6.1.4.1.19376.1.5.3.1.3.6", "1.2.250.1.213.1.1.2.132"),
    _loinc("11450-4", "Liste des problèmes actifs"),
)
ANTECEDENTS_MEDICAUX = SectionKind(
    ("1.3.6.1.4.1.19376.1.5.3.1.3.8", "1.2.250.1.213.1.1.2.134"), _loinc("11348-0", "Antécédents médicaux")
)
ALLERGIES = SectionKind(
    ("2.16.840.1.113883.10.20.1.2", "1.3.6.1.4.1.19376.1.5.3.1.3.13", "1.2.250.1.213.1.1.2.137"),
    _loinc("48765-2", "Allergies et hypersensibilités"),
)
FACTEURS_DE_RISQUE = SectionKind(
    ("1.2.250.1.213.1.1.2.31",),
    _loinc("57207-3", "Facteurs de risque présents ou passés affectant l'état de santé et/ou une circonstance"),
)
MODE_DE_VIE = SectionKind(
    (
        "2.16.840.1.113883.10.20.1.15",
        "1.3.6.1.4.1.19376.1.5.3.1.3.16",
        "1.3.6.1.4.1.19376.1.5.3.1.3.16.1",
        "1.2.250.1.213.1.1.2.141",
    ),
    _loinc("29762-2", "Habitus, Mode de vie"),
)
RISQUES_PROFESSIONNELS = SectionKind(
    ("1.3.6.1.4.1.19376.1.5.3.1.1.5.3.1", "1.2.250.1.213.1.1.2.74"),
    _loinc("10161-8", "Facteurs de risques professionnels"),
)
TRAITEMENT_AU_LONG_COURS = SectionKind(("1.2.250.1.213.1.1.2.32",), _loinc("18776-5", "Plan de traitement"))
TRAITEMENTS = SectionKind(
    ("2.16.840.1.113883.10.20.1.8", "1.3.6.1.4.1.19376.1.5.3.1.3.19", "1.2.250.1.213.1.1.2.143"),
    _loinc("10160-0", "Traitements"),
)

Cell = str | tuple[str, str]
"""A narrative table cell: plain text, or (content ID, text) for the text an entry references."""


def _section(parent: etree._Element, request: CdaRequest, kind: SectionKind, title: str) -> etree._Element:
    section = _add(_add(parent, "component"), "section")
    for template in kind.templates:
        _add(section, "templateId", root=template)
    _add(section, "id", root=_uid(request, f"section/{kind.code.code}"))
    _coded(section, "code", kind.code)
    _add(section, "title", title)
    return section


def _table(section: etree._Element, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    table = _add(_add(section, "text"), "table", border="0")
    head = _add(_add(table, "thead"), "tr")
    for label in header:
        _add(head, "th", label)
    body = _add(table, "tbody")
    for row in rows:
        tr = _add(body, "tr")
        for cell in row:
            if isinstance(cell, tuple):
                _add(_add(tr, "td"), "content", cell[1], ID=cell[0])
            else:
                _add(tr, "td", cell)


def _paragraphs(section: etree._Element, lines: Sequence[str]) -> None:
    text = _add(section, "text")
    for line in lines:
        _add(text, "paragraph", line)


def _entry(
    parent: etree._Element, tag: str, request: CdaRequest, key: str, templates: Sequence[str], **attrs: str
) -> etree._Element:
    """An entry act with its templateIds and a stable id; ``parent`` is the entry or entryRelationship."""
    element = _add(parent, tag, **attrs)
    for template in templates:
        _add(element, "templateId", root=template)
    _add(element, "id", root=_uid(request, key))
    return element


def _reference(parent: etree._Element, content_id: str, tag: str = "text") -> None:
    _add(_add(parent, tag), "reference", value=f"#{content_id}")


def _shown(value: Coded | str | bool) -> str:
    if isinstance(value, bool):
        return "Oui" if value else "Non"
    return value if isinstance(value, str) else value.display


class Fact(NamedTuple):
    """One FR-Simple-Observation: its specific CI-SIS templates, code, narrative id and value."""

    templates: tuple[str, ...]
    code: Coded
    content_id: str
    value: Coded | str | bool


SIMPLE_OBSERVATION = ("1.3.6.1.4.1.19376.1.5.3.1.4.13", "1.2.250.1.213.1.1.3.48")


def _facts(section: etree._Element, request: CdaRequest, facts: Sequence[Fact]) -> None:
    """A two-column narrative and one Simple Observation (1.2.250.1.213.1.1.3.48.*) per fact."""
    _table(
        section, ("Rubrique", "Valeur"), [(fact.code.display, (fact.content_id, _shown(fact.value))) for fact in facts]
    )
    for fact in facts:
        observation = _entry(
            _add(section, "entry"),
            "observation",
            request,
            f"entry/{fact.code.code}",
            (*SIMPLE_OBSERVATION, *fact.templates),
            classCode="OBS",
            moodCode="EVN",
        )
        _coded(observation, "code", fact.code)
        _reference(observation, fact.content_id)
        _add(observation, "statusCode", code="completed")
        _add(observation, "effectiveTime", value=_ts(request.effective_time))
        if isinstance(fact.value, bool):
            _add(observation, "value", xsi_type="BL", value=str(fact.value).lower())
        elif isinstance(fact.value, str):
            _add(observation, "value", fact.value, xsi_type="ST")
        else:
            _coded(observation, "value", fact.value, xsi_type="CD")


class Medication(NamedTuple):
    """A medicinal product (CIS code, ATC substance) taken orally, a number of tablets once a day."""

    product: Coded
    substance: Coded
    name: str
    tablets_per_day: int


def _medication(section: etree._Element, request: CdaRequest, medication: Medication, start: date) -> None:
    """The narrative row and the FR-Traitement entry (1.2.250.1.213.1.1.3.42) with its FR-Produit-de-sante."""
    content_id = f"traitement-{medication.product.code}"
    dose = f"{medication.tablets_per_day} comprimé(s) par jour"
    _table(
        section,
        ("Date de début", "Médicament", "Posologie", "Voie"),
        [(start.strftime("%d/%m/%Y"), (content_id, medication.product.display), dose, "Voie orale")],
    )
    administration = _entry(
        _add(section, "entry"),
        "substanceAdministration",
        request,
        f"entry/{content_id}",
        (
            "1.2.250.1.213.1.1.3.42",
            "2.16.840.1.113883.10.20.1.24",
            "1.3.6.1.4.1.19376.1.5.3.1.4.7",
            "1.3.6.1.4.1.19376.1.5.3.1.4.7.1",
        ),
        classCode="SBADM",
        moodCode="EVN",
    )
    _coded(administration, "code", Coded("DRUG", "Médicament", ACT_CODE, "HL7:ActCode"))
    _reference(administration, content_id)
    _add(administration, "statusCode", code="completed")
    period = _add(administration, "effectiveTime", xsi_type="IVL_TS")
    _add(period, "low", value=_day(start))
    _add(period, "high", nullFlavor="UNK")
    _add(_add(administration, "effectiveTime", xsi_type="PIVL_TS", operator="A"), "period", value="1", unit="d")
    _coded(administration, "routeCode", Coded("20053000", "Voie orale", EDQM, "EDQM"))
    quantity = _add(administration, "doseQuantity")
    for bound in ("low", "high"):
        _add(quantity, bound, value=str(medication.tablets_per_day), unit="{tablet}")
    product = _add(_add(administration, "consumable"), "manufacturedProduct")
    for template in ("1.2.250.1.213.1.1.3.43", "2.16.840.1.113883.10.20.1.53", "1.3.6.1.4.1.19376.1.5.3.1.4.7.2"):
        _add(product, "templateId", root=template)
    material = _add(product, "manufacturedMaterial")
    code = _coded(material, "code", medication.product)
    _reference(code, content_id, "originalText")
    _coded(code, "translation", medication.substance)
    _add(material, "name", medication.name)


CONCERN = ("2.16.840.1.113883.10.20.1.27", "1.3.6.1.4.1.19376.1.5.3.1.4.5.1")


def _concern(
    section: etree._Element, request: CdaRequest, key: str, template: str, cisis: str, start: date, end: date | None
) -> etree._Element:
    """A concern act (FR-Liste-des-problemes / -allergies); returns the entryRelationship for its observation."""
    act = _entry(
        _add(section, "entry"), "act", request, key, (*CONCERN, template, cisis), classCode="ACT", moodCode="EVN"
    )
    _add(act, "code", nullFlavor="NA")
    _add(act, "statusCode", code="active" if end is None else "completed")
    _interval(act, "effectiveTime", _day(start), _day(end) if end else "")
    return _add(act, "entryRelationship", typeCode="SUBJ", inversionInd="false")


def _problems(
    section: etree._Element, request: CdaRequest, problems: Sequence[tuple[Coded, date, date | None]]
) -> None:
    """A narrative table and one problem concern per CIM-10 diagnosis (start, end or None if still active)."""
    rows = [(start.strftime("%d/%m/%Y"), (f"probleme-{code.code}", code.display)) for code, start, _ in problems]
    _table(section, ("Date", "Pathologie"), rows)
    for diagnosis, start, end in problems:
        content_id = f"probleme-{diagnosis.code}"
        relationship = _concern(
            section,
            request,
            f"entry/{content_id}",
            "1.3.6.1.4.1.19376.1.5.3.1.4.5.2",
            "1.2.250.1.213.1.1.3.39",
            start,
            end,
        )
        problem = _entry(
            relationship,
            "observation",
            request,
            f"entry/{content_id}/probleme",
            ("2.16.840.1.113883.10.20.1.28", "1.3.6.1.4.1.19376.1.5.3.1.4.5", "1.2.250.1.213.1.1.3.37"),
            classCode="OBS",
            moodCode="EVN",
            negationInd="false",
        )
        _coded(problem, "code", _snomed("282291009", "interprétation diagnostique"))
        _reference(problem, content_id)
        _add(problem, "statusCode", code="completed")
        _interval(problem, "effectiveTime", _day(start), _day(end) if end else "")
        _reference(_coded(problem, "value", diagnosis, xsi_type="CD"), content_id, "originalText")


def _drug_allergy(section: etree._Element, request: CdaRequest, agent: Coded, reaction: str, since: date) -> None:
    """A narrative row and FR-Liste-des-allergies-et-hypersensibilites holding one drug allergy."""
    _table(
        section,
        ("Date", "Type", "Agent", "Manifestation"),
        [
            (
                since.strftime("%d/%m/%Y"),
                ("allergie-type", "Allergie médicamenteuse"),
                ("allergie-agent", agent.display),
                ("allergie-reaction", reaction),
            )
        ],
    )
    relationship = _concern(
        section, request, "entry/allergies", "1.3.6.1.4.1.19376.1.5.3.1.4.5.3", "1.2.250.1.213.1.1.3.40", since, None
    )
    allergy = _entry(
        relationship,
        "observation",
        request,
        "entry/allergies/1",
        (
            "2.16.840.1.113883.10.20.1.18",
            "2.16.840.1.113883.10.20.1.28",
            "1.3.6.1.4.1.19376.1.5.3.1.4.5",
            "1.3.6.1.4.1.19376.1.5.3.1.4.6",
            "1.2.250.1.213.1.1.3.41",
        ),
        classCode="OBS",
        moodCode="EVN",
        negationInd="false",
    )
    _coded(allergy, "code", _snomed("416098002", "allergie médicamenteuse"))
    _reference(allergy, "allergie-type")
    _add(allergy, "statusCode", code="completed")
    _interval(allergy, "effectiveTime", _day(since), xsi_type="IVL_TS")
    _reference(_add(allergy, "value", xsi_type="CD"), "allergie-reaction", "originalText")
    role = _add(_add(allergy, "participant", typeCode="CSM"), "participantRole", classCode="MANU")
    _reference(_coded(_add(role, "playingEntity", classCode="MMAT"), "code", agent), "allergie-agent", "originalText")


# --- the fixed synthetic clinical case ------------------------------------------------------------

CLOPIDOGREL = Medication(
    Coded("63564053", "PLAVIX 75 mg, comprimé pelliculé", CIS, "CIS"),
    Coded("B01AC04", "clopidogrel", ATC, "ATC"),
    "PLAVIX 75 mg",
    1,
)
CORONARY_DISEASE = Coded("I25.1", "Cardiopathie artérioscléreuse", CIM_10, "CIM-10")
PAST_PNEUMONIA = Coded("J18.9", "Pneumopathie, sans précision", CIM_10, "CIM-10")
AMOXICILLIN = Coded("J01CA04", "amoxicilline", ATC, "ATC")


def _ldl_ses_body(body: etree._Element, request: CdaRequest) -> None:
    """The four sections the LDL-SES Schematron makes mandatory, plus Résultats d'examens and Plan de soins.

    Left out, all [0..1] and without content in this synthetic stay: Traitements administrés,
    Dispositifs médicaux, Allergies (none identified during the stay).
    """
    status = _section(body, request, STATUT_DOCUMENT, "Statut du document")
    _facts(
        status,
        request,
        [
            Fact(
                ("1.2.250.1.213.1.1.3.48.16", "1.2.250.1.213.1.1.3.48.16.1"),
                _ta_asip("GEN-065", "Statut du document"),
                "statut-document",
                _snomed("29179001", "clôturé"),
            ),
        ],
    )
    _paragraphs(
        _section(body, request, RAISON_RECOMMANDATION, "Motif de l'hospitalisation"),
        ["Douleur thoracique constrictive de repos."],
    )
    events = _section(body, request, RESULTATS_EVENEMENTS, "Synthèse médicale du séjour")
    _facts(
        events,
        request,
        [
            Fact(
                ("1.2.250.1.213.1.1.3.48.6",),
                _ta_asip("ORG-070", "Modalité d'entrée"),
                "modalite-entree",
                _snomed("183452005", "hospitalisation en urgence"),
            ),
            Fact(
                ("1.2.250.1.213.1.1.3.48.7",),
                _ta_asip("ORG-074", "Modalité de sortie"),
                "modalite-sortie",
                _snomed("160849004", "retour au domicile"),
            ),
            Fact(
                ("1.2.250.1.213.1.1.3.48.9",),
                _ta_asip("MED-142", "Synthèse médicale"),
                "synthese",
                " ".join(request.text) or "Séjour sans particularité.",
            ),
            Fact(
                ("1.2.250.1.213.1.1.3.48.8",),
                _ta_asip("MED-309", "Recherche de microorganismes multi-résistants ou émergents effectuée"),
                "recherche-bmr",
                False,
            ),
            Fact(
                ("1.2.250.1.213.1.1.3.48.10",),
                _ta_asip("MED-145", "Transfusion de produits sanguins"),
                "transfusion",
                False,
            ),
            Fact(
                ("1.2.250.1.213.1.1.3.48.2",),
                _ta_asip("MED-147", "Administration de dérivés du sang"),
                "derives-sang",
                False,
            ),
        ],
    )
    discharge = (request.service_stop or request.effective_time).date()
    _medication(_section(body, request, TRAITEMENTS_SORTIE, "Traitements à la sortie"), request, CLOPIDOGREL, discharge)
    _paragraphs(
        _section(body, request, RESULTATS_EXAMENS, "Résultats d'examens / Autres informations attendus"),
        ["Troponine normalisée à la sortie. Aucun résultat en attente."],
    )
    _paragraphs(
        _section(body, request, PLAN_DE_SOINS, "Suites à donner"),
        ["Consultation de cardiologie à un mois.", "Revoir le médecin traitant sous huit jours."],
    )


def _vsm_body(body: etree._Element, request: CdaRequest) -> None:
    """The three top-level sections the VSM Schematron makes mandatory, with their usual subsections.

    Left out: Antécédents chirurgicaux and Antécédents familiaux (subsections, none in this case).
    """
    onset = request.effective_time.date() - timedelta(days=3 * 365)
    past = onset - timedelta(days=400)

    summary = _section(
        body, request, PATHOLOGIES_ANTECEDENTS, "Pathologies en cours, antécédents, allergies et facteurs de risque"
    )
    history = _section(summary, request, HISTORIQUE_ET_PHYSIQUE, "Pathologies en cours, antécédents et allergies")
    _problems(
        _section(history, request, PROBLEMES_ACTIFS, "Pathologies en cours"), request, [(CORONARY_DISEASE, onset, None)]
    )
    _problems(
        _section(history, request, ANTECEDENTS_MEDICAUX, "Antécédents médicaux"),
        request,
        [(PAST_PNEUMONIA, past, past + timedelta(days=10))],
    )
    _drug_allergy(
        _section(history, request, ALLERGIES, "Allergies et hypersensibilités"),
        request,
        AMOXICILLIN,
        "Urticaire généralisée",
        past,
    )

    risks = _section(summary, request, FACTEURS_DE_RISQUE, "Facteurs de risque")
    habits = _section(risks, request, MODE_DE_VIE, "Mode de vie")
    _table(habits, ("Type", "Observation"), [(("tabac", "Consommation tabagique"), "20 paquets-années, sevré")])
    smoking = _entry(
        _add(habits, "entry"),
        "observation",
        request,
        "entry/tabac",
        (
            "2.16.840.1.113883.10.20.1.33",
            "1.3.6.1.4.1.19376.1.5.3.1.4.13",
            "1.3.6.1.4.1.19376.1.5.3.1.4.13.4",
            "1.2.250.1.213.1.1.3.52",
        ),
        classCode="OBS",
        moodCode="EVN",
    )
    _coded(smoking, "code", _loinc("74011-8", "Consommation tabagique"))
    _reference(smoking, "tabac")
    _add(smoking, "statusCode", code="completed")
    _add(smoking, "effectiveTime", nullFlavor="NA")
    _add(smoking, "value", xsi_type="PQ", value="20", unit="{pack}/a")
    _paragraphs(
        _section(risks, request, RISQUES_PROFESSIONNELS, "Facteurs de risques professionnels"),
        ["Aucun facteur de risque professionnel connu."],
    )

    _paragraphs(
        _section(body, request, RESULTATS_EXAMENS, "Points de vigilance"),
        request.text or ("Aucun point de vigilance.",),
    )
    plan = _section(body, request, TRAITEMENT_AU_LONG_COURS, "Traitement au long cours")
    _medication(_section(plan, request, TRAITEMENTS, "Traitements"), request, CLOPIDOGREL, onset)


# --- the volets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Volet:
    """What differs between the two volets: templates, codes, the author's role and the N3 body."""

    template: CdaId
    type_code: Coded
    default_title: str
    service_event: Coded
    author_function: Coded | None
    body: Callable[[etree._Element, CdaRequest], None]


VOLETS: dict[str, Volet] = {
    "LDL-SES": Volet(
        template=CdaId("1.2.250.1.213.1.1.1.29", "2022.01"),
        type_code=Coded("11490-0", "Lettre de liaison à la sortie d'un établissement de soins", LOINC, "LOINC"),
        default_title="Lettre de liaison à la sortie de l'établissement de santé",
        service_event=Coded("IMP", "Hospitalisation (établissement, y compris HAD)", ACT_CODE, "HL7:ActCode"),
        author_function=None,
        body=_ldl_ses_body,
    ),
    "VSM": Volet(
        template=CdaId("1.2.250.1.213.1.1.1.13", "201310"),
        type_code=Coded("SYNTH", "Synthèse", "1.2.250.1.213.1.1.4.12"),
        default_title="Synthèse médicale",
        service_event=Coded("34117-2", "Historique et clinique", LOINC, "LOINC"),
        author_function=Coded("PCP", "Médecin traitant", "2.16.840.1.113883.5.88"),
        body=_vsm_body,
    ),
}


def _record_target(root: etree._Element, patient: CdaPatient) -> None:
    role = _add(_add(root, "recordTarget"), "patientRole")
    _add(role, "id", root=patient.ins_oid, extension=patient.ins)
    _add(role, "id", root=patient.local_id_oid, extension=patient.local_id)
    person = _add(role, "patient", classCode="PSN")
    name = _add(person, "name")
    _add(name, "family", patient.birth_family_name, qualifier="BR")
    _add(name, "given", " ".join(patient.given_names))
    _add(name, "given", patient.given_names[0], qualifier="BR")
    if patient.used_family_name:
        _add(name, "family", patient.used_family_name, qualifier="CL")
    if patient.used_given_name:
        _add(name, "given", patient.used_given_name, qualifier="CL")
    _coded(person, "administrativeGenderCode", _lookup(GENDERS, patient.gender, "2.16.840.1.113883.5.1", "gender"))
    _add(person, "birthTime", value=_day(patient.birth_date))
    if patient.birthplace_cog:
        _add(_add(_add(_add(person, "birthplace"), "place"), "addr"), "county", patient.birthplace_cog)


def _header(root: etree._Element, request: CdaRequest, volet: Volet) -> None:
    """The structuration minimale header, in CDA schema order."""
    _add(root, "realmCode", code="FR")
    _add(root, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    _add(root, "templateId", root=TEMPLATE_HL7_FRANCE)
    _add(root, "templateId", root=TEMPLATE_STRUCTURATION_MINIMALE)
    if request.level == "N1":
        _add(root, "templateId", root=TEMPLATE_XDS_SD)
    else:
        _add(root, "templateId", root=volet.template.root, extension=volet.template.extension)
    _add(root, "id", root=request.document_id.root, extension=request.document_id.extension)
    _coded(root, "code", volet.type_code)
    _add(root, "title", request.title or volet.default_title)
    _add(root, "effectiveTime", value=_ts(request.effective_time))
    _coded(
        root,
        "confidentialityCode",
        _lookup(CONFIDENTIALITY, request.confidentiality, "2.16.840.1.113883.5.25", "confidentiality"),
    )
    _add(root, "languageCode", code="fr-FR")
    _add(root, "setId", root=request.set_id.root, extension=request.set_id.extension)
    _add(root, "versionNumber", value=str(request.version_number))
    _record_target(root, request.patient)

    author = _add(root, "author")
    if volet.author_function:
        _coded(author, "functionCode", volet.author_function)
    _add(author, "time", value=_ts(request.effective_time))
    _professional(author, "assignedAuthor", request, setting=False)

    custodian = _add(_add(root, "custodian"), "assignedCustodian")
    _organisation(custodian, "representedCustodianOrganization", request.organisation, setting=False)

    legal = _add(root, "legalAuthenticator")
    _add(legal, "time", value=_ts(request.effective_time))
    _add(legal, "signatureCode", code="S")
    _professional(legal, "assignedEntity", request, setting=True)

    event = _add(_add(root, "documentationOf"), "serviceEvent", classCode="ACT", moodCode="EVN")
    _coded(event, "code", volet.service_event)
    stop = _ts(request.service_stop) if request.service_stop else ""
    _interval(event, "effectiveTime", _ts(request.service_start), stop)
    _professional(_add(event, "performer", typeCode="PRF"), "assignedEntity", request, setting=True)

    if request.related_document:
        parent = _add(_add(root, "relatedDocument", typeCode="RPLC"), "parentDocument")
        _add(parent, "id", root=request.related_document.root, extension=request.related_document.extension)

    encounter = _add(_add(root, "componentOf"), "encompassingEncounter")
    _interval(encounter, "effectiveTime", _ts(request.service_start), stop)
    facility = _add(_add(encounter, "location"), "healthCareFacility")
    _coded(facility, "code", request.organisation.facility_type)


def pdf_lines(request: CdaRequest) -> list[str]:
    """What the N1 PDF shows: the title, the INS identity, the author, then the free text."""
    patient, author = request.patient, request.author
    return [
        request.title or VOLETS[request.kind].default_title,
        "",
        f"Patient : {patient.birth_family_name} {' '.join(patient.given_names)}, "
        f"né(e) le {patient.birth_date.strftime('%d/%m/%Y')}, INS {patient.ins}",
        f"Auteur : {author.given_name} {author.family_name} - {request.organisation.name}",
        f"Date : {request.effective_time.strftime('%d/%m/%Y %H:%M')}",
        "",
        *request.text,
    ]


def produce_cda(request: CdaRequest) -> bytes:
    """The document as UTF-8 XML bytes with an XML declaration; the same request gives the same bytes."""
    volet = VOLETS[request.kind]
    root = etree.Element(f"{{{HL7}}}ClinicalDocument", nsmap={None: HL7, "xsi": XSI})
    _header(root, request, volet)
    component = _add(root, "component")
    if request.level == "N1":
        body = _add(component, "nonXMLBody")
        pdf = base64.b64encode(make_pdf(pdf_lines(request))).decode("ascii")
        _add(body, "text", pdf, mediaType="application/pdf", representation="B64")
    else:
        volet.body(_add(component, "structuredBody"), request)
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
