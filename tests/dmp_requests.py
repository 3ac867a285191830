"""What a DMP test needs to talk to the mock like a DPI: a CDA, a signed submission, a VIHF per call, a client."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from lxml import etree

from segur.ins import OID_INS_NIR_TEST, ins_key
from segur.pki import Pki
from segur.reference_sut.cda import CdaAuthor, CdaId, CdaOrganisation, CdaPatient, CdaRequest, produce_cda
from segur.reference_sut.dmp_client import DmpClient, DmpSettings
from segur.reference_sut.vihf import Professional, VihfRequest, build_vihf, security_header
from segur.reference_sut.xds_metadata import Author, DocumentToSubmit, Institution, Submission, build_submission

PARIS = dt.timezone(dt.timedelta(hours=1))
DOMINIQUE = "182052A004123" + ins_key("182052A004123")  # open DMP, every test professional authorised
ZOE = "2751263220749" + ins_key("2751263220749")  # open DMP, every test professional authorised
DUPONT = "1850275056014" + ins_key("1850275056014")  # open DMP, nobody authorised
CLOSED = "2840663220213" + ins_key("2840663220213")
OPPOSED = "1900175056781" + ins_key("1900175056781")
NO_DMP = "1520499127001" + ins_key("1520499127001")
HOSPITAL_DOCTOR = Professional("899910000027", "HOSPITALIER MEDECIN-TEST", "10", "SM04")
GP = Professional("899910000019", "GENERALISTE MEDECIN-TEST", "10", "SM54")
PHARMACIST = Professional("899910000035", "OFFICINE PHARMACIEN-TEST", "21", "A")
ORGANISATION = CdaOrganisation(
    id="1990000001",
    name="CENTRE HOSPITALIER DE TEST SEGUR",
    facility_type_code="SA01",
    practice_setting_code="ETABLISSEMENT",
)
LDL_SES_FORMAT = "urn:asip:ci-sis:ldl-ses:2022"  # overwritten below by the value the builder's tables accept


def cda(
    ins: str = DOMINIQUE, *, level: str = "N1", document_id: str = "1.2.250.1.999.1.1.2.1", **changes: Any
) -> bytes:
    request = CdaRequest(
        kind="LDL-SES",
        level=level,
        patient=CdaPatient(
            ins=ins,
            birth_family_name="ADRTROIS",
            given_names=("DOMINIQUE",),
            birth_date=dt.date(1982, 5, 12),
            gender="M",
            birthplace_cog="2A004",
            local_id="IPP000042",
            local_id_oid="1.2.250.1.999.1.1.1",
        ),
        author=CdaAuthor(
            rpps="99910000027", family_name="MEDECIN-TEST", given_name="HOSPITALIER", specialty_code="SM04"
        ),
        organisation=ORGANISATION,
        effective_time=dt.datetime(2026, 11, 20, 10, 30, tzinfo=PARIS),
        service_start=dt.datetime(2026, 11, 15, 9, 0, tzinfo=PARIS),
        service_stop=dt.datetime(2026, 11, 20, 10, 0, tzinfo=PARIS),
        document_id=CdaId(document_id),
        set_id=CdaId(document_id + ".0"),
        text=("Séjour synthétique pour les tests du harnais.",),
    )
    return produce_cda(replace(request, **changes))


def submission(pki: Pki, document: bytes, *, format_code: str, **options: Any) -> Submission:
    return build_submission(
        [DocumentToSubmit(document, format_code)],
        author=Author("899910000027", "MEDECIN-TEST", "HOSPITALIER"),
        institution=Institution("CENTRE HOSPITALIER DE TEST SEGUR", "1990000001"),
        source_id="1.2.250.1.999.2",
        signing_key_pem=pki.key("sign").read_bytes(),
        signing_cert_pem=pki.cert("sign").read_bytes(),
        **options,
    )


def vihf_factory(pki: Pki, professional: Professional = HOSPITAL_DOCTOR, signer: str = "sign", **changes: Any):
    """A VIHF per call, for the patient and purpose of that call, signed with the organisation's certificate."""

    def make(ins: str, oid: str, purpose: str) -> etree._Element:
        request = VihfRequest(
            professional=professional,
            structure_id="1990000001",
            secteur="SA01",
            patient_ins=ins,
            patient_oid=oid,
            purpose=purpose,
            lps_nom="SEGUR REFERENCE SUT",
            lps_version="1.0.0",
            lps_homologation="HOMOL-TEST-0001",
            issue_instant=dt.datetime.now(dt.UTC),
        )
        assertion = build_vihf(
            replace(request, **changes), key_pem=pki.key(signer).read_bytes(), cert_pem=pki.cert(signer).read_bytes()
        )
        return security_header(assertion)

    return make


def client(running: Any, professional: Professional = HOSPITAL_DOCTOR, **changes: Any) -> DmpClient:
    pki = running.pki
    settings = DmpSettings(
        base_url=running.base_url,
        ca=str(pki.ca_cert),
        cert=str(pki.cert("auth-cli")),
        key=str(pki.key("auth-cli")),
        timeout=running.client_timeout,
    )
    return DmpClient(settings, vihf_factory(pki, professional, **changes))


__all__ = ["OID_INS_NIR_TEST"]
