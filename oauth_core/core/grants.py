"""Token requests: each grant's form fields, the one token-request builder, and the token flow.

Each grant is a small value (its form pairs); :func:`build_token_request` adds the client id,
scopes and the confidential client's credential and returns a frozen request;
:func:`token_flow` is the generator the sync and async drivers run: it yields that request and
returns the parsed :class:`~oauth_core.core.messages.TokenSet` (RFC 6749 §4, Entra's v2.0
token endpoint). Pure: no I/O here.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Generator, Mapping, Optional, Sequence, Union

from .authority import Authority
from .errors import ConfigError
from .messages import HttpRequest, HttpResponse, Pairs, TokenSet, parse_token_response
from .scopes import DEFAULT_SCOPES

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "JWT_BEARER_GRANT",
    "Claims",
    "TokenFlow",
    "authorization_code_grant",
    "build_token_request",
    "check_client_credentials",
    "claims_parameter",
    "client_credentials_grant",
    "on_behalf_of_grant",
    "password_grant",
    "refresh_token_grant",
    "token_flow",
    "with_claims",
]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def authorization_code_grant(code: str, redirect_uri: str, code_verifier: str) -> Pairs:
    """Redeem an authorization code with its PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    return (
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    )


def password_grant(username: str, password: str) -> Pairs:
    """The resource owner password credentials grant (RFC 6749 §4.3)."""
    return (("grant_type", "password"), ("username", username), ("password", password))


def refresh_token_grant(refresh_token: str) -> Pairs:
    """Redeem a refresh token (RFC 6749 §6)."""
    return (("grant_type", "refresh_token"), ("refresh_token", refresh_token))


def client_credentials_grant() -> Pairs:
    """The client credentials grant: the application acts as itself (RFC 6749 §4.4)."""
    return (("grant_type", "client_credentials"),)


JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def on_behalf_of_grant(user_assertion: str) -> Pairs:
    """The on-behalf-of grant: a middle-tier API trades its caller's access token for one of its own."""
    return (("grant_type", JWT_BEARER_GRANT), ("assertion", user_assertion), ("requested_token_use", "on_behalf_of"))


Claims = Union[None, str, Mapping[str, Any]]  # a claims request: Entra's JSON text, or the parsed object


def claims_parameter(claims: Claims, capabilities: Sequence[str] = ()) -> Optional[str]:
    """The ``claims`` request parameter: a claims request merged with the client's capabilities.

    ``claims`` is what a resource or Entra sent in a challenge (JSON text or its object); each
    capability (``cp1``: "I can answer CAE challenges") goes to ``access_token.xms_cc.values``,
    as MSAL sends them. None when there is nothing to ask for.

    Raises:
        ConfigError: ``claims`` is not a JSON object (or its ``access_token`` part is not one).
    """
    if isinstance(claims, str):
        try:
            parsed: Any = json.loads(claims)
        except (ValueError, RecursionError):
            raise ConfigError("claims must be a JSON object, as Entra sends it in a claims challenge") from None
    else:
        parsed = dict(claims) if claims is not None else {}
    if not isinstance(parsed, dict):
        raise ConfigError("claims must be a JSON object, as Entra sends it in a claims challenge")
    if capabilities:
        access = parsed.get("access_token", {})
        if not isinstance(access, dict):
            raise ConfigError("the claims' access_token part must be a JSON object")
        merged: Dict[str, Any] = dict(access)
        merged["xms_cc"] = {"values": list(capabilities)}
        parsed = {**parsed, "access_token": merged}
    return json.dumps(parsed, separators=(",", ":")) if parsed else None


def with_claims(grant: Pairs, claims: Optional[str]) -> Pairs:
    """``grant`` with the ``claims`` parameter (from :func:`claims_parameter`) when there is one."""
    return grant if claims is None else (*grant, ("claims", claims))


def check_client_credentials(scopes: Sequence[str], tenant: str, *, confidential: bool) -> None:
    """Refuse, before anything is sent, a client credentials grant Entra would refuse.

    Raises:
        ConfigError: not one ``<resource>/.default`` scope, a tenant alias, or no client credential.
    """
    if len(scopes) != 1 or not scopes[0].endswith("/.default") or scopes[0] == "/.default":
        raise ConfigError(
            "client credentials take exactly one scope of the form <resource>/.default "
            f"(e.g. {DEFAULT_SCOPES[0]}); the app's permissions are granted by an admin, not by scope"
        )
    if tenant.lower() in ("organizations", "common", "consumers"):
        raise ConfigError(
            f"client credentials need the service principal's tenant (id or domain), not "
            f"'{tenant}': pass tenant= (the tenant id or domain)"
        )
    if not confidential:
        raise ConfigError("client credentials need a client_secret or a client_certificate")


def _require_values(pairs: Pairs) -> None:
    for name, value in pairs:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name} must be a non-empty string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{name} is not valid text (it holds undecodable bytes)") from None


def build_token_request(
    authority: Authority,
    client_id: str,
    grant: Pairs,
    *,
    scopes: Sequence[str],
    client_secret: Optional[str] = None,
    headers: Pairs = (),
    client_assertion: Optional[str] = None,
) -> HttpRequest:
    """The one builder of token-endpoint POSTs (every grant).

    Form order: ``client_id``, the grant's fields, ``scope``, ``client_info=1`` (so the response
    names the account), then the credential of a confidential client: ``client_secret``, or
    ``client_assertion_type`` + ``client_assertion`` (a signed JWT, RFC 7523 §2.2).

    Raises:
        ConfigError: an empty client id, grant value, secret or assertion, or both credentials.
    """
    form: Pairs = (("client_id", client_id), *grant, ("scope", " ".join(scopes)), ("client_info", "1"))
    if client_secret is not None and client_assertion is not None:
        raise ConfigError("pass a client secret or a client assertion, not both")
    if client_secret is not None:
        form += (("client_secret", client_secret),)
    if client_assertion is not None:
        form += (("client_assertion_type", CLIENT_ASSERTION_TYPE), ("client_assertion", client_assertion))
    _require_values(form)
    grant_type = dict(grant).get("grant_type")
    return HttpRequest(
        method="POST",
        url=authority.token_endpoint,
        headers=(("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json"), *headers),
        form=form,
        single_use=grant_type == "authorization_code",
    )


TokenFlow = Generator[HttpRequest, HttpResponse, TokenSet]


def token_flow(request: HttpRequest, *, clock: Callable[[], float] = time.time) -> TokenFlow:
    """Send one token request and parse its answer; the result is the generator's return value."""
    scopes = tuple(dict(request.form).get("scope", "").split())
    response = yield request
    return parse_token_response(response, received_at=clock(), requested_scopes=scopes)
