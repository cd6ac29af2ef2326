"""Managed identity clients, sync and async: :class:`ManagedIdentity` and :class:`AsyncManagedIdentity`.

They run :class:`~oauth_core.core.managed.IdentityBase`'s flow with the same loops, cache,
single-flight locks and retries as the Entra clients. The default retry policy follows IMDS's
published guidance: 404, 410, 429 and 5xx retried with exponential backoff (1, 2, 4 ... 40 s),
long enough to outlast the 70 s an instance metadata service may take to start.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Mapping, Optional

import httpx

from ..core.flows import Scopes
from ..core.identity import RETRY_STATUSES_IMDS, IdentitySource
from ..core.managed import IdentityBase
from ..core.protocol import TokenSet, normalize_scopes
from .aio import AsyncEngine
from .common import Engine, HttpT
from .pinning import pinned_http_client
from .retry import RetryPolicy
from .stores import TokenCache
from .sync import SyncEngine

__all__ = ["AsyncManagedIdentity", "ManagedIdentity", "imds_retry_policy"]


def imds_retry_policy() -> RetryPolicy:
    """The managed identity clients' default: IMDS's retry statuses, backoff 1 s doubling to 40 s, 8 attempts."""
    return RetryPolicy(
        max_attempts=8,
        deadline=120.0,
        initial_backoff=1.0,
        max_backoff=40.0,
        jitter=False,
        extra_statuses=RETRY_STATUSES_IMDS,
    )


class IdentityDriver(IdentityBase, Engine[HttpT]):
    """A managed identity's token client.

    Args:
        client_id / object_id / resource_id: a user-assigned identity, named by at most one of
            them; none means the system-assigned identity.
        scopes: the default scopes (one ``<resource>/.default``, the Azure Databricks one when None).
        environ: where the source is read from (``os.environ`` by default): App Service /
            Functions (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``), Service Fabric (plus
            ``IDENTITY_SERVER_THUMBPRINT``), Azure ML (``MSI_ENDPOINT`` + ``MSI_SECRET``), Cloud Shell
            (``MSI_ENDPOINT``), Azure Arc (``IDENTITY_ENDPOINT`` + ``IMDS_ENDPOINT``), else IMDS
            (``AZURE_POD_IDENTITY_AUTHORITY_HOST`` overrides its address).
        source: an :class:`IdentitySource` to use instead of the environment's.
        arc_key_folder: the only folder Azure Arc key files are read from (the agent's documented
            one by default).
        http_client: an ``httpx.Client`` (``httpx.AsyncClient`` for the async client) of your own
            (Service Fabric's certificate pin, ``IDENTITY_SERVER_THUMBPRINT``, is then yours to
            enforce; the client's own pins it).
        retry: the :class:`RetryPolicy` (:func:`imds_retry_policy` by default).
        timeout: seconds for each connect, read, write and pool wait.
        cache: where tokens are kept (a :class:`MemoryTokenCache` by default).
        clock: epoch seconds now (injectable for tests).

    Raises:
        ConfigError: several ids, a malformed endpoint in the environment, or a source that cannot
            serve the identity asked for.
    """

    def __init__(
        self,
        *,
        client_id: Optional[str] = None,
        object_id: Optional[str] = None,
        resource_id: Optional[str] = None,
        scopes: Scopes = None,
        environ: Optional[Mapping[str, str]] = None,
        source: Optional[IdentitySource] = None,
        arc_key_folder: Optional[str] = None,
        http_client: Optional[HttpT] = None,
        retry: Optional[RetryPolicy] = None,
        timeout: float = 30.0,
        cache: Optional[TokenCache] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        env = dict(os.environ if environ is None else environ)
        super().__init__(
            client_id=client_id,
            object_id=object_id,
            resource_id=resource_id,
            environ=env,
            source=source,
            arc_agent_present=environ is None and _arc_agent_installed(),
            arc_key_folder=arc_key_folder,
            scopes=None if scopes is None else normalize_scopes(scopes),
            timeout=timeout,
            clock=clock,
        )
        self._own_io(http_client, retry if retry is not None else imds_retry_policy(), cache, timeout)


def _arc_agent_installed() -> bool:
    """Azure Arc's agent, found the way MSAL finds it when its variables are missing (Linux services)."""
    return os.path.exists("/opt/azcmagent/bin/himds")


class ManagedIdentity(IdentityDriver[httpx.Client], SyncEngine):
    __doc__ = IdentityDriver.__doc__

    def _new_http(self, timeout: float) -> httpx.Client:
        thumbprint = self.source.server_thumbprint
        if thumbprint is None:
            return super()._new_http(timeout)
        return pinned_http_client(httpx.Client, httpx.HTTPTransport, timeout, thumbprint)

    def get_token(self, *, scopes: Scopes = None, min_validity: float = 300.0) -> TokenSet:
        """A token for ``scopes`` (one ``<resource>/.default``): cached, or fetched from the source.

        Raises:
            ManagedIdentityError: the source refused (IdentityNotFound, NoIdentityAssigned, ...).
            TransientError: the source did not answer, retries included.
            ConfigError: several scopes, or a scope the source cannot serve.
        """
        wanted = self._scopes(scopes)
        cached = self._fresh_from_cache(self.cache.snapshot(), wanted, min_validity)
        if cached is not None:
            return cached
        return self._drive(self._token_flow(wanted, min_validity))


class AsyncManagedIdentity(IdentityDriver[httpx.AsyncClient], AsyncEngine):
    """The ``async`` twin of :class:`ManagedIdentity`: same arguments, same flow."""

    def _new_http(self, timeout: float) -> httpx.AsyncClient:
        thumbprint = self.source.server_thumbprint
        if thumbprint is None:
            return super()._new_http(timeout)
        return pinned_http_client(httpx.AsyncClient, httpx.AsyncHTTPTransport, timeout, thumbprint)

    async def get_token(self, *, scopes: Scopes = None, min_validity: float = 300.0) -> TokenSet:
        """A token for ``scopes``, as :meth:`ManagedIdentity.get_token` (cache work off the loop)."""
        wanted = self._scopes(scopes)
        cached = self._fresh_from_cache(self.cache.snapshot(), wanted, min_validity)
        if cached is not None:
            return cached
        return await self._drive(self._token_flow(wanted, min_validity))
