"""Azure Arc's identity endpoint: a 401 challenge naming a key file, then the token (entra-protocol-2.md §1.6).

``GET /arc/metadata/identity/oauth2/token?api-version=2020-06-01&resource=R`` with ``Metadata: true``
first gets 401 with ``WWW-Authenticate: Basic realm=<path of a fresh .key file>``; the same request
with ``Authorization: Basic <file content>`` gets IMDS's token JSON. With a user-assigned selector the
answer echoes it (``client_id``, ``object_id`` or ``msi_res_id``), which clients check.
"""

from __future__ import annotations

from typing import Any, Dict

from .identity import IdentityError, find_identity, imds_body, mi_response, mint_identity_token, selectors_of
from .service import Service
from .wire import Ctx, Request, Response

__all__ = ["arc_endpoint"]

_ECHO = {"client_id": "client_id", "object_id": "object_id", "resource_id": "msi_res_id"}


def _error(error: str, description: str) -> Dict[str, Any]:
    return {"error": error, "error_description": description}


def _serve(svc: Service, request: Request, ctx: Ctx) -> Response:
    if request.header("metadata") != "true":
        raise IdentityError(400, _error("invalid_request", "Required metadata header not specified"))
    if request.method != "GET":
        raise IdentityError(405, _error("invalid_request", "The request method is not supported."))
    if request.param("api-version") not in ("2019-11-01", "2020-06-01"):
        raise IdentityError(400, _error("invalid_request", "Invalid api-version"))
    resource = request.param("resource")
    if not resource:
        raise IdentityError(400, _error("invalid_request", "Required query variable 'resource' is missing"))
    scheme, _, presented = (request.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not svc.arc.accept(presented.strip()):
        path = svc.arc.challenge()
        body = _error("unauthorized", "Authorization header with a key from the challenge's file is required")
        raise IdentityError(401, body, (("WWW-Authenticate", f"Basic realm={path}"),))
    selectors = selectors_of(request, "imds", _error("invalid_request", "Multiple identities specified"))
    identity = find_identity(svc, selectors)
    if identity is None:
        raise IdentityError(400, _error("invalid_request", "Identity not found"))
    body = imds_body(mint_identity_token(svc, ctx, identity, resource))
    for kind, value in selectors.items():
        body[_ECHO[kind]] = value
    return mi_response(200, body)


def arc_endpoint(svc: Service, request: Request, ctx: Ctx) -> Response:
    """Serve one Arc identity request (the challenge or the token)."""
    try:
        return _serve(svc, request, ctx)
    except IdentityError as refused:
        return mi_response(refused.status, refused.body, refused.headers)
