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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generator, Iterable, Optional, Tuple, Union

from .authority import Authority
from .authorize import PendingAuthorization, build_authorization_request, exchange_code_flow, parse_redirect
from .cache_rules import (
    APP_ACCOUNT,
    REFUSAL_MEMORY,
    CacheEntry,
    CacheScope,
    Check,
    Load,
    Lock,
    Save,
    State,
    account_and_user,
    find_access_token,
    find_refresh_token,
    fresh_token,
    freshness,
    key_of,
    marks_of,
    refusal_of,
    resolve_account,
    store,
    store_for,
    tenant_key,
    token_set_of,
    tokens_key,
)
from .device import DeviceCode, build_device_code_request, device_code_flow, device_code_grant
from .effects import CachedFlow, Effect, Step, StepFlow, advance, request_headers, start
from .errors import ConfigError, InteractionRequired, InvalidGrant, OAuthCoreError, TokensNotSaved
from .grants import check_client_credentials
from .protocol import (
    Claims,
    HttpRequest,
    HttpResponse,
    Pairs,
    TokenSet,
    build_token_request,
    claims_parameter,
    client_credentials_grant,
    normalize_scopes,
    on_behalf_of_grant,
    password_grant,
    refresh_token_grant,
    token_flow,
    with_claims,
)
from .silent import anchor_mailbox, interaction_required, noted, on_behalf_of_account
from .wstrust import federated_password_flow

if TYPE_CHECKING:
    from .assertion import ClientCertificate

__all__ = [
    "APP_ACCOUNT",
    "AssertionSource",
    "ClientBase",
    "Effect",
    "StepFlow",
    "advance",
    "request_headers",
    "start",
]

Scopes = Union[None, str, Iterable[str]]
# A federated credential: a signed assertion, or a callable returning a fresh one per token request.
AssertionSource = Union[str, Callable[[], str]]

REFRESH_WINDOW = 300.0  # seconds before expiry when a proactive refresh starts
HARD_MARGIN = 40.0  # Azure Databricks refuses tokens with 30 s or less left
RETRY_SOFT_REFRESH_AFTER = 30.0  # at most one proactive attempt per entry in this many seconds


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

    # Look the user's realm up before a password grant (a federated user then signs in through
    # WS-Trust); ``user_realm_discovery=False`` sends the password grant at once, one request less.
    user_realm_discovery = True

    def __init__(
        self,
        client_id: str,
        tenant: str = "organizations",
        *,
        authority_host: Optional[str] = None,
        scopes: Scopes = None,
        client_secret: Optional[str] = None,
        client_certificate: Optional[ClientCertificate] = None,
        client_assertion: Optional[AssertionSource] = None,
        client_capabilities: Iterable[str] = (),
        user_realm_discovery: Optional[bool] = None,
        timeout: float = 30.0,
        offline_access: bool = True,
        clock: Callable[[], float] = time.time,
        trusted_hosts: Iterable[str] = (),
    ) -> None:
        if not client_id or not client_id.strip():
            raise ConfigError("client id is required")
        if sum(c is not None for c in (client_secret, client_certificate, client_assertion)) > 1:
            raise ConfigError("pass one client credential: a client_secret, a client_certificate or a client_assertion")
        if isinstance(client_assertion, str) and not client_assertion.strip():
            raise ConfigError("client_assertion is empty")
        self.client_id = client_id.strip()
        self.authority = Authority.of(authority_host, tenant).require_trusted(trusted_hosts)
        self.scopes = normalize_scopes(scopes)
        self.offline_access = offline_access
        self.timeout = timeout
        self.clock = clock
        self._client_secret = client_secret
        self._client_certificate = client_certificate
        self._assertion_source = client_assertion
        self.client_capabilities = tuple(client_capabilities)
        if user_realm_discovery is not None:
            self.user_realm_discovery = user_realm_discovery
        if any(not isinstance(c, str) or not c.strip() or "," in c for c in self.client_capabilities):
            raise ConfigError("client capabilities are short names such as cp1")
        self._where = CacheScope(self.authority.host, tenant_key(self.authority.tenant), self.client_id)

    def __repr__(self) -> str:
        secret = "<redacted>" if self._client_secret else None
        assertion = ", client_assertion=<redacted>" if self._assertion_source is not None else ""
        return (
            f"{type(self).__name__}(client_id={self.client_id!r}, authority={self.authority.base!r}, "
            f"client_secret={secret}{assertion})"
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
        claims: Claims = None,
    ) -> PendingAuthorization:
        """Start the authorization code flow: a pending request whose ``url`` goes to the browser.

        ``claims`` (a claims challenge's JSON) goes in the URL and again with the code, merged with
        the client's capabilities.
        """
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
            claims=self.claims_request(claims),
        )

    @property
    def cache_scope(self) -> CacheScope:
        """Where this client's tokens live in a cache: authority host, tenant and client id."""
        return self._where

    def user_scopes(self, scopes: Scopes = None) -> Tuple[str, ...]:
        """The scopes a user grant asks for: ``scopes`` (or the client's), plus offline_access and OIDC."""
        base = self.scopes if scopes is None else normalize_scopes(scopes)
        return normalize_scopes(base, offline_access=self.offline_access)

    def claims_request(self, claims: Claims = None) -> Optional[str]:
        """The ``claims`` parameter for ``claims`` merged with this client's capabilities (None: none)."""
        return claims_parameter(claims, self.client_capabilities)

    def token_request(
        self, grant: Pairs, scopes: Tuple[str, ...], *, headers: Optional[Pairs] = None, account: Optional[str] = None
    ) -> HttpRequest:
        """The token request for ``grant`` (from :mod:`oauth_core.core.protocol`), with this client's credential.

        ``headers`` are the call's (:func:`request_headers`: a new ``client-request-id`` when not
        given); ``account`` (``uid.utid``) adds the ``X-AnchorMailbox`` routing hint MSAL sends on
        silent requests. Each call makes a new assertion for a certificate or federated credential.
        """
        call_headers = request_headers() if headers is None else headers
        anchor = anchor_mailbox(account)
        return build_token_request(
            self.authority,
            self.client_id,
            grant,
            scopes=scopes,
            client_secret=self._client_secret,
            headers=call_headers if anchor is None else (*call_headers, anchor),
            client_assertion=self._client_assertion(),
        )

    def _client_assertion(self) -> Optional[str]:
        """A fresh signed assertion for each token request of a certificate or federated client (else None)."""
        if self._client_certificate is not None:
            return self._client_certificate.assertion(self.client_id, self.authority.token_endpoint, now=self.clock())
        source = self._assertion_source
        if source is None or isinstance(source, str):
            return source
        try:
            assertion = source()
        except OAuthCoreError:
            raise
        except Exception as exc:  # a user callable: its failure must not leak as a raw traceback
            # from None: a chained cause would print the callable's message (a token, a secret) in tracebacks
            raise ConfigError(f"the client_assertion callable failed ({type(exc).__name__})") from None
        if not isinstance(assertion, str) or not assertion.strip():
            raise ConfigError("the client_assertion callable returned no assertion")
        return assertion.strip()

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

    def _saved(
        self, tokens: TokenSet, scopes: Tuple[str, ...], *, lock: bool, account: Optional[str] = None
    ) -> CachedFlow:
        """Save issued tokens (after taking their entry's lock, when ``lock``), or raise TokensNotSaved.

        ``account`` files them under that key instead of the signed-in user they belong to.
        """
        if account is None:
            who = account_and_user(tokens)
            key = tokens_key(self._where, tokens, who[0], scopes)
            save = functools.partial(_store_in, where=self._where, tokens=tokens, requested=scopes, who=who)
        else:
            key = self._where.at_key(account, scopes or tokens.scopes)
            save = functools.partial(store_for, where=self._where, tokens=tokens, requested=scopes, account=account)
        try:
            if lock:
                yield Lock(key)
            yield Save(save)
        except ConfigError as exc:  # CacheError included
            raise TokensNotSaved(tokens, exc) from None
        return tokens

    def _grant_flow(self, grant: Pairs, scopes: Tuple[str, ...], claims: Claims = None) -> CachedFlow:
        request = self.token_request(with_claims(grant, self.claims_request(claims)), scopes)
        return self._stored(token_flow(request, clock=self.clock), scopes)

    def _password_flow(self, username: str, password: str, scopes: Scopes, claims: Claims = None) -> CachedFlow:
        """The password grant after a user realm lookup: a federated user signs in through the
        federation's WS-Trust endpoint and a SAML bearer grant, as MSAL does."""
        if not self.user_realm_discovery:
            return self._grant_flow(password_grant(username, password), self.user_scopes(scopes), claims)
        wanted, asked = self.user_scopes(scopes), self.claims_request(claims)
        call = request_headers()
        flow = federated_password_flow(
            self.authority,
            self.client_id,
            username,
            password,
            wanted,
            clock=self.clock,
            headers=call,
            token_request=lambda grant: self.token_request(with_claims(grant, asked), wanted, headers=call),
        )
        return self._stored(flow, wanted)

    def _refresh_flow(self, refresh_token: str, scopes: Scopes, claims: Claims = None) -> CachedFlow:
        return self._grant_flow(refresh_token_grant(refresh_token), self.user_scopes(scopes), claims)

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
        self, scopes: Scopes, on_code: Callable[[DeviceCode], None], timeout: Optional[float], claims: Claims = None
    ) -> CachedFlow:
        wanted = self.user_scopes(scopes)
        call = request_headers()  # one client-request-id for the whole flow, every poll included
        asked = self.claims_request(claims)
        begin = build_device_code_request(self.authority, self.client_id, wanted, call, asked)

        def poll(code: DeviceCode) -> HttpRequest:
            return self.token_request(with_claims(device_code_grant(code.device_code), asked), wanted, headers=call)

        flow = device_code_flow(begin, poll, on_code=on_code, clock=self.clock, timeout=timeout)
        return self._stored(flow, wanted)

    def _client_credentials_flow(self, scopes: Scopes, claims: Claims = None) -> CachedFlow:
        """The client credentials grant; checks scope, tenant and credential before anything is sent."""
        return self._grant_flow(client_credentials_grant(), self.client_credentials_scopes(scopes), claims)

    def client_credentials_scopes(self, scopes: Scopes = None) -> Tuple[str, ...]:
        """The scopes a client credentials grant would ask for, after checking scope, tenant and credential.

        Raises:
            ConfigError: not one ``<resource>/.default`` scope, a tenant alias, or no secret/certificate.
        """
        wanted = normalize_scopes(self.scopes if scopes is None else scopes)
        check_client_credentials(wanted, self.authority.tenant, confidential=self._is_confidential)
        return wanted

    def _on_behalf_of_flow(self, user_assertion: str, scopes: Scopes, claims: Claims = None) -> CachedFlow:
        """The on-behalf-of grant, served from the cache while fresh (unless ``claims`` asks for more);
        cached under the assertion's hash."""
        if not self._is_confidential:
            raise ConfigError("on-behalf-of needs a confidential client: a client secret, certificate or assertion")
        if not isinstance(user_assertion, str) or not user_assertion.strip():
            raise ConfigError("user_assertion is empty: pass the access token the caller presented")
        assertion = user_assertion.strip()
        wanted = self.user_scopes(scopes)
        account = on_behalf_of_account(assertion)
        key = self._where.at_key(account, wanted)
        for locked in (False, True):
            entry = find_access_token((yield Load()), self._where, account, wanted)
            fresh = entry is not None and freshness(entry, self.clock(), min_validity=REFRESH_WINDOW) == "fresh"
            if fresh and claims is None:
                return token_set_of(entry)  # type: ignore[arg-type]
            if not locked:
                yield Lock(key)  # one exchange per assertion and scopes at a time
                yield Check()
        grant = with_claims(on_behalf_of_grant(assertion), self.claims_request(claims))
        tokens: TokenSet = yield from token_flow(self.token_request(grant, wanted), clock=self.clock)
        return (yield from self._saved(tokens, wanted, lock=False, account=account))

    @property
    def _is_confidential(self) -> bool:
        return any(c is not None for c in (self._client_secret, self._client_certificate, self._assertion_source))

    # -- silent acquisition ------------------------------------------------------------------

    def _fresh_from_cache(
        self, state: State, scopes: Tuple[str, ...], min_validity: float, account: Optional[str]
    ) -> Optional[TokenSet]:
        """The fast path: a token of ``state`` (a lock-free snapshot) that needs nothing, or None."""
        resolved = resolve_account(state, self._where, account)
        return fresh_token(state, self._where, resolved, scopes, min_validity, self.clock())

    def _silent_flow(
        self, scopes: Tuple[str, ...], min_validity: float, account: Optional[str], claims: Claims = None
    ) -> CachedFlow:
        """Serve, or refresh, the cached token for ``scopes``.

        Only a refresh takes a lock, its entry's own, and then re-reads the cache: a refresh
        another thread or process just made is used instead of a second one. ``claims`` (a claims
        challenge) always asks anew, with them: the cached token is what the resource refused.
        """
        if account == APP_ACCOUNT and not self._is_confidential:
            raise ConfigError("app-only tokens need a client_secret or a client_certificate")
        state: State = yield Load()
        resolved = self._signed_in(state, account)
        forced = claims is not None
        plan = self._refresh_plan(state, resolved, scopes, min_validity, forced)
        if isinstance(plan, CacheEntry):
            return token_set_of(plan)
        key = key_of(state, self._where, resolved, scopes)
        yield Lock(key)
        yield Check()  # before the refresh token is spent
        state = yield Load()
        resolved_now = self._signed_in(state, account)
        plan = self._refresh_plan(state, resolved_now, scopes, min_validity, forced)
        if isinstance(plan, CacheEntry):
            return token_set_of(plan)
        attempted_at = self.clock()
        try:
            grant = with_claims(plan.grant, self.claims_request(claims))
            request = self.token_request(grant, plan.scopes, account=resolved_now)
            tokens: TokenSet = yield from token_flow(request, clock=self.clock)
        except (InvalidGrant, InteractionRequired) as exc:
            # Keep the refresh token (the refusal may hold for these scopes only); remember it.
            yield from noted(key, attempted_at, list(exc.error_codes) or [0])
            if plan.fallback is not None:
                return token_set_of(plan.fallback)
            raise interaction_required(exc) from exc
        except OAuthCoreError:
            yield from noted(key, attempted_at, None)
            if plan.fallback is not None:
                return token_set_of(plan.fallback)
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
        self, state: State, account: str, scopes: Tuple[str, ...], min_validity: float, forced: bool = False
    ) -> Union[CacheEntry, _Refresh]:
        """The entry to serve as it is, or the refresh to make (get_token's rules); ``forced`` (a
        claims request) always refreshes, without fallback, whatever was refused before.

        Raises:
            InteractionRequired: no usable token, and no refresh worth trying.
        """
        entry = find_access_token(state, self._where, account, scopes)
        now = self.clock()
        mode = "hard" if entry is None or forced else freshness(entry, now, min_validity=min_validity)
        if entry is not None and mode == "fresh":
            return entry
        marks = marks_of(state, key_of(state, self._where, account, scopes))
        refused = None if forced else refusal_of(marks, now)
        fallback = entry if mode == "soft" else None
        if fallback is not None:
            last = marks.get("last_attempt")
            if refused or (isinstance(last, (int, float)) and now - last < RETRY_SOFT_REFRESH_AFTER):
                return fallback
        if refused:
            raise InteractionRequired(
                "interaction_required",
                f"A refresh for these scopes was refused less than {REFUSAL_MEMORY:g} s ago: sign in again, "
                "or retry after that.",
                error_codes=refused,
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


def _store_in(
    state: State, *, where: CacheScope, tokens: TokenSet, requested: Tuple[str, ...], who: Tuple[str, Optional[str]]
) -> str:
    return store(state, where, tokens, requested, who)
