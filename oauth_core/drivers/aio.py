"""The asynchronous client: the same protocol flows as :mod:`oauth_core.client`, over ``httpx.AsyncClient``.

Nothing protocol-shaped is written here. :class:`AsyncEntraClient` drives the generator flows
of :class:`~oauth_core.base.ClientBase` (the very ones :class:`~oauth_core.client.EntraClient`
drives), and it sends through the same :mod:`oauth_core.drivers.transport` as the sync client:
its :func:`send_once` / :func:`send_with_retry` are that module's ``async_send_once`` /
``async_send_with_retry``, the thin ``await`` loops around the one request builder, body limit,
error classification, retry bookkeeping (tenacity's ``AsyncRetrying``) and client factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
import webbrowser
from typing import Any, AsyncIterator, Callable, Dict, Optional, TypeVar

import httpx

from ..core.authorize import PendingAuthorization
from ..core.cache_rules import Check, Load, Save
from ..core.device import DeviceCode, Wait, print_message
from ..core.effects import Effect, StepFlow, T, advance, start
from ..core.errors import OAuthCoreError
from ..core.flows import Scopes
from ..core.identity import ReadArcKey
from ..core.protocol import Claims, HttpRequest, TokenSet, normalize_scopes
from .common import ClientDriver, Engine
from .files import read_arc_key
from .proxies import LoopbackBypass
from .retry import transient_error
from .stores import lock_entry_off_loop
from .transport import (
    MAX_RESPONSE_BYTES,
    Exchange,
    async_send_once as send_once,
    async_send_with_retry as send_with_retry,
    network_failure,
    new_async_http_client,
    to_http_response,
)

# The sending itself is :mod:`oauth_core.drivers.transport`'s; its names stay importable from here
# (``send_once`` / ``send_with_retry`` are its ``async_send_once`` / ``async_send_with_retry``).
__all__ = [
    "MAX_RESPONSE_BYTES",
    "AsyncEntraClient",
    "AsyncLoopbackBypass",
    "Exchange",
    "network_failure",
    "new_async_http_client",
    "send_once",
    "send_with_retry",
    "to_http_response",
    "transient_error",
]

AsyncLoopbackBypass = LoopbackBypass  # one router serves sync and async clients alike
A = TypeVar("A", bound="AsyncEngine")


class AsyncEngine(Engine[httpx.AsyncClient]):
    """The async driver's loop: performs each effect a flow yields, over one ``httpx.AsyncClient``."""

    def _new_http(self, timeout: float) -> httpx.AsyncClient:
        return new_async_http_client(timeout)

    async def _drive(self, flow: StepFlow[T]) -> T:
        """Run a flow: perform each effect it yields and feed the outcome back, until it returns."""
        async with contextlib.AsyncExitStack() as held:  # the entry locks it takes, let go once it ends
            try:
                step, result = start(flow)
                while step is not None:
                    step, result = advance(flow, step, await self._perform(step, held))
            finally:
                flow.close()  # a cancelled flow ends before its locks are let go
        return result  # type: ignore[return-value]

    async def _perform(self, step: Effect, held: contextlib.AsyncExitStack) -> Any:
        """Do one effect; its outcome, or the library error it failed with (thrown into the flow)."""
        try:
            if isinstance(step, HttpRequest):
                with self.cache.throttle.watch(
                    step, self._clock()
                ) as watch:  # refused unsent inside a throttling window
                    if self.max_in_flight is None:
                        return watch.seen((await send_with_retry(self._http, step, self.retry)).response)
                    async with self._sending(self.max_in_flight):
                        return watch.seen((await send_with_retry(self._http, step, self.retry)).response)
            if isinstance(step, Wait):
                await (self.retry.async_sleep or asyncio.sleep)(step.seconds)
                return None
            if isinstance(step, Check):
                return await self._cache_work(self.cache.check_usable)
            if isinstance(step, Load):
                return await self._cache_work(self.cache.latest)
            if isinstance(step, Save):
                return await self._cache_work(functools.partial(self.cache.save, step.apply))
            if isinstance(step, ReadArcKey):
                return await asyncio.to_thread(read_arc_key, step.path, step.max_bytes)
            await held.enter_async_context(self._entry_lock(step.key))
            return None
        except OAuthCoreError as exc:
            return exc

    # At most this many of this client's requests on the wire at once (None: no bound but the
    # transport's). The lean transport's pool does not need it. On httpx's own transport, whose
    # pool re-examines every queued request whenever a connection frees up, hundreds of gathered
    # refreshes on a few cores queue inside that pool, and waiting here instead is cheaper. A bound
    # caps parallelism too: set it for CPU-bound fan-out, not when requests wait on the network.
    max_in_flight: Optional[int] = None

    def _sending(self, bound: int) -> asyncio.Semaphore:
        """The per-event-loop semaphore of :attr:`max_in_flight`."""
        per_loop = self.__dict__.setdefault("_senders", weakref.WeakKeyDictionary())
        loop = asyncio.get_running_loop()
        gate: Optional[asyncio.Semaphore] = per_loop.get(loop)
        if gate is None:
            gate = per_loop.setdefault(loop, asyncio.Semaphore(bound))
        return gate

    async def _cache_work(self, work: Callable[[], Any]) -> Any:
        """Run cache I/O: in a worker thread for a file cache, inline for a memory one."""
        if self.cache.blocking:
            return await asyncio.to_thread(work)
        return work()

    @contextlib.asynccontextmanager
    async def _entry_lock(self, key: str) -> AsyncIterator[None]:
        """The single-flight lock of one entry: this client's tasks first, then other processes (off-loop)."""
        # Per event loop, per entry, made on first use inside the running loop (Python 3.9 binds a
        # Lock to a loop when it is created).
        per_loop = self.__dict__.setdefault("_entry_locks", weakref.WeakKeyDictionary())
        locks: Dict[str, asyncio.Lock] = per_loop.setdefault(asyncio.get_running_loop(), {})
        lock = locks.get(key) or locks.setdefault(key, asyncio.Lock())
        async with lock:
            release = await lock_entry_off_loop(self.cache, key)
            try:
                yield
            finally:
                release()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncEntraClient(ClientDriver[httpx.AsyncClient], AsyncEngine):
    """The ``async`` twin of :class:`~oauth_core.drivers.sync.EntraClient`: same arguments, same flows.

    The arguments are those of :class:`~oauth_core.drivers.common.ClientDriver`; ``http_client`` is an
    ``httpx.AsyncClient``, and waits use ``retry.async_sleep`` when set, else :func:`asyncio.sleep`.
    """

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
        claims: Claims = None,
    ) -> TokenSet:
        """Sign in through the system browser and a loopback listener (which waits in a worker thread).

        The arguments are those of :meth:`EntraClient.acquire_interactive
        <oauth_core.client.EntraClient.acquire_interactive>`.

        Raises:
            InteractionTimeout: nobody finished signing in within ``timeout``.
            (and everything :meth:`exchange_code` raises)
        """
        from .loopback import signing_in

        hints = {
            "scopes": scopes,
            "prompt": prompt,
            "login_hint": login_hint,
            "domain_hint": domain_hint,
            "claims": claims,
        }
        with signing_in(self, redirect_uri, listen_address=listen_address, on_url=on_url, **hints) as (
            listener,
            pending,
        ):
            if open_browser:
                await asyncio.to_thread(webbrowser.open, pending.url)
            try:
                query = await asyncio.to_thread(listener.wait, timeout)
            except asyncio.CancelledError:
                listener.cancel()  # end the worker thread's wait now, not at the timeout
                raise
        return await self.exchange_code(pending, "?" + query)

    async def acquire_by_password(
        self, username: str, password: str, *, scopes: Scopes = None, claims: Claims = None
    ) -> TokenSet:
        """The resource owner password grant (ROPC), after a user realm lookup: a federated user signs
        in through the federation's WS-Trust endpoint and a SAML bearer grant. Fails for MFA and
        personal accounts."""
        return await self._drive(self._password_flow(username, password, scopes, claims))

    async def refresh(self, refresh_token: str, *, scopes: Scopes = None, claims: Claims = None) -> TokenSet:
        """Redeem a refresh token; the rotated one Entra returns is cached before this returns."""
        return await self._drive(self._refresh_flow(refresh_token, scopes, claims))

    async def acquire_by_device_code(
        self,
        *,
        scopes: Scopes = None,
        on_code: Callable[[DeviceCode], None] = print_message,
        timeout: Optional[float] = None,
        claims: Claims = None,
    ) -> TokenSet:
        """The device code flow (RFC 8628); cancelling the task stops the polling at once.

        Args:
            on_code: called once with the :class:`DeviceCode`; prints its message to stderr by default.
            timeout: seconds to wait at most (the device code's own expiry otherwise).

        Raises:
            InteractionTimeout: nobody finished signing in before the timeout or the code's expiry.
            AuthorizationDeclined / ExpiredToken / BadVerificationCode: the sign-in ended otherwise.
        """
        return await self._drive(self._device_code_flow(scopes, on_code, timeout, claims))

    async def acquire_for_client(self, *, scopes: Scopes = None, claims: Claims = None) -> TokenSet:
        """The client credentials grant: an app-only token for a service principal (cached as ``app``).

        Raises:
            ConfigError: no secret or certificate, a scope that is not ``<resource>/.default``, or a
                tenant alias (organizations/common/consumers): nothing is sent.
            InvalidClient: Entra refused the secret or assertion.
        """
        return await self._drive(self._client_credentials_flow(scopes, claims))

    async def acquire_on_behalf_of(
        self, user_assertion: str, *, scopes: Scopes = None, claims: Claims = None
    ) -> TokenSet:
        """The on-behalf-of grant, as :meth:`EntraClient.acquire_on_behalf_of
        <oauth_core.drivers.sync.EntraClient.acquire_on_behalf_of>` (cached under the assertion's hash).

        Raises:
            ConfigError: no client credential, or an empty assertion: nothing is sent.
            InvalidGrant / InteractionRequired: Entra refused the assertion.
        """
        return await self._drive(self._on_behalf_of_flow(user_assertion, scopes, claims))

    async def get_token(
        self,
        *,
        scopes: Scopes = None,
        min_validity: float = 300.0,
        account: Optional[str] = None,
        claims: Claims = None,
    ) -> TokenSet:
        """A cached access token with at least ``min_validity`` seconds left, refreshed silently if needed.

        The rules are :meth:`EntraClient.get_token <oauth_core.drivers.sync.EntraClient.get_token>`'s.
        The fast path reads the cache without a lock; concurrent callers of an expiring entry share
        a single refresh (across processes too, for a :class:`FileTokenCache`). A file cache's
        locks are waited for, and its reads and writes done, in a worker thread: the event loop
        never blocks on another process's refresh.

        Raises:
            InteractionRequired: nothing cached can be refreshed; a person must sign in.
            ConfigError: several accounts are cached and ``account`` names none of them.
            TransientError / ResponseFormatError: the refresh failed and no valid token is left.
        """
        wanted = normalize_scopes(scopes) if scopes is not None else self.scopes
        # The fast path reads inline even from a file: one small read, cheaper than a thread hop.
        if claims is None:
            cached = self._fresh_from_cache(self.cache.snapshot(), wanted, min_validity, account)
            if cached is not None:
                return cached
        return await self._drive(self._silent_flow(wanted, min_validity, account, claims))
