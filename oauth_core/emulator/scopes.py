"""Scope strings: which resource a request is for, and what Entra echoes back (entra-protocol.md §3.1).

A scope is an OIDC scope (``openid profile email offline_access``), a resource-qualified permission
(``<app id or app id URI>/<name>``, ``/.default`` for everything consented), or a bare name, which
means Microsoft Graph. All permissions of one token request must belong to one resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Sequence, Tuple

from .aadsts import refusal
from .config import GRAPH_APP_ID, Resource

__all__ = ["OIDC_SCOPES", "ScopeGrant", "parse_app_scope", "parse_scopes"]

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


@dataclass(frozen=True)
class ScopeGrant:
    """What one token request was granted.

    Attributes:
        resource: the API the access token is for.
        identifier: how the request named it (app id or app id URI); the token's ``aud``.
        names: the granted permission names (``scp``).
        oidc: the OIDC scopes asked for.
    """

    resource: Resource
    identifier: str
    names: Tuple[str, ...]
    oidc: FrozenSet[str] = frozenset()

    @property
    def offline(self) -> bool:
        """True when a refresh token was asked for (``offline_access``)."""
        return "offline_access" in self.oidc

    @property
    def openid(self) -> bool:
        """True when an id_token was asked for (``openid``)."""
        return "openid" in self.oidc

    def echo(self) -> str:
        """The response's ``scope``: granted scopes, never ``offline_access``, sorted as Entra does."""
        granted = {f"{self.identifier}/{name}" for name in self.names}
        granted |= self.oidc - {"offline_access"}
        return " ".join(sorted(granted))

    def request_text(self) -> str:
        """A scope string that asks for exactly this grant again (kept with refresh tokens)."""
        return " ".join([*(f"{self.identifier}/{n}" for n in self.names), *sorted(self.oidc)])


def _find(resources: Sequence[Resource], identifier: str) -> Optional[Resource]:
    return next((resource for resource in resources if resource.known_as(identifier)), None)


def _split(scope: str, resources: Sequence[Resource]) -> Tuple[str, str]:
    if "/" not in scope:
        graph = _find(resources, GRAPH_APP_ID)
        if graph is None:
            raise refusal(70011, scope=scope)
        return graph.app_id_uri or graph.app_id, scope
    identifier, _, name = scope.rpartition("/")
    if not identifier or not name:
        raise refusal(70011, scope=scope)
    return identifier, name


def parse_scopes(
    text: str,
    resources: Sequence[Resource],
    *,
    tenant: str,
    single_resource: bool = True,
) -> ScopeGrant:
    """Resolve a space-separated scope string to one resource's grant.

    Args:
        text: the ``scope`` parameter.
        resources: the configured resources.
        tenant: the tenant path segment, quoted in errors.
        single_resource: refuse permissions of several resources (token endpoint); otherwise
            the first resource wins (authorize, stored grants).

    Raises:
        Refusal: AADSTS70011 (unknown permission or several resources), 500011 (unknown resource).
    """
    scopes = text.split()
    oidc = frozenset(s for s in scopes if s in OIDC_SCOPES)
    chosen: Optional[Tuple[Resource, str]] = None
    names: List[str] = []
    for scope in (s for s in scopes if s not in OIDC_SCOPES):
        identifier, name = _split(scope, resources)
        resource = _find(resources, identifier)
        if resource is None:
            raise refusal(500011, resource=identifier, tenant=tenant)
        if chosen is not None and chosen[0] != resource:
            if single_resource:
                raise refusal(70011, scope=scope)
            continue
        chosen = chosen or (resource, identifier)
        if name == ".default":
            names.extend(resource.scopes)
        elif name in resource.scopes:
            names.append(name)
        else:
            raise refusal(70011, scope=scope)
    if chosen is None:
        graph = _find(resources, GRAPH_APP_ID)
        if graph is None:
            raise refusal(70011, scope=text)
        chosen, names = (graph, graph.app_id_uri or graph.app_id), ["User.Read"]
    unique = tuple(dict.fromkeys(names))
    return ScopeGrant(resource=chosen[0], identifier=chosen[1], names=unique, oidc=oidc)


def parse_app_scope(text: str, resources: Sequence[Resource], *, tenant: str) -> ScopeGrant:
    """Resolve a client-credentials scope: exactly one ``<resource>/.default``.

    Raises:
        Refusal: AADSTS1002012 (not a lone ``/.default`` scope), 500011 (unknown resource).
    """
    scopes = text.split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise refusal(1002012, scope=text)
    identifier = scopes[0][: -len("/.default")]
    resource = _find(resources, identifier)
    if resource is None:
        raise refusal(500011, resource=identifier, tenant=tenant)
    return ScopeGrant(resource=resource, identifier=identifier, names=())
