"""The N3 volets the couloirs produce, as data: document template and code, required sections.

Adding a volet is adding a ``Volet`` to ``VOLETS``. The requirements are those of the ANS
volets as their official examples (``LDL-SES_2022.01.xml``, ``VSM_1.4_2022.01.xml``) and the
CI-SIS volet Schematrons show them: a section is found by its templateId anywhere in the
structured body, then its code is compared.

A volet is recognised by its templateId *and* its document code. The templateId alone is not
enough: the ANS's own catalogue of content models (``01_Modèles_contenus_CDA.xml``) borrows the
VSM templateId for a 60591-5 document without the VSM sections, and is not validated as a VSM.
Such a mismatch is a warning (CDA-VOL-001), and the volet's sections are then not required.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from segur.cda.minimale import LOINC, TYPE_CODES_CISIS
from segur.cda.paths import finding_at, hl7, xpath
from segur.validation import Finding


@dataclass(frozen=True)
class Section:
    template: str
    code: str
    name: str


@dataclass(frozen=True)
class Volet:
    name: str
    title: str
    template: str
    code: str
    code_system: str
    sections: tuple[Section, ...]


VOLETS: dict[str, Volet] = {
    volet.template: volet
    for volet in (
        Volet(
            "LDL-SES",
            "Lettre de liaison à la sortie d'un établissement de santé",
            "1.2.250.1.213.1.1.1.29",
            "11490-0",
            LOINC,
            (
                Section("1.2.250.1.213.1.1.2.35.1", "33557-0", "Statut du document"),
                Section("1.3.6.1.4.1.19376.1.5.3.1.3.1", "42349-1", "Motif de l'hospitalisation"),
                Section("1.3.6.1.4.1.19376.1.7.3.1.1.13.7", "42545-4", "Synthèse médicale du séjour"),
                Section("1.3.6.1.4.1.19376.1.5.3.1.3.22", "10183-2", "Traitements à la sortie"),
            ),
        ),
        Volet(
            "VSM",
            "Volet de synthèse médicale",
            "1.2.250.1.213.1.1.1.13",
            "SYNTH",
            TYPE_CODES_CISIS,
            (
                Section(
                    "1.2.250.1.213.1.1.2.29", "46612-8", "Pathologies, antécédents, allergies et facteurs de risque"
                ),
                Section("1.3.6.1.4.1.19376.1.5.3.1.3.27", "30954-2", "Résultats d'examens / points de vigilance"),
                Section("1.2.250.1.213.1.1.2.32", "18776-5", "Traitement au long cours"),
            ),
        ),
    )
}

_TEMPLATE_ROOTS = xpath("hl7:templateId/@root")
_CODE = xpath("hl7:code")
_BODY = xpath("hl7:component/hl7:structuredBody")
_SECTION = hl7("section")
_TEMPLATE = hl7("templateId")
_SECTION_CODE = hl7("code")


def volet_findings(document: etree._Element) -> list[Finding]:
    """Rules CDA-VOL-*: each declared volet's document code and required sections."""
    findings = []
    for root in _TEMPLATE_ROOTS(document):
        volet = VOLETS.get(str(root))
        if volet is not None:
            findings += _check(document, volet)
    return findings


def _check(document: etree._Element, volet: Volet) -> list[Finding]:
    codes = _CODE(document)
    found = (codes[0].get("code"), codes[0].get("codeSystem")) if codes else (None, None)
    if found != (volet.code, volet.code_system):
        message = (
            f"the {volet.name} templateId is declared but the document code is {found[0]} ({found[1]}), "
            f"not {volet.code} ({volet.code_system}): the document is not checked as a {volet.name}"
        )
        return [finding_at(codes[0] if codes else document, "CDA-VOL-001", "warning", message)]
    findings = []
    sections = _sections_by_template(document)
    for required in volet.sections:
        section = sections.get(required.template)
        if section is None:
            message = f"{volet.name} requires the section « {required.name} » (templateId {required.template})"
            findings.append(finding_at(document, "CDA-VOL-002", "error", message))
            continue
        code = section.find(_SECTION_CODE)
        if code is None or code.get("code") != required.code:
            message = (
                f"{volet.name} section « {required.name} » must have code {required.code}, "
                f"found {None if code is None else code.get('code')}"
            )
            findings.append(finding_at(section if code is None else code, "CDA-VOL-003", "error", message))
    return findings


def _sections_by_template(document: etree._Element) -> dict[str, etree._Element]:
    """First section carrying each templateId; one pass over the body however many sections a volet needs."""
    found: dict[str, etree._Element] = {}
    for body in _BODY(document):
        for section in body.iter(_SECTION):
            for template in section.iterchildren(_TEMPLATE):
                found.setdefault(template.get("root", ""), section)
    return found
