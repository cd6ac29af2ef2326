"""The token endpoint: ``POST /{tenant}/oauth2/v2.0/token`` and its grants (entra-protocol.md §3).

Seven grants live here (the SAML 1.1 and 2.0 bearer grants redeem the stand-in AD FS's assertions,
:mod:`.saml`); on-behalf-of is in :mod:`.obo`, federated client assertions in :mod:`.federation`.
Every grant accepts ``claims`` (:mod:`.claims`): ``cp1`` puts ``xms_cc`` in the access token, and a
refresh under a step-up policy is refused with AADSTS50076 and a claims challenge.

Each grant checks its parameters and state, then asks the :class:`~.service.Service` for the
token response. Refusals are raised as :class:`~.aadsts.Refusal` and rendered by the caller.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Mapping, Optional

from ..core.errors import ConfigError
from ..core.pkce import code_challenge, values_match
from .aadsts import refusal
from .claims import capabilities, needs_step_up, parse_claims, satisfies_step_up, step_up_refusal
from .clientauth import authenticate
from .config import Client, User
from .federation import is_federated, verify_federated
from .obo import OBO_GRANT, on_behalf_of
from .saml import SAML1, SAML2, decode_assertion, verify_assertion
from .scopes import ScopeGrant, parse_app_scope, parse_scopes
from .service import TENANT_ALIASES, Service, UserGrant
from .store import CodeRecord, RefreshRecord
from .wire import Ctx, FormError, Request, Response, is_form, parse_form

__all__ = ["DEVICE_CODE_GRANT", "SAML1_GRANT", "SAML2_GRANT", "token_endpoint"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SAML1_GRANT = "urn:ietf:params:oauth:grant-type:saml1_1-bearer"
SAML2_GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"


@dataclass(frozen=True)
class TokenCall:
    """One token request after client authentication."""

    svc: Service
    ctx: Ctx
    form: Mapping[str, str]
    client: Client
    appidacr: str
    tenant: str
    segment: str
    claims: Optional[Dict[str, Any]] = None

    def require(self, name: str) -> str:
        """A required, non-blank parameter (AADSTS900144 when missing)."""
        value = self.form.get(name, "").strip()
        if not value:
            raise refusal(900144, name=name)
        return value

    def scopes(self, stored: Optional[str] = None) -> ScopeGrant:
        """The request's ``scope`` (one resource), or the stored grant's scope when none was sent."""
        text = self.form.get("scope", "").strip()
        if text:
            return parse_scopes(text, self.svc.config.resources, tenant=self.segment)
        if stored is None:
            raise refusal(900144, name="scope")
        return parse_scopes(stored, self.svc.config.resources, tenant=self.segment, single_resource=False)

    def user(self, username: str) -> User:
        """A user that exists and is enabled (AADSTS50034 / 50057)."""
        user = self.svc.config.user(username)
        if user is None:
            raise refusal(50034, tenant=self.segment)
        if not user.enabled:
            raise refusal(50057)
        return user

    def tokens(
        self, scope: ScopeGrant, grant: UserGrant, *, always_refresh: bool = False, extra_claims: Optional[str] = None
    ) -> Response:
        """The user-grant token response (``extra_claims``: the authorize request's, for a code)."""
        caps = tuple(dict.fromkeys(capabilities(self.claims) + capabilities(parse_claims(extra_claims))))
        return self.svc.user_tokens(
            self.ctx,
            client=self.client,
            scope=scope,
            grant=grant,
            appidacr=self.appidacr,
            client_info=self.form.get("client_info") == "1",
            always_refresh=always_refresh,
            capabilities=caps,
        )


def _iso(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    return f"{days}.{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def _pkce_ok(record: CodeRecord, verifier: Optional[str]) -> bool:
    if record.code_challenge is None:
        return True
    if not verifier:
        return False
    if (record.code_challenge_method or "plain") == "plain":
        return values_match(record.code_challenge, verifier)
    try:
        return values_match(record.code_challenge, code_challenge(verifier))
    except ConfigError:
        return False


def _tenant_ok(issued_for: str, redeemed_at: str) -> bool:
    if issued_for == redeemed_at:
        return True
    return issued_for in ("organizations", "common") and redeemed_at != "consumers"


def _check_code(call: TokenCall, record: Optional[CodeRecord], redirect_uri: str) -> CodeRecord:
    if record is None:
        raise refusal(9002313)
    if record.redeemed:
        raise refusal(54005)
    if call.ctx.now - record.issued_at > call.svc.config.code_lifetime:
        raise refusal(70008)
    if record.client_id != call.client.client_id:
        raise refusal(70000)
    if not _tenant_ok(record.tenant, call.tenant):
        raise refusal(700005)
    if record.redirect_uri != redirect_uri:
        raise refusal(500112, received=redirect_uri, expected=record.redirect_uri)
    if not _pkce_ok(record, call.form.get("code_verifier")):
        raise refusal(501481)
    return record


def _authorization_code(call: TokenCall) -> Response:
    code, redirect_uri = call.require("code"), call.require("redirect_uri")
    store = call.svc.store
    with store.lock:
        record = _check_code(call, store.codes.get(code), redirect_uri)
        store.codes[code] = replace(record, redeemed=True)
    scope = call.scopes(stored=record.scope)
    grant = UserGrant(call.user(record.username), record.amr, record.issued_at, record.nonce)
    return call.tokens(scope, grant, extra_claims=record.claims)


def _password(call: TokenCall) -> Response:
    if call.tenant in ("common", "consumers"):
        raise refusal(9001023)
    username, password = call.require("username"), call.require("password")
    scope = call.scopes()
    user = call.user(username)
    if call.svc.config.is_federated(user.username):
        # Entra answers plain ROPC for a federated user (no password hash sync) as for a bad password
        # (entra-protocol.md §6, observed); clients must use WS-Trust and a SAML bearer grant instead.
        raise refusal(50126)
    if not values_match(user.password, password):
        raise refusal(50126)
    if user.requires_mfa:
        raise refusal(50076, resource=scope.resource.app_id)
    if not user.consented:
        raise refusal(65001, client_id=call.client.client_id, client_name=call.client.display_name)
    return call.tokens(scope, UserGrant(user, ("pwd",), call.ctx.now))


def _check_refresh(call: TokenCall, record: Optional[RefreshRecord], token: str) -> RefreshRecord:
    if record is None:
        raise refusal(70000 if token.startswith("0.A") else 9002313)
    if record.revoked or record.client_id != call.client.client_id:
        raise refusal(70000)
    valid_from = call.svc.store.valid_from.get(record.username.lower())
    if valid_from is not None and record.signed_in_at < valid_from:
        raise refusal(50173, issued=_iso(record.signed_in_at), valid_from=_iso(valid_from))
    max_inactive = call.svc.config.refresh_token_max_inactive
    if call.ctx.now - record.issued_at > max_inactive:
        raise refusal(700082, issued=_iso(record.issued_at), inactive=_duration(max_inactive))
    return record


def _refresh_token(call: TokenCall) -> Response:
    token = call.require("refresh_token")
    store = call.svc.store
    with store.lock:
        record = _check_refresh(call, store.refresh_tokens.get(token), token)
        scope = call.scopes(stored=record.scope)
        user = call.user(record.username)
        stepped_up = "mfa" in record.amr or satisfies_step_up(call.claims)
        if needs_step_up(user, scope) and not stepped_up:
            raise step_up_refusal(call.svc.config, scope)
        if call.svc.config.revoke_rotated_refresh_tokens:
            store.refresh_tokens[token] = replace(record, revoked=True)
    amr = record.amr if "mfa" in record.amr or not stepped_up else (*record.amr, "mfa")
    return call.tokens(scope, UserGrant(user, amr, record.signed_in_at), always_refresh=True)


def _device_code(call: TokenCall) -> Response:
    device_code = call.require("device_code")
    store = call.svc.store
    with store.lock:
        flow = store.device_flows.get(device_code)
        if flow is None or flow.client_id != call.client.client_id or flow.tenant != call.tenant:
            raise refusal(70018)
        if call.ctx.now > flow.expires_at:
            raise refusal(70020)
        if flow.status == "pending":
            raise refusal(70016)
        if flow.status == "declined":
            raise refusal(65004, error="authorization_declined")
        if flow.status != "approved" or flow.username is None:
            raise refusal(70018)
        store.device_flows[device_code] = replace(flow, status="redeemed")
    scope = parse_scopes(flow.scope, call.svc.config.resources, tenant=call.segment)
    return call.tokens(scope, UserGrant(call.user(flow.username), flow.amr, call.ctx.now))


def _client_credentials(call: TokenCall) -> Response:
    if call.appidacr == "0":
        raise refusal(7000218)
    if call.tenant in TENANT_ALIASES:
        raise refusal(50059)
    scope = parse_app_scope(call.require("scope"), call.svc.config.resources, tenant=call.segment)
    return call.svc.app_token(
        call.ctx, client=call.client, scope=scope, appidacr=call.appidacr, capabilities=capabilities(call.claims)
    )


def _saml_bearer(version: str) -> Callable[[TokenCall], Response]:
    def grant(call: TokenCall) -> Response:
        if call.tenant in ("common", "consumers"):
            raise refusal(9001023)  # as for the password grant; unconfirmed for the SAML grants
        xml = decode_assertion(call.require("assertion"))
        scope = call.scopes()
        try:
            if xml is None:
                raise ValueError("not base64 of UTF-8 text")
            verified = verify_assertion(
                xml, version=version, domains=call.svc.config.federated_domains, now=call.ctx.now
            )
        except ValueError:
            raise refusal(70000) from None  # which code Entra sends per bad assertion is unconfirmed
        with call.svc.store.lock:
            if verified.assertion_id not in call.svc.store.assertions:
                raise refusal(70000)  # an assertion the stand-in AD FS never issued
        user = call.user(verified.upn)
        return call.tokens(scope, UserGrant(user, ("pwd", "fed"), call.ctx.now))

    return grant


_GRANTS: Mapping[str, Callable[[TokenCall], Response]] = {
    "authorization_code": _authorization_code,
    "password": _password,
    "refresh_token": _refresh_token,
    DEVICE_CODE_GRANT: _device_code,
    "client_credentials": _client_credentials,
    OBO_GRANT: on_behalf_of,
    SAML1_GRANT: _saml_bearer(SAML1),
    SAML2_GRANT: _saml_bearer(SAML2),
}


def _form(request: Request) -> Dict[str, str]:
    if not is_form(request):
        raise refusal(900144, name="grant_type")
    try:
        return parse_form(request.body)
    except FormError:
        raise refusal(9002313, error="invalid_request")


def token_endpoint(svc: Service, request: Request, ctx: Ctx, segment: str) -> Response:
    """Handle one token request; every failure is raised as a :class:`~.aadsts.Refusal`."""
    tenant = svc.tenant(segment)
    if tenant is None:
        raise refusal(90002, tenant=segment)
    if request.method != "POST":
        raise refusal(900561, method=request.method)
    form = _form(request)
    grant_type = form.get("grant_type", "").strip()
    if not grant_type:
        raise refusal(900144, name="grant_type")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise refusal(70003, grant_type=grant_type)
    if "resource" in form:
        raise refusal(901002)
    claims = parse_claims(form.get("claims"))
    endpoints = [f"{ctx.origin}/{s}/oauth2/v2.0/token" for s in dict.fromkeys((segment, tenant))]

    def federated(client: Client, assertion: str) -> bool:
        if not is_federated(svc, client, assertion):
            return False
        verify_federated(svc, client, assertion, ctx.now)
        return True

    client, appidacr = authenticate(
        svc.config, request, form, tenant_segment=segment, audiences=endpoints, now=ctx.now, federated=federated
    )
    return handler(TokenCall(svc, ctx, form, client, appidacr, tenant, segment, claims))
