"""IHE_XDM.ZIP reading and checks: a correct archive passes, each layout/metadata/safety defect is one finding."""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import cache
from xml.sax.saxutils import escape

import pytest
from dmp_requests import DOMINIQUE, ZOE, cda
from test_dmp_cisis import FORBIDDEN, write_package

from segur.cisis import package_checks
from segur.ins import OID_INS_NIR, OID_INS_NIR_TEST
from segur.mss import XdmError, read_xdm, validate_xdm
from segur.mss.xdm import xdm_findings
from segur.validation import Finding
from segur.xds import InsOids

METADATA = """<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
 xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:RegistryObjectList>
<rim:ExtrinsicObject id="urn:uuid:0b9c7a0e-0000-4000-8000-000000000001" mimeType="text/xml"
 objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
<rim:Slot name="URI"><rim:ValueList><rim:Value>{uri}</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="hash"><rim:ValueList><rim:Value>{hash}</rim:Value></rim:ValueList></rim:Slot>
<rim:Slot name="size"><rim:ValueList><rim:Value>{size}</rim:Value></rim:ValueList></rim:Slot>
<rim:ExternalIdentifier id="ei1" registryObject="urn:uuid:0b9c7a0e-0000-4000-8000-000000000001"
 identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="{patient_id}"/>
</rim:ExtrinsicObject>
<rim:RegistryPackage id="urn:uuid:0b9c7a0e-0000-4000-8000-000000000002">
<rim:ExternalIdentifier id="ei2" registryObject="urn:uuid:0b9c7a0e-0000-4000-8000-000000000002"
 identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="{set_patient_id}"/>
</rim:RegistryPackage></rim:RegistryObjectList></lcm:SubmitObjectsRequest>"""


@cache
def document(ins: str = DOMINIQUE) -> bytes:
    return cda(ins)


def patient_cx(ins: str = DOMINIQUE, oid: str = OID_INS_NIR_TEST) -> str:
    return f"{ins}^^^&{oid}&ISO^NH"


def build_xdm(
    *,
    subset: str = "SUBSET01",
    data: bytes | None = None,
    uri: str = "DOC0001.XML",
    drop: tuple[str, ...] = (),
    extra: dict[str, bytes] | None = None,
    **metadata: str,
) -> bytes:
    """A correct IHE_XDM.ZIP for DOMINIQUE's CDA; keyword arguments spoil one part of it."""
    data = document() if data is None else data
    values = {
        "uri": uri,
        "hash": hashlib.sha1(data).hexdigest(),
        "size": str(len(data)),
        "patient_id": patient_cx(),
        "set_patient_id": patient_cx(),
    }
    files = {
        "README.TXT": b"Archive IHE XDM de test du harnais Segur.\r\n",
        "INDEX.HTM": b"<html><body><a href='IHE_XDM/'>documents</a></body></html>",
        f"IHE_XDM/{subset}/METADATA.XML": METADATA.format(
            **{k: escape(v) for k, v in {**values, **metadata}.items()}
        ).encode(),
        f"IHE_XDM/{subset}/DOC0001.XML": data,
        **(extra or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            if name not in drop:
                archive.writestr(name, content)
    return buffer.getvalue()


def rules(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.rule, f.requirement) for f in findings if f.severity == "error"}


def test_a_correct_archive_has_no_finding_and_reads_back() -> None:
    data = build_xdm()
    assert validate_xdm(data) == []
    package = read_xdm(data)
    assert [s.name for s in package.subsets] == ["SUBSET01"]
    assert package.patient_id == patient_cx()
    assert package.documents == {"IHE_XDM/SUBSET01/DOC0001.XML": document()}
    assert package.cdas[0].code == "11490-0"


def test_any_subset_name_is_found_by_listing() -> None:
    package = read_xdm(build_xdm(subset="LOT_A"))
    assert [s.name for s in package.subsets] == ["LOT_A"]
    assert validate_xdm(build_xdm(subset="LOT_A")) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"drop": ("README.TXT",)}, ("XDM-LAYOUT-README", "MSS/PROV.01")),
        ({"drop": ("INDEX.HTM",)}, ("XDM-LAYOUT-INDEX", "MSS/PROV.01")),
        ({"drop": ("IHE_XDM/SUBSET01/METADATA.XML",)}, ("XDM-METADATA", "MSS/PROV.01")),
        ({"uri": "DOC0002.XML"}, ("XDM-URI", "MSS/PROV.01")),
        ({"uri": ""}, ("XDM-URI", "MSS/PROV.01")),
        ({"hash": "0" * 40}, ("XDM-HASH", "MSS/PROV.01")),
        ({"size": "12"}, ("XDM-SIZE", "MSS/PROV.01")),
        ({"patient_id": patient_cx(ZOE), "set_patient_id": patient_cx(ZOE)}, ("XDM-PATIENT-CDA", "SC.MSS/CONF.23")),
        ({"patient_id": patient_cx(ZOE)}, ("XDM-PATIENT-MISMATCH", "SC.MSS/CONF.23")),
        ({"set_patient_id": patient_cx(oid=OID_INS_NIR)}, ("XDM-PATIENT-OID", "MSS/PROV.01")),
        ({"set_patient_id": patient_cx(DOMINIQUE[:13] + "00")}, ("XDM-PATIENT", "MSS/PROV.01")),
    ],
)
def test_each_layout_or_metadata_defect_is_caught(options: dict, expected: tuple[str, str]) -> None:
    assert expected in rules(validate_xdm(build_xdm(**options)))


def test_metadata_that_is_not_xml_or_not_ebrim_is_a_finding() -> None:
    assert ("XDM-METADATA", "MSS/PROV.01") in rules(
        validate_xdm(build_xdm(extra={"IHE_XDM/SUBSET01/METADATA.XML": b"<oops"}))
    )
    doctype = b'<!DOCTYPE x [<!ENTITY a "b">]><x/>'
    assert ("XDM-METADATA", "MSS/PROV.01") in rules(
        validate_xdm(build_xdm(extra={"IHE_XDM/SUBSET01/METADATA.XML": doctype}))
    )


def test_production_oids_are_accepted_only_when_the_caller_says_so() -> None:
    cx = patient_cx(oid=OID_INS_NIR)
    archive = build_xdm(
        data=document().replace(OID_INS_NIR_TEST.encode(), OID_INS_NIR.encode()), patient_id=cx, set_patient_id=cx
    )
    assert ("XDM-PATIENT-OID", "MSS/PROV.01") in rules(validate_xdm(archive))
    assert rules(validate_xdm(archive, oids=InsOids.production())) == set()


def test_an_unqualified_identity_may_travel_under_a_local_identifier() -> None:
    """X-MSS-INS: N means no INS to carry: a local id under the sender's assigning authority is right."""
    local = "IPP-000123^^^&1.2.250.1.999.1.1.2&ISO"
    package = read_xdm(build_xdm(patient_id=local, set_patient_id=local))
    assert ("XDM-PATIENT-OID", "MSS/PROV.01") in rules(xdm_findings(package))
    assert ("XDM-PATIENT-OID", "MSS/PROV.01") not in rules(xdm_findings(package, ins_required=False))
    anonymous = read_xdm(build_xdm(patient_id="IPP-000123", set_patient_id="IPP-000123"))
    assert ("XDM-PATIENT-OID", "MSS/PROV.01") in rules(xdm_findings(anonymous, ins_required=False))


def test_cda_findings_are_re_emitted_with_the_xdm_prefix_under_the_archive_requirement() -> None:
    """A CDA that breaks the CDA rules makes the archive carrying it non-conforming (MSS/PROV.01)."""
    broken = document().replace(b"<recordTarget>", b"<recordTargetX>").replace(b"</recordTarget>", b"</recordTargetX>")
    findings = validate_xdm(build_xdm(data=broken))
    cda = [f for f in findings if f.rule.startswith("XDM-CDA:")]
    assert cda and any(f.rule.startswith("XDM-CDA:CDA-") for f in cda)
    assert all(f.message.startswith("IHE_XDM/SUBSET01/DOC0001.XML: ") for f in cda)
    assert {f.requirement for f in cda} == {"MSS/PROV.01"}


def test_a_cisis_package_checks_the_archives_cda_too(tmp_path) -> None:
    """With ``--cisis`` the CDA in the archive also meets the package's schema and official schematrons."""
    titled = document().replace(b"<title>", f"<title>{FORBIDDEN} ".encode(), 1)
    package = read_xdm(build_xdm(data=titled))
    assert ("XDM-CDA:TEST-TITRE", "MSS/PROV.01") not in rules(xdm_findings(package))
    checks = package_checks(str(write_package(tmp_path)))
    assert ("XDM-CDA:TEST-TITRE", "MSS/PROV.01") in rules(xdm_findings(package, cda_checks=checks))


def _zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _encrypted() -> bytes:
    """A zip whose one entry has the 'encrypted' flag (bit 0): the stdlib cannot write real ZipCrypto."""
    data = bytearray(_zip({"README.TXT": b"x"}, compression=zipfile.ZIP_STORED))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + flag_offset
        data[at] |= 0x1
    return bytes(data)


@pytest.mark.parametrize(
    ("archive", "rule"),
    [
        (b"not a zip at all", "XDM-ZIP-CORRUPT"),
        (build_xdm()[:200], "XDM-ZIP-CORRUPT"),
        (_zip({"bomb.txt": b"\0" * 2_000_000}), "XDM-ZIP-BOMB"),
        (_zip({f"f{i}.txt": b"" for i in range(1001)}, compression=zipfile.ZIP_STORED), "XDM-ZIP-ENTRIES"),
        (_zip({"../evil.txt": b"x"}), "XDM-ZIP-PATH"),
        (_zip({"/etc/evil.txt": b"x"}), "XDM-ZIP-PATH"),
        (_zip({"IHE_XDM/SUBSET01/INNER.ZIP": b"x"}), "XDM-ZIP-NESTED"),
        (_zip({"IHE_XDM/SUBSET01/DOC.BIN": _zip({"a": b"b"})}, compression=zipfile.ZIP_STORED), "XDM-ZIP-NESTED"),
        (_encrypted(), "XDM-ZIP-ENCRYPTED"),
    ],
)
def test_unsafe_or_unreadable_archives_are_refused_with_one_finding(archive: bytes, rule: str) -> None:
    with pytest.raises(XdmError):
        read_xdm(archive)
    assert [(f.rule, f.severity) for f in validate_xdm(archive)] == [(rule, "error")]


def test_an_archive_without_subset_is_a_finding() -> None:
    findings = validate_xdm(_zip({"README.TXT": b"x", "INDEX.HTM": b"y"}))
    assert rules(findings) == {("XDM-LAYOUT-SUBSET", "MSS/PROV.01")}
