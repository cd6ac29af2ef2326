"""Random values that protect the authorization code flow: state, nonce and PKCE (RFC 7636).

All come from :mod:`secrets`; comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from .errors import ConfigError

__all__ = ["code_challenge", "new_code_verifier", "new_nonce", "new_state", "values_match"]

# RFC 7636 §4.1: code_verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def new_state() -> str:
    """A fresh ``state``: 256 random bits, base64url (43 characters), never starting with ``-``.

    A leading ``-`` would make ``--state <value>`` read as another option on a command line; drawing
    again in that case (1 time in 64) costs 0.02 bits of its 256.
    """
    while True:
        state = secrets.token_urlsafe(32)
        if not state.startswith("-"):
            return state


def new_nonce() -> str:
    """A fresh OpenID Connect ``nonce``: 256 random bits, base64url."""
    return secrets.token_urlsafe(32)


def new_code_verifier(nbytes: int = 48) -> str:
    """A fresh PKCE verifier: ``nbytes`` random bytes as base64url (64 characters by default).

    Raises:
        ConfigError: ``nbytes`` would give a verifier outside RFC 7636's 43-128 characters.
    """
    if not 32 <= nbytes <= 96:
        raise ConfigError("code verifier must come from 32 to 96 random bytes (43-128 characters)")
    return secrets.token_urlsafe(nbytes)


def code_challenge(verifier: str) -> str:
    """The S256 challenge: BASE64URL-ENCODE(SHA256(ASCII(verifier))) without padding.

    Raises:
        ConfigError: the verifier is not 43-128 unreserved characters.
    """
    if not _VERIFIER.fullmatch(verifier):
        raise ConfigError("code verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636)")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def values_match(expected: str, received: str) -> bool:
    """Constant-time equality of two protocol values (state, nonce)."""
    # surrogatepass: a value holding undecodable bytes still compares (unequal), never raises
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), received.encode("utf-8", "surrogatepass"))
