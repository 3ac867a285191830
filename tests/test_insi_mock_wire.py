"""The INSi mock over real mTLS: answers, refusals, TLS-level refusals, fault injection, journal.

Every refusal must be a SOAP 1.2 Fault with its siram/desir subcode, come back well within
the client's timeout (a hang fails the test), and be in the journal read through the
control API.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx
import pytest
from insi_requests import (
    ACTION_PREFIX,
    CONTENT_TYPE,
    IDAM,
    VITALE,
    message_id_of,
    read_fault,
    read_resultat,
    traits_request,
    vitale_request,
)

from segur.ins import OID_INS_NIA, OID_INS_NIR
from segur.journal import payload

ADRUN = ("ADRUN", "ZOE", "F", "1975-12-31")
TLS_REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


pytestmark = pytest.mark.usefixtures("fresh_insi")


def post(
    client: httpx.Client, url: str, body: bytes | Iterable[bytes], content_type: str = CONTENT_TYPE, **kwargs
) -> httpx.Response:
    return client.post(url, content=body, headers={"content-type": content_type}, **kwargs)


def assert_soap(response: httpx.Response) -> None:
    assert response.headers["content-type"].split(";")[0].strip() == "application/soap+xml"


# --- answers ----------------------------------------------------------------------------------


def test_traits_search_found(insi_mock, insi_client):
    seq = insi_mock.last_seq()
    request = traits_request(*ADRUN)
    response = post(insi_client("insi-auto"), insi_mock.url, request)

    assert response.status_code == 200
    assert_soap(response)
    result = read_resultat(response.content)
    assert (result.code_cr, result.libelle_cr) == ("00", "OK")
    assert result.actif is not None
    assert (result.actif.matricule, result.actif.cle, result.actif.oid) == ("2751263220749", "74", OID_INS_NIR)
    assert result.historique == []
    assert result.tiq == {
        "NomNaissance": "ADRUN",
        "ListePrenom": "ZOE",
        "Sexe": "F",
        "DateNaissance": "1975-12-31",
        "LieuNaissance": "63220",
    }

    [record] = insi_mock.journal_since(seq)
    assert record["operation"] == "rechercherInsAvecTraitsIdentite"
    assert record["outcome"] == {"code_cr": "00"}
    assert record["correlation"]["message_id"] == message_id_of(request)
    assert record["correlation"]["idam"] == IDAM
    assert record["correlation"]["ins"] == "2751263220749"
    assert record["peer"]["cn"] == "INSI-AUTO"
    assert payload(record, "request").endswith(request)
    assert payload(record, "response").endswith(response.content)


@pytest.mark.parametrize(
    ("traits", "matricule", "cle", "oid"),
    [
        pytest.param(("CORSE", "ANTHONY", "M", "1980-03-02"), "180032B020401", "23", OID_INS_NIR, id="corse"),
        pytest.param(("PROVISOIRE", "MATRICULE", "M", "2009-07-01"), "1090763220888", "35", OID_INS_NIA, id="nia"),
        pytest.param(("HERMANN", "GATIEN", "M", "1981-03-24"), "1810363220456", "60", OID_INS_NIR, id="bad-key"),
    ],
)
def test_published_test_identities_on_the_wire(insi_mock, insi_client, traits, matricule, cle, oid):
    result = read_resultat(post(insi_client(), insi_mock.url, traits_request(*traits)).content)
    assert result.code_cr == "00"
    assert result.actif is not None
    assert (result.actif.matricule, result.actif.cle, result.actif.oid) == (matricule, cle, oid)


def test_ecetinsi_is_returned_with_its_history(insi_mock, insi_client):
    result = read_resultat(
        post(insi_client(), insi_mock.url, traits_request("ECETINSI", "PIERRE-ALAIN", "M", "2009-07-14")).content
    )
    assert result.code_cr == "00"
    assert result.actif is not None and result.actif.matricule == "1090763220834"
    assert [(h.matricule, h.cle) for h in result.historique] == [("2090763220834", "39"), ("2090663220123", "55")]
    assert result.tiq["ListePrenom"] == "PIERRE-ALAIN MURIEL FLORIANT"


@pytest.mark.parametrize(
    ("traits", "code", "libelle"),
    [
        pytest.param(("HOUILLES", "PIERRE", "M", "1980-01-01"), "01", "Aucune identite trouvee", id="01-none"),
        pytest.param(("ADRUN", "ZOE", "M", "1975-12-31"), "01", "Aucune identite trouvee", id="01-wrong-sex"),
        pytest.param(("DE VINCI", "LEONARDO", "M", "1952-04-15"), "02", "Plusieurs identites trouvees", id="02"),
    ],
)
def test_traits_search_not_found_or_ambiguous(insi_mock, insi_client, traits, code, libelle):
    seq = insi_mock.last_seq()
    response = post(insi_client(), insi_mock.url, traits_request(*traits))
    assert response.status_code == 200
    assert_soap(response)
    result = read_resultat(response.content)
    assert (result.code_cr, result.libelle_cr) == (code, libelle)
    assert result.element.find("{http://www.cnamts.fr/INSiResultat}INDIVIDU") is None
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"] == {"code_cr": code}


@pytest.mark.parametrize(
    ("matricule", "naissance", "code", "actif"),
    [
        pytest.param("2751263220749", "1975-12-31", "00", "2751263220749", id="active"),
        pytest.param("2090763220834", "2009-07-14", "00", "1090763220834", id="historic-gives-active"),
        pytest.param("2751263220749", "1975-12-30", "01", None, id="wrong-birth-date"),
    ],
)
def test_carte_vitale_search(insi_mock, insi_client, matricule, naissance, code, actif):
    seq = insi_mock.last_seq()
    response = post(insi_client(), insi_mock.url, vitale_request(matricule, naissance))
    assert response.status_code == 200
    assert_soap(response)
    result = read_resultat(response.content)
    assert result.code_cr == code
    assert (result.actif.matricule if result.actif else None) == actif
    [record] = insi_mock.journal_since(seq)
    assert record["operation"] == VITALE
    assert record["correlation"]["matricule_carte"] == matricule


def test_insi_manu_certificate_is_accepted(insi_mock, insi_client):
    seq = insi_mock.last_seq()
    response = post(insi_client("insi-manu"), insi_mock.url, traits_request(*ADRUN))
    assert response.status_code == 200
    assert read_resultat(response.content).code_cr == "00"
    [record] = insi_mock.journal_since(seq)
    assert record["correlation"]["certificate_cn"] == "INSI-MANU"


def test_keep_alive_serves_several_requests_on_one_connection(insi_mock, insi_client):
    seq = insi_mock.last_seq()
    client = insi_client()
    codes = [read_resultat(post(client, insi_mock.url, traits_request(*ADRUN)).content).code_cr for _ in range(5)]
    assert codes == ["00"] * 5
    records = insi_mock.journal_since(seq)
    assert len(records) == 5
    assert len({record["peer"]["address"] for record in records}) == 1, "one TCP connection for all requests"


def test_identity_seeded_through_the_control_api_is_found_until_reset(insi_mock, insi_client):
    identity = {
        "nom_naissance": "SEGUR",
        "prenoms": "ALICE",
        "sexe": "F",
        "date_naissance": "2001-02-03",
        "lieu_naissance": "69123",
        "matricule": "2010269123456",
    }
    insi_mock.control_post("/mocks/insi/state", {"identities": [identity]})
    client = insi_client()
    request = ("SEGUR", "ALICE", "F", "2001-02-03")
    assert read_resultat(post(client, insi_mock.url, traits_request(*request)).content).code_cr == "00"
    insi_mock.control_post("/reset")
    assert read_resultat(post(client, insi_mock.url, traits_request(*request)).content).code_cr == "01"


# --- refusals ---------------------------------------------------------------------------------


def valid_text() -> str:
    """A valid traits request as text, without its XML declaration (to prepend a DOCTYPE)."""
    return traits_request(*ADRUN).decode().split("?>", 1)[1]


def billion_laughs() -> bytes:
    """lol9 expands to 10**9 "lol": refused before any expansion, or the mock would take minutes and GBs."""
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol%s;" % (n - 1 or "")) * 10}">' for n in range(1, 10)
    ]
    doctype = "<!DOCTYPE lolz [\n" + "\n".join(entities) + "\n]>\n"
    return ('<?xml version="1.0"?>\n' + doctype + valid_text().replace(">ADRUN<", ">&lol9;<")).encode()


def xxe(encoding: str = "utf-8") -> bytes:
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    doctype = '<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return (declaration + doctype + valid_text().replace(">ADRUN<", ">&xxe;<")).encode(encoding)


BAD_INPUTS = [
    pytest.param(lambda: traits_request(*ADRUN)[:-40], CONTENT_TYPE, "siram_10", id="malformed-xml"),
    pytest.param(lambda: b"<notsoap/>", CONTENT_TYPE, "siram_10", id="not-an-envelope"),
    pytest.param(
        lambda: ('<!DOCTYPE e [<!ENTITY a "b">]>' + valid_text()).encode(), CONTENT_TYPE, "siram_12", id="doctype"
    ),
    pytest.param(billion_laughs, CONTENT_TYPE, "siram_12", id="billion-laughs"),
    pytest.param(xxe, CONTENT_TYPE, "siram_12", id="xxe-file-etc-passwd"),
    pytest.param(lambda: xxe("utf-16"), CONTENT_TYPE, "siram_12", id="xxe-utf16"),
    pytest.param(
        lambda: ('<!DOCTYPE e SYSTEM "http://127.0.0.1:9/evil.dtd">' + valid_text()).encode(),
        CONTENT_TYPE,
        "siram_12",
        id="external-dtd",
    ),
    pytest.param(lambda: traits_request(*ADRUN), "text/xml; charset=utf-8", "siram_11", id="text-xml"),
    pytest.param(
        lambda: traits_request(*ADRUN, action=ACTION_PREFIX + "supprimerIns"), CONTENT_TYPE, "siram_30", id="action"
    ),
    pytest.param(
        lambda: vitale_request("2751263220749", "1975-12-31", action=ACTION_PREFIX + "rechercherInsAvecTraitsIdentite"),
        CONTENT_TYPE,
        "siram_10",
        id="body-not-matching-action",
    ),
    pytest.param(lambda: traits_request(*ADRUN, contexte_lps=False), CONTENT_TYPE, "siram_20", id="no-contextelps"),
    pytest.param(lambda: traits_request(*ADRUN, contexte_bam=False), CONTENT_TYPE, "siram_20", id="no-contextebam"),
    pytest.param(lambda: traits_request(*ADRUN, idam="INCONNU-0001"), CONTENT_TYPE, "desir_550", id="unknown-idam"),
    pytest.param(lambda: traits_request("ADRUN", "ZOE", "X", "1975-12-31"), CONTENT_TYPE, "siram_50", id="bad-sex"),
]


@pytest.mark.parametrize(("body", "content_type", "subcode"), BAD_INPUTS)
def test_bad_request_is_a_sender_fault_and_journaled(insi_mock, insi_client, body, content_type, subcode):
    seq = insi_mock.last_seq()
    response = post(insi_client(), insi_mock.url, body(), content_type)

    assert response.status_code == 400
    assert_soap(response)
    fault = read_fault(response.content)
    assert (fault.code, fault.subcode) == ("Sender", subcode)
    assert fault.erreur is not None and fault.erreur.get("code") == subcode
    assert b"root:" not in response.content, "an entity was resolved into the answer"

    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["fault"] == subcode
    assert payload(record, "response").endswith(response.content)
    assert b"root:" not in payload(record, "response")


def test_unknown_path_is_siram_30(insi_mock, insi_client):
    response = post(insi_client(), insi_mock.url.replace("/lps", "/autre"), traits_request(*ADRUN))
    assert response.status_code == 400
    assert read_fault(response.content).subcode == "siram_30"


def test_certificate_of_the_test_ca_but_not_insi_is_desir_560(insi_mock, insi_client):
    seq = insi_mock.last_seq()
    response = post(insi_client("auth-cli"), insi_mock.url, traits_request(*ADRUN))
    assert response.status_code == 400
    assert read_fault(response.content).subcode == "desir_560"
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["fault"] == "desir_560"
    assert record["peer"]["cn"] == "HOPITAL TEST SEGUR AUTH_CLI"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_siram_40(insi_mock, insi_client, chunked):
    seq = insi_mock.last_seq()
    body = traits_request(*ADRUN).replace(
        b"<soap:Body>", b"<soap:Body><!--" + b"x" * insi_mock.limits.max_body + b"-->"
    )
    content = (body[i : i + 16384] for i in range(0, len(body), 16384)) if chunked else body
    response = post(insi_client(), insi_mock.url, content)

    assert response.status_code == 413
    assert response.headers.get("connection") == "close"
    fault = read_fault(response.content)
    assert (fault.code, fault.subcode) == ("Sender", "siram_40")
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["fault"] == "siram_40"
    assert record["outcome"]["http_status"] == 413


# --- below SOAP: TLS and HTTP -----------------------------------------------------------------


def is_tls_refusal(record) -> bool:
    return record["operation"] == "tls-handshake" and record["outcome"].get("refused") == "tls"


@pytest.mark.parametrize("who", ["untrusted-ca", "no-certificate"])
def test_tls_handshake_is_refused_and_journaled(insi_mock, insi_client, pki, who):
    seq = insi_mock.last_seq()
    client = insi_client("insi-auto", issuer=pki.untrusted) if who == "untrusted-ca" else insi_client(None)
    with pytest.raises(TLS_REFUSED):
        post(client, insi_mock.url, traits_request(*ADRUN))
    record = insi_mock.wait_for_record(seq, is_tls_refusal)
    assert record["mock"] == "insi"
    assert payload(record, "request") == b""
    assert all(r["operation"] == "tls-handshake" for r in insi_mock.journal_since(seq)), "no SOAP exchange happened"


def raw_tls_exchange(insi_mock, context: ssl.SSLContext, data: bytes) -> bytes:
    """Send raw bytes over mTLS and read until the server closes; a hang raises TimeoutError."""
    address = urlsplit(insi_mock.url)
    with (
        socket.create_connection((address.hostname, address.port), timeout=insi_mock.client_timeout) as raw,
        context.wrap_socket(raw, server_hostname=address.hostname) as tls,
    ):
        tls.sendall(data)
        received = bytearray()
        while chunk := tls.recv(65536):
            received.extend(chunk)
        return bytes(received)


def split_response(wire: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = wire.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split(" ")[1]), headers, body


def test_malformed_http_gets_400_not_a_hang(insi_mock, tls_context):
    seq = insi_mock.last_seq()
    status, headers, body = split_response(
        raw_tls_exchange(insi_mock, tls_context(), b"GARBAGE \x00\x01 nonsense\r\n\r\n")
    )
    assert status == 400
    assert headers["connection"] == "close"
    assert read_fault(body).subcode == "siram_10"
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["fault"] == "siram_10"
    assert "malformed HTTP" in record["outcome"]["refused"]


def test_incomplete_request_is_answered_after_the_read_timeout(insi_mock, tls_context):
    seq = insi_mock.last_seq()
    partial = (
        b"POST /lps HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/soap+xml\r\nContent-Length: 500\r\n\r\n<s"
    )
    status, _, body = split_response(raw_tls_exchange(insi_mock, tls_context(), partial))
    assert status == 408
    assert read_fault(body).subcode == "siram_10"
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["http_status"] == 408


def test_silent_tcp_connection_is_closed_after_the_handshake_timeout(insi_mock):
    seq = insi_mock.last_seq()
    address = urlsplit(insi_mock.url)
    with socket.create_connection((address.hostname, address.port), timeout=insi_mock.client_timeout) as raw:
        assert raw.recv(1) == b"", "the server closes a connection that never starts TLS"
    record = insi_mock.wait_for_record(seq, is_tls_refusal)
    assert record["outcome"]["reason"].startswith("TimeoutError")


def test_tls_alone_without_http_does_not_block_other_clients(insi_mock, insi_client, tls_context):
    """A client that completes TLS and says nothing must not delay anyone else."""
    address = urlsplit(insi_mock.url)
    with (
        socket.create_connection((address.hostname, address.port), timeout=insi_mock.client_timeout) as raw,
        tls_context().wrap_socket(raw, server_hostname=address.hostname),
    ):
        response = post(insi_client(timeout=1.0), insi_mock.url, traits_request(*ADRUN))
        assert read_resultat(response.content).code_cr == "00"


# --- fault injection --------------------------------------------------------------------------


def test_injected_soap_fault_is_a_receiver_fault_then_service_resumes(insi_mock, insi_client):
    pending = insi_mock.control_post("/mocks/insi/faults", {"kind": "soap_fault"})["pending"]
    assert [rule["kind"] for rule in pending] == ["soap_fault"]
    client = insi_client()
    seq = insi_mock.last_seq()

    response = post(client, insi_mock.url, traits_request(*ADRUN))
    assert response.status_code == 500
    assert_soap(response)
    fault = read_fault(response.content)
    assert (fault.code, fault.subcode) == ("Receiver", "siram_90")
    assert fault.erreur is not None and fault.erreur.get("severite") == "fatale"
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["fault"] == "siram_90"

    assert read_resultat(post(client, insi_mock.url, traits_request(*ADRUN)).content).code_cr == "00"


def test_injected_http_error_then_service_resumes(insi_mock, insi_client):
    insi_mock.control_post("/mocks/insi/faults", {"kind": "http_error", "status": 503, "count": 2})
    client = insi_client()
    seq = insi_mock.last_seq()
    assert [post(client, insi_mock.url, traits_request(*ADRUN)).status_code for _ in range(3)] == [503, 503, 200]
    records = insi_mock.journal_since(seq)
    assert [r["outcome"].get("injected") for r in records] == ["http_error", "http_error", None]


def test_injected_timeout_makes_the_client_time_out_then_service_resumes(insi_mock, insi_client):
    insi_mock.control_post("/mocks/insi/faults", {"kind": "timeout", "delay": 1.0})
    client = insi_client(timeout=0.3)
    seq = insi_mock.last_seq()
    with pytest.raises(httpx.ReadTimeout):
        post(client, insi_mock.url, traits_request(*ADRUN))
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["injected"].startswith("timeout")

    response = post(client, insi_mock.url, traits_request(*ADRUN), timeout=insi_mock.client_timeout)
    assert response.status_code == 200
    assert read_resultat(response.content).code_cr == "00"
    assert insi_mock.control_get("/mocks/insi/state")["pending_faults"] == []


def test_injected_fault_only_hits_its_operation(insi_mock, insi_client):
    insi_mock.control_post("/mocks/insi/faults", {"kind": "soap_fault", "operation": VITALE})
    client = insi_client()
    assert post(client, insi_mock.url, traits_request(*ADRUN)).status_code == 200
    response = post(client, insi_mock.url, vitale_request("2751263220749", "1975-12-31"))
    assert read_fault(response.content).subcode == "siram_90"


def test_invalid_fault_rule_is_refused_by_the_control_api(insi_mock):
    rule = {"kind": "explode"}
    response = insi_mock.control_client.post(insi_mock.control + "/mocks/insi/faults", json=rule)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_unknown_injected_fault_code_is_refused_or_still_answered_and_journaled(insi_mock, insi_client):
    rule = {"kind": "soap_fault", "code": "siram_999"}
    response = insi_mock.control_client.post(insi_mock.control + "/mocks/insi/faults", json=rule)
    if response.status_code == 400:
        return
    seq = insi_mock.last_seq()
    answer = post(insi_client(), insi_mock.url, traits_request(*ADRUN))
    assert answer.status_code == 500
    assert (read_fault(answer.content).code, read_fault(answer.content).subcode) == ("Receiver", "siram_999")
    [record] = insi_mock.journal_since(seq)
    assert record["outcome"]["fault"] == "siram_999"


def test_server_certificate_is_verified_by_the_client(insi_mock, pki):
    """Sanity check of the fixture itself: the client really verifies the mock's certificate."""
    context = ssl.create_default_context()  # system trust store only: the test CA is unknown
    context.load_cert_chain(str(pki.cert("insi-auto")), str(pki.key("insi-auto")))
    with httpx.Client(verify=context, timeout=insi_mock.client_timeout) as client, pytest.raises(httpx.ConnectError):
        post(client, insi_mock.url, traits_request(*ADRUN))
