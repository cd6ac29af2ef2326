"""Routing and the metadata endpoints: one request in, one response out, no sockets.

:meth:`App.handle` is the whole service as a function; the socket server in :mod:`.server` only
parses HTTP and applies injected faults around it. Discovery, JWKS, instance discovery and user
realm follow entra-protocol.md §1.3-1.5; the flows live in :mod:`.authorize`, :mod:`.device`
and :mod:`.grants`, the stand-in AD FS (user realm, MEX, WS-Trust) in :mod:`.wstrust`, the
stand-in Azure Databricks workspace in :mod:`.workspace`.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from .aadsts import Refusal, error_response, refusal
from .arc import arc_endpoint
from .authorize import authorize_endpoint
from .device import devicecode_endpoint, devicelogin_endpoint
from .federation import federation_endpoint
from .grants import token_endpoint
from .identity import identity_endpoint
from .service import TENANT_ALIASES, Service
from .wire import (
    DISCOVERY_CACHE,
    Ctx,
    Request,
    Response,
    entra_headers,
    is_form,
    json_response,
    parse_form,
    split_url,
    timestamp,
)
from .workspace import WORKSPACE_ENDPOINTS, workspace_endpoint
from .wstrust import userrealm_body, wstrust_endpoint

__all__ = [
    "ENDPOINTS",
    "FEDERATION_ENDPOINTS",
    "IDENTITY_ENDPOINTS",
    "WORKSPACE_ENDPOINTS",
    "WSTRUST_ENDPOINTS",
    "App",
    "route",
]

CONSUMERS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
ENDPOINTS = ("authorize", "token", "devicecode", "devicelogin", "discovery", "keys", "instance", "userrealm")
WSTRUST_ENDPOINTS = ("mex", "usernamemixed")
IDENTITY_ENDPOINTS = ("imds", "appservice", "arc", "cloudshell", "azureml", "servicefabric")
FEDERATION_ENDPOINTS = ("federation", "federation_keys", "federation_mint")
_log = logging.getLogger(__name__)

_ROUTES: Tuple[Tuple[str, re.Pattern[str]], ...] = (
    ("instance", re.compile(r"^/common/discovery/instance$")),
    ("userrealm", re.compile(r"^/common/userrealm/([^/]+)$")),
    ("discovery", re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")),
    ("keys", re.compile(r"^/([^/]+)/discovery/v2\.0/keys$")),
    ("authorize", re.compile(r"^/([^/]+)/oauth2/v2\.0/authorize$")),
    ("token", re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")),
    ("devicecode", re.compile(r"^/([^/]+)/oauth2/v2\.0/devicecode$")),
    ("devicelogin", re.compile(r"^/devicelogin/?$")),
    ("imds", re.compile(r"^/metadata/identity/oauth2/token$")),
    ("appservice", re.compile(r"^/msi/token$")),
    ("arc", re.compile(r"^/arc/metadata/identity/oauth2/token$")),
    ("cloudshell", re.compile(r"^/cloudshell/oauth2/token$")),
    ("azureml", re.compile(r"^/azureml/msi/token$")),
    ("servicefabric", re.compile(r"^/servicefabric/metadata/identity/oauth2/token$")),
    ("federation", re.compile(r"^/federation/([^/]+)/\.well-known/openid-configuration$")),
    ("federation_keys", re.compile(r"^/federation/([^/]+)/openid/v1/jwks$")),
    ("federation_mint", re.compile(r"^/federation/([^/]+)/mint$")),
    ("mex", re.compile(r"^/adfs/services/trust/mex$")),
    ("usernamemixed", re.compile(r"^/adfs/services/trust/(13|2005)/usernamemixed$")),
    # the stand-in Azure Databricks workspace (.workspace)
    ("workspace_config", re.compile(r"^/\.well-known/databricks-config$")),
    ("workspace_login", re.compile(r"^/aad/auth$")),
    ("workspace_me", re.compile(r"^/api/2\.0/preview/scim/v2/Me$")),
    ("workspace_clusters", re.compile(r"^/api/2\.([01])/clusters/list$")),
)
_PUBLIC_CLOUDS: List[Dict[str, Any]] = [
    {
        "preferred_network": "login.microsoftonline.com",
        "preferred_cache": "login.windows.net",
        "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"],
    },
    {
        "preferred_network": "login.partner.microsoftonline.cn",
        "preferred_cache": "login.partner.microsoftonline.cn",
        "aliases": ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    },
    {
        "preferred_network": "login.microsoftonline.us",
        "preferred_cache": "login.microsoftonline.us",
        "aliases": ["login.microsoftonline.us", "login.usgovcloudapi.net"],
    },
]


def route(path: str) -> Tuple[str, Optional[str]]:
    """The endpoint name for a path (``notfound`` if none) and its path argument (tenant or username)."""
    for name, pattern in _ROUTES:
        match = pattern.match(path)
        if match:
            return name, unquote(match.group(1)) if match.groups() else None
    return "notfound", None


def grant_type_of(request: Request) -> Optional[str]:
    """The ``grant_type`` of a token request, for the request log (None when absent or unparsable)."""
    if not is_form(request):
        return None
    try:
        return parse_form(request.body).get("grant_type")
    except ValueError:
        return None


class App:
    """The emulated service: :meth:`handle` maps a request to a response and never raises."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._handled = 0

    def handle(self, request: Request) -> Response:
        """Serve one request. Refusals become Entra error bodies; a bug becomes a bare 500."""
        ctx = self.service.ctx(request)
        name, arg = route(request.path)
        self._housekeeping(ctx.now)
        try:
            return self._dispatch(name, arg or "", request, ctx)
        except Refusal as refused:
            return error_response(refused, ctx)
        except Exception:  # a bug: log it, never send a traceback
            _log.exception("emulator failed on %s %s", request.method, request.path)
            body = {"error": "server_error", "error_description": "The emulator failed.", "trace_id": ctx.trace_id}
            return json_response(ctx, body, status=500)

    def _housekeeping(self, now: float) -> None:
        self._handled += 1
        if self._handled % 256 == 0:
            cfg = self.service.config
            self.service.store.prune(now, keep=max(cfg.code_lifetime, cfg.device_code_lifetime) + 3600)

    def _dispatch(self, name: str, arg: str, request: Request, ctx: Ctx) -> Response:
        if name == "arc":
            return arc_endpoint(self.service, request, ctx)
        if name in IDENTITY_ENDPOINTS:
            return identity_endpoint(name, self.service, request, ctx)
        if name in FEDERATION_ENDPOINTS:
            return federation_endpoint(name, self.service, request, ctx, arg)
        if name in WSTRUST_ENDPOINTS:
            return wstrust_endpoint(name, self.service, request, ctx, arg)
        if name in WORKSPACE_ENDPOINTS:
            return workspace_endpoint(name, self.service, request, ctx, arg)
        handlers: Dict[str, Callable[[], Response]] = {
            "token": lambda: token_endpoint(self.service, request, ctx, arg),
            "authorize": lambda: authorize_endpoint(self.service, request, ctx, arg),
            "devicecode": lambda: devicecode_endpoint(self.service, request, ctx, arg),
            "devicelogin": lambda: devicelogin_endpoint(self.service, request, ctx),
            "discovery": lambda: self._discovery(ctx, arg),
            "keys": lambda: self._keys(ctx, arg),
            "instance": lambda: self._instance(request, ctx),
            "userrealm": lambda: self._userrealm(ctx, arg),
        }
        if name not in handlers:
            return _not_found(request, ctx)
        if name in ("discovery", "keys", "instance", "userrealm") and request.method not in ("GET", "HEAD"):
            if request.method == "OPTIONS":  # a CORS preflight: the headers are the answer
                return Response(200, entra_headers(ctx, cache=DISCOVERY_CACHE), b"")
            return _not_allowed(ctx)
        return handlers[name]()

    def _tenant(self, segment: str) -> str:
        tenant = self.service.tenant(segment)
        if tenant is None:
            raise refusal(90002, error="invalid_tenant", tenant=segment)
        return tenant

    def _discovery(self, ctx: Ctx, segment: str) -> Response:
        tenant = self._tenant(segment)
        alias = tenant in TENANT_ALIASES
        base = f"{ctx.origin}/{tenant}"
        if tenant == "consumers":
            issuer = f"{ctx.origin}/{CONSUMERS_TENANT}/v2.0"
        else:
            issuer = f"{ctx.origin}/{{tenantid}}/v2.0" if alias else f"{base}/v2.0"
        doc: Dict[str, Any] = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": _CLAIMS_SUPPORTED,
        }
        if not alias:
            doc["kerberos_endpoint"] = f"{base}/kerberos"
        doc.update(
            {
                "tenant_region_scope": None if alias else "WW",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            }
        )
        return json_response(ctx, doc, cache=DISCOVERY_CACHE)

    def _keys(self, ctx: Ctx, segment: str) -> Response:
        self._tenant(segment)
        issuer = f"{ctx.origin}/{{tenantid}}/v2.0"
        return json_response(ctx, {"keys": [key.jwk(issuer) for key in self.service.keys]}, cache=DISCOVERY_CACHE)

    def _instance(self, request: Request, ctx: Ctx) -> Response:
        origin = urlsplit(ctx.origin)
        host = origin.netloc
        ours = list(dict.fromkeys([host, *(f"{name}:{origin.port}" for name in ("127.0.0.1", "localhost", "[::1]"))]))
        tenant = "organizations"
        asked = request.param("authorization_endpoint")
        if asked:
            parts = split_url(asked)
            known = {alias for cloud in _PUBLIC_CLOUDS for alias in cloud["aliases"]}
            if parts is None or (parts.netloc not in ours and parts.hostname not in known):
                raise refusal(50049)
            tenant = parts.path.strip("/").split("/")[0] or tenant
        body = {
            "tenant_discovery_endpoint": f"{ctx.origin}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": ours}, *_PUBLIC_CLOUDS],
        }
        return json_response(ctx, body, cache=DISCOVERY_CACHE)

    def _userrealm(self, ctx: Ctx, username: str) -> Response:
        return json_response(ctx, userrealm_body(self.service, ctx.origin, username))


_CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
]


def _not_found(request: Request, ctx: Ctx) -> Response:
    body = {
        "error": "not_found",
        "error_description": f"The path {request.path} is not an endpoint of this service.",
        "timestamp": timestamp(ctx.now),
        "trace_id": ctx.trace_id,
        "correlation_id": ctx.correlation_id,
    }
    return json_response(ctx, body, status=404)


def _not_allowed(ctx: Ctx) -> Response:
    body = {
        "error": "invalid_request",
        "error_description": "This endpoint only accepts GET.",
        "trace_id": ctx.trace_id,
    }
    response = json_response(ctx, body, status=405)
    return Response(response.status, (*response.headers, ("Allow", "GET")), response.body)
