"""The on-behalf-of grant (entra-protocol-2.md §3): a middle tier trades its caller's token for its own.

``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with ``requested_token_use=on_behalf_of``
and ``assertion=<a user access token this emulator issued for the calling app>``, authenticated by the
app's secret or certificate. The answer is a user-delegated token for the requested scope (same
user; ``appid``/``azp`` the middle tier), a refresh token when ``offline_access`` was asked for, and
an id_token with ``openid``.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Dict, Tuple

import jwt

from .aadsts import refusal
from .config import Client, EmulatorConfig
from .service import Service, UserGrant
from .tokens import v2_issuer
from .wire import Response

if TYPE_CHECKING:
    from .grants import TokenCall

__all__ = ["OBO_GRANT", "on_behalf_of"]

OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_LEEWAY = 300


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime("%m/%d/%Y %H:%M:%S")


def _own_audiences(config: EmulatorConfig, client: Client) -> Tuple[str, ...]:
    """What a token for this app may carry as ``aud``: its client id and its resource's app id URI."""
    uris = [uri for r in config.resources if r.app_id == client.client_id for uri in (r.app_id_uri, *r.aliases) if uri]
    return (client.client_id, *uris)


def _decode(svc: Service, origin: str, assertion: str) -> Dict[str, Any]:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise refusal(50013, reason="The assertion is not a JWT.")
    key = next((k for k in svc.keys if k.kid == header.get("kid")), None)
    if key is None or header.get("alg") != "RS256":
        raise refusal(50013, reason="The assertion was not signed by this tenant's keys.")
    tenant = svc.config.tenant_id
    try:
        claims: Dict[str, Any] = jwt.decode(
            assertion,
            key=key.private_key.public_key(),
            algorithms=["RS256"],
            issuer=[f"https://sts.windows.net/{tenant}/", v2_issuer(origin, tenant)],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidIssuerError:
        raise refusal(50013, reason="The assertion was not issued by this tenant.")
    except jwt.PyJWTError:
        raise refusal(50013, reason="The signature could not be verified.")
    return claims


def on_behalf_of(call: TokenCall) -> Response:
    """Redeem a user's access token for a token to a downstream API.

    Raises:
        Refusal: 7000218 (public client), 900144 (missing ``requested_token_use``/``assertion``/``scope``),
            50013 (not this tenant's signed user token; the app-only case's code is unconfirmed),
            500133 (expired), 500131 (``aud`` is not the calling app), 50034/50057 (user gone or disabled).
    """
    if call.appidacr == "0":
        raise refusal(7000218)
    if call.form.get("requested_token_use", "").strip() != "on_behalf_of":
        raise refusal(900144, name="requested_token_use")
    claims = _decode(call.svc, call.ctx.origin, call.require("assertion"))
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp + _LEEWAY < call.ctx.now:
        raise refusal(500133, now=_iso(call.ctx.now), exp=_iso(exp if isinstance(exp, (int, float)) else 0))
    audience = str(claims.get("aud", ""))
    allowed = {a.rstrip("/").lower() for a in _own_audiences(call.svc.config, call.client)}
    if audience.rstrip("/").lower() not in allowed:
        raise refusal(500131, audience=audience, client_id=call.client.client_id)
    if claims.get("idtyp") == "app" or "scp" not in claims:
        # Entra only trades user tokens; which AADSTS code an app-only assertion gets is unconfirmed.
        raise refusal(50013, reason="The assertion is an app-only token; on-behalf-of needs a user's token.")
    oid = str(claims.get("oid", ""))
    user = next((u for u in call.svc.config.users if u.object_id == oid), None)
    if user is None:
        raise refusal(50034, tenant=call.segment)
    user = call.user(user.username)
    scope = call.scopes()
    amr = claims.get("amr")
    methods = tuple(str(m) for m in amr) if isinstance(amr, list) and amr else call.svc.amr_for(user)
    return call.tokens(scope, UserGrant(user, methods, call.ctx.now))
