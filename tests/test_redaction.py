"""Credentials never reach evidence files; what reviewers need (claims, parameters) stays readable."""

from __future__ import annotations

import json

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


def test_private_key_blocks_are_masked_whatever_their_kind():
    body = b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7"
    for kind in (
        b"PRIVATE KEY",
        b"ENCRYPTED PRIVATE KEY",
        b"RSA PRIVATE KEY",
        b"EC PRIVATE KEY",
        b"OPENSSH PRIVATE KEY",
    ):
        pem = b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, body, kind)
        assert redact(pem) == b"-----BEGIN %s-----[masque]-----END %s-----\n" % (kind, kind)
    escaped = b'{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIB\\n-----END PRIVATE KEY-----\\n"}'
    assert redact(escaped) == b'{"key": "-----BEGIN PRIVATE KEY-----[masque]-----END PRIVATE KEY-----\\n"}'
    assert redact(b"-----BEGIN PRIVATE KEY-----\nMIIEvQIB (tronque)") == (
        b"-----BEGIN PRIVATE KEY-----[masque]-----END PRIVATE KEY-----"
    )
    certificate = b"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----\n"
    assert redact(certificate) == certificate, "a certificate is public evidence"


def test_settings_lose_their_secrets_but_keep_everything_else():
    yaml = (
        b"psc:\n  client_id: segur-sut\n  client_secret: s3cr3t-client-value-0042\n"
        b"  refresh_token: 'opaque-refresh-0001'  # rotated\nmss:\n  smtp_password: \"mot de passe\"\n"
        b"password_policy: strong\nPASSWORD=hunter2hunter\n"
    )
    assert redact(yaml) == (
        b"psc:\n  client_id: segur-sut\n  client_secret: [masque]\n"
        b"  refresh_token: 'opaq...[masque]'  # rotated\nmss:\n  smtp_password: \"[masque]\"\n"
        b"password_policy: strong\nPASSWORD=[masque]\n"
    )


def test_passwords_and_client_secrets_are_masked_whole():
    assert redact(b'{"password": "abcdefgh", "client_secret": "s3cr3t-value"}') == (
        b'{"password": "[masque]", "client_secret": "[masque]"}'
    )
    assert redact(b"grant_type=password&username=bob&password=abcdefgh") == (
        b"grant_type=password&username=bob&password=[masque]"
    )


def test_sasl_credentials_are_masked_and_mechanisms_and_prompts_stay():
    assert redact(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n") == b"AUTH PLAIN [masque]\r\n"
    login = b"AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\nYWxpY2U=\r\n334 UGFzc3dvcmQ6\r\nc2VjcmV0\r\n235 2.7.0 ok\r\n"
    assert (
        redact(login)
        == b"AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\n[masque]\r\n334 UGFzc3dvcmQ6\r\n[masque]\r\n235 2.7.0 ok\r\n"
    )
    imap = b"A1 AUTHENTICATE XOAUTH2\r\n+ \r\ndXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2sBAQ==\r\nA1 OK done\r\n"
    assert redact(imap) == b"A1 AUTHENTICATE XOAUTH2\r\n+ \r\n[masque]\r\nA1 OK done\r\n"
    for untouched in (
        b"AUTH EXTERNAL =\r\n",
        b"JJOA3 AUTHENTICATE EXTERNAL\r\n<redacted>\r\n",
        b"Authenticate the user\n",
    ):
        assert redact(untouched) == untouched


def test_imap_login_keeps_the_user_and_masks_the_password():
    assert redact(b'A2 LOGIN "medecin@test.mssante.fr" "mot de \\"passe"\r\n') == (
        b'A2 LOGIN "medecin@test.mssante.fr" [masque]\r\n'
    )
    assert (
        redact(b"A2 LOGIN alice {6}\r\ns3cret\r\nA2 NO refused\r\n") == b"A2 LOGIN alice [masque]\r\nA2 NO refused\r\n"
    )
    assert redact(b"Please login now thanks\n") == b"Please login now thanks\n"


def test_masking_twice_changes_nothing():
    raw = (
        b"POST /token HTTP/1.1\r\nAuthorization: Bearer " + JWT + b"\r\n\r\nclient_secret=s3cr3t&code=abcdef123\r\n"
        b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nA2 LOGIN alice s3cret\r\npassword: hunter2\r\n"
        b"-----BEGIN PRIVATE KEY-----\nMIIEvQIB\n-----END PRIVATE KEY-----\n"
    )
    raw += (
        b'{"trace": "{\\"refresh_token\\": \\"opaque-0001\\"}"} &quot;secret&quot;: &quot;shhh&quot;\r\n'
        b"<wsse:Password>hunter2</wsse:Password>\r\nCookie: a=abcdef12\r\nSet-Cookie: b=abcdef12; Path=/\r\n"
    )
    once = redact(raw)
    assert b"opaque-0001" not in once and b"shhh" not in once and b"hunter2" not in once
    assert redact(once) == once


def test_a_json_result_code_is_evidence_not_an_oauth_code():
    parameters = b'{"nom": "ADRUN", "code": "00", "error": {"code": "http_500"}}'
    assert redact(parameters) == parameters


def test_json_escaped_into_a_json_string_is_masked_at_any_depth_and_still_parses():
    body = {"access_token": "opaque-access-0001", "password": 'pa"ss\\wd', "scope": "openid", "code": "00"}
    trace = json.dumps({"trace": json.dumps(body)}).encode()
    assert b'\\"access_token\\": \\"opaque' in trace, "the form an Allure or pytest trace holds"
    for text in (trace, json.dumps({"outer": trace.decode()}).encode()):
        out = redact(text)
        assert b"opaque-access-0001" not in out and b"pa\\" not in out and b"ss\\" not in out
        value = json.loads(out)
        while "scope" not in value:
            value = json.loads(next(iter(value.values())))
        assert value == {"access_token": "opaq...[masque]", "password": "[masque]", "scope": "openid", "code": "00"}


def test_html_escaped_and_python_repr_fields_are_masked():
    html = b"<pre>{&quot;refresh_token&quot;: &quot;opaque-refresh-0001&quot;, &quot;code&quot;: &quot;00&quot;}</pre>"
    assert redact(html) == html.replace(b"opaque-refresh-0001", b"opaq...[masque]"), "the result code stays"
    markupsafe = b"{&#34;client_secret&#34;: &#34;s3cr3t-value&#34;, &#39;password&#39;: &#39;hunter2&#39;}"
    assert redact(markupsafe) == markupsafe.replace(b"s3cr3t-value", b"[masque]").replace(b"hunter2", b"[masque]")
    python = b"E   assert {'access_token': 'opaque-0001', 'token_type': 'Bearer'} == {}"
    assert redact(python) == b"E   assert {'access_token': 'opaq...[masque]', 'token_type': 'Bearer'} == {}"
    assert redact(b'<a href="/cb?state=x&amp;code=SplxlOBeZQ&amp;y=1">') == (
        b'<a href="/cb?state=x&amp;code=Splx...[masque]&amp;y=1">'
    )


def test_secret_keys_in_any_case_and_prefix_are_masked_and_look_alikes_stay():
    raw = (
        b'{"secret": "shhh-0001", "client_secret": "s1", "clientSecret": "s2", "client-secret": "s3",'
        b' "api_key": "AKIA12345678", "apiKey": "k-123456789", "x-api-key": "abcdefgh", "smtp_password": "p1",'
        b' "Password": "p2", "userPassword": "p3"}'
    )
    assert redact(raw) == (
        b'{"secret": "[masque]", "client_secret": "[masque]", "clientSecret": "[masque]", "client-secret": "[masque]",'
        b' "api_key": "AKIA...[masque]", "apiKey": "k-12...[masque]", "x-api-key": "abcd...[masque]",'
        b' "smtp_password": "[masque]", "Password": "[masque]", "userPassword": "[masque]"}'
    )
    evidence = (
        b'{"password_policy": "strong", "secretariat": "Cardiologie", "type": "secret", "grant_type": "password",'
        b' "token_endpoint_auth_method": "client_secret_basic", "client_secret_expires_at": 0, "token_type": "Bearer"}'
    )
    assert redact(evidence) == evidence


def test_xml_password_elements_are_masked_with_or_without_a_namespace():
    soap = (
        b"<wsse:UsernameToken><wsse:Username>medecin</wsse:Username>"
        b'<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/#PasswordText">hunter2</wsse:Password>'
        b"<wsse:Nonce>bm9uY2U=</wsse:Nonce></wsse:UsernameToken><password>p4ss</password><Password/>"
        b"<AccessToken>opaque-0001</AccessToken><PasswordPolicy>strong</PasswordPolicy>"
    )
    assert redact(soap) == (
        b"<wsse:UsernameToken><wsse:Username>medecin</wsse:Username>"
        b'<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/#PasswordText">[masque]</wsse:Password>'
        b"<wsse:Nonce>bm9uY2U=</wsse:Nonce></wsse:UsernameToken><password>[masque]</password><Password/>"
        b"<AccessToken>opaq...[masque]</AccessToken><PasswordPolicy>strong</PasswordPolicy>"
    )
    escaped = b"&lt;wsse:Password Type=&quot;x&quot;&gt;hunter2&lt;/wsse:Password&gt;"
    assert redact(escaped) == b"&lt;wsse:Password Type=&quot;x&quot;&gt;[masque]&lt;/wsse:Password&gt;"


def test_cookies_and_api_key_headers_are_masked_but_cookie_names_and_attributes_stay():
    request = b"GET / HTTP/1.1\r\nCookie: JSESSIONID=abcdef123456; csrf=0987654321\r\nX-Api-Key: key-1234567890\r\n\r\n"
    assert redact(request) == (
        b"GET / HTTP/1.1\r\nCookie: JSESSIONID=abcd...[masque]; csrf=0987...[masque]\r\n"
        b"X-Api-Key: key-...[masque]\r\n\r\n"
    )
    response = b"HTTP/1.1 302 Found\r\nset-cookie: SESSION=abcdef123456; Path=/; HttpOnly; Secure; SameSite=Lax\r\n\r\n"
    assert redact(response) == (
        b"HTTP/1.1 302 Found\r\nset-cookie: SESSION=abcd...[masque]; Path=/; HttpOnly; Secure; SameSite=Lax\r\n\r\n"
    )
    assert redact(b"Cookie: none today\n") == b"Cookie: none today\n"
