"""Secrets a command needs: read from stdin, the environment or a prompt, never from argv."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Optional, TextIO, Tuple

from ..core.errors import ConfigError
from .settings import read_env, secret_env
from .usage import UsageError

if TYPE_CHECKING:
    from ..core.assertion import ClientCertificate
    from ..drivers.sync import EntraClient

__all__ = [
    "ROPC_NOTICE",
    "cached_refresh_token",
    "client_credential",
    "password",
    "read_stdin_secret",
    "refuse_refresh_token_argv",
    "ropc_notice",
    "username",
]

ROPC_NOTICE = (
    "note: Microsoft is retiring the password grant wherever MFA is enforced; it also fails for personal "
    "accounts (federated ones sign in through their WS-Trust endpoint). Prefer `oauth-core login` "
    "(or authorize-url + exchange)."
)


def read_stdin_secret(what: str) -> str:
    """One line of standard input, as typed: only its line end goes (spaces may belong to a secret)."""
    line = sys.stdin.readline()
    value = line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line
    if not value.strip():
        raise UsageError(f"no {what} on standard input")
    return value


def cached_refresh_token(client: EntraClient, account: Optional[str]) -> str:
    """The refresh token the cache holds for this client (and ``account``)."""
    from ..drivers.stores import find_refresh_token, resolve_account

    state = client.cache.snapshot()
    resolved = resolve_account(state, client.cache_scope, account)
    token = find_refresh_token(state, client.cache_scope, resolved) if resolved else None
    if token is None:
        raise UsageError(
            "no cached refresh token for this client: sign in first (login, password, exchange), "
            "or pass one with --refresh-token-stdin"
        )
    return token


def refuse_refresh_token_argv(args: argparse.Namespace) -> None:
    """A refresh token on the command line is refused (it would land in shell history)."""
    if args.refresh_token_argv is not None:
        raise UsageError(
            "never pass a refresh token on the command line: use --refresh-token-stdin (or the cached one)"
        )


def password(args: argparse.Namespace) -> str:
    """--password-stdin, OAUTH_CORE_PASSWORD, or a prompt on a terminal."""
    import getpass

    if args.password_argv is not None:
        raise UsageError(
            "never pass a password on the command line: use --password-stdin, OAUTH_CORE_PASSWORD or the prompt"
        )
    if args.password_stdin:
        return read_stdin_secret("password")
    from_env = secret_env("OAUTH_CORE_PASSWORD")
    if from_env:
        return from_env
    if sys.stdin.isatty():
        value = getpass.getpass("Password: ")
        if value:
            return value
    raise UsageError("no password: use --password-stdin, OAUTH_CORE_PASSWORD, or run on a terminal to be asked")


def username(args: argparse.Namespace) -> str:
    """--username or AZURE_USERNAME: a user principal name."""
    name = (args.username or "").strip() or read_env("AZURE_USERNAME")
    if not name:
        raise UsageError("--username is required (or AZURE_USERNAME)")
    if any(ch.isspace() or not ch.isprintable() for ch in name) or len(name) > 256:
        raise UsageError("the username must be a user principal name (name@domain), without spaces")
    return name


def ropc_notice(err: TextIO) -> None:
    """Print the password grant's retirement notice, once per state directory."""
    from ..drivers.files import state_dir, write_private

    marker = state_dir() / "ropc-notice-shown"
    try:
        if marker.exists():
            return
        write_private(marker, "1\n")
    except (ConfigError, OSError):
        return  # an unusable state directory is reported by the command itself, in one line
    err.write(ROPC_NOTICE + "\n")


def client_credential(args: argparse.Namespace) -> Tuple[Optional[str], Optional[ClientCertificate]]:
    """The secret (stdin or AZURE_CLIENT_SECRET) or the certificate (--certificate or the env path)."""
    if args.client_secret_argv is not None:
        raise UsageError(
            "never pass a client secret on the command line: use --client-secret-stdin or AZURE_CLIENT_SECRET"
        )
    if args.client_secret_stdin and args.certificate:
        raise UsageError("use --client-secret-stdin or --certificate, not both")
    if args.client_secret_stdin:
        return read_stdin_secret("client secret"), None
    secret = None if args.certificate else read_env("AZURE_CLIENT_SECRET")
    if secret:
        return secret, None
    path = args.certificate or read_env("AZURE_CLIENT_CERTIFICATE_PATH")
    if path:
        from ..core.assertion import ClientCertificate

        key_password = secret_env("AZURE_CLIENT_CERTIFICATE_PASSWORD")
        return None, ClientCertificate.from_file(path, key_password.encode("utf-8") if key_password else None)
    raise UsageError(
        "no client credential: use --client-secret-stdin, AZURE_CLIENT_SECRET, --certificate "
        "or AZURE_CLIENT_CERTIFICATE_PATH"
    )
