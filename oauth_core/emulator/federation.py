"""Workload identity federation: the hosted issuers' endpoints and federated client assertions.

``GET /federation/<name>/.well-known/openid-configuration`` and ``/federation/<name>/openid/v1/jwks``
publish an issuer (:mod:`.issuers`); ``POST /federation/<name>/mint`` (form ``subject``, optional
``audience`` and ``lifetime``) mints a token. At the token endpoint, :func:`verify_federated` checks
such a token presented as ``client_assertion`` against the client's federated credentials
(entra-protocol-2.md §2.2-2.3): signature, then issuer (AADSTS700211), audience (700212), subject
(700213) and time range (700024).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

import jwt

from .aadsts import refusal
from .config import Client, FederatedCredential
from .service import Service
from .wire import Ctx, FormError, Request, Response, is_form, json_response, parse_form, timestamp

__all__ = ["federation_endpoint", "is_federated", "verify_federated"]

_LEEWAY = 300


def _issuer_url(svc: Service, credential: FederatedCredential) -> str:
    return credential.issuer.replace("{emulator}", svc.origin)


def is_federated(svc: Service, client: Client, assertion: str) -> bool:
    """True when ``assertion`` is an external token for a client with federated credentials.

    A client's own certificate-signed assertion has ``iss`` = its client id; anything else from a
    client that trusts federated credentials is taken as a federated assertion.
    """
    if not client.federated_credentials:
        return False
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return claims.get("iss") != client.client_id


def _verified_claims(svc: Service, assertion: str, issuer: Any) -> Dict[str, Any]:
    name = svc.issuers.named(svc.origin, issuer) if isinstance(issuer, str) else None
    if name is None:
        # An issuer the emulator does not host: its keys cannot be fetched (Entra fetches them over https).
        raise refusal(700027, reason=f"The signing keys of issuer '{issuer}' could not be retrieved.")
    key = svc.issuers.key(name)
    try:
        claims: Dict[str, Any] = jwt.decode(
            assertion,
            key=key.private_key.public_key(),
            algorithms=["RS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise refusal(700027, reason=f"The signature could not be verified with the keys of issuer '{issuer}'.")
    return claims


def _audiences(claims: Mapping[str, Any]) -> List[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def verify_federated(svc: Service, client: Client, assertion: str, now: float) -> None:
    """Accept a federated assertion for ``client`` or raise Entra's refusal.

    Raises:
        Refusal: AADSTS700027 (not verifiable), 700211 (issuer), 700212 (audience), 700213
            (subject), 700024 (expired or not yet valid).
    """
    try:
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise refusal(700027, reason="The client assertion is not a JWT.")
    claims = _verified_claims(svc, assertion, issuer)
    trusted = [c for c in client.federated_credentials if _issuer_url(svc, c) == issuer]
    if not trusted:
        raise refusal(700211, issuer=str(issuer))
    audiences = _audiences(claims)
    trusted = [c for c in trusted if any(a in c.audiences for a in audiences)]
    if not trusted:
        raise refusal(700212, audience=" ".join(audiences))
    subject = str(claims.get("sub", ""))
    if not any(c.subject == subject for c in trusted):  # case-sensitive, as Entra compares since 2025
        raise refusal(700213, subject=subject)
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    expired = not isinstance(exp, (int, float)) or exp + _LEEWAY < now
    early = isinstance(nbf, (int, float)) and nbf - _LEEWAY > now
    if expired or early:
        valid_from = timestamp(nbf) if isinstance(nbf, (int, float)) else "unknown"
        until = timestamp(exp) if isinstance(exp, (int, float)) else "unknown"
        raise refusal(700024, now=timestamp(now), nbf=valid_from, exp=until)


def _mint(svc: Service, request: Request, ctx: Ctx, name: str) -> Response:
    def bad(description: str) -> Response:
        return json_response(ctx, {"error": "invalid_request", "error_description": description}, status=400)

    if request.method != "POST" or not is_form(request):
        return bad("POST a form: subject, and optionally audience and lifetime.")
    try:
        form = parse_form(request.body)
    except FormError:
        return bad("The body is not a form.")
    lifetime = form.get("lifetime", "3600")
    if not (lifetime.isascii() and lifetime.isdigit()):
        return bad("lifetime is a whole number of seconds.")
    try:
        token = svc.issuers.mint(
            svc.origin,
            name,
            subject=form.get("subject", ""),
            audience=form.get("audience") or "api://AzureADTokenExchange",
            lifetime=int(lifetime),
            now=int(ctx.now),
        )
    except ValueError as exc:
        return bad(str(exc))
    return json_response(ctx, {"token": token, "expires_in": int(lifetime)})


def federation_endpoint(kind: str, svc: Service, request: Request, ctx: Ctx, name: str) -> Response:
    """Serve ``federation`` (discovery), ``federation_keys`` (JWKS) or ``federation_mint`` for issuer ``name``."""
    if name not in svc.issuers.names:
        body = {"error": "not_found", "error_description": f"No federation issuer named {name!r}."}
        return json_response(ctx, body, status=404)
    if kind == "federation_mint":
        return _mint(svc, request, ctx, name)
    if request.method not in ("GET", "HEAD"):
        return json_response(ctx, {"error": "invalid_request", "error_description": "Use GET."}, status=405)
    if kind == "federation":
        return json_response(ctx, svc.issuers.discovery(svc.origin, name))
    return json_response(ctx, svc.issuers.jwks(name))
