"""What the commands print: tokens, errors with their hints, and --verbose request logs."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, TextIO

from ..core.errors import OAuthCoreError, OAuthError, TokensNotSaved
from .exit_codes import exit_code_for
from .hints import shell_hint

if TYPE_CHECKING:
    from ..core.protocol import TokenSet

__all__ = [
    "TOKEN_OUTPUTS",
    "az_access_token",
    "exec_credential",
    "print_token_as",
    "print_tokens",
    "report",
    "safe",
    "setup_logging",
    "unsaved",
    "when",
]

# ``token --output``: the bare token, our JSON, kubectl's exec credential, az's get-access-token.
TOKEN_OUTPUTS = ("plain", "json", "exec-credential", "az")
EXEC_CREDENTIAL_API = "client.authentication.k8s.io/v1"


def when(epoch: float, now: float) -> str:
    """A UTC time with how long until (or since) it."""
    from datetime import datetime, timezone

    moment = datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    left = int(epoch - now)
    if left >= 0:
        return f"{moment} (in {left // 60} min {left % 60} s)"
    return f"{moment} (expired {-left // 60} min ago)"


def safe(text: Any, *, multiline: bool = False) -> str:
    """Text from a server (or a token, or the cache) with escape sequences and controls removed."""
    from ..core.redaction import terminal_safe

    return terminal_safe(str(text), multiline=multiline)


def print_tokens(tokens: TokenSet, as_json: bool, out: TextIO) -> None:
    """The tokens of a grant: one JSON object, or labelled text."""
    now = time.time()
    if as_json:
        data = {
            "token_type": tokens.token_type,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "id_token": tokens.id_token,
            "scope": list(tokens.scopes),
            "expires_in": tokens.expires_in(now),
            "expires_at": int(tokens.expires_at),
            "claims": dict(tokens.claims) if tokens.claims is not None else None,
        }
        out.write(json.dumps(data) + "\n")
        return
    out.write(f"Access token:\n\n{safe(tokens.access_token)}\n\n")
    if tokens.refresh_token:
        out.write(f"Refresh token:\n\n{safe(tokens.refresh_token)}\n\n")
    else:
        out.write("Refresh token: none (user grants need offline_access; app-only tokens never have one)\n\n")
    out.write(f"Expires: {when(tokens.expires_at, now)}\n")
    out.write(f"Scopes:  {safe(' '.join(tokens.scopes))}\n")


def exec_credential(tokens: TokenSet) -> Dict[str, Any]:
    """A Kubernetes ``ExecCredential`` (``client.authentication.k8s.io/v1``) for a kubeconfig ``exec:`` entry.

    ``status.expirationTimestamp`` is RFC 3339 in UTC to the second (rounded down, as metav1.Time
    writes it); ``spec`` is the transport's input, which kubectl ignores in the answer: it is
    written as a plugin that never prompts would see it.
    """
    from datetime import datetime, timezone

    expires = datetime.fromtimestamp(int(tokens.expires_at), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "kind": "ExecCredential",
        "apiVersion": EXEC_CREDENTIAL_API,
        "spec": {"interactive": False},
        "status": {"token": tokens.access_token, "expirationTimestamp": expires},
    }


def az_access_token(tokens: TokenSet) -> Dict[str, Any]:
    """What ``az account get-access-token`` prints, for scripts written for it.

    ``expiresOn`` is local time as az writes it (``YYYY-MM-DD HH:MM:SS.ffffff``), ``expires_on``
    epoch seconds, ``tenant`` the token's ``tid`` (None when it has none). ``subscription`` is left
    out, as az leaves it out when asked for a tenant's token: there is no subscription here.
    """
    from datetime import datetime

    expires_on = int(tokens.expires_at)
    tenant = tokens.claims.get("tid") if tokens.claims is not None else None
    token_type = tokens.token_type or "Bearer"
    return {
        "accessToken": tokens.access_token,
        "expiresOn": datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "expires_on": expires_on,
        "tenant": tenant if isinstance(tenant, str) else None,
        "tokenType": "Bearer" if token_type.lower() == "bearer" else token_type,
    }


def print_token_as(tokens: TokenSet, output: str, out: TextIO) -> None:
    """The access token in one of :data:`TOKEN_OUTPUTS` (JSON is ASCII: nothing reaches the terminal raw)."""
    if output == "json":
        print_tokens(tokens, True, out)
    elif output == "exec-credential":
        out.write(json.dumps(exec_credential(tokens)) + "\n")
    elif output == "az":  # as az prints it: sorted keys, two-space indent
        out.write(json.dumps(az_access_token(tokens), indent=2, sort_keys=True) + "\n")
    else:
        print_plain_token(tokens.access_token, out)


def print_plain_token(access_token: str, out: TextIO) -> None:
    """``--output plain``: the access token alone on one line."""
    out.write(safe(access_token) + "\n")


def unsaved(exc: TokensNotSaved, out: TextIO, err: TextIO) -> int:
    """Tokens were issued but the cache refused them: print them (as --json would) rather than lose them."""
    print_tokens(exc.tokens, True, out)
    err.write(
        f"warning: {safe(exc)}; the tokens are printed above as JSON and will not be reused by oauth-core: "
        "keep what you need from them, and fix the cache before the next sign-in\n"
    )
    return exit_code_for(exc)


def _error_payload(exc: OAuthCoreError) -> Dict[str, Any]:
    if isinstance(exc, OAuthError):
        payload = exc.to_dict()
    else:
        name = "".join("_" + c.lower() if c.isupper() else c for c in type(exc).__name__).lstrip("_")
        payload = {
            "error": name,
            "error_description": str(exc),
            "error_codes": [],
            "correlation_id": None,
            "trace_id": None,
            "status": getattr(exc, "status", None),
        }
    payload["hint"] = shell_hint(exc)
    return payload


def _diagnostics(exc: OAuthError) -> str:
    ids = [
        f"{k}: {v}"
        for k, v in (
            ("AADSTS", ",".join(map(str, exc.error_codes))),
            ("correlation id", exc.correlation_id),
            ("trace id", exc.trace_id),
        )
        if v
    ]
    return "; ".join(ids)


def report(exc: OAuthCoreError, as_json: bool, err: TextIO) -> int:
    """Print ``exc`` (one JSON line, or text with its ids, response start and hint); return its exit code."""
    if as_json:  # json.dumps escapes control characters (ESC is written as \u001b)
        err.write(json.dumps(_error_payload(exc)) + "\n")
        return exit_code_for(exc)
    err.write(f"oauth-core: error: {safe(exc)}\n")
    ids = _diagnostics(exc) if isinstance(exc, OAuthError) else ""
    if ids:
        err.write("  " + safe(ids) + "\n")
    snippet = getattr(exc, "snippet", "")
    if snippet:
        err.write(f"  response began: {safe(snippet)}\n")
    hint = shell_hint(exc)
    if hint:
        err.write(f"  hint: {safe(hint)}\n")
    return exit_code_for(exc)


def setup_logging(verbose: bool, err: TextIO) -> None:
    """With --verbose, log oauth_core's requests to ``err`` through a formatter that redacts tokens."""
    if not verbose:
        return
    import logging

    from ..core.protocol import redacted_snippet

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redacted_snippet(super().format(record).encode("utf-8"), limit=2000)

    handler = logging.StreamHandler(err)
    handler.setFormatter(RedactingFormatter("oauth-core: %(levelname)s %(message)s"))
    handler.set_name("oauth-core-cli")
    log = logging.getLogger("oauth_core")
    for old in [h for h in log.handlers if h.get_name() == "oauth-core-cli"]:
        log.removeHandler(old)  # main() may run many times in one process (tests, embedding)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
