"""The asynchronous client: the same protocol flows as :mod:`oauth_core.client`, over ``httpx.AsyncClient``.

Nothing protocol-shaped is written here. :class:`AsyncEntraClient` drives the generator flows
of :class:`~oauth_core.base.ClientBase` (the very ones :class:`~oauth_core.client.EntraClient`
drives), and its :func:`send_once` / :func:`send_with_retry` are the async twins of the sync
ones: same no-redirect, no-ambient-auth sending, same size limit, same classification of
network failures and retry rules (tenacity's ``AsyncRetrying``), reusing the sync module's
pure helpers. As in httpx, only the I/O is written twice, in plain sight: the call deadline's
socket wrapper (:class:`AsyncDeadlineBackend`) and the loopback proxy bypass included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import webbrowser
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, List, Optional, Tuple

import httpcore
import httpx

from .authority import is_loopback_host
from .authorize import PendingAuthorization
from .base import ClientBase, Scopes, StepFlow, T, advance, start
from .cache import TokenCache
from .client import (
    _NO_AUTH,
    MAX_RESPONSE_BYTES,
    USER_AGENT,
    _NoCookies,
    final_error,
    response_too_large,
    to_http_response,
)
from .device import DeviceCode, Wait, print_message
from .errors import OAuthCoreError
from .pkce import new_state
from .protocol import HttpRequest, HttpResponse, TokenSet, normalize_scopes
from .retry import (
    CALL_DEADLINE,
    NetworkFailure,
    RetryableResponse,
    RetryPolicy,
    async_retrying,
    attempt_timeout,
    call_budget,
    clip_timeout,
    install_deadline_backend,
    is_retryable_response,
    network_failure,
    proxy_mounts,
    time_left,
    transient_error,  # noqa: F401 - shared with the sync module (and tested to be)
)

if TYPE_CHECKING:
    from .assertion import ClientCertificate

__all__ = ["AsyncEntraClient", "new_async_http_client", "send_once", "send_with_retry"]

log = logging.getLogger("oauth_core")


async def send_once(http: httpx.AsyncClient, request: HttpRequest, *, until: Optional[float] = None) -> HttpResponse:
    """Send one request (no redirects, no ambient auth), reading at most MAX_RESPONSE_BYTES.

    ``until`` is the call deadline, a ``time.monotonic()`` instant: connect, headers and body end by then.

    Raises:
        RetryableResponse / NetworkFailure: transient; the retry layer decides (DeadlineReached: final).
        TransportError / ResponseFormatError: final.
    """
    started = time.perf_counter()
    token = None if until is None else CALL_DEADLINE.set(until)
    try:
        clipped = None if until is None else clip_timeout(http.timeout, until)
        http_request = http.build_request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body or None,
            timeout=httpx.USE_CLIENT_DEFAULT if clipped is None else clipped,
        )
        response = await http.send(http_request, auth=_NO_AUTH, follow_redirects=False, stream=True)
        try:
            chunks = await _read_limited(response, until)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        log.debug("%s %s failed: %s", request.method, request.url, type(exc).__name__)
        raise network_failure(exc, until=until) from None
    finally:
        if token is not None:
            CALL_DEADLINE.reset(token)
    result = to_http_response(response, b"".join(chunks))
    log.debug(
        "%s %s -> %d in %.1f ms", request.method, request.url, result.status, (time.perf_counter() - started) * 1000
    )
    if is_retryable_response(result):
        raise RetryableResponse(result)
    return result


async def _read_limited(response: httpx.Response, until: Optional[float] = None) -> List[bytes]:
    length = response.headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
        raise response_too_large()
    chunks: List[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise response_too_large()
        if until is not None and time.monotonic() >= until:
            raise httpx.ReadTimeout("the call's deadline was reached")
        chunks.append(chunk)
    return chunks


async def send_with_retry(
    http: httpx.AsyncClient, request: HttpRequest, policy: RetryPolicy, *, deadline: Optional[float] = None
) -> Tuple[HttpResponse, Optional[NetworkFailure], int, List[float]]:
    """Send with tenacity's ``AsyncRetrying``; returns the response, a lost-response failure, attempts, waits.

    The call deadline and the single-use rule are those of :func:`oauth_core.client.send_with_retry`.

    Raises:
        TransientError: retries spent, the deadline reached, or a code whose outcome is unknown.
    """
    budget = call_budget(policy, attempt_timeout(http.timeout)) if deadline is None else deadline
    until = None if budget is None else time.monotonic() + budget
    started = policy.clock()
    try:  # the common case: no tenacity machinery for a request that succeeds at once
        return await send_once(http, request, until=until), None, 1, []
    except (RetryableResponse, NetworkFailure) as exc:
        first = exc
    lost = first if isinstance(first, NetworkFailure) and first.maybe_sent else None
    replay: List[BaseException] = [first]  # tenacity's first attempt replays the failure, then retries
    attempts, waits = 0, []  # type: int, List[float]
    try:
        async for attempt in async_retrying(policy, waits, started, until=until, single_use=request.single_use):
            with attempt:
                attempts += 1
                if replay:
                    raise replay.pop()
                try:
                    return await send_once(http, request, until=until), lost, attempts, waits
                except NetworkFailure as failure:
                    lost = lost or (failure if failure.maybe_sent else None)
                    raise
    except (RetryableResponse, NetworkFailure) as exc:
        raise final_error(exc, request, attempts, waits, budget) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


class AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    """The async twin of :class:`oauth_core.retry.DeadlineStream`."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self.stream = stream

    async def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        return await self.stream.read(max_bytes, time_left(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        await self.stream.write(buffer, time_left(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: Optional[str] = None, timeout: Optional[float] = None
    ) -> httpcore.AsyncNetworkStream:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return AsyncDeadlineStream(await self.stream.start_tls(ssl_context, server_hostname, limit))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """The async twin of :class:`oauth_core.retry.DeadlineBackend`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self.backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[Iterable[Any]] = None,
    ) -> httpcore.AsyncNetworkStream:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return AsyncDeadlineStream(await self.backend.connect_tcp(host, port, limit, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: Optional[float] = None, socket_options: Optional[Iterable[Any]] = None
    ) -> httpcore.AsyncNetworkStream:
        limit = time_left(timeout, httpcore.ConnectTimeout)
        return AsyncDeadlineStream(await self.backend.connect_unix_socket(path, limit, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


class AsyncLoopbackBypass(httpx.AsyncBaseTransport):
    """The async twin of :class:`oauth_core.client.LoopbackBypass`: loopback hosts skip the proxy."""

    def __init__(self, proxy: httpx.AsyncBaseTransport, direct: httpx.AsyncBaseTransport) -> None:
        self.proxy = proxy
        self.direct = direct

    def route(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        """The transport for ``url``: direct for 127.0.0.0/8, ::1 and localhost, else the proxy."""
        return self.direct if is_loopback_host(url.host) else self.proxy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        await self.proxy.aclose()
        await self.direct.aclose()


def new_async_http_client(timeout: float) -> httpx.AsyncClient:
    """The client's own httpx.AsyncClient: keep-alive, no redirects, no cookie jar, our User-Agent.

    Environment proxies serve non-loopback hosts only, and its sockets obey the call deadline.
    """
    http = httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        cookies=_NoCookies(),
        headers={"user-agent": USER_AGENT},
        mounts=proxy_mounts(httpx.AsyncHTTPTransport, AsyncLoopbackBypass, AsyncDeadlineBackend),
    )
    if not install_deadline_backend(getattr(http, "_transport", None), AsyncDeadlineBackend):
        log.debug("httpx layout not recognised: the call deadline is checked between reads only")
    return http


class AsyncEntraClient(ClientBase):
    """The ``async`` twin of :class:`~oauth_core.client.EntraClient`: same arguments, same flows.

    Args:
        client_id, tenant, authority_host, scopes, client_secret, client_certificate, retry,
            timeout, offline_access, cache, clock: as for :class:`~oauth_core.client.EntraClient`
            (waits use ``retry.async_sleep`` when set, else :func:`asyncio.sleep`).
        http_client: an ``httpx.AsyncClient`` to use instead of the client's own (as for the sync
            client: its own proxy settings, the call deadline checked between reads only).

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
        http_client: Optional[httpx.AsyncClient] = None,
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
        self._http = http_client or new_async_http_client(timeout)
        # Created on first use, inside the running loop (Python 3.9 binds a Lock to a loop at creation).
        self._lock: Optional[asyncio.Lock] = None

    # -- grants ------------------------------------------------------------------------------

    async def exchange_code(
        self, request: PendingAuthorization, redirect_url: Optional[str] = None, *, code: Optional[str] = None
    ) -> TokenSet:
        """Finish the authorization code flow, as :meth:`oauth_core.client.EntraClient.exchange_code` does.

        Raises:
            StateMismatch / NonceMismatch, RedirectError, OAuthError, TransientError, ResponseFormatError.
        """
        return await self._drive(self._exchange_flow(request, redirect_url, code))

    async def acquire_interactive(
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
        """Sign in through the system browser and a loopback listener (which waits in a worker thread).

        The arguments are those of :meth:`EntraClient.acquire_interactive
        <oauth_core.client.EntraClient.acquire_interactive>`.

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
                await asyncio.to_thread(webbrowser.open, pending.url)
            try:
                query = await asyncio.to_thread(listener.wait, timeout)
            except asyncio.CancelledError:
                listener.cancel()  # end the worker thread's wait now, not at the timeout
                raise
        return await self.exchange_code(pending, "?" + query)

    async def acquire_by_password(self, username: str, password: str, *, scopes: Scopes = None) -> TokenSet:
        """The resource owner password grant (ROPC). Fails for MFA, federated and personal accounts."""
        return await self._drive(self._password_flow(username, password, scopes))

    async def refresh(self, refresh_token: str, *, scopes: Scopes = None) -> TokenSet:
        """Redeem a refresh token; the rotated one Entra returns is cached before this returns."""
        return await self._drive(self._refresh_flow(refresh_token, scopes))

    async def acquire_by_device_code(
        self,
        *,
        scopes: Scopes = None,
        on_code: Callable[[DeviceCode], None] = print_message,
        timeout: Optional[float] = None,
    ) -> TokenSet:
        """The device code flow (RFC 8628); cancelling the task stops the polling at once.

        Args:
            on_code: called once with the :class:`DeviceCode`; prints its message to stderr by default.
            timeout: seconds to wait at most (the device code's own expiry otherwise).

        Raises:
            InteractionTimeout: nobody finished signing in before the timeout or the code's expiry.
            AuthorizationDeclined / ExpiredToken / BadVerificationCode: the sign-in ended otherwise.
        """
        return await self._drive(self._device_code_flow(scopes, on_code, timeout))

    async def acquire_for_client(self, *, scopes: Scopes = None) -> TokenSet:
        """The client credentials grant: an app-only token for a service principal (cached as ``app``).

        Raises:
            ConfigError: no secret or certificate, a scope that is not ``<resource>/.default``, or a
                tenant alias (organizations/common/consumers): nothing is sent.
            InvalidClient: Entra refused the secret or assertion.
        """
        return await self._drive(self._client_credentials_flow(scopes))

    async def get_token(
        self, *, scopes: Scopes = None, min_validity: float = 300.0, account: Optional[str] = None
    ) -> TokenSet:
        """A cached access token with at least ``min_validity`` seconds left, refreshed silently if needed.

        The rules are :meth:`EntraClient.get_token <oauth_core.client.EntraClient.get_token>`'s. The
        fast path reads the cache without a lock; refreshes of one client run one at a time, so
        concurrent callers of an expiring entry share a single refresh.

        Raises:
            InteractionRequired: nothing cached can be refreshed; a person must sign in.
            ConfigError: several accounts are cached and ``account`` names none of them.
            TransientError / ResponseFormatError: the refresh failed and no valid token is left.
        """
        wanted = normalize_scopes(scopes) if scopes is not None else self.scopes
        cached = self._fresh_from_cache(wanted, min_validity, account)
        if cached is not None:
            return cached
        async with self._refresh_lock():
            return await self._drive(self._silent_flow(wanted, min_validity, account), holding_lock=True)

    # -- plumbing ----------------------------------------------------------------------------

    def _refresh_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _drive(self, flow: StepFlow[T], *, holding_lock: bool = False) -> T:
        """Run a flow: send its requests (with retries), sleep its waits, feed the outcomes back.

        The silent refresh keeps a cache transaction open across its request. Its lock is held by
        this event-loop thread, where a thread lock does not exclude anyone, so every other flow
        takes the refresh lock for its (synchronous, quick) steps, where it may write the cache.
        """
        try:
            async with self._guard(holding_lock):
                step, result = start(flow)
            while step is not None:
                if isinstance(step, Wait):
                    await (self.retry.async_sleep or asyncio.sleep)(step.seconds)
                    async with self._guard(holding_lock):
                        step, result = advance(flow, step, None)
                    continue
                try:
                    response, lost, attempts, waits = await send_with_retry(self._http, step, self.retry)
                except OAuthCoreError as exc:
                    async with self._guard(holding_lock):
                        step, result = advance(flow, step, exc)
                else:
                    async with self._guard(holding_lock):
                        step, result = advance(flow, step, response, lost, attempts, waits)
        finally:
            flow.close()  # a cancelled flow lets go of what it holds (a cache transaction) now
        return result  # type: ignore[return-value]

    @contextlib.asynccontextmanager
    async def _guard(self, holding_lock: bool) -> AsyncIterator[None]:
        if holding_lock:
            yield
        else:
            async with self._refresh_lock():
                yield

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncEntraClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
