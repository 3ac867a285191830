"""Credentials never reach evidence files; what reviewers need (claims, parameters) stays readable."""

from __future__ import annotations

from segur.redaction import redact

JWT = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJmOjE6ODEwMDAwMDAwMDAifQ.c2lnbmF0dXJlLXZhbHVl"


def test_jwt_keeps_header_and_claims_but_loses_its_signature():
    out = redact(b'{"id_token": "' + JWT + b'"}')
    assert b"c2lnbmF0dXJlLXZhbHVl" not in out
    assert JWT.rsplit(b".", 1)[0] in out


def test_authorization_headers_are_masked():
    raw = b"POST /token HTTP/1.1\r\nAuthorization: Basic c2VndXItc3V0OnNlY3JldA==\r\nHost: x\r\n\r\n"
    out = redact(raw)
    assert b"c2VndXItc3V0OnNlY3JldA==" not in out
    assert b"Authorization: Basic c2Vn...[masque]\r\nHost: x" in out


def test_form_and_query_parameters_are_masked_but_their_names_stay():
    form = b"grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&code_verifier=dBjftJeZ4CVP&client_secret=s3cr3t"
    out = redact(b"POST /token HTTP/1.1\r\n\r\n" + form)
    for secret in (b"SplxlOBeZQQYbYS6WxSbIA", b"dBjftJeZ4CVP", b"s3cr3t"):
        assert secret not in out
    assert b"grant_type=authorization_code" in out and b"code_verifier=dBjf...[masque]" in out


def test_redirect_locations_and_challenges_are_handled():
    raw = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/cb?code=abcdef123&state=xyz\r\n\r\n"
    out = redact(raw)
    assert b"code=abcd...[masque]&state=xyz" in out
    challenge = b"GET /auth?response_type=code&code_challenge=E9Melhoa2Ow&code_challenge_method=S256 HTTP/1.1"
    assert redact(challenge) == challenge, "a PKCE challenge is public and stays as evidence"


def test_messages_without_credentials_are_untouched():
    soap = b"POST /lps HTTP/1.1\r\nContent-Type: application/soap+xml\r\n\r\n<env:Envelope>NomNaissance</env:Envelope>"
    assert redact(soap) == soap


def test_a_ciba_request_id_in_a_journal_outcome_is_masked():
    outcome = b'{"auth_req_id": "5f1c2e0a-ffff", "interval": 0.2}'
    assert redact(outcome) == b'{"auth_req_id": "5f1c...[masque]", "interval": 0.2}'
