"""``oauth-core``: Entra ID tokens from a shell.

Exit codes: 0 success; 1 the identity service refused; 2 usage or bad input; 3 network or
service failure after retries, or a malformed service response; 4 a security check failed
(state, nonce, signature, insecure authority); 130 interrupted; 70 an internal error.

Each command imports only what it needs: ``--help`` and ``decode`` never load httpx.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, TextIO

from . import __version__
from .errors import ConfigError, OAuthCoreError, OAuthError, StateMismatch
from .files import read_private, remove_quietly, state_dir, write_private

if TYPE_CHECKING:
    from .authorize import PendingAuthorization
    from .cache import TokenCache
    from .client import EntraClient
    from .protocol import TokenSet

__all__ = ["main"]

log = logging.getLogger("oauth_core")

ROPC_NOTICE = (
    "note: Microsoft is retiring the password grant wherever MFA is enforced; it also fails for federated "
    "and personal accounts. Prefer `oauth-core login` (or authorize-url + exchange)."
)
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class UsageError(ConfigError):
    """A command-line usage mistake (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see {self.prog} --help)")


# -- parser ---------------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def _seconds_left(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return value


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes; with ``suppress`` they do not overwrite earlier values."""
    parent = argparse.ArgumentParser(add_help=False)

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parent.add_argument_group("common options")
    group.add_argument(
        "--tenant",
        default=default(None),
        help="tenant id, domain, organizations, common or consumers (env AZURE_TENANT_ID; default organizations)",
    )
    group.add_argument("--client-id", default=default(None), help="application (client) id (env AZURE_CLIENT_ID)")
    group.add_argument(
        "--authority-host",
        default=default(None),
        help="login host URL or public/usgov/china (env AZURE_AUTHORITY_HOST)",
    )
    group.add_argument(
        "--scope",
        action="append",
        default=default(None),
        help="scope to request, repeatable (default: the Azure Databricks scope)",
    )
    group.add_argument(
        "--no-offline-access",
        action="store_true",
        default=default(False),
        help="do not add 'offline_access openid profile' to user grants",
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        default=default(False),
        help="keep tokens in memory only (default: the 0600 token cache in the state directory)",
    )
    group.add_argument("--account", default=default(None), help="which cached account to use (username or account id)")
    group.add_argument("--json", action="store_true", default=default(False), help="print one JSON object")
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=default(None),
        help="seconds per HTTP request (default 30); for login, the sign-in wait (default 300)",
    )
    group.add_argument(
        "--verbose", "-v", action="store_true", default=default(False), help="log requests to stderr (secrets redacted)"
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="oauth-core",
        description="Microsoft Entra ID tokens over raw HTTP (the Azure Databricks scope by default).",
        parents=[_common_options(suppress=False)],
        epilog="Exit codes: 0 ok, 1 refused by Entra, 2 usage/bad input, 3 network/service failure, "
        "4 security check failed.",
    )
    parser.add_argument("--version", action="version", version=f"oauth-core {__version__}")
    commands: Any = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = [_common_options(suppress=True)]

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text, parents=common)
        return sub

    sub = command("authorize-url", "Print the sign-in URL and keep the pending request for `exchange`.")
    sub.add_argument(
        "--redirect-uri", default="http://localhost", help="registered redirect URI (default http://localhost)"
    )
    sub.add_argument("--prompt", choices=("login", "none", "consent", "select_account", "create"))
    sub.add_argument("--login-hint", metavar="USER")
    sub.add_argument("--domain-hint", metavar="DOMAIN")

    sub = command("login", "Sign in with the system browser; a loopback listener catches the redirect.")
    sub.add_argument(
        "--redirect-uri",
        default="http://localhost",
        help="http://localhost[:port][/path] registered for the app (default: any free port)",
    )
    sub.add_argument("--no-browser", action="store_true", help="print the URL to stderr instead of opening it")
    sub.add_argument("--prompt", choices=("login", "none", "consent", "select_account", "create"))
    sub.add_argument("--login-hint", metavar="USER")
    sub.add_argument("--listen-address", default="127.0.0.1", help="loopback address to listen on")

    sub = command("exchange", "Redeem the code of the pending request (state checked, PKCE verifier sent).")
    which = sub.add_mutually_exclusive_group(required=True)
    which.add_argument("--redirect-url", metavar="URL", help="the full URL the browser landed on (or its query)")
    which.add_argument("--code", help="the bare authorization code")
    sub.add_argument("--state", help="the state that came with --code (checked against the pending request)")

    sub = command("password", "The username/password (ROPC) grant. The password is never taken from argv.")
    sub.add_argument(
        "--username", "-u", default=os.environ.get("AZURE_USERNAME"), help="user principal name (env AZURE_USERNAME)"
    )
    sub.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_argument("--password", dest="password_argv", help=argparse.SUPPRESS)

    sub = command("refresh", "Redeem a refresh token (from stdin, or the one saved by the last grant).")
    sub.add_argument("--refresh-token-stdin", action="store_true", help="read the refresh token from stdin")

    sub = command("token", "Print only a valid access token from the cache, refreshing it silently if needed.")
    sub.add_argument(
        "--min-validity",
        type=_seconds_left,
        default=300.0,
        metavar="S",
        help="seconds the token must still be valid (default 300)",
    )

    command("accounts", "List the accounts and token scope sets the cache holds (no secrets).")

    sub = command("logout", "Remove the cached tokens of an account of this client (or everything).")
    sub.add_argument("--all", action="store_true", help="remove every cached token of every client")

    command("demo", "Run the whole story against the embedded emulator (offline; needs the crypto extra).")
    commands.add_parser(
        "emulator", help="Run the local Entra ID emulator (see `oauth-core emulator --help`).", add_help=False
    )

    sub = command("decode", "Show a JWT's header, claims and expiry (no network unless --verify).")
    sub.add_argument("token", nargs="?", default="-", help="the token, or - (default) to read standard input")
    sub.add_argument(
        "--verify", action="store_true", help="check the signature against the tenant's JWKS (needs the crypto extra)"
    )
    sub.add_argument("--jwks", metavar="FILE", help="verify against this JWKS file instead of fetching it")
    return parser


# -- settings and storage --------------------------------------------------------------------------


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _client_id(args: argparse.Namespace) -> str:
    client_id = args.client_id or _env("AZURE_CLIENT_ID")
    if not client_id or any(ch.isspace() or not ch.isprintable() for ch in client_id):
        raise UsageError("a client id is required: --client-id or AZURE_CLIENT_ID")
    return str(client_id)


def _tenant(args: argparse.Namespace) -> Optional[str]:
    return args.tenant or _env("AZURE_TENANT_ID")


def _authority_host(args: argparse.Namespace) -> Optional[str]:
    return args.authority_host or _env("AZURE_AUTHORITY_HOST")


def _cache(args: argparse.Namespace) -> TokenCache:
    from .cache import FileTokenCache, MemoryTokenCache

    return MemoryTokenCache() if args.no_cache else FileTokenCache(state_dir() / "tokens.json")


def _make_client(
    args: argparse.Namespace,
    client_id: Optional[str] = None,
    tenant: Optional[str] = None,
    authority_host: Optional[str] = None,
) -> EntraClient:
    from .client import EntraClient

    return EntraClient(
        client_id or _client_id(args),
        tenant or _tenant(args) or "organizations",
        authority_host=authority_host or _authority_host(args),
        scopes=args.scope,
        timeout=args.timeout or 30.0,
        offline_access=not args.no_offline_access,
        cache=_cache(args),
    )


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def _pending_dir() -> Path:
    return state_dir() / "pending"


def _cached_refresh_token(client: EntraClient, account: Optional[str]) -> str:
    from .cache import find_refresh_token, resolve_account

    state = client.cache.snapshot()
    resolved = resolve_account(state, client._where, account)
    token = find_refresh_token(state, client._where, resolved) if resolved else None
    if token is None:
        raise UsageError(
            "no cached refresh token for this client: sign in first (login, password, exchange), "
            "or pass one with --refresh-token-stdin"
        )
    return token


def _read_stdin_secret(what: str) -> str:
    value = sys.stdin.readline().strip()
    if not value:
        raise UsageError(f"no {what} on standard input")
    return value


# -- output ---------------------------------------------------------------------------------------


def _when(epoch: float, now: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    left = int(epoch - now)
    if left >= 0:
        return f"{moment} (in {left // 60} min {left % 60} s)"
    return f"{moment} (expired {-left // 60} min ago)"


def _print_tokens(tokens: TokenSet, as_json: bool, out: TextIO) -> None:
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
    out.write(f"Access token:\n\n{tokens.access_token}\n\n")
    if tokens.refresh_token:
        out.write(f"Refresh token:\n\n{tokens.refresh_token}\n\n")
    else:
        out.write("Refresh token: none (ask for offline_access to get one)\n\n")
    out.write(f"Expires: {_when(tokens.expires_at, now)}\n")
    out.write(f"Scopes:  {' '.join(tokens.scopes)}\n")


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
    payload["hint"] = exc.hint
    return payload


def _report(exc: OAuthCoreError, as_json: bool, err: TextIO) -> int:
    if as_json:
        err.write(json.dumps(_error_payload(exc)) + "\n")
        return exc.exit_code
    err.write(f"oauth-core: error: {exc}\n")
    if isinstance(exc, OAuthError):
        ids = [
            f"{k}: {v}"
            for k, v in (
                ("AADSTS", ",".join(map(str, exc.error_codes))),
                ("correlation id", exc.correlation_id),
                ("trace id", exc.trace_id),
            )
            if v
        ]
        if ids:
            err.write("  " + "; ".join(ids) + "\n")
    snippet = getattr(exc, "snippet", "")
    if snippet:
        err.write(f"  response began: {snippet}\n")
    if exc.hint:
        err.write(f"  hint: {exc.hint}\n")
    return exc.exit_code


# -- commands -------------------------------------------------------------------------------------


def cmd_authorize_url(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .authority import Authority
    from .authorize import build_authorization_request
    from .protocol import normalize_scopes

    authority = Authority.of(_authority_host(args), _tenant(args))
    scopes = normalize_scopes(normalize_scopes(args.scope), offline_access=not args.no_offline_access)
    pending = build_authorization_request(
        authority,
        _client_id(args),
        args.redirect_uri,
        scopes,
        prompt=args.prompt,
        login_hint=args.login_hint,
        domain_hint=args.domain_hint,
    )
    path = _pending_dir() / f"{_digest(pending.state)}.json"
    write_private(path, pending.to_json())
    _prune_pending(keep=path)
    if args.json:
        out.write(
            json.dumps(
                {
                    "url": pending.url,
                    "redirect_uri": pending.redirect_uri,
                    "scope": list(pending.scopes),
                    "pending_file": str(path),
                }
            )
            + "\n"
        )
    else:
        out.write(pending.url + "\n")
        err.write(
            "Open this URL in a browser and sign in, then run:\n"
            "  oauth-core exchange --redirect-url '<the URL the browser lands on>'\n"
        )
    return 0


def _prune_pending(keep: Path, max_age: float = 86400.0) -> None:
    for path in _pending_dir().glob("*.json"):
        try:
            if path != keep and time.time() - path.stat().st_mtime > max_age:
                remove_quietly(path)
        except OSError:
            continue


def _load_pending(path: Path) -> PendingAuthorization:
    from .authorize import PendingAuthorization

    text = read_private(path)
    if text is None:
        raise StateMismatch("no pending authorization request matches this state (tampered, or already used)")
    return PendingAuthorization.from_json(text)


def _find_pending(state: Optional[str], err: TextIO) -> tuple[Path, PendingAuthorization]:
    if state is not None:
        path = _pending_dir() / f"{_digest(state)}.json"
        return path, _load_pending(path)
    candidates = sorted(_pending_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        raise UsageError("no pending authorization request: run `oauth-core authorize-url` first")
    err.write("warning: no --state given, so the redirect's state is not checked; using the newest pending request\n")
    return candidates[0], _load_pending(candidates[0])


def cmd_login(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def show(url: str) -> None:
        prefix = (
            "Open this URL in a browser to sign in"
            if args.no_browser
            else "Opening the browser; if it does not open, visit"
        )
        err.write(f"{prefix}:\n{url}\n")
        err.flush()

    client = _make_client(args)
    with client:
        tokens = client.acquire_interactive(
            redirect_uri=args.redirect_uri,
            prompt=args.prompt,
            login_hint=args.login_hint,
            timeout=args.timeout or 300.0,
            open_browser=not args.no_browser,
            on_url=show,
            listen_address=args.listen_address,
        )
    _print_tokens(tokens, args.json, out)
    return 0


def cmd_exchange(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .authorize import parse_redirect, redirect_state

    if args.redirect_url is not None:
        if args.state is not None:
            raise UsageError("--state goes with --code; a redirect URL carries its own state")
        state = redirect_state(args.redirect_url)
        if state is None:
            raise StateMismatch("the redirect carries no state: it does not answer a request made here")
        path, pending = _find_pending(state, err)
        code = parse_redirect(pending, args.redirect_url)  # constant-time state check, error redirects
    else:
        if not args.code.strip():
            raise UsageError("--code is empty")
        path, pending = _find_pending(args.state, err)
        code = args.code.strip()
    client = _make_client(args, pending.client_id, pending.tenant, pending.authority_host)
    with client:
        try:
            tokens = client.exchange_code(pending, code=code)
        except OAuthError:
            remove_quietly(path)  # the code was presented; the pending request cannot be reused
            raise
        remove_quietly(path)
    _print_tokens(tokens, args.json, out)
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_argv is not None:
        raise UsageError(
            "never pass a password on the command line: use --password-stdin, OAUTH_CORE_PASSWORD or the prompt"
        )
    if args.password_stdin:
        return _read_stdin_secret("password")
    from_env = os.environ.get("OAUTH_CORE_PASSWORD")
    if from_env:
        return from_env
    if sys.stdin.isatty():
        value = getpass.getpass("Password: ")
        if value:
            return value
    raise UsageError("no password: use --password-stdin, OAUTH_CORE_PASSWORD, or run on a terminal to be asked")


def _ropc_notice(err: TextIO) -> None:
    marker = state_dir() / "ropc-notice-shown"
    if not marker.exists():
        err.write(ROPC_NOTICE + "\n")
        write_private(marker, "1\n")


def cmd_password(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not args.username or not args.username.strip():
        raise UsageError("--username is required (or AZURE_USERNAME)")
    password = _password(args)
    client = _make_client(args)
    _ropc_notice(err)
    with client:
        tokens = client.acquire_by_password(args.username.strip(), password)
    _print_tokens(tokens, args.json, out)
    return 0


def cmd_refresh(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client = _make_client(args)
    with client:
        token = (
            _read_stdin_secret("refresh token")
            if args.refresh_token_stdin
            else _cached_refresh_token(client, args.account)
        )
        tokens = client.refresh(token)
    _print_tokens(tokens, args.json, out)
    return 0


def cmd_token(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client = _make_client(args)
    with client:
        tokens = client.get_token(min_validity=args.min_validity, account=args.account)
    if args.json:
        _print_tokens(tokens, True, out)
    else:
        out.write(tokens.access_token + "\n")
    return 0


def cmd_accounts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .cache import accounts, entries

    state = _cache(args).snapshot()
    now = time.time()
    listed = []
    for account in accounts(state):
        tokens = [
            {"scopes": e.get("scopes"), "expires_at": int(e["expires_at"]), "expires_in": int(e["expires_at"] - now)}
            for e in entries(state)
            if e.get("account") == account.get("account") and isinstance(e.get("expires_at"), (int, float))
        ]
        listed.append({**account, "access_tokens": tokens})
    if args.json:
        out.write(json.dumps({"accounts": listed}) + "\n")
    elif not listed:
        out.write("The token cache is empty.\n")
    for account in [] if args.json else listed:
        out.write(f"{account.get('username') or '(unknown user)'}  account {account['account']}\n")
        out.write(f"  client {account['client_id']} at {account['host']}/{account['tenant']}\n")
        for token in account["access_tokens"]:
            left = token["expires_in"]
            status = f"expires in {left // 60} min" if left > 0 else "expired"
            out.write(f"  {' '.join(token['scopes'] or [])}: {status}\n")
    return 0


def cmd_logout(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .cache import CacheScope, accounts, remove_account

    cache = _cache(args)
    with cache.transaction() as state:
        if args.all:
            removed = len(accounts(state))
            for section in ("access_tokens", "refresh_tokens", "accounts", "flags"):
                state[section].clear()
        else:
            from .authority import Authority

            authority = Authority.of(_authority_host(args), _tenant(args))
            where = CacheScope(authority.host, authority.tenant, _client_id(args))
            mine = [a for a in accounts(state, where) if args.account in (None, a.get("account"), a.get("username"))]
            for account in mine:
                remove_account(
                    state, CacheScope(where.host, str(account["tenant"]), where.client_id), account["account"]
                )
            removed = len(mine)
    err.write(f"Removed {removed} account(s) from the token cache.\n")
    return 0


def _jwks(args: argparse.Namespace, claims: Dict[str, Any]) -> Dict[str, Any]:
    if args.jwks:
        try:
            data = json.loads(Path(args.jwks).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the JWKS file: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise UsageError("the JWKS file is not a JSON object")
        return data
    from .authority import Authority
    from .client import fetch_jwks

    tid = claims.get("tid") if isinstance(claims.get("tid"), str) else None
    authority = Authority.of(_authority_host(args), _tenant(args) or tid or "common")
    return fetch_jwks(authority, timeout=args.timeout or 30.0)


def cmd_decode(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .claims import inspect_token, verify_signature
    from .errors import SignatureVerificationError

    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    if not token:
        raise UsageError("no token given (pass it as an argument or on standard input)")
    info = inspect_token(token)
    verified: Optional[bool] = None
    key_id = failure = None
    if args.verify or args.jwks:
        try:
            key_id = verify_signature(token, _jwks(args, dict(info.claims)))
            verified = True
        except SignatureVerificationError as exc:
            verified, failure = False, str(exc)
    if args.json:
        out.write(
            json.dumps(
                {
                    "header": dict(info.header),
                    "claims": dict(info.claims),
                    "expires_at": int(info.expires_at.timestamp()) if info.expires_at else None,
                    "expires_in": int(info.seconds_left) if info.seconds_left is not None else None,
                    "expired": info.expired,
                    "verified": verified,
                }
            )
            + "\n"
        )
    else:
        out.write("Header:\n" + json.dumps(dict(info.header), indent=2) + "\n")
        out.write("Claims:\n" + json.dumps(dict(info.claims), indent=2) + "\n")
        now = time.time()
        for label, moment in (
            ("Issued", info.issued_at),
            ("Not before", info.not_before),
            ("Expires", info.expires_at),
        ):
            if moment is not None:
                out.write(f"{label + ':':<12}{_when(moment.timestamp(), now) if label == 'Expires' else moment}\n")
        if verified is None:
            out.write("Signature:  not checked (use --verify)\n")
        elif verified:
            out.write(f"Signature:  valid (key {key_id})\n")
        else:
            out.write(f"Signature:  INVALID ({failure})\n")
    if verified is False:
        err.write(f"oauth-core: error: {failure}\n")
        return SignatureVerificationError.exit_code
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .demo import main as demo_main

    return demo_main(out)


def run_emulator(argv: List[str], out: TextIO) -> int:
    """``oauth-core emulator ...``: the emulator parses its own options."""
    from .emulator.cli import add_arguments, run

    parser = _Parser(prog="oauth-core emulator", description="A local Entra ID compatible token service.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    return run(args, out)


COMMANDS: Dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
    "authorize-url": cmd_authorize_url,
    "login": cmd_login,
    "exchange": cmd_exchange,
    "password": cmd_password,
    "refresh": cmd_refresh,
    "token": cmd_token,
    "accounts": cmd_accounts,
    "logout": cmd_logout,
    "decode": cmd_decode,
    "demo": cmd_demo,
}


# -- entry point ----------------------------------------------------------------------------------


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from .protocol import redacted_snippet

        return redacted_snippet(super().format(record).encode("utf-8"), limit=2000)


def _setup_logging(verbose: bool) -> None:
    if not verbose:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("oauth-core: %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def main(
    argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None
) -> int:
    """Run the command line; returns the exit code (never raises, never prints a traceback)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args_list
    try:
        command = next((a for a in args_list if not a.startswith("-")), None)
        if command == "emulator":
            return run_emulator(args_list[args_list.index("emulator") + 1 :], out)
        parser = build_parser()
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        if args.command is None:
            parser.print_help(out)
            return 2
        _setup_logging(args.verbose)
        return COMMANDS[args.command](args, out, err)
    except OAuthCoreError as exc:
        return _report(exc, as_json, err)
    except KeyboardInterrupt:
        err.write("oauth-core: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        err.write(
            f"oauth-core: internal error ({type(exc).__name__}); please report it. Run with --verbose for details.\n"
        )
        return EXIT_INTERNAL
