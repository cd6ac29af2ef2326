"""EntraClient over respx: what goes on the wire, what comes back, and when it is retried.

The token endpoint is mocked with the recorded fixtures (status, headers and body served as
recorded). Retry waits go to the fake clock of conftest, so nothing really sleeps.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from fixturelib import CLIENT_ID, NONCE, TENANT_ID, load_claims, load_response, mint_jwt, token_response_body

from oauth_core.cli.exit_codes import exit_code_for
from oauth_core.core.authority import Authority
from oauth_core.core.authorize import PendingAuthorization, build_authorization_request
from oauth_core.core.claims import unverified_claims
from oauth_core.core.errors import (
    ConfigError,
    InteractionRequired,
    InvalidClient,
    InvalidGrant,
    LoopDetected,
    NonceMismatch,
    OAuthError,
    ResponseFormatError,
    TransientError,
    TransportError,
)
from oauth_core.core.protocol import (
    HttpRequest,
    authorization_code_grant,
    build_token_request,
    normalize_scopes,
    password_grant,
    refresh_token_grant,
)
from oauth_core.drivers.retry import RetryPolicy
from oauth_core.drivers.sync import MAX_RESPONSE_BYTES, EntraClient

# These tests mock only the token endpoint: the user realm lookup is tested in test_wstrust.py.
pytestmark = pytest.mark.usefixtures("no_realm_discovery")

HOST = "https://login.microsoftonline.com"
TOKEN_URL = f"{HOST}/{TENANT_ID}/oauth2/v2.0/token"
USERNAME = "someone@contoso.onmicrosoft.com"
PASSWORD = "correct horse battery staple"
REFRESH_TOKEN = "0.AXkA-fixture-refresh-token-value"
CODE = "0.AXkA-fixture-authorization-code"
TLS_FAILURE = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in chain (_ssl.c:1006)"
)


# -- helpers ------------------------------------------------------------------------------------


def recorded(
    name: str, *, status: Optional[int] = None, extra_headers: Tuple[Tuple[str, str], ...] = ()
) -> httpx.Response:
    """A fresh httpx.Response with the fixture's status, headers (repeats kept) and body bytes."""
    record = load_response(name)
    headers = [(str(k), str(v)) for k, v in record["headers"]] + list(extra_headers)
    return httpx.Response(
        record["status"] if status is None else status, headers=headers, content=record["body"].encode("utf-8")
    )


def body_of(name: str) -> dict[str, Any]:
    return dict(json.loads(load_response(name)["body"]))


def json_response(status: int, body: str, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        headers=[("Content-Type", "application/json; charset=utf-8"), *headers.items()],
        content=body.encode("utf-8"),
    )


def text_response(status: int, text: str = "Service trouble", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=[("Content-Type", "text/plain"), *headers.items()], content=text.encode())


Step = Any  # a fixture name, an httpx.Response factory, an exception class or instance


def serve(route: respx.Route, *steps: Step) -> respx.Route:
    """Answer each call with the next step; the last step repeats for every later call."""
    queue = list(steps)

    def answer(request: httpx.Request) -> httpx.Response:
        step = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(step, str):
            return recorded(step)
        if isinstance(step, type) and issubclass(step, httpx.HTTPError):
            raise step("mocked failure", request=request)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            response: httpx.Response = step()
            return response
        raise AssertionError(f"bad step {step!r}")

    route.mock(side_effect=answer)
    return route


def form_of(request: httpx.Request) -> List[Tuple[str, str]]:
    return parse_qsl(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def user_scopes() -> Tuple[str, ...]:
    return normalize_scopes(normalize_scopes(None), offline_access=True)


def expected_request(grant: Tuple[Tuple[str, str], ...], *, client_secret: Optional[str] = None) -> HttpRequest:
    return build_token_request(
        Authority.of(None, TENANT_ID), CLIENT_ID, grant, scopes=user_scopes(), client_secret=client_secret
    )


def pending_request(client: EntraClient, nonce: str = NONCE) -> PendingAuthorization:
    return build_authorization_request(client.authority, CLIENT_ID, "http://localhost", user_scopes(), nonce=nonce)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def token_route(router: respx.MockRouter) -> respx.Route:
    return router.post(TOKEN_URL)


@pytest.fixture
def client(policy: RetryPolicy) -> Iterator[EntraClient]:
    with EntraClient(CLIENT_ID, TENANT_ID, retry=policy) as entra:
        yield entra


# -- the grants ----------------------------------------------------------------------------------


def check_token_set(tokens: Any, fixture: str, started: float) -> None:
    body = body_of(fixture)
    expect = load_response(fixture)["expect"]
    assert tokens.access_token == body["access_token"]
    assert tokens.token_type == "Bearer"
    assert tokens.refresh_token == body["refresh_token"]
    assert tokens.id_token == body["id_token"]
    assert list(tokens.scopes) == expect["scopes"]
    assert started + body["expires_in"] <= tokens.expires_at <= time.time() + body["expires_in"]
    assert started + body["ext_expires_in"] <= tokens.ext_expires_at <= time.time() + body["ext_expires_in"]
    assert tokens.claims == unverified_claims(body["access_token"])
    assert tokens.raw == body


def test_acquire_by_password(client: EntraClient, router: respx.MockRouter, token_route: respx.Route) -> None:
    serve(token_route, "success-password")
    started = time.time()
    tokens = client.acquire_by_password(USERNAME, PASSWORD)
    check_token_set(tokens, "success-password", started)
    assert len(router.calls) == 1  # one POST, no discovery GET
    request = token_route.calls.last.request
    assert request.method == "POST"
    expected = expected_request(password_grant(USERNAME, PASSWORD))
    assert form_of(request) == list(expected.form)
    assert request.content == expected.body
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


def test_refresh(client: EntraClient, router: respx.MockRouter, token_route: respx.Route) -> None:
    serve(token_route, "success-refresh")
    started = time.time()
    tokens = client.refresh(REFRESH_TOKEN)
    check_token_set(tokens, "success-refresh", started)
    assert len(router.calls) == 1
    expected = expected_request(refresh_token_grant(REFRESH_TOKEN))
    assert token_route.calls.last.request.content == expected.body
    assert form_of(token_route.calls.last.request) == list(expected.form)


def test_confidential_client_sends_its_secret_last(router: respx.MockRouter, token_route: respx.Route) -> None:
    serve(token_route, "success-refresh")
    with EntraClient(CLIENT_ID, TENANT_ID, client_secret="s3cret~value") as entra:
        entra.refresh(REFRESH_TOKEN)
    expected = expected_request(refresh_token_grant(REFRESH_TOKEN), client_secret="s3cret~value")
    assert form_of(token_route.calls.last.request) == list(expected.form)
    assert form_of(token_route.calls.last.request)[-1] == ("client_secret", "s3cret~value")


@pytest.mark.parametrize("how", ["redirect_url", "code"])
def test_exchange_code(client: EntraClient, router: respx.MockRouter, token_route: respx.Route, how: str) -> None:
    serve(token_route, "success-authorization-code")
    pending = pending_request(client)
    started = time.time()
    if how == "redirect_url":
        tokens = client.exchange_code(pending, f"http://localhost/?code={CODE}&state={pending.state}&session_state=x#")
    else:
        tokens = client.exchange_code(pending, code=CODE)
    check_token_set(tokens, "success-authorization-code", started)
    assert (tokens.id_token_claims or {})["nonce"] == NONCE
    assert len(router.calls) == 1
    expected = build_token_request(
        client.authority,
        CLIENT_ID,
        authorization_code_grant(CODE, "http://localhost", pending.code_verifier),
        scopes=pending.scopes,
    )
    assert form_of(token_route.calls.last.request) == list(expected.form)
    assert token_route.calls.last.request.content == expected.body


def test_exchange_code_checks_the_nonce(client: EntraClient, token_route: respx.Route) -> None:
    claims = dict(load_claims("id-token-v2")["claims"], nonce="someone-elses-nonce")
    body = token_response_body(id_token=mint_jwt(claims, header={"x5t": None}))
    serve(token_route, lambda: json_response(200, body))
    with pytest.raises(NonceMismatch):
        client.exchange_code(pending_request(client), code=CODE)


def test_exchange_code_refuses_another_clients_request(client: EntraClient, router: respx.MockRouter) -> None:
    other = build_authorization_request(client.authority, "other-client", "http://localhost", user_scopes())
    with pytest.raises(ConfigError):
        client.exchange_code(other, code=CODE)
    assert len(router.calls) == 0


# -- headers and ambient credentials ------------------------------------------------------------


def test_request_headers(client: EntraClient, token_route: respx.Route) -> None:
    serve(token_route, "success-password")  # its Set-Cookie headers must not come back
    client.acquire_by_password(USERNAME, PASSWORD)
    client.refresh(REFRESH_TOKEN)
    first, second = (call.request for call in token_route.calls)
    ids = []
    for request in (first, second):
        assert request.headers["user-agent"].startswith("oauth-core/")
        assert request.headers["x-ms-lib-capability"] == "retry-after, h429"
        assert request.headers["accept"] == "application/json"
        assert "authorization" not in request.headers
        assert "cookie" not in request.headers
        ids.append(request.headers["client-request-id"])
        assert str(uuid.UUID(ids[-1])) == ids[-1]
    assert ids[0] != ids[1]


def test_each_retry_attempt_sends_the_same_body(client: EntraClient, token_route: respx.Route) -> None:
    serve(token_route, lambda: text_response(503), "success-refresh")
    client.refresh(REFRESH_TOKEN)
    first, second = (call.request for call in token_route.calls)
    assert first.content == second.content
    assert "cookie" not in second.headers


def test_no_netrc_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, policy: RetryPolicy, token_route: respx.Route
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine login.microsoftonline.com login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(netrc))
    serve(token_route, "success-password")
    with EntraClient(CLIENT_ID, TENANT_ID, retry=policy) as entra:
        entra.acquire_by_password(USERNAME, PASSWORD)
        entra.refresh(REFRESH_TOKEN)
    for call in token_route.calls:
        assert "authorization" not in call.request.headers
        assert b"netrc" not in call.request.content


def test_redirects_are_not_followed(client: EntraClient, router: respx.MockRouter, token_route: respx.Route) -> None:
    elsewhere = router.post("https://elsewhere.example/token").mock(return_value=httpx.Response(200))
    serve(token_route, lambda: httpx.Response(302, headers={"Location": "https://elsewhere.example/token"}))
    with pytest.raises(ResponseFormatError) as caught:
        client.acquire_by_password(USERNAME, PASSWORD)
    assert caught.value.status == 302
    assert len(router.calls) == 1
    assert not elsewhere.called


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout])
def test_network_failure_then_success(client: EntraClient, clock: Any, token_route: respx.Route, failure: Any) -> None:
    serve(token_route, failure, "success-refresh")
    assert client.refresh(REFRESH_TOKEN).access_token == body_of("success-refresh")["access_token"]
    assert token_route.call_count == 2
    assert clock.waits == [0.5]


@pytest.mark.parametrize(
    ("first", "wait"),
    [
        (lambda: recorded("server-error-500-json"), 0.5),
        (lambda: text_response(500), 0.5),
        (lambda: recorded("proxy-html-502"), 0.5),
        (lambda: recorded("unavailable-503"), 5.0),  # Retry-After: 5
        (lambda: text_response(503), 0.5),
        (lambda: text_response(504, "Gateway Timeout"), 0.5),
        (lambda: text_response(408, "Request Timeout"), 0.5),
    ],
    ids=["500-json", "500-text", "502-html", "503-retry-after", "503-text", "504", "408"],
)
def test_retryable_status_then_success(
    client: EntraClient, clock: Any, token_route: respx.Route, first: Callable[[], httpx.Response], wait: float
) -> None:
    serve(token_route, first, "success-refresh")
    client.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 2
    assert clock.waits == [wait]


@pytest.mark.parametrize("jitter", [False, True])
def test_429_retry_after_seconds_wins(
    make_policy: Callable[..., RetryPolicy], clock: Any, token_route: respx.Route, jitter: bool
) -> None:
    serve(token_route, lambda: text_response(429, "Too Many Requests", **{"Retry-After": "2"}), "success-refresh")
    with EntraClient(CLIENT_ID, TENANT_ID, retry=make_policy(jitter=jitter)) as entra:
        entra.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 2
    assert clock.waits == [2.0]


def test_retry_after_http_date(client: EntraClient, clock: Any, token_route: respx.Route) -> None:
    moment = math.floor(time.time()) + 5
    date = email.utils.formatdate(moment, usegmt=True)
    serve(token_route, lambda: text_response(503, **{"Retry-After": date}), "success-refresh")
    client.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 2
    [wait] = clock.waits
    assert 3.0 <= wait <= 5.0


def test_retry_after_ms(client: EntraClient, clock: Any, token_route: respx.Route) -> None:
    serve(token_route, lambda: text_response(429, **{"retry-after-ms": "1500"}), "success-refresh")
    client.refresh(REFRESH_TOKEN)
    assert clock.waits == [1.5]


def test_retry_after_above_the_cap_stops_at_once(
    make_policy: Callable[..., RetryPolicy], clock: Any, token_route: respx.Route
) -> None:
    serve(token_route, "throttled-429-text")  # Retry-After: 60
    with EntraClient(CLIENT_ID, TENANT_ID, retry=make_policy(max_retry_after=30)) as entra:
        with pytest.raises(TransientError) as caught:
            entra.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 1
    assert clock.waits == []
    error = caught.value
    assert error.retry_after == 60
    assert error.status == 429
    assert error.attempts == 1
    assert error.waits == ()
    assert "60" in str(error)


def test_attempts_are_bounded(make_policy: Callable[..., RetryPolicy], clock: Any, token_route: respx.Route) -> None:
    serve(token_route, "unavailable-503")
    with EntraClient(CLIENT_ID, TENANT_ID, retry=make_policy(max_attempts=3)) as entra:
        with pytest.raises(TransientError) as caught:
            entra.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 3
    assert clock.waits == [5.0, 5.0]
    error = caught.value
    assert (error.attempts, error.waits, error.status, error.retry_after) == (3, (5.0, 5.0), 503, 5.0)
    assert exit_code_for(error) == 3


def test_network_failures_exhausted(client: EntraClient, clock: Any, token_route: respx.Route) -> None:
    serve(token_route, httpx.ConnectError)
    with pytest.raises(TransientError) as caught:
        client.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 4
    assert caught.value.attempts == 4
    assert caught.value.status is None
    assert caught.value.waits == (0.5, 1.0, 2.0)


def test_deadline_bounds_attempts(
    make_policy: Callable[..., RetryPolicy], clock: Any, token_route: respx.Route
) -> None:
    serve(token_route, httpx.ConnectError)
    with EntraClient(
        CLIENT_ID, TENANT_ID, retry=make_policy(deadline=1, initial_backoff=0.8, max_backoff=0.8)
    ) as entra:
        with pytest.raises(TransientError) as caught:
            entra.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 2 < 4  # max_attempts (4) not reached
    assert caught.value.attempts == 2
    assert clock.waits == [0.8]


def test_exponential_backoff_grows_and_is_capped(
    make_policy: Callable[..., RetryPolicy], clock: Any, token_route: respx.Route
) -> None:
    serve(token_route, lambda: text_response(500))
    policy = make_policy(max_attempts=6, initial_backoff=0.5, max_backoff=2.0)
    with EntraClient(CLIENT_ID, TENANT_ID, retry=policy) as entra:
        with pytest.raises(TransientError) as caught:
            entra.refresh(REFRESH_TOKEN)
    assert clock.waits == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert caught.value.waits == (0.5, 1.0, 2.0, 2.0, 2.0)
    assert token_route.call_count == 6


def test_jittered_backoff_stays_within_half_and_full(
    make_policy: Callable[..., RetryPolicy], clock: Any, token_route: respx.Route
) -> None:
    serve(token_route, httpx.ReadTimeout)
    policy = make_policy(max_attempts=5, initial_backoff=1.0, max_backoff=4.0, jitter=True)
    with EntraClient(CLIENT_ID, TENANT_ID, retry=policy) as entra:
        with pytest.raises(TransientError):
            entra.refresh(REFRESH_TOKEN)
    assert len(clock.waits) == 4
    for wait, base in zip(clock.waits, [1.0, 2.0, 4.0, 4.0]):
        assert base / 2 <= wait <= base


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("error-50126", InvalidGrant),  # 400 invalid_grant
        ("error-54005", InvalidGrant),
        ("error-50076", InteractionRequired),  # 400, interaction required (MFA)
        ("error-50079", InteractionRequired),  # 400 interaction_required
        ("error-7000218", InvalidClient),  # 401 invalid_client
        ("error-7000215", InvalidClient),
    ],
)
def test_oauth_errors_are_never_retried(
    client: EntraClient, clock: Any, token_route: respx.Route, fixture: str, error: type
) -> None:
    serve(token_route, fixture)
    with pytest.raises(error) as caught:
        client.acquire_by_password(USERNAME, PASSWORD)
    assert token_route.call_count == 1
    assert clock.waits == []
    record = load_response(fixture)
    body = json.loads(record["body"])
    assert isinstance(caught.value, OAuthError)
    assert caught.value.status == record["status"]
    assert list(caught.value.error_codes) == body["error_codes"]
    assert caught.value.correlation_id == body["correlation_id"]
    assert caught.value.trace_id == body["trace_id"]


@pytest.mark.parametrize("status", [400, 429, 503])
def test_loop_detection_is_never_retried(
    client: EntraClient, clock: Any, token_route: respx.Route, status: int
) -> None:
    serve(token_route, lambda: recorded("error-50196", status=status, extra_headers=(("Retry-After", "1"),)))
    with pytest.raises(LoopDetected) as caught:
        client.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 1
    assert clock.waits == []
    assert caught.value.error_codes == (50196,)


def test_tls_certificate_failure_is_final(client: EntraClient, clock: Any, token_route: respx.Route) -> None:
    serve(token_route, httpx.ConnectError(TLS_FAILURE))
    with pytest.raises(TransportError) as caught:
        client.refresh(REFRESH_TOKEN)
    assert not isinstance(caught.value, TransientError)
    assert token_route.call_count == 1
    assert clock.waits == []
    assert "SSL_CERT_FILE" in str(caught.value)


def test_lost_code_redemption_response(client: EntraClient, clock: Any, token_route: respx.Route) -> None:
    serve(token_route, httpx.ReadTimeout, "error-54005")
    with pytest.raises(TransientError) as caught:
        client.exchange_code(pending_request(client), code=CODE)
    assert not isinstance(caught.value, OAuthError)
    assert token_route.call_count == 1  # a code is single-use: a lost answer is never followed by a resend
    assert "lost" in str(caught.value)
    assert "ReadTimeout" in str(caught.value)
    assert "may have been used" in str(caught.value)
    assert caught.value.attempts == 1


def test_lost_refresh_response_is_a_plain_invalid_grant(
    client: EntraClient, clock: Any, token_route: respx.Route
) -> None:
    serve(token_route, httpx.ReadTimeout, "error-54005")
    with pytest.raises(InvalidGrant) as caught:
        client.refresh(REFRESH_TOKEN)
    assert caught.value.error_codes == (54005,)
    assert token_route.call_count == 2


def test_connect_failure_before_code_redemption_is_not_a_lost_response(
    client: EntraClient, clock: Any, token_route: respx.Route
) -> None:
    # ConnectError: the request never reached Entra, so 54005 on the retry is Entra's real answer.
    serve(token_route, httpx.ConnectError, "error-54005")
    with pytest.raises(InvalidGrant):
        client.exchange_code(pending_request(client), code=CODE)


# -- response hygiene ----------------------------------------------------------------------------


class CountingStream(httpx.SyncByteStream):
    """A large body handed out in 64 KiB chunks, counting how many were taken."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.chunks_read = 0

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.total:
            self.chunks_read += 1
            chunk = b"a" * min(65536, self.total - sent)
            sent += len(chunk)
            yield chunk


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "chunked"])
def test_oversized_body_is_refused_without_reading_it(
    client: EntraClient, token_route: respx.Route, with_length: bool
) -> None:
    total = 8 * MAX_RESPONSE_BYTES
    stream = CountingStream(total)
    headers = {"Content-Type": "application/json"}
    if with_length:
        headers["Content-Length"] = str(total)
    else:
        headers["Transfer-Encoding"] = "chunked"
    serve(token_route, lambda: httpx.Response(200, headers=headers, stream=stream))
    with pytest.raises(ResponseFormatError) as caught:
        client.refresh(REFRESH_TOKEN)
    assert str(MAX_RESPONSE_BYTES) in str(caught.value)
    assert stream.chunks_read * 65536 <= MAX_RESPONSE_BYTES + 65536
    if with_length:
        assert stream.chunks_read == 0
    assert token_route.call_count == 1


@pytest.mark.parametrize(
    ("fixture", "status", "words"),
    [
        ("captive-portal-200-html", 200, "HTML"),
        ("empty-200", 200, "empty"),
        ("truncated-200", 200, "not JSON"),
        ("not-json-400", 400, "not JSON"),
    ],
)
def test_non_entra_bodies(
    client: EntraClient, clock: Any, token_route: respx.Route, fixture: str, status: int, words: str
) -> None:
    serve(token_route, fixture)
    with pytest.raises(ResponseFormatError) as caught:
        client.refresh(REFRESH_TOKEN)
    assert caught.value.status == status
    assert words in str(caught.value)
    assert exit_code_for(caught.value) == 3
    assert token_route.call_count == 1
    assert clock.waits == []
    assert "eyJ" not in caught.value.snippet  # token-like text is redacted


def test_html_proxy_page_4xx(client: EntraClient, token_route: respx.Route) -> None:
    serve(token_route, lambda: recorded("proxy-html-502", status=403))
    with pytest.raises(ResponseFormatError) as caught:
        client.refresh(REFRESH_TOKEN)
    assert caught.value.status == 403
    assert "HTML" in str(caught.value)
    assert "502 Bad Gateway" in caught.value.snippet


def test_html_proxy_page_502_is_retried_then_reported(
    client: EntraClient, clock: Any, token_route: respx.Route
) -> None:
    serve(token_route, "proxy-html-502")
    with pytest.raises(TransientError) as caught:
        client.refresh(REFRESH_TOKEN)
    assert caught.value.status == 502
    assert caught.value.attempts == 4
    assert token_route.call_count == 4


def test_bad_gzip_encoding(client: EntraClient, token_route: respx.Route) -> None:
    serve(
        token_route,
        lambda: httpx.Response(
            200,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            stream=httpx.ByteStream(b"this is not gzip data"),
        ),
    )
    with pytest.raises(ResponseFormatError):
        client.refresh(REFRESH_TOKEN)
    assert token_route.call_count == 1


def test_gzip_body_is_decoded(client: EntraClient, token_route: respx.Route) -> None:
    import gzip

    body = gzip.compress(load_response("success-refresh")["body"].encode())
    serve(
        token_route,
        lambda: httpx.Response(
            200,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            stream=httpx.ByteStream(body),
        ),
    )
    assert client.refresh(REFRESH_TOKEN).refresh_token == body_of("success-refresh")["refresh_token"]


# -- the object itself ----------------------------------------------------------------------------


def test_repr_hides_the_client_secret() -> None:
    with EntraClient(CLIENT_ID, TENANT_ID, client_secret="Sup3r~Secret.Value") as entra:
        text = repr(entra)
    assert "Sup3r~Secret.Value" not in text
    assert "Sup3r~Secret.Value" not in str(entra)
    assert "<redacted>" in text
    assert CLIENT_ID in text


def test_user_supplied_http_client_is_used_and_not_closed(policy: RetryPolicy, token_route: respx.Route) -> None:
    seen: List[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [seen.append]})
    try:
        serve(token_route, "success-refresh")
        entra = EntraClient(CLIENT_ID, TENANT_ID, http_client=http, retry=policy)
        entra.refresh(REFRESH_TOKEN)
        entra.close()
        with EntraClient(CLIENT_ID, TENANT_ID, http_client=http, retry=policy) as again:
            again.refresh(REFRESH_TOKEN)
        assert len(seen) == 2
        assert not http.is_closed
        assert "authorization" not in seen[0].headers
    finally:
        http.close()


def test_user_supplied_client_settings_cannot_enable_redirects(
    policy: RetryPolicy, router: respx.MockRouter, token_route: respx.Route
) -> None:
    elsewhere = router.post("https://elsewhere.example/token").mock(return_value=httpx.Response(200))
    serve(token_route, lambda: httpx.Response(307, headers={"Location": "https://elsewhere.example/token"}))
    with httpx.Client(follow_redirects=True) as http:
        with pytest.raises(ResponseFormatError):
            EntraClient(CLIENT_ID, TENANT_ID, http_client=http, retry=policy).refresh(REFRESH_TOKEN)
    assert not elsewhere.called
    assert len(router.calls) == 1


def test_own_http_client_is_closed(policy: RetryPolicy, token_route: respx.Route) -> None:
    serve(token_route, "success-refresh")
    entra = EntraClient(CLIENT_ID, TENANT_ID, retry=policy)
    entra.refresh(REFRESH_TOKEN)
    http = entra._http
    assert not http.is_closed
    entra.close()
    assert http.is_closed
