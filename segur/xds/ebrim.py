"""Names of the IHE XDS.b metadata model (ebRIM 3.0) the validator looks for.

Source: IHE ITI TF-3 §4.2 (Final Text) for scheme UUIDs, slot names and association types;
ITI TF-3 §5.5 (DSG) for the signature codes. A classification whose scheme is not listed here is
a typo as far as a registry is concerned: the registry silently ignores it and then reports the
real metadata as missing, which is why the validator names unknown schemes explicitly.
"""

from __future__ import annotations

NS = {
    "xdsb": "urn:ihe:iti:xds-b:2007",
    "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0",
    "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xades": "http://uri.etsi.org/01903/v1.3.2#",
    "hl7": "urn:hl7-org:v3",
}
RIM = f"{{{NS['rim']}}}"
XDSB = f"{{{NS['xdsb']}}}"
LCM = f"{{{NS['lcm']}}}"

STABLE_DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND_DOCUMENT_ENTRY = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
CLASSIFICATION_TYPE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"

# XDSDocumentEntry classifications and external identifiers.
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY_TYPE_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

# XDSSubmissionSet classifications and external identifiers.
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

DE_CLASSIFICATIONS = {
    DE_AUTHOR: "author",
    DE_CLASS_CODE: "classCode",
    DE_CONFIDENTIALITY_CODE: "confidentialityCode",
    DE_EVENT_CODE: "eventCodeList",
    DE_FORMAT_CODE: "formatCode",
    DE_FACILITY_TYPE_CODE: "healthcareFacilityTypeCode",
    DE_PRACTICE_SETTING_CODE: "practiceSettingCode",
    DE_TYPE_CODE: "typeCode",
}
DE_IDENTIFIERS = {DE_PATIENT_ID: "XDSDocumentEntry.patientId", DE_UNIQUE_ID: "XDSDocumentEntry.uniqueId"}
SS_CLASSIFICATIONS = {SS_AUTHOR: "author", SS_CONTENT_TYPE_CODE: "contentTypeCode"}
SS_IDENTIFIERS = {
    SS_PATIENT_ID: "XDSSubmissionSet.patientId",
    SS_SOURCE_ID: "XDSSubmissionSet.sourceId",
    SS_UNIQUE_ID: "XDSSubmissionSet.uniqueId",
}

HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
DOCUMENT_RELATIONSHIPS = frozenset(
    {
        RPLC,
        "urn:ihe:iti:2007:AssociationType:APND",
        "urn:ihe:iti:2007:AssociationType:XFRM",
        "urn:ihe:iti:2007:AssociationType:XFRM_RPLC",
        "urn:ihe:iti:2007:AssociationType:signs",
    }
)

# Submission-set signature (DSG "SubmissionSet Signature", codes as the DMP takes them from J07/J57/J60).
SIGNATURE_TYPE = ("E1762", "ASTM")
SIGNATURE_CLASS = ("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN")
SIGNATURE_FORMATS = frozenset(
    {("http://www.w3.org/2000/09/xmldsig#", "URN"), ("urn:ihe:iti:dsg:detached:2014", "1.3.6.1.4.1.19376.1.2.3")}
)

CONFIDENTIALITY_HL7 = "2.16.840.1.113883.5.25"
OID_PS_NATIONAL_ID = "1.2.250.1.71.4.2.1"
OID_STRUCTURE_ID = "1.2.250.1.71.4.2.2"
