"""The parsers under fuzzing, each wrapped in a check of its contract.

:func:`fuzz_targets` maps a parser's name to the key of its inputs in
:func:`~bench.reliability.fuzz_inputs.strategies` and a check. A check returns when the parser
gave a valid value, lets an :class:`oauth_core.OAuthCoreError` through (a typed refusal), and raises
anything else (an ``AssertionError`` when the value breaks the contract) for a failure.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .shared import CLIENT, DBX, HARD, NOW, TENANT, core_error, dumps, http_response, jwt_of

Check = Callable[[Any], None]
Targets = Dict[str, Tuple[str, Check]]


def _response_parsers() -> Targets:
    """The parsers of HTTP answers: token, error, JWKS, discovery, device code."""
    from oauth_core.core.device import parse_device_code_response
    from oauth_core.core.errors import OAuthError, oauth_error_from_body
    from oauth_core.core.protocol import TokenSet, parse_json_object, parse_jwks_response, parse_token_response

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

    return {
        "parse_token_response": ("token_response", token_response),
        "oauth_error_from_body": ("error_body", error_body),
        "parse_jwks_response": ("jwks", jwks),
        "parse_json_object (discovery)": ("discovery", discovery),
        "parse_device_code_response": ("device_code", device_code),
    }


def _authorization_parsers(pending: Any) -> Targets:
    """The authorization code flow's inputs: the redirect, and a saved request read back."""
    from oauth_core.core.authorize import PendingAuthorization, parse_redirect

    def redirect(case: Tuple[str, List[Tuple[str, str]]]) -> None:
        prefix, pairs = case
        text = prefix + "&".join(f"{k}={pending.state if v == '<state>' else v}" for k, v in pairs)
        assert parse_redirect(pending, text)

    def pending_json(text: str) -> None:
        assert PendingAuthorization.from_json(text).to_json()

    return {
        "parse_redirect": ("redirect", redirect),
        "PendingAuthorization.from_json": ("pending", pending_json),
    }


def _token_and_header_parsers() -> Targets:
    """The JWT decoders, the signature check, Retry-After and the WWW-Authenticate claims challenge."""
    from oauth_core.core.claims import inspect_token, unverified_claims, verify_signature
    from oauth_core.drivers.retry import retry_after_seconds
    from oauth_core.integrations.httpx_auth import bearer_challenge

    def jwt(token: str) -> None:
        claims = unverified_claims(token)
        info = inspect_token(token)
        assert isinstance(claims, dict) and (info.seconds_left is None or isinstance(info.seconds_left, float))

    def verify(token: str) -> None:
        verify_signature(token, {"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]})
        raise AssertionError("an unsigned token verified")

    def retry_after(headers: List[Tuple[str, str]]) -> None:
        from oauth_core.core.protocol import HttpResponse

        wait = retry_after_seconds(HttpResponse(429, tuple(headers), b""))
        assert wait is None or (math.isfinite(wait) and wait >= 0)

    def challenge(values: List[str]) -> None:
        from oauth_core.integrations.httpx_auth import _claims_challenge

        params = bearer_challenge(values)
        if params is not None and params.get("claims"):
            raise _claims_challenge(params)

    return {
        "unverified_claims / inspect_token": ("jwts", jwt),
        "verify_signature": ("jwts", verify),
        "retry_after_seconds": ("retry_after", retry_after),
        "WWW-Authenticate claims challenge": ("challenge", challenge),
    }


def _client_paths(pending: Any) -> Targets:
    """Whole client paths: the id_token nonce of a code exchange, a hand-edited cache file, the HTTP layer."""
    from oauth_core.core.claims import unverified_claims

    def nonce(value: Any) -> None:
        from oauth_core.core.authorize import exchange_code_flow

        body = {"token_type": "Bearer", "access_token": "at", "expires_in": 3600, "id_token": jwt_of({"nonce": value})}
        flow = exchange_code_flow(pending, "the-code")
        next(flow)
        try:
            flow.send(http_response(200, dumps(body).encode("utf-8", "surrogatepass")))
        except StopIteration as done:
            assert unverified_claims(done.value.id_token)["nonce"] == pending.nonce, "a wrong nonce was accepted"

    return {
        "exchange_code_flow (id_token nonce)": ("nonce", nonce),
        "FileTokenCache + get_token": ("cache_file", _cache_file_target()),
        "HTTP layer (encodings, bombs)": ("http_layer", _http_layer_target()),
    }


def fuzz_targets() -> Dict[str, Tuple[str, Callable[[Any], None]]]:
    """parser name -> (strategy key, a check that raises AssertionError for a broken contract)."""
    from oauth_core.core.authority import Authority
    from oauth_core.core.authorize import build_authorization_request

    pending = build_authorization_request(Authority.of(None, TENANT), CLIENT, "http://localhost", (DBX,), now=NOW)
    return {
        **_response_parsers(),
        **_authorization_parsers(pending),
        **_token_and_header_parsers(),
        **_client_paths(pending),
    }


def _cache_file_target() -> Callable[[bytes], None]:
    def check(content: bytes) -> None:
        import httpx

        from oauth_core.drivers.retry import RetryPolicy
        from oauth_core.drivers.stores import FileTokenCache, accounts, entries, resolve_account
        from oauth_core.drivers.sync import EntraClient

        body = {"token_type": "Bearer", "access_token": "fresh", "expires_in": 3600, "refresh_token": "rt"}
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "tokens.json"
            path.write_bytes(content)
            path.chmod(0o600)  # a cache others may read is refused before it is parsed
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
                    lambda: resolve_account(cache.snapshot(), client.cache_scope, None),
                    lambda: client.get_token(min_validity=HARD),
                ):
                    try:
                        step()
                    except core_error() as exc:
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

        from oauth_core.drivers.retry import RetryPolicy
        from oauth_core.drivers.sync import EntraClient

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
