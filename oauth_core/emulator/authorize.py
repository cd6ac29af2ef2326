"""The authorize endpoint: the sign-in page and the redirect back (entra-protocol.md §2).

Requests that cannot be trusted (unknown tenant or client, unregistered redirect URI) get an
HTML error page and are never redirected. Everything else comes back to the redirect URI:
``?code=...&state=...&session_state=...#`` on success (with Entra's bare trailing ``#``), or
``error``/``error_description``/``state`` after a refusal or a cancel.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Dict, Mapping, Optional, Tuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..core.pkce import values_match
from .aadsts import Refusal, describe, refusal
from .claims import parse_claims, satisfies_step_up
from .config import Client, User
from .pages import error_page, form_post_page, sign_in_page
from .scopes import parse_scopes
from .service import Service
from .store import CodeRecord, PendingSignIn
from .tokens import opaque
from .wire import Ctx, FormError, Request, Response, html_response, is_form, parse_form, redirect_response, split_url

__all__ = ["authorize_endpoint", "check_credentials", "redirect_uri_allowed"]

_RESPONSE_MODES = ("query", "fragment", "form_post")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_UNKNOWN_USER = "We couldn't find an account with that username. Try another, or get a new account."
_BAD_PASSWORD = "Your account or password is incorrect. If you don't remember your password, reset it now."
_DISABLED = "Your account has been locked. Contact your support person to unlock it, then try again."


def redirect_uri_allowed(client: Client, redirect_uri: str) -> bool:
    """Exact match with a registered URI, except that loopback ``http`` URIs may use any port."""
    if redirect_uri in client.redirect_uris:
        return True
    asked = split_url(redirect_uri)
    if asked is None or asked.scheme != "http" or asked.hostname not in _LOOPBACK:
        return False
    for registered in client.redirect_uris:
        known = split_url(registered)
        if (
            known is not None
            and (known.scheme, known.hostname, known.query) == ("http", asked.hostname, asked.query)
            and (known.path or "/") == (asked.path or "/")
        ):
            return True
    return False


def check_credentials(svc: Service, username: str, password: str) -> Tuple[Optional[User], Optional[str]]:
    """An interactive sign-in: the user, or the message the sign-in page shows instead."""
    user = svc.config.user(username.strip())
    if user is None:
        return None, _UNKNOWN_USER
    if not user.enabled:
        return None, _DISABLED
    if not values_match(user.password, password):
        return None, _BAD_PASSWORD
    return user, None


def _page(refused: Refusal, ctx: Ctx) -> Response:
    return html_response(ctx, error_page(refused, ctx), status=400)


def _redirect(ctx: Ctx, redirect_uri: str, mode: str, fields: Dict[str, str], *, trailing_hash: bool) -> Response:
    if mode == "form_post":
        return html_response(ctx, form_post_page(redirect_uri, fields))
    encoded = urlencode(fields)
    parts = urlsplit(redirect_uri)
    if not parts.path:  # as Entra does: http://localhost -> http://localhost/?code=...
        redirect_uri = urlunsplit(parts._replace(path="/"))
    if mode == "fragment":
        return redirect_response(ctx, f"{redirect_uri}#{encoded}")
    separator = "&" if "?" in redirect_uri else "?"
    return redirect_response(ctx, f"{redirect_uri}{separator}{encoded}{'#' if trailing_hash else ''}")


def _error_redirect(ctx: Ctx, pending: PendingSignIn, refused: Refusal) -> Response:
    fields = {"error": refused.error, "error_description": describe(refused, ctx)}
    if pending.state is not None:
        fields["state"] = pending.state
    return _redirect(ctx, pending.redirect_uri, pending.response_mode, fields, trailing_hash=False)


def _trusted_target(svc: Service, params: Mapping[str, str], segment: str) -> Tuple[Client, str]:
    client_id = params.get("client_id", "").strip()
    if not client_id:
        raise refusal(900144, name="client_id")
    client = svc.config.client(client_id)
    if client is None:
        raise refusal(700016, client_id=client_id, tenant=segment)
    redirect_uri = params.get("redirect_uri", "").strip()
    if not redirect_uri:
        raise refusal(900144, name="redirect_uri")
    parts = split_url(redirect_uri)
    if parts is None or not parts.scheme or not (parts.netloc or parts.scheme not in ("http", "https")):
        raise refusal(90102)
    if not redirect_uri_allowed(client, redirect_uri):
        raise refusal(50011, redirect_uri=redirect_uri, client_id=client.client_id)
    return client, redirect_uri


def _check_request(svc: Service, params: Mapping[str, str], segment: str) -> None:
    response_type = params.get("response_type", "").strip()
    if not response_type:
        raise refusal(900144, name="response_type")
    if response_type != "code":
        raise refusal(700054, response_type=response_type)
    scope = params.get("scope", "").strip()
    if not scope:
        raise refusal(900144, name="scope")
    parse_scopes(scope, svc.config.resources, tenant=segment, single_resource=False)
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if method is not None and (challenge is None or method not in ("S256", "plain")):
        raise refusal(9002313, error="invalid_request")
    if challenge is not None and not 43 <= len(challenge) <= 128:
        raise refusal(9002313, error="invalid_request")
    parse_claims(params.get("claims"))  # AADSTS90100 when not a JSON object
    if params.get("prompt") == "none":
        raise refusal(50058)


def _start(svc: Service, ctx: Ctx, params: Mapping[str, str], segment: str, tenant: str) -> Response:
    try:
        client, redirect_uri = _trusted_target(svc, params, segment)
    except Refusal as refused:
        return _page(refused, ctx)
    mode = params.get("response_mode") or "query"
    pending = PendingSignIn(
        flow_id=secrets.token_urlsafe(32),
        tenant=tenant,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=params.get("scope", ""),
        state=params.get("state"),
        nonce=params.get("nonce"),
        code_challenge=params.get("code_challenge"),
        code_challenge_method=params.get("code_challenge_method")
        or ("plain" if params.get("code_challenge") else None),
        response_mode=mode if mode in _RESPONSE_MODES else "query",
        created=ctx.now,
        claims=params.get("claims") or None,
    )
    try:
        _check_request(svc, params, segment)
    except Refusal as refused:
        return _error_redirect(ctx, pending, refused)
    with svc.store.lock:
        svc.store.pending[pending.flow_id] = pending
    page = sign_in_page(
        action=f"/{segment}/oauth2/v2.0/authorize",
        flow_id=pending.flow_id,
        app_name=client.display_name,
        username=params.get("login_hint", ""),
    )
    return html_response(ctx, page)


def _signed_in(svc: Service, ctx: Ctx, pending: PendingSignIn, user: User) -> Response:
    code = opaque("0.A", 240)
    record = CodeRecord(
        tenant=pending.tenant,
        client_id=pending.client_id,
        redirect_uri=pending.redirect_uri,
        scope=pending.scope,
        nonce=pending.nonce,
        code_challenge=pending.code_challenge,
        code_challenge_method=pending.code_challenge_method,
        username=user.username,
        amr=svc.amr_for(user, step_up=satisfies_step_up(parse_claims(pending.claims))),
        issued_at=ctx.now,
        claims=pending.claims,
    )
    with svc.store.lock:
        svc.store.codes[code] = record
    fields = {"code": code}
    if pending.state is not None:
        fields["state"] = pending.state
    fields["session_state"] = str(uuid.uuid4())
    return _redirect(ctx, pending.redirect_uri, pending.response_mode, fields, trailing_hash=True)


def _submit(svc: Service, ctx: Ctx, form: Mapping[str, str], segment: str) -> Response:
    with svc.store.lock:
        pending = svc.store.pending.get(form.get("flowtoken", ""))
    if pending is None:
        return _page(refusal(9002313, error="invalid_request"), ctx)
    if form.get("action") == "cancel":
        with svc.store.lock:
            svc.store.pending.pop(pending.flow_id, None)
        return _error_redirect(ctx, pending, refusal(65004))
    username = form.get("username", "")
    user, problem = check_credentials(svc, username, form.get("password", ""))
    if user is None:
        client = svc.config.client(pending.client_id)
        page = sign_in_page(
            action=f"/{segment}/oauth2/v2.0/authorize",
            flow_id=pending.flow_id,
            app_name=client.display_name if client else "",
            username=username,
            error=problem,
        )
        return html_response(ctx, page)
    with svc.store.lock:
        if svc.store.pending.pop(pending.flow_id, None) is None:
            return _page(refusal(9002313, error="invalid_request"), ctx)
    return _signed_in(svc, ctx, pending, user)


def authorize_endpoint(svc: Service, request: Request, ctx: Ctx, segment: str) -> Response:
    """``GET`` starts a sign-in (or, with ``prompt=none``, redirects ``login_required``);
    ``POST`` receives the sign-in form (or, without a flow token, authorize parameters)."""
    tenant = svc.tenant(segment)
    if tenant is None:
        return _page(refusal(90002, tenant=segment), ctx)
    if request.method == "GET":
        return _start(svc, ctx, dict(reversed(request.query)), segment, tenant)
    if request.method != "POST":
        return _page(refusal(9002313, error="invalid_request"), ctx)
    try:
        form = parse_form(request.body) if is_form(request) else None
    except FormError:
        form = None
    if form is None:
        return _page(refusal(9002313, error="invalid_request"), ctx)
    if "flowtoken" not in form:
        return _start(svc, ctx, form, segment, tenant)
    return _submit(svc, ctx, form, segment)
