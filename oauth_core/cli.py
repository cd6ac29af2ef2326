"""``oauth-core``: Entra ID tokens from a shell.

Exit codes: 0 success; 1 the identity service refused; 2 usage or bad input; 3 network or
service failure after retries, or a malformed service response; 4 a security check failed
(state, nonce, signature, insecure authority); 130 interrupted; 70 an internal error.

Each command imports only what it needs: ``--help`` and ``decode`` never load httpx.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, TextIO

from . import __version__
from .errors import ConfigError, OAuthCoreError, OAuthError, StateMismatch, TokensNotSaved

if TYPE_CHECKING:  # modules a command imports when it runs (start-up stays light for decode and --help)
    from pathlib import Path

    from .assertion import ClientCertificate
    from .authorize import PendingAuthorization
    from .benchmark import Grant
    from .cache import TokenCache
    from .client import EntraClient
    from .protocol import TokenSet

__all__ = ["main"]

ROPC_NOTICE = (
    "note: Microsoft is retiring the password grant wherever MFA is enforced; it also fails for federated "
    "and personal accounts. Prefer `oauth-core login` (or authorize-url + exchange)."
)
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class UsageError(ConfigError):
    """A command-line usage mistake (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line.

    Its messages never repeat a value from the command line (it may be a secret typed in the wrong
    place), and options must be spelled out: an abbreviation could swallow the wrong argument.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        raise UsageError(f"{_without_values(message)} (see {self.prog} --help)")


_LONG_FLAG = re.compile(r"--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_SHORT_FLAG = re.compile(r"-[A-Za-z]")


def _without_values(message: str) -> str:
    """An argparse message with the user's values taken out (option names and choice lists stay)."""
    head, marker, rest = message.partition(": invalid choice: ")
    if marker:
        choices = rest.rpartition(" (choose from ")[2]
        return (
            f"{head}: invalid choice (choose from {choices}" if "(choose from " in rest else f"{head}: invalid choice"
        )
    for marker in (" value: ", ": ignored explicit argument "):
        head, found, _ = message.partition(marker)
        if found:
            return head + (" value" if marker == " value: " else ": takes no value")
    if message.startswith("ambiguous option: "):
        option, _, matches = message[len("ambiguous option: ") :].partition(" could match ")
        return f"ambiguous option {_flag_name(option) or ''} (could match {matches})".replace("  ", " ")
    if message.startswith("unrecognized arguments: "):
        return "unrecognized arguments (not shown: they may hold secrets)"
    return message


def _flag_name(arg: str) -> Optional[str]:
    """The option name of ``--name[=value]`` or ``-x``, when it looks like one; else None."""
    name = arg.split("=", 1)[0]
    if (_LONG_FLAG.fullmatch(name) and len(name) <= 40) or _SHORT_FLAG.fullmatch(arg):
        return name
    return None


def _unrecognized(extras: Sequence[str]) -> str:
    """What argparse could not place, naming options but never repeating a value."""
    names = [name for name in map(_flag_name, extras) if name]
    options = sum(1 for arg in extras if arg.startswith("-") and arg != "-" and not _flag_name(arg))
    values = len(extras) - len(names) - options
    parts = [f"unrecognized arguments: {' '.join(names)}"] if names else []
    if options:
        parts.append(f"{options} unrecognized option{'s' if options > 1 else ''} (not shown)")
    if values:
        parts.append(f"{values} unexpected positional argument{'s' if values > 1 else ''}")
    return "; ".join(parts)


# -- parser ---------------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def _seconds_left(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number") from None
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
    group.add_argument(
        "--allow-authority-host",
        action="append",
        default=default(None),
        metavar="HOST",
        help="trust this authority host besides Entra's own and loopback (repeatable; env OAUTH_CORE_TRUSTED_HOSTS)",
    )
    group.add_argument("--json", action="store_true", default=default(False), help="print one JSON object")
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=default(None),
        help="seconds per HTTP request (default 30); for login and device-code, the sign-in wait "
        "(default 300; device-code: the code's expiry)",
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

    _add_sign_in_commands(command)
    _add_token_commands(command)
    _add_databricks_command(command)
    _add_bench_command(command)

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


def _add_sign_in_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """authorize-url, login, exchange, password and refresh."""
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
    which.add_argument("--code", help="the bare authorization code (with --state, or --latest)")
    sub.add_argument("--state", help="the state that came with --code (checked against the pending request)")
    sub.add_argument(
        "--latest",
        action="store_true",
        help="with --code but no --state: redeem it for the newest pending request (no state check)",
    )

    sub = command("password", "The username/password (ROPC) grant. The password is never taken from argv.")
    sub.add_argument("--username", "-u", default=None, help="user principal name (env AZURE_USERNAME)")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_argument("--password", dest="password_argv", help=argparse.SUPPRESS)

    sub = command("refresh", "Redeem a refresh token (from stdin, or the one saved by the last grant).")
    sub.add_argument("--refresh-token-stdin", action="store_true", help="read the refresh token from stdin")
    sub.add_argument("--refresh-token", dest="refresh_token_argv", help=argparse.SUPPRESS)


def _add_token_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """device-code, client-credentials, token, accounts and logout."""
    command("device-code", "Sign in on another device: show a code to enter at the verification page, then wait.")

    sub = command(
        "client-credentials",
        "An app-only token for a service principal (secret or certificate; tenant and <resource>/.default scope).",
    )
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


def _add_databricks_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """databricks: a REST call to a workspace with the cached token."""
    sub = command(
        "databricks",
        "Call an Azure Databricks REST API path with the cached token and print the JSON answer "
        "(the tenant is found from the workspace unless --tenant is given).",
    )
    sub.add_argument("--host", help="workspace host or URL, e.g. adb-123.4.azuredatabricks.net (env DATABRICKS_HOST)")
    sub.add_argument(
        "--allow-workspace-host",
        action="append",
        metavar="HOST",
        help="send the token to this workspace host too (repeatable); by default only *.azuredatabricks.net, "
        "*.databricks.azure.us, *.databricks.azure.cn and loopback hosts get it",
    )
    sub.add_argument(
        "--resource-id",
        metavar="ID",
        help="the workspace's ARM resource id, sent as X-Databricks-Azure-Workspace-Resource-Id "
        "(env DATABRICKS_AZURE_RESOURCE_ID)",
    )
    sub.add_argument(
        "--sp-management-token",
        action="store_true",
        help="as a service principal (client credentials): also send X-Databricks-Azure-SP-Management-Token",
    )
    sub.add_argument("--data", metavar="JSON|@FILE", help="JSON request body, or @file to read it from")
    sub.add_argument("--client-secret-stdin", action="store_true", help="service principal: read the secret from stdin")
    sub.add_argument("--certificate", metavar="PEMFILE", help="service principal: PEM key and certificate")
    sub.add_argument("--client-secret", dest="client_secret_argv", help=argparse.SUPPRESS)
    sub.add_argument("method", metavar="METHOD", help="GET, POST, PUT, PATCH, DELETE or HEAD")
    sub.add_argument("path", metavar="PATH", help="REST path starting with /api/, e.g. /api/2.0/clusters/list")


def _add_bench_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """bench: timed token exchanges."""
    sub = command(
        "bench",
        "Time token exchanges, each sent once (no retries): DNS/connect/TLS/TTFB/total percentiles, "
        "throttling (429, Retry-After) and AADSTS errors. Real tenants throttle: keep -n small.",
    )
    sub.epilog = (
        "connect includes name resolution (httpx resolves inside it); dns is socket.getaddrinfo() timed separately "
        "after each new connection. auth-code-replay redeems one --code repeatedly: it measures refusal latency "
        "(AADSTS54005 after the first). A run stops, exit 1, on invalid_grant twice in a row (except a replay)."
    )
    sub.add_argument(
        "--grant", required=True, choices=("refresh", "password", "client-credentials", "auth-code-replay")
    )
    sub.add_argument("-n", type=int, default=20, metavar="N", help="exchanges to measure (default 20, at most 10000)")
    sub.add_argument("--concurrency", type=int, default=1, metavar="C", help="threads, one connection each (max 64)")
    sub.add_argument("--warmup", type=int, default=2, metavar="W", help="exchanges sent first, not counted (default 2)")
    sub.add_argument(
        "--max-retry-after", type=float, default=60.0, metavar="S", help="longest pause after a 429 (default 60)"
    )
    sub.add_argument("--plot", metavar="FILE.png", help="also draw the latencies (needs matplotlib: the bench extra)")
    sub.add_argument("--progress", action="store_true", help="progress bar on stderr even when it is not a terminal")
    sub.add_argument("--username", "-u", default=None, help="password grant: the user")
    sub.add_argument("--password-stdin", action="store_true", help="password grant: read the password from stdin")
    sub.add_argument("--password", dest="password_argv", help=argparse.SUPPRESS)
    sub.add_argument("--refresh-token-stdin", action="store_true", help="refresh: read it from stdin (else cached)")
    sub.add_argument("--refresh-token", dest="refresh_token_argv", help=argparse.SUPPRESS)
    sub.add_argument("--client-secret-stdin", action="store_true", help="client credentials: secret from stdin")
    sub.add_argument("--certificate", metavar="PEMFILE", help="client credentials: PEM key and certificate")
    sub.add_argument("--client-secret", dest="client_secret_argv", help=argparse.SUPPRESS)
    sub.add_argument("--code", help="auth-code-replay: the authorization code (pending request from authorize-url)")
    sub.add_argument("--state", help="auth-code-replay: the state that came with --code")
    sub.add_argument(
        "--latest", action="store_true", help="auth-code-replay without --state: the newest pending request"
    )


# -- settings and storage --------------------------------------------------------------------------


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name)
    if value is not None and not _is_text(value):
        raise UsageError(f"{name} is not valid UTF-8")
    return value.strip() if value and value.strip() else None


def _secret_env(name: str) -> Optional[str]:
    """A secret from the environment, unstripped (spaces may belong to it); blank means unset."""
    value = os.environ.get(name)
    if value is not None and not _is_text(value):
        raise UsageError(f"{name} is not valid UTF-8")
    return value if value and value.strip() else None


def _is_text(value: str) -> bool:
    """False for strings holding undecodable bytes (lone surrogates from the OS)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _client_id(args: argparse.Namespace) -> str:
    client_id = args.client_id or _env("AZURE_CLIENT_ID")
    if not client_id or any(ch.isspace() or not ch.isprintable() for ch in client_id):
        raise UsageError("a client id is required: --client-id or AZURE_CLIENT_ID")
    return str(client_id)


# Options whose empty value must not read as "not given" (and fall back to a default or the environment).
_NOT_BLANK = (
    ("tenant", "--tenant"),
    ("client_id", "--client-id"),
    ("authority_host", "--authority-host"),
    ("account", "--account"),
    ("host", "--host"),
    ("resource_id", "--resource-id"),
)


def _check_not_blank(args: argparse.Namespace) -> None:
    """An option given as an empty or blank value is a usage error, not a silent default."""
    for dest, flag in _NOT_BLANK:
        value = getattr(args, dest, None)
        if value is not None and not value.strip():
            raise UsageError(f"{flag} is empty: give a value, or leave the option out")


def _tenant(args: argparse.Namespace) -> Optional[str]:
    return args.tenant or _env("AZURE_TENANT_ID")


def _authority_host(args: argparse.Namespace) -> Optional[str]:
    return args.authority_host or _env("AZURE_AUTHORITY_HOST")


def _cache(args: argparse.Namespace) -> TokenCache:
    from .cache import FileTokenCache, MemoryTokenCache
    from .files import state_dir

    return MemoryTokenCache() if args.no_cache else FileTokenCache(state_dir() / "tokens.json")


def _make_client(
    args: argparse.Namespace,
    client_id: Optional[str] = None,
    tenant: Optional[str] = None,
    authority_host: Optional[str] = None,
    *,
    client_secret: Optional[str] = None,
    client_certificate: Optional[ClientCertificate] = None,
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
        client_secret=client_secret,
        client_certificate=client_certificate,
        trusted_hosts=_trusted_hosts(args),
    )


def _trusted_hosts(args: argparse.Namespace) -> List[str]:
    from_env = (_env("OAUTH_CORE_TRUSTED_HOSTS") or "").replace(",", " ").split()
    return [*(args.allow_authority_host or []), *from_env]


def _digest(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def _pending_dir() -> Path:
    from .files import state_dir

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
    """One line of standard input, as typed: only its line end goes (spaces may belong to a secret)."""
    line = sys.stdin.readline()
    value = line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line
    if not value.strip():
        raise UsageError(f"no {what} on standard input")
    return value


def _check_cache(client: EntraClient) -> None:
    """Refuse a damaged or unusable token cache before anything is sent (or a secret asked for)."""
    client.cache.check_usable()


# -- output ---------------------------------------------------------------------------------------


def _when(epoch: float, now: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    left = int(epoch - now)
    if left >= 0:
        return f"{moment} (in {left // 60} min {left % 60} s)"
    return f"{moment} (expired {-left // 60} min ago)"


def _safe(text: Any, *, multiline: bool = False) -> str:
    """Text from a server (or a token, or the cache) with escape sequences and controls removed."""
    from .protocol import terminal_safe

    return terminal_safe(str(text), multiline=multiline)


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
    out.write(f"Access token:\n\n{_safe(tokens.access_token)}\n\n")
    if tokens.refresh_token:
        out.write(f"Refresh token:\n\n{_safe(tokens.refresh_token)}\n\n")
    else:
        out.write("Refresh token: none (user grants need offline_access; app-only tokens never have one)\n\n")
    out.write(f"Expires: {_when(tokens.expires_at, now)}\n")
    out.write(f"Scopes:  {_safe(' '.join(tokens.scopes))}\n")


def _unsaved(exc: TokensNotSaved, out: TextIO, err: TextIO) -> int:
    """Tokens were issued but the cache refused them: print them (as --json would) rather than lose them."""
    _print_tokens(exc.tokens, True, out)
    err.write(
        f"warning: {_safe(exc)}; the tokens are printed above as JSON and will not be reused by oauth-core: "
        "keep what you need from them, and fix the cache before the next sign-in\n"
    )
    return 0


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
    if as_json:  # json.dumps escapes control characters (ESC is written as \u001b)
        err.write(json.dumps(_error_payload(exc)) + "\n")
        return exc.exit_code
    err.write(f"oauth-core: error: {_safe(exc)}\n")
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
            err.write("  " + _safe("; ".join(ids)) + "\n")
    snippet = getattr(exc, "snippet", "")
    if snippet:
        err.write(f"  response began: {_safe(snippet)}\n")
    if exc.hint:
        err.write(f"  hint: {_safe(exc.hint)}\n")
    return exc.exit_code


# -- commands -------------------------------------------------------------------------------------


def cmd_authorize_url(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .authority import Authority
    from .authorize import build_authorization_request
    from .files import write_private
    from .protocol import normalize_scopes

    authority = Authority.of(_authority_host(args), _tenant(args)).require_trusted(_trusted_hosts(args))
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
    from .files import remove_quietly

    for path in _pending_dir().glob("*.json"):
        try:
            if path != keep and time.time() - path.stat().st_mtime > max_age:
                remove_quietly(path)
        except OSError:
            continue


def _load_pending(path: Path) -> PendingAuthorization:
    from .authorize import PendingAuthorization
    from .files import read_private

    text = read_private(path)
    if text is None:
        raise StateMismatch("no pending authorization request matches this state (tampered, or already used)")
    return PendingAuthorization.from_json(text)


def _find_pending(state: Optional[str], latest: bool, err: TextIO) -> tuple[Path, PendingAuthorization]:
    """The pending request of ``state``, or (``latest``) the newest one; reading it changes nothing."""
    if state is not None and not state.strip():
        raise UsageError("--state is empty")
    if state is not None and latest:
        raise UsageError("give --state or --latest, not both")
    if state is not None:
        path = _pending_dir() / f"{_digest(state)}.json"
        return path, _load_pending(path)
    if not latest:
        raise UsageError(
            "--code needs the --state that came with it (checked against the pending request), "
            "or --latest to redeem it for the newest pending request without that check"
        )
    candidates = sorted(_pending_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        raise UsageError("no pending authorization request: run `oauth-core authorize-url` first")
    err.write("warning: --latest: the redirect's state is not checked; using the newest pending request\n")
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
    _check_cache(client)  # before the browser opens: a sign-in whose tokens cannot be kept is wasted
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
    from .files import remove_quietly

    if args.redirect_url is not None:
        if args.state is not None or args.latest:
            raise UsageError("--state and --latest go with --code; a redirect URL carries its own state")
        state = redirect_state(args.redirect_url)
        if not state:
            raise StateMismatch("the redirect carries no state: it does not answer a request made here")
        path, pending = _find_pending(state, False, err)
        code = parse_redirect(pending, args.redirect_url)  # constant-time state check, error redirects
    else:
        if not args.code.strip():
            raise UsageError("--code is empty")
        path, pending = _find_pending(args.state, args.latest, err)
        code = args.code.strip()
    client = _make_client(args, pending.client_id, pending.tenant, pending.authority_host)
    _check_cache(client)  # a damaged cache: nothing sent, and the pending request is kept
    with client:
        try:
            tokens = client.exchange_code(pending, code=code)
        except (OAuthError, TokensNotSaved):
            remove_quietly(path)  # the code was presented; the pending request cannot be reused
            raise
        remove_quietly(path)
    _print_tokens(tokens, args.json, out)
    return 0


def _password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_argv is not None:
        raise UsageError(
            "never pass a password on the command line: use --password-stdin, OAUTH_CORE_PASSWORD or the prompt"
        )
    if args.password_stdin:
        return _read_stdin_secret("password")
    from_env = _secret_env("OAUTH_CORE_PASSWORD")
    if from_env:
        return from_env
    if sys.stdin.isatty():
        value = getpass.getpass("Password: ")
        if value:
            return value
    raise UsageError("no password: use --password-stdin, OAUTH_CORE_PASSWORD, or run on a terminal to be asked")


def _ropc_notice(err: TextIO) -> None:
    from .files import state_dir, write_private

    marker = state_dir() / "ropc-notice-shown"
    try:
        if marker.exists():
            return
        write_private(marker, "1\n")
    except (ConfigError, OSError):
        return  # an unusable state directory is reported by the command itself, in one line
    err.write(ROPC_NOTICE + "\n")


def _username(args: argparse.Namespace) -> str:
    username = (args.username or "").strip() or _env("AZURE_USERNAME")
    if not username:
        raise UsageError("--username is required (or AZURE_USERNAME)")
    if any(ch.isspace() or not ch.isprintable() for ch in username) or len(username) > 256:
        raise UsageError("the username must be a user principal name (name@domain), without spaces")
    return username


def cmd_password(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    username = _username(args)
    client = _make_client(args)
    _check_cache(client)  # before the password is asked for, and before it is sent
    password = _password(args)
    _ropc_notice(err)
    with client:
        tokens = client.acquire_by_password(username, password)
    _print_tokens(tokens, args.json, out)
    return 0


def _refuse_refresh_token_argv(args: argparse.Namespace) -> None:
    if args.refresh_token_argv is not None:
        raise UsageError(
            "never pass a refresh token on the command line: use --refresh-token-stdin (or the cached one)"
        )


def cmd_refresh(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _refuse_refresh_token_argv(args)
    client = _make_client(args)
    _check_cache(client)  # a damaged cache is refused before the token is read or sent
    with client:
        token = (
            _read_stdin_secret("refresh token")
            if args.refresh_token_stdin
            else _cached_refresh_token(client, args.account)
        )
        tokens = client.refresh(token)
    _print_tokens(tokens, args.json, out)
    return 0


def cmd_device_code(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .device import DeviceCode

    def show(code: DeviceCode) -> None:
        err.write(_safe(code.message) + "\n")
        err.flush()

    client = _make_client(args)
    _check_cache(client)
    with client:
        tokens = client.acquire_by_device_code(on_code=show, timeout=args.timeout)
    _print_tokens(tokens, args.json, out)
    return 0


def _client_credential(args: argparse.Namespace) -> tuple[Optional[str], Optional[ClientCertificate]]:
    """The secret (stdin or AZURE_CLIENT_SECRET) or the certificate (--certificate or the env path)."""
    if args.client_secret_argv is not None:
        raise UsageError(
            "never pass a client secret on the command line: use --client-secret-stdin or AZURE_CLIENT_SECRET"
        )
    if args.client_secret_stdin and args.certificate:
        raise UsageError("use --client-secret-stdin or --certificate, not both")
    if args.client_secret_stdin:
        return _read_stdin_secret("client secret"), None
    secret = None if args.certificate else _env("AZURE_CLIENT_SECRET")
    if secret:
        return secret, None
    path = args.certificate or _env("AZURE_CLIENT_CERTIFICATE_PATH")
    if path:
        from .assertion import ClientCertificate

        password = _secret_env("AZURE_CLIENT_CERTIFICATE_PASSWORD")
        return None, ClientCertificate.from_file(path, password.encode("utf-8") if password else None)
    raise UsageError(
        "no client credential: use --client-secret-stdin, AZURE_CLIENT_SECRET, --certificate "
        "or AZURE_CLIENT_CERTIFICATE_PATH"
    )


def cmd_client_credentials(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    secret, certificate = _client_credential(args)
    client = _make_client(args, client_secret=secret, client_certificate=certificate)
    _check_cache(client)
    with client:
        tokens = client.acquire_for_client()
    _print_tokens(tokens, args.json, out)
    return 0


def cmd_token(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client = _make_client(args)
    with client:
        tokens = client.get_token(min_validity=args.min_validity, account=args.account)
    if args.json:
        _print_tokens(tokens, True, out)
    else:
        out.write(_safe(tokens.access_token) + "\n")
    return 0


def cmd_accounts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .cache import accounts, entries

    state = _cache(args).snapshot()
    now = time.time()
    listed: List[Dict[str, Any]] = []
    for account in accounts(state):
        tokens = []
        for entry in entries(state):
            expires_at = entry.get("expires_at")
            if entry.get("account") != account["account"] or isinstance(expires_at, bool):
                continue
            if not isinstance(expires_at, (int, float)) or not abs(expires_at) < 1e11:
                continue  # a hand-edited entry: not listed (and not served)
            scopes = entry.get("scopes")
            scopes = [x for x in scopes if isinstance(x, str)] if isinstance(scopes, list) else []
            tokens.append({"scopes": scopes, "expires_at": int(expires_at), "expires_in": int(expires_at - now)})
        shown = {k: (v if isinstance(v, str) else None) for k, v in account.items()}
        listed.append({**shown, "access_tokens": tokens})
    if args.json:
        out.write(json.dumps({"accounts": listed}) + "\n")
    elif not listed:
        out.write("The token cache is empty.\n")
    for account in [] if args.json else listed:  # names and scopes come from tokens: shown made safe
        out.write(_safe(f"{account.get('username') or '(unknown user)'}  account {account['account']}") + "\n")
        out.write(_safe(f"  client {account.get('client_id')} at {account.get('host')}/{account.get('tenant')}") + "\n")
        for token in account["access_tokens"]:
            left = token["expires_in"]
            status = f"expires in {left // 60} min" if left > 0 else "expired"
            out.write(f"  {_safe(' '.join(token['scopes'] or []))}: {status}\n")
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


MAX_DATA_BYTES = 16 * 1024 * 1024


def _data_file(name: str) -> str:
    """The text of a --data @FILE: at most MAX_DATA_BYTES of UTF-8."""
    if not name:
        raise UsageError("--data @FILE needs a file name after the @")
    try:
        with open(name, "rb") as handle:
            raw = handle.read(MAX_DATA_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read the --data file: {reason}") from None
    if len(raw) > MAX_DATA_BYTES:
        raise UsageError(f"the --data file is larger than {MAX_DATA_BYTES // (1024 * 1024)} MiB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError("the --data file is not UTF-8 text: it must hold a JSON request body") from None


def _json_data(text: Optional[str]) -> Any:
    """The --data value: JSON text, or @file holding it."""
    if text is None:
        return None
    if text.startswith("@"):
        text = _data_file(text[1:])
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise UsageError("--data is not valid JSON") from None


def _management_token(client: EntraClient, err: TextIO) -> str:
    """A service principal's Azure Resource Manager token (used even when the cache cannot keep it)."""
    from .databricks import MANAGEMENT_SCOPE

    try:
        return client.acquire_for_client(scopes=MANAGEMENT_SCOPE).access_token
    except TokensNotSaved as exc:
        err.write(f"warning: {_safe(exc)}\n")
        return str(exc.tokens.access_token)


def _print_payload(payload: Any, as_json: bool, out: TextIO) -> None:
    if isinstance(payload, str):  # not JSON: the workspace's text, made safe for a terminal
        text = _safe(payload, multiline=True)
        out.write(text if text.endswith("\n") else text + "\n")
    elif payload is not None:
        out.write(json.dumps(payload, indent=None if as_json else 2) + "\n")


def cmd_databricks(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .auth import APP_ACCOUNT
    from .databricks import call, describe_error, require_workspace_host, workspace_tenant

    given = args.host or _env("DATABRICKS_HOST")
    if not given:
        raise UsageError("a workspace is required: --host or DATABRICKS_HOST")
    allowed = args.allow_workspace_host or []
    host = require_workspace_host(given, allowed)  # before anything is sent, even the tenant lookup
    body = _json_data(args.data)
    # A credential given (or refused: a secret on argv) means a service principal, as does --account app.
    service_principal = bool(
        args.sp_management_token
        or args.account == APP_ACCOUNT
        or args.client_secret_stdin
        or args.certificate
        or args.client_secret_argv is not None
    )
    secret, certificate = _client_credential(args) if service_principal else (None, None)
    _cache(args).check_usable()
    tenant = _tenant(args) or workspace_tenant(host, timeout=args.timeout or 10.0)
    client = _make_client(args, tenant=tenant, client_secret=secret, client_certificate=certificate)
    with client:
        management = _management_token(client, err) if args.sp_management_token else None
        status, payload = call(
            client,
            host,
            args.method,
            args.path,
            json_body=body,
            resource_id=args.resource_id or _env("DATABRICKS_AZURE_RESOURCE_ID"),
            management_token=management,
            scopes=client.scopes,
            account=APP_ACCOUNT if service_principal else args.account,
            timeout=args.timeout or 30.0,
            allowed_hosts=allowed,
        )
    if status >= 300:  # 4xx (and redirects): the workspace refused, exit 1; 5xx: it failed, exit 3
        message = describe_error(status, payload)
        if args.json:
            err.write(json.dumps({"error": "databricks_error", "error_description": message, "status": status}) + "\n")
        else:
            err.write(f"oauth-core: error: {message}\n")
        return 3 if status >= 500 else 1
    _print_payload(payload, args.json, out)
    return 0


def _jwks_source(args: argparse.Namespace, claims: Dict[str, Any]) -> Callable[[bool], Dict[str, Any]]:
    """Where decode --verify gets keys: the --jwks file, or the tenant's JWKS (refetched on request)."""
    from pathlib import Path

    if args.jwks:
        try:
            data = json.loads(Path(args.jwks).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise UsageError(f"cannot read the JWKS file: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise UsageError("the JWKS file is not a JSON object")
        return lambda refresh: data
    from .authority import Authority
    from .client import fetch_jwks

    tid = claims.get("tid") if isinstance(claims.get("tid"), str) else None
    authority = Authority.of(_authority_host(args), _tenant(args) or tid or "common")
    authority.require_trusted(_trusted_hosts(args))  # keys from an untrusted host would "verify" anything
    fetched: Dict[str, Dict[str, Any]] = {}

    def source(refresh: bool) -> Dict[str, Any]:
        if refresh or "keys" not in fetched:
            fetched["keys"] = fetch_jwks(authority, timeout=args.timeout or 30.0)
        return fetched["keys"]

    return source


def cmd_decode(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .claims import inspect_token, verify_with_refresh
    from .errors import SignatureVerificationError

    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    if not token:
        raise UsageError("no token given (pass it as an argument or on standard input)")
    info = inspect_token(token)
    verified: Optional[bool] = None
    key_id = failure = None
    if args.verify or args.jwks:
        try:
            key_id = verify_with_refresh(token, _jwks_source(args, dict(info.claims)))
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
            out.write(f"Signature:  valid (key {_safe(key_id)})\n")
        else:
            out.write(f"Signature:  INVALID ({_safe(failure)})\n")
    if verified is False:
        err.write(f"oauth-core: error: {_safe(failure)}\n")
        return SignatureVerificationError.exit_code
    return 0


_BENCH_OPTIONS = {
    "password_stdin": "password",
    "refresh_token_stdin": "refresh",
    "client_secret_stdin": "client-credentials",
    "certificate": "client-credentials",
    "code": "auth-code-replay",
    "state": "auth-code-replay",
    "latest": "auth-code-replay",
}


def _bench_setup(args: argparse.Namespace, err: TextIO) -> tuple[EntraClient, Grant]:
    """The client and the grant to measure; credentials come as each grant's own command takes them."""
    from . import benchmark
    from .files import remove_quietly

    if args.password_argv is not None or args.client_secret_argv is not None:
        raise UsageError("never pass a password or client secret on the command line (see bench --help)")
    _refuse_refresh_token_argv(args)
    for option, grant in _BENCH_OPTIONS.items():
        if getattr(args, option) and args.grant != grant:
            raise UsageError(f"--{option.replace('_', '-')} goes with --grant {grant}")
    if args.grant == "password":
        username = _username(args)
        client = _make_client(args)
        _check_cache(client)
        password = _password(args)
        _ropc_notice(err)
        return client, benchmark.password_bench_grant(client, username, password)
    if args.grant == "client-credentials":
        secret, certificate = _client_credential(args)
        client = _make_client(args, client_secret=secret, client_certificate=certificate)
        _check_cache(client)
        return client, benchmark.client_credentials_bench_grant(client)
    if args.grant == "auth-code-replay":
        if not args.code or not args.code.strip():
            raise UsageError(
                "--grant auth-code-replay needs the --code and --state of an authorize-url sign-in (or --latest)"
            )
        path, pending = _find_pending(args.state, args.latest, err)
        client = _make_client(args, pending.client_id, pending.tenant, pending.authority_host)
        _check_cache(client)
        remove_quietly(path)  # the code is about to be presented: the pending request cannot be reused
        return client, benchmark.code_replay_grant(pending, args.code.strip())
    client = _make_client(args)
    _check_cache(client)
    stdin = args.refresh_token_stdin
    token = _read_stdin_secret("refresh token") if stdin else _cached_refresh_token(client, args.account)
    return client, benchmark.refresh_bench_grant(client, token)


def cmd_bench(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from . import benchmark

    settings = benchmark.BenchSettings(
        grant=args.grant,
        n=args.n,
        warmup=args.warmup,
        concurrency=args.concurrency,
        max_retry_after=args.max_retry_after,
        timeout=args.timeout or 30.0,
    )
    if args.plot:
        benchmark.require_plotting()
    client, grant = _bench_setup(args, err)
    progress = benchmark.ProgressBar(err) if args.progress or err.isatty() else None
    with client:
        warning = benchmark.throttle_warning(client.authority.token_endpoint, settings)
        if warning:
            err.write(warning + "\n")
        try:
            result = benchmark.run_benchmark(client, grant, settings, progress=progress)
        finally:
            if progress is not None:
                progress.close()
        benchmark.keep_newest_tokens(client, grant, result)
    # The summary quotes the service's error texts: made safe for a terminal.
    out.write(
        json.dumps(benchmark.result_json(result)) + "\n"
        if args.json
        else _safe(benchmark.render_text(result), multiline=True)
    )
    if args.plot:
        benchmark.plot_result(result, args.plot)
        err.write(f"plot written to {args.plot}\n")
    failure = result.failure()
    if failure is not None:
        raise failure
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
        args = _parse(parser, argv)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    return run(args, out)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """parse_args, but what it cannot place is reported by name (options) or count, never by value."""
    args, extras = parser.parse_known_args(list(argv))
    if extras:
        raise UsageError(f"{_unrecognized(extras)} (see {parser.prog} --help)")
    return args


COMMANDS: Dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
    "authorize-url": cmd_authorize_url,
    "login": cmd_login,
    "exchange": cmd_exchange,
    "password": cmd_password,
    "refresh": cmd_refresh,
    "device-code": cmd_device_code,
    "client-credentials": cmd_client_credentials,
    "token": cmd_token,
    "accounts": cmd_accounts,
    "logout": cmd_logout,
    "databricks": cmd_databricks,
    "decode": cmd_decode,
    "bench": cmd_bench,
    "demo": cmd_demo,
}


# -- entry point ----------------------------------------------------------------------------------


def _setup_logging(verbose: bool, err: TextIO) -> None:
    """With --verbose, log oauth_core's requests to ``err`` through a formatter that redacts tokens."""
    if not verbose:
        return
    import logging

    from .protocol import redacted_snippet

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


def main(
    argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None
) -> int:
    """Run the command line; returns the exit code (never raises, never prints a traceback)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args_list
    try:
        if not all(_is_text(arg) for arg in args_list):
            raise UsageError("an argument is not valid UTF-8")
        command = next((a for a in args_list if not a.startswith("-")), None)
        if command == "emulator":
            return run_emulator(args_list[args_list.index("emulator") + 1 :], out)
        parser = build_parser()
        try:
            args = _parse(parser, args_list)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        if args.command is None:
            parser.print_help(out)
            return 2
        _check_not_blank(args)
        _setup_logging(args.verbose, err)
        return COMMANDS[args.command](args, out, err)
    except TokensNotSaved as exc:
        return _unsaved(exc, out, err)
    except OAuthCoreError as exc:
        return _report(exc, as_json, err)
    except KeyboardInterrupt:
        err.write("oauth-core: interrupted\n")
        return EXIT_INTERRUPTED
    except OSError as exc:  # local files: the network's errors arrive typed from the client
        where = f" {str(exc.filename)!r}" if exc.filename else ""
        err.write(f"oauth-core: error: cannot use{where}: {exc.strerror or type(exc).__name__}\n")
        return 2
    except Exception as exc:
        import logging

        logging.getLogger("oauth_core").debug("internal error", exc_info=True)
        err.write(
            f"oauth-core: internal error ({type(exc).__name__}); please report it. Run with --verbose for details.\n"
        )
        return EXIT_INTERNAL
