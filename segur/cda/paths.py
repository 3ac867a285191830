"""Namespaces, compiled XPaths and finding locations shared by the CDA layers.

A finding's location is an XPath a user can paste into an editor or evaluate with
``NAMESPACES``: CDA elements are written ``hl7:name`` (the prefix the ANS Schematrons use) and
get a position only when siblings share the name, e.g.
``/hl7:ClinicalDocument/hl7:recordTarget/hl7:patientRole/hl7:id[2]``.
"""

from __future__ import annotations

from lxml import etree

from segur.validation import Finding, Severity

HL7 = "urn:hl7-org:v3"
XSL = "http://www.w3.org/1999/XSL/Transform"
CISIS_DATA = "urn:asip-sante:ci-sis"
NAMESPACES = {
    "hl7": HL7,
    "xsl": XSL,
    "data": CISIS_DATA,
    "sdtc": "urn:hl7-org:sdtc",
    "pharm": "urn:ihe:pharm:medication",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}
# Locations from other engines use other prefixes for the same namespaces (the Schematron engine: cda).
NAMESPACES["cda"] = HL7


def hl7(local_name: str) -> str:
    """Clark name of a CDA element, for lxml's tag-filtered iteration (faster than XPath)."""
    return f"{{{HL7}}}{local_name}"


def xpath(expression: str) -> etree.XPath:
    """Compile once at import: the DMP mock validates on every submission."""
    return etree.XPath(expression, namespaces=NAMESPACES)


def location_of(element: etree._Element) -> str:
    """The XPath of ``element`` from the document root, in the form described above."""
    steps = []
    node: etree._Element | None = element
    while node is not None:
        steps.append(_step(node))
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


def _step(node: etree._Element) -> str:
    qname = etree.QName(node)
    prefix = _PREFIXES.get(qname.namespace or "")
    if qname.namespace is None:
        name = qname.localname
    elif prefix is not None:
        name = f"{prefix}:{qname.localname}"
    else:
        name = f"*[local-name()='{qname.localname}']"
    parent = node.getparent()
    if parent is None:
        return name
    same = list(parent.iterchildren(node.tag))
    return f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name


def clinical_document(root: etree._Element) -> etree._Element | None:
    """The ClinicalDocument to validate: the root, or the one an auto-presentable document embeds.

    An ANS « auto-présentable » document is an XSLT stylesheet carrying its CDA in a top-level
    ``data:Contenu`` element (namespace urn:asip-sante:ci-sis), as the CI-SIS examples show.
    """
    if root.tag == f"{{{HL7}}}ClinicalDocument":
        return root
    if root.tag == f"{{{XSL}}}stylesheet":
        return root.find(f"{{{CISIS_DATA}}}Contenu/{{{HL7}}}ClinicalDocument")
    return None


def finding_at(element: etree._Element, rule: str, severity: Severity, message: str) -> Finding:
    return Finding(rule, severity, message, location_of(element))


def line_of(root: etree._Element, location: str) -> int | None:
    """Source line of the element a finding points at, for editors and the text report."""
    if not location.startswith("/"):
        return None
    try:
        found = root.xpath(location, namespaces=NAMESPACES)
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0].sourceline
    return None
