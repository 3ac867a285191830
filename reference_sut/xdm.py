"""The reference SUT's IHE_XDM.ZIP: one CDA document on "media" as IHE ITI-32 lays it out, for an MSSanté message.

Layout (IHE ITI TF-2 §3.32.4.1, "Distribute Document Set on Media"): README.TXT and INDEX.HTM at
the root, then IHE_XDM/SUBSET01/ with METADATA.XML (an ebRIM ``lcm:SubmitObjectsRequest``) and
the document it describes. The DocumentEntry is the one the DMP submission would carry (same
typeCode, classCode, formatCode, patientId CX with the INS and its OID, sourcePatientInfo, hash
SHA-1 and size), built by reference_sut/xds_metadata.py, plus the ``URI`` slot media need. The
DMP's source-signature entry is left out: an XDM archive for a mail recipient does not need it.
Written independently of the harness's reader (segur.mss), which must not share our bugs.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

from lxml import etree

from segur.reference_sut.xds_metadata import Author, DocumentToSubmit, Institution, build_submission
from segur.validation import parse_untrusted
from segur.xds import ebrim
from segur.xds.metadata import InsOids

SUBSET = "IHE_XDM/SUBSET01"
DOCUMENT_NAME = "DOC0001.XML"
_RIM = ebrim.NS["rim"]
_LCM = ebrim.NS["lcm"]
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed entry dates: the same document gives the same archive


def document_metadata(
    cda: bytes,
    *,
    format_code: str,
    author: Author,
    institution: Institution,
    source_id: str,
    keys: dict[str, bytes],
    oids: InsOids,
) -> etree._Element:
    """METADATA.XML for ``cda``: the DMP submission's SubmitObjectsRequest without its signature entry."""
    submission = build_submission(
        [DocumentToSubmit(cda, format_code)],
        author=author,
        institution=institution,
        source_id=source_id,
        signing_key_pem=keys["key"],
        signing_cert_pem=keys["cert"],
        oids=oids,
    )
    request = submission.request.find(f"{{{_LCM}}}SubmitObjectsRequest")
    assert request is not None
    registry = request.find(f"{{{_RIM}}}RegistryObjectList")
    unique_id = parse_cda_id(cda)
    kept = submission.entry_uuids[unique_id]
    signature = {uuid for uuid in submission.entry_uuids.values() if uuid != kept}
    for element in list(registry):
        refers = {element.get("id"), element.get("targetObject"), element.get("classifiedObject")}
        if refers & signature:
            registry.remove(element)
    entry = registry.find(f"{{{_RIM}}}ExtrinsicObject")
    assert entry is not None
    slot = etree.Element(f"{{{_RIM}}}Slot", name="URI")
    etree.SubElement(etree.SubElement(slot, f"{{{_RIM}}}ValueList"), f"{{{_RIM}}}Value").text = DOCUMENT_NAME
    entry.insert(0, slot)
    return _detached(request)


def parse_cda_id(cda: bytes) -> str:
    """The XDS uniqueId of a CDA (root, or root^extension), as xds_metadata writes it."""
    found = parse_untrusted(cda).find("{urn:hl7-org:v3}id")
    assert found is not None
    extension = found.get("extension")
    return found.get("root", "") + (f"^{extension}" if extension else "")


def _detached(element: etree._Element) -> etree._Element:
    """A copy without the SOAP-side parent, with the namespaces declared on itself."""
    return etree.fromstring(etree.tostring(element))


def build_xdm(
    cda: bytes, metadata: etree._Element, *, title: str, tamper: Callable[[etree._Element], None] | None = None
) -> bytes:
    """The zip archive; ``tamper`` lets a defect change METADATA.XML after the real values were computed."""
    if tamper is not None:
        tamper(metadata)
    files = {
        "README.TXT": _readme(title).encode("utf-8"),
        "INDEX.HTM": _index(title).encode("utf-8"),
        f"{SUBSET}/METADATA.XML": etree.tostring(metadata, xml_declaration=True, encoding="UTF-8"),
        f"{SUBSET}/{DOCUMENT_NAME}": cda,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _readme(title: str) -> str:
    return (
        "Logiciel de reference Segur (SEGUR REFERENCE)\r\n"
        "Archive IHE XDM (IHE ITI-32) jointe a un message MSSante.\r\n"
        f"Contenu : {title}\r\n"
        f"Document : {SUBSET}/{DOCUMENT_NAME} (CDA R2), metadonnees : {SUBSET}/METADATA.XML\r\n"
    )


def _index(title: str) -> str:
    return (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>IHE XDM</title></head><body>'
        f'<h1>Archive IHE XDM</h1><p><a href="{SUBSET}/{DOCUMENT_NAME}">{_escape(title)}</a></p>'
        '<p><a href="README.TXT">README.TXT</a></p></body></html>'
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
