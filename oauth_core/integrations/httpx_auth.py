"""``EntraAuth``: an ``httpx.Auth`` that sends Entra ID access tokens (RFC 6750 §2.1 Bearer).

Every request gets ``Authorization: Bearer <token>`` from the client's cache; the cache refreshes
the token ahead of its expiry. A 401 answer is retried once with a refreshed token. A 401 that
carries a claims challenge (Continuous Access Evaluation: ``WWW-Authenticate: Bearer
error="insufficient_claims", claims="<base64 JSON>"``) cannot be met silently, so it raises
:class:`~oauth_core.errors.InteractionRequired` with the decoded claims instead.

One generator (:meth:`EntraAuth._flow`) holds that logic and yields two kinds of step: a request
to send, or a :class:`_TokenWanted`. ``sync_auth_flow`` and ``async_auth_flow`` are the two small
loops that answer them, as httpx's own ``Auth`` classes are written (encode/httpx:httpx/_auth.py).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncGenerator, Dict, Generator, Iterable, Mapping, Optional, Union

import httpx

from ..core.errors import ConfigError, InteractionRequired, OAuthCoreError, ResponseFormatError
from ..core.flows import APP_ACCOUNT, Scopes
from ..core.scopes import normalize_scopes

if TYPE_CHECKING:
    from .databricks import (
        SP_MANAGEMENT_TOKEN_HEADER as SP_MANAGEMENT_TOKEN_HEADER,
        WORKSPACE_RESOURCE_ID_HEADER as WORKSPACE_RESOURCE_ID_HEADER,
        build_workspace_resource_id as build_workspace_resource_id,
        check_workspace_resource_id as check_workspace_resource_id,
    )

__all__ = [
    "APP_ACCOUNT",
    "SP_MANAGEMENT_TOKEN_HEADER",
    "WORKSPACE_RESOURCE_ID_HEADER",
    "EntraAuth",
    "bearer_challenge",
    "build_workspace_resource_id",
    "check_workspace_resource_id",
]

# A min_validity no cached token can meet: get_token must refresh.
FORCE_REFRESH = math.inf
# Anything with ``get_token(scopes=..., min_validity=...[, account=...])`` returning a TokenSet, sync
# or async: EntraClient, AsyncEntraClient, ManagedIdentity, AsyncManagedIdentity, WorkloadIdentity,
# DefaultCredential (duck-typed, so a credential of your own fits too).
TokenClient = Any

# Azure Databricks names that lived here before they moved to .databricks; still importable from here.
_MOVED_TO_DATABRICKS = frozenset(
    {
        "SP_MANAGEMENT_TOKEN_HEADER",
        "WORKSPACE_RESOURCE_ID_HEADER",
        "build_workspace_resource_id",
        "check_workspace_resource_id",
    }
)
# Header names whose values are credentials: never shown in a repr.
_SECRET_HEADER_PARTS = ("token", "secret", "authorization", "cookie", "password", "key")

# RFC 7235 §2.1: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_AUTH_PARAM = re.compile(rf'[\s,]*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)')
_AUTH_SCHEME = re.compile(rf"[\s,]*({_TOKEN})")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def bearer_challenge(values: Iterable[str]) -> Optional[Dict[str, str]]:
    """The parameters of the first ``Bearer`` challenge in ``WWW-Authenticate`` header values.

    Args:
        values: every ``WWW-Authenticate`` value of the response (one may hold several challenges).

    Returns:
        Parameter names (lower case) to unquoted values, or None when no Bearer challenge is there.
    """
    challenges: list[tuple[str, Dict[str, str]]] = []
    for value in values:
        position = 0
        while position < len(value):
            param = _AUTH_PARAM.match(value, position)
            if param is not None and challenges:
                challenges[-1][1].setdefault(param.group(1).lower(), _unquote(param.group(2)))
                position = param.end()
                continue
            scheme = _AUTH_SCHEME.match(value, position)
            if scheme is None:
                break  # trailing blanks or commas, or text that is not RFC 7235: stop here
            challenges.append((scheme.group(1).lower(), {}))
            position = scheme.end()
    return next((params for scheme, params in challenges if scheme == "bearer"), None)


def _decode_claims(encoded: str) -> str:
    """The JSON text of a claims challenge's base64 (or base64url) ``claims`` value."""
    text = encoded.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        claims = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
        parsed = json.loads(claims)
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: hostile nesting
        parsed = None
    if not isinstance(parsed, dict):
        raise ResponseFormatError("the API's claims challenge is not base64-encoded JSON", status=401)
    return claims


def _claims_challenge(challenge: Dict[str, str]) -> InteractionRequired:
    encoded = challenge.get("claims")
    return InteractionRequired(
        challenge.get("error") or "insufficient_claims",
        "The API asked for a token with more claims (a Continuous Access Evaluation claims challenge): "
        "sign in again, passing these claims.",
        claims=_decode_claims(encoded) if encoded else None,
        status=401,
    )


@dataclass(frozen=True)
class _TokenWanted:
    """A step of the flow: an access token with at least ``min_validity`` seconds left."""

    min_validity: float
    claims: Optional[str] = None  # a claims challenge to answer: the token is asked for anew, with them


_Step = Union[httpx.Request, _TokenWanted]
_Reply = Union[httpx.Response, str, OAuthCoreError]  # an error getting a token is thrown into the flow
_Flow = Generator[_Step, _Reply, None]


class EntraAuth(httpx.Auth):
    """Authenticate httpx requests with Entra ID access tokens from an :class:`EntraClient`'s cache.

    Use it as ``httpx.Client(auth=EntraAuth(client))``, or with ``httpx.AsyncClient``. With an
    :class:`~oauth_core.aio.AsyncEntraClient` only ``httpx.AsyncClient`` works; an
    :class:`EntraClient` works with both, though under ``AsyncClient`` a refresh blocks the event
    loop while it runs (cache hits do not).

    Each request gets ``Authorization: Bearer <token>`` (a token with at least ``min_validity``
    seconds left, refreshed silently when needed), plus ``headers`` it does not carry already. A
    401 answer is retried once after a refresh; a second 401 is returned as it is. Requests that
    already carry an ``Authorization`` header are sent unchanged. Request bodies are read into
    memory so that the retry can send them again. For an Azure Databricks workspace use
    :class:`~oauth_core.integrations.databricks.DatabricksAuth`, which adds the workspace headers.

    Args:
        client: where tokens come from (someone must have signed in with it, or into its cache).
        scopes: the token's scopes; the client's default scopes when None.
        min_validity: seconds a token must still be valid to be sent.
        account: which cached account, when the cache holds several. :data:`APP_ACCOUNT` (``"app"``)
            means a service principal's app-only token, which ``get_token`` renews with the
            client's secret or certificate.
        headers: more headers for every request (an API's own routing headers, say); a header
            the request already carries is left as it is.
        workspace_resource_id, subscription_id, resource_group, workspace_name: deprecated
            aliases of :class:`~oauth_core.integrations.databricks.DatabricksAuth`'s arguments
            (the workspace's ARM resource id, or the three names it is built from).

    Raises:
        ConfigError: a client of another type, a bad ``min_validity``, a malformed resource id,
            or both a resource id and names (or only some of the names).
    """

    requires_request_body = True  # the retry after a 401 must send the body again

    def __init__(
        self,
        client: TokenClient,
        *,
        scopes: Scopes = None,
        min_validity: float = 300.0,
        account: Optional[str] = None,
        workspace_resource_id: Optional[str] = None,
        subscription_id: Optional[str] = None,
        resource_group: Optional[str] = None,
        workspace_name: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        if not callable(getattr(client, "get_token", None)):
            raise ConfigError(
                "EntraAuth needs a token client: an EntraClient, AsyncEntraClient, ManagedIdentity, "
                "WorkloadIdentity or DefaultCredential"
            )
        if not (0 <= min_validity < 86400):
            raise ConfigError("min_validity must be between 0 and 86400 seconds")
        self._client = client
        self.scopes = normalize_scopes(scopes) if scopes is not None else None
        self.min_validity = float(min_validity)
        self.account = account
        self.headers: Dict[str, str] = dict(headers or {})
        self.workspace_resource_id: Optional[str] = None
        workspace = (workspace_resource_id, subscription_id, resource_group, workspace_name)
        if any(value is not None for value in workspace):
            from .databricks import WORKSPACE_RESOURCE_ID_HEADER, resolve_workspace_resource_id

            self.workspace_resource_id = resolve_workspace_resource_id(*workspace)
            if self.workspace_resource_id is not None:
                self.headers.setdefault(WORKSPACE_RESOURCE_ID_HEADER, self.workspace_resource_id)

    def __repr__(self) -> str:
        shown = {
            name: "<redacted>" if any(part in name.lower() for part in _SECRET_HEADER_PARTS) else value
            for name, value in self.headers.items()
        }
        return f"{type(self).__name__}(client={self._client!r}, scopes={self.scopes!r}, headers={shown!r})"

    # -- the shared flow ---------------------------------------------------------------------

    def _flow(self, request: httpx.Request) -> _Flow:
        """Authenticate ``request``, send it, and answer a 401 with one refresh and one retry."""
        if "authorization" in request.headers:  # the caller chose its own credentials
            yield request
            return
        for name, value in self.headers.items():
            if name not in request.headers:
                request.headers[name] = value
        token = yield from self._token(self.min_validity)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield from self._send(request)
        if response.status_code != 401:
            return
        challenge = bearer_challenge(response.headers.get_list("www-authenticate"))
        if challenge is not None and ("claims" in challenge or challenge.get("error") == "insufficient_claims"):
            challenged = _claims_challenge(challenge)
            if challenged.claims is None or not self._takes_claims():
                raise challenged
            try:  # one silent acquisition with the claims the API asked for, then one retry
                fresh = yield from self._token(self.min_validity, str(challenged.claims))
            except InteractionRequired as exc:
                raise challenged from exc  # a person must sign in, passing these claims
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request
            return
        fresh = yield from self._token(self.min_validity)
        if fresh == token:  # nobody has refreshed it since: force a refresh
            fresh = yield from self._token(FORCE_REFRESH)
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request  # a second 401 goes back to the caller as it is

    @staticmethod
    def _token(min_validity: float, claims: Optional[str] = None) -> Generator[_Step, _Reply, str]:
        reply = yield _TokenWanted(min_validity, claims)
        if isinstance(reply, OAuthCoreError):
            raise reply
        assert isinstance(reply, str)
        return reply

    def _takes_claims(self) -> bool:
        """Whether the client's ``get_token`` takes ``claims=`` (a managed identity's does not)."""
        try:
            return "claims" in inspect.signature(self._client.get_token).parameters
        except (TypeError, ValueError):
            return False

    @staticmethod
    def _send(request: httpx.Request) -> Generator[_Step, _Reply, httpx.Response]:
        reply = yield request
        assert isinstance(reply, httpx.Response)
        return reply

    # -- the two drivers ---------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow for ``httpx.Client``: tokens from :meth:`EntraClient.get_token`.

        Raises:
            ConfigError: the client is an AsyncEntraClient.
            InteractionRequired: nothing cached can be refreshed, or the API sent a claims challenge.
            TransientError / ResponseFormatError: the refresh failed.
        """
        client = self._client
        if _is_async_client(client):
            raise ConfigError("this EntraAuth holds an async client: use it with httpx.AsyncClient")
        request.read()
        flow = self._flow(request)
        step = next(flow)
        while True:
            if isinstance(step, _TokenWanted):
                try:
                    reply: _Reply = self._sync_token(client, step.min_validity, step.claims)
                except OAuthCoreError as exc:
                    reply = exc
            else:
                reply = yield step
            try:
                step = flow.send(reply)
            except StopIteration:
                return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The flow for ``httpx.AsyncClient``: tokens from the client's ``get_token``.

        Raises:
            InteractionRequired: nothing cached can be refreshed, or the API sent a claims challenge.
            TransientError / ResponseFormatError: the refresh failed.
        """
        await request.aread()
        flow = self._flow(request)
        step = next(flow)
        while True:
            if isinstance(step, _TokenWanted):
                try:
                    reply: _Reply = await self._async_token(step.min_validity, step.claims)
                except OAuthCoreError as exc:
                    reply = exc
            else:
                reply = yield step
            try:
                step = flow.send(reply)
            except StopIteration:
                return

    def _token_options(self, claims: Optional[str]) -> Dict[str, Any]:
        # ``account`` and ``claims`` only when given: managed identities take neither.
        options: Dict[str, Any] = {"scopes": self.scopes}
        if self.account is not None:
            options["account"] = self.account
        if claims is not None:
            options["claims"] = claims
        return options

    def _sync_token(self, client: Any, min_validity: float, claims: Optional[str] = None) -> str:
        # get_token renews a service principal's app-only token itself (client credentials).
        return str(client.get_token(min_validity=min_validity, **self._token_options(claims)).access_token)

    async def _async_token(self, min_validity: float, claims: Optional[str] = None) -> str:
        client = self._client
        if not _is_async_client(client):
            return self._sync_token(client, min_validity, claims)
        tokens = await client.get_token(min_validity=min_validity, **self._token_options(claims))
        return str(tokens.access_token)


def _is_async_client(client: object) -> bool:
    """True for a client whose ``get_token`` is a coroutine function (AsyncEntraClient, AsyncManagedIdentity)."""
    return inspect.iscoroutinefunction(getattr(client, "get_token", None))


def __getattr__(name: str) -> Any:
    """The Azure Databricks names that moved to :mod:`.databricks`, imported on first use.

    Lazily, because that module imports this one.
    """
    if name in _MOVED_TO_DATABRICKS:
        from . import databricks

        return getattr(databricks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
