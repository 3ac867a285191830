"""The INSi mock against the CNAM contract in ../shared/insi (skipped when that folder is absent).

- requests built by zeep from the official WSDL 1.5.0 are accepted (zeep loads the WSDL
  offline: the one schema it would fetch from the internet, WS-Addressing, is served by a
  minimal stub written here);
- every RESULTAT validates against INSi_RESULTAT_INS.xsd and every fault's siram:Erreur
  against schema_faultSOAP_V01_01.xsd (validated with xmlschema);
- the harness's own request builder validates against the request and context schemas;
- the mock's answer for ECETINSI carries what the real service answered (TEST 2.04 cas 2).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
import xmlschema
from insi_requests import (
    ACTION_PREFIX,
    CONTENT_TYPE,
    CTXBAM,
    CTXLPS,
    IDAM,
    RECSANS,
    RECVIT,
    RESULTAT,
    SOAP12,
    TRAITS,
    read_fault,
    read_resultat,
    traits_request,
    vitale_request,
)
from lxml import etree

SHARED = Path(__file__).resolve().parents[2] / "shared"
WSDL_DIR = SHARED / "insi" / "wsdl"
XSD = WSDL_DIR / "xsd"
RESPONSES = SHARED / "insi" / "responses"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not WSDL_DIR.is_dir(), reason=f"INSi reference material not found in {WSDL_DIR}"),
    pytest.mark.usefixtures("fresh_insi"),
]

# zeep (and requests, which it uses) are development dependencies: skip rather than fail without them.
zeep = pytest.importorskip("zeep")
zeep_exceptions = pytest.importorskip("zeep.exceptions")
zeep_transports = pytest.importorskip("zeep.transports")
zeep_wsa = pytest.importorskip("zeep.wsa")
requests = pytest.importorskip("requests")

WS_ADDRESSING_XSD_URL = "http://www.w3.org/2006/03/addressing/ws-addr.xsd"
# Only what the WSDL uses from WS-Addressing: wsa:MessageID, a header part (a URI taking any
# foreign attribute). zeep's WsAddressingPlugin writes Action and To without the schema.
WS_ADDRESSING_STUB = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:wsa="http://www.w3.org/2005/08/addressing"
           targetNamespace="http://www.w3.org/2005/08/addressing" elementFormDefault="qualified">
  <xs:complexType name="AttributedURIType">
    <xs:simpleContent>
      <xs:extension base="xs:anyURI"><xs:anyAttribute namespace="##other" processContents="lax"/></xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:element name="MessageID" type="wsa:AttributedURIType"/>
</xs:schema>
"""
BINDING = "{http://www.cnamts.fr/webservice}ICIRServiceBinding"
TEMPS = "2026-11-23T10:00:00"


class OfflineTransport(zeep_transports.Transport):
    """Loads the WSDL and its XSDs from disk and serves the WS-Addressing stub; never the network."""

    def load(self, url: str) -> bytes:
        if url == WS_ADDRESSING_XSD_URL:
            return WS_ADDRESSING_STUB
        if url.startswith(("http://", "https://")):
            raise AssertionError(f"the contract test must not fetch {url}")
        return super().load(url)


def zeep_headers() -> dict[str, object]:
    """The WSDL's header parts; wsa:Action, MessageID and To come from zeep's WsAddressingPlugin."""
    return {
        "NO1_ContexteLPS": {
            "Nature": "CTXLPS",
            "Version": "01_00",
            "Id": "zeep-lps-1",
            "Temps": TEMPS,
            "LPS": {"IDAM": {"_value_1": IDAM, "R": "4"}, "Version": "1.0", "Instance": "zeep", "Nom": "ZEEP"},
        },
        "NO1_ContexteBAM": {"Version": "01_02", "Id": "zeep-bam-1", "Temps": TEMPS, "COUVERTURE": {}},
    }


@pytest.fixture(scope="module")
def zeep_client():
    return zeep.Client(
        str(WSDL_DIR / "DESIR_ICIR_EXP_1.5.0.wsdl"),
        transport=OfflineTransport(),
        plugins=[zeep_wsa.WsAddressingPlugin()],
    )


@pytest.fixture(scope="module")
def schemas() -> dict[str, xmlschema.XMLSchema]:
    return {
        "resultat": xmlschema.XMLSchema(XSD / "ServiceIdentiteCertifiee" / "INSi_RESULTAT_INS.xsd"),
        "fault": xmlschema.XMLSchema(XSD / "schema_faultSOAP_V01_01.xsd"),
        "recsans": xmlschema.XMLSchema(XSD / "ServiceIdentiteCertifiee" / "INSi_RECSANS_INS.xsd"),
        "recvit": xmlschema.XMLSchema(XSD / "ServiceIdentiteCertifiee" / "INSi_RECVITALE_INS.xsd"),
        "ctxlps": xmlschema.XMLSchema(XSD / "CTX" / "ROOT_ctxlps_CTXLPS_V01_00.xsd"),
        "ctxbam": xmlschema.XMLSchema(XSD / "CTX" / "ROOT_ctxbam_CTXBAM_V01_02.xsd"),
    }


def validate(schema: xmlschema.XMLSchema, element: etree._Element) -> None:
    """Validate one element as a standalone document (it keeps its in-scope namespace declarations)."""
    schema.validate(etree.tostring(element).decode())


def post(client: httpx.Client, url: str, body: bytes) -> httpx.Response:
    return client.post(url, content=body, headers={"content-type": CONTENT_TYPE})


# --- (a) requests built from the official WSDL -------------------------------------------------


def test_zeep_loads_the_wsdl_offline(zeep_client):
    assert set(zeep_client.wsdl.bindings[BINDING].all()) == {
        "rechercherInsAvecTraitsIdentite",
        "rechercherInsAvecCarteVitale",
    }


def test_request_built_by_zeep_from_the_wsdl_is_accepted(zeep_client, insi_mock, insi_client):
    service = zeep_client.create_service(BINDING, insi_mock.url)
    envelope = zeep_client.create_message(
        service,
        "rechercherInsAvecTraitsIdentite",
        NomNaissance="ECETINSI",
        Prenom=["PIERRE-ALAIN"],
        Sexe="M",
        DateNaissance="2009-07-14",
        _soapheaders=zeep_headers(),
    )
    assert envelope.tag == f"{{{SOAP12}}}Envelope"
    action = envelope.findtext(".//{http://www.w3.org/2005/08/addressing}Action")
    assert action == ACTION_PREFIX + TRAITS, "the WSDL's wsaw:Action is the one the mock expects"

    response = post(insi_client(), insi_mock.url, etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
    assert response.status_code == 200, response.text
    result = read_resultat(response.content)
    assert result.code_cr == "00"
    assert result.actif is not None and result.actif.matricule == "1090763220834"


def test_carte_vitale_request_built_by_zeep_is_accepted(zeep_client, insi_mock, insi_client):
    service = zeep_client.create_service(BINDING, insi_mock.url)
    envelope = zeep_client.create_message(
        service,
        "rechercherInsAvecCarteVitale",
        MatriculeIndividu={"NumIdentifiant": "2751263220749", "Cle": "74"},
        DateNaissance="1975-12-31",
        _soapheaders=zeep_headers(),
    )
    response = post(insi_client(), insi_mock.url, etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
    assert response.status_code == 200, response.text
    assert read_resultat(response.content).code_cr == "00"


def zeep_over_mtls(pki, insi_mock, **client_kwargs):
    """A zeep client that itself calls the mock over mTLS (requests session with the INSI-AUTO certificate)."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE and proxy variables override what is set here
    session.verify = str(pki.ca_cert)
    session.cert = (str(pki.cert("insi-auto")), str(pki.key("insi-auto")))
    client = zeep.Client(
        str(WSDL_DIR / "DESIR_ICIR_EXP_1.5.0.wsdl"),
        transport=OfflineTransport(session=session, timeout=insi_mock.client_timeout),
        plugins=[zeep_wsa.WsAddressingPlugin()],
        **client_kwargs,
    )
    return client, client.create_service(BINDING, insi_mock.url), session


def test_zeep_reads_the_mock_answer_as_the_wsdl_describes_it(pki, insi_mock):
    _, service, session = zeep_over_mtls(pki, insi_mock)
    with session:
        result = service.rechercherInsAvecTraitsIdentite(
            NomNaissance="ADRUN", Prenom=["ZOE"], Sexe="F", DateNaissance="1975-12-31", _soapheaders=zeep_headers()
        )
    assert result.CR.CodeCR == "00"
    assert result.INDIVIDU.INSACTIF.IdIndividu.NumIdentifiant == "2751263220749"
    assert result.INDIVIDU.INSACTIF.IdIndividu.Cle == "74"
    assert result.INDIVIDU.TIQ.ListePrenom == "ZOE"


def test_zeep_sees_a_mock_fault_as_a_soap_fault(pki, insi_mock):
    insi_mock.control_post("/mocks/insi/faults", {"kind": "soap_fault"})
    _, service, session = zeep_over_mtls(pki, insi_mock)
    with session, pytest.raises(zeep_exceptions.Fault) as raised:
        service.rechercherInsAvecTraitsIdentite(
            NomNaissance="ADRUN", Prenom=["ZOE"], Sexe="F", DateNaissance="1975-12-31", _soapheaders=zeep_headers()
        )
    assert [etree.QName(code).localname for code in raised.value.subcodes] == ["siram_90"]


# --- (b) every answer validates against the contract's schemas ---------------------------------

ANSWERS = [
    pytest.param(lambda: traits_request("ADRUN", "ZOE", "F", "1975-12-31"), "00", id="00"),
    pytest.param(lambda: traits_request("ECETINSI", "PIERRE-ALAIN", "M", "2009-07-14"), "00", id="00-history"),
    pytest.param(lambda: traits_request("CORSE", "ANTHONY", "M", "1980-03-02"), "00", id="00-corsica"),
    pytest.param(lambda: traits_request("PROVISOIRE", "MATRICULE", "M", "2009-07-01"), "00", id="00-nia"),
    pytest.param(lambda: traits_request("HERMANN", "GATIEN", "M", "1981-03-24"), "00", id="00-bad-key"),
    pytest.param(lambda: traits_request("HOUILLES", "PIERRE", "M", "1980-01-01"), "01", id="01"),
    pytest.param(lambda: traits_request("DE VINCI", "LEONARDO", "M", "1952-04-15"), "02", id="02"),
    pytest.param(lambda: vitale_request("2090763220834", "2009-07-14"), "00", id="vitale-00"),
    pytest.param(lambda: vitale_request("2751263220749", "1975-12-30"), "01", id="vitale-01"),
]


@pytest.mark.parametrize(("request_body", "code"), ANSWERS)
def test_every_resultat_validates_against_the_xsd(insi_mock, insi_client, schemas, request_body, code):
    response = post(insi_client(), insi_mock.url, request_body())
    assert response.status_code == 200
    result = read_resultat(response.content)
    assert result.code_cr == code
    validate(schemas["resultat"], result.element)


def all_faults(insi_mock, insi_client) -> list[tuple[str, bytes]]:
    """One answer per fault family the mock can give, by provoking each."""
    auto, answers = insi_client(), []
    adrun = ("ADRUN", "ZOE", "F", "1975-12-31")
    cases = [
        (auto, traits_request(*adrun)[:-40], CONTENT_TYPE),
        (auto, b"<!DOCTYPE e []><e/>", CONTENT_TYPE),
        (auto, traits_request(*adrun), "text/xml"),
        (auto, traits_request(*adrun, action=ACTION_PREFIX + "inconnue"), CONTENT_TYPE),
        (auto, traits_request(*adrun, contexte_lps=False), CONTENT_TYPE),
        (auto, b"<x>" + b"x" * insi_mock.limits.max_body + b"</x>", CONTENT_TYPE),
        (auto, traits_request("ADRUN", "ZOE", "X", "1975-12-31"), CONTENT_TYPE),
        (auto, traits_request(*adrun, idam="INCONNU"), CONTENT_TYPE),
        (insi_client("auth-cli"), traits_request(*adrun), CONTENT_TYPE),
    ]
    for client, body, content_type in cases:
        response = client.post(insi_mock.url, content=body, headers={"content-type": content_type})
        answers.append((read_fault(response.content).subcode, response.content))
    insi_mock.control_post("/mocks/insi/faults", {"kind": "soap_fault"})
    response = post(auto, insi_mock.url, traits_request(*adrun))
    answers.append((read_fault(response.content).subcode, response.content))
    return answers


def test_every_fault_detail_validates_against_the_siram_fault_xsd(insi_mock, insi_client, schemas):
    answers = all_faults(insi_mock, insi_client)
    subcodes = [subcode for subcode, _ in answers]
    expected = ["siram_10", "siram_12", "siram_11", "siram_30", "siram_20", "siram_40", "siram_50", "desir_550"]
    assert subcodes == [*expected, "desir_560", "siram_90"]
    for subcode, content in answers:
        fault = read_fault(content)
        assert fault.erreur is not None, f"{subcode}: no siram:Erreur detail"
        validate(schemas["fault"], fault.erreur)
        assert fault.erreur.get("code") == subcode


# --- the harness's own requests against the request schemas -----------------------------------


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param(lambda: traits_request("ADRUN", ["ZOE", "MARIE"], "F", "1975-12-31", "63220"), id="traits"),
        pytest.param(lambda: vitale_request("2751263220749", "1975-12-31", "ADRUN"), id="vitale"),
    ],
)
def test_harness_requests_validate_against_the_request_and_context_schemas(schemas, request_body):
    root = etree.fromstring(request_body())
    header, body = root.find(f"{{{SOAP12}}}Header"), root.find(f"{{{SOAP12}}}Body")
    validate(schemas["ctxlps"], header.find(f"{{{CTXLPS}}}ContexteLPS"))
    validate(schemas["ctxbam"], header.find(f"{{{CTXBAM}}}ContexteBAM"))
    payload = body[0]
    validate(schemas["recsans" if payload.tag == f"{{{RECSANS}}}RECSANSVITALE" else "recvit"], payload)
    assert payload.tag in (f"{{{RECSANS}}}RECSANSVITALE", f"{{{RECVIT}}}RECVITALE")


# --- the mock against a real answer ------------------------------------------------------------


def test_ecetinsi_answer_matches_the_real_service(insi_mock, insi_client):
    reference = read_resultat((RESPONSES / "TEST_2.04_cas2.xml").read_bytes())
    response = post(insi_client(), insi_mock.url, traits_request("ECETINSI", "PIERRE-ALAIN", "M", "2009-07-14"))
    mock = read_resultat(response.content)

    assert (mock.code_cr, mock.libelle_cr) == (reference.code_cr, reference.libelle_cr)
    assert mock.actif == reference.actif
    assert mock.tiq == reference.tiq
    # The real answer puts DateDeb/DateFin before IdIndividu (not schema-valid); compare content, not order.
    assert Counter(map(repr, mock.historique)) == Counter(map(repr, reference.historique))

    # Same prefixes as the real service for the RESULTAT namespaces (default, ns2, ns3), envelope aside.
    def own_prefixes(content: bytes) -> dict[str | None, str]:
        return {p: ns for p, ns in read_resultat(content).element.nsmap.items() if ns != SOAP12}

    assert own_prefixes(response.content) == own_prefixes((RESPONSES / "TEST_2.04_cas2.xml").read_bytes())
    assert own_prefixes(response.content) == {None: RESULTAT, "ns2": RECSANS, "ns3": RECVIT}


@pytest.mark.parametrize(
    ("reference_file", "traits"),
    [
        ("REP_CR01.xml", ("HOUILLES", "PIERRE", "M", "1980-01-01")),
        ("TEST_2.04_cas2.xml", ("ECETINSI", "PIERRE-ALAIN", "M", "2009-07-14")),
        ("TEST_2.05.xml", ("PROVISOIRE", "MATRICULE", "M", "2009-07-01")),
        ("TEST_2.08_cas1.xml", ("CORSE", "ANTHONY", "M", "1980-03-02")),
        ("TEST_2.08_cas2.xml", ("HERMANN", "GATIEN", "M", "1981-03-24")),
    ],
)
def test_compte_rendu_and_active_ins_match_every_real_answer(insi_mock, insi_client, reference_file, traits):
    """CR and INSACTIF (matricule, key, OID) as the real service gave them for the same published identity."""
    reference = read_resultat((RESPONSES / reference_file).read_bytes())
    mock = read_resultat(post(insi_client(), insi_mock.url, traits_request(*traits)).content)
    assert (mock.code_cr, mock.libelle_cr) == (reference.code_cr, reference.libelle_cr)
    assert mock.actif == reference.actif
