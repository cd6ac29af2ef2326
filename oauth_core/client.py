"""The synchronous client: the protocol flows driven over one reused ``httpx.Client``.

Everything protocol-shaped lives in :mod:`oauth_core.protocol` and :mod:`oauth_core.authorize`;
this shell only sends requests (with tenacity around each send) and feeds responses back.

Each send, retries included, ends by one call deadline (see :mod:`oauth_core.retry`), and the
client's own ``httpx.Client`` never sends loopback traffic (a local emulator) to an environment
proxy: ``HTTP_PROXY``/``ALL_PROXY`` keep serving Entra's hosts only.
"""

from __future__ import annotations

import http.cookiejar
import logging
import platform
import threading
import time
import webbrowser
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import httpx

from . import __version__
from .authority import Authority, is_loopback_host
from .authorize import PendingAuthorization
from .base import ClientBase, Scopes, StepFlow, T, advance, lost_code_error, start
from .cache import TokenCache
from .device import DeviceCode, Wait, print_message
from .errors import OAuthCoreError, ResponseFormatError, TransientError
from .pkce import new_state
from .protocol import HttpRequest, HttpResponse, TokenSet, jwks_request, normalize_scopes, parse_jwks_response
from .retry import (
    CALL_DEADLINE,
    DeadlineBackend,
    DeadlineReached,
    NetworkFailure,
    RetryableResponse,
    RetryPolicy,
    attempt_timeout,
    call_budget,
    clip_timeout,
    install_deadline_backend,
    is_retryable_response,
    network_failure,
    proxy_mounts,
    sync_retrying,
    transient_error,
)

if TYPE_CHECKING:
    from .assertion import ClientCertificate

__all__ = ["EntraClient", "fetch", "fetch_jwks", "read_limited", "send_once", "send_with_retry"]

log = logging.getLogger("oauth_core")

MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = f"oauth-core/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"


class _NoCookies(http.cookiejar.CookieJar):
    """Entra sets cookies a token client never needs; storing them costs time and leaks nothing useful."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


_NO_AUTH = httpx.Auth()  # explicit: no credentials from the environment (.netrc) on token calls


def response_too_large(limit: int = MAX_RESPONSE_BYTES) -> ResponseFormatError:
    return ResponseFormatError(f"the response is larger than {limit} bytes; refusing to read it")


def to_http_response(response: httpx.Response, body: bytes) -> HttpResponse:
    return HttpResponse(status=response.status_code, headers=tuple(response.headers.multi_items()), body=body)


def final_error(
    exc: Union[RetryableResponse, NetworkFailure],
    request: HttpRequest,
    attempts: int,
    waits: List[float],
    budget: Optional[float],
) -> TransientError:
    """The error that ends a call: a spent deadline, a code that may be used, or retries spent."""
    deadline = None
    if isinstance(exc, DeadlineReached):
        deadline = f"the call's deadline of {budget or 0:g}s was reached ({exc.kind}) after {attempts} attempt(s)"
    if request.single_use and not (isinstance(exc, NetworkFailure) and exc.not_sent):
        return lost_code_error(exc, attempts, waits, what=deadline)
    if deadline is not None:
        return TransientError(f"timed out: {deadline}", attempts=attempts, waits=waits)
    return transient_error(exc, attempts, waits)


def fetch(
    http: httpx.Client,
    request: HttpRequest,
    *,
    extensions: Optional[Dict[str, Any]] = None,
    until: Optional[float] = None,
) -> HttpResponse:
    """Send one request and read its answer: no redirects, no ambient auth, at most MAX_RESPONSE_BYTES.

    ``extensions`` go to httpx (``oauth-core bench`` passes a ``trace`` callback). ``until`` is the
    call deadline, a ``time.monotonic()`` instant: connect, headers and body all end by then.

    Raises:
        NetworkFailure: a retryable network failure (DeadlineReached: the deadline passed).
        TransportError / ResponseFormatError: final.
    """
    token = None if until is None else CALL_DEADLINE.set(until)
    try:
        clipped = None if until is None else clip_timeout(http.timeout, until)
        http_request = http.build_request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body or None,
            extensions=extensions,
            timeout=httpx.USE_CLIENT_DEFAULT if clipped is None else clipped,
        )
        response = http.send(http_request, auth=_NO_AUTH, follow_redirects=False, stream=True)
        try:
            chunks = read_limited(response, until=until)
        finally:
            response.close()
    except httpx.HTTPError as exc:
        log.debug("%s %s failed: %s", request.method, request.url, type(exc).__name__)
        raise network_failure(exc, until=until) from None
    finally:
        if token is not None:
            CALL_DEADLINE.reset(token)
    return to_http_response(response, b"".join(chunks))


def send_once(http: httpx.Client, request: HttpRequest, *, until: Optional[float] = None) -> HttpResponse:
    """:func:`fetch`, with a retryable status (408/429/5xx) raised for the retry layer.

    Raises:
        RetryableResponse / NetworkFailure: transient; the retry layer decides.
        TransportError / ResponseFormatError: final.
    """
    started = time.perf_counter()
    result = fetch(http, request, until=until)
    log.debug(
        "%s %s -> %d in %.1f ms", request.method, request.url, result.status, (time.perf_counter() - started) * 1000
    )
    if is_retryable_response(result):
        raise RetryableResponse(result)
    return result


def read_limited(
    response: httpx.Response, limit: int = MAX_RESPONSE_BYTES, *, until: Optional[float] = None
) -> List[bytes]:
    """The body's chunks, refusing (before or while reading) a body over ``limit`` bytes.

    Raises:
        httpx.ReadTimeout: the call deadline ``until`` (time.monotonic()) passed between chunks.
    """
    length = response.headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
        raise response_too_large(limit)
    chunks: List[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise response_too_large(limit)
        if until is not None and time.monotonic() >= until:
            raise httpx.ReadTimeout("the call's deadline was reached")
        chunks.append(chunk)
    return chunks


class LoopbackBypass(httpx.BaseTransport):
    """An environment proxy that loopback destinations skip: local traffic never reaches a proxy."""

    def __init__(self, proxy: httpx.BaseTransport, direct: httpx.BaseTransport) -> None:
        self.proxy = proxy
        self.direct = direct

    def route(self, url: httpx.URL) -> httpx.BaseTransport:
        """The transport for ``url``: direct for 127.0.0.0/8, ::1 and localhost, else the proxy."""
        return self.direct if is_loopback_host(url.host) else self.proxy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.route(request.url).handle_request(request)

    def close(self) -> None:
        self.proxy.close()
        self.direct.close()


def new_http_client(timeout: float) -> httpx.Client:
    """The client's own httpx.Client: keep-alive, no redirects, no cookie jar, our User-Agent.

    Environment proxies serve non-loopback hosts only, and its sockets obey the call deadline.
    """
    http = httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        cookies=_NoCookies(),
        headers={"user-agent": USER_AGENT},
        mounts=proxy_mounts(httpx.HTTPTransport, LoopbackBypass, DeadlineBackend),
    )
    if not install_deadline_backend(getattr(http, "_transport", None), DeadlineBackend):
        log.debug("httpx layout not recognised: the call deadline is checked between reads only")
    return http


def fetch_jwks(authority: Authority, *, timeout: float = 30.0, retry: Optional[RetryPolicy] = None) -> Dict[str, Any]:
    """GET the tenant's signing keys (``discovery/v2.0/keys``), with the usual retries."""
    with new_http_client(timeout) as http:
        return parse_jwks_response(send_with_retry(http, jwks_request(authority), retry or RetryPolicy())[0])


def send_with_retry(
    http: httpx.Client, request: HttpRequest, policy: RetryPolicy, *, deadline: Optional[float] = None
) -> Tuple[HttpResponse, Optional[NetworkFailure], int, List[float]]:
    """Send with tenacity; returns the response, a failure whose response was lost, attempts and waits.

    The whole call ends within ``deadline`` seconds (default :func:`~oauth_core.retry.call_budget`
    of the client's timeout). A single-use request (a code) is resent only if it never left.

    Raises:
        TransientError: retries spent, the deadline reached, or a code whose outcome is unknown.
    """
    budget = call_budget(policy, attempt_timeout(http.timeout)) if deadline is None else deadline
    until = None if budget is None else time.monotonic() + budget
    started = policy.clock()
    try:  # the common case: no tenacity machinery for a request that succeeds at once
        return send_once(http, request, until=until), None, 1, []
    except (RetryableResponse, NetworkFailure) as exc:
        first = exc
    lost = first if isinstance(first, NetworkFailure) and first.maybe_sent else None
    replay: List[BaseException] = [first]  # tenacity's first attempt replays the failure, then retries
    attempts, waits = 0, []  # type: int, List[float]
    try:
        for attempt in sync_retrying(policy, waits, started, until=until, single_use=request.single_use):
            with attempt:
                attempts += 1
                if replay:
                    raise replay.pop()
                try:
                    return send_once(http, request, until=until), lost, attempts, waits
                except NetworkFailure as failure:
                    lost = lost or (failure if failure.maybe_sent else None)
                    raise
    except (RetryableResponse, NetworkFailure) as exc:
        raise final_error(exc, request, attempts, waits, budget) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


class EntraClient(ClientBase):
    """A Microsoft Entra ID token client for one application (client id) and authority.

    Args:
        client_id: the application (client) id.
        tenant: tenant id, verified domain, ``organizations`` (default), ``common`` or ``consumers``.
        authority_host: ``https://login.microsoftonline.com`` (default), a cloud alias
            (``public``, ``usgov``, ``china``) or any https URL (http only for loopback).
        scopes: default scopes (the Azure Databricks scope when None).
        client_secret: for confidential applications only.
        client_certificate: a :class:`ClientCertificate` for confidential applications (instead of a
            secret): each token request carries a freshly signed client assertion.
        http_client: an ``httpx.Client`` to use instead of the client's own (its proxy settings are
            its own, and the call deadline is then checked between reads only).
        retry: the :class:`RetryPolicy` for transient failures.
        timeout: seconds for each connect, read, write and pool wait; one call, retries included,
            ends within ``timeout x max_attempts`` plus the backoff, at most ``retry.deadline``.
        offline_access: add ``offline_access openid profile`` to user grants (refresh and id tokens).
        cache: where tokens are kept (:class:`MemoryTokenCache` by default, or a :class:`FileTokenCache`).
        clock: epoch seconds now (injectable for tests).
        trusted_hosts: authority hosts to accept besides Entra's own and loopback ones.

    Raises:
        ConfigError / InsecureAuthorityError: an invalid tenant, host or client id.
    """

    def __init__(
        self,
        client_id: str,
        tenant: str = "organizations",
        *,
        authority_host: Optional[str] = None,
        scopes: Scopes = None,
        client_secret: Optional[str] = None,
        client_certificate: Optional[ClientCertificate] = None,
        http_client: Optional[httpx.Client] = None,
        retry: Optional[RetryPolicy] = None,
        timeout: float = 30.0,
        offline_access: bool = True,
        cache: Optional[TokenCache] = None,
        clock: Callable[[], float] = time.time,
        trusted_hosts: Iterable[str] = (),
    ) -> None:
        super().__init__(
            client_id,
            tenant,
            authority_host=authority_host,
            scopes=scopes,
            client_secret=client_secret,
            client_certificate=client_certificate,
            retry=retry,
            timeout=timeout,
            offline_access=offline_access,
            cache=cache,
            clock=clock,
            trusted_hosts=trusted_hosts,
        )
        self._owns_http = http_client is None
        self._http = http_client or new_http_client(timeout)
        self._refresh_lock = threading.Lock()

    # -- grants ------------------------------------------------------------------------------

    def exchange_code(
        self, request: PendingAuthorization, redirect_url: Optional[str] = None, *, code: Optional[str] = None
    ) -> TokenSet:
        """Finish the flow: check the redirect's state, redeem the code with PKCE, check the nonce.

        Pass the ``redirect_url`` (or its query string) the browser landed on, or a bare ``code``
        when the redirect's state was checked elsewhere.

        Raises:
            StateMismatch / NonceMismatch, RedirectError, OAuthError, TransientError, ResponseFormatError.
        """
        return self._drive(self._exchange_flow(request, redirect_url, code))

    def acquire_interactive(
        self,
        *,
        scopes: Scopes = None,
        redirect_uri: str = "http://localhost",
        prompt: Optional[str] = None,
        login_hint: Optional[str] = None,
        domain_hint: Optional[str] = None,
        timeout: float = 300.0,
        open_browser: bool = True,
        on_url: Optional[Callable[[str], None]] = None,
        listen_address: str = "127.0.0.1",
    ) -> TokenSet:
        """Sign in through the system browser and a one-shot loopback listener, then redeem the code.

        Args:
            redirect_uri: ``http://localhost`` (an ephemeral port is chosen) or one with a fixed port/path.
            timeout: seconds to wait for the browser to come back.
            open_browser: open the URL with :mod:`webbrowser`; ``on_url`` is called with it either way
                (and is how a caller shows it when no browser can open).
            listen_address: where the listener binds (loopback only).

        Raises:
            InteractionTimeout: nobody finished signing in within ``timeout``.
            (and everything :meth:`exchange_code` raises)
        """
        from .loopback import LoopbackListener

        state = new_state()
        with LoopbackListener(redirect_uri, state, listen_address=listen_address) as listener:
            pending = self.authorization_request(
                listener.redirect_uri,
                scopes=scopes,
                prompt=prompt,
                login_hint=login_hint,
                domain_hint=domain_hint,
                state=state,
            )
            if on_url is not None:
                on_url(pending.url)
            if open_browser:
                webbrowser.open(pending.url)
            query = listener.wait(timeout)
        return self.exchange_code(pending, "?" + query)

    def acquire_by_password(self, username: str, password: str, *, scopes: Scopes = None) -> TokenSet:
        """The resource owner password grant (ROPC). Fails for MFA, federated and personal accounts."""
        return self._drive(self._password_flow(username, password, scopes))

    def refresh(self, refresh_token: str, *, scopes: Scopes = None) -> TokenSet:
        """Redeem a refresh token; the rotated one Entra returns is cached before this returns."""
        return self._drive(self._refresh_flow(refresh_token, scopes))

    def acquire_by_device_code(
        self,
        *,
        scopes: Scopes = None,
        on_code: Callable[[DeviceCode], None] = print_message,
        timeout: Optional[float] = None,
    ) -> TokenSet:
        """The device code flow (RFC 8628): show a code, wait while someone signs in elsewhere.

        Args:
            on_code: called once with the :class:`DeviceCode`; prints its message to stderr by default.
            timeout: seconds to wait at most (the device code's own expiry, 15 minutes, otherwise).

        Raises:
            InteractionTimeout: nobody finished signing in before the timeout or the code's expiry.
            AuthorizationDeclined / ExpiredToken / BadVerificationCode: the sign-in ended otherwise.
            (and everything :meth:`acquire_by_password` raises; KeyboardInterrupt stops the wait)
        """
        return self._drive(self._device_code_flow(scopes, on_code, timeout))

    def acquire_for_client(self, *, scopes: Scopes = None) -> TokenSet:
        """The client credentials grant: an app-only token for a service principal (cached as ``app``).

        Args:
            scopes: exactly one ``<resource>/.default`` scope (the Azure Databricks one by default).

        Raises:
            ConfigError: no secret or certificate, a scope that is not ``/.default``, or a tenant
                alias (organizations/common/consumers): nothing is sent.
            InvalidClient: Entra refused the secret or assertion.
            (and TransientError / ResponseFormatError)
        """
        return self._drive(self._client_credentials_flow(scopes))

    def get_token(
        self, *, scopes: Scopes = None, min_validity: float = 300.0, account: Optional[str] = None
    ) -> TokenSet:
        """A cached access token with at least ``min_validity`` seconds left, refreshed silently if needed.

        Inside the refresh window (5 minutes before expiry, or Entra's ``refresh_in``) a refresh is
        tried but a failure keeps serving the still-valid token (one attempt per 30 s); below
        ``max(min_validity, 40 s)`` the refresh must succeed. One refresh runs at a time across
        threads, and across processes sharing a :class:`FileTokenCache`.

        Raises:
            InteractionRequired: nothing cached can be refreshed; a person must sign in.
            ConfigError: several accounts are cached and ``account`` names none of them.
            TransientError / ResponseFormatError: the refresh failed and no valid token is left.
        """
        wanted = normalize_scopes(scopes) if scopes is not None else self.scopes
        cached = self._fresh_from_cache(wanted, min_validity, account)
        if cached is not None:
            return cached
        with self._refresh_lock:
            return self._drive(self._silent_flow(wanted, min_validity, account))

    # -- plumbing ----------------------------------------------------------------------------

    def _drive(self, flow: StepFlow[T]) -> T:
        step, result = start(flow)
        try:
            while step is not None:
                if isinstance(step, Wait):
                    self._pause(step.seconds)
                    step, result = advance(flow, step, None)
                    continue
                try:
                    response, lost, attempts, waits = send_with_retry(self._http, step, self.retry)
                except OAuthCoreError as exc:
                    step, result = advance(flow, step, exc)
                else:
                    step, result = advance(flow, step, response, lost, attempts, waits)
        finally:
            flow.close()  # an interrupted flow lets go of what it holds (a cache transaction) now
        return result  # type: ignore[return-value]

    def _pause(self, seconds: float) -> None:
        """Sleep for a Wait step in slices of at most 1 s, so Ctrl-C takes effect at once."""
        while seconds > 0:
            piece = min(1.0, seconds)
            self.retry.sleep(piece)
            seconds -= piece

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> EntraClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
