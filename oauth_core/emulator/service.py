"""The emulator's shared core: configuration, clock, keys and state, plus token responses.

Endpoint modules (``app``, ``grants``, ``authorize``) take a :class:`Service` and a request and
return a response; the service mints the tokens and keeps the refresh tokens they redeem.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from .arckeys import ArcKeys
from .config import Client, EmulatorConfig, User
from .issuers import FederationIssuers
from .keys import SigningKey, signing_keys
from .scopes import ScopeGrant
from .store import RefreshRecord, Store
from .tokens import Issue, access_token, client_info as encode_client_info, id_token, opaque
from .wire import Ctx, Request, Response, correlation_id_for, json_response, new_trace_id

__all__ = ["TENANT_ALIASES", "Service", "UserGrant"]

TENANT_ALIASES = ("organizations", "common", "consumers")
Clock = Callable[[], float]


@dataclass(frozen=True)
class UserGrant:
    """A user's successful authentication, ready to be turned into tokens.

    Attributes:
        user: who signed in. amr: how (``pwd``, ``mfa``). nonce: the authorize nonce, if any.
        signed_in_at: when the original sign-in happened (kept across refresh-token rotation).
    """

    user: User
    amr: Tuple[str, ...]
    signed_in_at: float
    nonce: Optional[str] = None


REFRESH_IN_ABOVE = 7200


def _lifetimes(lifetime: int) -> Dict[str, int]:
    """``expires_in``, ``ext_expires_in`` and, for tokens living over two hours, ``refresh_in`` (half)."""
    times = {"expires_in": lifetime, "ext_expires_in": lifetime}
    if lifetime > REFRESH_IN_ABOVE:
        times["refresh_in"] = lifetime // 2
    return times


class Service:
    """Configuration, clock, signing keys and state of one emulator."""

    def __init__(self, config: EmulatorConfig, *, clock: Optional[Clock] = None) -> None:
        self.config = config
        self.clock: Clock = clock or time.time
        self.store = Store()
        self.keys: Tuple[SigningKey, SigningKey] = signing_keys()
        # The server's own origin (set once bound): federated issuers' URLs never depend on the Host header.
        self.origin = "http://127.0.0.1"
        self.identity_header = config.identity_header or str(uuid.uuid4())
        self.msi_secret = config.msi_secret or secrets.token_urlsafe(24)
        self.arc = ArcKeys(clock=lambda: self.clock())
        self.issuers = FederationIssuers(config.federation_issuers)

    def ctx(self, request: Request) -> Ctx:
        """Fresh per-request ids and time for ``request``."""
        return Ctx(
            trace_id=new_trace_id(),
            correlation_id=correlation_id_for(request),
            now=self.clock(),
            origin=request.origin,
            crlf=self.config.crlf_error_descriptions,
            telemetry=request.header("x-client-current-telemetry") is not None,
            region=self.config.region,
        )

    def tenant(self, segment: str) -> Optional[str]:
        """The canonical tenant for a path segment: the tenant id, an alias, or None if unknown."""
        lowered = segment.lower()
        if lowered in (self.config.tenant_id, self.config.domain):
            return self.config.tenant_id
        return lowered if lowered in TENANT_ALIASES else None

    def lifetime(self) -> int:
        """The next access token's lifetime: the configured one, or random 3600-5400 s."""
        fixed = self.config.token_lifetime
        return fixed if fixed is not None else 3600 + secrets.randbelow(1801)

    def user_tokens(
        self,
        ctx: Ctx,
        *,
        client: Client,
        scope: ScopeGrant,
        grant: UserGrant,
        appidacr: str,
        client_info: bool = False,
        always_refresh: bool = False,
        capabilities: Tuple[str, ...] = (),
    ) -> Response:
        """The 200 token response for a user grant (entra-protocol.md §3.4, keys in Entra's order).

        A refresh token comes back when ``offline_access`` was granted (or ``always_refresh``, for
        refresh-token redemptions), with ``foci: "1"`` for a family app; ``refresh_in`` (half the
        lifetime) for access tokens living over two hours; an id_token with ``openid``;
        ``client_info`` when the request sent ``client_info=1``.
        """
        issue = self._issue(ctx, client, scope, grant.user, grant.amr, appidacr, grant.nonce, capabilities)
        body: Dict[str, Any] = {"token_type": "Bearer", "scope": scope.echo(), **_lifetimes(issue.lifetime)}
        body["access_token"] = access_token(issue, self.keys[0])
        if scope.offline or always_refresh:
            body["refresh_token"] = self.new_refresh_token(client, scope, grant)
            if client.family:
                body["foci"] = "1"
        if scope.openid:
            body["id_token"] = id_token(issue, self.keys[0])
        if client_info:
            body["client_info"] = encode_client_info(grant.user, self.config.tenant_id)
        return json_response(ctx, body)

    def app_token(
        self, ctx: Ctx, *, client: Client, scope: ScopeGrant, appidacr: str, capabilities: Tuple[str, ...] = ()
    ) -> Response:
        """The 200 client-credentials response: token_type, expires_in, ext_expires_in (``refresh_in``
        for tokens living over two hours), access_token."""
        issue = self._issue(ctx, client, scope, None, (), appidacr, None, capabilities)
        body: Dict[str, Any] = {"token_type": "Bearer", **_lifetimes(issue.lifetime)}
        body["access_token"] = access_token(issue, self.keys[0])
        return json_response(ctx, body)

    def new_refresh_token(self, client: Client, scope: ScopeGrant, grant: UserGrant) -> str:
        """Issue and remember a refresh token for this user and client."""
        token = opaque("0.A", 240)
        record = RefreshRecord(
            username=grant.user.username,
            client_id=client.client_id,
            scope=scope.request_text(),
            amr=grant.amr,
            issued_at=self.clock(),
            signed_in_at=grant.signed_in_at,
        )
        with self.store.lock:
            self.store.refresh_tokens[token] = record
        return token

    def _issue(
        self,
        ctx: Ctx,
        client: Client,
        scope: ScopeGrant,
        user: Optional[User],
        amr: Tuple[str, ...],
        appidacr: str,
        nonce: Optional[str],
        capabilities: Tuple[str, ...] = (),
    ) -> Issue:
        return Issue(
            client=client,
            scope=scope,
            user=user,
            amr=amr,
            appidacr=appidacr,
            nonce=nonce,
            tenant_id=self.config.tenant_id,
            origin=ctx.origin,
            now=int(ctx.now),
            lifetime=self.lifetime(),
            capabilities=capabilities,
        )

    def amr_for(self, user: User, *, step_up: bool = False) -> Tuple[str, ...]:
        """How an interactive sign-in of ``user`` authenticated: a password, plus MFA when required
        (the user needs MFA or a step-up policy covers them, or ``step_up``: the request's claims
        answer a Conditional Access challenge)."""
        return ("pwd", "mfa") if user.requires_mfa or user.step_up or step_up else ("pwd",)
