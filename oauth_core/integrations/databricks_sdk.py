"""``DatabricksCredentials``: Entra ID tokens for databricks-sdk and the Databricks SQL connector.

Both libraries take a credentials object of the same shape and call it for a *header factory*, a
callable returning the headers of one request:

- databricks-sdk: ``WorkspaceClient(host=..., credentials_strategy=DatabricksCredentials(client))``
  calls ``auth_type()`` and ``credentials(config)`` once, then the factory before every request;
- databricks-sql-connector: ``sql.connect(server_hostname=..., http_path=...,
  credentials_provider=DatabricksCredentials(client))`` calls ``credentials()`` (no argument) once,
  then the factory before every request.

Each call of the factory asks the token source for a token (``get_token``): a cache hit costs a
dictionary lookup, and the source refreshes the token ahead of its expiry. Neither library is
imported here: the shapes are duck-typed, so neither is a dependency.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional

from ..core.errors import ConfigError
from ..core.flows import Scopes
from ..core.scopes import DATABRICKS_SCOPE, normalize_scopes
from .databricks import WORKSPACE_RESOURCE_ID_HEADER, resolve_workspace_resource_id

__all__ = ["AUTH_TYPE", "DatabricksCredentials", "HeaderFactory"]

AUTH_TYPE = "oauth-core"
HeaderFactory = Callable[[], Dict[str, str]]


class DatabricksCredentials:
    """A databricks-sdk ``CredentialsStrategy`` and SQL connector ``credentials_provider`` over any token source.

    Args:
        source: where tokens come from: anything with ``get_token(scopes=..., min_validity=...[,
            account=...])`` returning a TokenSet (``EntraClient``, ``ManagedIdentity``,
            ``WorkloadIdentity``, ``DefaultCredential``, or one of your own). It must be
            synchronous: both libraries call the header factory from their own threads.
        workspace_resource_id: the workspace's ARM resource id, sent as
            ``X-Databricks-Azure-Workspace-Resource-Id`` (Azure Databricks wants it from service
            principals, and from users who are not yet workspace users).
        scopes: the token's scopes; the Azure Databricks scope by default.
        account: which cached account, when the source's cache holds several (``"app"`` for a
            service principal's app-only token); passed to ``get_token`` only when given.
        min_validity: seconds a token must still be valid to be sent.

    Raises:
        ConfigError: a source without ``get_token`` or with an async one, a malformed resource id,
            or a bad ``min_validity``.
    """

    def __init__(
        self,
        source: Any,
        workspace_resource_id: Optional[str] = None,
        *,
        scopes: Scopes = None,
        account: Optional[str] = None,
        min_validity: float = 300.0,
    ) -> None:
        get_token = getattr(source, "get_token", None)
        if not callable(get_token):
            raise ConfigError(
                "DatabricksCredentials needs a token source: an EntraClient, ManagedIdentity, "
                "WorkloadIdentity or DefaultCredential"
            )
        if inspect.iscoroutinefunction(get_token):
            raise ConfigError(
                "DatabricksCredentials needs a synchronous token source (databricks-sdk and the SQL "
                "connector call it from their own threads): use EntraClient, not AsyncEntraClient"
            )
        if isinstance(min_validity, bool) or not (0 <= min_validity < 86400):
            raise ConfigError("min_validity must be between 0 and 86400 seconds")
        self._source = source
        self.scopes = normalize_scopes(scopes, default=DATABRICKS_SCOPE)
        self.account = account
        self.min_validity = float(min_validity)
        self.workspace_resource_id = resolve_workspace_resource_id(workspace_resource_id)

    def auth_type(self) -> str:
        """The name databricks-sdk reports for this credential (``config.auth_type``)."""
        return AUTH_TYPE

    def __call__(self, config: object = None) -> HeaderFactory:
        """The header factory: databricks-sdk passes its ``Config`` (unused), the SQL connector nothing."""
        return self.headers

    def headers(self) -> Dict[str, str]:
        """The headers of one request: ``Authorization: Bearer <token>`` and the workspace resource id.

        Raises:
            InteractionRequired: nothing cached can be refreshed; a person must sign in.
            TransientError / ResponseFormatError: the refresh failed and no valid token is left.
        """
        options: Dict[str, Any] = {"scopes": self.scopes, "min_validity": self.min_validity}
        if self.account is not None:
            options["account"] = self.account
        token = self._source.get_token(**options)
        headers = {"Authorization": f"Bearer {token.access_token}"}
        if self.workspace_resource_id is not None:
            headers[WORKSPACE_RESOURCE_ID_HEADER] = self.workspace_resource_id
        return headers

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source={self._source!r}, scopes={self.scopes!r}, "
            f"workspace_resource_id={self.workspace_resource_id!r})"
        )
