"""Small synthetic CDA documents for the validator's tests, and mutations of them.

Everything here is fictitious: the patient (INS on the test NIR OID), the professional (the
project's médecin généraliste, IDNPS 899910000019), the structure and the one-page PDF. The
sections of each volet are written out here, independently of ``segur.cda.volets``, so the
tests check that data rather than reuse it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable

from lxml import etree
from lxml.builder import ElementMaker

from segur.ins import OID_INS_NIR_TEST, ins_key

HL7 = "urn:hl7-org:v3"
NS = {"hl7": HL7}
E = ElementMaker(namespace=HL7, nsmap={None: HL7})

LOINC = "2.16.840.1.113883.6.1"
MATRICULE = "1841275115042"
INS = MATRICULE + ins_key(MATRICULE)
IDNPS = "899910000019"
STRUCTURE = "1750000000"
LPS_OID = "1.2.250.1.213.1.1.9"

Sections = tuple[tuple[tuple[str, ...], str, str], ...]
VSM_SECTIONS: Sections = (
    (("1.2.250.1.213.1.1.2.29",), "46612-8", "Pathologies, antécédents, allergies et facteurs de risque"),
    (("1.3.6.1.4.1.19376.1.5.3.1.3.27", "1.2.250.1.213.1.1.2.150"), "30954-2", "Points de vigilance"),
    (("1.2.250.1.213.1.1.2.32",), "18776-5", "Traitement au long cours"),
)
LDL_SES_SECTIONS: Sections = (
    (("1.2.250.1.213.1.1.2.35", "1.2.250.1.213.1.1.2.35.1"), "33557-0", "Statut du document"),
    (("1.3.6.1.4.1.19376.1.5.3.1.3.1", "1.2.250.1.213.1.1.2.127"), "42349-1", "Motif de l'hospitalisation"),
    (("1.3.6.1.4.1.19376.1.7.3.1.1.13.7", "1.2.250.1.213.1.1.2.163"), "42545-4", "Synthèse médicale du séjour"),
    (("1.3.6.1.4.1.19376.1.5.3.1.3.22", "1.2.250.1.213.1.1.2.146"), "10183-2", "Traitements à la sortie"),
)
VOLET_HEADERS = {
    "VSM": ("1.2.250.1.213.1.1.1.13", ("SYNTH", "1.2.250.1.213.1.1.4.12", "Synthèse"), VSM_SECTIONS),
    "LDL-SES": (
        "1.2.250.1.213.1.1.1.29",
        ("11490-0", LOINC, "Lettre de liaison à la sortie d'un établissement de soins"),
        LDL_SES_SECTIONS,
    ),
}


def minimal_pdf() -> bytes:
    """A one-page PDF 1.4, enough for a reader to open and for the %PDF- signature check."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def structured_document(volet: str = "VSM") -> bytes:
    """A valid N3 document of ``volet`` (VSM or LDL-SES) with its required sections."""
    template, code, sections = VOLET_HEADERS[volet]
    body = E.structuredBody(*(_section(templates, loinc, title) for templates, loinc, title in sections))
    return _document((template,), code, body)


def n1_document(pdf: bytes | None = None) -> bytes:
    """A valid N1 document (IHE XDS-SD): a lettre de liaison as a base64 PDF."""
    text = E.text(base64.b64encode(pdf or minimal_pdf()).decode(), mediaType="application/pdf", representation="B64")
    code = ("11490-0", LOINC, "Lettre de liaison à la sortie d'un établissement de soins")
    return _document(("1.3.6.1.4.1.19376.1.2.20",), code, E.nonXMLBody(text))


def _section(templates: tuple[str, ...], code: str, title: str) -> etree._Element:
    return E.component(
        E.section(
            *(E.templateId(root=root) for root in templates),
            E.id(root=LPS_OID, extension=f"section-{code}"),
            E.code(code=code, codeSystem=LOINC, displayName=title),
            E.title(title),
            E.text("Texte de la section, rédigé pour les tests."),
        )
    )


def _person(given: str, family: str) -> etree._Element:
    return E.assignedPerson(E.name(E.given(given), E.family(family)))


def _document(templates: Iterable[str], code: tuple[str, str, str], body: etree._Element) -> bytes:
    code_value, system, display = code
    document = E.ClinicalDocument(
        E.realmCode(code="FR"),
        E.typeId(root="2.16.840.1.113883.1.3", extension="POCD_HD000040"),
        E.templateId(root="2.16.840.1.113883.2.8.2.1"),
        E.templateId(root="1.2.250.1.213.1.1.1.1"),
        *(E.templateId(root=root) for root in templates),
        E.id(root=LPS_OID, extension="doc-0001"),
        E.code(code=code_value, codeSystem=system, displayName=display),
        E.title(display),
        E.effectiveTime(value="20240115103000+0100"),
        E.confidentialityCode(code="N", codeSystem="2.16.840.1.113883.5.25", displayName="Normal"),
        E.languageCode(code="fr-FR"),
        E.setId(root=LPS_OID, extension="set-0001"),
        E.versionNumber(value="1"),
        E.recordTarget(
            E.patientRole(
                E.id(root=OID_INS_NIR_TEST, extension=INS),
                E.id(root="1.2.250.1.999.1", extension="IPP-42"),
                E.patient(
                    E.name(
                        E.given("PIERRE JEAN"),
                        E.given("PIERRE", qualifier="BR"),
                        E.family("TESTUN", qualifier="BR"),
                    ),
                    E.administrativeGenderCode(code="M", codeSystem="2.16.840.1.113883.5.1", displayName="Masculin"),
                    E.birthTime(value="19841201"),
                    E.birthplace(E.place(E.addr(E.county("75115"), E.city("PARIS")))),
                ),
            )
        ),
        E.author(
            E.time(value="20240115102500+0100"),
            E.assignedAuthor(
                E.id(root="1.2.250.1.71.4.2.1", extension=IDNPS),
                E.code(
                    code="G15_10/SM54",
                    codeSystem="1.2.250.1.213.1.1.4.5",
                    displayName="Médecin - Médecine générale (SM)",
                ),
                _person("Alice", "MEDECIN-TEST"),
                E.representedOrganization(E.id(root="1.2.250.1.71.4.2.2", extension=STRUCTURE), E.name("Cabinet")),
            ),
        ),
        E.custodian(
            E.assignedCustodian(
                E.representedCustodianOrganization(
                    E.id(root="1.2.250.1.71.4.2.2", extension=STRUCTURE), E.name("Cabinet de test")
                )
            )
        ),
        E.legalAuthenticator(
            E.time(value="20240115103000+0100"),
            E.signatureCode(code="S"),
            E.assignedEntity(E.id(root="1.2.250.1.71.4.2.1", extension=IDNPS), _person("Alice", "MEDECIN-TEST")),
        ),
        E.documentationOf(
            E.serviceEvent(
                E.effectiveTime(E.low(value="20240110090000+0100"), E.high(value="20240115100000+0100")),
                E.performer(E.assignedEntity(E.id(root="1.2.250.1.71.4.2.1", extension=IDNPS)), typeCode="PRF"),
            )
        ),
        E.componentOf(
            E.encompassingEncounter(
                E.effectiveTime(E.low(value="20240110090000+0100")),
                E.location(
                    E.healthCareFacility(
                        E.code(code="SA07", codeSystem="1.2.250.1.71.4.2.4", displayName="Cabinet individuel")
                    )
                ),
            )
        ),
        E.component(body),
    )
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


Mutation = Callable[[bytes], bytes]


def _mutation(path: str, change: Callable[[etree._Element], None]) -> Mutation:
    """Apply ``change`` to every element ``path`` (relative to ClinicalDocument) selects."""

    def mutate(data: bytes) -> bytes:
        root = etree.fromstring(data)
        targets = root.xpath(path, namespaces=NS)
        assert targets, f"mutation path {path!r} selects nothing"
        for target in targets:
            change(target)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    return mutate


def remove(path: str) -> Mutation:
    return _mutation(path, lambda element: element.getparent().remove(element))


def set_attribute(path: str, name: str, value: str) -> Mutation:
    return _mutation(path, lambda element: element.set(name, value))


def drop_attribute(path: str, name: str) -> Mutation:
    return _mutation(path, lambda element: element.attrib.pop(name))


def set_text(path: str, text: str) -> Mutation:
    def change(element: etree._Element) -> None:
        element.text = text

    return _mutation(path, change)


def append(path: str, child: str) -> Mutation:
    """Append ``child`` (XML text, CDA namespace by default) to each selected element."""
    return _mutation(path, lambda element: element.append(etree.fromstring(f'<{child} xmlns="{HL7}"/>')))


def insert_after(path: str, child: str) -> Mutation:
    return _mutation(path, lambda element: element.addnext(etree.fromstring(f'<{child} xmlns="{HL7}"/>')))


def move_after(path: str, anchor: str) -> Mutation:
    """Move the element ``path`` selects right after the one ``anchor`` selects."""

    def change(element: etree._Element) -> None:
        element.getroottree().getroot().xpath(anchor, namespaces=NS)[0].addnext(element)

    return _mutation(path, change)


def clear(path: str) -> Mutation:
    """Remove the element's attributes and children, keeping the element."""

    def change(element: etree._Element) -> None:
        element.attrib.clear()
        del element[:]

    return _mutation(path, change)


def chain(*mutations: Mutation) -> Mutation:
    def mutate(data: bytes) -> bytes:
        for mutation in mutations:
            data = mutation(data)
        return data

    return mutate
