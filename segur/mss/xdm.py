"""The IHE XDM archive (IHE_XDM.ZIP) an MSSanté message carries: safe reading and conformance findings.

Researched (IHE ITI TF-2 §3.32 "Distribute Document Set on Media [ITI-32]",
https://profiles.ihe.net/ITI/TF/Volume2/ITI-32.html, and ITI TF-3 §4 metadata):

* the media root holds README.TXT, INDEX.HTM and the IHE_XDM directory; IHE_XDM holds one
  directory per submission set (the name is the creator's choice: SUBSET01 is only the usual
  example, so subsets are found by listing), each with a METADATA.XML whose root is an ebRIM
  ``lcm:SubmitObjectsRequest``;
* every DocumentEntry carries the ``URI`` slot (path of the document relative to the METADATA.XML
  directory) and, on media, ``hash`` (SHA-1, hex) and ``size`` (bytes) of the file;
* the ANS puts the INS in patientId (CX.1 matricule + key, CX.4 ``&<INS OID>&ISO``), as for the DMP
  (CI-SIS "Volet Partage de Documents de Santé"); a receiving LPS attaches the documents to the
  patient that patientId names (Ségur SC.MSS/CONF.24).

Modelled (no public rule): the zip-safety limits (100 MB uncompressed, ratio 100, 1000 entries),
refusal of nested archives and encrypted entries, README/INDEX matched case-insensitively (FAT
media are case-insensitive), and which requirement id each finding cites: ``SC.MSS/CONF.23`` (one
patient per message, Référentiel socle MSSanté #2 ECO.2.1.1) for patient consistency,
``MSS/PROV.01`` for the layout, which no Ségur requirement names on its own.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass

from lxml import etree

from segur.cda import CdaChecks, validate_cda
from segur.ins import OID_INS_NIA, OID_INS_NIA_TEST, OID_INS_NIR, OID_INS_NIR_TEST
from segur.validation import Finding, MalformedXml, UnsafeXml, parse_untrusted
from segur.xds import InsOids, ebrim
from segur.xds.datatypes import ins_problem, parse_cx

LAYOUT = "MSS/PROV.01"
ONE_PATIENT = "SC.MSS/CONF.23"
MAX_UNCOMPRESSED = 100 * 1024 * 1024
MAX_RATIO = 100
MAX_ENTRIES = 1000
_ALL_INS_OIDS = frozenset({OID_INS_NIR, OID_INS_NIA, OID_INS_NIR_TEST, OID_INS_NIA_TEST})
_ZIP_MAGIC = b"PK\x03\x04"
_DRIVE = re.compile(r"^[A-Za-z]:")
_HL7 = {"h": "urn:hl7-org:v3"}
_CDA_CODE = etree.XPath("h:code", namespaces=_HL7)
_CDA_INS = etree.XPath("h:recordTarget/h:patientRole/h:id", namespaces=_HL7)
_CDA_PATIENT = etree.XPath("h:recordTarget/h:patientRole/h:patient", namespaces=_HL7)
_FAMILY = etree.XPath("h:name/h:family[@qualifier='BR'] | h:name/h:family", namespaces=_HL7)
_GIVEN = etree.XPath("string(h:name/h:given[1])", namespaces=_HL7)
_BIRTH = etree.XPath("string(h:birthTime/@value)", namespaces=_HL7)


class XdmError(ValueError):
    """An archive refused before any conformance check: not a zip, or unsafe to open."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule

    def finding(self) -> Finding:
        return Finding(self.rule, "error", str(self), "", LAYOUT)


@dataclass(frozen=True)
class XdmEntry:
    """One DocumentEntry of a METADATA.XML, with the zip path its URI slot resolves to."""

    entry_id: str
    uri: str
    path: str
    mime_type: str
    hash: str
    size: str
    patient_id: str
    location: str


@dataclass(frozen=True)
class XdmSubset:
    """A submission set directory (``IHE_XDM/<name>/``); ``error`` says why METADATA.XML was not read."""

    name: str
    metadata: etree._Element | None
    error: str = ""
    patient_id: str = ""
    entries: tuple[XdmEntry, ...] = ()


@dataclass(frozen=True)
class XdmCda:
    """What the MSSanté checks need from a CDA of the archive (headers X-MSS-*, subject, PDF name)."""

    path: str
    code: str
    display_name: str
    ins: tuple[tuple[str, str], ...]
    family: str
    given: str
    birth_time: str


@dataclass(frozen=True)
class XdmPackage:
    files: dict[str, bytes]
    subsets: tuple[XdmSubset, ...]
    cdas: tuple[XdmCda, ...] = ()

    @property
    def documents(self) -> dict[str, bytes]:
        """Every document the metadata references and the archive holds, by its zip path."""
        return {e.path: self.files[e.path] for s in self.subsets for e in s.entries if e.path in self.files}

    @property
    def patient_id(self) -> str | None:
        """The submission set patientId (CX) of the first subset that has one."""
        return next((s.patient_id for s in self.subsets if s.patient_id), None)


def _unsafe_name(name: str) -> bool:
    parts = re.split(r"[/\\]", name)
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts


def _safe_infos(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise XdmError("XDM-ZIP-ENTRIES", f"the archive has {len(infos)} entries, more than {MAX_ENTRIES}")
    total = sum(info.file_size for info in infos)
    packed = max(sum(info.compress_size for info in infos), 1)
    if total > MAX_UNCOMPRESSED or total / packed > MAX_RATIO:
        raise XdmError(
            "XDM-ZIP-BOMB", f"the archive expands to {total} bytes from {packed} (zip bomb: limit 100 MB, ratio 100)"
        )
    for info in infos:
        if _unsafe_name(info.filename):
            raise XdmError("XDM-ZIP-PATH", f"entry '{info.filename}' is an absolute path or climbs out with '..'")
        if info.flag_bits & 0x1:
            raise XdmError("XDM-ZIP-ENCRYPTED", f"entry '{info.filename}' is encrypted")
        if info.filename.lower().endswith(".zip"):
            raise XdmError("XDM-ZIP-NESTED", f"entry '{info.filename}' is a nested archive")
    return [info for info in infos if not info.is_dir()]


def _read_files(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = {}
            for info in _safe_infos(archive):
                content = archive.read(info)
                if content.startswith(_ZIP_MAGIC):
                    raise XdmError("XDM-ZIP-NESTED", f"entry '{info.filename}' is a nested zip archive")
                files[info.filename] = content
            return files
    except XdmError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        OSError,
        ValueError,
    ) as error:
        raise XdmError("XDM-ZIP-CORRUPT", f"IHE_XDM.ZIP is not a readable zip archive: {error}") from None


def _slot(element: etree._Element, name: str) -> str:
    values = element.xpath("rim:Slot[@name=$name]/rim:ValueList/rim:Value/text()", namespaces=ebrim.NS, name=name)
    return str(values[0]).strip() if values else ""


def _identifier(element: etree._Element, scheme: str) -> str:
    values = element.xpath("rim:ExternalIdentifier[@identificationScheme=$s]/@value", namespaces=ebrim.NS, s=scheme)
    return str(values[0]) if values else ""


def _read_subset(name: str, files: dict[str, bytes]) -> XdmSubset:
    directory = f"IHE_XDM/{name}/"
    metadata_path = next((path for path in files if path.upper() == f"{directory}METADATA.XML".upper()), None)
    if metadata_path is None:
        return XdmSubset(name, None, f"{directory} has no METADATA.XML")
    try:
        root = parse_untrusted(files[metadata_path])
    except (UnsafeXml, MalformedXml) as error:
        return XdmSubset(name, None, f"{metadata_path}: {error}")
    entries = []
    for element in root.iter(f"{ebrim.RIM}ExtrinsicObject"):
        uri = _slot(element, "URI")
        entries.append(
            XdmEntry(
                entry_id=element.get("id", ""),
                uri=uri,
                path=posixpath.normpath(directory + uri) if uri else "",
                mime_type=element.get("mimeType", ""),
                hash=_slot(element, "hash"),
                size=_slot(element, "size"),
                patient_id=_identifier(element, ebrim.DE_PATIENT_ID),
                location=root.getroottree().getpath(element),
            )
        )
    packages = list(root.iter(f"{ebrim.RIM}RegistryPackage"))
    patient_id = next((pid for p in packages if (pid := _identifier(p, ebrim.SS_PATIENT_ID))), "")
    return XdmSubset(name, root, "", patient_id, tuple(entries))


def _read_cda(path: str, data: bytes) -> XdmCda | None:
    try:
        root = parse_untrusted(data)
    except (UnsafeXml, MalformedXml):
        return None
    if root.tag != "{urn:hl7-org:v3}ClinicalDocument":
        return None
    codes = _CDA_CODE(root)
    patients = _CDA_PATIENT(root)
    patient = patients[0] if patients else None
    families = _FAMILY(patient) if patient is not None else []
    return XdmCda(
        path=path,
        code=codes[0].get("code", "") if codes else "",
        display_name=codes[0].get("displayName", "") if codes else "",
        ins=tuple(
            (i.get("root", ""), i.get("extension", "")) for i in _CDA_INS(root) if i.get("root") in _ALL_INS_OIDS
        ),
        family=(families[0].text or "").strip() if families else "",
        given=str(_GIVEN(patient)).strip() if patient is not None else "",
        birth_time=str(_BIRTH(patient)) if patient is not None else "",
    )


def read_xdm(data: bytes) -> XdmPackage:
    """The archive's files, submission sets and CDA documents; XdmError when unreadable or unsafe."""
    files = _read_files(data)
    names = sorted(
        {path.split("/")[1] for path in files if path.upper().startswith("IHE_XDM/") and path.count("/") >= 2}
    )
    subsets = tuple(_read_subset(name, files) for name in names)
    cdas = []
    for subset in subsets:
        for entry in subset.entries:
            if entry.path in files and (cda := _read_cda(entry.path, files[entry.path])) is not None:
                cdas.append(cda)
    return XdmPackage(files, subsets, tuple(cdas))


def _layout_findings(package: XdmPackage) -> list[Finding]:
    findings = []
    roots = {path.upper() for path in package.files}
    for required in ("README.TXT", "INDEX.HTM"):
        if required not in roots:
            findings.append(
                Finding(f"XDM-LAYOUT-{required[:-4]}", "error", f"{required} is missing at the root", "", LAYOUT)
            )
    if not package.subsets:
        findings.append(
            Finding("XDM-LAYOUT-SUBSET", "error", "no IHE_XDM/<subset>/ directory in the archive", "", LAYOUT)
        )
    for subset in package.subsets:
        if subset.metadata is None:
            findings.append(Finding("XDM-METADATA", "error", subset.error, f"IHE_XDM/{subset.name}", LAYOUT))
        elif subset.metadata.tag != f"{ebrim.LCM}SubmitObjectsRequest":
            message = f"IHE_XDM/{subset.name}/METADATA.XML root must be lcm:SubmitObjectsRequest"
            findings.append(Finding("XDM-METADATA", "error", message, "/*", LAYOUT))
        elif not subset.entries:
            message = f"IHE_XDM/{subset.name}/METADATA.XML has no DocumentEntry"
            findings.append(Finding("XDM-METADATA", "error", message, "/*", LAYOUT))
    return findings


def _entry_findings(package: XdmPackage, subset: XdmSubset, entry: XdmEntry) -> list[Finding]:
    where = f"IHE_XDM/{subset.name}/METADATA.XML {entry.location}"
    if not entry.uri:
        return [Finding("XDM-URI", "error", f"DocumentEntry {entry.entry_id} has no URI slot", where, LAYOUT)]
    if entry.path not in package.files or _unsafe_name(entry.uri):
        return [
            Finding("XDM-URI", "error", f"URI '{entry.uri}' names no file of IHE_XDM/{subset.name}/", where, LAYOUT)
        ]
    data = package.files[entry.path]
    findings = []
    if entry.hash.lower() != hashlib.sha1(data).hexdigest():
        message = f"hash '{entry.hash}' is not the SHA-1 of {entry.path} ({hashlib.sha1(data).hexdigest()})"
        findings.append(Finding("XDM-HASH", "error", message, where, LAYOUT))
    if entry.size != str(len(data)):
        findings.append(
            Finding("XDM-SIZE", "error", f"size '{entry.size}' but {entry.path} has {len(data)} bytes", where, LAYOUT)
        )
    if entry.patient_id != subset.patient_id:
        message = (
            f"DocumentEntry patientId '{entry.patient_id}' differs from the submission set's '{subset.patient_id}'"
        )
        findings.append(Finding("XDM-PATIENT-MISMATCH", "error", message, where, ONE_PATIENT))
    return findings


def _patient_findings(package: XdmPackage, oids: InsOids, ins_required: bool) -> list[Finding]:
    findings = []
    patient_ids = {s.patient_id for s in package.subsets if s.metadata is not None}
    for subset in package.subsets:
        if subset.metadata is None:
            continue
        where = f"IHE_XDM/{subset.name}/METADATA.XML"
        cx = parse_cx(subset.patient_id)
        if not subset.patient_id:
            findings.append(Finding("XDM-PATIENT", "error", "the submission set has no patientId", where, LAYOUT))
        elif cx.authority not in oids:
            if ins_required or not cx.authority or not cx.id:
                wanted = f"an INS OID ({oids.nir} or {oids.nia})" if ins_required else "an assigning authority OID"
                message = f"patientId '{subset.patient_id}' must carry {wanted} in CX.4"
                findings.append(Finding("XDM-PATIENT-OID", "error", message, where, LAYOUT))
        elif problem := ins_problem(cx.id):
            findings.append(Finding("XDM-PATIENT", "error", f"patientId: {problem}", where, LAYOUT))
    if len(patient_ids) > 1:
        message = f"the submission sets name different patients: {sorted(patient_ids)}"
        findings.append(Finding("XDM-PATIENT-MISMATCH", "error", message, "IHE_XDM", ONE_PATIENT))
    expected = {(parse_cx(pid).authority, parse_cx(pid).id) for pid in patient_ids if pid}
    for cda in package.cdas:
        if cda.ins and expected and not expected & set(cda.ins):
            message = (
                f"{cda.path}: recordTarget INS {list(cda.ins)} is not the metadata patientId {sorted(patient_ids)}"
            )
            findings.append(Finding("XDM-PATIENT-CDA", "error", message, "/ClinicalDocument/recordTarget", ONE_PATIENT))
    return findings


def xdm_findings(
    package: XdmPackage,
    *,
    oids: InsOids | None = None,
    ins_required: bool = True,
    cda_checks: CdaChecks | None = None,
) -> list[Finding]:
    """Layout, metadata/file agreement, patient consistency and every CDA through the CDA engine.

    ``ins_required`` False (the message says X-MSS-INS: N) lets the patientId be a local identifier
    under the sender's own assigning authority: an unqualified identity has no INS to carry.
    A CDA finding names the archive's requirement (MSS/PROV.01) unless the CDA engine named one: a
    document that breaks the CDA rules makes the archive that carries it non-conforming.
    ``cda_checks``, a CI-SIS package's schema and layers, join the CDA engine's own.
    """
    schema, layers = cda_checks or (None, [])
    findings = _layout_findings(package)
    for subset in package.subsets:
        for entry in subset.entries:
            findings += _entry_findings(package, subset, entry)
    findings += _patient_findings(package, oids or InsOids(), ins_required)
    for path in _xml_documents(package):
        findings += [
            Finding(f"XDM-CDA:{f.rule}", f.severity, f"{path}: {f.message}", f.location, f.requirement or LAYOUT)
            for f in validate_cda(package.files[path], schema=schema, extra_layers=layers)
        ]
    return findings


def _xml_documents(package: XdmPackage) -> list[str]:
    """The CDA documents, plus XML entries that failed to read as one (so the CDA engine says why)."""
    declared_xml = [
        e.path for s in package.subsets for e in s.entries if e.path in package.files and "xml" in e.mime_type.lower()
    ]
    return list(dict.fromkeys([cda.path for cda in package.cdas] + declared_xml))


def validate_xdm(data: bytes, *, oids: InsOids | None = None) -> list[Finding]:
    """Findings for an IHE_XDM.ZIP; an unreadable or unsafe archive is one finding, never an exception."""
    try:
        package = read_xdm(data)
    except XdmError as error:
        return [error.finding()]
    return xdm_findings(package, oids=oids)
