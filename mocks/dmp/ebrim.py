"""Reading and writing the ebRIM 3.0 objects of XDS.b (the registry's vocabulary), without judging them.

The metadata *checks* and the IHE scheme UUIDs live in ``segur.xds``; this module only gives the
mock's behaviour what it needs to file a submission and answer queries: ids, codes, slots, associations.
"""

from __future__ import annotations

from lxml import etree

from segur.xds.ebrim import SUBMISSION_SET_NODE

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
NSMAP = {"rim": RIM, "rs": RS, "lcm": LCM, "query": QUERY, "xdsb": XDSB}

UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
SEVERITY = {
    "error": "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error",
    "warning": "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning",
}


def q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def slot_values(element: etree._Element, name: str) -> list[str]:
    return [
        value.text or ""
        for slot in element.findall(q(RIM, "Slot"))
        if slot.get("name") == name
        for value in slot.iterfind(f"{q(RIM, 'ValueList')}/{q(RIM, 'Value')}")
    ]


def external_id(element: etree._Element, scheme: str) -> str:
    for identifier in element.findall(q(RIM, "ExternalIdentifier")):
        if identifier.get("identificationScheme") == scheme:
            return identifier.get("value", "")
    return ""


def codes(element: etree._Element, scheme: str) -> list[str]:
    return [
        node.get("nodeRepresentation", "")
        for node in element.findall(q(RIM, "Classification"))
        if node.get("classificationScheme") == scheme
    ]


def author_ids(element: etree._Element, scheme: str) -> list[str]:
    """IDNPS of each authorPerson (XCN first component) of the author classifications."""
    return [
        person.split("^", 1)[0]
        for node in element.findall(q(RIM, "Classification"))
        if node.get("classificationScheme") == scheme
        for person in slot_values(node, "authorPerson")
    ]


def submission_set_ids(object_list: etree._Element) -> set[str]:
    """Ids of the RegistryPackages classified as submission sets (inside the package or beside it)."""
    return {
        node.get("classifiedObject") or (node.getparent().get("id") if node.getparent() is not None else "")
        for node in object_list.iter(q(RIM, "Classification"))
        if node.get("classificationNode") == SUBMISSION_SET_NODE
    }


def ins_of(cx: str) -> tuple[str, str]:
    """``INS^^^&OID&ISO`` -> (INS, OID); empty strings when the CX has no assigning authority."""
    identifier, _, rest = cx.partition("^^^")
    parts = rest.split("&")
    return identifier, (parts[1] if len(parts) >= 3 else "")


def registry_response(errors: list[tuple[str, str, str, str]], *, partial: bool = False) -> etree._Element:
    """An ``rs:RegistryResponse``; ``errors`` are (errorCode, codeContext, location, severity)."""
    failing = any(severity == "error" for _, _, _, severity in errors)
    status = (PARTIAL_SUCCESS if partial else FAILURE) if failing else SUCCESS
    response = etree.Element(q(RS, "RegistryResponse"), nsmap={"rs": RS}, status=status)
    if errors:
        error_list = etree.SubElement(response, q(RS, "RegistryErrorList"))
        for code, context, location, severity in errors:
            error = etree.SubElement(error_list, q(RS, "RegistryError"))
            error.set("errorCode", code)
            error.set("codeContext", context)
            error.set("location", location)
            error.set("severity", SEVERITY.get(severity, SEVERITY["error"]))
    return response
