"""Azure Databricks over Entra ID: the workspace's tenant, and REST calls with the cached token.

The tenant comes from the workspace itself: ``GET https://<workspace>/aad/auth`` redirects to
``https://login.microsoftonline.com/<tenant id>/oauth2/authorize?...`` (databricks-sdk does the
same). REST calls send ``Authorization: Bearer`` through :class:`DatabricksAuth` (an
:class:`~oauth_core.integrations.httpx_auth.EntraAuth` for workspaces), plus, when given,
``X-Databricks-Azure-Workspace-Resource-Id`` and, for service principals,
``X-Databricks-Azure-SP-Management-Token`` (a token for Azure Resource Manager).
"""

from __future__ import annotations

import functools
import json
import re
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional, Tuple, Union
from urllib.parse import unquote, urlsplit

import httpx

from ..core.authority import CLOUD_ALIASES, is_loopback_host
from ..core.errors import ConfigError, InsecureAuthorityError, ResponseFormatError, TransportError
from ..core.flows import Scopes
from ..core.redaction import terminal_safe
from ..core.scopes import DATABRICKS_SCOPE
from ..drivers.deadline import call_budget
from ..drivers.retry import NetworkFailure, RetryableResponse, RetryPolicy, with_retries
from ..drivers.sync import EntraClient
from ..drivers.transport import clip_timeout, new_http_client, read_limited, to_http_response
from .httpx_auth import EntraAuth

if TYPE_CHECKING:
    from ..drivers.aio import AsyncEntraClient

__all__ = [
    "MANAGEMENT_SCOPE",
    "MAX_RESPONSE_BYTES",
    "SP_MANAGEMENT_TOKEN_HEADER",
    "WORKSPACE_DOMAINS",
    "WORKSPACE_RESOURCE_ID_HEADER",
    "DatabricksAuth",
    "build_workspace_resource_id",
    "call",
    "check_workspace_resource_id",
    "describe_error",
    "is_workspace_host",
    "management_scope",
    "normalize_host",
    "require_workspace_host",
    "resolve_workspace_resource_id",
    "workspace_tenant",
]

# Azure Resource Manager's resource id ends in a slash, so its v2 scope has two: Entra would
# otherwise issue a token whose audience lacks the slash, which Azure Databricks refuses.
MANAGEMENT_SCOPE = "https://management.core.windows.net//.default"
# The same resource in the sovereign clouds, by authority host (entra-protocol.md §1.7).
_GOV_MANAGEMENT_SCOPE = "https://management.core.usgovcloudapi.net//.default"
_CHINA_MANAGEMENT_SCOPE = "https://management.core.chinacloudapi.cn//.default"
_MANAGEMENT_SCOPES = {
    "login.microsoftonline.us": _GOV_MANAGEMENT_SCOPE,
    "login.usgovcloudapi.net": _GOV_MANAGEMENT_SCOPE,
    "login-us.microsoftonline.com": _GOV_MANAGEMENT_SCOPE,
    "login.partner.microsoftonline.cn": _CHINA_MANAGEMENT_SCOPE,
    "login.chinacloudapi.cn": _CHINA_MANAGEMENT_SCOPE,
}
RETRIED_STATUSES = frozenset({429, 503})  # the workspace's "too many requests" and "unavailable"
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
# Azure Databricks workspace DNS zones: public cloud, US Government, China (entra-protocol.md §1.7).
WORKSPACE_DOMAINS = (".azuredatabricks.net", ".databricks.azure.us", ".databricks.azure.cn")

_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_TENANT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_WORKSPACE_QUERY = re.compile(r"^(?:o=\d+)?$")  # the ?o=<workspace id> of URLs copied from a browser
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NO_AUTH = httpx.Auth()  # discovery sends no credentials, not even ones from .netrc
WORKSPACE_RESOURCE_ID_HEADER = "X-Databricks-Azure-Workspace-Resource-Id"
SP_MANAGEMENT_TOKEN_HEADER = "X-Databricks-Azure-SP-Management-Token"

_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_RESOURCE_GROUP = r"[A-Za-z0-9_.()-]{0,89}[A-Za-z0-9_()-]"  # 1-90 characters, not ending in a period
_WORKSPACE = r"[A-Za-z0-9_-]{1,64}"
_WORKSPACE_ID = re.compile(
    rf"/subscriptions/{_GUID}/resourcegroups/{_RESOURCE_GROUP}/providers/microsoft\.databricks/workspaces/{_WORKSPACE}",
    re.IGNORECASE,
)


def management_scope(authority_host: Optional[str] = None) -> str:
    """The Azure Resource Manager scope of the authority's cloud, for ``X-Databricks-Azure-SP-Management-Token``.

    Args:
        authority_host: the Entra authority (a URL, a host name or a cloud alias: ``usgov``,
            ``china``); None, the public cloud and any other host (an emulator) give
            :data:`MANAGEMENT_SCOPE`.

    Returns:
        ``https://management.core.windows.net//.default``, ``https://management.core.usgovcloudapi.net//.default``
        (US Government) or ``https://management.core.chinacloudapi.cn//.default`` (China).
    """
    text = (authority_host or "").strip()
    text = CLOUD_ALIASES.get(text.lower(), text)
    try:
        host = (urlsplit(text if "://" in text else "https://" + text).hostname or "").rstrip(".")
    except ValueError:
        return MANAGEMENT_SCOPE
    return _MANAGEMENT_SCOPES.get(host.lower(), MANAGEMENT_SCOPE)


def check_workspace_resource_id(resource_id: str) -> str:
    """Check the shape of an Azure Databricks workspace's ARM resource id.

    Args:
        resource_id: ``/subscriptions/<guid>/resourcegroups/<name>/providers/microsoft.databricks/workspaces/<name>``
            (any letter case, as the Azure portal shows it).

    Returns:
        The id, stripped of surrounding blanks and one trailing slash.

    Raises:
        ConfigError: it is not a workspace resource id.
    """
    text = resource_id.strip()
    text = text[:-1] if text.endswith("/") else text
    if not _WORKSPACE_ID.fullmatch(text):
        raise ConfigError(
            "the workspace resource id must look like /subscriptions/<subscription id>/resourcegroups/<group>"
            "/providers/microsoft.databricks/workspaces/<workspace>"
        )
    return text


def build_workspace_resource_id(subscription_id: str, resource_group: str, workspace_name: str) -> str:
    """The workspace's ARM resource id from its three names, in the form Azure Databricks documents.

    Raises:
        ConfigError: a name is empty or has characters Azure does not allow.
    """
    return check_workspace_resource_id(
        f"/subscriptions/{subscription_id.strip()}/resourcegroups/{resource_group.strip()}"
        f"/providers/microsoft.databricks/workspaces/{workspace_name.strip()}"
    )


def resolve_workspace_resource_id(
    resource_id: Optional[str],
    subscription_id: Optional[str] = None,
    resource_group: Optional[str] = None,
    workspace_name: Optional[str] = None,
) -> Optional[str]:
    """The workspace's ARM resource id, given as such or as its three names (or None when nothing is given).

    Raises:
        ConfigError: both an id and names, only some of the names, or a malformed id or name.
    """
    names = (subscription_id, resource_group, workspace_name)
    given = [name is not None for name in names]
    if resource_id is not None:
        if any(given):
            raise ConfigError("pass either workspace_resource_id or the subscription, group and workspace names")
        return check_workspace_resource_id(resource_id)
    if not any(given):
        return None
    if not all(given):
        raise ConfigError("subscription_id, resource_group and workspace_name go together: pass all three")
    return build_workspace_resource_id(*(str(name) for name in names))


class DatabricksAuth(EntraAuth):
    """An :class:`~oauth_core.integrations.httpx_auth.EntraAuth` for Azure Databricks workspaces.

    Use it as ``httpx.Client(auth=DatabricksAuth(client, workspace_resource_id=...))``. Besides the
    bearer token (for the Azure Databricks scope unless ``scopes`` says otherwise), each request
    carries the workspace headers it does not carry already.

    Args:
        client: an :class:`EntraClient` or ``AsyncEntraClient`` (see ``EntraAuth``).
        scopes, min_validity, account: as for ``EntraAuth``; ``scopes`` defaults to
            :data:`~oauth_core.core.scopes.DATABRICKS_SCOPE`.
        workspace_resource_id: the workspace's ARM resource id, sent as
            ``X-Databricks-Azure-Workspace-Resource-Id`` (Azure Databricks wants it from users who
            are not yet workspace users, and from service principals).
        subscription_id, resource_group, workspace_name: build that id instead (all three).
        management_token: a service principal's Azure Resource Manager token, sent as
            ``X-Databricks-Azure-SP-Management-Token`` (see :data:`MANAGEMENT_SCOPE`).

    Raises:
        ConfigError: as ``EntraAuth``, or a malformed resource id, or both an id and names (or
            only some of the names).
    """

    def __init__(
        self,
        client: Union[EntraClient, AsyncEntraClient],
        *,
        scopes: Scopes = DATABRICKS_SCOPE,
        min_validity: float = 300.0,
        account: Optional[str] = None,
        workspace_resource_id: Optional[str] = None,
        subscription_id: Optional[str] = None,
        resource_group: Optional[str] = None,
        workspace_name: Optional[str] = None,
        management_token: Optional[str] = None,
    ) -> None:
        resource_id = resolve_workspace_resource_id(
            workspace_resource_id, subscription_id, resource_group, workspace_name
        )
        headers: Dict[str, str] = {}
        if resource_id is not None:
            headers[WORKSPACE_RESOURCE_ID_HEADER] = resource_id
        if management_token is not None:
            headers[SP_MANAGEMENT_TOKEN_HEADER] = management_token
        super().__init__(client, scopes=scopes, min_validity=min_validity, account=account, headers=headers)
        self.workspace_resource_id = resource_id


def normalize_host(host: str) -> str:
    """The workspace's origin, ``https://adb-<id>.<n>.azuredatabricks.net``.

    Args:
        host: a host name or URL, with or without ``https://``, a trailing slash or ``?o=<id>``.

    Returns:
        ``scheme://host[:port]``.

    Raises:
        ConfigError: not a host or workspace URL (a path, credentials or a query in it).
        InsecureAuthorityError: plain http to a host that is not a loopback address.
    """
    text = host.strip()
    if not text:
        raise ConfigError("the workspace host is empty")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError("the workspace host is not a valid URL") from None
    hostname = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not (_HOSTNAME.fullmatch(hostname) or ":" in hostname):
        raise ConfigError("the workspace host must be a host name or an https URL")
    if parts.username is not None or parts.path not in ("", "/") or parts.fragment:
        raise ConfigError("the workspace host must be scheme://host[:port] only, with no path or credentials")
    if not _WORKSPACE_QUERY.fullmatch(parts.query):
        raise ConfigError("the workspace host must not carry a query string")
    if parts.scheme == "http" and not is_loopback_host(hostname):
        raise InsecureAuthorityError(
            f"refusing plain http to {hostname}: tokens go only over https, or http to a loopback address"
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname.lower()
    if port is not None and port != {"https": 443, "http": 80}[parts.scheme]:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


def is_workspace_host(hostname: str) -> bool:
    """True for an Azure Databricks workspace domain (any cloud) and for loopback hosts."""
    host = hostname.strip("[]").lower()
    if is_loopback_host(host):
        return True
    return any(host.endswith(domain) and len(host) > len(domain) for domain in WORKSPACE_DOMAINS)


def _allowed_hostnames(allowed_hosts: Iterable[str]) -> set[str]:
    names = set()
    for entry in allowed_hosts:
        if not entry.strip():
            raise ConfigError("an allowed workspace host is empty")
        names.add((urlsplit(normalize_host(entry)).hostname or "").lower())
    return names


def require_workspace_host(host: str, allowed_hosts: Iterable[str] = ()) -> str:
    """:func:`normalize_host`, refusing a host the workspace token must not be sent to.

    Args:
        host: the workspace host or URL.
        allowed_hosts: hosts (names or URLs) to accept besides the Azure Databricks domains
            (:data:`WORKSPACE_DOMAINS`) and loopback.

    Returns:
        The workspace origin, ``scheme://host[:port]``.

    Raises:
        ConfigError: a malformed host (or allowed host).
        InsecureAuthorityError: plain http to a remote host, or a host that is neither an Azure
            Databricks workspace domain, nor loopback, nor allowed.
    """
    origin = normalize_host(host)
    hostname = (urlsplit(origin).hostname or "").lower()
    if is_workspace_host(hostname) or hostname in _allowed_hostnames(allowed_hosts):
        return origin
    zones = ", ".join("*" + domain for domain in WORKSPACE_DOMAINS)
    raise InsecureAuthorityError(
        f"{hostname} is not an Azure Databricks workspace host ({zones}) nor loopback, so the token is not "
        f"sent to it: trust it explicitly with allowed_hosts=['{hostname}']"
    )


def workspace_tenant(host: str, *, http_client: Optional[httpx.Client] = None, timeout: float = 10.0) -> str:
    """The Entra tenant id of a workspace, from where its ``/aad/auth`` redirects.

    Args:
        host: the workspace host or URL (see :func:`normalize_host`).
        http_client: an ``httpx.Client`` to send with (its redirects are not followed).
        timeout: seconds for the request, when this function makes its own client.

    Returns:
        The tenant GUID, in lower case.

    Raises:
        ConfigError / InsecureAuthorityError: a bad host.
        TransportError: the workspace could not be reached, or failed (5xx).
        ResponseFormatError: it did not redirect to an Entra authorize URL with a tenant id.
    """
    url = normalize_host(host) + "/aad/auth"
    http = http_client or new_http_client(timeout)
    try:
        response = http.get(url, follow_redirects=False, auth=_NO_AUTH)
    except httpx.HTTPError as exc:
        raise TransportError(f"cannot reach the workspace for its tenant: {type(exc).__name__}") from None
    finally:
        if http_client is None:
            http.close()
    if response.status_code >= 500:
        raise TransportError(f"the workspace failed: HTTP {response.status_code} from /aad/auth")
    location: Optional[str] = response.headers.get("location")
    if response.status_code not in _REDIRECTS or not location:
        raise ResponseFormatError(
            "the workspace's /aad/auth did not redirect to Entra ID: is this an Azure Databricks workspace?",
            status=response.status_code,
        )
    try:
        segments = [s for s in urlsplit(location).path.split("/") if s]
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        segments = []
    if not segments or not _TENANT_ID.fullmatch(segments[0]):
        raise ResponseFormatError(
            "the workspace redirected to a URL without a tenant id; pass --tenant", status=response.status_code
        )
    return str(segments[0]).lower()


def _check_path(path: str) -> str:
    """A REST path of the workspace: ``/api/...`` and nothing that could leave the host."""
    if not path.startswith("/api/"):
        raise ConfigError("the path must start with /api/ (for example /api/2.0/clusters/list)")
    if any(ch.isspace() or not ch.isprintable() for ch in path) or "#" in path or "\\" in path:
        raise ConfigError("the path must not contain blanks, control characters, '#' or backslashes")
    route = path.split("?", 1)[0]
    if "//" in route or "@" in route or "://" in path:
        raise ConfigError("the path must not contain '//', '@' or a URL scheme")
    if any(segment in (".", "..") for segment in unquote(route).split("/")):
        raise ConfigError("the path must not contain '.' or '..' segments")
    return path


def _parse_body(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past what Python parses
        return body.decode("utf-8", errors="replace")


def call(
    client: EntraClient,
    host: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    resource_id: Optional[str] = None,
    management_token: Optional[str] = None,
    scopes: Scopes = DATABRICKS_SCOPE,
    account: Optional[str] = None,
    http_client: Optional[httpx.Client] = None,
    timeout: float = 30.0,
    allowed_hosts: Iterable[str] = (),
    retry: Optional[RetryPolicy] = None,
) -> Tuple[int, Any]:
    """Call a workspace REST path with a token from ``client``'s cache, as the Azure Databricks docs do.

    The workspace's own 429 and 503 are retried, waiting its ``Retry-After`` (else backing off),
    with ``retry`` (the client's :class:`RetryPolicy` by default); the whole call ends within the
    budget a token request gets (``timeout x max_attempts`` plus the backoff, at most
    ``retry.deadline``), and a ``Retry-After`` beyond what is left of it (or beyond
    ``max_retry_after``) is not waited for.

    Args:
        client: signed in already (or holding a cache with a refreshable token).
        host: the workspace host or URL (see :func:`normalize_host`).
        method: GET, POST, PUT, PATCH, DELETE or HEAD.
        path: ``/api/...`` with an optional query string, e.g. ``/api/2.0/clusters/list``.
        json_body: sent as JSON when not None.
        resource_id: the workspace's ARM resource id (``X-Databricks-Azure-Workspace-Resource-Id``).
        management_token: a service principal's Azure Resource Manager token
            (``X-Databricks-Azure-SP-Management-Token``; see :func:`management_scope`).
        scopes: the token's scopes (Azure Databricks by default).
        account: which cached account, when the cache holds several.
        http_client: an ``httpx.Client`` to send with (redirects are not followed).
        timeout: seconds for each attempt (when this function makes its own client) and the base of the call's budget.
        allowed_hosts: hosts to send the token to besides Azure Databricks domains and loopback
            (see :func:`require_workspace_host`).
        retry: how to retry the workspace's 429 and 503 (``client.retry`` when None).

    Returns:
        The HTTP status and the body: parsed JSON, else text, or None when empty.

    Raises:
        ConfigError: a bad host, method, path, JSON body or resource id.
        InsecureAuthorityError: a host that is not a workspace (nothing is sent).
        InteractionRequired: no cached token can be refreshed, or the workspace sent a claims challenge.
        Throttled: the workspace kept answering 429/503 with a ``Retry-After`` (``retry_after``,
            ``until`` say when to call again); TransientError: the same without one.
        TransportError: the workspace could not be reached.
        ResponseFormatError: the answer was too large.
    """
    verb = method.strip().upper()
    if verb not in METHODS:
        raise ConfigError(f"the method must be one of {', '.join(sorted(METHODS))}")
    origin = httpx.URL(require_workspace_host(host, allowed_hosts))
    try:
        url = origin.join(_check_path(path))
    except httpx.InvalidURL:
        raise ConfigError("the path is not a valid URL path") from None
    if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
        raise ConfigError("the path must stay on the workspace host")  # pragma: no cover - _check_path prevents it
    auth = DatabricksAuth(
        client, scopes=scopes, account=account, workspace_resource_id=resource_id, management_token=management_token
    )
    policy = retry or getattr(client, "retry", None) or RetryPolicy()
    budget = call_budget(policy, timeout)
    until = None if budget is None else time.monotonic() + budget
    http = http_client or new_http_client(timeout)
    try:
        request = _request(http, verb, url, json_body)  # sent again as it is: the auth flow sets its token
        send = functools.partial(_send_once, http, request, auth, until)
        status, body = with_retries(send, policy, until, service="Azure Databricks")
    except NetworkFailure as exc:  # only the deadline: every other failure is a TransportError at once
        raise TransportError(f"{verb} {url.path} failed: the call's deadline was reached") from exc
    finally:
        if http_client is None:
            http.close()
    return status, _parse_body(body)


def _request(http: httpx.Client, verb: str, url: httpx.URL, json_body: Any) -> httpx.Request:
    try:
        return http.build_request(verb, url, headers={"accept": "application/json"}, json=json_body)
    except (TypeError, ValueError):
        raise ConfigError("the JSON body cannot be sent: NaN, Infinity and non-JSON values are not allowed") from None


def _send_once(
    http: httpx.Client, request: httpx.Request, auth: httpx.Auth, until: Optional[float]
) -> Tuple[int, bytes]:
    """One attempt: its status and body; a 429/503 is raised for the retry loop.

    Raises:
        RetryableResponse: the workspace answered 429 or 503.
        TransportError / ResponseFormatError: it could not be reached; its answer was too large.
    """
    if until is not None:
        clipped = clip_timeout(http.timeout, until)  # DeadlineReached when no time is left
        if clipped is not None:
            request.extensions["timeout"] = clipped.as_dict()
    try:
        response = http.send(request, auth=auth, follow_redirects=False, stream=True)
        try:
            body = b"".join(read_limited(response, MAX_RESPONSE_BYTES, until=until))
        finally:
            response.close()
    except httpx.HTTPError as exc:
        raise TransportError(f"{request.method} {request.url.path} failed: {type(exc).__name__}") from None
    if response.status_code in RETRIED_STATUSES:
        raise RetryableResponse(to_http_response(response, body))
    return response.status_code, body


def describe_error(status: int, body: Any) -> str:
    """One line for a failed call: the status and Databricks' ``error_code`` and ``message``."""
    text = f"Azure Databricks answered HTTP {status}"
    if isinstance(body, dict):
        code, message = body.get("error_code"), body.get("message") or body.get("error")
        detail = ": ".join(str(part) for part in (code, message) if isinstance(part, str) and part)
    elif isinstance(body, str):
        detail = body.strip().splitlines()[0] if body.strip() else ""
    else:
        detail = ""
    if 300 <= status < 400:
        detail = detail or "a redirect (the token was not accepted, or this is not an API path)"
    detail = "".join(ch for ch in terminal_safe(detail) if ch.isprintable())[:500]
    return f"{text}: {detail}" if detail else text
