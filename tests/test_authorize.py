"""The authorization code flow: authorize URL, pending request, redirect parsing, code exchange."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from fixturelib import CLIENT_ID, NONCE, STATE, TENANT_ID, load_redirects, load_response, mint_jwt, token_response_body
from hypothesis import given, settings, strategies as st

from oauth_core.cli.exit_codes import exit_code_for
from oauth_core.core.authority import Authority
from oauth_core.core.authorize import (
    MAX_REDIRECT_LENGTH,
    PendingAuthorization,
    build_authorization_request,
    check_redirect_uri,
    exchange_code_flow,
    parse_redirect,
    redirect_state,
)
from oauth_core.core.errors import (
    AccessDenied,
    ConfigError,
    InteractionRequired,
    InvalidGrant,
    NonceMismatch,
    OAuthError,
    RedirectError,
    ServerError,
    StateMismatch,
)
from oauth_core.core.pkce import code_challenge
from oauth_core.core.protocol import HttpRequest, HttpResponse, TokenSet

AUTHORITY = Authority.of(None, TENANT_ID)
AUTHORIZE_URL = f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/authorize"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
SCOPES = ("2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/user_impersonation", "offline_access", "openid", "profile")
REDIRECTS = load_redirects()


def pending(
    redirect_uri: str = "http://localhost",
    state: str = STATE,
    nonce: str = NONCE,
    scopes: Tuple[str, ...] = SCOPES,
    **kwargs: Any,
) -> PendingAuthorization:
    return build_authorization_request(
        AUTHORITY, CLIENT_ID, redirect_uri, scopes, state=state, nonce=nonce, code_verifier=VERIFIER, **kwargs
    )


def query_pairs(url: str) -> List[Tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- the authorize URL -----------------------------------------------------------------------


def test_authorize_url_exact_parameters() -> None:
    request = pending(now=1234.5)
    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AUTHORIZE_URL
    assert parts.fragment == ""
    assert query_pairs(request.url) == [
        ("client_id", CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", "http://localhost"),
        ("response_mode", "query"),
        ("scope", " ".join(SCOPES)),
        ("state", STATE),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("nonce", NONCE),
    ]
    assert request.created_at == 1234.5
    assert request.scopes == SCOPES
    assert request.code_verifier == VERIFIER
    assert (request.authority_host, request.tenant) == ("https://login.microsoftonline.com", TENANT_ID)
    assert request.authority == AUTHORITY


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"prompt": "select_account"}, [("prompt", "select_account")]),
        ({"login_hint": "someone@contoso.com"}, [("login_hint", "someone@contoso.com")]),
        ({"domain_hint": "contoso.com"}, [("domain_hint", "contoso.com")]),
        (
            {"prompt": "login", "login_hint": "a@b.c", "domain_hint": "b.c"},
            [("prompt", "login"), ("login_hint", "a@b.c"), ("domain_hint", "b.c")],
        ),
        ({"prompt": None, "login_hint": None, "domain_hint": None}, []),
        ({"login_hint": ""}, []),
    ],
)
def test_optional_parameters_only_when_given(extra: Dict[str, Any], expected: List[Tuple[str, str]]) -> None:
    pairs = query_pairs(pending(**extra).url)
    assert pairs[:9] == query_pairs(pending().url)
    assert pairs[9:] == expected


def test_every_value_is_percent_encoded_exactly_once() -> None:
    tricky = "a&b=c+d%e f/g?h#i"
    request = pending(
        redirect_uri="https://app.example/cb?x=1&y=2",
        state=tricky,
        nonce=tricky + "n",
        scopes=("api://x/read", "a&b"),
        login_hint="first last+tag@contoso.com",
        domain_hint=tricky,
    )
    decoded = dict(query_pairs(request.url))
    assert decoded["state"] == tricky
    assert decoded["nonce"] == tricky + "n"
    assert decoded["domain_hint"] == tricky
    assert decoded["login_hint"] == "first last+tag@contoso.com"
    assert decoded["redirect_uri"] == "https://app.example/cb?x=1&y=2"
    assert decoded["scope"] == "api://x/read a&b"
    query = urlsplit(request.url).query
    assert "d%25e" in query  # '%' encoded once ...
    assert "%2525" not in query  # ... not twice
    assert "+" not in query  # a literal '+' would decode as a space
    assert "#" not in request.url
    assert query.count("&") == 10  # 11 parameters
    # every separator is a real one: no raw '&' or '=' leaked out of a value
    assert all(pair.count("=") == 1 for pair in query.split("&"))


@settings(max_examples=200, deadline=None)
@given(
    state=st.text(min_size=1, max_size=40),
    nonce=st.text(min_size=1, max_size=40),
    hint=st.text(min_size=1, max_size=40),
)
def test_any_values_round_trip_through_the_url(state: str, nonce: str, hint: str) -> None:
    request = pending(state=state, nonce=nonce, login_hint=hint)
    decoded = dict(query_pairs(request.url))
    assert decoded["state"] == state
    assert decoded["nonce"] == nonce
    assert decoded["login_hint"] == hint
    assert request.url.isascii()


def test_fresh_secrets_by_default() -> None:
    first = build_authorization_request(AUTHORITY, CLIENT_ID, "http://localhost", ["openid"])
    second = build_authorization_request(AUTHORITY, CLIENT_ID, "http://localhost", ["openid"])
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier != second.code_verifier
    assert dict(query_pairs(first.url))["code_challenge"] == code_challenge(first.code_verifier)
    assert len(first.state) >= 22 and len(first.nonce) >= 22
    assert 43 <= len(first.code_verifier) <= 128


def test_bad_prompt_and_client_id() -> None:
    with pytest.raises(ConfigError):
        pending(prompt="always")
    with pytest.raises(ConfigError):
        build_authorization_request(AUTHORITY, "", "http://localhost", ["openid"])


def test_bad_verifier_refused() -> None:
    with pytest.raises(ConfigError):
        build_authorization_request(AUTHORITY, CLIENT_ID, "http://localhost", ["openid"], code_verifier="short")


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/callback",
        "https://app.example:8443/cb?x=1",
        "https://login.microsoftonline.com/common/oauth2/nativeclient",
        "http://localhost",
        "http://localhost:8400/callback",
        "http://127.0.0.1:53000",
        "http://[::1]:8400/",
    ],
)
def test_redirect_uri_accepted(uri: str) -> None:
    assert check_redirect_uri(uri) == uri
    assert pending(redirect_uri=uri).redirect_uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/callback",
        "http://localhost.attacker.example/",
        "http://10.0.0.5:8400/",
        "https://app.example/cb#frag",
        "http://localhost/#x",
        "https://user:pw@app.example/cb",
        "ms-app://s-1-15-2",
        "javascript:alert(1)",
        "/relative/path",
        "localhost:8400",
        "",
        "https://app.example:99999/cb",
    ],
)
def test_redirect_uri_refused(uri: str) -> None:
    with pytest.raises(ConfigError):
        check_redirect_uri(uri)
    with pytest.raises(ConfigError):
        pending(redirect_uri=uri)


# --- PendingAuthorization JSON ---------------------------------------------------------------


def test_json_round_trip() -> None:
    request = pending(now=1795600000.25)
    text = request.to_json()
    data = json.loads(text)
    assert data["version"] == 1
    assert data["scopes"] == list(SCOPES)
    restored = PendingAuthorization.from_json(text)
    assert restored == request
    assert isinstance(restored.scopes, tuple)


_NON_EMPTY = st.text(min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {
            name: _NON_EMPTY
            for name in (
                "authority_host",
                "tenant",
                "client_id",
                "redirect_uri",
                "state",
                "nonce",
                "code_verifier",
                "url",
            )
        }
    ),
    scopes=st.lists(st.text(max_size=20), max_size=5),
    created_at=st.one_of(st.integers(min_value=0, max_value=2**40), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_json_round_trip_property(fields: Dict[str, str], scopes: List[str], created_at: float) -> None:
    request = PendingAuthorization(scopes=tuple(scopes), created_at=created_at, **fields)
    restored = PendingAuthorization.from_json(request.to_json())
    assert restored == request
    assert restored.scopes == tuple(scopes)


def _valid_data() -> Dict[str, Any]:
    return json.loads(pending(now=1.0).to_json())  # type: ignore[no-any-return]


def _without(name: str) -> Dict[str, Any]:
    data = _valid_data()
    del data[name]
    return data


def _with(**changes: Any) -> Dict[str, Any]:
    return {**_valid_data(), **changes}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="not-json"),
        pytest.param("{", id="truncated"),
        pytest.param("[]", id="array"),
        pytest.param("null", id="null"),
        pytest.param('"text"', id="string"),
        pytest.param(json.dumps(_with(version=2)), id="version-2"),
        pytest.param(json.dumps(_with(version=0)), id="version-0"),
        pytest.param(json.dumps(_with(version="1")), id="version-string"),
        pytest.param(json.dumps(_with(version=True)), id="version-bool"),
        pytest.param(json.dumps(_without("version")), id="no-version"),
        pytest.param(json.dumps(_without("state")), id="no-state"),
        pytest.param(json.dumps(_without("code_verifier")), id="no-verifier"),
        pytest.param(json.dumps(_without("scopes")), id="no-scopes"),
        pytest.param(json.dumps(_without("created_at")), id="no-created-at"),
        pytest.param(json.dumps(_with(extra="x")), id="extra-field"),
        pytest.param(json.dumps(_with(nonce="")), id="empty-nonce"),
        pytest.param(json.dumps(_with(state=None)), id="null-state"),
        pytest.param(json.dumps(_with(client_id=123)), id="int-client-id"),
        pytest.param(json.dumps(_with(scopes="openid profile")), id="scopes-string"),
        pytest.param(json.dumps(_with(scopes=["openid", 5])), id="scopes-non-string"),
        pytest.param(json.dumps(_with(created_at="yesterday")), id="created-at-string"),
        pytest.param(json.dumps(_with(created_at=None)), id="created-at-null"),
        pytest.param(json.dumps(_with(created_at=True)), id="created-at-bool"),
        pytest.param("[" * 100000, id="deeply-nested"),
    ],
)
def test_from_json_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        PendingAuthorization.from_json(text)


def test_repr_hides_secrets() -> None:
    request = build_authorization_request(
        AUTHORITY,
        CLIENT_ID,
        "http://localhost",
        ["openid"],
        state="STATE-SECRET-1",
        nonce="NONCE-SECRET-2",
        code_verifier="V" * 20 + "VERIFIER-SECRET-3" * 2,
    )
    for text in (repr(request), str(request)):
        assert "SECRET" not in text
        assert CLIENT_ID in text
        assert "<redacted>" in text


# --- parse_redirect --------------------------------------------------------------------------

CODE = dict(query_pairs(REDIRECTS["success"].rstrip("#")))["code"]


def test_fixture_success_redirect_with_trailing_hash() -> None:
    assert REDIRECTS["success"].endswith("#")
    assert parse_redirect(pending(), REDIRECTS["success"]) == CODE
    assert redirect_state(REDIRECTS["success"]) == STATE


@pytest.mark.parametrize(
    "redirect",
    [
        f"http://localhost/?code={CODE}&state={STATE}",
        f"http://localhost/?code={CODE}&state={STATE}#",
        f"http://localhost?code={CODE}&state={STATE}",
        f"  http://localhost/?code={CODE}&state={STATE}&session_state=5df7e47f\n",
        f"code={CODE}&state={STATE}",
        f"?code={CODE}&state={STATE}",
        f"?code={CODE}&state={STATE}#",
        f"state={STATE}&code={CODE}&session_state=x",
        f"HTTP://LOCALHOST/?code={CODE}&state={STATE}",
    ],
)
def test_redirect_forms_accepted(redirect: str) -> None:
    assert parse_redirect(pending(), redirect) == CODE


def test_fragment_mode_paste_parses() -> None:
    assert parse_redirect(pending(), f"http://localhost/#code={CODE}&state={STATE}") == CODE


@pytest.mark.parametrize(
    ("redirect_uri", "redirect"),
    [
        ("http://localhost", "http://localhost:53123/?code=C&state=S"),
        ("http://localhost", "http://127.0.0.1:8400/?code=C&state=S"),
        ("http://localhost/cb", "http://localhost:1/cb?code=C&state=S"),
        ("http://127.0.0.1", "http://127.0.0.1:65535?code=C&state=S"),
        ("http://[::1]", "http://[::1]:8400/?code=C&state=S"),
        ("https://app.example/cb", "https://app.example:443/cb?code=C&state=S"),
        ("http://localhost:8400/", "http://localhost:8400/?code=C&state=S"),
    ],
)
def test_same_endpoint_accepted(redirect_uri: str, redirect: str) -> None:
    assert parse_redirect(pending(redirect_uri=redirect_uri, state="S"), redirect) == "C"


@pytest.mark.parametrize(
    ("redirect_uri", "redirect"),
    [
        ("http://localhost", REDIRECTS["other_host"]),
        ("http://localhost", "http://localhost/other?code=C&state=S"),
        ("http://localhost", "https://localhost/?code=C&state=S"),
        ("http://localhost", "http://localhost.attacker.example/?code=C&state=S"),
        ("http://localhost/cb", "http://localhost/cb/extra?code=C&state=S"),
        ("http://localhost:8400/", "http://localhost:8401/?code=C&state=S"),
        ("http://localhost:8400/", "http://localhost/?code=C&state=S"),
        ("https://app.example/cb", "https://app.example:8443/cb?code=C&state=S"),
        ("https://app.example/cb", "https://attacker.example/cb?code=C&state=S"),
        ("https://app.example/cb", "http://app.example/cb?code=C&state=S"),
        ("https://app.example/cb", "https://app.example.attacker.example/cb?code=C&state=S"),
    ],
)
def test_other_endpoint_refused(redirect_uri: str, redirect: str) -> None:
    with pytest.raises(RedirectError):
        parse_redirect(pending(redirect_uri=redirect_uri, state="S" if "state=S" in redirect else STATE), redirect)


def test_state_mismatch() -> None:
    with pytest.raises(StateMismatch) as info:
        parse_redirect(pending(state="expected-state"), REDIRECTS["success"])
    assert exit_code_for(info.value) == 4
    assert "expected-state" not in str(info.value)
    assert STATE not in str(info.value)


@pytest.mark.parametrize(
    "redirect",
    [
        REDIRECTS["missing_state"],
        f"code={CODE}",
        f"code={CODE}&State={STATE}",
        f"code={CODE}&state=",
        f"code={CODE}&state={STATE}x",
        f"code={CODE}&state={STATE[:-1]}",
    ],
)
def test_missing_or_wrong_state(redirect: str) -> None:
    with pytest.raises(StateMismatch) as info:
        parse_redirect(pending(), redirect)
    assert exit_code_for(info.value) == 4


@pytest.mark.parametrize("name", ["duplicate_state", "duplicate_code"])
def test_duplicated_parameters(name: str) -> None:
    with pytest.raises(RedirectError, match="repeats"):
        parse_redirect(pending(), REDIRECTS[name])


@pytest.mark.parametrize(
    "redirect",
    [
        REDIRECTS["missing_code"],
        f"state={STATE}",
        f"state={STATE}&code=",
        f"state={STATE}&Code=abc",
    ],
)
def test_missing_code(redirect: str) -> None:
    with pytest.raises(RedirectError, match="code"):
        parse_redirect(pending(), redirect)


@pytest.mark.parametrize(
    "redirect",
    [
        "",
        "   ",
        "#",
        f"code=C&state={STATE}&junk",
        "http://localhost:port/?code=C",
        "http://localhost/?" + "a" * MAX_REDIRECT_LENGTH,
    ],
)
def test_malformed_redirects(redirect: str) -> None:
    with pytest.raises((RedirectError, StateMismatch)):
        parse_redirect(pending(), redirect)


def test_malformed_is_redirect_error_not_state() -> None:
    with pytest.raises(RedirectError):
        parse_redirect(pending(), "")
    with pytest.raises(RedirectError):
        parse_redirect(pending(), "http://localhost/?" + "a" * MAX_REDIRECT_LENGTH)
    with pytest.raises(RedirectError):
        parse_redirect(pending(), f"code=C&state={STATE}&junk")


def test_injected_access_token_is_ignored() -> None:
    assert parse_redirect(pending(), REDIRECTS["injected_access_token"]) == CODE


@pytest.mark.parametrize(
    ("name", "error", "cls"),
    [("error_consent", "consent_required", AccessDenied), ("error_access_denied", "access_denied", AccessDenied)],
)
def test_fixture_error_redirects(name: str, error: str, cls: type) -> None:
    with pytest.raises(OAuthError) as info:
        parse_redirect(pending(), REDIRECTS[name])
    exc = info.value
    assert type(exc) is cls
    assert exc.error == error
    assert exc.error_codes == (65004,)  # parsed out of the form-encoded error_description
    assert exc.error_description.startswith("AADSTS65004: ")
    assert "\r\nTrace ID: " in exc.error_description  # %0d%0a decoded once
    assert "Trace ID" not in str(exc)
    assert "+" not in str(exc)
    assert exc.status is None
    assert exc.trace_id is None


def test_error_redirect_carries_only_error_fields() -> None:
    jwt_like = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhdHRhY2tlciJ9."
    query = urlencode(
        {
            "error": "interaction_required",
            "error_description": "AADSTS50076: MFA needed.\r\nTrace ID: t\r\nCorrelation ID: c",
            "error_uri": "https://login.microsoftonline.com/error?code=50076",
            "state": STATE,
            "access_token": jwt_like,
            "id_token": jwt_like,
            "code": "injected-code",
            "trace_id": "attacker-trace",
            "correlation_id": "attacker-correlation",
            "suberror": "attacker-suberror",
            "claims": '{"attacker": true}',
            "error_codes": "50126",
            "timestamp": "attacker-time",
        }
    )
    with pytest.raises(InteractionRequired) as info:
        parse_redirect(pending(), f"http://localhost/?{query}")
    exc = info.value
    assert exc.error == "interaction_required"
    assert exc.error_codes == (50076,)
    assert exc.error_uri == "https://login.microsoftonline.com/error?code=50076"
    assert exc.trace_id is None
    assert exc.correlation_id is None
    assert exc.suberror is None
    assert exc.claims is None
    assert exc.timestamp is None
    carried = json.dumps({k: str(v) for k, v in vars(exc).items()}) + str(exc) + json.dumps(exc.to_dict())
    for injected in (jwt_like, "injected-code", "attacker"):
        assert injected not in carried


def test_error_redirect_with_wrong_state_is_a_state_mismatch() -> None:
    with pytest.raises(StateMismatch):
        parse_redirect(pending(state="another"), REDIRECTS["error_access_denied"])


@pytest.mark.parametrize(
    ("error", "cls"),
    [("server_error", ServerError), ("temporarily_unavailable", ServerError), ("login_required", InteractionRequired)],
)
def test_error_value_mapping_in_redirects(error: str, cls: type) -> None:
    with pytest.raises(OAuthError) as info:
        parse_redirect(pending(), f"error={error}&state={STATE}")
    assert type(info.value) is cls


def test_error_wins_over_code() -> None:
    with pytest.raises(AccessDenied):
        parse_redirect(pending(), f"code=C&error=access_denied&state={STATE}")


@settings(max_examples=200, deadline=None)
@given(code=st.text(min_size=1, max_size=80), state=st.text(min_size=1, max_size=60), full=st.booleans())
def test_redirect_round_trip(code: str, state: str, full: bool) -> None:
    request = pending(state=state)
    query = urlencode({"code": code, "state": state, "session_state": "5df7e47f"})
    redirect = f"http://localhost:8400/?{query}#" if full else query
    assert parse_redirect(request, redirect) == code
    assert redirect_state(redirect) == state


# --- exchange_code_flow ----------------------------------------------------------------------


def _id_token(**claims: Any) -> str:
    base = {
        "aud": CLIENT_ID,
        "iss": f"https://login.microsoftonline.com/{TENANT_ID}/v2.0",
        "iat": 1795599700,
        "nbf": 1795599700,
        "exp": 1795603600,
        "tid": TENANT_ID,
    }
    base.update(claims)
    return mint_jwt({k: v for k, v in base.items() if v is not None}, header={"x5t": None})


def _token_response(id_token: Optional[str]) -> HttpResponse:
    body = token_response_body(id_token=id_token) if id_token else token_response_body(id_token=None)
    return HttpResponse(200, (("content-type", "application/json"),), body.encode())


def _start(request: PendingAuthorization, **kwargs: Any) -> Tuple[Any, HttpRequest]:
    flow = exchange_code_flow(request, "the-code", **kwargs)
    return flow, next(flow)


def test_exchange_request() -> None:
    flow, request = _start(pending())
    assert request.method == "POST"
    assert request.url == TOKEN_URL
    assert request.single_use is True
    assert list(request.form) == [
        ("client_id", CLIENT_ID),
        ("grant_type", "authorization_code"),
        ("code", "the-code"),
        ("redirect_uri", "http://localhost"),
        ("code_verifier", VERIFIER),
        ("scope", " ".join(SCOPES)),
        ("client_info", "1"),
    ]
    assert "the-code" not in repr(request)
    assert VERIFIER not in repr(request)
    flow.close()


def test_exchange_with_secret_and_headers() -> None:
    flow, request = _start(pending(), client_secret="s3cret", headers=(("client-request-id", "rid"),))
    assert request.form[-1] == ("client_secret", "s3cret")
    assert ("client-request-id", "rid") in request.headers
    flow.close()


def test_exchange_success_with_matching_nonce() -> None:
    flow, _request = _start(pending())
    with pytest.raises(StopIteration) as stop:
        flow.send(_token_response(_id_token(nonce=NONCE)))
    tokens = stop.value.value
    assert isinstance(tokens, TokenSet)
    assert tokens.id_token_claims is not None
    assert tokens.id_token_claims["nonce"] == NONCE
    assert tokens.refresh_token


def test_exchange_dates_the_tokens_by_the_given_clock() -> None:
    response = _token_response(_id_token(nonce=NONCE))
    flow, _request = _start(pending(), clock=lambda: 1000.0)
    with pytest.raises(StopIteration) as stop:
        flow.send(response)
    assert stop.value.value.expires_at == 1000.0 + float(json.loads(response.body)["expires_in"])


def test_exchange_with_the_recorded_success_response() -> None:
    record = load_response("success-authorization-code")
    flow, _request = _start(pending())
    response = HttpResponse(record["status"], (), record["body"].encode())
    with pytest.raises(StopIteration) as stop:
        flow.send(response)
    assert stop.value.value.scopes == tuple(record["expect"]["scopes"])


@pytest.mark.parametrize("nonce", ["another-nonce", NONCE + "x", NONCE.upper(), "", None, 12, [NONCE]])
def test_exchange_nonce_mismatch(nonce: Any) -> None:
    flow, _request = _start(pending())
    with pytest.raises(NonceMismatch) as info:
        flow.send(_token_response(_id_token(nonce=nonce)))
    assert exit_code_for(info.value) == 4
    assert NONCE not in str(info.value)


def test_exchange_nonce_check_uses_the_pending_nonce() -> None:
    flow, _request = _start(pending(nonce="my-own-nonce"))
    with pytest.raises(NonceMismatch):
        flow.send(_token_response(_id_token(nonce=NONCE)))
    flow, _request = _start(pending(nonce="my-own-nonce"))
    with pytest.raises(StopIteration):
        flow.send(_token_response(_id_token(nonce="my-own-nonce")))


def test_exchange_unsigned_id_token_nonce_is_still_compared() -> None:
    header = b64url(b'{"alg":"RS256","typ":"JWT"}')
    forged = f"{header}.{b64url(json.dumps({'nonce': 'attacker'}).encode())}.sig"
    flow, _request = _start(pending())
    with pytest.raises(NonceMismatch):
        flow.send(_token_response(forged))


def test_exchange_error_response() -> None:
    record = load_response("error-54005")
    flow, _request = _start(pending())
    with pytest.raises(InvalidGrant) as info:
        flow.send(HttpResponse(record["status"], (), record["body"].encode()))
    assert info.value.error_codes == (54005,)
