"""A stand-in Azure Databricks workspace on the emulator's own origin: the REST calls SDKs make first.

Point ``databricks.sdk.WorkspaceClient(host=emulator.url, ...)`` (or any REST client) at the
emulator and these answer as a workspace does:

- ``GET /.well-known/databricks-config``: the host metadata databricks-sdk reads when a client is
  built (``workspace_id``, ``cloud``, ``oidc_endpoint``); no credentials needed.
- ``GET /aad/auth``: a redirect to the tenant's authorize endpoint, whose first path segment is
  the tenant id (how databricks-sdk and :func:`workspace_tenant` find a workspace's tenant).
- ``GET /api/2.0/preview/scim/v2/Me``: the caller as a SCIM user (a service principal's
  ``userName`` is its application id).
- ``GET /api/2.1/clusters/list``: three clusters, :data:`PAGE_SIZE` a page unless ``page_size``
  asks otherwise, walked with ``next_page_token``; ``/api/2.0/clusters/list`` gives all at once.

The API endpoints take ``Authorization: Bearer <token>`` only when the token is one this emulator
signed (RS256, with one of its published keys), for the Azure Databricks resource (``aud``), from
its tenant (``iss``, ``tid``) and unexpired; anything else is a 401 with Databricks' error body
(``error_code`` ``UNAUTHENTICATED``; the messages are the emulator's own). A malformed
``X-Databricks-Azure-Workspace-Resource-Id`` is a 400 (its value is checked for shape only: the
stand-in belongs to no subscription). The request log records the header names of every request,
so a test can see that the resource id header was sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any, Dict, List, Optional, Tuple

from .config import DATABRICKS_APP_ID
from .service import Service
from .tokens import SKEW, v2_issuer
from .wire import JSON, Ctx, Request, Response

__all__ = ["PAGE_SIZE", "WORKSPACE_ENDPOINTS", "WORKSPACE_ID", "workspace_endpoint"]

WORKSPACE_ENDPOINTS = ("workspace_config", "workspace_login", "workspace_me", "workspace_clusters")
WORKSPACE_ID = "4242424242424242"
PAGE_SIZE = 2  # small, so that clients walk pages; the real service picks its own
MAX_PAGE_SIZE = 100
RESOURCE_ID_HEADER = "x-databricks-azure-workspace-resource-id"
_RESOURCE_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]{1,90}/providers/Microsoft\.Databricks/workspaces/[^/]{1,64}$",
    re.IGNORECASE,
)
_NOT_SENT = "Credential was not sent or was of an unsupported type for this API."
_CLUSTERS: Tuple[Tuple[str, str, str, int], ...] = (
    ("0611-084512-a1b2c3d4", "shared-autoscaling", "RUNNING", 2),
    ("0611-084533-e5f6a7b8", "etl-nightly", "TERMINATED", 4),
    ("0611-084547-c9d0e1f2", "ml-single-node", "PENDING", 0),
)


class _Refused(Exception):
    """A request the workspace answers with an error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _response(ctx: Ctx, body: Dict[str, Any], status: int = 200, extra: Tuple[Tuple[str, str], ...] = ()) -> Response:
    headers = (
        ("Content-Type", JSON),
        ("Cache-Control", "no-store"),
        ("x-databricks-org-id", WORKSPACE_ID),
        ("x-request-id", ctx.trace_id),
        *extra,
    )
    return Response(status, headers, json.dumps(body, separators=(",", ":")).encode("utf-8"))


def _segment(text: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None


def _invalid(reason: str) -> _Refused:
    return _Refused(401, "UNAUTHENTICATED", f"Invalid access token: {reason}.")


def _bearer_claims(svc: Service, request: Request, ctx: Ctx) -> Dict[str, Any]:
    """The claims of the request's bearer token, once its signature, audience, issuer and lifetime hold.

    Raises:
        _Refused: 401, no bearer token or one this workspace does not accept.
    """
    scheme, _, token = (request.header("authorization") or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _Refused(401, "UNAUTHENTICATED", _NOT_SENT)
    parts = token.split(".")
    header, claims = (_segment(parts[0]), _segment(parts[1])) if len(parts) == 3 else (None, None)
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _invalid("not a signed JWT")
    key = next((k for k in svc.keys if k.kid == header.get("kid")), None)
    try:
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (binascii.Error, ValueError):
        signature = b""
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    if header.get("alg") != "RS256" or key is None or not key.verifies(signing_input, signature):
        raise _invalid("the signature does not verify with the tenant's keys")
    _check_claims(svc, ctx, claims)
    return claims


def _check_claims(svc: Service, ctx: Ctx, claims: Dict[str, Any]) -> None:
    databricks = next((r for r in svc.config.resources if r.app_id == DATABRICKS_APP_ID), None)
    audience = claims.get("aud")
    if not isinstance(audience, str) or not (
        databricks.known_as(audience) if databricks else audience.lower() == DATABRICKS_APP_ID
    ):
        raise _invalid(f"the audience is not Azure Databricks ({DATABRICKS_APP_ID})")
    tenant = svc.config.tenant_id
    issuers = {f"https://sts.windows.net/{tenant}/", v2_issuer(ctx.origin, tenant), v2_issuer(svc.origin, tenant)}
    if claims.get("iss") not in issuers or claims.get("tid") != tenant:
        raise _invalid("the token was issued by another tenant")
    expires, not_before = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(expires, (int, float)) or not isinstance(not_before, (int, float)):
        raise _invalid("the token has no lifetime")
    if expires <= ctx.now:
        raise _invalid("the token has expired")
    if not_before > ctx.now + SKEW:
        raise _invalid("the token is not valid yet")


def _caller(svc: Service, claims: Dict[str, Any]) -> Dict[str, Any]:
    """The token's subject as a SCIM user."""
    object_id = str(claims.get("oid") or claims.get("sub") or "")
    scim_id = str(int(hashlib.sha256(object_id.encode()).hexdigest()[:13], 16))
    user: Dict[str, Any] = {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
        ],
        "id": scim_id,
    }
    if claims.get("idtyp") == "app" or "scp" not in claims:
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        client = svc.config.client(app_id)
        user.update({"userName": app_id, "displayName": client.display_name if client else app_id, "emails": []})
    else:
        name = str(claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username") or "")
        display = str(claims.get("name") or name)
        given, _, family = display.partition(" ")
        user.update(
            {
                "userName": name,
                "displayName": display,
                "name": {"givenName": claims.get("given_name", given), "familyName": claims.get("family_name", family)},
                "emails": [{"type": "work", "value": name, "primary": True}],
            }
        )
    user.update(
        {
            "externalId": object_id,
            "active": True,
            "groups": [
                {"display": "users", "type": "direct", "value": "1000000000000001", "$ref": "Groups/1000000000000001"}
            ],
            "entitlements": [{"value": "workspace-access"}, {"value": "databricks-sql-access"}],
        }
    )
    return user


def _cluster(entry: Tuple[str, str, str, int], creator: str) -> Dict[str, Any]:
    cluster_id, name, state, workers = entry
    return {
        "cluster_id": cluster_id,
        "cluster_name": name,
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "Standard_DS3_v2",
        "driver_node_type_id": "Standard_DS3_v2",
        "num_workers": workers,
        "autotermination_minutes": 60,
        "creator_user_name": creator,
        "cluster_source": "UI",
        "data_security_mode": "USER_ISOLATION",
        "state": state,
        "state_message": "",
        "default_tags": {"Vendor": "Databricks", "Creator": creator, "ClusterName": name, "ClusterId": cluster_id},
    }


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset={offset}".encode()).decode().rstrip("=")


def _offset(token: Optional[str]) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    name, _, value = text.partition("=")
    if name != "offset" or not value.isdigit() or int(value) > len(_CLUSTERS):
        raise _Refused(400, "INVALID_PARAMETER_VALUE", "The page_token is not one this API handed out.")
    return int(value)


def _page_size(request: Request) -> int:
    raw = request.param("page_size")
    if raw is None or raw == "":
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise _Refused(400, "INVALID_PARAMETER_VALUE", f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}.")
    return int(raw)


def _clusters(request: Request, creator: str, version: str) -> Dict[str, Any]:
    clusters: List[Dict[str, Any]] = [_cluster(entry, creator) for entry in _CLUSTERS]
    if version == "0":  # API 2.0: the whole list, no paging
        return {"clusters": clusters} if clusters else {}
    start, size = _offset(request.param("page_token")), _page_size(request)
    body: Dict[str, Any] = {"clusters": clusters[start : start + size]}
    if start + size < len(clusters):
        body["next_page_token"] = _page_token(start + size)
    if start > 0:
        body["prev_page_token"] = _page_token(max(0, start - size))
    return body


def _config(ctx: Ctx) -> Dict[str, Any]:
    # What a workspace publishes, as far as databricks-sdk reads it (the exact set is a guess).
    return {"oidc_endpoint": f"{ctx.origin}/oidc", "workspace_id": WORKSPACE_ID, "cloud": "AZURE"}


def workspace_endpoint(name: str, svc: Service, request: Request, ctx: Ctx, arg: str = "") -> Response:
    """Answer one workspace request (``name`` from :data:`WORKSPACE_ENDPOINTS`; ``arg`` the API version digit)."""
    if request.method not in ("GET", "HEAD"):
        body = {"error_code": "BAD_REQUEST", "message": f"{request.method} is not allowed here; use GET."}
        return _response(ctx, body, 405, (("Allow", "GET"),))
    if name == "workspace_config":
        return _response(ctx, _config(ctx))
    if name == "workspace_login":
        location = (
            f"{ctx.origin}/{svc.config.tenant_id}/oauth2/v2.0/authorize"
            f"?client_id={DATABRICKS_APP_ID}&response_type=code&scope=openid"
        )
        return Response(302, (("Location", location), ("Cache-Control", "no-store")), b"")
    try:
        claims = _bearer_claims(svc, request, ctx)
        sent = request.header(RESOURCE_ID_HEADER)
        if sent is not None and not _RESOURCE_ID.match(sent.strip()):
            raise _Refused(400, "INVALID_PARAMETER_VALUE", "The workspace resource id header is not an ARM id.")
        caller = _caller(svc, claims)
        if name == "workspace_me":
            return _response(ctx, caller)
        return _response(ctx, _clusters(request, str(caller["userName"]), arg))
    except _Refused as refused:
        return _response(ctx, {"error_code": refused.code, "message": refused.message}, refused.status)
