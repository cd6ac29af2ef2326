"""Reliability figures: fuzzed parsers, injected faults, killed cache writers, secret leaks.

Run from the repository root::

    python -m bench.reliability            # the full run, a few minutes
    python -m bench.reliability --quick    # under a minute
    python -m bench.reliability --json     # the same figures as one JSON object

Four parts, each standalone (nothing is imported from ``tests/`` or the rest of ``bench/``):

``fuzz``     every parser that sees outside data, fed by hypothesis with its own settings
             (derandomized: the same examples on every run unless ``--seed`` is given). A case
             fails when the parser raises anything but an :class:`oauth_core.OAuthCoreError`,
             hangs, or returns a value that breaks the parser's contract.
``faults``   the emulator's fault injection on a real socket (429 with and without Retry-After,
             5xx bursts, delays past the timeout, dropped connections, truncated and HTML
             answers) around a silent refresh with a file token cache. A scenario survives when
             the caller gets tokens or the expected typed error, the cache file is whole, and the
             cached refresh token works once the service behaves.
``kill``     a process rewriting the token cache in a loop is SIGKILLed at a random moment, many
             times; the file must always be a whole cache (the old version or the new one).
``secrets``  every flow (password, refresh, code exchange with state and nonce failures, client
             credentials, device code, get_token, CLI commands with --verbose) is driven while
             logs, reprs, errors, tracebacks and CLI error output are kept; every secret value is
             searched in every one of them.

The exit code is 0 when there is no failure, no corrupt cache and no leak, else 1.
Needs the test extra (hypothesis, cryptography): ``pip install -e '.[test]'``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import gzip
import io
import json
import logging
import math
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["main"]

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
NOW = 1_800_000_000.0
HARD = 7200.0  # min_validity above the emulator's 3600 s token lifetime: get_token must refresh


# -- fuzzing -----------------------------------------------------------------------------------------


class Hang(BaseException):
    """The alarm fired: the call did not return in time."""


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass
class FuzzResult:
    parser: str
    cases: int = 0
    typed_errors: int = 0
    failures: int = 0
    examples: Dict[str, str] = dataclasses.field(default_factory=dict)  # failure kind -> first input


@dataclasses.dataclass(frozen=True)
class Raw:
    """A JSON literal spliced in as is: what json.dumps cannot write."""

    name: str
    text: str

    def __repr__(self) -> str:
        return f"Raw.{self.name}"


RAWS = [
    Raw("huge_int", "1" + "0" * 400),
    Raw("int_5000_digits", "9" * 5000),
    Raw("float_overflow", "1e400"),
    Raw("nan", "NaN"),
    Raw("infinity", "-Infinity"),
    Raw("lone_surrogate", '"\\ud800"'),
    Raw("nested_5000", "[" * 5000 + "]" * 5000),
]
DELETE = Raw("deleted", "")


def dumps(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64url(dumps(value).encode("utf-8", "surrogatepass"))


def jwt_of(claims: Any, header: Any = None) -> str:
    return f"{segment({'alg': 'RS256'} if header is None else header)}.{segment(claims)}.c2ln"


def strategies() -> Dict[str, Any]:
    """The hostile inputs, built lazily so that --help works without hypothesis."""
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.sampled_from(RAWS)
    )
    values = st.recursive(
        scalars,
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
        max_leaves=15,
    )
    texts = st.one_of(st.text(max_size=30), st.sampled_from(["", " ", "\x00", "\udcff", "a" * 70_000]))
    numbers = st.one_of(
        st.sampled_from(["\u00b2", "\u2460", "\u0663", "9" * 5000, "3600", " 1 ", "-1", "", "1e3"]),
        st.sampled_from(RAWS),
        st.integers(),
        st.floats(),
        values,
    )

    def mutated(base: Dict[str, Any], fields: Dict[str, Any]) -> Any:
        change = st.sampled_from(sorted(fields)).flatmap(lambda n: st.tuples(st.just(n), st.just(DELETE) | fields[n]))

        def apply(changes: List[Tuple[str, Any]]) -> Dict[str, Any]:
            result = dict(base)
            for name, value in changes:
                if value is DELETE:
                    result.pop(name, None)
                else:
                    result[name] = value
            return result

        return st.lists(change, min_size=1, max_size=3).map(apply)

    claims = st.fixed_dictionaries({}, optional={"exp": numbers, "iat": numbers, "nonce": texts, "oid": texts})
    jwts = st.one_of(
        st.builds(jwt_of, claims, st.fixed_dictionaries({}, optional={"alg": st.sampled_from(["RS256", "none"])})),
        st.lists(st.text(alphabet="abcXYZ012-_=.", max_size=10), max_size=6).map(".".join),
        st.text(max_size=30),
    )
    good_token = {
        "token_type": "Bearer",
        "scope": DBX,
        "expires_in": 3600,
        "access_token": jwt_of({"exp": NOW + 3600, "oid": "o", "tid": "t"}),
        "refresh_token": "rt-good",
    }
    token_fields = {
        "access_token": jwts | texts | values,
        "expires_in": numbers,
        "ext_expires_in": numbers,
        "refresh_in": numbers,
        "token_type": texts | values,
        "scope": texts | values,
        "refresh_token": texts | values,
        "id_token": jwts | values,
        "error": st.sampled_from(["invalid_grant", "slow_down"]) | texts | values,
        "error_codes": st.lists(st.integers() | st.sampled_from([50076, 50196])) | values,
    }
    raw_bodies = st.one_of(
        st.binary(max_size=200),
        values.map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
        st.sampled_from([b"", b"<html><title>502</title></html>", b"[" * 100_000, gzip.compress(b"{}")]),
    )

    def bodies(dicts: Any) -> Any:
        encoded = dicts.map(lambda d: dumps(d).encode("utf-8", "surrogatepass"))
        return st.one_of(encoded, encoded, raw_bodies)

    statuses = st.sampled_from([200, 200, 200, 201, 302, 400, 401, 429, 500, 503]) | st.integers(100, 599)
    device = {
        "user_code": "ABCD",
        "device_code": "dc-secret",
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
        "interval": 5,
    }
    device_fields = {name: texts | values for name in ("user_code", "device_code", "verification_uri", "message")}
    device_fields.update({"expires_in": numbers, "interval": numbers, "error": texts | values})
    odd = ["", "%", "%zz", "%ED%A0%80", "\udcff", "\u00e9", "a&b", "\x00"]
    return {
        "st": st,
        "values": values,
        "texts": texts,
        "jwts": jwts,
        "claims": claims,
        "numbers": numbers,
        "token_response": st.one_of(
            st.tuples(statuses, bodies(mutated(good_token, token_fields) | values)),
            st.tuples(  # one number-of-seconds field hostile, the rest valid
                st.just(200),
                st.builds(
                    lambda name, value: dumps({**good_token, name: value}).encode("utf-8", "surrogatepass"),
                    st.sampled_from(["expires_in", "ext_expires_in", "refresh_in"]),
                    numbers,
                ),
            ),
            st.tuples(  # no expires_in: the expiry comes from the access token's exp
                st.just(200),
                claims.map(lambda c: dumps({"access_token": jwt_of(c)}).encode("utf-8", "surrogatepass")),
            ),
        ),
        "error_body": st.dictionaries(
            st.sampled_from(["error", "error_description", "error_codes", "trace_id", "claims"]) | st.text(max_size=5),
            values | texts,
            max_size=6,
        ),
        "jwks": st.tuples(statuses, bodies(st.fixed_dictionaries({}, optional={"keys": values}))),
        "discovery": st.tuples(statuses, bodies(st.dictionaries(st.text(max_size=10), values | texts, max_size=5))),
        "device_code": st.one_of(
            st.tuples(statuses, bodies(mutated(device, device_fields))),
            st.tuples(
                st.just(200),
                st.builds(
                    lambda name, value: dumps({**device, name: value}).encode("utf-8", "surrogatepass"),
                    st.sampled_from(["expires_in", "interval"]),
                    numbers,
                ),
            ),
        ),
        "nonce": st.one_of(st.sampled_from(RAWS), texts, values),
        "redirect": st.tuples(
            st.sampled_from(
                ["?", "http://localhost/?", "http://localhost:8400/?", "https://evil.example/?", "http://[::1/?"]
            ),
            st.lists(
                st.tuples(
                    st.sampled_from(["state", "code", "error", "state", "code"]) | st.text(max_size=5),
                    st.sampled_from(odd) | st.text(max_size=10) | st.just("<state>"),
                ),
                max_size=5,
            ),
        ),
        "pending": values.map(dumps) | st.text(max_size=40),
        "retry_after": st.lists(
            st.tuples(
                st.sampled_from(["retry-after", "retry-after-ms"]),
                st.text(max_size=30) | st.sampled_from(["nan", "inf", "-1", "Fri, 31 Dec 9999 23:59:59 -2359"]),
            ),
            max_size=3,
        ),
        "challenge": st.lists(
            st.text(max_size=40)
            | st.builds(
                lambda v: 'Bearer error="insufficient_claims", claims="' + v + '"',
                values.map(lambda x: base64.b64encode(dumps(x).encode("utf-8", "surrogatepass")).decode())
                | st.just(base64.b64encode(b"[" * 3000 + b"]" * 3000).decode()),
            ),
            max_size=2,
        ),
        "cache_file": st.one_of(
            cache_mutations(st, values),
            cache_mutations(st, values),
            st.binary(max_size=80),
            values.map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
            st.fixed_dictionaries(
                {"version": st.just(1) | values},
                optional={name: values for name in ("access_tokens", "refresh_tokens", "accounts", "flags")},
            ).map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
        ),
        "http_layer": st.tuples(
            st.sampled_from([200, 400, 429, 500]),
            bodies(mutated(good_token, token_fields)),
            st.sampled_from([None, "gzip", "deflate", "br", "identity", "x-unknown"]),
            st.sampled_from(["plain", "gzip", "bomb", "truncated-gzip"]),
        ),
    }


def good_cache() -> Dict[str, Any]:
    """A cache file's content after one password grant (one account, one access and refresh token)."""
    from oauth_core.cache import CacheScope, store
    from oauth_core.protocol import parse_token_response

    state: Dict[str, Any] = {"version": 1, "access_tokens": {}, "refresh_tokens": {}, "accounts": {}, "flags": {}}
    claims = {"oid": "o", "tid": "t", "scp": "x", "upn": "alice@contoso.com", "exp": time.time() + 3600}
    body = {"token_type": "Bearer", "access_token": jwt_of(claims), "expires_in": 3600, "refresh_token": "rt-1"}
    tokens = parse_token_response(http_response(200, json.dumps(body).encode()), received_at=time.time())
    store(state, CacheScope("https://login.microsoftonline.com", TENANT, CLIENT), tokens, (DBX, "offline_access"))
    state["flags"][next(iter(state["access_tokens"]))] = {"last_attempt": time.time() - 100}
    return state


def cache_paths(node: Any, path: Tuple[str, ...] = ()) -> List[Tuple[str, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += cache_paths(value, (*path, key))
    return found


def edit_cache(state: Dict[str, Any], edits: List[Tuple[Tuple[str, ...], Any]]) -> bytes:
    root: Any = json.loads(json.dumps(state))
    for path, value in edits:
        if not path:
            root = value
            continue
        node = root
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            if value is DELETE:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    return dumps(root).encode("utf-8", "surrogatepass")


def cache_mutations(st: Any, values: Any) -> Any:
    """A real cache with one to three values replaced or removed, as a hand edit would."""
    state = good_cache()
    edit = st.tuples(st.sampled_from(cache_paths(state)), st.just(DELETE) | values)
    return st.lists(edit, min_size=1, max_size=3).map(lambda edits: edit_cache(state, edits))


def corpus() -> Dict[str, List[Any]]:
    """Known hostile inputs run first for each parser (a seed corpus, as fuzzers keep one)."""
    huge_exp = jwt_of({"exp": Raw("huge_int", "1" + "0" * 400)})
    good_token = {"token_type": "Bearer", "access_token": "at", "expires_in": 3600}
    device = {"user_code": "ABCD", "device_code": "dc-secret", "verification_uri": "https://x", "expires_in": 900}
    state = good_cache()
    at_key, account_key = next(iter(state["access_tokens"])), next(iter(state["accounts"]))
    deep = base64.b64encode(b"[" * 3000 + b"]" * 3000).decode()
    return {
        "token_response": [
            (200, json.dumps({**good_token, "expires_in": "\u00b2"}).encode()),
            (200, json.dumps({**good_token, "expires_in": "9" * 5000}).encode()),
            (200, json.dumps({"access_token": huge_exp}).encode()),
            (200, b"[" * 100_000),
            (400, b'{"error": 5, "error_codes": "x"}'),
        ],
        "device_code": [(200, json.dumps({**device, "interval": "\u00b2"}).encode())],
        "redirect": [("?", [("state", "\udcff"), ("code", "x")]), ("?", [("state", "<state>"), ("code", "%ED%A0%80")])],
        "jwts": [huge_exp, jwt_of({"exp": Raw("nan", "NaN")}), jwt_of({}, {"alg": "none"})],
        "challenge": [['Bearer error="insufficient_claims", claims="' + deep + '"']],
        "nonce": [Raw("lone_surrogate", '"\\ud800"')],
        "cache_file": [
            b"\xff\xfe\x00{",
            edit_cache(state, [(("flags", at_key), "x")]),
            edit_cache(state, [(("accounts", account_key, "account"), DELETE)]),
            edit_cache(state, [(("access_tokens", at_key, "expires_at"), Raw("nan", "NaN"))]),
        ],
        "pending": ['{"version": 1}', '{"version": true}', "[" * 5000],
    }


def http_response(status: int, body: bytes) -> Any:
    from oauth_core.protocol import HttpResponse

    return HttpResponse(status=status, headers=(("content-type", "application/json"),), body=body)


def fuzz_targets() -> Dict[str, Tuple[str, Callable[[Any], None]]]:
    """parser name -> (strategy key, a check that raises AssertionError for a broken contract)."""
    from oauth_core.auth import bearer_challenge
    from oauth_core.authority import Authority
    from oauth_core.authorize import PendingAuthorization, build_authorization_request, parse_redirect
    from oauth_core.claims import inspect_token, unverified_claims, verify_signature
    from oauth_core.device import parse_device_code_response
    from oauth_core.errors import OAuthError, oauth_error_from_body
    from oauth_core.protocol import TokenSet, parse_json_object, parse_jwks_response, parse_token_response
    from oauth_core.retry import retry_after_seconds

    pending = build_authorization_request(Authority.of(None, TENANT), CLIENT, "http://localhost", (DBX,), now=NOW)

    def token_response(case: Tuple[int, bytes]) -> None:
        result = parse_token_response(http_response(*case), received_at=NOW)
        assert isinstance(result, TokenSet) and case[0] == 200 and math.isfinite(result.expires_at)
        assert isinstance(result.access_token, str) and result.access_token

    def error_body(body: Dict[str, Any]) -> None:
        error = oauth_error_from_body(body)
        assert isinstance(error, OAuthError) and len(str(error)) <= 500
        json.dumps(error.to_dict())

    def jwks(case: Tuple[int, bytes]) -> None:
        result = parse_jwks_response(http_response(*case))
        assert case[0] == 200 and all(isinstance(k, dict) for k in result["keys"])

    def discovery(case: Tuple[int, bytes]) -> None:
        assert isinstance(parse_json_object(http_response(*case)), dict)

    def device_code(case: Tuple[int, bytes]) -> None:
        code = parse_device_code_response(http_response(*case), received_at=NOW)
        assert case[0] == 200 and 0 < code.interval <= 86400 and math.isfinite(code.expires_at)

    def redirect(case: Tuple[str, List[Tuple[str, str]]]) -> None:
        prefix, pairs = case
        text = prefix + "&".join(f"{k}={pending.state if v == '<state>' else v}" for k, v in pairs)
        assert parse_redirect(pending, text)

    def pending_json(text: str) -> None:
        assert PendingAuthorization.from_json(text).to_json()

    def jwt(token: str) -> None:
        claims = unverified_claims(token)
        info = inspect_token(token)
        assert isinstance(claims, dict) and (info.seconds_left is None or isinstance(info.seconds_left, float))

    def verify(token: str) -> None:
        verify_signature(token, {"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]})
        raise AssertionError("an unsigned token verified")

    def retry_after(headers: List[Tuple[str, str]]) -> None:
        from oauth_core.protocol import HttpResponse

        wait = retry_after_seconds(HttpResponse(429, tuple(headers), b""))
        assert wait is None or (math.isfinite(wait) and wait >= 0)

    def nonce(value: Any) -> None:
        from oauth_core.authorize import exchange_code_flow

        body = {"token_type": "Bearer", "access_token": "at", "expires_in": 3600, "id_token": jwt_of({"nonce": value})}
        flow = exchange_code_flow(pending, "the-code")
        next(flow)
        try:
            flow.send(http_response(200, dumps(body).encode("utf-8", "surrogatepass")))
        except StopIteration as done:
            assert unverified_claims(done.value.id_token)["nonce"] == pending.nonce, "a wrong nonce was accepted"

    def challenge(values: List[str]) -> None:
        from oauth_core.auth import _claims_challenge

        params = bearer_challenge(values)
        if params is not None and params.get("claims"):
            raise _claims_challenge(params)

    return {
        "parse_token_response": ("token_response", token_response),
        "oauth_error_from_body": ("error_body", error_body),
        "parse_jwks_response": ("jwks", jwks),
        "parse_json_object (discovery)": ("discovery", discovery),
        "parse_device_code_response": ("device_code", device_code),
        "parse_redirect": ("redirect", redirect),
        "PendingAuthorization.from_json": ("pending", pending_json),
        "unverified_claims / inspect_token": ("jwts", jwt),
        "verify_signature": ("jwts", verify),
        "retry_after_seconds": ("retry_after", retry_after),
        "WWW-Authenticate claims challenge": ("challenge", challenge),
        "exchange_code_flow (id_token nonce)": ("nonce", nonce),
        "FileTokenCache + get_token": ("cache_file", _cache_file_target()),
        "HTTP layer (encodings, bombs)": ("http_layer", _http_layer_target()),
    }


def _cache_file_target() -> Callable[[bytes], None]:
    def check(content: bytes) -> None:
        import httpx

        from oauth_core.cache import FileTokenCache, accounts, entries, resolve_account
        from oauth_core.client import EntraClient
        from oauth_core.retry import RetryPolicy

        body = {"token_type": "Bearer", "access_token": "fresh", "expires_in": 3600, "refresh_token": "rt"}
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "tokens.json"
            path.write_bytes(content)
            cache = FileTokenCache(path)
            transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
            with httpx.Client(transport=transport) as http:
                client = EntraClient(
                    CLIENT,
                    TENANT,
                    http_client=http,
                    cache=cache,
                    retry=RetryPolicy(max_attempts=1, sleep=lambda s: None),
                )
                errors = []
                for step in (
                    lambda: accounts(cache.snapshot()),
                    lambda: entries(cache.snapshot()),
                    lambda: resolve_account(cache.snapshot(), client._where, None),
                    lambda: client.get_token(min_validity=HARD),
                ):
                    try:
                        step()
                    except _core_error() as exc:
                        errors.append(exc)
            if path.read_bytes() != content:
                assert json.loads(path.read_text(encoding="utf-8"))["version"] == 1
            if errors:
                raise errors[0]

    return check


def _http_layer_target() -> Callable[[Tuple[int, bytes, Optional[str], str]], None]:
    def check(case: Tuple[int, bytes, Optional[str], str]) -> None:
        import zlib

        import httpx

        from oauth_core.client import EntraClient
        from oauth_core.retry import RetryPolicy

        status, body, encoding, how = case
        raw = {
            "plain": body,
            "gzip": gzip.compress(body),
            "bomb": gzip.compress(b" " * (8 * 1024 * 1024) + body),
            "truncated-gzip": gzip.compress(body)[: max(1, len(body) // 3)],
        }.get(how, zlib.compress(body))
        headers = [("content-type", "application/json")] + ([("content-encoding", encoding)] if encoding else [])

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw))

        with httpx.Client(transport=httpx.MockTransport(answer)) as http:
            client = EntraClient(
                CLIENT, TENANT, http_client=http, retry=RetryPolicy(max_attempts=2, sleep=lambda s: None)
            )
            client.acquire_by_password("someone@contoso.com", "pw")

    return check


def _core_error() -> type:
    from oauth_core.errors import OAuthCoreError

    return OAuthCoreError


def _fuzz_body(result: FuzzResult, target: Callable[[Any], None], core_error: type) -> Callable[[Any], None]:
    """One example: counted, and classified as a valid value, a typed error or a failure."""

    def body(value: Any) -> None:
        result.cases += 1
        try:
            with alarm(5.0):
                target(value)
        except core_error:
            result.typed_errors += 1
        except (Exception, Hang) as exc:
            result.failures += 1
            kind = type(exc).__name__ + (": " + str(exc)[:80] if isinstance(exc, AssertionError) else "")
            result.examples.setdefault(kind, repr(value)[:160])

    return body


def run_fuzz(examples: int, seed: Optional[int]) -> List[FuzzResult]:
    from hypothesis import HealthCheck, Phase, example, given, seed as hypothesis_seed, settings

    core_error = _core_error()
    pool = strategies()
    known = corpus()
    results = []
    for name, (key, target) in fuzz_targets().items():
        result = FuzzResult(name)

        body = _fuzz_body(result, target, core_error)
        test = given(pool[key])(body)
        for value in known.get(key, []):
            test = example(value)(test)
        test = settings(
            max_examples=examples,
            derandomize=seed is None,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(test)
        if seed is not None:
            test = hypothesis_seed(seed)(test)
        test()
        results.append(result)
    return results


# -- faults ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FaultResult:
    scenario: str
    attempts: int
    waits: List[float]
    seconds: float
    outcome: str
    survived: bool
    note: str = ""


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def fault_scenarios() -> List[Tuple[str, List[Tuple[Any, int]], Optional[str], float, Dict[str, Any]]]:
    """(name, faults, expected error class name or None, client timeout, retry policy overrides)."""
    from oauth_core.emulator import Fault

    return [
        ("429 x3, Retry-After: 2", [(Fault("status", status=429, retry_after=2), 3)], None, 2.0, {}),
        ("429 storm, no Retry-After", [(Fault("status", status=429, body="slow down"), 10)], "TransientError", 2.0, {}),
        (
            "429, Retry-After: 120 (over the cap)",
            [(Fault("status", status=429, retry_after=120), 1)],
            "TransientError",
            2.0,
            {},
        ),
        ("503 x2", [(Fault("status", status=503), 2)], None, 2.0, {}),
        ("500, 502, 504", [(Fault("status", status=s), 1) for s in (500, 502, 504)], None, 2.0, {}),
        ("503 burst beyond the attempts", [(Fault("status", status=503), 10)], "TransientError", 2.0, {}),
        ("delay 0.8 s, timeout 0.3 s, once", [(Fault("delay", seconds=0.8), 1)], None, 0.3, {}),
        (
            "delay past the timeout, every attempt",
            [(Fault("delay", seconds=0.6), 3)],
            "TransientError",
            0.3,
            {"max_attempts": 3},
        ),
        ("dropped before the request was read", [(Fault("drop_before"), 1)], None, 2.0, {}),
        ("dropped after the refresh (lost response)", [(Fault("drop_after"), 1)], None, 2.0, {}),
        ("every response lost", [(Fault("drop_after"), 4)], "TransientError", 2.0, {}),
        ("truncated body", [(Fault("truncate"), 1)], None, 2.0, {}),
        ("proxy HTML, 502", [(Fault("html", status=502), 1)], None, 2.0, {}),
        ("captive portal HTML, 200", [(Fault("html", status=200), 1)], "ResponseFormatError", 2.0, {}),
    ]


def _cache_ok(path: Path) -> Tuple[bool, Optional[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tokens = [e["refresh_token"] for e in data["refresh_tokens"].values()]
        whole = data["version"] == 1 and not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
        return whole, (tokens[0] if len(tokens) == 1 else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False, None


def run_faults() -> List[FaultResult]:
    from oauth_core import EntraClient, OAuthCoreError, RetryPolicy
    from oauth_core.cache import FileTokenCache
    from oauth_core.emulator import Emulator, EmulatorConfig, Fault

    results = []
    keeping = dataclasses.replace(EmulatorConfig.default(), revoke_rotated_refresh_tokens=False, token_lifetime=3600)
    revoking = dataclasses.replace(EmulatorConfig.default(), token_lifetime=3600)
    cases = [(keeping, *scenario) for scenario in fault_scenarios()]
    cases.append(
        (
            revoking,
            "lost response, service revokes on rotation",
            [(Fault("drop_after"), 1)],
            "InteractionRequired",
            2.0,
            {},
        )
    )
    emulators: Dict[int, Any] = {}
    try:
        for config, name, faults, expected, timeout, policy in cases:
            emulator = emulators.get(id(config))
            if emulator is None:
                emulator = emulators[id(config)] = Emulator(config, port=0).start()
            fake = FakeTime()
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "tokens.json"
                settings: Dict[str, Any] = {"jitter": False, "sleep": fake.sleep, "clock": fake.monotonic, **policy}
                client = EntraClient(
                    emulator.config.clients[0].client_id,
                    emulator.tenant_id,
                    authority_host=emulator.url,
                    retry=RetryPolicy(**settings),
                    timeout=timeout,
                    cache=FileTokenCache(path),
                )
                user = emulator.config.users[0]
                client.acquire_by_password(user.username, user.password)
                _, before_token = _cache_ok(path)
                before = emulator.count("token")
                for fault, times in faults:
                    emulator.inject("token", fault, times=times)
                started = time.perf_counter()
                try:
                    client.get_token(min_validity=HARD)
                    outcome = "tokens"
                except OAuthCoreError as exc:
                    outcome = type(exc).__name__
                except Exception as exc:  # a failure of the client: counted, not raised
                    outcome = f"UNTYPED {type(exc).__name__}"
                seconds = time.perf_counter() - started
                emulator.clear_faults()
                deadline = time.monotonic() + 3.0  # delayed requests are logged when the emulator finishes them
                while time.monotonic() < deadline and any(f.kind == "delay" for f, _ in faults):
                    if emulator.count("token") - before >= len(fake.waits) + 1:
                        break
                    time.sleep(0.05)
                attempts = emulator.count("token") - before
                whole, token = _cache_ok(path)
                works = False
                note = ""
                if expected == "InteractionRequired":
                    note = "the retry sent the revoked token: invalid_grant; the session needs a new sign-in"
                    works = token == before_token  # the cache kept the (dead) token whole; nothing was lost
                else:
                    try:
                        works = bool(client.get_token(min_validity=HARD).access_token)
                    except OAuthCoreError as exc:
                        note = f"refresh after the faults failed: {type(exc).__name__}"
                    if expected is not None and token != before_token:
                        whole, note = False, "a failed refresh changed the cached refresh token"
                survived = outcome == (expected or "tokens") and whole and works
                results.append(FaultResult(name, attempts, list(fake.waits), seconds, outcome, survived, note))
                client.close()
    finally:
        for emulator in emulators.values():
            emulator.stop()
    return results


# -- SIGKILL during cache writes ---------------------------------------------------------------------


@dataclasses.dataclass
class KillResult:
    runs: int = 0
    corrupt: int = 0
    missing: int = 0
    versions_seen: int = 0
    temp_files_left: int = 0
    seconds: float = 0.0
    problems: List[str] = dataclasses.field(default_factory=list)


def _writer(path: str, ready: int) -> None:
    """The child: rewrite the cache forever, each version a different size, until killed."""
    from oauth_core.cache import FileTokenCache

    cache = FileTokenCache(path)
    os.write(ready, b"r")
    n = 0
    while True:
        n += 1
        with cache.transaction() as state:
            state["access_tokens"] = {
                f"key{i}": {"access_token": "x" * (1000 + 37 * (n % 50)), "n": n} for i in range(50)
            }


def _check_cache_file(path: Path) -> Tuple[bool, Optional[int]]:
    """Whole (one writer's version, all 50 entries of it) or not; and which version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["access_tokens"]
        versions = {entry["n"] for entry in entries.values()}
        lengths = {len(entry["access_token"]) for entry in entries.values()}
        return data["version"] == 1 and len(entries) == 50 and len(versions) == 1 and len(lengths) == 1, versions.pop()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False, None


def run_kills(runs: int, rng: random.Random) -> KillResult:
    result = KillResult()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokens.json"
        seen = set()
        for _ in range(runs):
            pid = _spawn_writer(str(path))
            time.sleep(rng.uniform(0.0, 0.04))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            result.runs += 1
            if not path.exists():
                result.missing += 1
                continue
            whole, version = _check_cache_file(path)
            if whole:
                seen.add(version)
            else:
                result.corrupt += 1
                result.problems.append(path.read_text(encoding="utf-8", errors="replace")[:80])
                path.unlink()  # start the next run from nothing, as a user would after deleting it
        result.versions_seen = len(seen)
        result.temp_files_left = len([p for p in Path(folder).iterdir() if p.name.endswith(".tmp")])
    result.seconds = time.perf_counter() - started
    return result


def _spawn_writer(path: str) -> int:
    """A writer process (forked where possible: fast), returned once it is writing."""
    read, write = os.pipe()
    if hasattr(os, "fork"):
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.close(read)
                _writer(path, write)
            finally:
                os._exit(1)
        os.close(write)
    else:  # pragma: no cover - platforms without fork
        import subprocess

        code = "import sys, os; from bench.reliability import _writer; _writer(sys.argv[1], int(sys.argv[2]))"
        proc = subprocess.Popen([sys.executable, "-c", code, path, str(write)], pass_fds=(write,))
        os.close(write)
        pid = proc.pid
    os.read(read, 1)
    os.close(read)
    return pid


# -- secrets -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class SecretResult:
    secrets: int = 0
    surfaces: int = 0
    checks: int = 0
    leaks: List[str] = dataclasses.field(default_factory=list)
    flows: int = 0


class LeakSearch:
    def __init__(self) -> None:
        self.secrets: Dict[str, str] = {}
        self.surfaces: List[Tuple[str, str]] = []
        self.flows = 0

    def secret(self, name: str, value: Optional[str]) -> None:
        if value and len(value) >= 8:
            self.secrets.setdefault(value, name)

    def tokens(self, where: str, tokens: Any) -> None:
        for kind in ("access_token", "refresh_token", "id_token"):
            self.secret(f"{where} {kind}", getattr(tokens, kind, None))
        self.shown(where, tokens)

    def shown(self, where: str, *objects: Any) -> None:
        for value in objects:
            self.surfaces += [(f"{where}: repr", repr(value)), (f"{where}: str", str(value))]

    @contextlib.contextmanager
    def logs(self, where: str) -> Iterator[None]:
        records: List[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        handler = Keep(logging.DEBUG)
        loggers = [logging.getLogger(), logging.getLogger("oauth_core")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.removeHandler(handler)
                logger.setLevel(level)
            formatter = logging.Formatter("%(name)s %(message)s")
            for record in {id(r): r for r in records}.values():
                if not record.name.startswith("oauth_core.emulator"):
                    self.surfaces.append((f"{where}: log", formatter.format(record)))

    def call(self, where: str, action: Callable[[], Any]) -> Any:
        from oauth_core.errors import OAuthCoreError, OAuthError

        self.flows += 1
        with self.logs(where):
            try:
                return action()
            except OAuthCoreError as exc:
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                self.surfaces += [(f"{where}: error", f"{exc}\n{exc!r}\n{text}")]
                if isinstance(exc, OAuthError):
                    self.surfaces.append((f"{where}: error dict", json.dumps(exc.to_dict())))
                return exc

    def cli(
        self, where: str, argv: List[str], stdin: str = "", env: Optional[Dict[str, str]] = None
    ) -> Tuple[int, str]:
        from oauth_core.cli import main

        out, err = io.StringIO(), io.StringIO()
        saved_env = {name: os.environ.get(name) for name in (env or {})}
        saved_streams = sys.stdin, sys.stderr
        logger = logging.getLogger("oauth_core")
        handlers, level = list(logger.handlers), logger.level
        try:
            os.environ.update(env or {})
            sys.stdin, sys.stderr = io.StringIO(stdin), err
            with self.logs(where):
                code = main([*argv, "--verbose"], stdout=out, stderr=err)
        finally:
            sys.stdin, sys.stderr = saved_streams
            logger.handlers[:] = handlers
            logger.setLevel(level)
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self.flows += 1
        self.surfaces.append((f"{where}: stderr", err.getvalue()))
        if code != 0:
            self.surfaces.append((f"{where}: stdout", out.getvalue()))
        return code, out.getvalue()

    def result(self) -> SecretResult:
        from urllib.parse import quote

        leaks = []
        for value, name in self.secrets.items():
            forms = {value, quote(value, safe="")}
            leaks += [f"{name} in {where}" for where, text in self.surfaces if any(f in text for f in forms)]
        return SecretResult(
            len(self.secrets),
            len(self.surfaces),
            len(self.secrets) * len(self.surfaces),
            sorted(set(leaks)),
            self.flows,
        )


def run_secrets() -> SecretResult:
    from urllib.parse import parse_qs, urlsplit

    from oauth_core import EntraClient, RetryPolicy
    from oauth_core.cache import FileTokenCache
    from oauth_core.demo import scripted_sign_in
    from oauth_core.emulator import Emulator, EmulatorConfig

    search = LeakSearch()
    wrong_password, wrong_secret, bogus_rt = (
        "Wr0ng-Passw0rd-xyz",
        "wrong-client-secret-xyz",
        "0.AXkA-bogus-refresh-token-xyz",
    )
    for name, value in (("wrong password", wrong_password), ("wrong secret", wrong_secret), ("bogus RT", bogus_rt)):
        search.secret(name, value)
    config = dataclasses.replace(EmulatorConfig.default(), token_lifetime=3600)
    with Emulator(config, port=0) as emulator, tempfile.TemporaryDirectory() as home:
        for user in config.users:
            search.secret(f"password of {user.username}", user.password)
        confidential = config.clients[1]
        search.secret("client secret", confidential.secret)
        alice = config.users[0]
        policy = RetryPolicy(sleep=lambda s: None, max_attempts=2)
        client = EntraClient(
            config.clients[0].client_id,
            config.tenant_id,
            authority_host=emulator.url,
            retry=policy,
            cache=FileTokenCache(Path(home) / "tokens.json"),
        )
        search.shown("client", client)
        first = search.call("password", lambda: client.acquire_by_password(alice.username, alice.password))
        search.tokens("password", first)
        search.call("wrong password", lambda: client.acquire_by_password(alice.username, wrong_password))
        search.tokens("refresh", search.call("refresh", lambda: client.refresh(first.refresh_token)))
        search.call("reused refresh token", lambda: client.refresh(first.refresh_token))
        search.call("bogus refresh token", lambda: client.refresh(bogus_rt))
        search.tokens("get_token", search.call("get_token", lambda: client.get_token(min_validity=HARD)))
        pending = client.authorization_request()
        for name in ("state", "nonce", "code_verifier"):
            search.secret(f"pending {name}", getattr(pending, name))
        search.shown("pending", pending)
        location = scripted_sign_in(pending.url, alice.username, alice.password)
        search.secret("code", parse_qs(urlsplit(location).query)["code"][0])
        tampered = re.sub(r"state=[^&]+", "state=tampered-state-value", location)
        search.call("state mismatch", lambda: client.exchange_code(pending, tampered))
        other = dataclasses.replace(pending, nonce="another-nonce-value-xyz")
        search.secret("other nonce", other.nonce)
        search.call("nonce mismatch", lambda: client.exchange_code(other, location))
        pending = client.authorization_request()
        location = scripted_sign_in(pending.url, alice.username, alice.password)
        search.secret("code", parse_qs(urlsplit(location).query)["code"][0])
        for name in ("state", "nonce", "code_verifier"):
            search.secret(f"pending {name}", getattr(pending, name))
        search.tokens("code exchange", search.call("code exchange", lambda: client.exchange_code(pending, location)))
        search.call("code reused", lambda: client.exchange_code(pending, location))

        def approve(code: Any) -> None:
            search.secret("device code", code.device_code)
            search.shown("device code", code)
            emulator.approve_device_code(code.user_code, alice.username)

        search.tokens("device code", search.call("device code", lambda: client.acquire_by_device_code(on_code=approve)))
        client.close()
        for secret in (confidential.secret, wrong_secret):
            app = EntraClient(
                confidential.client_id,
                config.tenant_id,
                authority_host=emulator.url,
                client_secret=secret,
                scopes=DBX,
                retry=policy,
            )
            search.shown("confidential client", app)
            result = search.call("client credentials", app.acquire_for_client)
            if secret == confidential.secret:
                search.tokens("client credentials", result)
            app.close()

        env = {
            "OAUTH_CORE_HOME": home,
            "AZURE_AUTHORITY_HOST": emulator.url,
            "AZURE_TENANT_ID": config.tenant_id,
            "AZURE_CLIENT_ID": config.clients[0].client_id,
        }
        code, out = search.cli(
            "cli password", ["password", "-u", alice.username, "--password-stdin", "--json"], alice.password + "\n", env
        )
        if code == 0:
            for kind in ("access_token", "refresh_token", "id_token"):
                search.secret(f"cli {kind}", json.loads(out)[kind])
        search.cli(
            "cli wrong password", ["password", "-u", alice.username, "--password-stdin"], wrong_password + "\n", env
        )
        search.cli("cli password on argv", ["password", "-u", alice.username, "--password", wrong_password], "", env)
        search.cli("cli refresh", ["refresh"], "", env)
        search.cli("cli bogus refresh token", ["refresh", "--refresh-token-stdin"], bogus_rt + "\n", env)
        search.cli("cli token", ["token"], "", env)
        search.cli("cli accounts", ["accounts", "--json"], "", env)
        secret_env = {**env, "AZURE_CLIENT_ID": confidential.client_id, "AZURE_CLIENT_SECRET": wrong_secret}
        search.cli("cli wrong client secret", ["client-credentials"], "", secret_env)
        search.cli("cli logout", ["logout"], "", env)
    return search.result()


# -- the report --------------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str], align: str) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def markdown(report: Dict[str, Any]) -> str:
    lines = [f"## Reliability ({report['mode']} run, {report['seconds']:.0f} s, oauth-core {report['version']})", ""]
    summary = []
    fuzz = report.get("fuzz")
    if fuzz is not None:
        cases = sum(r["cases"] for r in fuzz)
        failures = sum(r["failures"] for r in fuzz)
        summary.append(("fuzz cases (all parsers)", cases, f"{failures} failures"))
    faults = report.get("faults")
    if faults is not None:
        summary.append(("fault scenarios", len(faults), f"{sum(r['survived'] for r in faults)} survived"))
    kill = report.get("kill")
    if kill is not None:
        summary.append(("SIGKILL during cache writes", kill["runs"], f"{kill['corrupt']} corrupt caches"))
    secrets = report.get("secrets")
    if secrets is not None:
        summary.append(("secret-leak checks", secrets["checks"], f"{len(secrets['leaks'])} leaks"))
    lines += [*_table(summary, ["what", "runs", "result"], "lrl"), ""]
    if fuzz is not None:
        rows = [
            (
                r["parser"],
                r["cases"],
                r["typed_errors"],
                r["failures"],
                "; ".join(f"{k} on {v}" for k, v in r["examples"].items())[:160],
            )
            for r in fuzz
        ]
        header = ["parser", "cases", "typed errors", "failures", "first failing input"]
        lines += ["### Fuzzing (hypothesis)", "", *_table(rows, header, "lrrrl"), ""]
    if faults is not None:
        rows = [
            (
                r["scenario"],
                r["attempts"],
                ", ".join(f"{w:g}" for w in r["waits"]) or "-",
                f"{r['seconds']:.2f}",
                r["outcome"],
                "yes" if r["survived"] else "NO",
                r["note"],
            )
            for r in faults
        ]
        header = ["scenario", "requests", "waits (s)", "real s", "caller sees", "survived", "note"]
        lines += ["### Faults on a real socket (silent refresh, file cache)", "", *_table(rows, header, "lrlrlll"), ""]
    if kill is not None:
        lines += [
            "### SIGKILL during cache writes",
            "",
            f"{kill['runs']} runs in {kill['seconds']:.1f} s: {kill['corrupt']} corrupt, {kill['missing']} before the "
            f"first write, {kill['versions_seen']} distinct versions seen, {kill['temp_files_left']} temp files left "
            "by killed writers (0600, never read as the cache).",
            "",
        ]
    if secrets is not None:
        lines += [
            "### Secrets",
            "",
            f"{secrets['flows']} flows and CLI runs; {secrets['secrets']} secret values searched in "
            f"{secrets['surfaces']} surfaces (logs, reprs, errors, tracebacks, CLI output): "
            f"{secrets['checks']} checks, {len(secrets['leaks'])} leaks.",
            *[f"- {leak}" for leak in secrets["leaks"][:20]],
            "",
        ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and kills: under a minute")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--examples", type=int, help="fuzz examples per parser (default 1000, quick 150)")
    parser.add_argument("--kills", type=int, help="SIGKILL runs (default 200, quick 50)")
    parser.add_argument("--seed", type=int, help="random fuzzing and kill times from this seed (default: fixed)")
    parser.add_argument(
        "--only", action="append", choices=("fuzz", "faults", "kill", "secrets"), help="run only these parts"
    )
    args = parser.parse_args(argv)
    parts = set(args.only or ("fuzz", "faults", "kill", "secrets"))
    examples = args.examples or (150 if args.quick else 1000)
    kills = args.kills or (50 if args.quick else 200)
    import oauth_core

    report: Dict[str, Any] = {"mode": "quick" if args.quick else "full", "version": oauth_core.__version__}
    started = time.perf_counter()
    if "kill" in parts:  # first: forking is safest before any thread starts
        report["kill"] = dataclasses.asdict(
            run_kills(kills, random.Random(args.seed if args.seed is not None else 20240601))
        )
    if "fuzz" in parts:
        report["fuzz"] = [dataclasses.asdict(r) for r in run_fuzz(examples, args.seed)]
    if "faults" in parts:
        report["faults"] = [dataclasses.asdict(r) for r in run_faults()]
    if "secrets" in parts:
        report["secrets"] = dataclasses.asdict(run_secrets())
    report["seconds"] = time.perf_counter() - started
    bad = (
        sum(r["failures"] for r in report.get("fuzz", []))
        + sum(not r["survived"] for r in report.get("faults", []))
        + report.get("kill", {}).get("corrupt", 0)
        + len(report.get("secrets", {}).get("leaks", []))
    )
    report["clean"] = bad == 0
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
