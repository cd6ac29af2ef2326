"""The AADSTS table: what each Entra error code means, which exception it raises, what to do next.

The advice is in library terms (which call or flow to use); the command line words its own
advice for the same codes in ``oauth_core.cli.hints``.
"""

from __future__ import annotations

from typing import Mapping, Optional, Tuple, Type

from .errors import (
    AccessDenied,
    AuthorizationPending,
    BadVerificationCode,
    ExpiredToken,
    FederatedCredentialRejected,
    InteractionRequired,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidResource,
    InvalidScope,
    InvalidTenant,
    LoopDetected,
    OAuthError,
    UnauthorizedClient,
)

__all__ = ["AADSTS"]

_INTERACTIVE = "sign in interactively (acquire_interactive, or the authorization code flow)"
_MFA = f"Multi-factor authentication is required: the password grant cannot do it; {_INTERACTIVE}."
_CONSENT = "Consent is missing: sign in once interactively (acquire_interactive) or ask an admin to grant it."
_CA = "Conditional Access blocked this sign-in; an interactive sign-in from a compliant device may pass."
_BAD_PASSWORD = (
    f"Wrong username or password. Federated (ADFS) accounts also get this from the password grant: {_INTERACTIVE}."
)
_RT_DEAD = "The refresh token is no longer valid: sign in again (interactively, or with the password grant)."
_CODE_DEAD = "The authorization code is expired or used: start a new authorization request."
_NO_FIC = "the app's (or managed identity's) federated credentials"
_TENANT_ALIAS = "The password grant needs a tenant id, a domain or `organizations`, not common/consumers."

# AADSTS number -> (exception class, short meaning, what to do next). One table for every code
# in shared/entra-protocol.md; the class wins over the `error` value Entra sent, because Entra
# reports MFA and consent as `invalid_grant` on the v2 password grant.
AADSTS: Mapping[int, Tuple[Type[OAuthError], str, Optional[str]]] = {
    50126: (InvalidGrant, "invalid username or password", _BAD_PASSWORD),
    500112: (
        InvalidGrant,
        "the redirect URI differs from the one the code was issued for",
        "Redeem the code with the redirect URI of the authorize request that produced it.",
    ),
    50034: (InvalidGrant, "user account does not exist in the directory", "Check the username and the tenant."),
    50053: (InvalidGrant, "account locked (too many attempts)", "Wait, then try again or reset the password."),
    50057: (InvalidGrant, "user account is disabled", "Ask an administrator to enable the account."),
    50055: (InteractionRequired, "password expired", "Change the password interactively, then sign in."),
    50076: (InteractionRequired, "multi-factor authentication required", _MFA),
    50079: (InteractionRequired, "multi-factor registration required", _MFA),
    50072: (InteractionRequired, "MFA enrollment interrupt", _MFA),
    530035: (InteractionRequired, "blocked by security defaults", _MFA),
    65001: (InteractionRequired, "consent required", _CONSENT),
    65004: (AccessDenied, "user declined consent", _CONSENT),
    53003: (InteractionRequired, "blocked by Conditional Access", _CA),
    530032: (InteractionRequired, "blocked by Conditional Access security policy", _CA),
    50058: (InteractionRequired, "no signed-in session for a silent request", "Sign in interactively."),
    50199: (InteractionRequired, "user confirmation required", "Sign in interactively."),
    70043: (InteractionRequired, "refresh token expired by sign-in frequency policy", _RT_DEAD),
    70008: (InvalidGrant, "code or refresh token expired", _CODE_DEAD),
    54005: (InvalidGrant, "authorization code already redeemed", _CODE_DEAD),
    700082: (InvalidGrant, "refresh token expired due to inactivity", _RT_DEAD),
    700084: (InvalidGrant, "SPA refresh token past its fixed lifetime", _RT_DEAD),
    50173: (InvalidGrant, "grant revoked (password changed or reset)", _RT_DEAD),
    70000: (InvalidGrant, "refresh token or assertion is invalid", _RT_DEAD),
    9002313: (
        InvalidGrant,
        "request malformed (garbled code or token)",
        "Pass the code or token exactly once-encoded.",
    ),
    50148: (InvalidGrant, "code_verifier does not match code_challenge", "Finish with the same pending request."),
    501481: (InvalidGrant, "code_verifier does not match code_challenge", "Finish with the same pending request."),
    700005: (InvalidGrant, "code issued for another tenant", "Redeem the code with the tenant it was issued for."),
    7000218: (
        InvalidClient,
        "client credential required",
        "The app is confidential: pass a client secret, or enable public client flows.",
    ),
    7000215: (InvalidClient, "invalid client secret", "Use the secret's value, not its id."),
    7000222: (InvalidClient, "client secret expired", "Create a new client secret."),
    700025: (InvalidClient, "public client must not present a credential", "Do not send a secret for a public client."),
    700027: (InvalidClient, "client assertion signature invalid", "Check the certificate registered for the app."),
    70002: (InvalidClient, "client credential invalid", None),
    70021: (
        FederatedCredentialRejected,
        "no federated credential matches the presented token",
        f"Compare the token's iss, sub and aud with {_NO_FIC}; a new federated credential takes a few "
        "minutes to apply, so retry a little later after creating one.",
    ),
    700211: (
        FederatedCredentialRejected,
        "federated token issuer matches no federated credential",
        "The token's iss must equal the federated credential's issuer exactly, trailing slash included "
        "(the cluster's OIDC issuer URL, or https://token.actions.githubusercontent.com).",
    ),
    700212: (
        FederatedCredentialRejected,
        "federated token audience matches no federated credential",
        "Request the federated token for the credential's audience, normally api://AzureADTokenExchange "
        "(a projected service-account token or an OIDC token asked for that audience).",
    ),
    700213: (
        FederatedCredentialRejected,
        "federated token subject matches no federated credential",
        "The federated credential's subject does not match the token's sub (compared case-sensitively): check "
        "the service account (system:serviceaccount:<namespace>:<name>) or workflow subject "
        "(repo:<owner>/<repo>:...) configured on the app registration.",
    ),
    700024: (
        FederatedCredentialRejected,
        "client assertion expired or not yet valid",
        "Read a fresh federated token for each exchange (they live minutes to an hour); for a "
        "certificate assertion, check this machine's clock.",
    ),
    50012: (InvalidClient, "client assertion invalid", None),
    700016: (UnauthorizedClient, "application not found in the directory", None),
    90002: (InvalidTenant, "tenant not found", None),
    50059: (InvalidTenant, "no tenant-identifying information", "Use a tenant id or a domain as the tenant."),
    70011: (InvalidScope, "invalid scope", None),
    1002012: (InvalidScope, "client credentials need a /.default scope", None),
    700022: (InvalidScope, "scopes span more than one resource", None),
    500011: (
        InvalidResource,
        "resource principal not found in the tenant",
        "Check the scope's resource id and the tenant.",
    ),
    900144: (InvalidRequest, "a required parameter is missing", None),
    90014: (InvalidRequest, "a required field is missing", None),
    9001023: (InvalidRequest, "grant not supported on /common or /consumers", _TENANT_ALIAS),
    901002: (InvalidRequest, "the v1 `resource` parameter is not supported on v2", "Use scope=<resource>/.default."),
    90102: (InvalidRequest, "redirect_uri is not a valid absolute URI", None),
    50011: (InvalidRequest, "redirect URI mismatch", "Use a redirect URI registered for the app."),
    50147: (InvalidRequest, "code_challenge has the wrong size", None),
    501491: (InvalidRequest, "code_challenge has the wrong size", None),
    700054: (InvalidRequest, "response_type not enabled for the app", None),
    50049: (InvalidRequest, "unknown authority instance", "Check the authority host."),
    50196: (LoopDetected, "too many identical requests (loop detected)", LoopDetected.hint),
    70016: (AuthorizationPending, "device flow: authorization pending", None),
    70020: (ExpiredToken, "device flow: device code expired", "Start the device code flow again."),
    70018: (BadVerificationCode, "device flow: bad verification code", None),
    70019: (ExpiredToken, "device flow: code expired", None),
}
