"""What every validator of the harness returns (CDA, Schematron, VIHF, XDS metadata), and how it reads XML.

One finding shape for all artefacts lets the mocks journal them, the report show them and
`segur validate` print them the same way: a rule id a contributor can grep, a severity, an
XPath location and a message in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lxml import etree

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One problem found in an artefact.

    ``rule`` names the check (``CDA-HDR-010``, ``VIHF-SIGNATURE``, a Schematron assert id…);
    ``location`` is an XPath into the artefact when the problem has a place; ``requirement``
    is the exigence the finding proves unmet, when the check is tied to one.
    """

    rule: str
    severity: Severity
    message: str
    location: str = ""
    requirement: str = ""

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value != ""}


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


class UnsafeXml(ValueError):
    """XML refused before parsing: DOCTYPE or entity declarations (entity expansion, XXE)."""


class MalformedXml(ValueError):
    """XML that is not well-formed."""


_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


def parse_untrusted(data: bytes) -> etree._Element:
    """Parse XML from outside the harness: no DTD, no entities, no network; any DOCTYPE is refused.

    Refusing every DOCTYPE (rather than parsing it harmlessly) is what the national services do,
    and it makes "billion laughs" and XXE fail fast with one clear reason.
    """
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise UnsafeXml("DOCTYPE and entity declarations are not accepted")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise MalformedXml(f"malformed XML: {error.msg}") from None
    if root.getroottree().docinfo.doctype:
        raise UnsafeXml("DOCTYPE and entity declarations are not accepted")
    return root
