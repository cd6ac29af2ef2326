"""Minting tokens: RS256 access and id tokens, ``client_info``, and opaque codes (entra-protocol.md §5).

Access tokens follow the resource's version: v1 (``iss`` ``https://sts.windows.net/{tid}/``, header
with ``x5t`` and ``kid``, ``appid``/``appidacr``, ``upn``/``unique_name``) or v2 (``iss`` on the
emulator's origin, header with ``kid`` only, ``azp``/``azpacr``). ``iat = nbf = now - 300``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from .config import Client, User
from .keys import SigningKey, b64url
from .scopes import ScopeGrant

__all__ = [
    "Issue",
    "access_token",
    "client_info",
    "id_token",
    "opaque",
    "service_principal_id",
    "sign_jwt",
    "v2_issuer",
]

SKEW = 300
ID_TOKEN_LIFETIME = 3600
_SP_NAMESPACE = uuid.UUID("0b1b8a0c-5e8e-4c4c-9a56-6f6e2d0d2a10")


@dataclass(frozen=True)
class Issue:
    """Everything one token response is minted from.

    Attributes:
        client: the requesting application.
        scope: the granted resource and permissions.
        user: the signed-in user, or None for an app-only (client credentials) token.
        amr: authentication methods (``pwd``, ``mfa``) of the user's sign-in.
        appidacr: how the client authenticated: ``0`` none, ``1`` secret, ``2`` certificate.
        nonce: the authorize request's nonce, copied into the id_token.
        tenant_id: the ``tid``.
        origin: the emulator's ``scheme://host:port``.
        now: issuance time (epoch seconds).
        lifetime: the access token's ``expires_in``.
        capabilities: client capabilities the request declared in ``claims`` (``cp1``), put in
            the access token as ``xms_cc``.
    """

    client: Client
    scope: ScopeGrant
    user: Optional[User]
    amr: Tuple[str, ...]
    appidacr: str
    nonce: Optional[str]
    tenant_id: str
    origin: str
    now: int
    lifetime: int
    capabilities: Tuple[str, ...] = ()


def opaque(prefix: str = "0.A", nbytes: int = 180) -> str:
    """An opaque, unguessable value shaped like Entra's codes and refresh tokens (``0.A...``)."""
    return prefix + secrets.token_urlsafe(nbytes)


def v2_issuer(origin: str, tenant_id: str) -> str:
    """The v2.0 issuer on the emulator's origin."""
    return f"{origin}/{tenant_id}/v2.0"


def service_principal_id(client: Client) -> str:
    """A stable object id for the client's service principal (``oid``/``sub`` of app tokens)."""
    return str(uuid.uuid5(_SP_NAMESPACE, client.client_id))


def _pairwise_sub(object_id: str, audience: str) -> str:
    return b64url(hashlib.sha256(f"{object_id}|{audience}".encode()).digest())[:43]


def sign_jwt(header: Dict[str, Any], claims: Dict[str, Any], key: SigningKey) -> str:
    """A compact JWS: base64url JSON header and claims (order kept), RS256 signature."""
    segments = [b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)]
    signing_input = ".".join(segments).encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url(key.sign(signing_input))}"


def _opaque_claim() -> str:
    return "A" + secrets.token_urlsafe(60)


def _user_claims_v1(issue: Issue, user: User) -> Dict[str, Any]:
    given, _, family = user.display_name.partition(" ")
    return {
        "acr": "1",
        "aio": _opaque_claim(),
        "amr": list(issue.amr),
        "appid": issue.client.client_id,
        "appidacr": issue.appidacr,
        "family_name": family or given,
        "given_name": given,
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": user.object_id,
        "rh": "0.A" + secrets.token_urlsafe(40),
        "scp": " ".join(issue.scope.names),
        "sub": _pairwise_sub(user.object_id, issue.scope.resource.app_id),
        "tid": issue.tenant_id,
        "unique_name": user.username,
        "upn": user.username,
        "uti": secrets.token_urlsafe(16)[:22],
        "ver": "1.0",
    }


def _app_claims_v1(issue: Issue, issuer: str) -> Dict[str, Any]:
    sp = service_principal_id(issue.client)
    return {
        "aio": _opaque_claim(),
        "appid": issue.client.client_id,
        "appidacr": issue.appidacr,
        "idp": issuer,
        "idtyp": "app",
        "oid": sp,
        "rh": "0.A" + secrets.token_urlsafe(40),
        "sub": sp,
        "tid": issue.tenant_id,
        "uti": secrets.token_urlsafe(16)[:22],
        "ver": "1.0",
    }


def _claims_v2(issue: Issue) -> Dict[str, Any]:
    claims: Dict[str, Any] = {"aio": _opaque_claim(), "azp": issue.client.client_id, "azpacr": issue.appidacr}
    if issue.user is None:
        sp = service_principal_id(issue.client)
        claims.update({"idtyp": "app", "oid": sp, "rh": "0.A" + secrets.token_urlsafe(40), "sub": sp})
    else:
        claims.update(
            {
                "name": issue.user.display_name,
                "oid": issue.user.object_id,
                "preferred_username": issue.user.username,
                "rh": "0.A" + secrets.token_urlsafe(40),
                "scp": " ".join(issue.scope.names),
                "sub": _pairwise_sub(issue.user.object_id, issue.scope.resource.app_id),
            }
        )
    claims.update({"tid": issue.tenant_id, "uti": secrets.token_urlsafe(16)[:22], "ver": "2.0"})
    return claims


def access_token(issue: Issue, key: SigningKey) -> str:
    """The access token for ``issue``, in the resource's token version."""
    v1 = issue.scope.resource.access_token_version == 1
    issuer = f"https://sts.windows.net/{issue.tenant_id}/" if v1 else v2_issuer(issue.origin, issue.tenant_id)
    audience = issue.scope.identifier if v1 else issue.scope.resource.app_id
    claims: Dict[str, Any] = {
        "aud": audience,
        "iss": issuer,
        "iat": issue.now - SKEW,
        "nbf": issue.now - SKEW,
        "exp": issue.now + issue.lifetime,
    }
    if not v1:
        claims.update(_claims_v2(issue))
    elif issue.user is None:
        claims.update(_app_claims_v1(issue, issuer))
    else:
        claims.update(_user_claims_v1(issue, issue.user))
    if issue.capabilities:
        claims["xms_cc"] = list(issue.capabilities)
    header: Dict[str, Any] = {"typ": "JWT", "alg": "RS256"}
    if v1:
        header["x5t"] = key.kid
    header["kid"] = key.kid
    return sign_jwt(header, claims, key)


def id_token(issue: Issue, key: SigningKey) -> str:
    """The v2 id_token for a user grant (entra-protocol.md §5.5)."""
    user = issue.user
    if user is None:
        raise ValueError("an id_token needs a user")
    rh = "0.A" + secrets.token_urlsafe(40)
    claims: Dict[str, Any] = {
        "aud": issue.client.client_id,
        "iss": v2_issuer(issue.origin, issue.tenant_id),
        "iat": issue.now - SKEW,
        "nbf": issue.now - SKEW,
        "exp": issue.now + ID_TOKEN_LIFETIME,
        "aio": _opaque_claim(),
    }
    if "email" in issue.scope.oidc:
        claims["email"] = user.username
    claims["name"] = user.display_name
    if issue.nonce is not None:
        claims["nonce"] = issue.nonce
    claims.update(
        {
            "oid": user.object_id,
            "preferred_username": user.username,
            "rh": rh,
            "sub": _pairwise_sub(user.object_id, issue.client.client_id),
            "tid": issue.tenant_id,
            "uti": secrets.token_urlsafe(16)[:22],
            "ver": "2.0",
        }
    )
    return sign_jwt({"typ": "JWT", "alg": "RS256", "kid": key.kid, "rh": rh}, claims, key)


def client_info(user: User, tenant_id: str) -> str:
    """Unpadded base64url of ``{"uid": oid, "utid": tid}`` (entra-protocol.md §5.7)."""
    data = json.dumps({"uid": user.object_id, "utid": tenant_id}, separators=(",", ":"))
    return b64url(data.encode("utf-8"))
