"""Managed identity as a client: configuration and the cached token flow the drivers run.

:mod:`oauth_core.core.identity` knows each source's wire dialect; :class:`IdentityBase` adds what
every token client here has: a cache entry per identity and resource, served while fresh,
refreshed under that entry's single-flight lock, and the still-valid token kept when a proactive
refresh fails. Like :class:`~oauth_core.core.flows.ClientBase` it touches neither a socket nor a
file: its flows yield effects for :class:`~oauth_core.drivers.identity.ManagedIdentity` and its
async twin to perform.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from .cache_rules import (
    CacheScope,
    Check,
    Load,
    Lock,
    Save,
    State,
    find_access_token,
    fresh_token,
    freshness,
    store_for,
    token_set_of as _token_set_of,
)
from .effects import StepFlow, request_headers
from .errors import ConfigError, OAuthCoreError, TokensNotSaved
from .identity import IdentityId, IdentitySource, default_arc_key_folder, detect_source, resource_for, token_flow
from .protocol import TokenSet, normalize_scopes

__all__ = ["MANAGED_IDENTITY_ACCOUNT", "CredentialUnavailable", "IdentityBase", "LinkReport"]

MANAGED_IDENTITY_ACCOUNT = "managed-identity"  # the cache's account part for every managed identity token
_DATABRICKS = normalize_scopes(None)


class IdentityBase:
    """One managed identity (system-assigned, or user-assigned by one id) at the source the environment names.

    See :class:`~oauth_core.drivers.identity.ManagedIdentity` for the arguments.
    """

    def __init__(
        self,
        *,
        client_id: Optional[str] = None,
        object_id: Optional[str] = None,
        resource_id: Optional[str] = None,
        environ: Mapping[str, str],
        source: Optional[IdentitySource] = None,
        arc_agent_present: bool = False,
        arc_key_folder: Optional[str] = None,
        scopes: Optional[Tuple[str, ...]] = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = IdentityId.of(client_id=client_id, object_id=object_id, resource_id=resource_id)
        self.source = source if source is not None else detect_source(environ, arc_agent_present=arc_agent_present)
        self.scopes = scopes or _DATABRICKS
        self.timeout = timeout
        self.clock = clock
        if arc_key_folder is None and self.source.kind == "azure_arc":
            arc_key_folder = default_arc_key_folder(sys.platform, environ)
        self._arc_key_folder = arc_key_folder or ""
        endpoint = urlsplit(self.source.endpoint)
        self._where = CacheScope(
            f"{self.source.kind}:{endpoint.netloc}", "managed-identity", f"{self.identity.kind}:{self.identity.value}"
        )

    def __repr__(self) -> str:  # the source's repr hides its secret header
        return f"{type(self).__name__}(source={self.source.kind!r}, identity={self.identity!r})"

    @property
    def cache_scope(self) -> CacheScope:
        """Where this identity's tokens live in a cache."""
        return self._where

    def _scopes(self, scopes: Union[None, str, Iterable[str]]) -> Tuple[str, ...]:
        wanted = self.scopes if scopes is None else normalize_scopes(scopes)
        resource_for(wanted)  # exactly one scope or resource: checked before anything is sent
        return wanted

    def _fresh_from_cache(self, state: State, scopes: Tuple[str, ...], min_validity: float) -> Optional[TokenSet]:
        """The fast path: a cached token that needs nothing, or None."""
        return fresh_token(state, self._where, MANAGED_IDENTITY_ACCOUNT, scopes, min_validity, self.clock())

    def _token_flow(self, scopes: Tuple[str, ...], min_validity: float) -> StepFlow[TokenSet]:
        """Serve the cached token, or fetch one from the source under the entry's lock.

        Inside the refresh window a failed fetch serves the still-valid token instead.
        """
        resource = resource_for(scopes)
        key = self._where.at_key(MANAGED_IDENTITY_ACCOUNT, scopes)
        fallback = None
        for locked in (False, True):
            state: State = yield Load()
            entry = find_access_token(state, self._where, MANAGED_IDENTITY_ACCOUNT, scopes)
            mode = "hard" if entry is None else freshness(entry, self.clock(), min_validity=min_validity)
            if entry is not None and mode == "fresh":
                return _token_set_of(entry)
            fallback = entry if mode == "soft" else None
            if not locked:
                yield Lock(key)
                yield Check()
        flow = token_flow(
            self.source,
            self.identity,
            resource,
            clock=self.clock,
            allowed_arc_folder=self._arc_key_folder,
            headers=request_headers()[:1],  # a client-request-id; the MSAL capability header is Entra's only
        )
        try:
            tokens: TokenSet = yield from flow
        except OAuthCoreError:
            if fallback is not None:
                return _token_set_of(fallback)
            raise
        save = functools.partial(
            store_for, where=self._where, tokens=tokens, requested=scopes, account=MANAGED_IDENTITY_ACCOUNT
        )
        try:
            yield Save(save)
        except ConfigError as exc:  # CacheError included
            raise TokensNotSaved(tokens, exc) from None
        return tokens


class CredentialUnavailable(OAuthCoreError):
    """No link of the default chain (:class:`~oauth_core.drivers.chain.DefaultCredential`) applies here;
    ``links`` says why for each, in order."""

    def __init__(self, links: List[LinkReport]) -> None:
        lines = "; ".join(f"{link.name}: {link.why}" for link in links)
        super().__init__(f"no credential is available here ({lines})")
        self.links = links


@dataclass(frozen=True)
class LinkReport:
    """One link of the chain: its name, whether it applies, and why, in one line."""

    name: str
    applies: bool
    why: str
