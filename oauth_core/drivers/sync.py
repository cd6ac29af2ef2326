"""The synchronous client: the protocol flows driven over one reused ``httpx.Client``.

Everything protocol-shaped lives in :mod:`oauth_core.protocol` and :mod:`oauth_core.authorize`;
this shell only sends requests (with tenacity around each send) and feeds responses back.

Each send, retries included, ends by one call deadline (see :mod:`oauth_core.drivers.transport`), and the
client's own ``httpx.Client`` never sends loopback traffic (a local emulator) to an environment
proxy: ``HTTP_PROXY``/``ALL_PROXY`` keep serving Entra's hosts only.
"""

from __future__ import annotations

import contextlib
import webbrowser
from typing import Any, Callable, Dict, Optional, TypeVar

import httpx

from ..core.authority import Authority
from ..core.authorize import PendingAuthorization
from ..core.cache_rules import Check, Load, Lock, Save
from ..core.device import DeviceCode, Wait, print_message
from ..core.effects import Effect, StepFlow, T, advance, start
from ..core.errors import OAuthCoreError
from ..core.flows import Scopes
from ..core.protocol import Claims, HttpRequest, TokenSet, jwks_request, normalize_scopes, parse_jwks_response
from .common import ClientDriver, Engine
from .files import read_arc_key
from .proxies import LoopbackBypass
from .retry import RetryPolicy, transient_error
from .transport import (
    MAX_RESPONSE_BYTES,
    USER_AGENT,
    Exchange,
    fetch,
    network_failure,
    new_http_client,
    read_limited,
    send_once,
    send_with_retry,
    to_http_response,
)

# The sending itself is :mod:`oauth_core.drivers.transport`'s; its names stay importable from here.
__all__ = [
    "MAX_RESPONSE_BYTES",
    "USER_AGENT",
    "EntraClient",
    "Exchange",
    "LoopbackBypass",
    "fetch",
    "fetch_jwks",
    "network_failure",
    "new_http_client",
    "read_limited",
    "send_once",
    "send_with_retry",
    "to_http_response",
    "transient_error",
]


def fetch_jwks(authority: Authority, *, timeout: float = 30.0, retry: Optional[RetryPolicy] = None) -> Dict[str, Any]:
    """GET the tenant's signing keys (``discovery/v2.0/keys``), with the usual retries."""
    with new_http_client(timeout) as http:
        return parse_jwks_response(send_with_retry(http, jwks_request(authority), retry or RetryPolicy()).response)


E = TypeVar("E", bound="SyncEngine")


class SyncEngine(Engine[httpx.Client]):
    """The sync driver's loop: performs each effect a flow yields, over one ``httpx.Client``."""

    def _new_http(self, timeout: float) -> httpx.Client:
        return new_http_client(timeout)

    def _drive(self, flow: StepFlow[T]) -> T:
        """Run a flow: perform each effect it yields and feed the outcome back, until it returns."""
        with contextlib.ExitStack() as held:  # the entry locks it takes, let go once it ends
            try:
                step, result = start(flow)
                while step is not None:
                    step, result = advance(flow, step, self._perform(step, held))
            finally:
                flow.close()  # an interrupted flow ends before its locks are let go
        return result  # type: ignore[return-value]

    def _perform(self, step: Effect, held: contextlib.ExitStack) -> Any:
        """Do one effect; its outcome, or the library error it failed with (thrown into the flow)."""
        try:
            if isinstance(step, HttpRequest):
                with self.cache.throttle.watch(
                    step, self._clock()
                ) as watch:  # refused unsent inside a throttling window
                    return watch.seen(send_with_retry(self._http, step, self.retry).response)
            if isinstance(step, Load):
                return self.cache.latest()
            if isinstance(step, Save):
                return self.cache.save(step.apply)
            if isinstance(step, Check):
                return self.cache.check_usable()
            if isinstance(step, Lock):
                held.enter_context(self.cache.entry_lock(step.key))
                return None
            if isinstance(step, Wait):
                self._pause(step.seconds)
                return None
            return read_arc_key(step.path, step.max_bytes)
        except OAuthCoreError as exc:
            return exc

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

    def __enter__(self: E) -> E:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EntraClient(ClientDriver[httpx.Client], SyncEngine):
    __doc__ = ClientDriver.__doc__

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
        claims: Claims = None,
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
                webbrowser.open(pending.url)
            query = listener.wait(timeout)
        return self.exchange_code(pending, "?" + query)

    def acquire_by_password(
        self, username: str, password: str, *, scopes: Scopes = None, claims: Claims = None
    ) -> TokenSet:
        """The resource owner password grant (ROPC), after a user realm lookup: a federated user signs
        in through the federation's WS-Trust endpoint and a SAML bearer grant. Fails for MFA and
        personal accounts."""
        return self._drive(self._password_flow(username, password, scopes, claims))

    def refresh(self, refresh_token: str, *, scopes: Scopes = None, claims: Claims = None) -> TokenSet:
        """Redeem a refresh token; the rotated one Entra returns is cached before this returns."""
        return self._drive(self._refresh_flow(refresh_token, scopes, claims))

    def acquire_by_device_code(
        self,
        *,
        scopes: Scopes = None,
        on_code: Callable[[DeviceCode], None] = print_message,
        timeout: Optional[float] = None,
        claims: Claims = None,
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
        return self._drive(self._device_code_flow(scopes, on_code, timeout, claims))

    def acquire_for_client(self, *, scopes: Scopes = None, claims: Claims = None) -> TokenSet:
        """The client credentials grant: an app-only token for a service principal (cached as ``app``).

        Args:
            scopes: exactly one ``<resource>/.default`` scope (the Azure Databricks one by default).

        Raises:
            ConfigError: no secret or certificate, a scope that is not ``/.default``, or a tenant
                alias (organizations/common/consumers): nothing is sent.
            InvalidClient: Entra refused the secret or assertion.
            (and TransientError / ResponseFormatError)
        """
        return self._drive(self._client_credentials_flow(scopes, claims))

    def acquire_on_behalf_of(self, user_assertion: str, *, scopes: Scopes = None, claims: Claims = None) -> TokenSet:
        """The on-behalf-of grant: a middle-tier API's token for ``scopes``, acting as its caller.

        Args:
            user_assertion: the access token the caller presented to this API (its audience is this
                application). Tokens are cached under its SHA-256 hash, never the assertion itself,
                and served again while fresh.

        Raises:
            ConfigError: no client credential, or an empty assertion: nothing is sent.
            InvalidGrant / InteractionRequired: Entra refused the assertion (expired, wrong audience,
                consent or MFA needed: the ``claims`` of the error go back to the caller).
            (and TransientError / ResponseFormatError)
        """
        return self._drive(self._on_behalf_of_flow(user_assertion, scopes, claims))

    def get_token(
        self,
        *,
        scopes: Scopes = None,
        min_validity: float = 300.0,
        account: Optional[str] = None,
        claims: Claims = None,
    ) -> TokenSet:
        """A cached access token with at least ``min_validity`` seconds left, refreshed silently if needed.

        Inside the refresh window (5 minutes before expiry, or Entra's ``refresh_in``) a refresh is
        tried but a failure keeps serving the still-valid token (one attempt per 30 s); below
        ``max(min_validity, 40 s)`` the refresh must succeed. One refresh of an entry runs at a
        time across threads, and across processes sharing a :class:`FileTokenCache`; refreshes of
        other entries, and readers of fresh tokens, never wait for it.

        Raises:
            InteractionRequired: nothing cached can be refreshed; a person must sign in.
            ConfigError: several accounts are cached and ``account`` names none of them.
            TransientError / ResponseFormatError: the refresh failed and no valid token is left.
        """
        wanted = normalize_scopes(scopes) if scopes is not None else self.scopes
        if claims is None:
            cached = self._fresh_from_cache(self.cache.snapshot(), wanted, min_validity, account)
            if cached is not None:
                return cached
        return self._drive(self._silent_flow(wanted, min_validity, account, claims))
