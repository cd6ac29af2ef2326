"""One default chain: the first credential the place offers, decided fast and explained.

:class:`DefaultCredential` looks, in order, for an environment service principal, workload
identity, a managed identity the environment names, and an account signed in (``oauth-core
login``) in the shared token cache: all decided from variables and one local file, with no
request. Only when none applies does it ask whether an instance metadata service (IMDS) is there,
with a probe IMDS answers at once without issuing a token (the token URL without the
``Metadata`` header), so a host with no managed identity answers in well under a second, and a
slow token service can never make a present IMDS look absent. The link chosen is remembered.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Tuple

import httpx

from ..core.errors import ConfigError, OAuthCoreError
from ..core.flows import APP_ACCOUNT, Scopes
from ..core.identity import detect_source, environment_source, is_probe_answer, probe_request
from ..core.managed import CredentialUnavailable, LinkReport
from ..core.protocol import TokenSet
from .retry import NetworkFailure
from .stores import FileTokenCache, TokenCache
from .transport import fetch, new_http_client

__all__ = ["CredentialUnavailable", "DefaultCredential", "LinkReport", "probe"]

# What deciding one link gives: the credential (None: the link does not apply), the cache
# account to ask it for (None for a managed identity), and why, in one line.
_Decision = Tuple[Optional[Any], Optional[str], str]
PROBE_TIMEOUT = 0.5  # seconds: IMDS answers the probe from the host itself, at once


@dataclass(frozen=True)
class _Chosen:
    name: str
    credential: Any
    account: Optional[str]  # the cache account to ask for; None for a managed identity


class DefaultCredential:
    """The first of: environment service principal, workload identity, managed identity, shared cache.

    Args:
        scopes: the default scopes (the Azure Databricks one when None).
        environ: the environment to read (``os.environ`` by default).
        cache: the shared token cache, where ``oauth-core login`` keeps accounts (the default
            file under the state folder when None); chosen clients cache their tokens there too.
        probe_timeout: seconds the IMDS probe may take (connect and answer).
        timeout: seconds for each request of the chosen credential.
        clock: epoch seconds now (injectable for tests).

    The chosen credential is remembered; :meth:`explain` tells which and why the others did not apply.
    """

    def __init__(
        self,
        *,
        scopes: Scopes = None,
        environ: Optional[Mapping[str, str]] = None,
        cache: Optional[TokenCache] = None,
        probe_timeout: float = PROBE_TIMEOUT,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scopes = scopes
        self._env = dict(os.environ if environ is None else environ)
        self._cache = cache
        self._probe_timeout = probe_timeout
        self._timeout = timeout
        self._clock = clock
        self._chosen: Optional[_Chosen] = None
        self._reports: List[LinkReport] = []

    def __repr__(self) -> str:
        return f"DefaultCredential(chosen={self.chosen!r})"

    @property
    def cache(self) -> TokenCache:
        if self._cache is None:
            from .files import state_dir

            self._cache = FileTokenCache(state_dir() / "tokens.json")
        return self._cache

    def explain(self) -> List[LinkReport]:
        """Each link in order, with whether it applies and why (decides the chain if not yet done)."""
        try:
            self._choose()
        except CredentialUnavailable:
            pass
        return list(self._reports)

    @property
    def chosen(self) -> Optional[str]:
        """The name of the link in use, once decided."""
        return self._chosen.name if self._chosen else None

    def get_token(self, *, scopes: Scopes = None, min_validity: float = 300.0) -> TokenSet:
        """A token from the chosen credential (decided on first use).

        Raises:
            CredentialUnavailable: no link applies; its message and ``links`` say why for each.
            (and what the chosen credential raises: its failures are not hidden by trying another)
        """
        chosen = self._choose()
        wanted = scopes if scopes is not None else self.scopes
        if chosen.account is None:  # a managed identity
            return chosen.credential.get_token(scopes=wanted, min_validity=min_validity)  # type: ignore[no-any-return]
        tokens = chosen.credential.get_token(scopes=wanted, min_validity=min_validity, account=chosen.account)
        return tokens  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the chosen credential's HTTP client."""
        if self._chosen is not None:
            self._chosen.credential.close()

    def __enter__(self) -> DefaultCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- deciding ------------------------------------------------------------------------------

    def _choose(self) -> _Chosen:
        if self._chosen is not None:
            return self._chosen
        self._reports = []
        for name, decide in (
            ("environment", self._environment),
            ("workload_identity", self._workload_identity),
            ("managed_identity", self._managed_identity_from_env),
            ("shared_cache", self._shared_cache),
            ("managed_identity (IMDS)", self._imds),
        ):
            credential, account, why = decide()
            self._reports.append(LinkReport(name, credential is not None, why))
            if credential is not None:
                self._chosen = _Chosen(name.split(" ")[0], credential, account)
                return self._chosen
        raise CredentialUnavailable(self._reports)

    def _environment(self) -> _Decision:
        from ..core.assertion import ClientCertificate
        from .sync import EntraClient

        env = self._env
        client_id, tenant_id = env.get("AZURE_CLIENT_ID", "").strip(), env.get("AZURE_TENANT_ID", "").strip()
        secret, cert_path = env.get("AZURE_CLIENT_SECRET") or None, env.get("AZURE_CLIENT_CERTIFICATE_PATH") or None
        if secret is None and cert_path is None:
            return None, None, "neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH is set"
        if not client_id or not tenant_id:
            return None, None, "a client secret or certificate is set, but AZURE_CLIENT_ID or AZURE_TENANT_ID is not"
        try:
            certificate = None
            if secret is None and cert_path is not None:
                password = env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD")
                certificate = ClientCertificate.from_file(cert_path, password.encode() if password else None)
            client = EntraClient(
                client_id,
                tenant_id,
                authority_host=env.get("AZURE_AUTHORITY_HOST") or None,
                scopes=self.scopes,
                client_secret=secret,
                client_certificate=certificate,
                timeout=self._timeout,
                cache=self.cache,
                clock=self._clock,
            )
        except ConfigError as exc:
            return None, None, f"the service principal's settings are unusable: {exc}"
        kind = "secret" if secret is not None else "certificate"
        return client, APP_ACCOUNT, f"service principal {client_id} in {tenant_id} with a client {kind}"

    def _workload_identity(self) -> _Decision:
        from .federated import WorkloadIdentity, workload_identity_settings

        settings, why = workload_identity_settings(self._env)
        if settings is None:
            return None, None, why
        try:
            client = WorkloadIdentity(
                environ=self._env, scopes=self.scopes, timeout=self._timeout, cache=self.cache, clock=self._clock
            )
        except ConfigError as exc:
            return None, None, f"workload identity settings are unusable: {exc}"
        return client, APP_ACCOUNT, f"app {settings[1]} in {settings[2]}, token file {settings[0]}"

    def _managed_identity_from_env(self) -> _Decision:
        try:
            source = environment_source(self._env)
        except ConfigError as exc:
            return None, None, f"the managed identity variables are unusable: {exc}"
        if source is None or source.kind == "imds":  # IMDS is only known to be there once probed: last
            return None, None, "no managed identity endpoint named by the environment (IDENTITY_ENDPOINT, MSI_ENDPOINT)"
        return self._managed_identity(source), None, f"{source.kind.replace('_', ' ')} endpoint {source.endpoint}"

    def _managed_identity(self, source: Any) -> Any:
        from .identity import ManagedIdentity

        user_assigned = self._env.get("AZURE_CLIENT_ID", "").strip() or None
        return ManagedIdentity(
            client_id=user_assigned,
            scopes=self.scopes,
            environ=self._env,
            source=source,
            timeout=self._timeout,
            cache=self.cache,
            clock=self._clock,
        )

    def _shared_cache(self) -> _Decision:
        from ..core.cache_rules import accounts
        from .sync import EntraClient

        try:
            known = accounts(self.cache.snapshot())
        except ConfigError as exc:
            return None, None, f"the shared token cache is unusable: {exc}"
        wanted = self._env.get("AZURE_USERNAME", "").strip()
        users = [a for a in known if a.get("account") != APP_ACCOUNT and (not wanted or a.get("username") == wanted)]
        if not users:
            return None, None, "no account signed in to the shared token cache" + (f" as {wanted}" if wanted else "")
        if len(users) > 1:
            return None, None, f"{len(users)} accounts in the shared token cache: set AZURE_USERNAME to choose one"
        user = users[0]
        try:
            client = EntraClient(
                str(user["client_id"]),
                str(user.get("tenant") or "organizations"),
                authority_host=str(user["host"]),
                scopes=self.scopes,
                timeout=self._timeout,
                cache=self.cache,
                clock=self._clock,
            )
        except (ConfigError, KeyError) as exc:
            return None, None, f"the cached account's authority is unusable: {exc}"
        return (
            client,
            str(user["account"]),
            f"{user.get('username') or user['account']} (signed in with client {user['client_id']})",
        )

    def _imds(self) -> _Decision:
        try:
            source = detect_source(self._env)
        except ConfigError as exc:
            return None, None, f"the IMDS address is unusable: {exc}"
        answered, why = probe(source, self._probe_timeout)
        if not answered:
            return None, None, why
        return self._managed_identity(source), None, why


def probe(source: Any, timeout: float) -> Tuple[bool, str]:
    """Whether an IMDS answers at ``source``'s address within ``timeout`` seconds, and why in one line."""
    request = probe_request(source)
    started = time.monotonic()
    try:
        with new_http_client(timeout) as http:
            response = fetch(http, request, until=started + timeout)
    except (NetworkFailure, OAuthCoreError, httpx.HTTPError) as exc:
        kind = getattr(exc, "kind", type(exc).__name__)
        return False, f"no IMDS at {source.endpoint} (probe: {kind} after {time.monotonic() - started:.2f} s)"
    if not is_probe_answer(response):
        return False, f"the address {source.endpoint} answered, but not as IMDS (HTTP {response.status})"
    return True, f"IMDS at {source.endpoint} (probe answered HTTP {response.status})"
