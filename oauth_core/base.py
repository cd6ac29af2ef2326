"""What the sync and async clients share: configuration, request building, caching, silent refresh.

Everything here is written once. Each operation is a generator flow that yields the HTTP
requests it needs (and, when polling a device code, :class:`~oauth_core.device.Wait` steps) and
returns its result; :class:`~oauth_core.client.EntraClient` and
:class:`~oauth_core.aio.AsyncEntraClient` differ only in how they send those requests and sleep
(and which lock keeps concurrent refreshes of one cache entry down to one).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Iterable, Optional, Tuple, TypeVar, Union

from .authority import Authority
from .authorize import PendingAuthorization, build_authorization_request, exchange_code_flow, parse_redirect
from .cache import (
    CacheEntry,
    CacheScope,
    MemoryTokenCache,
    TokenCache,
    find_access_token,
    find_refresh_token,
    flag,
    freshness,
    resolve_account,
    store,
)
from .claims import unverified_claims
from .device import DeviceCode, DeviceFlow, Wait, build_device_code_request, device_code_flow, device_code_grant
from .errors import (
    ConfigError,
    InteractionRequired,
    InvalidGrant,
    OAuthCoreError,
    TokenDecodeError,
    TokensNotSaved,
    TransientError,
)
from .protocol import (
    HttpRequest,
    HttpResponse,
    Pairs,
    TokenFlow,
    TokenSet,
    build_token_request,
    client_credentials_grant,
    normalize_scopes,
    password_grant,
    refresh_token_grant,
    token_flow,
)
from .retry import NetworkFailure, RetryPolicy

if TYPE_CHECKING:
    from .assertion import ClientCertificate

__all__ = ["ClientBase", "advance", "request_headers", "start"]

Scopes = Union[None, str, Iterable[str]]
T = TypeVar("T")
Flow = Generator[HttpRequest, HttpResponse, T]
Step = TypeVar("Step", bound=Union[HttpRequest, Wait])
# What the drivers run: flows that yield requests to send and (device code polling) waits.
StepFlow = Generator[Union[HttpRequest, Wait], HttpResponse, T]

APP_ACCOUNT = "app"  # the cache's account for app-only (client credentials) tokens
REFRESH_WINDOW = 300.0  # seconds before expiry when a proactive refresh starts
HARD_MARGIN = 40.0  # Azure Databricks refuses tokens with 30 s or less left
RETRY_SOFT_REFRESH_AFTER = 30.0  # at most one proactive attempt per entry in this many seconds


def request_headers() -> Pairs:
    """Per-call headers: a fresh ``client-request-id`` and the throttling capability MSAL advertises."""
    return (("client-request-id", str(uuid.uuid4())), ("x-ms-lib-capability", "retry-after, h429"))


def lost_code_error(
    original: Exception, attempts: int, waits: list[float], *, what: Optional[str] = None
) -> TransientError:
    """The error for a code redemption whose outcome is unknown: the code may be spent, so it is not resent.

    ``original`` is the failure that ended the call (a :class:`~oauth_core.retry.NetworkFailure` or
    a retryable HTTP status); ``what`` describes it instead (e.g. the call deadline was reached).
    """
    from .retry import RetryableResponse

    status: Optional[int] = None
    retry_after: Optional[float] = None
    if isinstance(original, RetryableResponse):
        status, retry_after = original.response.status, original.retry_after
        what = what or f"the service answered HTTP {status}"
    elif isinstance(original, NetworkFailure):
        what = what or f"the response was lost ({original.kind})"
    return TransientError(
        f"the authorization code redemption failed: {what or original}. The code may have been used (a code "
        "works once), so it was not sent again: sign in again to get a new one.",
        attempts=attempts,
        waits=waits,
        status=status,
        retry_after=retry_after,
    )


def start(flow: Generator[Step, HttpResponse, T]) -> Tuple[Optional[Step], Optional[T]]:
    """The flow's first request (or wait), or ``(None, result)`` when it finished without needing one."""
    try:
        return next(flow), None
    except StopIteration as stop:
        return None, stop.value


def advance(
    flow: Generator[Step, HttpResponse, T],
    sent: Union[HttpRequest, Wait],
    outcome: Union[HttpResponse, OAuthCoreError, None],
    lost: Optional[NetworkFailure] = None,
    attempts: int = 1,
    waits: Optional[list[float]] = None,
) -> Tuple[Optional[Step], Optional[T]]:
    """Feed a flow the response to ``sent`` (or throw the send's error into it).

    ``outcome`` None resumes the flow after a :class:`~oauth_core.device.Wait` step (the driver
    slept). Returns ``(next_step, None)``, or ``(None, result)`` when the flow is done. A
    single-use grant whose retry came back ``invalid_grant`` after a lost first response raises
    the lost response instead: that ``invalid_grant`` is the retry's, not the truth.
    """
    try:
        if outcome is None:
            return next(flow), None
        if isinstance(outcome, HttpResponse):
            return flow.send(outcome), None
        return flow.throw(outcome), None
    except StopIteration as stop:
        return None, stop.value
    except InvalidGrant:
        if isinstance(sent, HttpRequest) and sent.single_use and lost is not None:
            raise lost_code_error(lost, attempts, waits or []) from None
        raise


class ClientBase:
    """Configuration and the flows of one application (client id) at one authority.

    See :class:`~oauth_core.client.EntraClient` for the arguments.
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
        retry: Optional[RetryPolicy] = None,
        timeout: float = 30.0,
        offline_access: bool = True,
        cache: Optional[TokenCache] = None,
        clock: Callable[[], float] = time.time,
        trusted_hosts: Iterable[str] = (),
    ) -> None:
        if not client_id or not client_id.strip():
            raise ConfigError("client id is required")
        if client_secret is not None and client_certificate is not None:
            raise ConfigError("pass a client_secret or a client_certificate, not both")
        self.client_id = client_id.strip()
        self.authority = Authority.of(authority_host, tenant).require_trusted(trusted_hosts)
        self.scopes = normalize_scopes(scopes)
        self.offline_access = offline_access
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.cache = cache if cache is not None else MemoryTokenCache()
        self.clock = clock
        self._client_secret = client_secret
        self._client_certificate = client_certificate
        self._where = CacheScope(self.authority.host, self.authority.tenant, self.client_id)

    def __repr__(self) -> str:
        secret = "<redacted>" if self._client_secret else None
        return (
            f"{type(self).__name__}(client_id={self.client_id!r}, authority={self.authority.base!r}, "
            f"client_secret={secret})"
        )

    # -- requests ----------------------------------------------------------------------------

    def authorization_request(
        self,
        redirect_uri: str = "http://localhost",
        *,
        scopes: Scopes = None,
        prompt: Optional[str] = None,
        login_hint: Optional[str] = None,
        domain_hint: Optional[str] = None,
        state: Optional[str] = None,
    ) -> PendingAuthorization:
        """Start the authorization code flow: a pending request whose ``url`` goes to the browser."""
        return build_authorization_request(
            self.authority,
            self.client_id,
            redirect_uri,
            self._user_scopes(scopes),
            prompt=prompt,
            login_hint=login_hint,
            domain_hint=domain_hint,
            state=state,
        )

    def _user_scopes(self, scopes: Scopes) -> Tuple[str, ...]:
        base = self.scopes if scopes is None else normalize_scopes(scopes)
        return normalize_scopes(base, offline_access=self.offline_access)

    def _token_request(self, grant: Pairs, scopes: Tuple[str, ...]) -> HttpRequest:
        return build_token_request(
            self.authority,
            self.client_id,
            grant,
            scopes=scopes,
            client_secret=self._client_secret,
            headers=request_headers(),
            client_assertion=self._client_assertion(),
        )

    def _client_assertion(self) -> Optional[str]:
        """A fresh signed assertion for each token request of a certificate client (else None)."""
        if self._client_certificate is None:
            return None
        return self._client_certificate.assertion(self.client_id, self.authority.token_endpoint, now=self.clock())

    # -- flows -------------------------------------------------------------------------------

    def _stored(
        self, flow: Generator[Step, HttpResponse, TokenSet], scopes: Tuple[str, ...]
    ) -> Generator[Step, HttpResponse, TokenSet]:
        """Run a grant and record its tokens (a rotated refresh token replaces the old one first).

        The cache is checked before anything is sent, so a damaged or unsafe cache never burns a
        single-use code or a refresh token; if saving still fails, the tokens ride on
        :class:`TokensNotSaved`.
        """
        self.cache.check_usable()
        tokens = yield from flow
        try:
            with self.cache.transaction() as state:
                store(state, self._where, tokens, scopes)
        except ConfigError as exc:
            raise TokensNotSaved(tokens, exc) from None
        return tokens

    def _grant_flow(self, grant: Pairs, scopes: Tuple[str, ...]) -> TokenFlow:
        return self._stored(token_flow(self._token_request(grant, scopes), clock=self.clock), scopes)

    def _password_flow(self, username: str, password: str, scopes: Scopes) -> TokenFlow:
        return self._grant_flow(password_grant(username, password), self._user_scopes(scopes))

    def _refresh_flow(self, refresh_token: str, scopes: Scopes) -> TokenFlow:
        return self._grant_flow(refresh_token_grant(refresh_token), self._user_scopes(scopes))

    def _exchange_flow(
        self, request: PendingAuthorization, redirect_url: Optional[str], code: Optional[str]
    ) -> TokenFlow:
        if request.client_id != self.client_id:
            raise ConfigError("this pending request belongs to another client id")
        if (redirect_url is None) == (code is None):
            raise ConfigError("pass exactly one of redirect_url and code")
        if redirect_url is not None:
            code = parse_redirect(request, redirect_url)
        assert code is not None
        flow = exchange_code_flow(
            request,
            code,
            client_secret=self._client_secret,
            client_assertion=self._client_assertion(),
            headers=request_headers(),
        )
        return self._stored(flow, request.scopes)

    def _device_code_flow(
        self, scopes: Scopes, on_code: Callable[[DeviceCode], None], timeout: Optional[float]
    ) -> DeviceFlow:
        wanted = self._user_scopes(scopes)
        begin = build_device_code_request(self.authority, self.client_id, wanted, request_headers())

        def poll(code: DeviceCode) -> HttpRequest:
            return self._token_request(device_code_grant(code.device_code), wanted)

        flow = device_code_flow(begin, poll, on_code=on_code, clock=self.clock, timeout=timeout)
        return self._stored(flow, wanted)

    def _client_credentials_flow(self, scopes: Scopes) -> TokenFlow:
        """The client credentials grant; checks scope, tenant and credential before anything is sent."""
        wanted = normalize_scopes(self.scopes if scopes is None else scopes)
        if len(wanted) != 1 or not wanted[0].endswith("/.default") or wanted[0] == "/.default":
            raise ConfigError(
                "client credentials take exactly one scope of the form <resource>/.default "
                f"(e.g. {normalize_scopes(None)[0]}); the app's permissions are granted by an admin, not by scope"
            )
        if self.authority.tenant.lower() in ("organizations", "common", "consumers"):
            raise ConfigError(
                f"client credentials need the service principal's tenant (id or domain), not "
                f"'{self.authority.tenant}': pass tenant= / --tenant / AZURE_TENANT_ID"
            )
        if not self._is_confidential:
            raise ConfigError("client credentials need a client_secret or a client_certificate")
        return self._grant_flow(client_credentials_grant(), wanted)

    @property
    def _is_confidential(self) -> bool:
        return self._client_secret is not None or self._client_certificate is not None

    # -- silent acquisition ------------------------------------------------------------------

    def _fresh_from_cache(
        self, scopes: Tuple[str, ...], min_validity: float, account: Optional[str]
    ) -> Optional[TokenSet]:
        """The fast path: a cached token that needs nothing, read without any lock."""
        state = self.cache.snapshot()
        resolved = resolve_account(state, self._where, account)
        if resolved is None:
            return None
        entry = find_access_token(state, self._where, resolved, scopes)
        if entry is None or freshness(entry, self.clock(), min_validity=min_validity) != "fresh":
            return None
        return _from_entry(entry)

    def _silent_flow(self, scopes: Tuple[str, ...], min_validity: float, account: Optional[str]) -> TokenFlow:
        """Serve, or refresh, the cached token for ``scopes``; call with the entry's lock held.

        Re-reads the cache under its (inter-process) lock, so a refresh another thread or process
        just made is used instead of a second one.
        """
        with self.cache.transaction() as state:
            if account == APP_ACCOUNT and not self._is_confidential:
                raise ConfigError("app-only tokens need a client_secret or a client_certificate")
            resolved = resolve_account(state, self._where, account)
            if resolved is None and self._is_confidential and account in (None, APP_ACCOUNT):
                resolved = APP_ACCOUNT  # a service principal acts as itself
            if resolved is None:
                raise InteractionRequired("interaction_required", "No signed-in account in the cache: sign in first.")
            key = self._where.at_key(resolved, scopes)
            entry = find_access_token(state, self._where, resolved, scopes)
            now = self.clock()
            mode = "hard" if entry is None else freshness(entry, now, min_validity=min_validity)
            if entry is not None and mode == "fresh":
                return _from_entry(entry)
            marks = flag(state, key)
            if entry is not None and mode == "soft":
                last = marks.get("last_attempt")
                if marks.get("interaction_required") or (
                    isinstance(last, (int, float)) and now - last < RETRY_SOFT_REFRESH_AFTER
                ):
                    return _from_entry(entry)
            if marks.get("interaction_required"):
                raise InteractionRequired(
                    "interaction_required",
                    "A previous refresh for these scopes was refused: sign in again.",
                    error_codes=marks["interaction_required"],
                )
            if resolved == APP_ACCOUNT and self._is_confidential:
                # An app-only token is renewed by asking again: client credentials have no refresh token.
                grant, grant_scopes = client_credentials_grant(), scopes
            else:
                refresh_token = find_refresh_token(state, self._where, resolved)
                if refresh_token is None:
                    if entry is not None and mode == "soft":
                        return _from_entry(entry)
                    raise InteractionRequired("interaction_required", "No refresh token in the cache: sign in again.")
                grant, grant_scopes = refresh_token_grant(refresh_token), self._user_scopes(scopes)
            marks["last_attempt"] = now
            request = self._token_request(grant, grant_scopes)
            try:
                tokens: TokenSet = yield from token_flow(request, clock=self.clock)
            except (InvalidGrant, InteractionRequired) as exc:
                # Keep the refresh token (the refusal may hold for these scopes only); remember it.
                marks["interaction_required"] = list(exc.error_codes) or [0]
                if entry is not None and mode == "soft":
                    return _from_entry(entry)
                raise InteractionRequired(
                    exc.error,
                    exc.error_description,
                    error_codes=exc.error_codes,
                    suberror=exc.suberror,
                    trace_id=exc.trace_id,
                    correlation_id=exc.correlation_id,
                    claims=exc.claims,
                    status=exc.status,
                ) from exc
            except OAuthCoreError:
                if entry is not None and mode == "soft":
                    return _from_entry(entry)
                raise
            store(state, self._where, tokens, scopes)
            return tokens


def _from_entry(entry: CacheEntry) -> TokenSet:
    try:
        claims: Optional[Dict[str, Any]] = unverified_claims(entry.access_token)
    except TokenDecodeError:
        claims = None
    return TokenSet(
        access_token=entry.access_token,
        token_type=entry.token_type,
        scopes=entry.scopes,
        expires_at=entry.expires_at,
        refresh_at=entry.refresh_at,
        claims=claims,
    )
