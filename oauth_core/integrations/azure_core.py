"""azure-core credentials over our token sources, for every Azure SDK client.

``AzureCoreCredential(source)`` makes any token source of this package (``EntraClient``,
``ManagedIdentity``, ``WorkloadIdentity``, ``DefaultCredential``, or an object of your own with
``get_token(scopes=..., min_validity=...)`` returning a :class:`~oauth_core.core.messages.TokenSet`)
an azure-core credential: it has ``get_token(*scopes, claims=, tenant_id=, enable_cae=)`` returning
an ``AccessToken`` and ``get_token_info(*scopes, options=)`` returning an ``AccessTokenInfo``, so
``isinstance`` checks against azure-core's ``TokenCredential`` and ``SupportsTokenInfo`` protocols
pass, and ``BearerTokenCredentialPolicy`` answers Continuous Access Evaluation claims challenges
through it. :class:`AsyncAzureCoreCredential` is the same for the ``aio`` SDK clients
(``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo``).

The package never imports azure-core: :class:`AccessToken` and :class:`AccessTokenInfo` are our own
types of the same shape (azure-core's ``AccessToken`` is a NamedTuple of exactly these two fields).

What the wrapper decides:

* ``claims`` (a challenge's decoded JSON, as azure-core passes it) goes to the source's
  ``get_token(claims=...)``, which then refreshes silently with them. A source whose ``get_token``
  takes no ``claims`` (a managed identity, ``DefaultCredential``) cannot answer a challenge:
  :class:`ClaimsChallengeUnsupported` says so and carries the claims.
* ``enable_cae=True`` declares the ``cp1`` client capability ("this client answers CAE
  challenges") for sources that take claims. A client built with ``client_capabilities=["cp1"]``
  declares it on every request already, so its cache answers as usual; for other clients a CAE
  token is asked for anew, which bypasses the cache, so the wrapper keeps the CAE token it got
  (per scopes) until its refresh time. Sources that take no claims ignore ``enable_cae``.
* ``tenant_id`` is honoured only when it is the tenant the source is bound to: the source's
  authority tenant (compared case-insensitively), or, when that is not a tenant id (a domain,
  ``organizations``, or a managed identity with no authority), the ``tid`` of the token it gives.
  Any other tenant is refused with :class:`TenantNotAllowed`: a token from another tenant needs a
  client of that tenant (its own authority, cache and refresh tokens), and switching authorities
  behind the caller's back would sign in to a tenant the application was not set up for.
* ``close()`` (and leaving a ``with`` block) closes the source only when ``owns_source=True``:
  by default the source is shared (other wrappers, ``EntraAuth``, the caller's own calls) and
  an SDK client closing its credential must not close it for them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import threading
import time
from typing import Any, Dict, NamedTuple, Optional, Tuple, Type, TypeVar

from ..core.errors import ConfigError
from ..core.grants import claims_parameter

__all__ = [
    "AccessToken",
    "AccessTokenInfo",
    "AsyncAzureCoreCredential",
    "AzureCoreCredential",
    "ClaimsChallengeUnsupported",
    "TenantNotAllowed",
]

# Anything with ``get_token(scopes=..., min_validity=...[, account=][, claims=])`` returning a
# TokenSet; sync for AzureCoreCredential, a coroutine (or sync, run in a thread) for the async one.
TokenSource = Any

CAE_CAPABILITY = "cp1"
# When the source names no refresh time: refresh this long before expiry (azure-core's own window).
REFRESH_MARGIN = 300
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

C = TypeVar("C", bound="AzureCoreCredential")
A = TypeVar("A", bound="AsyncAzureCoreCredential")


class AccessToken(NamedTuple):
    """A token and its expiry (epoch seconds): the shape of azure-core's ``AccessToken``."""

    token: str
    expires_on: int

    def __repr__(self) -> str:
        return f"AccessToken(token=<redacted>, expires_on={self.expires_on})"


class AccessTokenInfo:
    """A token with its expiry and refresh time (epoch seconds): azure-core's ``AccessTokenInfo``."""

    __slots__ = ("expires_on", "refresh_on", "token", "token_type")

    def __init__(
        self, token: str, expires_on: int, *, token_type: str = "Bearer", refresh_on: Optional[int] = None
    ) -> None:
        self.token = token
        self.expires_on = expires_on
        self.token_type = token_type
        self.refresh_on = refresh_on

    def __repr__(self) -> str:
        return (
            f"AccessTokenInfo(token=<redacted>, expires_on={self.expires_on}, "
            f"token_type={self.token_type!r}, refresh_on={self.refresh_on})"
        )


class ClaimsChallengeUnsupported(ConfigError):
    """The source cannot ask for a token with more claims (a managed identity, ``DefaultCredential``).

    Attributes:
        claims: the claims the resource asked for (JSON text), to pass to a sign-in that can.
    """

    def __init__(self, message: str, claims: Optional[str]) -> None:
        super().__init__(message)
        self.claims = claims


class TenantNotAllowed(ConfigError):
    """A token for another tenant than the one the source is bound to was asked for."""


def _takes(function: Any, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


class _Request(NamedTuple):
    """What one azure-core call asks of the source."""

    kwargs: Dict[str, Any]
    cae_key: Optional[Tuple[Tuple[str, ...], Optional[str]]]  # set: a CAE token the wrapper keeps
    check_tid: Optional[str]  # set: the token's tid must be this tenant


class _Adapter:
    """What the sync and async credentials share: arguments in, AccessToken(Info) out."""

    def __init__(
        self,
        source: TokenSource,
        *,
        account: Optional[str] = None,
        min_validity: float = 300.0,
        owns_source: bool = False,
    ) -> None:
        get_token = getattr(source, "get_token", None)
        if not callable(get_token):
            raise ConfigError(
                f"{type(self).__name__} needs a token source with get_token(scopes=..., min_validity=...): "
                "an EntraClient, ManagedIdentity, WorkloadIdentity or DefaultCredential"
            )
        if not (0 <= min_validity < 86400):
            raise ConfigError("min_validity must be between 0 and 86400 seconds")
        self._takes_claims = _takes(get_token, "claims")  # inspected once
        if account is not None and not _takes(get_token, "account"):
            raise ConfigError(f"{type(source).__name__}.get_token takes no account")
        self._source = source
        self.account = account
        self.min_validity = float(min_validity)
        self.owns_source = owns_source
        self._cae_tokens: Dict[Tuple[Tuple[str, ...], Optional[str]], Any] = {}
        self._lock = threading.Lock()

    @property
    def source(self) -> TokenSource:
        """The token source this credential asks."""
        return self._source

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._source!r}, owns_source={self.owns_source})"

    def _bound_tenant(self) -> Optional[str]:
        authority = getattr(self._source, "authority", None)
        tenant = getattr(authority, "tenant", None)
        return tenant.strip().lower() if isinstance(tenant, str) and tenant.strip() else None

    def _refuse_tenant(self, wanted: str, bound: Optional[str]) -> TenantNotAllowed:
        where = f"tenant {bound}" if bound else "the tenant of its own identity"
        return TenantNotAllowed(
            f"this credential is bound to {where} and cannot give a token for tenant {wanted}: "
            "a token from another tenant needs a client of that tenant (e.g. EntraClient(client_id, "
            f"{wanted!r}, ...)) wrapped in a credential of its own"
        )

    def _request(
        self, scopes: Tuple[str, ...], claims: Optional[str], tenant_id: Optional[str], enable_cae: bool
    ) -> _Request:
        wanted_scopes = [scope for scope in scopes if scope]
        kwargs: Dict[str, Any] = {"scopes": wanted_scopes or None, "min_validity": self.min_validity}
        if self.account is not None:
            kwargs["account"] = self.account
        check_tid: Optional[str] = None
        if tenant_id:
            wanted, bound = tenant_id.strip().lower(), self._bound_tenant()
            if wanted != bound:
                if bound is not None and _GUID.match(bound):
                    raise self._refuse_tenant(tenant_id, bound)
                check_tid = wanted  # a domain or alias authority, or none: the token tells its tenant
        claims = claims or None
        if claims is not None and not self._takes_claims:
            raise ClaimsChallengeUnsupported(
                f"this credential cannot answer a claims challenge: {type(self._source).__name__}.get_token "
                "takes no claims (a managed identity or the default chain cannot ask for more claims); "
                "sign in with a client that can (EntraClient), passing these claims",
                claims,
            )
        cae_key = None
        if self._takes_claims:
            declared = CAE_CAPABILITY in tuple(getattr(self._source, "client_capabilities", ()) or ())
            if claims is not None:
                kwargs["claims"] = claims_parameter(claims, [CAE_CAPABILITY]) if enable_cae else claims
            elif enable_cae and not declared:
                kwargs["claims"] = claims_parameter(None, [CAE_CAPABILITY])
                cae_key = (tuple(sorted(wanted_scopes)), self.account)
        return _Request(kwargs, cae_key, check_tid)

    def _kept(self, request: _Request) -> Any:
        """A CAE token this wrapper got before and may still serve (before its refresh time), or None."""
        if request.cae_key is None:
            return None
        with self._lock:
            tokens = self._cae_tokens.get(request.cae_key)
        if tokens is None:
            return None
        now = time.time()
        refresh_on = _refresh_on(tokens, now)
        if refresh_on is None or float(tokens.expires_at) - now < self.min_validity:
            return None
        return tokens

    def _finish(self, request: _Request, tokens: Any) -> Any:
        if request.check_tid is not None:
            claims = getattr(tokens, "claims", None) or {}
            tid = claims.get("tid") if hasattr(claims, "get") else None
            if not isinstance(tid, str) or tid.strip().lower() != request.check_tid:
                raise self._refuse_tenant(request.check_tid, tid if isinstance(tid, str) else self._bound_tenant())
        if request.cae_key is not None:
            with self._lock:
                self._cae_tokens[request.cae_key] = tokens
        return tokens

    @staticmethod
    def _options(options: Optional[Any]) -> Tuple[Optional[str], Optional[str], bool]:
        given = dict(options or {})  # unknown keys are ignored, as azure-core asks
        return given.get("claims"), given.get("tenant_id"), bool(given.get("enable_cae", False))


def _refresh_on(tokens: Any, now: float) -> Optional[int]:
    """When to refresh: the source's refresh time, else 5 minutes before expiry; None once passed."""
    expires = float(tokens.expires_at)
    refresh_at = getattr(tokens, "refresh_at", None)
    when = float(refresh_at) if refresh_at is not None else expires - REFRESH_MARGIN
    when = min(when, expires)
    return int(when) if when > now else None


def _access_token(tokens: Any) -> AccessToken:
    return AccessToken(str(tokens.access_token), int(tokens.expires_at))


def _access_token_info(tokens: Any) -> AccessTokenInfo:
    return AccessTokenInfo(
        str(tokens.access_token),
        int(tokens.expires_at),
        token_type="Bearer",
        refresh_on=_refresh_on(tokens, time.time()),
    )


class AzureCoreCredential(_Adapter):
    """An azure-core ``TokenCredential`` and ``SupportsTokenInfo`` over one of our token sources.

    ``BlobServiceClient(url, credential=AzureCoreCredential(client))``, or any other Azure SDK client.

    Args:
        source: where tokens come from, with a sync ``get_token`` (EntraClient, ManagedIdentity,
            WorkloadIdentity, DefaultCredential); someone must have signed in with a user client.
        account: which cached account (``"app"`` for a service principal's app-only token); only
            for sources whose ``get_token`` takes one.
        min_validity: seconds a token must still be valid when handed out.
        owns_source: close the source when this credential is closed (default False: the source
            may be shared, and an SDK client closing its credential must not close it for others).

    Raises:
        ConfigError: no ``get_token``, an async source, a bad ``min_validity``, or an ``account``
            for a source that takes none.
    """

    def __init__(
        self,
        source: TokenSource,
        *,
        account: Optional[str] = None,
        min_validity: float = 300.0,
        owns_source: bool = False,
    ) -> None:
        super().__init__(source, account=account, min_validity=min_validity, owns_source=owns_source)
        if inspect.iscoroutinefunction(source.get_token):
            raise ConfigError("this source is async: wrap it in AsyncAzureCoreCredential")

    def get_token(
        self,
        *scopes: str,
        claims: Optional[str] = None,
        tenant_id: Optional[str] = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token for ``scopes`` (the source's default scopes when none), as azure-core asks.

        Raises:
            ClaimsChallengeUnsupported: ``claims`` for a source that cannot ask for them.
            TenantNotAllowed: ``tenant_id`` is not the source's tenant.
            InteractionRequired, TransientError, ...: what the source raises.
        """
        return _access_token(self._get(scopes, claims, tenant_id, enable_cae))

    def get_token_info(self, *scopes: str, options: Optional[Any] = None) -> AccessTokenInfo:
        """A token with ``expires_on`` and ``refresh_on``; ``options``: ``claims``, ``tenant_id``, ``enable_cae``.

        Raises:
            as :meth:`get_token`.
        """
        return _access_token_info(self._get(scopes, *self._options(options)))

    def _get(self, scopes: Tuple[str, ...], claims: Optional[str], tenant_id: Optional[str], cae: bool) -> Any:
        request = self._request(scopes, claims, tenant_id, cae)
        tokens = self._kept(request)
        if tokens is None:
            tokens = self._source.get_token(**request.kwargs)
        return self._finish(request, tokens)

    def close(self) -> None:
        """Close the source when this credential owns it (``owns_source=True``); else nothing."""
        if self.owns_source:
            close = getattr(self._source, "close", None)
            if callable(close):
                close()

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncAzureCoreCredential(_Adapter):
    """An azure-core ``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo`` over one of our sources.

    For the ``aio`` Azure SDK clients. ``source`` is best an async one (AsyncEntraClient,
    AsyncManagedIdentity); a sync source's ``get_token`` runs in a worker thread, off the loop.
    Same arguments as :class:`AzureCoreCredential`; closing an owned source awaits its ``aclose()``
    (or calls its ``close()``).
    """

    async def get_token(
        self,
        *scopes: str,
        claims: Optional[str] = None,
        tenant_id: Optional[str] = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token for ``scopes``, as :meth:`AzureCoreCredential.get_token`."""
        return _access_token(await self._get(scopes, claims, tenant_id, enable_cae))

    async def get_token_info(self, *scopes: str, options: Optional[Any] = None) -> AccessTokenInfo:
        """A token with ``expires_on`` and ``refresh_on``, as :meth:`AzureCoreCredential.get_token_info`."""
        return _access_token_info(await self._get(scopes, *self._options(options)))

    async def _get(self, scopes: Tuple[str, ...], claims: Optional[str], tenant_id: Optional[str], cae: bool) -> Any:
        request = self._request(scopes, claims, tenant_id, cae)
        tokens = self._kept(request)
        if tokens is None:
            get_token = self._source.get_token
            if inspect.iscoroutinefunction(get_token):
                tokens = await get_token(**request.kwargs)
            else:
                loop = asyncio.get_running_loop()
                tokens = await loop.run_in_executor(None, functools.partial(get_token, **request.kwargs))
        return self._finish(request, tokens)

    async def close(self) -> None:
        """Close the source when this credential owns it (``owns_source=True``); else nothing."""
        if not self.owns_source:
            return
        close = getattr(self._source, "aclose", None) or getattr(self._source, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        traceback: Optional[Any] = None,
    ) -> None:
        await self.close()
