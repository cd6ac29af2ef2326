"""Federated credentials: a projected token file as a client assertion, and workload identity.

Kubernetes (AKS workload identity) mounts a service account token at ``AZURE_FEDERATED_TOKEN_FILE``
and rotates it; Entra trades it, as a jwt-bearer client assertion, for an app-only token of the
application ``AZURE_CLIENT_ID`` trusts it for. :class:`FederatedTokenFile` is that assertion
source, :class:`CiOidcToken` a CI job's (GitHub Actions, Azure Pipelines); any other is a callable
of your own passed as ``client_assertion=``. :class:`WorkloadIdentity` is the client the
environment describes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Mapping, Optional, Tuple

import httpx

from ..core.ci_tokens import FEDERATION_AUDIENCE, github_actions_request, parse_ci_token, pipelines_request
from ..core.claims import unverified_claims
from ..core.errors import ConfigError, TokenDecodeError
from ..core.flows import APP_ACCOUNT, Scopes
from ..core.protocol import Claims, TokenSet
from .retry import RetryPolicy
from .stores import TokenCache
from .sync import EntraClient
from .transport import new_http_client, send_with_retry

__all__ = ["CiOidcToken", "FederatedTokenFile", "WorkloadIdentity", "workload_identity_settings"]

MAX_TOKEN_FILE_BYTES = 64 * 1024
REREAD_BEFORE_EXP = 300.0  # the kubelet rotates well before expiry; re-read in the last 5 minutes
WORKLOAD_VARIABLES = ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID")


class _CachedAssertion:
    """An assertion source that fetches a token and keeps it until it nears its ``exp``.

    A token without a readable ``exp`` is fetched again on each call. Thread-safe: one fetch at a time.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, reread_before: float = REREAD_BEFORE_EXP) -> None:
        self._clock = clock
        self._reread_before = reread_before
        self._held: Optional[Tuple[str, Optional[float]]] = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            held = self._held
            if held is not None and held[1] is not None and held[1] - self._clock() > self._reread_before:
                return held[0]
            token = self._read()
            self._held = (token, _expiry(token))
            return token

    def _read(self) -> str:
        raise NotImplementedError


class FederatedTokenFile(_CachedAssertion):
    """A client assertion read from a file, re-read whenever the token it held is near its ``exp``.

    The file is followed through symbolic links (projected volumes are links to ``..data``) and
    read only when its token is within ``reread_before`` seconds of expiry, has no ``exp``, or
    was never read.

    Raises (when called):
        ConfigError: the file is missing, empty, larger than 64 KiB or not text.
    """

    def __init__(
        self, path: str, *, clock: Callable[[], float] = time.time, reread_before: float = REREAD_BEFORE_EXP
    ) -> None:
        if not path or not path.strip():
            raise ConfigError("the federated token file path is empty")
        super().__init__(clock=clock, reread_before=reread_before)
        self.path = path

    def __repr__(self) -> str:
        return f"FederatedTokenFile({self.path!r})"

    def _read(self) -> str:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_TOKEN_FILE_BYTES + 1)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(f"cannot read the federated token file {self.path!r}: {reason}") from None
        if len(data) > MAX_TOKEN_FILE_BYTES:
            raise ConfigError(f"the federated token file {self.path!r} is larger than 64 KiB")
        try:
            token = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"the federated token file {self.path!r} is not text") from None
        if not token or any(ch.isspace() for ch in token):
            raise ConfigError(f"the federated token file {self.path!r} holds no token")
        return token


class CiOidcToken(_CachedAssertion):
    """A CI job's OIDC token as a client assertion: GitHub Actions (``ACTIONS_ID_TOKEN_REQUEST_URL``
    and ``_TOKEN``, with ``permissions: id-token: write``) or, given a ``service_connection_id``,
    Azure Pipelines (``SYSTEM_OIDCREQUESTURI``, ``SYSTEM_ACCESSTOKEN``). Fetched again near its ``exp``.

    Pass it as ``EntraClient(app_id, tenant, client_assertion=CiOidcToken())``.

    Raises (when called):
        ConfigError: the job's variables are missing, or the CI service refused.
        TransientError / ResponseFormatError: the CI service failed or sent no token.
    """

    def __init__(
        self,
        *,
        audience: str = FEDERATION_AUDIENCE,
        service_connection_id: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
        timeout: float = 10.0,
        retry: Optional[RetryPolicy] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        env = dict(os.environ if environ is None else environ)
        if service_connection_id is None:
            self._request, self._field = github_actions_request(env, audience), "value"
        else:
            self._request, self._field = pipelines_request(env, service_connection_id), "oidcToken"
        self._timeout = timeout
        self._retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        return f"CiOidcToken({'Azure Pipelines' if self._field == 'oidcToken' else 'GitHub Actions'})"

    def _read(self) -> str:
        with new_http_client(self._timeout) as http:
            exchange = send_with_retry(http, self._request, self._retry)
        return parse_ci_token(exchange.response, self._field)


def _expiry(token: str) -> Optional[float]:
    try:
        exp = unverified_claims(token).get("exp")
    except TokenDecodeError:
        return None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def workload_identity_settings(env: Mapping[str, str]) -> Tuple[Optional[Tuple[str, str, str, Optional[str]]], str]:
    """``((token_file, client_id, tenant_id, authority_host), "")`` from the environment, or
    ``(None, why)`` naming the variables that are missing."""
    values = {name: (env.get(name) or "").strip() for name in WORKLOAD_VARIABLES}
    missing = [name for name, value in values.items() if not value]
    if missing:
        return None, f"{', '.join(missing)} not set"
    authority = (env.get("AZURE_AUTHORITY_HOST") or "").strip() or None
    return (values["AZURE_FEDERATED_TOKEN_FILE"], values["AZURE_CLIENT_ID"], values["AZURE_TENANT_ID"], authority), ""


class WorkloadIdentity(EntraClient):
    """Workload identity federation: the app ``AZURE_CLIENT_ID`` of ``AZURE_TENANT_ID``, authenticated
    by the token in ``AZURE_FEDERATED_TOKEN_FILE`` (at ``AZURE_AUTHORITY_HOST``, Entra's by default).

    Arguments given override the environment (``environ``, ``os.environ`` by default). Tokens are
    app-only (cached as ``app``); :meth:`get_token` serves them from the cache and renews them.

    Raises:
        ConfigError: a variable is missing and no argument replaces it.
    """

    def __init__(
        self,
        *,
        client_id: Optional[str] = None,
        tenant_id: Optional[str] = None,
        token_file: Optional[str] = None,
        authority_host: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
        scopes: Scopes = None,
        http_client: Optional[httpx.Client] = None,
        retry: Optional[RetryPolicy] = None,
        timeout: float = 30.0,
        cache: Optional[TokenCache] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        env = dict(os.environ if environ is None else environ)
        given = {"AZURE_FEDERATED_TOKEN_FILE": token_file, "AZURE_CLIENT_ID": client_id, "AZURE_TENANT_ID": tenant_id}
        env.update({name: value for name, value in given.items() if value})
        settings, why = workload_identity_settings(env)
        if settings is None:
            raise ConfigError(f"workload identity needs its environment: {why}")
        path, app, tenant, host = settings
        super().__init__(
            app,
            tenant,
            authority_host=authority_host or host,
            scopes=scopes,
            client_assertion=FederatedTokenFile(path, clock=clock),
            http_client=http_client,
            retry=retry,
            timeout=timeout,
            offline_access=False,
            cache=cache,
            clock=clock,
        )

    def get_token(
        self,
        *,
        scopes: Scopes = None,
        min_validity: float = 300.0,
        account: Optional[str] = APP_ACCOUNT,
        claims: Claims = None,
    ) -> TokenSet:
        """An app-only token for ``scopes`` (one ``<resource>/.default``), cached and renewed."""
        return super().get_token(scopes=scopes, min_validity=min_validity, account=account, claims=claims)
