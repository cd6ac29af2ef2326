"""The APIs tokens are issued for: :class:`Resource`, and the Microsoft first-party ones every tenant has.

Every Entra tenant holds service principals for Microsoft's own APIs, so any tenant can be asked
for a token for Azure Resource Manager, Storage, Key Vault, Microsoft Graph, Azure SQL or Azure
Databricks. :func:`first_party_resources` describes them as the emulator serves them: their
application ids, the identifiers a scope may name them by (the ``aud`` of a v1 token is the
identifier the request used), their delegated permissions and their access-token version.

All six take v1 tokens (``iss`` ``https://sts.windows.net/{tid}/``, ``ver`` ``"1.0"``, ``appid``):
for Azure Databricks that is a captured token (entra-protocol.md §5.3); for Graph, Resource
Manager, Storage, Key Vault and Azure SQL it is what Microsoft's published sample tokens show
(not captured in entra-protocol.md; a guess held with confidence). Their delegated permission is
``user_impersonation`` (Graph's are its named permissions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

from ..core.errors import ConfigError

__all__ = [
    "ARM_APP_ID",
    "DATABRICKS_APP_ID",
    "GRAPH_APP_ID",
    "KEY_VAULT_APP_ID",
    "SQL_APP_ID",
    "STORAGE_APP_ID",
    "Resource",
    "first_party_resources",
]

DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ARM_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
STORAGE_APP_ID = "e406a681-f3d4-42a8-90b6-c2b029497af1"
KEY_VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
SQL_APP_ID = "022907d3-0f1b-48f7-badc-1ba6abab6d66"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _identifier(value: str) -> str:
    """How identifiers are compared: case-insensitively, a trailing slash or not."""
    return value.rstrip("/").lower()


@dataclass(frozen=True)
class Resource:
    """An API that tokens can be issued for.

    Attributes:
        app_id: the resource's application id (a GUID); a valid scope prefix and ``aud``.
        display_name: the name used in messages.
        app_id_uri: an optional application id URI (``https://graph.microsoft.com``), also a prefix.
        scopes: delegated permission names (``user_impersonation``, ``User.Read``).
        access_token_version: 1 (``sts.windows.net`` issuer) or 2.
        step_up: a Conditional Access policy guards this resource: refreshing a token for it is
            answered with AADSTS50076 and a ``claims`` challenge, as for a ``step_up`` user.
        aliases: more identifier URIs naming the same API (Resource Manager is also
            ``https://management.core.windows.net/``); each is a scope prefix and becomes the
            ``aud`` of a v1 token asked for by it.
    """

    app_id: str
    display_name: str
    app_id_uri: Optional[str] = None
    scopes: Tuple[str, ...] = ()
    access_token_version: int = 1
    step_up: bool = False
    aliases: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _GUID.match(self.app_id):
            raise ConfigError("a resource's app_id must be a GUID")
        object.__setattr__(self, "app_id", self.app_id.lower())
        object.__setattr__(self, "scopes", tuple(self.scopes))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        if any(not isinstance(alias, str) or "://" not in alias for alias in self.aliases):
            raise ConfigError("a resource's aliases are URIs (scheme://...)")
        if self.access_token_version not in (1, 2):
            raise ConfigError("access_token_version must be 1 or 2")

    @property
    def identifiers(self) -> Tuple[str, ...]:
        """Every name a scope may use for this resource, lower case without a trailing slash."""
        uris = (self.app_id_uri, *self.aliases) if self.app_id_uri else self.aliases
        return tuple(dict.fromkeys((self.app_id, *(_identifier(uri) for uri in uris))))

    def known_as(self, identifier: str) -> bool:
        """True when ``identifier`` (an app id or URI, any case, a trailing slash or not) names this resource."""
        return _identifier(identifier) in self.identifiers


def first_party_resources() -> Tuple[Resource, ...]:
    """Azure Databricks, Microsoft Graph, Azure Resource Manager, Storage, Key Vault and Azure SQL."""
    impersonation = ("user_impersonation",)
    return (
        Resource(DATABRICKS_APP_ID, "AzureDatabricks", None, impersonation, 1),
        Resource(
            GRAPH_APP_ID,
            "Microsoft Graph",
            "https://graph.microsoft.com",
            ("User.Read", "User.ReadBasic.All", "Mail.Read", "Files.Read"),
            1,
        ),
        # The audience of Databricks' SP management token and of the azure-mgmt-* clients; Azure
        # CLI and older SDKs name it by its classic URI (whose v2 scope has a double slash).
        Resource(
            ARM_APP_ID,
            "Windows Azure Service Management API",
            "https://management.azure.com",
            impersonation,
            1,
            aliases=("https://management.core.windows.net/",),
        ),
        Resource(STORAGE_APP_ID, "Azure Storage", "https://storage.azure.com", impersonation, 1),
        Resource(KEY_VAULT_APP_ID, "Azure Key Vault", "https://vault.azure.net", impersonation, 1),
        # Azure SQL's identifier ends in a slash: ``https://database.windows.net//.default`` asks
        # for a token whose ``aud`` keeps it, as the ODBC driver and SqlClient expect.
        Resource(SQL_APP_ID, "Azure SQL Database", "https://database.windows.net/", impersonation, 1),
    )
