"""What the sync and async clients share: configuration, request building, caching, silent refresh.

Everything here is written once, and touches neither a socket nor a file. Each operation is a
generator flow that yields the effects it needs and returns its result:

- an :class:`~oauth_core.core.protocol.HttpRequest`: send it, send back the response (or throw
  the send's error in);
- a :class:`~oauth_core.core.device.Wait`: sleep, then resume;
- :class:`~oauth_core.core.cache_rules.Check`, :class:`~oauth_core.core.cache_rules.Load`,
  :class:`~oauth_core.core.cache_rules.Save` and :class:`~oauth_core.core.cache_rules.Lock`:
  check that the cache is usable, read it, change it in one short transaction, or hold one
  entry's single-flight lock until the flow ends.

:class:`~oauth_core.drivers.sync.EntraClient` and :class:`~oauth_core.drivers.aio.AsyncEntraClient`
differ only in how they perform those effects. No cache lock is held while a request is on the
wire: a refresh holds only its own entry's lock, and readers never wait on that.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Iterable, Optional, Tuple, TypeVar, Union

from .authority import Authority
from .authorize import PendingAuthorization, build_authorization_request, exchange_code_flow, parse_redirect
from .cache_rules import (
    APP_ACCOUNT,
    CacheEntry,
    CacheScope,
    Check,
    Load,
    Lock,
    Save,
    State,
    entry_key,
    find_access_token,
    find_refresh_token,
    freshness,
    marks_of,
    note_attempt,
    resolve_account,
    store,
)
from .claims import unverified_claims
from .device import DeviceCode, Wait, build_device_code_request, device_code_flow, device_code_grant
from .errors import (
    ConfigError,
    InteractionRequired,
    InvalidGrant,
    OAuthCoreError,
    TokenDecodeError,
    TokensNotSaved,
)
from .protocol import (
    HttpRequest,
    HttpResponse,
    Pairs,
    TokenSet,
    build_token_request,
    client_credentials_grant,
    normalize_scopes,
    password_grant,
    refresh_token_grant,
    token_flow,
)

if TYPE_CHECKING:
    from .assertion import ClientCertificate

__all__ = ["APP_ACCOUNT", "ClientBase", "Effect", "StepFlow", "advance", "request_headers", "start"]

Scopes = Union[None, str, Iterable[str]]
T = TypeVar("T")
# What a flow yields for its driver to perform.
Effect = Union[HttpRequest, Wait, Check, Load, Save, Lock]
Step = TypeVar("Step", bound=Effect)
# What the drivers run: flows that yield effects and are sent back their outcomes.
StepFlow = Generator[Effect, Any, T]
CachedFlow = StepFlow[TokenSet]

REFRESH_WINDOW = 300.0  # seconds before expiry when a proactive refresh starts
HARD_MARGIN = 40.0  # Azure Databricks refuses tokens with 30 s or less left
RETRY_SOFT_REFRESH_AFTER = 30.0  # at most one proactive attempt per entry in this many seconds


def request_headers() -> Pairs:
    """Per-call headers: a fresh ``client-request-id`` and the throttling capability MSAL advertises."""
    return (("client-request-id", str(uuid.uuid4())), ("x-ms-lib-capability", "retry-after, h429"))


def start(flow: Generator[Step, Any, T]) -> Tuple[Optional[Step], Optional[T]]:
    """The flow's first effect, or ``(None, result)`` when it finished without needing one."""
    try:
        return next(flow), None
    except StopIteration as stop:
        return None, stop.value


def advance(flow: Generator[Step, Any, T], sent: Effect, outcome: Any) -> Tuple[Optional[Step], Optional[T]]:
    """Feed a flow the outcome of the effect ``sent``: an exception is thrown into it, anything else sent.

    The outcome of an :class:`HttpRequest` is its :class:`HttpResponse` (or the send's error), of a
    :class:`Wait` or a :class:`Check` None, of a :class:`Load` the state, of a :class:`Save` what its ``apply`` returned
    (or the cache's error). Returns ``(next_effect, None)``, or ``(None, result)`` when the flow is done.
    """
    try:
        if isinstance(outcome, BaseException):
            return flow.throw(outcome), None
        return flow.send(outcome), None
    except StopIteration as stop:
        return None, stop.value


@dataclass(frozen=True)
class _Refresh:
    """A silent refresh to make: its grant, and the still-valid entry to serve if it fails (soft)."""

    grant: Pairs
    scopes: Tuple[str, ...]
    fallback: Optional[CacheEntry]


class ClientBase:
    """Configuration and the flows of one application (client id) at one authority.

    See :class:`~oauth_core.drivers.sync.EntraClient` for the arguments; the drivers add the
    retry policy, the cache and the HTTP client, which are theirs.
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
        timeout: float = 30.0,
        offline_access: bool = True,
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
        self.timeout = timeout
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
            self.user_scopes(scopes),
            prompt=prompt,
            login_hint=login_hint,
            domain_hint=domain_hint,
            state=state,
            now=self.clock(),
        )

    @property
    def cache_scope(self) -> CacheScope:
        """Where this client's tokens live in a cache: authority host, tenant and client id."""
        return self._where

    def user_scopes(self, scopes: Scopes = None) -> Tuple[str, ...]:
        """The scopes a user grant asks for: ``scopes`` (or the client's), plus offline_access and OIDC."""
        base = self.scopes if scopes is None else normalize_scopes(scopes)
        return normalize_scopes(base, offline_access=self.offline_access)

    def token_request(self, grant: Pairs, scopes: Tuple[str, ...]) -> HttpRequest:
        """The token request for ``grant`` (from :mod:`oauth_core.core.protocol`), with this client's credential.

        Each call makes a new ``client-request-id`` (and, for a certificate, a new assertion).
        """
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

    def _stored(self, flow: Generator[Step, HttpResponse, TokenSet], scopes: Tuple[str, ...]) -> CachedFlow:
        """Run a grant and record its tokens (a rotated refresh token replaces the old one first).

        The cache is checked before anything is sent, so a damaged or unsafe cache never burns a
        single-use code or a refresh token; if saving still fails, the tokens ride on
        :class:`TokensNotSaved`. The save waits for a refresh of the same entry in flight, so
        the newer sign-in is the one kept.
        """
        yield Check()
        tokens = yield from flow
        return (yield from self._saved(tokens, scopes, lock=True))

    def _saved(self, tokens: TokenSet, scopes: Tuple[str, ...], *, lock: bool) -> CachedFlow:
        """Save issued tokens (after taking their entry's lock, when ``lock``), or raise TokensNotSaved."""
        try:
            if lock:
                yield Lock(entry_key(self._where, tokens, scopes))
            yield Save(functools.partial(_store_in, where=self._where, tokens=tokens, requested=scopes))
        except ConfigError as exc:  # CacheError included
            raise TokensNotSaved(tokens, exc) from None
        return tokens

    def _grant_flow(self, grant: Pairs, scopes: Tuple[str, ...]) -> CachedFlow:
        return self._stored(token_flow(self.token_request(grant, scopes), clock=self.clock), scopes)

    def _password_flow(self, username: str, password: str, scopes: Scopes) -> CachedFlow:
        return self._grant_flow(password_grant(username, password), self.user_scopes(scopes))

    def _refresh_flow(self, refresh_token: str, scopes: Scopes) -> CachedFlow:
        return self._grant_flow(refresh_token_grant(refresh_token), self.user_scopes(scopes))

    def _exchange_flow(
        self, request: PendingAuthorization, redirect_url: Optional[str], code: Optional[str]
    ) -> CachedFlow:
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
            clock=self.clock,
        )
        return self._stored(flow, request.scopes)

    def _device_code_flow(
        self, scopes: Scopes, on_code: Callable[[DeviceCode], None], timeout: Optional[float]
    ) -> CachedFlow:
        wanted = self.user_scopes(scopes)
        begin = build_device_code_request(self.authority, self.client_id, wanted, request_headers())

        def poll(code: DeviceCode) -> HttpRequest:
            return self.token_request(device_code_grant(code.device_code), wanted)

        flow = device_code_flow(begin, poll, on_code=on_code, clock=self.clock, timeout=timeout)
        return self._stored(flow, wanted)

    def _client_credentials_flow(self, scopes: Scopes) -> CachedFlow:
        """The client credentials grant; checks scope, tenant and credential before anything is sent."""
        return self._grant_flow(client_credentials_grant(), self.client_credentials_scopes(scopes))

    def client_credentials_scopes(self, scopes: Scopes = None) -> Tuple[str, ...]:
        """The scopes a client credentials grant would ask for, after checking scope, tenant and credential.

        Raises:
            ConfigError: not one ``<resource>/.default`` scope, a tenant alias, or no secret/certificate.
        """
        wanted = normalize_scopes(self.scopes if scopes is None else scopes)
        if len(wanted) != 1 or not wanted[0].endswith("/.default") or wanted[0] == "/.default":
            raise ConfigError(
                "client credentials take exactly one scope of the form <resource>/.default "
                f"(e.g. {normalize_scopes(None)[0]}); the app's permissions are granted by an admin, not by scope"
            )
        if self.authority.tenant.lower() in ("organizations", "common", "consumers"):
            raise ConfigError(
                f"client credentials need the service principal's tenant (id or domain), not "
                f"'{self.authority.tenant}': pass tenant= (the tenant id or domain)"
            )
        if not self._is_confidential:
            raise ConfigError("client credentials need a client_secret or a client_certificate")
        return wanted

    @property
    def _is_confidential(self) -> bool:
        return self._client_secret is not None or self._client_certificate is not None

    # -- silent acquisition ------------------------------------------------------------------

    def _fresh_from_cache(
        self, state: State, scopes: Tuple[str, ...], min_validity: float, account: Optional[str]
    ) -> Optional[TokenSet]:
        """The fast path: a token of ``state`` (a lock-free snapshot) that needs nothing, or None."""
        resolved = resolve_account(state, self._where, account)
        if resolved is None:
            return None
        entry = find_access_token(state, self._where, resolved, scopes)
        if entry is None or freshness(entry, self.clock(), min_validity=min_validity) != "fresh":
            return None
        return _from_entry(entry)

    def _silent_flow(self, scopes: Tuple[str, ...], min_validity: float, account: Optional[str]) -> CachedFlow:
        """Serve, or refresh, the cached token for ``scopes``.

        Only a refresh takes a lock, its entry's own, and then re-reads the cache: a refresh
        another thread or process just made is used instead of a second one.
        """
        if account == APP_ACCOUNT and not self._is_confidential:
            raise ConfigError("app-only tokens need a client_secret or a client_certificate")
        state: State = yield Load()
        resolved = self._signed_in(state, account)
        plan = self._refresh_plan(state, resolved, scopes, min_validity)
        if isinstance(plan, CacheEntry):
            return _from_entry(plan)
        key = self._where.at_key(resolved, scopes)
        yield Lock(key)
        yield Check()  # before the refresh token is spent
        state = yield Load()
        plan = self._refresh_plan(state, self._signed_in(state, account), scopes, min_validity)
        if isinstance(plan, CacheEntry):
            return _from_entry(plan)
        attempted_at = self.clock()
        try:
            tokens: TokenSet = yield from token_flow(self.token_request(plan.grant, plan.scopes), clock=self.clock)
        except (InvalidGrant, InteractionRequired) as exc:
            # Keep the refresh token (the refusal may hold for these scopes only); remember it.
            yield from _noted(key, attempted_at, list(exc.error_codes) or [0])
            if plan.fallback is not None:
                return _from_entry(plan.fallback)
            raise _interaction_required(exc) from exc
        except OAuthCoreError:
            yield from _noted(key, attempted_at, None)
            if plan.fallback is not None:
                return _from_entry(plan.fallback)
            raise
        return (yield from self._saved(tokens, scopes, lock=False))

    def _signed_in(self, state: State, account: Optional[str]) -> str:
        """The cached account to serve (``app`` for a service principal), or InteractionRequired."""
        resolved = resolve_account(state, self._where, account)
        if resolved is None and self._is_confidential and account in (None, APP_ACCOUNT):
            resolved = APP_ACCOUNT  # a service principal acts as itself
        if resolved is None:
            raise InteractionRequired("interaction_required", "No signed-in account in the cache: sign in first.")
        return resolved

    def _refresh_plan(
        self, state: State, account: str, scopes: Tuple[str, ...], min_validity: float
    ) -> Union[CacheEntry, _Refresh]:
        """The entry to serve as it is, or the refresh to make (get_token's rules).

        Raises:
            InteractionRequired: no usable token, and no refresh worth trying.
        """
        entry = find_access_token(state, self._where, account, scopes)
        now = self.clock()
        mode = "hard" if entry is None else freshness(entry, now, min_validity=min_validity)
        if entry is not None and mode == "fresh":
            return entry
        marks = marks_of(state, self._where.at_key(account, scopes))
        fallback = entry if mode == "soft" else None
        if fallback is not None:
            last = marks.get("last_attempt")
            if marks.get("interaction_required") or (
                isinstance(last, (int, float)) and now - last < RETRY_SOFT_REFRESH_AFTER
            ):
                return fallback
        if marks.get("interaction_required"):
            raise InteractionRequired(
                "interaction_required",
                "A previous refresh for these scopes was refused: sign in again.",
                error_codes=marks["interaction_required"],
            )
        if account == APP_ACCOUNT and self._is_confidential:
            # An app-only token is renewed by asking again: client credentials have no refresh token.
            return _Refresh(client_credentials_grant(), scopes, fallback)
        refresh_token = find_refresh_token(state, self._where, account)
        if refresh_token is None:
            if fallback is not None:
                return fallback
            raise InteractionRequired("interaction_required", "No refresh token in the cache: sign in again.")
        return _Refresh(refresh_token_grant(refresh_token), self.user_scopes(scopes), fallback)


def _store_in(state: State, *, where: CacheScope, tokens: TokenSet, requested: Tuple[str, ...]) -> str:
    return store(state, where, tokens, requested)


def _noted(key: str, at: float, refused: Optional[list[int]]) -> Generator[Effect, Any, None]:
    """Record a failed refresh; best effort: a cache that cannot take it costs one more attempt later."""
    try:
        yield Save(functools.partial(note_attempt, key=key, at=at, refused=refused))
    except ConfigError:
        pass


def _interaction_required(exc: Union[InvalidGrant, InteractionRequired]) -> InteractionRequired:
    return InteractionRequired(
        exc.error,
        exc.error_description,
        error_codes=exc.error_codes,
        suberror=exc.suberror,
        trace_id=exc.trace_id,
        correlation_id=exc.correlation_id,
        claims=exc.claims,
        status=exc.status,
    )


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
