"""Sign-in commands: authorize-url, login, exchange, password, refresh, device-code, client-credentials."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, TextIO

from ..core.errors import OAuthError, StateMismatch, TokensNotSaved
from .credentials import (
    cached_refresh_token,
    client_credential,
    password,
    read_stdin_secret,
    refuse_refresh_token_argv,
    ropc_notice,
    username,
)
from .output import print_tokens, safe
from .pending import find_pending, pending_path, prune_pending
from .settings import authority_host, check_cache, claims_of, client_id, make_client, tenant, trusted_hosts
from .usage import AddCommand, UsageError

if TYPE_CHECKING:
    from ..core.device import DeviceCode

__all__ = [
    "add_app_commands",
    "add_sign_in_commands",
    "cmd_authorize_url",
    "cmd_client_credentials",
    "cmd_device_code",
    "cmd_exchange",
    "cmd_login",
    "cmd_password",
    "cmd_refresh",
]

_PROMPTS = ("login", "none", "consent", "select_account", "create")


def add_sign_in_commands(command: AddCommand) -> None:
    """authorize-url, login, exchange, password and refresh."""
    command(
        "authorize-url", "Print the sign-in URL and keep the pending request for `exchange`.", _authorize_url_options
    )
    command("login", "Sign in with the system browser; a loopback listener catches the redirect.", _login_options)
    command(
        "exchange", "Redeem the code of the pending request (state checked, PKCE verifier sent).", _exchange_options
    )
    command("password", "The username/password (ROPC) grant. The password is never taken from argv.", _password_options)
    command("refresh", "Redeem a refresh token (from stdin, or the one saved by the last grant).", _refresh_options)


def add_app_commands(command: AddCommand) -> None:
    """device-code and client-credentials."""
    command("device-code", "Sign in on another device: show a code to enter at the verification page, then wait.")
    command(
        "client-credentials",
        "An app-only token for a service principal (secret or certificate; tenant and <resource>/.default scope).",
        _client_credentials_options,
    )


def _authorize_url_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--redirect-uri", default="http://localhost", help="registered redirect URI (default http://localhost)"
    )
    sub.add_argument("--prompt", choices=_PROMPTS)
    sub.add_argument("--login-hint", metavar="USER")
    sub.add_argument("--domain-hint", metavar="DOMAIN")


def _login_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--redirect-uri",
        default="http://localhost",
        help="http://localhost[:port][/path] registered for the app (default: any free port)",
    )
    sub.add_argument("--no-browser", action="store_true", help="print the URL to stderr instead of opening it")
    sub.add_argument("--prompt", choices=_PROMPTS)
    sub.add_argument("--login-hint", metavar="USER")
    sub.add_argument("--listen-address", default="127.0.0.1", help="loopback address to listen on")


def _exchange_options(sub: argparse.ArgumentParser) -> None:
    which = sub.add_mutually_exclusive_group(required=True)
    which.add_argument("--redirect-url", metavar="URL", help="the full URL the browser landed on (or its query)")
    which.add_argument("--code", help="the bare authorization code (with --state, or --latest)")
    sub.add_argument("--state", help="the state that came with --code (checked against the pending request)")
    sub.add_argument(
        "--latest",
        action="store_true",
        help="with --code but no --state: redeem it for the newest pending request (no state check)",
    )


def _password_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--username", "-u", default=None, help="user principal name (env AZURE_USERNAME)")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_argument("--password", dest="password_argv", help=argparse.SUPPRESS)


def _refresh_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--refresh-token-stdin", action="store_true", help="read the refresh token from stdin")
    sub.add_argument("--refresh-token", dest="refresh_token_argv", help=argparse.SUPPRESS)


def _client_credentials_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--client-secret-stdin",
        action="store_true",
        help="read the client secret from stdin (else AZURE_CLIENT_SECRET)",
    )
    sub.add_argument(
        "--certificate",
        metavar="PEMFILE",
        help="PEM file with the private key and certificate (env AZURE_CLIENT_CERTIFICATE_PATH; "
        "password in AZURE_CLIENT_CERTIFICATE_PASSWORD; needs the crypto extra)",
    )
    sub.add_argument("--client-secret", dest="client_secret_argv", help=argparse.SUPPRESS)


def cmd_authorize_url(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the sign-in URL; keep the pending request (state, nonce, PKCE verifier) for exchange."""
    from ..core.authority import Authority
    from ..core.authorize import build_authorization_request
    from ..core.protocol import claims_parameter, normalize_scopes
    from ..drivers.files import write_private

    authority = Authority.of(authority_host(args), tenant(args)).require_trusted(trusted_hosts(args))
    scopes = normalize_scopes(normalize_scopes(args.scope), offline_access=not args.no_offline_access)
    pending = build_authorization_request(
        authority,
        client_id(args),
        args.redirect_uri,
        scopes,
        prompt=args.prompt,
        login_hint=args.login_hint,
        domain_hint=args.domain_hint,
        claims=claims_parameter(claims_of(args), args.client_capability or ()),
    )
    path = pending_path(pending.state)
    write_private(path, pending.to_json())
    prune_pending(keep=path)
    if args.json:
        shown = {"url": pending.url, "redirect_uri": pending.redirect_uri, "scope": list(pending.scopes)}
        out.write(json.dumps({**shown, "pending_file": str(path)}) + "\n")
    else:
        out.write(pending.url + "\n")
        err.write(
            "Open this URL in a browser and sign in, then run:\n"
            "  oauth-core exchange --redirect-url '<the URL the browser lands on>'\n"
        )
    return 0


def cmd_login(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Sign in with the system browser; a loopback listener catches the redirect."""

    def show(url: str) -> None:
        prefix = (
            "Open this URL in a browser to sign in"
            if args.no_browser
            else "Opening the browser; if it does not open, visit"
        )
        err.write(f"{prefix}:\n{url}\n")
        err.flush()

    client = make_client(args)
    check_cache(client)  # before the browser opens: a sign-in whose tokens cannot be kept is wasted
    with client:
        tokens = client.acquire_interactive(
            redirect_uri=args.redirect_uri,
            prompt=args.prompt,
            login_hint=args.login_hint,
            timeout=args.timeout or 300.0,
            open_browser=not args.no_browser,
            on_url=show,
            listen_address=args.listen_address,
            claims=claims_of(args),
        )
    print_tokens(tokens, args.json, out)
    return 0


def cmd_exchange(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Redeem the code of a pending request (its state checked, its PKCE verifier sent)."""
    from ..core.authorize import parse_redirect, redirect_state
    from ..drivers.files import remove_quietly

    if args.redirect_url is not None:
        if args.state is not None or args.latest:
            raise UsageError("--state and --latest go with --code; a redirect URL carries its own state")
        state = redirect_state(args.redirect_url)
        if not state:
            raise StateMismatch("the redirect carries no state: it does not answer a request made here")
        path, pending = find_pending(state, False, err)
        code = parse_redirect(pending, args.redirect_url)  # constant-time state check, error redirects
    else:
        if not args.code.strip():
            raise UsageError("--code is empty")
        path, pending = find_pending(args.state, args.latest, err)
        code = args.code.strip()
    client = make_client(args, pending.client_id, pending.tenant, pending.authority_host)
    check_cache(client)  # a damaged cache: nothing sent, and the pending request is kept
    with client:
        try:
            tokens = client.exchange_code(pending, code=code)
        except (OAuthError, TokensNotSaved):
            remove_quietly(path)  # the code was presented; the pending request cannot be reused
            raise
        remove_quietly(path)
    print_tokens(tokens, args.json, out)
    return 0


def cmd_password(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The username/password (ROPC) grant."""
    user = username(args)
    client = make_client(args)
    check_cache(client)  # before the password is asked for, and before it is sent
    secret = password(args)
    ropc_notice(err)
    with client:
        tokens = client.acquire_by_password(user, secret, claims=claims_of(args))
    print_tokens(tokens, args.json, out)
    return 0


def cmd_refresh(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Redeem a refresh token from stdin, or the cached one."""
    refuse_refresh_token_argv(args)
    client = make_client(args)
    check_cache(client)  # a damaged cache is refused before the token is read or sent
    with client:
        token = (
            read_stdin_secret("refresh token")
            if args.refresh_token_stdin
            else cached_refresh_token(client, args.account)
        )
        tokens = client.refresh(token, claims=claims_of(args))
    print_tokens(tokens, args.json, out)
    return 0


def cmd_device_code(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The device code flow: show the code and wait for the sign-in on another device."""

    def show(code: DeviceCode) -> None:
        err.write(safe(code.message) + "\n")
        err.flush()

    client = make_client(args)
    check_cache(client)
    with client:
        tokens = client.acquire_by_device_code(on_code=show, timeout=args.timeout, claims=claims_of(args))
    print_tokens(tokens, args.json, out)
    return 0


def cmd_client_credentials(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """An app-only token for a service principal."""
    secret, certificate = client_credential(args)
    client = make_client(args, client_secret=secret, client_certificate=certificate)
    check_cache(client)
    with client:
        tokens = client.acquire_for_client(claims=claims_of(args))
    print_tokens(tokens, args.json, out)
    return 0
