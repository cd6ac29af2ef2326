"""The device authorization grant (RFC 8628): ``/devicecode`` and the ``/devicelogin`` pages.

A device asks ``POST /{tenant}/oauth2/v2.0/devicecode`` for a user code (entra-protocol.md §3.2);
a person opens ``/devicelogin``, enters the code, then a username and password; the device's
token polls then succeed once. Tests can approve directly with :func:`approve`.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Mapping, Optional

from .aadsts import refusal
from .authorize import check_credentials
from .config import User
from .pages import device_code_page, device_done_page, sign_in_page
from .scopes import parse_scopes
from .service import Service
from .store import DeviceFlow
from .tokens import opaque
from .wire import Ctx, FormError, Request, Response, html_response, is_form, json_response, parse_form

__all__ = ["approve", "decline", "devicecode_endpoint", "devicelogin_endpoint"]

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_BAD_CODE = "That code didn't work. Check the code and try again."


def _new_user_code(svc: Service) -> str:
    while True:
        code = "".join(secrets.choice(_ALPHABET) for _ in range(9))
        if code not in svc.store.user_codes:
            return code


def devicecode_endpoint(svc: Service, request: Request, ctx: Ctx, segment: str) -> Response:
    """Start a device flow: the §3.2 body (user_code, device_code, verification_uri, expires_in, interval, message).

    Raises:
        Refusal: 90002 (tenant), 900561 (not POST), 900144 (client_id, scope), 700016, 70011/500011.
    """
    tenant = svc.tenant(segment)
    if tenant is None:
        raise refusal(90002, tenant=segment)
    if request.method != "POST":
        raise refusal(900561, method=request.method)
    try:
        form = parse_form(request.body) if is_form(request) else {}
    except FormError:
        raise refusal(9002313, error="invalid_request")
    client_id = form.get("client_id", "").strip()
    if not client_id:
        raise refusal(900144, name="client_id")
    client = svc.config.client(client_id)
    if client is None:
        raise refusal(700016, client_id=client_id, tenant=segment)
    scope = form.get("scope", "").strip()
    if not scope:
        raise refusal(900144, name="scope")
    parse_scopes(scope, svc.config.resources, tenant=segment)
    with svc.store.lock:
        flow = DeviceFlow(
            device_code=opaque("DAQABIQEAAAD", 150),
            user_code=_new_user_code(svc),
            tenant=tenant,
            client_id=client.client_id,
            scope=scope,
            expires_at=ctx.now + svc.config.device_code_lifetime,
        )
        svc.store.device_flows[flow.device_code] = flow
        svc.store.user_codes[flow.user_code] = flow.device_code
    uri = f"{ctx.origin}/devicelogin"
    body = {
        "user_code": flow.user_code,
        "device_code": flow.device_code,
        "verification_uri": uri,
        "expires_in": svc.config.device_code_lifetime,
        "interval": svc.config.device_code_interval,
        "message": f"To sign in, use a web browser to open the page {uri} and enter the code {flow.user_code} "
        "to authenticate.",
    }
    return json_response(ctx, body)


def _open_flow(svc: Service, user_code: str, now: float) -> Optional[DeviceFlow]:
    flow = svc.store.device_flow_by_user_code(user_code)
    if flow is None or flow.status != "pending" or now > flow.expires_at:
        return None
    return flow


def approve(svc: Service, user_code: str, user: User, *, now: float) -> bool:
    """Approve a pending device flow for ``user``; False when the code is unknown, used or expired."""
    with svc.store.lock:
        flow = _open_flow(svc, user_code, now)
        if flow is None:
            return False
        approved = replace(flow, status="approved", username=user.username, amr=svc.amr_for(user))
        svc.store.device_flows[flow.device_code] = approved
        return True


def decline(svc: Service, user_code: str, *, now: float) -> bool:
    """Decline a pending device flow; False when the code is unknown, used or expired."""
    with svc.store.lock:
        flow = _open_flow(svc, user_code, now)
        if flow is None:
            return False
        svc.store.device_flows[flow.device_code] = replace(flow, status="declined")
        return True


def _app_name(svc: Service, flow: DeviceFlow) -> str:
    client = svc.config.client(flow.client_id)
    return client.display_name if client else flow.client_id


def _code_entered(svc: Service, ctx: Ctx, form: Mapping[str, str]) -> Response:
    code = form.get("otc", "")
    flow = _open_flow(svc, code, ctx.now)
    if flow is None:
        return html_response(ctx, device_code_page(code=code, error=_BAD_CODE))
    flow_id = secrets.token_urlsafe(32)
    with svc.store.lock:
        svc.store.device_sign_ins[flow_id] = flow.device_code
    page = sign_in_page(action="/devicelogin", flow_id=flow_id, app_name=_app_name(svc, flow))
    return html_response(ctx, page)


def _credentials_entered(svc: Service, ctx: Ctx, form: Mapping[str, str]) -> Response:
    flow_id = form.get("flowtoken", "")
    with svc.store.lock:
        device_code = svc.store.device_sign_ins.get(flow_id)
        flow = svc.store.device_flows.get(device_code) if device_code else None
    if flow is None:
        return html_response(ctx, device_code_page(error=_BAD_CODE))
    if form.get("action") == "cancel":
        decline(svc, flow.user_code, now=ctx.now)
        return html_response(ctx, device_done_page(app_name=_app_name(svc, flow), approved=False))
    username = form.get("username", "")
    user, problem = check_credentials(svc, username, form.get("password", ""))
    if user is None:
        page = sign_in_page(
            action="/devicelogin", flow_id=flow_id, app_name=_app_name(svc, flow), username=username, error=problem
        )
        return html_response(ctx, page)
    if not approve(svc, flow.user_code, user, now=ctx.now):
        return html_response(ctx, device_code_page(error=_BAD_CODE))
    with svc.store.lock:
        svc.store.device_sign_ins.pop(flow_id, None)
    return html_response(ctx, device_done_page(app_name=_app_name(svc, flow), approved=True))


def devicelogin_endpoint(svc: Service, request: Request, ctx: Ctx) -> Response:
    """``GET`` shows the code page (``?otc=`` prefills it); ``POST`` takes the code, then the credentials."""
    if request.method == "GET":
        return html_response(ctx, device_code_page(code=request.param("otc") or ""))
    try:
        form = parse_form(request.body) if is_form(request) and request.method == "POST" else None
    except FormError:
        form = None
    if form is None:
        return html_response(ctx, device_code_page(error=_BAD_CODE), status=400)
    if "flowtoken" in form:
        return _credentials_entered(svc, ctx, form)
    return _code_entered(svc, ctx, form)
