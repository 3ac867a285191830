"""Messages the harness sends to the SUT as a colleague would: a document about a patient, in an IHE_XDM.ZIP.

A receiving scenario needs mail the SUT did not write. The harness composes it itself (stdlib
``email`` for MIME, ``zipfile``, lxml for the metadata) rather than borrowing the reference SUT's
message builder: the reference SUT is the product under test, not a tool of the judge.
The subject can be made to name another patient than the archive, which is how SC.MSS/CONF.24
(the patient comes from METADATA.XML) is exercised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from lxml import etree

from segur.ins import OID_INS_NIR_TEST
from segur.reference_sut.cda import CdaAuthor, CdaId, CdaOrganisation, CdaPatient, CdaRequest, produce_cda
from segur.xds import ebrim

PARIS = dt.timezone(dt.timedelta(hours=1))
HL7 = "urn:hl7-org:v3"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
DOCUMENT_ENTRY_TYPE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBSET = "SUBSET01"
# The smallest PDF readers accept: the rendering sent beside the archive (SC.MSS/CONF.23).
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass(frozen=True)
class Patient:
    """The patient the archive is about (INS with its key, birth names, birth date)."""

    ins: str
    family: str
    given: str
    birth_date: dt.date
    gender: str = "F"
    birthplace_cog: str = "63220"
    oid: str = OID_INS_NIR_TEST


def incoming_message(sender: str, recipient: str, patient: Patient, *, subject_patient: Patient | None = None) -> bytes:
    """A colleague's message with one CDA about ``patient``; ``subject_patient`` puts another name in the subject."""
    named = subject_patient or patient
    document = _cda(patient)
    code = etree.fromstring(document).find(f"{{{HL7}}}code")
    label = code.get("displayName", "")[:40]
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = f"XDM/1.0/DDM+{label} {named.family} {named.given} {named.birth_date:%d/%m/%Y}"
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["X-MSS-NIL"] = "SEGURHARNESS"
    message["X-MSS-CODECDA"] = code.get("code", "")
    message["X-MSS-INS"] = "O"
    message.set_content("Bonjour,\n\nveuillez trouver ci-joint le compte rendu.\n", charset="utf-8")
    message.add_attachment(
        xdm_archive(document, patient), maintype="application", subtype="zip", filename="IHE_XDM.ZIP"
    )
    name = f"{dt.date.today():%Y%m%d}_CR_{patient.family}_{patient.given}.pdf"
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename=name)
    return bytes(message)


def xdm_archive(document: bytes, patient: Patient) -> bytes:
    """README.TXT, INDEX.HTM and IHE_XDM/SUBSET01 with METADATA.XML and the document (IHE ITI-32)."""
    files = {
        "README.TXT": b"Archive IHE XDM composee par le harnais Segur (donnees de test).\r\n",
        "INDEX.HTM": b'<html><body><a href="IHE_XDM/SUBSET01/DOC0001.XML">document</a></body></html>\r\n',
        f"IHE_XDM/{SUBSET}/METADATA.XML": _metadata(document, patient),
        f"IHE_XDM/{SUBSET}/DOC0001.XML": document,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _metadata(document: bytes, patient: Patient) -> bytes:
    cx = f"{patient.ins}^^^&{patient.oid}&ISO^NH"
    entry_id, package_id = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = etree.SubElement(request, f"{{{RIM}}}RegistryObjectList")
    entry = etree.SubElement(
        objects, f"{{{RIM}}}ExtrinsicObject", id=entry_id, mimeType="text/xml", objectType=DOCUMENT_ENTRY_TYPE
    )
    for name, value in (
        ("URI", "DOC0001.XML"),
        ("hash", hashlib.sha1(document).hexdigest()),
        ("size", str(len(document))),
    ):
        slot = etree.SubElement(entry, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    _external_id(entry, entry_id, ebrim.DE_PATIENT_ID, cx)
    package = etree.SubElement(objects, f"{{{RIM}}}RegistryPackage", id=package_id)
    _external_id(package, package_id, ebrim.SS_PATIENT_ID, cx)
    return etree.tostring(request, xml_declaration=True, encoding="UTF-8")


def _external_id(parent: etree._Element, owner: str, scheme: str, value: str) -> None:
    etree.SubElement(
        parent,
        f"{{{RIM}}}ExternalIdentifier",
        id=f"urn:uuid:{uuid.uuid4()}",
        registryObject=owner,
        identificationScheme=scheme,
        value=value,
    )


def _cda(patient: Patient) -> bytes:
    """An N1 CDA (structuration minimale, the PDF embedded) by a hospital colleague about ``patient``.

    Stimuli, not judgement: the harness borrows the reference SUT's CDA producer to write a
    document a real DPI would send; nothing the harness judges goes through it.
    """
    stamp = uuid.uuid4().int % 10**12
    request = CdaRequest(
        kind="LDL-SES",
        level="N1",
        patient=CdaPatient(
            ins=patient.ins,
            birth_family_name=patient.family,
            given_names=(patient.given,),
            birth_date=patient.birth_date,
            gender=patient.gender,
            birthplace_cog=patient.birthplace_cog,
            local_id=f"IPP{stamp}",
            local_id_oid="1.2.250.1.999.9.1",
        ),
        author=CdaAuthor(
            rpps="99910000027", family_name="MEDECIN-TEST", given_name="HOSPITALIER", specialty_code="SM04"
        ),
        organisation=CdaOrganisation(
            id="1990000001",
            name="CENTRE HOSPITALIER DE TEST SEGUR",
            facility_type_code="SA01",
            practice_setting_code="ETABLISSEMENT",
        ),
        effective_time=dt.datetime.now(PARIS).replace(microsecond=0),
        service_start=dt.datetime.now(PARIS).replace(microsecond=0) - dt.timedelta(days=2),
        service_stop=dt.datetime.now(PARIS).replace(microsecond=0),
        document_id=CdaId(f"1.2.250.1.999.9.2.{stamp}"),
        set_id=CdaId(f"1.2.250.1.999.9.3.{stamp}"),
        text=("Compte rendu de test composé par le harnais.",),
    )
    return produce_cda(request)
