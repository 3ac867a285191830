"""CDA R2 validation: a certification reviewer, a vendor or the DMP mock runs it on a document.

Three layers, each returning ``segur.validation.Finding`` with a rule id and an XPath:
(a) the user's CDA schema when given, else the project's own structural checks of the header;
(b) the project's rules for the ANS structuration minimale, N1 bodies and the N3 volets the
couloirs produce; (c) extra layers the caller passes in, such as the official Schematrons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lxml import etree

from segur.cda.minimale import structuration_minimale_findings
from segur.cda.paths import NAMESPACES, clinical_document, line_of, location_of
from segur.cda.structure import header_findings, schema_findings
from segur.cda.valuesets import value_set_layer
from segur.cda.volets import VOLETS, volet_findings
from segur.validation import Finding, MalformedXml, UnsafeXml, parse_untrusted

CdaLayer = Callable[[bytes, etree._Element], list[Finding]]
"""An extra layer: gets the document bytes and the parsed root, returns its findings."""
CdaChecks = tuple[etree.XMLSchema, Sequence[CdaLayer]]
"""What a CI-SIS package adds: its schema as layer (a), and extra layers (``segur.cisis.package_checks``)."""


def validate_cda(
    data: bytes,
    *,
    schema: etree.XMLSchema | None = None,
    extra_layers: Sequence[CdaLayer] = (),
    root: etree._Element | None = None,
) -> list[Finding]:
    """Every finding of every layer on one CDA document; unsafe or malformed XML is one finding.

    ``root`` is ``data`` already parsed with ``parse_untrusted``, when the caller has it (the DMP
    mock reads each document once for its XDS and CDA checks); the layers only read it.
    """
    if root is None:
        try:
            root = parse_untrusted(data)
        except UnsafeXml as error:
            return [Finding("CDA-XML-001", "error", str(error))]
        except MalformedXml as error:
            return [Finding("CDA-XML-002", "error", str(error))]
    document = clinical_document(root)
    if document is None:
        message = f"the root element must be ClinicalDocument in urn:hl7-org:v3, found {root.tag}"
        return [Finding("CDA-XML-003", "error", message, location_of(root))]
    findings = schema_findings(root, schema) if schema is not None else header_findings(document)
    findings += structuration_minimale_findings(document)
    findings += volet_findings(document)
    for layer in extra_layers:
        findings += layer(data, root)
    return findings


__all__ = ["NAMESPACES", "VOLETS", "CdaChecks", "CdaLayer", "line_of", "validate_cda", "value_set_layer"]
