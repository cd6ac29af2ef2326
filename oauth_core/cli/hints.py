"""What to do next, in shell terms: the command line's wording of the library's hints.

The library's hints name calls and flows (``acquire_interactive``); a person at a shell needs
the command or option instead (``oauth-core login``, ``--tenant``). The shell wording replaces a
library hint only where that hint is the one the error's class or AADSTS code gives; hints set
on one error (a cache path to fix, a benchmark's advice) are shown as they are.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Mapping, Optional, Type

from ..core.errors import (
    InteractionRequired,
    InteractionTimeout,
    InvalidScope,
    InvalidTenant,
    OAuthCoreError,
    OAuthError,
    UnauthorizedClient,
)

if TYPE_CHECKING:
    from ..core.throttle import Throttled

__all__ = ["HINTS_BY_CLASS", "HINTS_BY_CODE", "shell_hint", "throttled_hint"]

HINTS_BY_CLASS: Mapping[Type[OAuthCoreError], str] = {
    InteractionTimeout: "Sign in within the time allowed, or raise --timeout.",
    InteractionRequired: "A person must sign in interactively: run `oauth-core login` (or authorize-url + exchange).",
    UnauthorizedClient: (
        "Check --client-id and --tenant: the app must be registered in (or consented to by) that tenant."
    ),
    InvalidScope: "Check --scope: one resource per request, and `<resource>/.default` for client credentials.",
    InvalidTenant: "Check --tenant and --authority-host (the tenant must exist in that cloud).",
}

_MFA = "Multi-factor authentication is required: the password grant cannot do it. Use `oauth-core login`."
_CONSENT = "Consent is missing: sign in once interactively (`oauth-core login`) or ask an admin to grant it."
_BAD_PASSWORD = (
    "Wrong username or password. Federated (ADFS) accounts also get this from the password grant: "
    "use `oauth-core login`."
)
_RT_DEAD = "The refresh token is no longer valid: sign in again (`oauth-core login` or `password`)."
_CODE_DEAD = "The authorization code is expired or used: run `oauth-core authorize-url` again."

HINTS_BY_CODE: Mapping[int, str] = {
    50126: _BAD_PASSWORD,
    50034: "Check the username and --tenant.",
    50076: _MFA,
    50079: _MFA,
    50072: _MFA,
    530035: _MFA,
    65001: _CONSENT,
    65004: _CONSENT,
    70043: _RT_DEAD,
    70008: _CODE_DEAD,
    54005: _CODE_DEAD,
    700082: _RT_DEAD,
    700084: _RT_DEAD,
    50173: _RT_DEAD,
    70000: _RT_DEAD,
    50059: "Pass --tenant with a tenant id or domain.",
    50049: "Check --authority-host.",
}


def _code_hint(error: OAuthError, hint: str) -> Optional[str]:
    """The shell wording of ``hint`` when it is the advice of one of the error's AADSTS codes."""
    from ..core.aadsts import AADSTS

    for code in error.error_codes:
        if code in HINTS_BY_CODE and code in AADSTS and AADSTS[code][2] == hint:
            return HINTS_BY_CODE[code]
    return None


def throttled_hint(error: Throttled) -> str:
    """When to run the command again: the service's wait, counted from when it was asked for."""
    from ..core.throttle import clock_text, seconds_text

    when = f"run the command again after {clock_text(error.until)} (in {seconds_text(error.retry_after)})"
    if error.attempts == 0:
        return f"Nothing was sent: the service asked to wait after an identical request; {when}."
    return f"The service asked to wait: {when}."


def shell_hint(error: OAuthCoreError) -> Optional[str]:
    """The hint to print for ``error``: the shell wording where there is one, else the library's."""
    throttle = sys.modules.get("oauth_core.core.throttle")  # loaded if anything could be throttled
    if throttle is not None and isinstance(error, throttle.Throttled):
        return throttled_hint(error)
    hint = error.hint
    if not hint:
        return hint
    if isinstance(error, OAuthError):
        worded = _code_hint(error, hint)
        if worded is not None:
            return worded
    for cls in type(error).__mro__:
        if cls in HINTS_BY_CLASS and getattr(cls, "hint", None) == hint:
            return HINTS_BY_CLASS[cls]
    return hint
