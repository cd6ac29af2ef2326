"""What the sync and async drivers share: the I/O they own, and the one client constructor.

A driver owns three things: an HTTP client (``httpx.Client`` or ``httpx.AsyncClient``), a
:class:`~oauth_core.drivers.retry.RetryPolicy` and a :class:`~oauth_core.drivers.stores.TokenCache`.
:class:`Engine` sets them up once; each driver supplies only ``_new_http`` and its own loop
(``_drive``/``_perform``). :class:`ClientDriver` is the constructor of both Entra clients.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Generic, Iterable, Optional, TypeVar

from ..core.flows import ClientBase, Scopes
from .retry import RetryPolicy
from .stores import MemoryTokenCache, TokenCache

if TYPE_CHECKING:
    from ..core.assertion import ClientCertificate
    from ..core.flows import AssertionSource

__all__ = ["ClientDriver", "Engine", "HttpT"]

HttpT = TypeVar("HttpT")


class Engine(Generic[HttpT]):
    """The I/O a driver owns: its HTTP client, retry policy and token cache."""

    retry: RetryPolicy
    cache: TokenCache
    _http: HttpT
    _owns_http: bool

    def _own_io(
        self, http_client: Optional[HttpT], retry: Optional[RetryPolicy], cache: Optional[TokenCache], timeout: float
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        self.cache = cache if cache is not None else MemoryTokenCache()
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else self._new_http(timeout)

    def _new_http(self, timeout: float) -> HttpT:
        """The driver's own HTTP client, made when the caller passed none."""
        raise NotImplementedError

    def _clock(self) -> Callable[[], float]:
        """The client's clock (epoch seconds), for what the engine times: throttling windows."""
        clock: Callable[[], float] = getattr(self, "clock", time.time)
        return clock


class ClientDriver(ClientBase, Engine[HttpT]):
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
        client_assertion: a signed assertion (a JWT string), or a callable returning a fresh one for
            each token request: a federated credential (Kubernetes service account token, GitHub
            Actions OIDC token, a managed identity's token) instead of a secret.
        client_capabilities: what the client can do, sent with every token and authorize request as
            ``claims`` (``["cp1"]``: it answers claims challenges, so Entra may issue long-lived
            CAE tokens that a resource can revoke at once).
        user_realm_discovery: look the user's realm up before a password grant, so that a
            federated user signs in through the federation's WS-Trust endpoint (the default);
            False sends the password grant at once.
        http_client: an ``httpx.Client`` (``httpx.AsyncClient`` for the async client) to use instead
            of the client's own (its proxy settings are its own, and the call deadline is then
            checked between reads only).
        retry: the :class:`RetryPolicy` for transient failures (waits use ``retry.async_sleep`` in
            the async client when set, else :func:`asyncio.sleep`).
        timeout: seconds for each connect, read, write and pool wait; one call, retries included,
            ends within ``timeout x max_attempts`` plus the backoff, at most ``retry.deadline``.
        offline_access: add ``offline_access openid profile`` to user grants (refresh and id tokens).
        cache: where tokens are kept (:class:`MemoryTokenCache` by default, or a :class:`FileTokenCache`).
        clock: epoch seconds now (injectable for tests).
        trusted_hosts: authority hosts to accept besides Entra's own and loopback ones.

    Raises:
        ConfigError / InsecureAuthorityError: an invalid tenant, host or client id, or more than
            one client credential.
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
        client_assertion: Optional[AssertionSource] = None,
        client_capabilities: Iterable[str] = (),
        user_realm_discovery: Optional[bool] = None,
        http_client: Optional[HttpT] = None,
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
            client_assertion=client_assertion,
            client_capabilities=client_capabilities,
            user_realm_discovery=user_realm_discovery,
            timeout=timeout,
            offline_access=offline_access,
            clock=clock,
            trusted_hosts=trusted_hosts,
        )
        self._own_io(http_client, retry, cache, timeout)
