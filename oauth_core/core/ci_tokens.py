"""CI services' OIDC tokens, sans-I/O: the requests GitHub Actions and Azure Pipelines answer with
a signed JWT that Entra accepts as a federated client assertion (entra-protocol-2.md §2.4)."""

from __future__ import annotations

from typing import Mapping, Tuple
from urllib.parse import quote, urlsplit

from .authority import is_loopback_host
from .errors import ConfigError, InsecureAuthorityError, ResponseFormatError
from .messages import HttpRequest, HttpResponse, parse_json_object

__all__ = [
    "FEDERATION_AUDIENCE",
    "github_actions_request",
    "parse_ci_token",
    "pipelines_request",
]

FEDERATION_AUDIENCE = "api://AzureADTokenExchange"  # what Entra's federated credentials expect by default


def _required(env: Mapping[str, str], *names: str) -> Tuple[str, ...]:
    values = tuple((env.get(name) or "").strip() for name in names)
    missing = [name for name, value in zip(names, values) if not value]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} not set: is this a CI job allowed to request OIDC tokens?")
    return values


def _checked_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.fragment:
        raise ConfigError(f"{name} is not a usable URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InsecureAuthorityError(
            f"{name} must be https (plain http only to loopback): the request carries a secret"
        )
    return url


def github_actions_request(env: Mapping[str, str], audience: str = FEDERATION_AUDIENCE) -> HttpRequest:
    """GitHub Actions' token request: GET ``$ACTIONS_ID_TOKEN_REQUEST_URL&audience=...`` with the job's bearer token.

    Raises:
        ConfigError: the variables are missing (the job lacks ``permissions: id-token: write``).
    """
    url, token = _required(env, "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    _checked_url(url, "ACTIONS_ID_TOKEN_REQUEST_URL")
    joiner = "&" if urlsplit(url).query else "?"
    return HttpRequest(
        "GET",
        f"{url}{joiner}audience={quote(audience, safe='')}",
        headers=(("authorization", f"Bearer {token}"), ("accept", "application/json")),
    )


def pipelines_request(env: Mapping[str, str], service_connection_id: str) -> HttpRequest:
    """Azure Pipelines' token request for one service connection (``SYSTEM_OIDCREQUESTURI``,
    ``SYSTEM_ACCESSTOKEN``)."""
    url, token = _required(env, "SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN")
    if not service_connection_id.strip():
        raise ConfigError("the Azure Pipelines service connection id is empty")
    _checked_url(url, "SYSTEM_OIDCREQUESTURI")
    query = f"api-version=7.1&serviceConnectionId={quote(service_connection_id.strip(), safe='')}"
    return HttpRequest(
        "POST",
        f"{url}{'&' if urlsplit(url).query else '?'}{query}",
        headers=(
            ("authorization", f"Bearer {token}"),
            ("content-type", "application/json"),
            ("x-tfs-fedauthredirect", "Suppress"),
        ),
    )


def parse_ci_token(response: HttpResponse, field: str) -> str:
    """The JWT in ``field`` (``value`` for GitHub, ``oidcToken`` for Azure Pipelines).

    Raises:
        ConfigError: the service refused (401/403: the job may not request tokens).
        ResponseFormatError: anything else that is not a token.
    """
    if response.status in (401, 403):
        raise ConfigError(f"the CI service refused the OIDC token request (HTTP {response.status})")
    body = parse_json_object(response)
    value = body.get(field)
    if response.status != 200 or not isinstance(value, str) or value.count(".") != 2:
        raise ResponseFormatError(
            f"the CI service's answer holds no OIDC token (HTTP {response.status})", status=response.status
        )
    return value
