"""The recorded Entra fixtures are faithful to shared/entra-protocol.md and self-consistent."""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
import sys
from typing import Any, Dict, List
from urllib.parse import parse_qs, parse_qsl, urlsplit

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fixturelib import (
    CLIENT_ID,
    FIXTURES,
    NONCE,
    STATE,
    TENANT_ID,
    USER_OID,
    fixture_kid,
    jwks,
    load_claims,
    load_redirects,
    load_response,
    load_token,
    mint_jwt,
    response_names,
    signing_key_pem,
    token_response_body,
)

from oauth_core.core import errors

ALL_RESPONSES = response_names()
ERRORS = response_names("error-")
SUCCESSES = response_names("success-")
NON_ENTRA = [n for n in ALL_RESPONSES if "kind" in load_response(n)["expect"]]
TOKEN_FILES = sorted(p.name for p in (FIXTURES / "tokens").glob("*.jwt"))
MALFORMED = sorted(p.name for p in (FIXTURES / "tokens" / "malformed").glob("*.txt"))

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$")
GRANTS = {
    None,
    "authorization_code",
    "password",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
}
SUCCESS_ORDER = [
    "token_type", "scope", "expires_in", "ext_expires_in", "expires_on", "not_before", "resource",
    "access_token", "refresh_token", "foci", "id_token", "client_info",
]
ERROR_HEAD = ["error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id"]
ERROR_TAIL = ["error_uri", "claims", "suberror", "password_change_url"]

REQUIRED = [
    "success-authorization-code", "success-password", "success-refresh", "success-client-credentials",
    "success-v1-string-numbers", "success-opaque-access-token", "devicecode", "discovery", "jwks",
    "throttled-429-text", "unavailable-503", "server-error-500-json", "proxy-html-502",
    "captive-portal-200-html", "empty-200", "truncated-200", "not-json-400", "error-70002-54005",
] + [
    f"error-{c}" for c in (
        50126, 50076, 50079, 65001, 53003, 70008, 54005, 700082, 50173, 70000, 9002313, 50034, 50057,
        50055, 70043, 7000218, 7000215, 700016, 90002, 70011, 1002012, 500011, 900144, 9001023, 50148,
        501481, 50196, 70016, 70020,
    )
]


def header_values(resp: Dict[str, Any], name: str) -> List[str]:
    return [v for k, v in resp["headers"] if k.lower() == name.lower()]


def header(resp: Dict[str, Any], name: str) -> str:
    values = header_values(resp, name)
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def verify(token: str, **options: Any) -> Dict[str, Any]:
    """Verify against jwks.json the way a client would: kid lookup, RS256 only."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks())[kid]
    checks: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False, **options}
    return jwt.decode(token, key.key, algorithms=["RS256"], options=checks)


# ------------------------------------------------------------------------------------------ files
def test_required_files_exist() -> None:
    assert set(REQUIRED) <= set(ALL_RESPONSES), set(REQUIRED) - set(ALL_RESPONSES)
    assert len(ERRORS) >= 20
    for name in ("databricks-v1-user.jwt", "databricks-v1-app.jwt", "graph-v2-user.jwt", "id-token-v2.jwt",
                 "expired-v1.jwt"):
        assert name in TOKEN_FILES
    assert {"two-segments.txt", "four-segments.txt", "bad-base64.txt", "payload-json-array.txt",
            "alg-none.txt", "header-not-json.txt", "empty.txt"} <= set(MALFORMED)


def test_generator_is_deterministic() -> None:
    result = subprocess.run(
        [sys.executable, str(FIXTURES / "make_fixtures.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_token_files_have_no_trailing_newline() -> None:
    for name in TOKEN_FILES + [f"malformed/{m}" for m in MALFORMED]:
        text = (FIXTURES / "tokens" / name).read_bytes()
        assert not text.endswith(b"\n") and not text.startswith(b" "), name


# -------------------------------------------------------------------------------------- responses
@pytest.mark.parametrize("name", ALL_RESPONSES)
def test_response_shape(name: str) -> None:
    resp = load_response(name)
    assert list(resp) == ["description", "endpoint", "grant_type", "status", "headers", "body", "expect"]
    assert isinstance(resp["description"], str) and resp["description"]
    assert resp["endpoint"] in {"token", "devicecode", "discovery", "jwks"}
    assert resp["grant_type"] in GRANTS
    if resp["endpoint"] != "token":
        assert resp["grant_type"] is None
    assert isinstance(resp["status"], int) and 200 <= resp["status"] < 600
    assert all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        for pair in resp["headers"]
    )
    assert isinstance(resp["body"], str)
    assert isinstance(resp["expect"], dict)
    assert header(resp, "Content-Length") == str(len(resp["body"].encode("utf-8")))
    assert header(resp, "Date").endswith(" GMT")


@pytest.mark.parametrize("name", [n for n in ALL_RESPONSES if n not in NON_ENTRA or n.startswith(("empty", "trunc"))])
def test_entra_headers(name: str) -> None:
    resp = load_response(name)
    if resp["endpoint"] in ("discovery", "jwks") and resp["status"] == 200:
        assert header(resp, "Cache-Control") == "max-age=86400, private"
        assert header(resp, "Access-Control-Allow-Origin") == "*"
        assert header(resp, "Access-Control-Allow-Methods") == "GET, OPTIONS"
    else:
        assert header(resp, "Cache-Control") == "no-store, no-cache"
        assert header(resp, "Pragma") == "no-cache"
        assert header(resp, "Expires") == "-1"
        cookies = header_values(resp, "Set-Cookie")
        assert [c.split("=", 1)[0] for c in cookies] == ["fpc", "x-ms-gateway-slice", "stsservicecookie"]
    assert header(resp, "Content-Type") == "application/json; charset=utf-8"
    assert header(resp, "X-Content-Type-Options") == "nosniff"
    assert header(resp, "Strict-Transport-Security").startswith("max-age=")
    assert header(resp, "P3P") == 'CP="DSP CUR OTPi IND OTRi ONL FIN"'
    assert GUID.match(header(resp, "x-ms-request-id"))
    assert re.match(r"^2\.1\.\d+\.\d+ - [A-Z0-9]+ ProdSlices$", header(resp, "x-ms-ests-server"))


@pytest.mark.parametrize("name", [n for n in ALL_RESPONSES if n not in NON_ENTRA])
def test_json_bodies_are_compact(name: str) -> None:
    body = load_response(name)["body"]
    assert body == json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------------------- successes
@pytest.mark.parametrize("name", SUCCESSES)
def test_success_body(name: str) -> None:
    resp = load_response(name)
    body = json.loads(resp["body"])
    expect = resp["expect"]
    assert resp["status"] == 200 and resp["endpoint"] == "token"
    assert list(expect) == ["expires_in", "has_refresh_token", "has_id_token", "scopes"]
    assert [k for k in SUCCESS_ORDER if k in body] == list(body), "unexpected keys or order"
    assert body["token_type"] == "Bearer"
    assert int(body["expires_in"]) == expect["expires_in"] == int(body["ext_expires_in"])
    assert expect["has_refresh_token"] == ("refresh_token" in body)
    assert expect["has_id_token"] == ("id_token" in body)
    assert expect["scopes"] == body.get("scope", "").split()
    assert "offline_access" not in expect["scopes"]
    if name == "success-v1-string-numbers":
        for key in ("expires_in", "ext_expires_in", "expires_on", "not_before"):
            assert isinstance(body[key], str) and body[key].isdigit()
    else:
        assert type(body["expires_in"]) is int and type(body["ext_expires_in"]) is int
    if "refresh_token" in body:
        assert body["refresh_token"].startswith("0.A") and len(body["refresh_token"]) >= 300


def test_client_credentials_exact_keys() -> None:
    body = json.loads(load_response("success-client-credentials")["body"])
    assert list(body) == ["token_type", "expires_in", "ext_expires_in", "access_token"]
    assert load_token("databricks-v1-app") == body["access_token"]


def test_authorization_code_body() -> None:
    body = json.loads(load_response("success-authorization-code")["body"])
    assert body["access_token"] == load_token("databricks-v1-user")
    assert body["id_token"] == load_token("id-token-v2")
    assert verify(body["id_token"])["nonce"] == NONCE


def test_refresh_rotates_refresh_token() -> None:
    first = json.loads(load_response("success-authorization-code")["body"])["refresh_token"]
    second = json.loads(load_response("success-refresh")["body"])["refresh_token"]
    assert first != second and second.startswith("0.A")


@pytest.mark.parametrize("name", SUCCESSES)
def test_success_token_lifetimes(name: str) -> None:
    body = json.loads(load_response(name)["body"])
    access = body["access_token"]
    if access.count(".") != 2:
        assert name == "success-opaque-access-token"
        with pytest.raises(jwt.DecodeError):
            jwt.get_unverified_header(access)
        return
    claims = verify(access)
    assert claims["iat"] == claims["nbf"]
    assert claims["exp"] - claims["iat"] == int(body["expires_in"]) + 300
    if "expires_on" in body:
        assert int(body["expires_on"]) == claims["exp"] and int(body["not_before"]) == claims["nbf"]
    if "id_token" in body:
        id_claims = verify(body["id_token"])
        assert id_claims["aud"] == CLIENT_ID
        assert id_claims["exp"] - id_claims["iat"] == 3900


@pytest.mark.parametrize("name", [n for n in SUCCESSES if "client_info" in load_response(n)["body"]])
def test_client_info(name: str) -> None:
    body = json.loads(load_response(name)["body"])
    raw = body["client_info"]
    assert "=" not in raw and "+" not in raw and "/" not in raw
    info = b64url_json(raw)
    assert list(info) == ["uid", "utid"]
    assert info == {"uid": USER_OID, "utid": TENANT_ID}
    id_claims = verify(body["id_token"])
    assert (id_claims["oid"], id_claims["tid"]) == (info["uid"], info["utid"])


def test_devicecode() -> None:
    resp = load_response("devicecode")
    body = json.loads(resp["body"])
    assert list(body) == ["user_code", "device_code", "verification_uri", "expires_in", "interval", "message"]
    assert type(body["expires_in"]) is int and type(body["interval"]) is int
    assert (body["expires_in"], body["interval"]) == (resp["expect"]["expires_in"], resp["expect"]["interval"])
    assert body["user_code"] in body["message"] and body["verification_uri"] in body["message"]
    assert "verification_uri_complete" not in body


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ERRORS)
def test_error_body(name: str) -> None:
    resp = load_response(name)
    body = json.loads(resp["body"])
    expect = resp["expect"]
    assert list(expect) == ["error", "error_codes", "exception", "status"]
    assert list(body)[:6] == ERROR_HEAD
    assert list(body)[6:] == [k for k in ERROR_TAIL if k in body]
    codes = body["error_codes"]
    assert codes and all(type(c) is int for c in codes)
    assert TIMESTAMP.match(body["timestamp"])
    assert GUID.match(body["trace_id"]) and GUID.match(body["correlation_id"])
    assert body["trace_id"] == header(resp, "x-ms-request-id")
    assert (body["error"], codes, resp["status"]) == (expect["error"], expect["error_codes"], expect["status"])
    assert resp["status"] == (401 if body["error"] == "invalid_client" else 400)
    desc = body["error_description"]
    assert desc.startswith(f"AADSTS{codes[0]}: ")
    for code in codes[1:]:
        assert f"AADSTS{code}: " in desc
    ids = (body["trace_id"], body["correlation_id"], body["timestamp"])
    tails = ["{0}Trace ID: {1}{0}Correlation ID: {2}{0}Timestamp: {3}".format(sep, *ids) for sep in (" ", "\r\n")]
    assert desc.endswith(tuple(tails))
    if "error_uri" in body:
        assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={codes[0]}"
    if "claims" in body:
        assert isinstance(body["claims"], str) and isinstance(json.loads(body["claims"]), dict)
    if "suberror" in body:
        assert body["suberror"] in {
            "basic_action", "additional_action", "message_only", "consent_required", "user_password_expired",
            "bad_token", "token_expired", "protection_policy_required", "client_mismatch",
            "device_authentication_failed",
        }


def test_crlf_separators_on_exactly_three_errors() -> None:
    crlf = [n for n in ERRORS if "\r\n" in json.loads(load_response(n)["body"])["error_description"]]
    assert len(crlf) == 3, crlf


@pytest.mark.parametrize("name", ERRORS)
def test_error_exception_class(name: str) -> None:
    resp = load_response(name)
    cls = getattr(errors, resp["expect"]["exception"], None)
    assert isinstance(cls, type) and issubclass(cls, errors.OAuthError)
    exc = errors.oauth_error_from_body(json.loads(resp["body"]), status=resp["status"])
    assert type(exc).__name__ == resp["expect"]["exception"]
    assert list(exc.error_codes) == resp["expect"]["error_codes"]


def test_specific_error_details() -> None:
    def body(name: str) -> Dict[str, Any]:
        return dict(json.loads(load_response(name)["body"]))

    assert body("error-50076")["suberror"] == "basic_action"
    assert "claims" in body("error-50079")
    assert body("error-65001")["suberror"] == "consent_required"
    assert body("error-53003")["suberror"] == "message_only"
    assert body("error-700082")["suberror"] == "bad_token"
    assert body("error-50055")["password_change_url"].startswith("https://")
    assert body("error-70002-54005")["error_codes"] == [70002, 54005]
    assert body("error-70016")["error"] == "authorization_pending"
    assert body("error-70020")["error"] == "expired_token"
    assert body("error-700016")["error"] == "unauthorized_client"
    assert body("error-70011")["error"] == body("error-1002012")["error"] == "invalid_scope"
    assert load_response("error-900144")["endpoint"] == "devicecode"


# ------------------------------------------------------------------------------------- non-Entra
@pytest.mark.parametrize("name", NON_ENTRA)
def test_non_entra(name: str) -> None:
    resp = load_response(name)
    expect = resp["expect"]
    assert list(expect) == ["kind", "retry_after"]
    assert expect["kind"] in {"throttled", "server_error", "html", "empty", "truncated", "not_json"}
    retry = header_values(resp, "Retry-After")
    assert expect["retry_after"] == (int(retry[0]) if retry else None)
    kind, body, status = expect["kind"], resp["body"], resp["status"]
    if kind == "throttled":
        assert status == 429 and body == "Too Many Requests"
    elif kind == "server_error":
        assert 500 <= status < 600
    elif kind == "html":
        assert header(resp, "Content-Type").startswith("text/html") and body.lstrip().startswith("<!DOCTYPE html")
    elif kind == "empty":
        assert body == "" and status == 200
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    if kind == "truncated":
        assert status == 200 and body.startswith('{"token_type":"Bearer"')


# ----------------------------------------------------------------------------- discovery and JWKS
def test_discovery_document() -> None:
    text = (FIXTURES / "openid-configuration.json").read_text()
    assert load_response("discovery")["body"] == text
    doc = json.loads(text)
    assert list(doc) == [
        "token_endpoint", "token_endpoint_auth_methods_supported", "jwks_uri", "response_modes_supported",
        "subject_types_supported", "id_token_signing_alg_values_supported", "response_types_supported",
        "scopes_supported", "issuer", "request_uri_parameter_supported", "userinfo_endpoint",
        "authorization_endpoint", "device_authorization_endpoint", "http_logout_supported",
        "frontchannel_logout_supported", "end_session_endpoint", "claims_supported", "kerberos_endpoint",
        "tenant_region_scope", "cloud_instance_name", "cloud_graph_host_name", "msgraph_host", "rbac_url",
    ]
    base = f"https://login.microsoftonline.com/{TENANT_ID}"
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert doc["issuer"] == f"{base}/v2.0"
    assert doc["request_uri_parameter_supported"] is False and doc["http_logout_supported"] is True


def test_jwks_document() -> None:
    text = (FIXTURES / "jwks.json").read_text()
    assert load_response("jwks")["body"] == text
    keys = jwks()["keys"]
    assert len(keys) == 2
    assert keys[0]["kid"] == fixture_kid()
    for key in keys:
        assert list(key) == ["kty", "use", "kid", "x5t", "n", "e", "x5c", "cloud_instance_name", "issuer"]
        assert key["kid"] == key["x5t"] and len(key["kid"]) == 27
        assert key["issuer"] == "https://login.microsoftonline.com/{tenantid}/v2.0"
        assert (key["kty"], key["use"], key["e"], key["cloud_instance_name"]) == (
            "RSA", "sig", "AQAB", "microsoftonline.com")
        der = base64.b64decode(key["x5c"][0], validate=True)  # standard base64, not base64url
        cert = x509.load_der_x509_certificate(der)
        digest = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
        assert digest == key["x5t"]
        assert cert.subject == cert.issuer
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "accounts.accesscontrol.windows.net"
        assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650
        public = cert.public_key()
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
        n = int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4)), "big")
        assert n == public.public_numbers().n
    assert "TEST KEY" in signing_key_pem().decode()


# ------------------------------------------------------------------------------------------ tokens
@pytest.mark.parametrize("name", TOKEN_FILES)
def test_tokens_verify_and_match_claims(name: str) -> None:
    token = load_token(name)
    record = load_claims(name)
    head = jwt.get_unverified_header(token)
    assert list(head.items()) == list(record["header"].items())
    assert head["alg"] == "RS256" and head["typ"] == "JWT"
    assert head["kid"] == fixture_kid() == jwks()["keys"][0]["kid"]  # the rollover key never signs
    claims = verify(token)
    assert list(claims.items()) == list(record["claims"].items())
    assert list(b64url_json(token.split(".")[1]).items()) == list(record["claims"].items())
    jwt.decode(token, jwt.PyJWKSet.from_dict(jwks())[head["kid"]].key, algorithms=["RS256"],
               audience=claims["aud"], issuer=claims["iss"],
               options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    if claims["ver"] == "1.0":
        assert claims["iss"] == f"https://sts.windows.net/{TENANT_ID}/"
        assert head["x5t"] == head["kid"]
    else:
        assert claims["iss"] == f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
        assert "x5t" not in head
    assert len(claims["uti"]) == 22
    assert all(type(claims[k]) is int for k in ("iat", "nbf", "exp"))


def test_token_specifics() -> None:
    user = verify(load_token("databricks-v1-user"))
    assert (user["aud"], user["appid"], user["appidacr"], user["scp"], user["amr"]) == (
        "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d", CLIENT_ID, "0", "user_impersonation", ["pwd"])
    assert user["upn"] == user["unique_name"] == "someone@contoso.onmicrosoft.com"
    assert (user["oid"], user["tid"], user["iat"], user["exp"]) == (USER_OID, TENANT_ID, 1795599700, 1795604432)
    app = verify(load_token("databricks-v1-app"))
    assert app["idtyp"] == "app" and app["appidacr"] == "1" and "scp" not in app
    assert app["oid"] == app["sub"] and app["idp"] == app["iss"]
    graph = verify(load_token("graph-v2-user"))
    assert graph["ver"] == "2.0" and graph["azp"] == CLIENT_ID and "azpacr" in graph and "scp" in graph
    id_token = verify(load_token("id-token-v2"))
    assert id_token["nonce"] == NONCE and id_token["aud"] == CLIENT_ID and id_token["ver"] == "2.0"
    assert jwt.get_unverified_header(load_token("id-token-v2"))["rh"].startswith("0.A")
    expired = load_token("expired-v1")
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired, jwt.PyJWKSet.from_dict(jwks())[fixture_kid()].key, algorithms=["RS256"],
                   options={"verify_aud": False})
    assert verify(expired)["exp"] < 1609459200  # before 2021


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_tokens_are_malformed(name: str) -> None:
    token = load_token(f"malformed/{name}")
    key = jwt.PyJWKSet.from_dict(jwks())[fixture_kid()].key
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(token, key, algorithms=["RS256"], options={"verify_aud": False, "verify_exp": False})
    parts = token.split(".")
    if name == "empty.txt":
        assert token == ""
    elif name == "two-segments.txt":
        assert len(parts) == 2
    elif name == "four-segments.txt":
        assert len(parts) == 4
    elif name == "bad-base64.txt":
        assert len(parts) == 3 and re.search(r"[^A-Za-z0-9_-]", parts[0])
        with pytest.raises((binascii.Error, ValueError)):
            base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
    elif name == "payload-json-array.txt":
        assert isinstance(b64url_json(parts[1]), list)
    elif name == "alg-none.txt":
        assert b64url_json(parts[0])["alg"] == "none" and parts[2] == ""
    elif name == "header-not-json.txt":
        with pytest.raises(ValueError):
            b64url_json(parts[0])


# --------------------------------------------------------------------------------------- redirects
def test_redirects() -> None:
    r = load_redirects()
    assert {"success", "error_consent", "error_access_denied", "duplicate_state", "duplicate_code",
            "missing_code", "missing_state", "injected_access_token", "other_host"} <= set(r)

    def query(name: str) -> Dict[str, List[str]]:
        return parse_qs(urlsplit(r[name]).query, keep_blank_values=True)

    ok = r["success"]
    assert ok.startswith("http://localhost/?code=0.A") and ok.endswith("#") and urlsplit(ok).fragment == ""
    q = query("success")
    assert list(q) == ["code", "state", "session_state"]
    assert q["state"] == [STATE] and GUID.match(q["session_state"][0]) and len(q["code"][0]) > 300
    consent = r["error_consent"]
    assert "%0d%0a" in consent and "+" in consent
    fields = dict(parse_qsl(urlsplit(consent).query))
    assert fields["error"] == "consent_required" and fields["state"] == STATE
    assert fields["error_description"].startswith("AADSTS65004: ") and "\r\nTrace ID: " in fields["error_description"]
    assert dict(parse_qsl(urlsplit(r["error_access_denied"]).query))["error"] == "access_denied"
    assert query("duplicate_state")["state"][0] == STATE and len(query("duplicate_state")["state"]) == 2
    assert len(query("duplicate_code")["code"]) == 2
    assert "code" not in query("missing_code") and query("missing_code")["state"] == [STATE]
    assert "state" not in query("missing_state")
    assert "access_token" in query("injected_access_token")
    assert urlsplit(r["other_host"]).hostname not in ("localhost", "127.0.0.1")
    assert query("other_host")["state"] == [STATE]


# ------------------------------------------------------------------------------------ fixturelib
def test_mint_jwt_verifies_with_jwks() -> None:
    claims = {**load_claims("id-token-v2")["claims"], "nonce": "test-nonce-1"}
    token = mint_jwt(claims, header={"x5t": None})
    assert list(jwt.get_unverified_header(token)) == ["typ", "alg", "kid"]
    assert verify(token)["nonce"] == "test-nonce-1"
    assert list(jwt.get_unverified_header(mint_jwt({"a": 1}))) == ["typ", "alg", "x5t", "kid"]


def test_token_response_body_overrides() -> None:
    text = token_response_body(id_token="x.y.z", refresh_token=None, foci="1")
    body = json.loads(text)
    assert body["id_token"] == "x.y.z" and "refresh_token" not in body and list(body)[-1] == "foci"
    assert list(body)[:4] == ["token_type", "scope", "expires_in", "ext_expires_in"]
    assert json.loads(token_response_body()) == json.loads(load_response("success-authorization-code")["body"])
