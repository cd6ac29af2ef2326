"""The sans-I/O token protocol: request building, scopes, and every branch of response parsing."""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

import pytest
from fixturelib import jwks, load_response, mint_jwt, response_names, token_response_body
from hypothesis import given, settings, strategies as st

from oauth_core.core.authority import Authority
from oauth_core.core.errors import (
    ConfigError,
    InteractionRequired,
    InvalidGrant,
    OAuthError,
    ResponseFormatError,
    ServerError,
)
from oauth_core.core.protocol import (
    DATABRICKS_SCOPE,
    OIDC_SCOPES,
    SECRET_FIELDS,
    HttpRequest,
    HttpResponse,
    TokenSet,
    authorization_code_grant,
    build_token_request,
    client_credentials_grant,
    encode_form,
    jwks_request,
    normalize_scopes,
    parse_json_object,
    parse_jwks_response,
    parse_token_response,
    password_grant,
    redacted_snippet,
    refresh_token_grant,
    token_flow,
)

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
AUTHORITY = Authority.of(None, TENANT)
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
CLIENT_ID = "12a34b56-789c-0d12-e3fa-b456789c0123"
RECEIVED_AT = 1795600000.0
JSON_HEADERS: Tuple[Tuple[str, str], ...] = (("content-type", "application/json; charset=utf-8"),)


def response(status: int, body: Any, headers: Tuple[Tuple[str, str], ...] = JSON_HEADERS) -> HttpResponse:
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return HttpResponse(status=status, headers=headers, body=body)


def recorded(name: str) -> HttpResponse:
    record = load_response(name)
    headers = tuple((k.lower(), v) for k, v in record["headers"])
    return HttpResponse(status=record["status"], headers=headers, body=record["body"].encode("utf-8"))


def parse(resp: HttpResponse, requested: Tuple[str, ...] = ()) -> TokenSet:
    return parse_token_response(resp, received_at=RECEIVED_AT, requested_scopes=requested)


def body_with(**overrides: Any) -> Dict[str, Any]:
    return json.loads(token_response_body(**overrides))  # type: ignore[no-any-return]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


RS256_HEADER = b64url(b'{"alg":"RS256"}')


# --- build_token_request ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grant", "secret", "expected"),
    [
        (
            password_grant("someone@contoso.com", "pw"),
            None,
            [
                ("client_id", CLIENT_ID),
                ("grant_type", "password"),
                ("username", "someone@contoso.com"),
                ("password", "pw"),
                ("scope", "s1 s2"),
                ("client_info", "1"),
            ],
        ),
        (
            refresh_token_grant("0.AXkA-rt"),
            "sec",
            [
                ("client_id", CLIENT_ID),
                ("grant_type", "refresh_token"),
                ("refresh_token", "0.AXkA-rt"),
                ("scope", "s1 s2"),
                ("client_info", "1"),
                ("client_secret", "sec"),
            ],
        ),
        (
            authorization_code_grant("0.AXkA-code", "http://localhost", "v" * 43),
            None,
            [
                ("client_id", CLIENT_ID),
                ("grant_type", "authorization_code"),
                ("code", "0.AXkA-code"),
                ("redirect_uri", "http://localhost"),
                ("code_verifier", "v" * 43),
                ("scope", "s1 s2"),
                ("client_info", "1"),
            ],
        ),
        (
            client_credentials_grant(),
            "sec",
            [
                ("client_id", CLIENT_ID),
                ("grant_type", "client_credentials"),
                ("scope", "s1 s2"),
                ("client_info", "1"),
                ("client_secret", "sec"),
            ],
        ),
    ],
)
def test_token_request_form_fields_and_order(
    grant: Tuple[Tuple[str, str], ...], secret: Optional[str], expected: List[Tuple[str, str]]
) -> None:
    request = build_token_request(AUTHORITY, CLIENT_ID, grant, scopes=["s1", "s2"], client_secret=secret)
    assert list(request.form) == expected
    assert request.method == "POST"
    assert request.url == TOKEN_URL
    assert request.single_use is (dict(expected)["grant_type"] == "authorization_code")


@pytest.mark.parametrize("secret", [None, "sec"])
def test_secret_present_only_when_given(secret: Optional[str]) -> None:
    for grant in (password_grant("u", "p"), refresh_token_grant("rt"), client_credentials_grant()):
        form = dict(build_token_request(AUTHORITY, CLIENT_ID, grant, scopes=["s"], client_secret=secret).form)
        assert ("client_secret" in form) is (secret is not None)
        if secret:
            assert form["client_secret"] == secret


def test_body_bytes_exactly() -> None:
    request = build_token_request(
        AUTHORITY,
        CLIENT_ID,
        password_grant("someone@contoso.com", "p/ +&\u00e9=%x\u20ac"),
        scopes=[DATABRICKS_SCOPE, "offline_access"],
        client_secret="a+b/c=",
    )
    assert request.body == (
        b"client_id=12a34b56-789c-0d12-e3fa-b456789c0123&grant_type=password"
        b"&username=someone%40contoso.com&password=p%2F%20%2B%26%C3%A9%3D%25x%E2%82%AC"
        b"&scope=2ff814a6-3304-4ab8-85cb-cd0e6f879c1d%2F.default%20offline_access&client_info=1"
        b"&client_secret=a%2Bb%2Fc%3D"
    )


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=64))
def test_body_round_trips_through_a_form_parser(password: str) -> None:
    request = build_token_request(AUTHORITY, CLIENT_ID, password_grant("u", password), scopes=["s"])
    body = request.body.decode("ascii")  # percent-encoded: pure ASCII
    assert "+" not in body  # a literal '+' would decode as a space
    assert body.count("&") == len(request.form) - 1
    assert dict(parse_qsl(body, keep_blank_values=True, strict_parsing=True))["password"] == password


def test_headers() -> None:
    request = build_token_request(
        AUTHORITY,
        CLIENT_ID,
        refresh_token_grant("rt"),
        scopes=["s"],
        headers=(("x-client-sku", "oauth-core"), ("client-request-id", "abc")),
    )
    assert request.headers == (
        ("content-type", "application/x-www-form-urlencoded"),
        ("accept", "application/json"),
        ("x-client-sku", "oauth-core"),
        ("client-request-id", "abc"),
    )


@pytest.mark.parametrize(
    ("client_id", "grant", "scopes", "secret"),
    [
        ("", client_credentials_grant(), ["s"], None),
        (CLIENT_ID, password_grant("", "p"), ["s"], None),
        (CLIENT_ID, password_grant("u", ""), ["s"], None),
        (CLIENT_ID, refresh_token_grant(""), ["s"], None),
        (CLIENT_ID, authorization_code_grant("", "http://localhost", "v" * 43), ["s"], None),
        (CLIENT_ID, authorization_code_grant("c", "", "v" * 43), ["s"], None),
        (CLIENT_ID, authorization_code_grant("c", "http://localhost", ""), ["s"], None),
        (CLIENT_ID, client_credentials_grant(), [], None),
        (CLIENT_ID, client_credentials_grant(), ["s"], ""),
    ],
)
def test_empty_values_refused(
    client_id: str, grant: Tuple[Tuple[str, str], ...], scopes: List[str], secret: Optional[str]
) -> None:
    with pytest.raises(ConfigError):
        build_token_request(AUTHORITY, client_id, grant, scopes=scopes, client_secret=secret)


def test_empty_value_error_names_the_field_not_the_value() -> None:
    with pytest.raises(ConfigError, match="password") as info:
        build_token_request(AUTHORITY, CLIENT_ID, password_grant("someone@contoso.com", ""), scopes=["s"])
    assert "someone@contoso.com" not in str(info.value)


def test_request_repr_redacts_secrets() -> None:
    secrets = {
        "password": "pw-SECRET-1",
        "client_secret": "cs-SECRET-2",
        "refresh_token": "rt-SECRET-3",
        "code": "code-SECRET-4",
        "code_verifier": "verifier-SECRET-5",
        "client_assertion": "assertion-SECRET-6",
        "device_code": "device-SECRET-7",
        "assertion": "obo-assertion-SECRET-8",  # the on-behalf-of grant's user assertion
    }
    assert set(secrets) == set(SECRET_FIELDS)
    request = HttpRequest("POST", TOKEN_URL, form=(("client_id", CLIENT_ID), *secrets.items()))
    for text in (repr(request), str(request)):
        assert "SECRET" not in text
        assert CLIENT_ID in text
        assert text.count("<redacted>") == len(secrets)
    built = build_token_request(
        AUTHORITY,
        CLIENT_ID,
        authorization_code_grant("code-SECRET", "http://localhost", "v" * 43 + "SECRET"),
        scopes=["s"],
        client_secret="cs-SECRET",
    )
    assert "SECRET" not in repr(built)
    assert "http://localhost" in repr(built)


def test_request_defaults_and_body() -> None:
    assert HttpRequest("GET", "https://x").body == b""
    assert jwks_request(AUTHORITY) == HttpRequest(
        "GET",
        f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys",
        headers=(("accept", "application/json"),),
    )


def test_encode_form_encodes_reserved_once() -> None:
    assert encode_form([("a b", "c&d=e+f/g%h?i#j~k.l_m-n")]) == "a%20b=c%26d%3De%2Bf%2Fg%25h%3Fi%23j~k.l_m-n"
    assert encode_form([("k", "%41")]) == "k=%2541"


# --- normalize_scopes ------------------------------------------------------------------------


def test_default_scope() -> None:
    assert normalize_scopes(None) == (DATABRICKS_SCOPE,)
    assert DATABRICKS_SCOPE == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
    assert normalize_scopes(None, default="api://x/.default") == ("api://x/.default",)


@pytest.mark.parametrize(
    ("given_scopes", "expected"),
    [
        ("a b c", ("a", "b", "c")),
        ("  a\tb\n c  ", ("a", "b", "c")),
        (["a b", "c"], ("a", "b", "c")),
        (("b", "a", "b", "a"), ("b", "a")),
        (
            "User.Read https://graph.microsoft.com/User.Read User.Read",
            ("User.Read", "https://graph.microsoft.com/User.Read"),
        ),
        ("https://management.core.windows.net//.default", ("https://management.core.windows.net//.default",)),
    ],
)
def test_splitting_and_dedupe_keep_order(given_scopes: Any, expected: Tuple[str, ...]) -> None:
    assert normalize_scopes(given_scopes) == expected


def test_offline_access_adds_oidc_scopes_once() -> None:
    assert OIDC_SCOPES == ("offline_access", "openid", "profile")
    assert normalize_scopes(None, offline_access=True) == (DATABRICKS_SCOPE, "offline_access", "openid", "profile")
    assert normalize_scopes("openid a offline_access", offline_access=True) == (
        "openid",
        "a",
        "offline_access",
        "profile",
    )
    scopes = normalize_scopes("a profile openid offline_access", offline_access=True)
    assert sorted(scopes) == sorted(set(scopes))
    assert normalize_scopes("a", offline_access=False) == ("a",)


@pytest.mark.parametrize("bad", ['a"b', "a\\b", "a\x01b", "a\x7fb", "\u00e9", "a\x00"])
def test_bad_scope_characters(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalize_scopes(bad)
    with pytest.raises(ConfigError):
        normalize_scopes(["ok", bad])


@pytest.mark.parametrize("empty", ["", "   ", [], [""], ["  "]])
def test_no_scopes_refused(empty: Any) -> None:
    with pytest.raises(ConfigError):
        normalize_scopes(empty)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcdefgh./:-_", min_size=1, max_size=8), min_size=1, max_size=10))
def test_normalize_scopes_property(items: List[str]) -> None:
    result = normalize_scopes(items)
    assert len(result) == len(set(result))
    assert list(result) == list(dict.fromkeys(items))
    with_oidc = normalize_scopes(items, offline_access=True)
    assert with_oidc[: len(result)] == result
    assert set(OIDC_SCOPES) <= set(with_oidc)
    assert len(with_oidc) == len(set(with_oidc))


# --- parse_token_response: success -----------------------------------------------------------


def test_success_with_numbers() -> None:
    tokens = parse(response(200, body_with(expires_in=3600, ext_expires_in=7200, refresh_in=1800)))
    assert tokens.expires_at == RECEIVED_AT + 3600
    assert tokens.ext_expires_at == RECEIVED_AT + 7200
    assert tokens.refresh_at == RECEIVED_AT + 1800
    assert tokens.token_type == "Bearer"
    assert tokens.expires_in(now=RECEIVED_AT + 600) == 3000
    assert tokens.expires_in(now=RECEIVED_AT + 4000) == -400
    assert tokens.raw["expires_in"] == 3600


def test_expires_in_as_numeric_string() -> None:
    tokens = parse(response(200, body_with(expires_in="4432", ext_expires_in="5000", refresh_in=None)))
    assert tokens.expires_at == RECEIVED_AT + 4432
    assert tokens.ext_expires_at == RECEIVED_AT + 5000
    assert tokens.refresh_at is None


def test_optional_expiries_absent() -> None:
    tokens = parse(response(200, body_with(ext_expires_in=None, refresh_in=None)))
    assert tokens.ext_expires_at is None
    assert tokens.refresh_at is None


def test_missing_expires_in_falls_back_to_jwt_exp() -> None:
    access_token = mint_jwt({"aud": "api://x", "exp": 1795603333, "iat": 1795599700})
    tokens = parse(response(200, body_with(access_token=access_token, expires_in=None)))
    assert tokens.expires_at == 1795603333.0
    assert tokens.claims is not None and tokens.claims["aud"] == "api://x"


def test_missing_expires_in_with_opaque_token() -> None:
    with pytest.raises(ResponseFormatError, match="expires_in"):
        parse(response(200, body_with(access_token="EwBwA8l6BAAUopaque", expires_in=None)))


def test_missing_expires_in_and_jwt_without_exp() -> None:
    with pytest.raises(ResponseFormatError):
        parse(response(200, body_with(access_token=mint_jwt({"aud": "api://x"}), expires_in=None)))


@pytest.mark.parametrize("exp", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_jwt_exp_never_gives_an_unusable_token_set(exp: str) -> None:
    # Python's json accepts NaN/Infinity; a TokenSet must still answer expires_in() (or be refused).
    access_token = RS256_HEADER + "." + b64url(('{"exp":' + exp + "}").encode()) + ".sig"
    try:
        tokens = parse(response(200, body_with(access_token=access_token, expires_in=None)))
    except ResponseFormatError:
        return
    assert isinstance(tokens.expires_in(now=RECEIVED_AT), int)


def test_missing_access_token() -> None:
    with pytest.raises(ResponseFormatError, match="access_token"):
        parse(response(200, body_with(access_token=None)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("access_token", 12),
        ("access_token", ""),
        ("access_token", ["eyJ"]),
        ("token_type", 1),
        ("refresh_token", 5),
        ("refresh_token", {"x": 1}),
        ("id_token", True),
        ("expires_in", -1),
        ("expires_in", True),
        ("expires_in", False),
        ("expires_in", "soon"),
        ("expires_in", "-5"),
        ("expires_in", "1.5e3"),
        ("expires_in", [3600]),
        ("expires_in", 10**9),
        ("expires_in", 1e300),
        ("ext_expires_in", -3),
        ("ext_expires_in", "x"),
        ("refresh_in", True),
    ],
)
def test_bad_fields(field: str, value: Any) -> None:
    with pytest.raises(ResponseFormatError) as info:
        parse(response(200, body_with(**{field: value})))
    assert info.value.status == 200


def test_bad_field_error_hides_the_value() -> None:
    with pytest.raises(ResponseFormatError) as info:
        parse(response(200, body_with(refresh_token=["0.AXkA-SECRET-REFRESH"])))
    assert "SECRET" not in str(info.value)


def test_non_finite_expires_in_refused() -> None:
    body = token_response_body().replace('"expires_in":4432', '"expires_in":NaN')
    assert "NaN" in body
    with pytest.raises(ResponseFormatError):
        parse(response(200, body))


def test_float_expires_in_accepted() -> None:
    assert parse(response(200, body_with(expires_in=3599.5))).expires_at == RECEIVED_AT + 3599.5


def test_opaque_access_token_has_no_claims() -> None:
    tokens = parse(recorded("success-opaque-access-token"))
    assert tokens.claims is None
    assert tokens.access_token.startswith("EwB")


def test_jwt_access_token_claims() -> None:
    tokens = parse(recorded("success-authorization-code"))
    assert isinstance(tokens.claims, dict)
    assert tokens.claims["aud"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
    assert tokens.id_token_claims is not None
    assert tokens.id_token_claims["tid"] == TENANT


def test_encrypted_or_broken_access_token_is_opaque() -> None:
    for token in ("a.b.c.d.e", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.sig", "x.y"):
        tokens = parse(response(200, body_with(access_token=token)))
        assert tokens.claims is None
        assert tokens.access_token == token


def test_deeply_nested_access_token_is_opaque_not_a_crash() -> None:
    nested = b64url(b"[" * 20000 + b"]" * 20000)
    token = f"{RS256_HEADER}.{nested}.sig"
    tokens = parse(response(200, body_with(access_token=token)))
    assert tokens.claims is None


def test_scopes_echoed_or_requested() -> None:
    echoed = parse(response(200, body_with(scope="b a  c")), requested=("x",))
    assert echoed.scopes == ("b", "a", "c")
    for scope in (None, "", "   ", 12):
        fallback = parse(response(200, body_with(scope=scope)), requested=("x", "y"))
        assert fallback.scopes == ("x", "y")


def test_token_type_defaults_to_bearer() -> None:
    assert parse(response(200, body_with(token_type=None))).token_type == "Bearer"
    assert parse(response(200, body_with(token_type="pop"))).token_type == "pop"


def test_raw_is_the_body() -> None:
    body = body_with(foci="1")
    tokens = parse(response(200, body))
    assert dict(tokens.raw) == body


def test_token_set_repr_and_str_hide_tokens() -> None:
    tokens = parse(recorded("success-password"))
    assert tokens.refresh_token and tokens.id_token
    for text in (repr(tokens), str(tokens), f"{tokens}", format(tokens), "%s" % tokens):  # noqa: UP031
        assert tokens.access_token not in text
        assert tokens.refresh_token not in text
        assert tokens.id_token not in text
        assert tokens.access_token[:40] not in text
        assert tokens.refresh_token[:20] not in text
        assert "<redacted>" in text
    bare = parse(recorded("success-client-credentials"))
    assert "refresh_token=None" in repr(bare)


def test_id_token_claims_absent_without_id_token() -> None:
    assert parse(recorded("success-client-credentials")).id_token_claims is None


# --- parse_token_response: errors ------------------------------------------------------------


def test_200_with_error_body() -> None:
    with pytest.raises(OAuthError) as info:
        parse(response(200, {"error": "invalid_grant", "error_description": "AADSTS70008: expired."}))
    assert type(info.value) is InvalidGrant
    assert info.value.status == 200
    assert info.value.error_codes == (70008,)


def test_4xx_error_with_all_fields() -> None:
    body = {
        "error": "invalid_grant",
        "error_description": "AADSTS50076: MFA. Trace ID: t Correlation ID: c Timestamp: ts",
        "error_codes": [50076],
        "timestamp": "2026-11-25 09:49:17Z",
        "trace_id": "cccccccc-0000-0000-0000-f45a9efcba00",
        "correlation_id": "dddddddd-0000-0000-0000-15949d0f4b3a",
        "error_uri": "https://login.microsoftonline.com/error?code=50076",
        "suberror": "basic_action",
        "claims": '{"access_token":{"capolids":{"essential":true}}}',
    }
    with pytest.raises(InteractionRequired) as info:
        parse(response(400, body))
    exc = info.value
    assert exc.error == "invalid_grant"
    assert exc.error_description == body["error_description"]
    assert exc.error_codes == (50076,)
    assert exc.suberror == "basic_action"
    assert exc.trace_id == body["trace_id"]
    assert exc.correlation_id == body["correlation_id"]
    assert exc.timestamp == body["timestamp"]
    assert exc.error_uri == body["error_uri"]
    assert exc.claims == body["claims"]
    assert exc.status == 400


def test_5xx_json_error_is_an_oauth_error() -> None:
    with pytest.raises(ServerError) as info:
        parse(recorded("server-error-500-json"))
    assert info.value.status == 500


JWT_IN_PAGE = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciIsImF1ZCI6ImFwaTovL3gifQ."
    "c2lnbmF0dXJlLWJ5dGVzLXNpZ25hdHVyZS1ieXRlcy1zaWduYXR1cmU"
)
OPAQUE_IN_PAGE = ("0.AXkA" + "Zq9-Xy_7" * 25)[:200]


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (400, "", JSON_HEADERS),
        (400, "   \n", JSON_HEADERS),
        (400, "Bad Request", (("content-type", "text/plain"),)),
        (400, "[1, 2]", JSON_HEADERS),
        (400, '"invalid_grant"', JSON_HEADERS),
        (400, "null", JSON_HEADERS),
        (401, '{"message": "no"}', JSON_HEADERS),
        (400, '{"error": 5}', JSON_HEADERS),
        (
            404,
            f"<html><title>Not Found</title><body>{JWT_IN_PAGE} {OPAQUE_IN_PAGE}</body></html>",
            (("content-type", "text/html"),),
        ),
        (200, f"<!DOCTYPE html><html><title>Sign in to Wi-Fi</title>{JWT_IN_PAGE}<p>{OPAQUE_IN_PAGE}</p></html>", ()),
        (200, "", JSON_HEADERS),
        (200, "[]", JSON_HEADERS),
        (200, '{"access_token": "abc", ', JSON_HEADERS),
        (502, f"<html><body>Bad gateway {OPAQUE_IN_PAGE} ref {JWT_IN_PAGE}</body></html>", ()),
        (200, b"\xff\xfe\x00garbage", ()),
        (400, b"[" * 100000, JSON_HEADERS),
    ],
)
def test_not_entra_responses(status: int, body: Any, headers: Tuple[Tuple[str, str], ...]) -> None:
    with pytest.raises(ResponseFormatError) as info:
        parse(response(status, body, headers))
    exc = info.value
    assert exc.status == status
    assert len(exc.snippet) <= 160
    assert len(str(exc)) <= 200
    for secret in (JWT_IN_PAGE, OPAQUE_IN_PAGE):
        assert secret[:40] not in exc.snippet
        assert secret[-30:] not in exc.snippet
        assert secret[:40] not in str(exc)
    assert not re.search(r"[A-Za-z0-9_-]{32,}", exc.snippet)


def test_html_snippet_keeps_the_title() -> None:
    body = f"<html><head><title>Contoso Gateway</title></head><body>{JWT_IN_PAGE}</body></html>"
    with pytest.raises(ResponseFormatError) as info:
        parse(response(502, body, (("content-type", "text/html"),)))
    assert "Contoso Gateway" in info.value.snippet
    assert "[redacted]" in info.value.snippet
    assert "HTML" in str(info.value)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_statuses(status: int) -> None:
    resp = response(status, "", (("location", "https://attacker.example/"),))
    with pytest.raises(ResponseFormatError, match="redirect") as info:
        parse(resp)
    assert info.value.status == status


@pytest.mark.parametrize("status", [100, 201, 204, 206])
def test_other_non_200_success_statuses(status: int) -> None:
    with pytest.raises(ResponseFormatError) as info:
        parse(response(status, body_with()))
    assert info.value.status == status
    assert "redirect" not in str(info.value)


def test_redacted_snippet_directly() -> None:
    text = redacted_snippet(f"token={JWT_IN_PAGE}&rt={OPAQUE_IN_PAGE}".encode())
    assert JWT_IN_PAGE[:20] not in text
    assert OPAQUE_IN_PAGE[:32] not in text
    assert text.count("[redacted]") >= 2
    assert redacted_snippet(b"word " * 1000, limit=50).endswith("...")
    assert len(redacted_snippet(b"word " * 1000, limit=50)) == 50
    assert redacted_snippet(b"x" * 10000) == "[redacted]"
    assert len(redacted_snippet(b"short words " * 1000)) <= 160
    assert redacted_snippet(b"a\x00b\x1b[31mc\r\nd") == "a b [31mc d"


def test_parse_json_object() -> None:
    assert parse_json_object(response(200, {"a": 1})) == {"a": 1}
    with pytest.raises(ResponseFormatError):
        parse_json_object(response(200, [1]))


# --- recorded fixtures -----------------------------------------------------------------------


ERROR_FIXTURES = response_names("error-")
SUCCESS_FIXTURES = response_names("success-")
NON_ENTRA_FIXTURES = [
    name
    for name in response_names()
    if load_response(name).get("expect", {}).get("kind") in ("html", "empty", "truncated", "not_json")
]


def test_fixture_sets_are_not_empty() -> None:
    assert len(ERROR_FIXTURES) >= 30
    assert len(SUCCESS_FIXTURES) >= 6
    assert len(NON_ENTRA_FIXTURES) >= 5


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_error_fixtures(name: str) -> None:
    expect = load_response(name)["expect"]
    with pytest.raises(OAuthError) as info:
        parse(recorded(name))
    exc = info.value
    assert type(exc).__name__ == expect["exception"]
    assert list(exc.error_codes) == expect["error_codes"]
    assert exc.status == expect["status"]
    assert exc.error == expect["error"]
    assert exc.trace_id and exc.trace_id not in str(exc)
    assert len(str(exc)) <= 500


@pytest.mark.parametrize("name", SUCCESS_FIXTURES)
def test_success_fixtures(name: str) -> None:
    expect = load_response(name)["expect"]
    tokens = parse(recorded(name))
    assert tokens.expires_at == RECEIVED_AT + expect["expires_in"]
    assert tokens.expires_in(now=RECEIVED_AT) == expect["expires_in"]
    assert (tokens.refresh_token is not None) is expect["has_refresh_token"]
    assert (tokens.id_token is not None) is expect["has_id_token"]
    assert list(tokens.scopes) == expect["scopes"]
    assert tokens.access_token not in repr(tokens)


@pytest.mark.parametrize("name", NON_ENTRA_FIXTURES)
def test_non_entra_fixtures(name: str) -> None:
    resp = recorded(name)
    with pytest.raises(ResponseFormatError) as info:
        parse(resp)
    assert info.value.status == resp.status
    assert len(info.value.snippet) <= 160
    assert not re.search(r"[A-Za-z0-9_-]{32,}", info.value.snippet)


@pytest.mark.parametrize("name", ["throttled-429-text", "unavailable-503"])
def test_plain_text_transient_fixtures(name: str) -> None:
    resp = recorded(name)
    with pytest.raises(ResponseFormatError) as info:
        parse(resp)
    assert info.value.status == resp.status
    assert info.value.snippet == resp.body.decode()


# --- token_flow ------------------------------------------------------------------------------


def test_token_flow_by_hand() -> None:
    request = build_token_request(AUTHORITY, CLIENT_ID, refresh_token_grant("rt"), scopes=["a", "b"])
    flow = token_flow(request, clock=lambda: 1000.0)
    assert next(flow) is request
    with pytest.raises(StopIteration) as stop:
        flow.send(response(200, body_with(scope=None, expires_in=60)))
    tokens = stop.value.value
    assert isinstance(tokens, TokenSet)
    assert tokens.expires_at == 1060.0
    assert tokens.scopes == ("a", "b")


def test_token_flow_raises_the_oauth_error() -> None:
    request = build_token_request(AUTHORITY, CLIENT_ID, refresh_token_grant("rt"), scopes=["a"])
    flow = token_flow(request, clock=lambda: 1000.0)
    next(flow)
    with pytest.raises(InvalidGrant):
        flow.send(recorded("error-700082"))


# --- JWKS ------------------------------------------------------------------------------------


def test_parse_jwks_fixture() -> None:
    document = jwks()
    parsed = parse_jwks_response(response(200, document))
    assert parsed == document
    assert [k["kid"] for k in parsed["keys"]] == ["J0jZvrdlukXQUCSKNgWi2fatGsI", "FgVVTjVNIRn3eblOtKkBiLUXyBQ"]
    recorded_keys = parse_jwks_response(recorded("jwks"))
    assert [k["kid"] for k in recorded_keys["keys"]] == load_response("jwks")["expect"]["kids"]


@pytest.mark.parametrize(
    "body", [{}, {"keys": None}, {"keys": {"kid": "x"}}, {"keys": "x"}, {"keys": [1, 2]}, {"keys": [{"kid": "x"}, "y"]}]
)
def test_parse_jwks_rejects_bodies_without_a_keys_list(body: Dict[str, Any]) -> None:
    with pytest.raises(ResponseFormatError):
        parse_jwks_response(response(200, body))


@pytest.mark.parametrize("body", ["[]", "", "<html><title>x</title></html>", "not json"])
def test_parse_jwks_rejects_non_objects(body: str) -> None:
    with pytest.raises(ResponseFormatError):
        parse_jwks_response(response(200, body))


def test_parse_jwks_error_body() -> None:
    with pytest.raises(OAuthError) as info:
        parse_jwks_response(recorded("error-90002-discovery"))
    assert type(info.value).__name__ == "InvalidTenant"


def test_empty_keys_list_is_a_jwks() -> None:
    assert parse_jwks_response(response(200, {"keys": []})) == {"keys": []}


def test_http_response_header_lookup() -> None:
    resp = HttpResponse(200, (("retry-after", "5"), ("content-type", "text/plain")), b"x")
    assert resp.header("Retry-After") == "5"
    assert resp.header("missing") is None
    assert "eyJsecret" not in repr(HttpResponse(200, (), b"eyJsecret"))
