"""The fuzzer's inputs: hypothesis strategies per parser, and the seed corpus of known hostile inputs.

:func:`strategies` maps a key (``"token_response"``, ``"cache_file"``, ...) to a strategy;
:func:`corpus` maps the same keys to inputs run first. Hypothesis is imported only when
:func:`strategies` is called, so ``--help`` works without it.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import time
from typing import Any, Dict, List, Tuple

from .shared import CLIENT, DBX, DELETE, NOW, RAWS, TENANT, Raw, dumps, http_response, jwt_of


@dataclasses.dataclass(frozen=True)
class Basics:
    """The building blocks the per-parser strategies are made of."""

    st: Any
    values: Any
    texts: Any
    numbers: Any
    claims: Any
    jwts: Any
    statuses: Any
    raw_bodies: Any

    def bodies(self, dicts: Any) -> Any:
        encoded = dicts.map(lambda d: dumps(d).encode("utf-8", "surrogatepass"))
        return self.st.one_of(encoded, encoded, self.raw_bodies)


def _basics(st: Any) -> Basics:
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
    claims = st.fixed_dictionaries({}, optional={"exp": numbers, "iat": numbers, "nonce": texts, "oid": texts})
    jwts = st.one_of(
        st.builds(jwt_of, claims, st.fixed_dictionaries({}, optional={"alg": st.sampled_from(["RS256", "none"])})),
        st.lists(st.text(alphabet="abcXYZ012-_=.", max_size=10), max_size=6).map(".".join),
        st.text(max_size=30),
    )
    raw_bodies = st.one_of(
        st.binary(max_size=200),
        values.map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
        st.sampled_from([b"", b"<html><title>502</title></html>", b"[" * 100_000, gzip.compress(b"{}")]),
    )
    statuses = st.sampled_from([200, 200, 200, 201, 302, 400, 401, 429, 500, 503]) | st.integers(100, 599)
    return Basics(st, values, texts, numbers, claims, jwts, statuses, raw_bodies)


def mutated(st: Any, base: Dict[str, Any], fields: Dict[str, Any]) -> Any:
    """``base`` with one to three of ``fields`` replaced by their strategy's values or removed."""
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


def _good_token() -> Dict[str, Any]:
    return {
        "token_type": "Bearer",
        "scope": DBX,
        "expires_in": 3600,
        "access_token": jwt_of({"exp": NOW + 3600, "oid": "o", "tid": "t"}),
        "refresh_token": "rt-good",
    }


def _token_fields(b: Basics) -> Dict[str, Any]:
    st, texts, values = b.st, b.texts, b.values
    return {
        "access_token": b.jwts | texts | values,
        "expires_in": b.numbers,
        "ext_expires_in": b.numbers,
        "refresh_in": b.numbers,
        "token_type": texts | values,
        "scope": texts | values,
        "refresh_token": texts | values,
        "id_token": b.jwts | values,
        "error": st.sampled_from(["invalid_grant", "slow_down"]) | texts | values,
        "error_codes": st.lists(st.integers() | st.sampled_from([50076, 50196])) | values,
    }


def _token_responses(b: Basics, good_token: Dict[str, Any], token_fields: Dict[str, Any]) -> Any:
    st = b.st
    return st.one_of(
        st.tuples(b.statuses, b.bodies(mutated(st, good_token, token_fields) | b.values)),
        st.tuples(  # one number-of-seconds field hostile, the rest valid
            st.just(200),
            st.builds(
                lambda name, value: dumps({**good_token, name: value}).encode("utf-8", "surrogatepass"),
                st.sampled_from(["expires_in", "ext_expires_in", "refresh_in"]),
                b.numbers,
            ),
        ),
        st.tuples(  # no expires_in: the expiry comes from the access token's exp
            st.just(200),
            b.claims.map(lambda c: dumps({"access_token": jwt_of(c)}).encode("utf-8", "surrogatepass")),
        ),
    )


def _device_code_responses(b: Basics) -> Any:
    st = b.st
    device = {
        "user_code": "ABCD",
        "device_code": "dc-secret",
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
        "interval": 5,
    }
    device_fields = {name: b.texts | b.values for name in ("user_code", "device_code", "verification_uri", "message")}
    device_fields.update({"expires_in": b.numbers, "interval": b.numbers, "error": b.texts | b.values})
    return st.one_of(
        st.tuples(b.statuses, b.bodies(mutated(st, device, device_fields))),
        st.tuples(
            st.just(200),
            st.builds(
                lambda name, value: dumps({**device, name: value}).encode("utf-8", "surrogatepass"),
                st.sampled_from(["expires_in", "interval"]),
                b.numbers,
            ),
        ),
    )


def _redirects(st: Any) -> Any:
    odd = ["", "%", "%zz", "%ED%A0%80", "\udcff", "\u00e9", "a&b", "\x00"]
    return st.tuples(
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
    )


def _retry_after_headers(st: Any) -> Any:
    return st.lists(
        st.tuples(
            st.sampled_from(["retry-after", "retry-after-ms"]),
            st.text(max_size=30) | st.sampled_from(["nan", "inf", "-1", "Fri, 31 Dec 9999 23:59:59 -2359"]),
        ),
        max_size=3,
    )


def _challenges(b: Basics) -> Any:
    st = b.st
    return st.lists(
        st.text(max_size=40)
        | st.builds(
            lambda v: 'Bearer error="insufficient_claims", claims="' + v + '"',
            b.values.map(lambda x: base64.b64encode(dumps(x).encode("utf-8", "surrogatepass")).decode())
            | st.just(base64.b64encode(b"[" * 3000 + b"]" * 3000).decode()),
        ),
        max_size=2,
    )


def _cache_files(b: Basics) -> Any:
    st, values = b.st, b.values
    return st.one_of(
        cache_mutations(st, values),
        cache_mutations(st, values),
        st.binary(max_size=80),
        values.map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
        st.fixed_dictionaries(
            {"version": st.just(1) | values},
            optional={name: values for name in ("access_tokens", "refresh_tokens", "accounts", "flags")},
        ).map(lambda v: dumps(v).encode("utf-8", "surrogatepass")),
    )


def strategies() -> Dict[str, Any]:
    """The hostile inputs, built lazily so that --help works without hypothesis."""
    from hypothesis import strategies as st

    b = _basics(st)
    good_token, token_fields = _good_token(), _token_fields(b)
    return {
        "st": st,
        "values": b.values,
        "texts": b.texts,
        "jwts": b.jwts,
        "claims": b.claims,
        "numbers": b.numbers,
        "token_response": _token_responses(b, good_token, token_fields),
        "error_body": st.dictionaries(
            st.sampled_from(["error", "error_description", "error_codes", "trace_id", "claims"]) | st.text(max_size=5),
            b.values | b.texts,
            max_size=6,
        ),
        "jwks": st.tuples(b.statuses, b.bodies(st.fixed_dictionaries({}, optional={"keys": b.values}))),
        "discovery": st.tuples(
            b.statuses, b.bodies(st.dictionaries(st.text(max_size=10), b.values | b.texts, max_size=5))
        ),
        "device_code": _device_code_responses(b),
        "nonce": st.one_of(st.sampled_from(RAWS), b.texts, b.values),
        "redirect": _redirects(st),
        "pending": b.values.map(dumps) | st.text(max_size=40),
        "retry_after": _retry_after_headers(st),
        "challenge": _challenges(b),
        "cache_file": _cache_files(b),
        "http_layer": st.tuples(
            st.sampled_from([200, 400, 429, 500]),
            b.bodies(mutated(st, good_token, token_fields)),
            st.sampled_from([None, "gzip", "deflate", "br", "identity", "x-unknown"]),
            st.sampled_from(["plain", "gzip", "bomb", "truncated-gzip"]),
        ),
    }


def good_cache() -> Dict[str, Any]:
    """A cache file's content after one password grant (one account, one access and refresh token)."""
    from oauth_core.core.protocol import parse_token_response
    from oauth_core.drivers.stores import CacheScope, store

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
