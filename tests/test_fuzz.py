"""Property-based fuzzing of every parser that sees outside data.

Each property feeds adversarial input to one parser and accepts exactly two outcomes: a valid
value, or an exception from oauth_core's own tree (:class:`OAuthCoreError`). Any other exception
(KeyError, TypeError, RecursionError, UnicodeError, OverflowError ...) fails, and so does a hang
(every call runs under a 5 s alarm). What is read from the network is bounded: a 100 MB body is
refused after about 1 MiB, through respx and through a real socket.

Parsers covered: token responses (and error bodies inside them), ``oauth_error_from_body``, JWKS,
JSON objects (the discovery document has no dedicated parser: ``parse_json_object`` is what any
such document goes through), device code responses and the whole device flow, redirect URLs and
query strings, pending requests (``PendingAuthorization.from_json``), JWTs (unverified and
verified), ``Retry-After``, ``WWW-Authenticate`` challenges, token cache files, and the HTTP layer
(content-encoding lies, gzip bombs).

Profiles (``tests/hypothesis_profiles.py``): ``HYPOTHESIS_PROFILE=ci`` (default, derandomized, 200
examples per property) or ``long`` (10,000 random examples per property).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import json
import math
import random
import signal
import socket
import tempfile
import threading
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar, Union

import httpx
import pytest
import respx
from hypothesis import HealthCheck, example, given, strategies as st
from hypothesis_profiles import fuzz_settings

from oauth_core.cli import main
from oauth_core.core.authority import Authority
from oauth_core.core.authorize import (
    PendingAuthorization,
    build_authorization_request,
    exchange_code_flow,
    parse_redirect,
    redirect_state,
)
from oauth_core.core.claims import inspect_token, unverified_claims, unverified_header, verify_signature
from oauth_core.core.device import (
    DeviceCode,
    Wait,
    build_device_code_request,
    device_code_flow,
    parse_device_code_response,
)
from oauth_core.core.errors import (
    OAuthCoreError,
    OAuthError,
    ResponseFormatError,
    SignatureVerificationError,
    TokenDecodeError,
    oauth_error_from_body,
)
from oauth_core.core.protocol import (
    HttpRequest,
    HttpResponse,
    TokenSet,
    build_token_request,
    parse_json_object,
    parse_jwks_response,
    parse_token_response,
)
from oauth_core.drivers.aio import AsyncEntraClient
from oauth_core.drivers.retry import RetryPolicy, is_retryable_response, retry_after_seconds
from oauth_core.drivers.stores import (
    CacheScope,
    FileTokenCache,
    accounts,
    entries,
    find_access_token,
    find_refresh_token,
    remove_account,
    resolve_account,
    store,
)
from oauth_core.drivers.sync import EntraClient
from oauth_core.integrations.httpx_auth import EntraAuth, bearer_challenge

# These tests mock only the token endpoint: the user realm lookup is tested in test_wstrust.py.
pytestmark = pytest.mark.usefixtures("no_realm_discovery")

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
HOST = "https://login.microsoftonline.com"
TOKEN_URL = f"{HOST}/{TENANT}/oauth2/v2.0/token"
DEVICE_URL = f"{HOST}/{TENANT}/oauth2/v2.0/devicecode"
API_URL = "https://adb-1.2.azuredatabricks.net/api/2.0/clusters/list"
DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
NOW = 1_800_000_000.0
MIB = 1024 * 1024
T = TypeVar("T")


# -- the one rule: a valid value or an OAuthCoreError, never a hang ----------------------------------


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code can swallow it."""


@contextlib.contextmanager
def no_hang(seconds: float = 5.0) -> Iterator[None]:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def typed(call: Callable[[], T], what: str = "") -> Union[T, OAuthCoreError]:
    """``call()``'s value, or the OAuthCoreError it raised; any other exception fails the example."""
    with no_hang():
        try:
            return call()
        except OAuthCoreError as exc:
            assert isinstance(str(exc), str) and isinstance(repr(exc), str)
            return exc
        except Exception as exc:
            raise AssertionError(
                f"{what or getattr(call, '__name__', 'call')} raised {type(exc).__name__} "
                f"(not an OAuthCoreError): {str(exc)[:200]}"
            ) from exc


# -- JSON with the values json.dumps cannot write ------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON literal spliced in as is (huge numbers, NaN, lone surrogates, deep nesting)."""

    name: str
    text: str

    def __repr__(self) -> str:
        return f"Raw.{self.name}"


RAW = {
    raw.name: raw
    for raw in (
        Raw("huge_int", "1" + "0" * 400),  # an int too large for a float
        Raw("huge_negative_int", "-1" + "0" * 400),
        Raw("int_5000_digits", "9" * 5000),  # beyond Python's int-string conversion limit
        Raw("float_overflow", "1e400"),  # a float literal that overflows to inf
        Raw("float_negative_overflow", "-1e400"),
        Raw("float_underflow", "1e-400"),
        Raw("nan", "NaN"),
        Raw("infinity", "Infinity"),
        Raw("negative_infinity", "-Infinity"),
        Raw("negative_zero", "-0"),
        Raw("lone_surrogate", '"\\ud800"'),
        Raw("escaped_bytes", '"\\udcff\\u0000"'),
        Raw("nested_50", "[" * 50 + "]" * 50),
        Raw("nested_5000", "[" * 5000 + "]" * 5000),  # deeper than the recursion limit
        Raw("objects_3000", '{"a":' * 3000 + "1" + "}" * 3000),
    )
}
RAW_LITERALS = list(RAW.values())
DELETE = Raw("deleted", "")  # a marker for "remove this field"


def dumps(value: Any) -> str:
    """JSON text of ``value``; :class:`Raw` parts are spliced in, NaN/Infinity allowed."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def encode(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding, "surrogatepass")


def changed(base: Dict[str, Any], changes: List[Tuple[str, Any]]) -> Dict[str, Any]:
    result = dict(base)
    for name, value in changes:
        if value is DELETE:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def mutations(base: Dict[str, Any], fields: Dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Dict[str, Any]]:
    """``base`` with one to three of its fields replaced by a hostile value, or removed."""
    change = st.sampled_from(sorted(fields)).flatmap(lambda n: st.tuples(st.just(n), st.just(DELETE) | fields[n]))
    return st.lists(change, min_size=1, max_size=3).map(lambda changes: changed(base, changes))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(RAW_LITERALS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
huge_text = st.integers(min_value=1000, max_value=200_000).map(lambda n: "A" * n)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\t\n", "\x00", "null", "Bearer", "\u00e9", "\u202e", "\ufeff", "\udcff", "a" * 70_000]),
    huge_text,
)
# Numbers of seconds as hostile services write them: unicode digits (² and ① pass str.isdigit but not
# int()), numeric strings, 5000-digit strings, floats, NaN, infinities, huge ints.
NUMBER_TRAPS = [
    "\u00b2",
    "\u2460",
    "\u0663",
    "\uff19\uff19",
    "\u216b",
    "9" * 5000,
    "3600",
    " 3600 ",
    "3600.5",
    "-1",
    "",
    "1e3",
    "0x10",
    "+5",
    "1_000",
]
seconds_values = st.one_of(
    st.sampled_from(NUMBER_TRAPS),
    st.sampled_from(RAW_LITERALS),
    st.integers(min_value=-10, max_value=10**10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=4),
    st.booleans() | st.none(),
    json_values,
)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64url(encode(dumps(value)))


RS256_HEADER = segment({"alg": "RS256"})


def jwt_with_claims(claims: Any, header: Any = None) -> str:
    return f"{RS256_HEADER if header is None else segment(header)}.{segment(claims)}.c2ln"


header_objects = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "none", "None", "HS256", "ES256", ""]) | json_values,
        "kid": st.sampled_from(["k1", ""]) | json_values,
        "x5t": st.text(max_size=8),
        "typ": st.just("JWT"),
    },
)
claims_objects = st.fixed_dictionaries(
    {},
    optional={
        "exp": seconds_values,
        "iat": seconds_values,
        "nbf": seconds_values,
        "oid": st.text(max_size=8),
        "tid": st.text(max_size=8),
        "scp": st.text(max_size=8),
        "nonce": st.text(max_size=8) | st.sampled_from(RAW_LITERALS),
        "upn": st.text(max_size=8),
    },
)
segments = st.one_of(
    st.one_of(header_objects, claims_objects, json_values).map(segment),
    st.binary(max_size=40).map(b64url),  # valid base64url, not JSON (or not UTF-8)
    st.text(alphabet="ABCabc012-_=+/.*% ", max_size=12),  # not base64url
    st.text(max_size=8),
    st.just(segment({"alg": "RS256", "pad": "a" * 70_000})),  # a header over 64 KB
)
jwts = st.one_of(
    st.builds(jwt_with_claims, claims_objects, header_objects),
    st.lists(segments, max_size=6).map(".".join),
    st.text(max_size=30),
    st.builds(
        lambda t, pad: pad + t + pad,
        st.lists(segments, min_size=3, max_size=3).map(".".join),
        st.sampled_from([" ", "\n", "\t"]),
    ),
)


def good_jwt(**claims: Any) -> str:
    payload = {"aud": DBX.split("/")[0], "iss": "https://sts.windows.net/x/", "exp": NOW + 3600, **claims}
    return jwt_with_claims(payload, {"alg": "RS256", "typ": "JWT"})


token_values = st.one_of(jwts, texts, json_values, st.just(good_jwt(oid="o", tid="t", scp="x")))
TOKEN_FIELDS: Dict[str, st.SearchStrategy[Any]] = {
    "access_token": token_values,
    "token_type": texts | json_values,
    "expires_in": seconds_values,
    "ext_expires_in": seconds_values,
    "refresh_in": seconds_values,
    "scope": texts | json_values,
    "refresh_token": texts | json_values,
    "id_token": token_values,
    "client_info": texts | st.binary(max_size=30).map(b64url) | json_values.map(segment),
    "error": st.sampled_from(["invalid_grant", "authorization_pending", "slow_down", ""]) | texts | json_values,
    "error_description": texts | json_values,
    "error_codes": st.lists(st.integers() | st.sampled_from([50076, 70000, 50196])) | json_values,
}
GOOD_TOKEN_BODY = {
    "token_type": "Bearer",
    "scope": DBX,
    "expires_in": 3600,
    "ext_expires_in": 3600,
    "access_token": good_jwt(oid="o", tid="t", scp="x"),
    "refresh_token": "rt-good",
}
token_dicts = st.one_of(
    mutations(GOOD_TOKEN_BODY, TOKEN_FIELDS),
    st.fixed_dictionaries({}, optional=TOKEN_FIELDS),
)
HTML_PAGES = [
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>proxy</body></html>",
    b"<html><title>Sign in to Wi-Fi</title><form></form></html>",
    b"  <HTML>" + b"x" * 5000,
]


def truncations(text: str) -> st.SearchStrategy[bytes]:
    raw = text.encode("utf-8")
    return st.integers(min_value=0, max_value=len(raw)).map(lambda n: raw[:n])


def json_bodies(dicts: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """JSON texts of ``dicts``, mostly UTF-8, sometimes UTF-16/32 or with a BOM (json.loads detects them)."""
    encodings = st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "utf-32", "utf-8-sig"])
    return st.builds(lambda value, encoding: encode(dumps(value), encoding), dicts, encodings)


raw_bodies = st.one_of(
    json_bodies(json_values),
    st.binary(max_size=200),
    st.sampled_from(HTML_PAGES),
    st.sampled_from([b"", b" ", b"\n\t", b"null", b"[]", b'"x"', b"{", b"{}", b"[" * 100_000, b"\xff\xfe\xfd"]),
    st.just(gzip.compress(json.dumps(GOOD_TOKEN_BODY).encode())),  # compressed, but no header says so
    truncations(json.dumps(GOOD_TOKEN_BODY)),
)


def bodies(dicts: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Two parts structured JSON (mostly valid, a few fields hostile) to one part anything at all."""
    structured = json_bodies(dicts)
    return st.one_of(structured, structured, raw_bodies)


statuses = st.sampled_from([200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 503]) | st.integers(100, 599)
content_types = st.sampled_from(
    ["application/json; charset=utf-8", "application/json", "text/html", "text/plain", "", "application/jwt"]
)


def response(status: int, body: bytes, content_type: str = "application/json") -> HttpResponse:
    return HttpResponse(status=status, headers=(("content-type", content_type),), body=body)


# -- token responses and error bodies -------------------------------------------------------------------


def check_token_set(tokens: TokenSet, status: int) -> None:
    assert status == 200, f"a TokenSet came out of HTTP {status}"
    assert isinstance(tokens.access_token, str) and tokens.access_token
    assert isinstance(tokens.token_type, str) and tokens.token_type
    assert isinstance(tokens.expires_at, float) and math.isfinite(tokens.expires_at)
    for optional in (tokens.ext_expires_at, tokens.refresh_at):
        assert optional is None or (isinstance(optional, float) and math.isfinite(optional))
    assert all(isinstance(s, str) for s in tokens.scopes)
    assert tokens.refresh_token is None or (isinstance(tokens.refresh_token, str) and tokens.refresh_token)
    assert tokens.id_token is None or (isinstance(tokens.id_token, str) and tokens.id_token)
    assert tokens.claims is None or isinstance(tokens.claims, dict)
    assert "<redacted>" in repr(tokens) and tokens.access_token not in repr(tokens)


def parse_token(status: int, body: bytes, content_type: str = "application/json") -> Any:
    result = typed(
        lambda: parse_token_response(response(status, body, content_type), received_at=NOW, requested_scopes=(DBX,)),
        "parse_token_response",
    )
    if isinstance(result, TokenSet):
        check_token_set(result, status)
    return result


@fuzz_settings()
@given(status=statuses, body=bodies(token_dicts), content_type=content_types)
def test_token_response(status: int, body: bytes, content_type: str) -> None:
    parse_token(status, body, content_type)


@fuzz_settings()
@given(name=st.sampled_from(["expires_in", "ext_expires_in", "refresh_in"]), value=seconds_values)
@example(name="expires_in", value="\u00b2")
@example(name="expires_in", value="9" * 5000)
def test_token_response_numbers_of_seconds(name: str, value: Any) -> None:
    parse_token(200, encode(dumps({**GOOD_TOKEN_BODY, name: value})))


@fuzz_settings()
@given(claims=mutations({"exp": NOW + 3600, "oid": "o", "tid": "t"}, {"exp": seconds_values, "iat": seconds_values}))
@example(claims={"exp": RAW["huge_int"]})
def test_token_response_expiry_from_the_access_token(claims: Dict[str, Any]) -> None:
    """No ``expires_in``: the expiry comes from the access token's ``exp``, whatever a JWT may carry there."""
    body = {"token_type": "Bearer", "access_token": jwt_with_claims(claims)}
    parse_token(200, encode(dumps(body)))


error_fields: Dict[str, st.SearchStrategy[Any]] = {
    "error": st.sampled_from(["invalid_grant", "interaction_required", "slow_down", "temporarily_unavailable"])
    | texts
    | json_values,
    "error_description": st.sampled_from(["AADSTS50126: x", "AADSTS" + "9" * 50, "AADSTS50076"]) | texts | json_values,
    "error_codes": st.lists(
        st.integers() | st.sampled_from([50076, 50196, 70016, 65001, 7000218]) | json_values, max_size=5
    )
    | json_values,
    "suberror": texts | json_values,
    "trace_id": texts | json_values,
    "correlation_id": texts | json_values,
    "timestamp": texts | json_values,
    "error_uri": texts | json_values,
    "claims": texts | json_values,
}
GOOD_ERROR_BODY = {
    "error": "invalid_grant",
    "error_description": "AADSTS50126: Error validating credentials. Trace ID: t Correlation ID: c",
    "error_codes": [50126],
    "trace_id": "t",
    "correlation_id": "c",
}
error_bodies = st.one_of(
    mutations(GOOD_ERROR_BODY, error_fields),
    st.fixed_dictionaries({}, optional=error_fields),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)


@fuzz_settings()
@given(body=error_bodies, status=st.none() | statuses)
def test_error_body(body: Dict[str, Any], status: Optional[int]) -> None:
    error = typed(lambda: oauth_error_from_body(body, status=status), "oauth_error_from_body")
    assert isinstance(error, OAuthError), "oauth_error_from_body must return (never raise) an OAuthError"
    assert isinstance(error.error, str) and error.error
    assert all(isinstance(c, int) and not isinstance(c, bool) for c in error.error_codes)
    assert len(str(error)) <= 500
    json.dumps(error.to_dict())
    assert error.hint is None or isinstance(error.hint, str)


@fuzz_settings()
@given(status=st.sampled_from([400, 401, 403, 429, 500, 503]), body=bodies(error_bodies))
def test_error_responses(status: int, body: bytes) -> None:
    assert isinstance(parse_token(status, body), OAuthCoreError)


# -- JWKS, discovery documents, device code -----------------------------------------------------------


key_fields: Dict[str, st.SearchStrategy[Any]] = {
    "kty": st.sampled_from(["RSA", "EC", "oct", ""]) | json_values,
    "kid": st.sampled_from(["k1", ""]) | json_values,
    "n": st.text(max_size=20) | st.binary(max_size=30).map(b64url) | json_values,
    "e": st.sampled_from(["AQAB", "", "!!"]) | json_values,
    "use": st.just("sig") | json_values,
    "alg": st.sampled_from(["RS256", "none", "HS256"]) | json_values,
    "x5c": st.lists(st.text(max_size=10), max_size=2) | json_values,
}
GOOD_KEY = {"kty": "RSA", "use": "sig", "kid": "k1", "n": b64url(b"\xc3" * 256), "e": "AQAB"}
jwks_dicts = st.one_of(
    st.lists(mutations(GOOD_KEY, key_fields) | json_values, max_size=3).map(lambda keys: {"keys": keys}),
    st.fixed_dictionaries({}, optional={"keys": json_values, "issuer": texts}),
)


@fuzz_settings()
@given(status=statuses, body=bodies(jwks_dicts))
def test_jwks_response(status: int, body: bytes) -> None:
    result = typed(lambda: parse_jwks_response(response(status, body)), "parse_jwks_response")
    if not isinstance(result, OAuthCoreError):
        assert status == 200
        assert isinstance(result, dict) and isinstance(result["keys"], list)
        assert all(isinstance(k, dict) for k in result["keys"])


def _discovery() -> Dict[str, Any]:
    path = Path(__file__).resolve().parent.parent / "fixtures" / "openid-configuration.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return data if isinstance(data, dict) and data else {"issuer": "https://login.microsoftonline.com/x/v2.0"}


DISCOVERY = _discovery()


@fuzz_settings()
@given(status=statuses, body=bodies(mutations(DISCOVERY, {name: texts | json_values for name in DISCOVERY})))
def test_json_object_and_discovery_documents(status: int, body: bytes) -> None:
    """oauth_core has no discovery parser of its own: parse_json_object is what such documents go through."""
    result = typed(lambda: parse_json_object(response(status, body)), "parse_json_object")
    if not isinstance(result, OAuthCoreError):
        assert isinstance(result, dict)


DEVICE_FIELDS: Dict[str, st.SearchStrategy[Any]] = {
    "user_code": texts | json_values,
    "device_code": texts | json_values,
    "verification_uri": texts | json_values,
    "expires_in": seconds_values,
    "interval": seconds_values,
    "message": texts | json_values,
    "error": st.sampled_from(["invalid_request", "unauthorized_client"]) | json_values,
    "error_codes": json_values,
}
GOOD_DEVICE_BODY = {
    "user_code": "ABCD-EFGH",
    "device_code": "device-code-secret",
    "verification_uri": "https://microsoft.com/devicelogin",
    "expires_in": 900,
    "interval": 5,
    "message": "To sign in, ...",
}
device_dicts = st.one_of(mutations(GOOD_DEVICE_BODY, DEVICE_FIELDS), st.fixed_dictionaries({}, optional=DEVICE_FIELDS))


def parse_device(status: int, body: bytes) -> Any:
    result = typed(lambda: parse_device_code_response(response(status, body), received_at=NOW), "parse_device_code")
    if isinstance(result, DeviceCode):
        assert status == 200
        for text in (result.user_code, result.device_code, result.verification_uri, result.message):
            assert isinstance(text, str) and text.strip()
        assert math.isfinite(result.expires_at) and 0 < result.interval <= 86400
        assert result.device_code not in repr(result)
    return result


@fuzz_settings()
@given(status=statuses, body=bodies(device_dicts))
def test_device_code_response(status: int, body: bytes) -> None:
    parse_device(status, body)


@fuzz_settings()
@given(name=st.sampled_from(["expires_in", "interval"]), value=seconds_values)
@example(name="interval", value="\u00b2")
def test_device_code_numbers_of_seconds(name: str, value: Any) -> None:
    parse_device(200, encode(dumps({**GOOD_DEVICE_BODY, name: value})))


class StepClock:
    """A clock that the test moves on by each Wait the flow asks for."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


poll_bodies = bodies(
    st.sampled_from([{"error": "authorization_pending"}, {"error": "slow_down"}, {"error": "expired_token"}])
    | token_dicts
)


@fuzz_settings(0.5)
@given(
    start=bodies(device_dicts),
    polls=st.lists(st.tuples(st.sampled_from([200, 400, 400, 400, 429, 500]), poll_bodies), max_size=6),
    timeout=st.none() | st.floats(min_value=0.5, max_value=86400),
)
def test_device_flow_driven_by_hand(start: bytes, polls: List[Tuple[int, bytes]], timeout: Optional[float]) -> None:
    """The whole device flow over hostile answers: every step is a request or a valid Wait."""
    clock = StepClock()
    authority = Authority.of(None, TENANT)

    def poll(code: DeviceCode) -> HttpRequest:
        grant = (("grant_type", "device_code"), ("device_code", code.device_code))
        return build_token_request(authority, CLIENT, grant, scopes=(DBX,))

    def run() -> Optional[TokenSet]:
        begin = build_device_code_request(authority, CLIENT, (DBX,))
        flow = device_code_flow(begin, poll, on_code=lambda code: None, clock=clock, timeout=timeout)
        answers = iter([(200, start), *polls])
        try:
            step = next(flow)
            while True:
                if isinstance(step, Wait):
                    assert 0 <= step.seconds <= 86400
                    clock.now += step.seconds
                    step = next(flow)
                    continue
                answer = next(answers, None)
                if answer is None:
                    return None
                step = flow.send(response(*answer))
        except StopIteration as done:
            assert isinstance(done.value, TokenSet)
            return done.value
        finally:
            flow.close()

    typed(run, "device_code_flow")


# -- redirects and pending requests ------------------------------------------------------------------


PENDING = build_authorization_request(
    Authority.of(None, TENANT), CLIENT, "http://localhost", (DBX, "offline_access"), now=NOW
)
ODD_VALUES = [
    "",
    " ",
    "%",
    "%zz",
    "%ff",
    "%ED%A0%80",
    "%00",
    "%2526",
    "a%20b",
    "+",
    "\udcff",
    "\u00e9",
    "a\r\nb",
    "a=b",
    "a&b",
    "\x00",
]
odd_values = st.one_of(
    st.just(PENDING.state),
    st.just(PENDING.state.upper()),
    st.sampled_from(ODD_VALUES),
    st.text(max_size=12),
    huge_text,
)
keys = st.sampled_from(
    ["code", "state", "error", "error_description", "error_uri", "session_state", "", "code ", "State"]
) | st.text(max_size=6)
GOOD_PREFIXES = ["", "?", "http://localhost/?", "http://localhost:53123/?", "http://127.0.0.1:8400/?", "http://[::1]/?"]
BAD_PREFIXES = [
    "http://localhost/callback?",
    "https://evil.example/?",
    "http://[::1]:99999/?",
    "http://[::1/?",
    "http://user:pw@localhost/?",
    "javascript:alert(1)//?",
    "http://localhost/#",
    "http://localhost/?#",
    "HTTP://LOCALHOST/?",
]


def check_redirect(redirect: str) -> None:
    state = typed(lambda: redirect_state(redirect), "redirect_state")
    assert state is None or isinstance(state, (str, OAuthCoreError))
    code = typed(lambda: parse_redirect(PENDING, redirect), "parse_redirect")
    if isinstance(code, str):
        assert code, "an empty code was accepted"
        assert state == PENDING.state, "a code was accepted from a redirect with another state"


@fuzz_settings()
@given(
    prefix=st.sampled_from(GOOD_PREFIXES + BAD_PREFIXES),
    pairs=st.lists(st.tuples(keys, odd_values), max_size=6),
    separator=st.sampled_from(["&", "&", ";", "&&"]),
    suffix=st.sampled_from(["", "#frag", "&", "#code=x&state=y"]),
)
def test_redirect(prefix: str, pairs: List[Tuple[str, str]], separator: str, suffix: str) -> None:
    check_redirect(prefix + separator.join(f"{k}={v}" for k, v in pairs) + suffix)


@fuzz_settings()
@given(
    prefix=st.sampled_from(GOOD_PREFIXES),
    state=st.one_of(st.just(PENDING.state), st.sampled_from(ODD_VALUES), st.text(max_size=12)),
    code=st.one_of(st.just("0.AXkA-code"), st.sampled_from(ODD_VALUES), st.text(max_size=12)),
    extra=st.lists(st.tuples(keys, odd_values), max_size=2),
    order=st.randoms(use_true_random=False),
)
@example(prefix="?", state="\udcff", code="x", extra=[], order=random.Random(0))
def test_redirect_answering_the_request(
    prefix: str, state: str, code: str, extra: List[Tuple[str, str]], order: Any
) -> None:
    """Redirects to the right endpoint with a state and a code (and maybe more): the state check must hold."""
    pairs = [("state", state), ("code", code), *extra]
    order.shuffle(pairs)
    check_redirect(prefix + "&".join(f"{k}={v}" for k, v in pairs))


PENDING_FIELDS: Dict[str, st.SearchStrategy[Any]] = {
    **{name: texts | json_values for name in ("authority_host", "tenant", "client_id", "redirect_uri", "url")},
    **{name: texts | json_values for name in ("state", "nonce", "code_verifier")},
    "scopes": json_values,
    "created_at": seconds_values,
    "version": st.sampled_from([2, 0, True, 1.0, "1"]) | json_values,
    "extra": json_values,
}


@fuzz_settings()
@given(
    text=st.one_of(
        mutations(json.loads(PENDING.to_json()), PENDING_FIELDS).map(dumps),
        mutations(json.loads(PENDING.to_json()), PENDING_FIELDS).map(dumps),
        json_values.map(dumps),
        st.text(max_size=50),
        truncations(PENDING.to_json()).map(lambda b: b.decode("utf-8", "replace")),
    )
)
def test_pending_request_from_json(text: str) -> None:
    result = typed(lambda: PendingAuthorization.from_json(text), "PendingAuthorization.from_json")
    if isinstance(result, PendingAuthorization):
        assert PendingAuthorization.from_json(result.to_json()) == result
        public = " ".join([result.authority_host, result.tenant, result.client_id, result.redirect_uri, *result.scopes])
        for secret in (result.code_verifier, result.state, result.nonce):
            # short values occur in any text; a value equal to a public field is shown as that field
            if len(secret) >= 8 and secret not in public and secret not in "PendingAuthorization <redacted>":
                assert secret not in repr(result)


def test_pending_request_round_trip() -> None:
    assert PendingAuthorization.from_json(PENDING.to_json()) == PENDING


# -- JWTs --------------------------------------------------------------------------------------------


def check_jwt(token: str, now: Optional[float] = None) -> None:
    claims = typed(lambda: unverified_claims(token), "unverified_claims")
    header = typed(lambda: unverified_header(token), "unverified_header")
    info = typed(lambda: inspect_token(token, now=now), "inspect_token")
    if isinstance(claims, dict):
        assert isinstance(header, dict) and isinstance(header.get("alg"), str)
        for name in ("iat", "nbf", "exp"):
            value = claims.get(name)
            assert value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        assert not isinstance(info, OAuthCoreError)
        assert info.seconds_left is None or isinstance(info.seconds_left, float)
        repr(info)
    else:
        assert isinstance(claims, TokenDecodeError) and isinstance(info, TokenDecodeError)


@fuzz_settings()
@given(token=jwts, now=st.none() | st.floats(allow_nan=False, allow_infinity=False))
def test_jwt_unverified(token: str, now: Optional[float]) -> None:
    check_jwt(token, now)


@fuzz_settings()
@given(name=st.sampled_from(["exp", "iat", "nbf"]), value=seconds_values, alg=st.sampled_from(["RS256", "none"]))
@example(name="exp", value=RAW["huge_int"], alg="RS256")
def test_jwt_time_claims(name: str, value: Any, alg: str) -> None:
    check_jwt(jwt_with_claims({name: value}, {"alg": alg}))


@pytest.fixture(scope="module")
def fixture_jwks() -> Dict[str, Any]:
    pytest.importorskip("cryptography")
    from fixturelib import jwks

    return jwks()


@fuzz_settings(0.5)
@given(token=jwts, jwks=jwks_dicts, use_fixture_keys=st.booleans())
def test_verify_signature(
    fixture_jwks: Dict[str, Any], token: str, jwks: Dict[str, Any], use_fixture_keys: bool
) -> None:
    keys = fixture_jwks if use_fixture_keys else jwks
    result = typed(lambda: verify_signature(token, keys), "verify_signature")
    assert isinstance(result, (SignatureVerificationError, TokenDecodeError)), "an unsigned fuzz token verified"


# -- Retry-After and WWW-Authenticate ---------------------------------------------------------------


header_texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "0",
            "-1",
            "1e308",
            "nan",
            "inf",
            "\u0663",
            "\u00b2",
            "Fri, 31 Dec 9999 23:59:59 -2359",
            "Mon, 01 Jan 0001 00:00:00 +0000",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
            "Wed, 32 Foo 2024 25:61:61 XYZ",
            "  3  ",
        ]
    ),
)


@fuzz_settings()
@given(
    status=st.sampled_from([408, 429, 500, 502, 503, 504, 400]),
    headers=st.lists(
        st.tuples(st.sampled_from(["retry-after", "retry-after-ms", "x-ms-retry-after-ms"]), header_texts), max_size=3
    ),
    body=bodies(error_bodies),
)
def test_retry_after(status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
    answer = HttpResponse(status=status, headers=tuple(headers), body=body)
    wait = typed(lambda: retry_after_seconds(answer), "retry_after_seconds")
    assert wait is None or (isinstance(wait, float) and math.isfinite(wait) and wait >= 0)
    assert typed(lambda: is_retryable_response(answer), "is_retryable_response") in (True, False)


def b64_deep(depth: int) -> str:
    return base64.b64encode(b"[" * depth + b"]" * depth).decode("ascii")


challenge_texts = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, params: scheme + " " + ", ".join(f"{k}={v}" for k, v in params),
        st.sampled_from(["Bearer", "bearer", "Basic", "Negotiate", ""]),
        st.lists(
            st.tuples(
                st.sampled_from(["error", "claims", "realm", "authorization_uri", "error_description"])
                | st.text(max_size=5),
                st.one_of(
                    st.text(max_size=20),
                    st.text(max_size=20).map(lambda t: '"' + t + '"'),
                    st.sampled_from(['"insufficient_claims"', '"\\"', '"', '""', "=", '"' + b64_deep(2000) + '"']),
                    json_values.map(lambda v: '"' + base64.b64encode(encode(dumps(v))).decode() + '"'),
                ),
            ),
            max_size=4,
        ),
    ),
)


@fuzz_settings()
@given(values=st.lists(challenge_texts, max_size=3))
def test_bearer_challenge(values: List[str]) -> None:
    params = typed(lambda: bearer_challenge(values), "bearer_challenge")
    assert params is None or (isinstance(params, dict) and all(isinstance(v, str) for v in params.values()))


@pytest.fixture(scope="module")
def shared_http() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


def quick_policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=2, jitter=False, sleep=lambda seconds: None)


FRESH_TOKEN_BODY = {**GOOD_TOKEN_BODY, "access_token": "fresh-at", "refresh_token": "rt-2"}


def signed_in_client(http: httpx.Client) -> EntraClient:
    """A client whose memory cache holds a user token for DBX (account ``o.t``) and a refresh token."""
    client = EntraClient(CLIENT, TENANT, http_client=http, retry=quick_policy())
    body = {**GOOD_TOKEN_BODY, "access_token": good_jwt(oid="o", tid="t", scp="x", exp=time.time() + 3600)}
    tokens = parse_token_response(response(200, json.dumps(body).encode()), received_at=time.time())
    with client.cache.transaction() as state:
        store(state, client.cache_scope, tokens, client.user_scopes(None))
    return client


@fuzz_settings(0.5)
@given(values=st.lists(challenge_texts, min_size=1, max_size=2))
@example(values=['Bearer error="insufficient_claims", claims="' + b64_deep(2000) + '"'])
def test_api_401_challenges_through_entra_auth(shared_http: httpx.Client, values: List[str]) -> None:
    """A Databricks API answering 401 with any WWW-Authenticate: a response or a typed error."""
    client = signed_in_client(shared_http)
    with respx.mock(assert_all_called=False) as router:
        headers = [("www-authenticate", v.encode("utf-8", "replace")) for v in values]
        router.get(API_URL).mock(return_value=httpx.Response(401, headers=headers))
        router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=FRESH_TOKEN_BODY))
        result = typed(lambda: shared_http.get(API_URL, auth=EntraAuth(client)), "EntraAuth")
    assert isinstance(result, (httpx.Response, OAuthCoreError))


# -- token cache files -----------------------------------------------------------------------------


WHERE = CacheScope(HOST, TENANT, CLIENT)


def good_cache_state() -> Dict[str, Any]:
    state: Dict[str, Any] = {"version": 1, "access_tokens": {}, "refresh_tokens": {}, "accounts": {}, "flags": {}}
    claims = {"oid": "o", "tid": "t", "scp": "x", "upn": "alice@contoso.com", "exp": time.time() + 3600}
    body = {**GOOD_TOKEN_BODY, "access_token": good_jwt(**claims), "refresh_token": "rt-1"}
    tokens = parse_token_response(response(200, json.dumps(body).encode()), received_at=time.time())
    store(state, WHERE, tokens, (DBX, "offline_access", "openid", "profile"))
    state["flags"][next(iter(state["access_tokens"]))] = {"last_attempt": time.time() - 100}
    return state


def cache_paths(state: Dict[str, Any]) -> List[Tuple[str, ...]]:
    found: List[Tuple[str, ...]] = [()]

    def walk(node: Any, path: Tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                found.append((*path, key))
                walk(value, (*path, key))

    walk(state, ())
    return found


def edited(state: Dict[str, Any], edits: List[Tuple[Tuple[str, ...], Any]]) -> Any:
    """A copy of ``state`` with the value at each path replaced (or deleted)."""
    root: Any = json.loads(json.dumps(state))
    for path, value in edits:
        if not path:
            root = {} if value is DELETE else value
            continue
        node = root
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            if value is DELETE:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    return root


GOOD_CACHE = good_cache_state()
AT_KEY = next(iter(GOOD_CACHE["access_tokens"]))
ACCOUNT_KEY = next(iter(GOOD_CACHE["accounts"]))


def cache_file(*edits: Tuple[Tuple[str, ...], Any]) -> bytes:
    return encode(dumps(edited(GOOD_CACHE, list(edits))))


cache_edits = st.lists(st.tuples(st.sampled_from(cache_paths(GOOD_CACHE)), st.just(DELETE) | json_values), max_size=4)
cache_files = st.one_of(
    cache_edits.map(lambda e: cache_file(*e)),
    cache_edits.map(lambda e: cache_file(*e)),
    truncations(json.dumps(GOOD_CACHE)),
    st.binary(max_size=100),
    json_values.map(lambda v: encode(dumps(v))),
    st.sampled_from(
        [b"", b" ", b"null", b"{}", b'{"version": 2}', b'{"version": "1"}', b"\xff\xfe\x00{", b"[" * 10_000]
    ),
)


def exercise_cache(path: Path, http: httpx.Client, min_validity: float) -> None:
    """Every reader of the cache, then get_token (which may refresh and write), then a removal."""
    cache = FileTokenCache(path)
    state = typed(cache.snapshot, "FileTokenCache.snapshot")
    if isinstance(state, dict):
        for where in (WHERE, CacheScope(HOST, "organizations", CLIENT)):
            typed(lambda: accounts(state, where), "accounts")
            typed(lambda: resolve_account(state, where, None), "resolve_account")
            typed(lambda: resolve_account(state, where, "alice@contoso.com"), "resolve_account")
            names = [k.split("|")[-1] for k in state.get("accounts", {}) if isinstance(k, str)]
            for account in ["o.t", "x", *names]:
                typed(lambda: find_access_token(state, where, account, (DBX,)), "find_access_token")
                typed(lambda: find_refresh_token(state, where, account), "find_refresh_token")
        typed(lambda: entries(state), "entries")
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=FRESH_TOKEN_BODY))
        client = EntraClient(CLIENT, TENANT, http_client=http, retry=quick_policy(), cache=cache)
        typed(lambda: client.get_token(min_validity=min_validity), "get_token")
        typed(lambda: client.get_token(min_validity=min_validity, account="alice@contoso.com"), "get_token")

    def remove() -> None:
        with cache.transaction() as state:
            remove_account(state, WHERE, "o.t")

    typed(remove, "remove_account")


@fuzz_settings()
@given(content=cache_files, min_validity=st.sampled_from([0.0, 300.0, 3000.0, 7200.0]))
def test_cache_file(shared_http: httpx.Client, content: bytes, min_validity: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokens.json"
        path.write_bytes(content)
        path.chmod(0o600)  # a cache others may read is refused before it is parsed
        exercise_cache(path, shared_http, min_validity)
        text = path.read_bytes()
        if text != content:  # the cache rewrote the file: it must be a whole, valid cache
            saved = json.loads(text)
            assert saved["version"] == 1
            assert all(isinstance(saved[s], dict) for s in ("access_tokens", "refresh_tokens", "accounts", "flags"))
        assert not [p for p in Path(folder).iterdir() if p.name.endswith(".tmp")], "a temp file was left behind"


CLI_ON_CACHE = [
    ["accounts"],
    ["accounts", "--json"],
    ["logout", "--all"],
    ["logout", "--client-id", CLIENT, "--tenant", TENANT],
    ["token", "--client-id", CLIENT, "--tenant", TENANT, "--min-validity", "7200"],
    ["token", "--client-id", CLIENT, "--tenant", TENANT, "--json"],
    ["refresh", "--client-id", CLIENT, "--tenant", TENANT],
]


def run_cli_on_cache(home: Path, content: bytes, argv: List[str]) -> Tuple[int, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "tokens.json").write_bytes(content)
    (home / "tokens.json").chmod(0o600)  # a cache others may read is refused before it is parsed
    out, err = io.StringIO(), io.StringIO()
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=FRESH_TOKEN_BODY))
        with no_hang():
            code = main(argv, stdout=out, stderr=err)
    return code, err.getvalue() + out.getvalue()


@fuzz_settings(0.5, suppress=[HealthCheck.function_scoped_fixture])
@given(content=cache_files, argv=st.sampled_from(CLI_ON_CACHE))
def test_cli_on_a_hand_edited_cache(isolated_env: Path, content: bytes, argv: List[str]) -> None:
    """``accounts``, ``logout``, ``token``, ``refresh`` over any cache file: a clear exit code, no traceback."""
    code, output = run_cli_on_cache(isolated_env, content, argv)
    assert code in (0, 1, 2, 3, 4), f"{argv} exited {code}: {output[-300:]!r}"
    assert "Traceback" not in output


# -- the code exchange: the id_token's nonce comes from the network -----------------------------------


def exchange(body: bytes) -> TokenSet:
    """Drive the code exchange flow by hand with ``body`` as the token endpoint's answer."""
    flow = exchange_code_flow(PENDING, "the-code")
    next(flow)
    try:
        flow.send(response(200, body))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("the exchange flow asked for a second request")


@fuzz_settings()
@given(
    nonce=st.just(PENDING.nonce) | st.sampled_from(RAW_LITERALS) | st.text(max_size=20) | json_values,
    extra=claims_objects,
)
@example(nonce=RAW["lone_surrogate"], extra={})
def test_code_exchange_nonce(nonce: Any, extra: Dict[str, Any]) -> None:
    body = encode(dumps({**GOOD_TOKEN_BODY, "id_token": jwt_with_claims({**extra, "nonce": nonce})}))
    result = typed(lambda: exchange(body), "exchange_code_flow")
    if isinstance(result, TokenSet):
        assert unverified_claims(result.id_token or "")["nonce"] == PENDING.nonce


# -- the HTTP layer: content-encoding lies, length lies, gzip bombs ------------------------------------


def compressed(body: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(body)
    if how == "deflate":
        return zlib.compress(body)
    if how == "gzip-truncated":
        return gzip.compress(body)[: max(1, len(body) // 3)]
    if how == "bomb":
        return gzip.compress(b" " * (8 * MIB) + body)  # 8 MiB of blanks in about 8 KiB
    return body


@fuzz_settings(0.5)
@given(
    status=st.sampled_from([200, 200, 400, 429, 500, 302]),
    body=bodies(token_dicts | error_bodies),
    how=st.sampled_from(["none", "gzip", "deflate", "gzip-truncated", "bomb"]),
    encoding=st.sampled_from(
        [None, "gzip", "deflate", "br", "zstd", "identity", "gzip, gzip", "x-unknown", "", "GZIP"]
    ),
    length=st.none() | st.sampled_from(["0", "1", "99999999999", "-1", "abc", " 12 ", "1048577"]),
)
def test_http_layer(
    shared_http: httpx.Client, status: int, body: bytes, how: str, encoding: Optional[str], length: Optional[str]
) -> None:
    """What the token endpoint sends, through httpx: any encoding header, true or not, any length header."""
    headers = [("content-type", "application/json")]
    if encoding is not None:
        headers.append(("content-encoding", encoding))
    if length is not None:
        headers.append(("content-length", length))
    raw = compressed(body, how)
    client = EntraClient(CLIENT, TENANT, http_client=shared_http, retry=quick_policy())
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(
            side_effect=lambda request: httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw))
        )
        result = typed(lambda: client.acquire_by_password("someone@contoso.com", "pw"), "acquire_by_password")
    if isinstance(result, TokenSet):
        check_token_set(result, status)


# -- a 100 MB body is never loaded --------------------------------------------------------------------


class Flood(httpx.SyncByteStream, httpx.AsyncByteStream):
    """100 MB of body, produced lazily; ``produced`` says how much was asked for."""

    def __init__(self, total: int = 100 * MIB, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.produced = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.produced < self.total:
            self.produced += self.chunk
            yield b" " * self.chunk

    async def __aiter__(self) -> Any:
        for piece in self:
            yield piece


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "content-length"])
def test_100_mb_body_through_respx_is_refused_without_loading_it(shared_http: httpx.Client, declared: bool) -> None:
    flood = Flood()
    headers = {"content-type": "application/json", **({"content-length": str(flood.total)} if declared else {})}
    client = EntraClient(CLIENT, TENANT, http_client=shared_http, retry=quick_policy())
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with respx.mock() as router:
            router.post(TOKEN_URL).mock(side_effect=lambda request: httpx.Response(200, headers=headers, stream=flood))
            with pytest.raises(ResponseFormatError, match="larger than"):
                client.acquire_by_password("someone@contoso.com", "pw")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2.0
    assert flood.produced <= (0 if declared else 2 * MIB), f"{flood.produced} bytes were read"
    assert peak < 8 * MIB, f"peak memory {peak} bytes"


def test_100_mb_body_through_the_async_client_is_refused() -> None:
    flood = Flood()

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            client = AsyncEntraClient(CLIENT, TENANT, http_client=http, retry=quick_policy())
            with respx.mock() as router:
                router.post(TOKEN_URL).mock(side_effect=lambda request: httpx.Response(200, stream=flood))
                with pytest.raises(ResponseFormatError, match="larger than"):
                    await client.acquire_by_password("someone@contoso.com", "pw")

    asyncio.run(run())
    assert flood.produced <= 2 * MIB


class FloodServer:
    """A raw socket server that answers one request with a 100 MB body (chunked or with a Content-Length)."""

    def __init__(self, chunked: bool) -> None:
        self.chunked = chunked
        self.sent = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            received = b""
            while b"\r\n\r\n" not in received:
                part = conn.recv(65536)
                if not part:
                    return
                received += part
            framing = b"Transfer-Encoding: chunked" if self.chunked else b"Content-Length: %d" % (100 * MIB)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + framing + b"\r\n\r\n")
            piece = b" " * (64 * 1024)
            frame = (b"%x\r\n" % len(piece)) + piece + b"\r\n" if self.chunked else piece
            try:
                while self.sent < 100 * MIB:
                    conn.sendall(frame)
                    self.sent += len(piece)
            except OSError:
                pass  # the client hung up: what the test wants

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_100_mb_body_on_a_real_socket_is_refused_without_loading_it(chunked: bool) -> None:
    server = FloodServer(chunked)
    host = f"http://127.0.0.1:{server.port}"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with EntraClient(CLIENT, TENANT, authority_host=host, retry=RetryPolicy(max_attempts=1), timeout=5) as client:
            with pytest.raises(ResponseFormatError, match="larger than"):
                client.acquire_by_password("someone@contoso.com", "pw")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        server.close()
    assert time.perf_counter() - started < 5.0
    assert server.sent < 40 * MIB, f"the server got {server.sent} bytes out before the client hung up"
    assert peak < 8 * MIB, f"peak memory {peak} bytes"


# -- regressions: the bugs the properties found, one concrete input each (each failed before its fix) ----


HUGE_EXP = jwt_with_claims({"exp": RAW["huge_int"]})


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: unverified_claims(HUGE_EXP), id="unverified_claims-huge-int-exp"),
        pytest.param(lambda: inspect_token(HUGE_EXP), id="inspect_token-huge-int-exp"),
        pytest.param(
            lambda: parse_token_response(response(200, encode(dumps({"access_token": HUGE_EXP}))), received_at=NOW),
            id="token-response-jwt-huge-int-exp",
        ),
        pytest.param(
            lambda: parse_token_response(
                response(200, encode(dumps({"access_token": "x", "expires_in": "\u00b2"}))), received_at=NOW
            ),
            id="token-response-expires_in-superscript-digit",
        ),
        pytest.param(
            lambda: parse_token_response(
                response(200, encode(dumps({"access_token": "x", "expires_in": "9" * 5000}))), received_at=NOW
            ),
            id="token-response-expires_in-5000-digits",
        ),
        pytest.param(
            lambda: parse_device_code_response(
                response(200, encode(dumps({**GOOD_DEVICE_BODY, "interval": "\u00b2"}))), received_at=NOW
            ),
            id="device-code-interval-superscript-digit",
        ),
        pytest.param(lambda: parse_redirect(PENDING, "?state=\udcff&code=x"), id="redirect-surrogate-state"),
        pytest.param(
            lambda: exchange(
                encode(dumps({**GOOD_TOKEN_BODY, "id_token": jwt_with_claims({"nonce": RAW["lone_surrogate"]})}))
            ),
            id="exchange-id_token-nonce-lone-surrogate",
        ),
    ],
)
def test_found_parser_bugs(call: Callable[[], Any]) -> None:
    typed(call)


def test_found_claims_challenge_recursion_bug(shared_http: httpx.Client) -> None:
    client = signed_in_client(shared_http)
    header = 'Bearer error="insufficient_claims", claims="' + b64_deep(2000) + '"'
    with respx.mock() as router:
        router.get(API_URL).mock(return_value=httpx.Response(401, headers={"www-authenticate": header}))
        result = typed(lambda: shared_http.get(API_URL, auth=EntraAuth(client)), "EntraAuth")
    assert isinstance(result, OAuthCoreError)


FOUND_CACHE_FILES = {
    "binary-file": b"\xff\xfe\x00{",
    "flag-not-an-object": cache_file((("flags", AT_KEY), "x")),
    "account-without-id": cache_file((("accounts", ACCOUNT_KEY, "account"), DELETE)),
    "nan-expiry": cache_file((("access_tokens", AT_KEY, "expires_at"), RAW["nan"])),
    "numeric-scopes": cache_file((("access_tokens", AT_KEY, "scopes"), [1])),
    "previous-account-not-an-object": cache_file((("accounts", ACCOUNT_KEY), "x")),
}


@pytest.mark.parametrize("name", ["binary-file", "flag-not-an-object", "account-without-id"])
def test_found_cache_file_bugs(shared_http: httpx.Client, tmp_path: Path, name: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(FOUND_CACHE_FILES[name])
    path.chmod(0o600)
    exercise_cache(path, shared_http, 7200.0)


@pytest.mark.parametrize("name", ["binary-file", "account-without-id", "nan-expiry", "numeric-scopes"])
def test_found_cli_accounts_bugs(isolated_env: Path, name: str) -> None:
    code, output = run_cli_on_cache(isolated_env, FOUND_CACHE_FILES[name], ["accounts"])
    assert code != 70, output
