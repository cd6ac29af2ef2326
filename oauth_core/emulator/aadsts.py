"""Entra's refusals: the AADSTS table the emulator speaks, and the JSON error body (entra-protocol.md §4).

Each code maps to its OAuth ``error``, HTTP status, optional ``suberror`` and message template.
Handlers raise :class:`Refusal`; :func:`error_response` renders it with the request's trace id,
correlation id and timestamp, in the field order Entra uses.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from .wire import Ctx, Response, json_response, timestamp

__all__ = ["MESSAGES", "Refusal", "describe", "error_body", "error_response", "refusal"]

_NOT_INSTALLED = (
    "This can happen if the application has not been installed by the administrator of the tenant or "
    "consented to by any user in the tenant."
)

_FIC_HINT = (
    "Please check your federated identity credential Subject, Audience and Issuer against the presented "
    "assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
)

# code -> (error, HTTP status, suberror, message template)
MESSAGES: Mapping[int, Tuple[str, int, Optional[str], str]] = {
    50126: ("invalid_grant", 400, None, "Error validating credentials due to invalid username or password."),
    50034: (
        "invalid_grant",
        400,
        None,
        "The user account {{EmailHidden}} does not exist in the {tenant} directory. "
        "To sign into this application, the account must be added to the directory.",
    ),
    50057: ("invalid_grant", 400, None, "The user account is disabled."),
    50076: (
        "invalid_grant",
        400,
        "basic_action",
        "Due to a configuration change made by your administrator, or because you moved to a new location, "
        "you must use multi-factor authentication to access '{resource}'.",
    ),
    65001: (
        "invalid_grant",
        400,
        "consent_required",
        "The user or administrator has not consented to use the application with ID '{client_id}' named "
        "'{client_name}'. Send an interactive authorization request for this user and resource.",
    ),
    65004: ("access_denied", 400, None, "The resource owner or authorization server denied the request."),
    70008: (
        "invalid_grant",
        400,
        None,
        "The provided authorization code or refresh token has expired due to inactivity. "
        "Send a new interactive authorization request for this user and resource.",
    ),
    54005: (
        "invalid_grant",
        400,
        None,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
        "existing refresh token.",
    ),
    700082: (
        "invalid_grant",
        400,
        "bad_token",
        "The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive "
        "for {inactive}.",
    ),
    70000: (
        "invalid_grant",
        400,
        None,
        "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
    ),
    9002313: ("invalid_grant", 400, None, "Invalid request. Request is malformed or invalid."),
    50173: (
        "invalid_grant",
        400,
        None,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might "
        "have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom date "
        "(before which tokens are not valid) for this user is '{valid_from}'.",
    ),
    501481: (
        "invalid_grant",
        400,
        None,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    ),
    700005: (
        "invalid_grant",
        400,
        None,
        "Provided Authorization Code is intended to use against other tenant, thus rejected.",
    ),
    500112: (
        "invalid_grant",
        400,
        None,
        "The reply address '{received}' does not match the reply address '{expected}' provided when "
        "requesting Authorization code.",
    ),
    7000218: (
        "invalid_client",
        401,
        None,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ),
    7000215: (
        "invalid_client",
        401,
        None,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
        "value, not the client secret ID, for a secret added to app '{client_id}'.",
    ),
    700025: (
        "invalid_client",
        401,
        None,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    ),
    700027: ("invalid_client", 401, None, "Client assertion failed signature validation. [Reason - {reason}]"),
    700016: (
        "unauthorized_client",
        400,
        None,
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
        + _NOT_INSTALLED
        + " You may have sent your authentication request to the wrong tenant.",
    ),
    90002: (
        "invalid_request",
        400,
        None,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    ),
    50059: (
        "invalid_request",
        400,
        None,
        "No tenant-identifying information found in either the request or implied by any provided credentials.",
    ),
    50011: (
        "invalid_request",
        400,
        None,
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured "
        "for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to "
        "your application.",
    ),
    90102: ("invalid_request", 400, None, "'redirect_uri' value must be a valid absolute Uri."),
    70011: (
        "invalid_scope",
        400,
        None,
        "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
    ),
    1002012: (
        "invalid_scope",
        400,
        None,
        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with "
        "/.default suffixed to the resource identifier (application ID URI).",
    ),
    500011: (
        "invalid_resource",
        400,
        None,
        "The resource principal named {resource} was not found in the tenant named {tenant}. "
        + _NOT_INSTALLED
        + " You might have sent your authentication request to the wrong tenant.",
    ),
    900144: ("invalid_request", 400, None, "The request body must contain the following parameter: '{name}'."),
    900561: (
        "invalid_request",
        400,
        None,
        "The endpoint only accepts POST requests. Received a {method} request.",
    ),
    901002: ("invalid_request", 400, None, "The 'resource' request parameter isn't supported."),
    9001023: (
        "invalid_request",
        400,
        None,
        "The grant type is not supported over the /common or /consumers endpoints. Please use the "
        "/organizations or tenant-specific endpoint.",
    ),
    70003: ("unsupported_grant_type", 400, None, "The app requested an unsupported grant type '{grant_type}'."),
    700054: (
        "unsupported_response_type",
        400,
        None,
        "response_type '{response_type}' is not enabled for the application.",
    ),
    50058: ("login_required", 400, None, "A silent sign-in request was sent but no user is signed in."),
    70016: (
        "authorization_pending",
        400,
        None,
        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    ),
    70020: (
        "expired_token",
        400,
        None,
        "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
    ),
    70018: (
        "bad_verification_code",
        400,
        None,
        "The provided value for the input parameter 'device_code' is not valid.",
    ),
    90033: ("temporarily_unavailable", 503, None, "A transient error has occurred. Please try again."),
    # Federated credentials (entra-protocol-2.md §2.3; wording from captured responses). The audience
    # code is also quoted as 7002121; 700212 is the one seen in captured bodies.
    700211: (
        "invalid_client",
        401,
        None,
        "No matching federated identity record found for presented assertion issuer '{issuer}'. " + _FIC_HINT,
    ),
    700212: (
        "invalid_client",
        401,
        None,
        "No matching federated identity record found for presented assertion audience '{audience}'. " + _FIC_HINT,
    ),
    700213: (
        "invalid_client",
        401,
        None,
        "No matching federated identity record found for presented assertion subject '{subject}'. " + _FIC_HINT,
    ),
    # The error and status of 700024 are unconfirmed; invalid_client 401 like the other assertion refusals.
    700024: (
        "invalid_client",
        401,
        None,
        "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, "
        "expiry time of assertion {exp}.",
    ),
    # On-behalf-of (entra-protocol-2.md §3). The error values are unconfirmed: invalid_grant 400 as for
    # other bad grants.
    50013: ("invalid_grant", 400, None, "Assertion failed signature validation. [Reason - {reason}]"),
    500131: (
        "invalid_grant",
        400,
        None,
        "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion "
        "was '{audience}' and the expected audience is '{client_id}' or one of the Application Uris of this "
        "application with App ID '{client_id}'. The downstream client must request a token for the expected "
        "audience (the application that made the OBO request) and this application should use that token as "
        "the assertion.",
    ),
    500133: (
        "invalid_grant",
        400,
        None,
        "Assertion is not within its valid time range. Ensure that the access token is not expired before using "
        "it for user assertion, or request a new token. Current time: {now}, expiry time of assertion {exp}.",
    ),
    50049: ("invalid_instance", 400, None, "Unknown or invalid instance."),
    # A ``claims`` value that is not a JSON object. The code's pairing with bad claims is unconfirmed.
    90100: ("invalid_request", 400, None, "The '{name}' parameter is empty or not valid."),
}


class Refusal(Exception):
    """An Entra refusal on its way to becoming a response.

    Attributes:
        code: the AADSTS number.
        error: the OAuth ``error`` value.
        status: the HTTP status.
        message: the text after ``AADSTS<code>: ``.
        suberror: Entra's ``suberror``, if any.
        claims: a claims challenge (a JSON string) to send with the error, if any.
    """

    def __init__(self, code: int, error: str, status: int, message: str, suberror: Optional[str] = None) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.code = code
        self.error = error
        self.status = status
        self.message = message
        self.suberror = suberror
        self.claims: Optional[str] = None


def refusal(code: int, *, error: Optional[str] = None, status: Optional[int] = None, **params: str) -> Refusal:
    """The :class:`Refusal` for an AADSTS code, its message filled in from ``params``."""
    default_error, default_status, suberror, template = MESSAGES[code]
    return Refusal(
        code=code,
        error=error or default_error,
        status=status or default_status,
        message=template.format(**params),
        suberror=suberror,
    )


def describe(refused: Refusal, ctx: Ctx) -> str:
    """The ``error_description``: the AADSTS text, then Trace ID, Correlation ID and Timestamp."""
    sep = "\r\n" if ctx.crlf else " "
    return sep.join(
        (
            str(refused),
            f"Trace ID: {ctx.trace_id}",
            f"Correlation ID: {ctx.correlation_id}",
            f"Timestamp: {timestamp(ctx.now)}",
        )
    )


def error_body(refused: Refusal, ctx: Ctx) -> Dict[str, Any]:
    """The §4.1 JSON error body, fields in Entra's order (claims, then suberror, last)."""
    body: Dict[str, Any] = {
        "error": refused.error,
        "error_description": describe(refused, ctx),
        "error_codes": [refused.code],
        "timestamp": timestamp(ctx.now),
        "trace_id": ctx.trace_id,
        "correlation_id": ctx.correlation_id,
        "error_uri": f"{ctx.origin}/error?code={refused.code}",
    }
    if refused.claims is not None:
        body["claims"] = refused.claims
    if refused.suberror:
        body["suberror"] = refused.suberror
    return body


def error_response(refused: Refusal, ctx: Ctx) -> Response:
    """The JSON error response for a refusal."""
    return json_response(ctx, error_body(refused, ctx), status=refused.status)
