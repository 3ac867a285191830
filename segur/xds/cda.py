"""The CDA header fields the DMP's XDS metadata must repeat (CI-SIS PDSm, "Mapping XDS" table).

typeCode = code, creationTime = effectiveTime, confidentialityCode = confidentialityCode,
healthcareFacilityTypeCode = componentOf/encompassingEncounter/location/healthCareFacility/code,
practiceSettingCode = documentationOf/serviceEvent/performer/assignedEntity/representedOrganization/
standardIndustryClassCode, serviceStart/StopTime = documentationOf/serviceEvent/effectiveTime/low|high,
patientId = recordTarget/patientRole/id (INS), title, languageCode, uniqueId = id (root, or
root^extension when the id has one). XPaths are compiled once: this runs on every DMP submission.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from segur.xds.ebrim import NS

HL7 = "{urn:hl7-org:v3}"
_NS = {"h": NS["hl7"]}


def _xpath(path: str) -> etree.XPath:
    return etree.XPath(path, namespaces=_NS)


_ID = _xpath("h:id")
_CODE = _xpath("h:code")
_TITLE = _xpath("string(h:title)")
_EFFECTIVE_TIME = _xpath("string(h:effectiveTime/@value)")
_CONFIDENTIALITY = _xpath("h:confidentialityCode")
_LANGUAGE = _xpath("string(h:languageCode/@code)")
_PATIENT_IDS = _xpath("h:recordTarget/h:patientRole/h:id")
_FACILITY = _xpath("h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code")
_SERVICE_EVENT = _xpath("h:documentationOf/h:serviceEvent[h:effectiveTime][1]")
_PRACTICE = _xpath(
    "h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity/h:representedOrganization/h:standardIndustryClassCode"
)
_LOW = _xpath("string(h:effectiveTime/h:low/@value)")
_HIGH = _xpath("string(h:effectiveTime/h:high/@value)")


@dataclass(frozen=True)
class Coded:
    code: str
    code_system: str


@dataclass(frozen=True)
class CdaHeader:
    unique_id: str
    type: Coded | None
    title: str
    effective_time: str
    confidentiality: Coded | None
    language: str
    patient_ids: tuple[tuple[str, str], ...]
    facility: Coded | None
    practice: Coded | None
    service_start: str
    service_stop: str


def _coded(elements: list[etree._Element]) -> Coded | None:
    if not elements:
        return None
    return Coded(elements[0].get("code", ""), elements[0].get("codeSystem", ""))


def read_header(root: etree._Element) -> CdaHeader | None:
    """The header of a ClinicalDocument, or None when the XML is not a CDA document."""
    if root.tag != f"{HL7}ClinicalDocument":
        return None
    ids = _ID(root)
    root_oid, extension = (ids[0].get("root", ""), ids[0].get("extension")) if ids else ("", None)
    service_events = _SERVICE_EVENT(root)
    event = service_events[0] if service_events else None
    return CdaHeader(
        unique_id=f"{root_oid}^{extension}" if extension else root_oid,
        type=_coded(_CODE(root)),
        title=" ".join(_TITLE(root).split()),
        effective_time=_EFFECTIVE_TIME(root),
        confidentiality=_coded(_CONFIDENTIALITY(root)),
        language=_LANGUAGE(root),
        patient_ids=tuple((pid.get("root", ""), pid.get("extension", "")) for pid in _PATIENT_IDS(root)),
        facility=_coded(_FACILITY(root)),
        practice=_coded(_PRACTICE(root)),
        service_start=_LOW(event) if event is not None else "",
        service_stop=_HIGH(event) if event is not None else "",
    )
