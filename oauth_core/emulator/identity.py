"""Managed identity token sources: IMDS, App Service, Azure ML, Cloud Shell and Service Fabric.

Each source answers with its own request and response shape (entra-protocol-2.md §1.2-1.4); Azure
Arc's challenge lives in :mod:`.arc`. The tokens are RS256 app-only access tokens for the selected
identity, signed by the tenant's key, shaped like Entra's (``appid``/``azp`` the identity's client
id, ``oid``/``sub`` its object id, ``idtyp: app``, ``xms_mirid`` its ARM id).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from .aadsts import Refusal, describe
from .config import ManagedIdentity, User
from .keys import SigningKey
from .scopes import ScopeGrant, parse_app_scope
from .service import Service
from .tokens import SKEW, sign_jwt, v2_issuer
from .wire import JSON, Ctx, FormError, Pairs, Request, Response, is_form, parse_form

__all__ = [
    "AZURE_CLI_APP_ID",
    "MI_LIFETIME",
    "IdentityError",
    "MiToken",
    "find_identity",
    "identity_endpoint",
    "mint_identity_token",
    "mi_response",
    "selectors_of",
]

MI_LIFETIME = 86399  # managed identity tokens live about a day (the endpoints cache them)
AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # the client Cloud Shell's user tokens are issued to
_SELECTORS = {
    "imds": {"client_id": "client_id", "object_id": "object_id", "msi_res_id": "resource_id"},
    "appservice": {
        "client_id": "client_id",
        "principal_id": "object_id",
        "object_id": "object_id",  # the documented alias of principal_id, and what MSAL sends
        "mi_res_id": "resource_id",
    },
    "azureml": {
        "clientid": "client_id",
        "client_id": "client_id",
        "object_id": "object_id",
        "msi_res_id": "resource_id",
    },
}
_API_VERSIONS = {"imds": ("2018-02-01",), "appservice": ("2019-08-01",), "azureml": ("2017-09-01",)}


class IdentityError(Exception):
    """A managed identity endpoint's refusal, already in that endpoint's own body shape."""

    def __init__(self, status: int, body: Dict[str, Any], headers: Pairs = ()) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body, self.headers = status, body, headers


@dataclass(frozen=True)
class MiToken:
    """A minted managed identity token and the times its response quotes."""

    access_token: str
    resource: str
    identity: ManagedIdentity
    expires_on: int
    not_before: int
    lifetime: int


def mi_response(status: int, body: Dict[str, Any], headers: Pairs = ()) -> Response:
    """A plain JSON response, as the local identity endpoints send (no Entra cookies or headers)."""
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return Response(status, (("Content-Type", JSON), ("Cache-Control", "no-store"), *headers), data)


def find_identity(svc: Service, selectors: Mapping[str, str]) -> Optional[ManagedIdentity]:
    """The identity a request selects (``client_id``/``object_id``/``resource_id`` keys), or None.

    No selector means the system-assigned identity, or the only user-assigned one when the machine
    has no system identity (as IMDS does).
    """
    cfg = svc.config
    if not selectors:
        if cfg.system_identity is not None:
            return cfg.system_identity
        return cfg.user_identities[0] if len(cfg.user_identities) == 1 else None
    kind, value = next(iter(selectors.items()))
    wanted = value.strip().lower()
    candidates: Tuple[ManagedIdentity, ...] = (*cfg.user_identities, *filter(None, (cfg.system_identity,)))
    return next((i for i in candidates if str(getattr(i, kind)).lower() == wanted), None)


def selectors_of(request: Request, source: str, error: Dict[str, Any]) -> Dict[str, str]:
    """The identity selector of a request, by attribute name; more than one is refused with ``error``."""
    given = [(name, value) for name in _SELECTORS[source] for value in [request.param(name)] if value]
    if len(given) > 1:
        raise IdentityError(400, error)
    return {_SELECTORS[source][name]: value for name, value in given}


def _resource_grant(svc: Service, ctx: Ctx, resource: str) -> Tuple[Optional[ScopeGrant], Optional[Refusal]]:
    try:
        return parse_app_scope(
            resource.rstrip("/") + "/.default", svc.config.resources, tenant=svc.config.tenant_id
        ), None
    except Refusal as refused:
        return None, refused


def mint_identity_token(svc: Service, ctx: Ctx, identity: ManagedIdentity, resource: str) -> MiToken:
    """Sign an app-only token for ``identity`` and ``resource`` (an app id or app id URI).

    Raises:
        IdentityError: the resource is unknown (IMDS's ``invalid_resource`` body with AADSTS500011).
    """
    grant, refused = _resource_grant(svc, ctx, resource)
    if grant is None:
        assert refused is not None
        raise IdentityError(400, {"error": "invalid_resource", "error_description": describe(refused, ctx)})
    now = int(ctx.now)
    lifetime = svc.config.token_lifetime or MI_LIFETIME
    claims = _base_claims(svc, ctx, grant, resource, now, lifetime)
    v1 = grant.resource.access_token_version == 1
    claims.update(
        {
            ("appid" if v1 else "azp"): identity.client_id,
            ("appidacr" if v1 else "azpacr"): "2",
            **({"idp": claims["iss"]} if v1 else {}),
            "idtyp": "app",
            "oid": identity.object_id,
            "rh": "0.A" + secrets.token_urlsafe(40),
            "sub": identity.object_id,
            "tid": svc.config.tenant_id,
            "uti": secrets.token_urlsafe(16)[:22],
            "ver": "1.0" if v1 else "2.0",
            "xms_mirid": identity.resource_id,
        }
    )
    token = _sign(claims, svc.keys[0], v1)
    return MiToken(token, resource, identity, now + lifetime, now - SKEW, lifetime)


def _base_claims(svc: Service, ctx: Ctx, grant: ScopeGrant, resource: str, now: int, lifetime: int) -> Dict[str, Any]:
    v1 = grant.resource.access_token_version == 1
    tenant = svc.config.tenant_id
    return {
        "aud": resource if v1 else grant.resource.app_id,
        "iss": f"https://sts.windows.net/{tenant}/" if v1 else v2_issuer(ctx.origin, tenant),
        "iat": now - SKEW,
        "nbf": now - SKEW,
        "exp": now + lifetime,
        "aio": "A" + secrets.token_urlsafe(60),
    }


def _sign(claims: Dict[str, Any], key: SigningKey, v1: bool) -> str:
    header: Dict[str, Any] = {"typ": "JWT", "alg": "RS256", **({"x5t": key.kid} if v1 else {}), "kid": key.kid}
    return sign_jwt(header, claims, key)


def _user_token(svc: Service, ctx: Ctx, user: User, resource: str) -> Tuple[str, int]:
    grant, refused = _resource_grant(svc, ctx, resource)
    if grant is None:
        assert refused is not None
        raise IdentityError(400, {"error": {"code": "invalid_resource", "message": describe(refused, ctx)}})
    now = int(ctx.now)
    lifetime = svc.lifetime()
    claims = _base_claims(svc, ctx, grant, resource, now, lifetime)
    given, _, family = user.display_name.partition(" ")
    claims.update(
        {
            "amr": ["pwd"],
            "appid": AZURE_CLI_APP_ID,
            "appidacr": "0",
            "family_name": family or given,
            "given_name": given,
            "name": user.display_name,
            "oid": user.object_id,
            "scp": " ".join(grant.resource.scopes) or "user_impersonation",
            "sub": user.object_id,
            "tid": svc.config.tenant_id,
            "unique_name": user.username,
            "upn": user.username,
            "ver": "1.0",
        }
    )
    return _sign(claims, svc.keys[0], True), lifetime


def _imds_error(error: str, description: str) -> Dict[str, Any]:
    return {"error": error, "error_description": description}


def _require_version(request: Request, source: str, error: Dict[str, Any]) -> None:
    if request.param("api-version") not in _API_VERSIONS[source]:
        raise IdentityError(400, error)


def imds(svc: Service, request: Request, ctx: Ctx) -> Response:
    """``GET /metadata/identity/oauth2/token`` (the VM's IMDS, also the pod-identity host)."""
    if request.header("metadata") != "true":  # before anything else: clients probe with this
        raise IdentityError(400, _imds_error("bad_request_102", "Required metadata header not specified"))
    if request.method != "GET":
        raise IdentityError(405, _imds_error("invalid_request", "The request method is not supported."))
    if not request.param("api-version"):
        raise IdentityError(400, _imds_error("invalid_request", "Required query variable 'api-version' is missing"))
    _require_version(request, "imds", _imds_error("invalid_request", "Invalid api-version"))
    resource = request.param("resource")
    if not resource:
        raise IdentityError(400, _imds_error("invalid_request", "Required query variable 'resource' is missing"))
    selectors = selectors_of(request, "imds", _imds_error("invalid_request", "Multiple identities specified"))
    identity = find_identity(svc, selectors)
    if identity is None:
        many = not selectors and svc.config.system_identity is None and len(svc.config.user_identities) > 1
        text = (
            "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in "
            "the token request"
            if many
            else "Identity not found"
        )
        raise IdentityError(400, _imds_error("invalid_request", text))
    return mi_response(200, imds_body(mint_identity_token(svc, ctx, identity, resource)))


def imds_body(token: MiToken) -> Dict[str, Any]:
    """IMDS's token JSON: every number a string (entra-protocol-2.md §1.3); Arc answers the same."""
    return {
        "access_token": token.access_token,
        "client_id": token.identity.client_id,
        "expires_in": str(token.lifetime),
        "expires_on": str(token.expires_on),
        "ext_expires_in": str(token.lifetime),
        "not_before": str(token.not_before),
        "resource": token.resource,
        "token_type": "Bearer",
    }


def _app_service_error(ctx: Ctx, status: int, message: str) -> IdentityError:
    return IdentityError(status, {"statusCode": status, "message": message, "correlationId": ctx.correlation_id})


def app_service(svc: Service, request: Request, ctx: Ctx) -> Response:
    """``GET /msi/token`` with ``X-IDENTITY-HEADER`` (App Service, Functions, Container Apps; 2019-08-01)."""
    sent = request.header("x-identity-header")
    # The status for a missing or wrong header is unconfirmed; the body is App Service's error shape.
    if sent is None or not secrets.compare_digest(sent.encode(), svc.identity_header.encode()):
        raise _app_service_error(ctx, 401, "The X-IDENTITY-HEADER header is missing or not valid.")
    if request.param("api-version") not in _API_VERSIONS["appservice"]:
        raise _app_service_error(ctx, 400, "The api-version is missing or not supported; use 2019-08-01.")
    resource = request.param("resource")
    if not resource:
        raise _app_service_error(ctx, 400, "The resource parameter is required.")
    error = {"statusCode": 400, "message": "Only one of client_id, principal_id or mi_res_id may be given."}
    identity = find_identity(svc, selectors_of(request, "appservice", error))
    if identity is None:
        raise _app_service_error(ctx, 400, "Unable to load the proper Managed Identity.")
    try:
        token = mint_identity_token(svc, ctx, identity, resource)
    except IdentityError as exc:
        raise _app_service_error(ctx, 500, str(exc.body.get("error_description", "")))
    body = {
        "access_token": token.access_token,
        "expires_on": str(token.expires_on),
        "resource": token.resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }
    return mi_response(200, body)


def azure_ml(svc: Service, request: Request, ctx: Ctx) -> Response:
    """``GET $MSI_ENDPOINT`` with a ``secret`` header (Azure ML compute, 2017-09-01 protocol)."""
    sent = request.header("secret")
    if sent is None or not secrets.compare_digest(sent.encode(), svc.msi_secret.encode()):
        raise IdentityError(401, _imds_error("unauthorized", "The secret header is missing or not valid."))
    _require_version(request, "azureml", _imds_error("invalid_request", "The api-version must be 2017-09-01."))
    resource = request.param("resource")
    if not resource:
        raise IdentityError(400, _imds_error("invalid_request", "The resource parameter is required."))
    identity = find_identity(svc, selectors_of(request, "azureml", _imds_error("invalid_request", "One identity.")))
    if identity is None:
        raise IdentityError(400, _imds_error("invalid_request", "Identity not found"))
    token = mint_identity_token(svc, ctx, identity, resource)
    # expires_on as a string epoch; an azure-identity comment says Azure ML sends an integer (both parse).
    body = {
        "access_token": token.access_token,
        "expires_on": str(token.expires_on),
        "resource": token.resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }
    return mi_response(200, body)


def cloud_shell(svc: Service, request: Request, ctx: Ctx) -> Response:
    """``POST /cloudshell/oauth2/token`` (form ``resource=``): the signed-in Cloud Shell user's token."""
    if request.header("metadata") != "true":
        raise IdentityError(400, {"error": {"code": "BadRequest", "message": "Required metadata header not specified"}})
    if request.method != "POST" or not is_form(request):
        raise IdentityError(400, {"error": {"code": "BadRequest", "message": "POST a form with resource=."}})
    try:
        resource = parse_form(request.body).get("resource", "").strip()
    except FormError:
        resource = ""
    if not resource:
        raise IdentityError(400, {"error": {"code": "BadRequest", "message": "The resource parameter is required."}})
    user = svc.config.user(svc.config.cloud_shell_user or "")
    if user is None or not user.enabled:
        raise IdentityError(401, {"error": {"code": "Unauthorized", "message": "No user is signed in to Cloud Shell."}})
    token, lifetime = _user_token(svc, ctx, user, resource)
    now = int(ctx.now)
    body = {
        "access_token": token,
        "refresh_token": "",
        "expires_in": str(lifetime),
        "expires_on": str(now + lifetime),
        "not_before": str(now - SKEW),
        "resource": resource,
        "token_type": "Bearer",
    }
    return mi_response(200, body)


def service_fabric(svc: Service, request: Request, ctx: Ctx) -> Response:
    """``GET /servicefabric/token`` with ``Secret`` (https only; clients pin the server certificate)."""

    def error(status: int, code: str, message: str) -> IdentityError:
        return IdentityError(status, {"error": {"correlationId": ctx.correlation_id, "code": code, "message": message}})

    sent = request.header("secret")
    if sent is None or not secrets.compare_digest(sent.encode(), svc.identity_header.encode()):
        raise error(401, "SecretHeaderNotFound", "Secret is not found in the request headers.")
    if request.param("api-version") != "2019-07-01-preview":
        raise error(400, "InvalidApiVersion", "The api-version is not supported; use 2019-07-01-preview.")
    resource = request.param("resource")
    if not resource:
        raise error(400, "ArgumentNullOrEmpty", "Value cannot be null or empty. Parameter name: resource")
    identity = svc.config.system_identity
    if identity is None:
        raise error(404, "ManagedIdentityNotFound", "Managed Identity not found.")
    try:
        token = mint_identity_token(svc, ctx, identity, resource)
    except IdentityError:
        raise error(500, "InternalServerError", "Failed to get a token for the resource.")
    body = {"token_type": "Bearer", "access_token": token.access_token, "expires_on": token.expires_on}
    return mi_response(200, {**body, "resource": token.resource})


def identity_endpoint(name: str, svc: Service, request: Request, ctx: Ctx) -> Response:
    """Serve one managed identity endpoint (``imds``, ``appservice``, ``azureml``, ``cloudshell``...)."""
    serve = {
        "imds": imds,
        "appservice": app_service,
        "azureml": azure_ml,
        "cloudshell": cloud_shell,
        "servicefabric": service_fabric,
    }[name]
    try:
        return serve(svc, request, ctx)
    except IdentityError as refused:
        return mi_response(refused.status, refused.body, refused.headers)
