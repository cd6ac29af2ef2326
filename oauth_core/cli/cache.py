"""Token cache commands: token, accounts and logout."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List, Mapping, TextIO

from .fast import cached_entry
from .identities import add_identity_options, identity_kind, make_credential, print_explanation
from .output import TOKEN_OUTPUTS, print_plain_token, print_token_as, safe
from .settings import authority_host, claims_of, client_id, make_client, open_cache, tenant
from .usage import AddCommand, UsageError, seconds_left

__all__ = ["add_cache_commands", "cmd_accounts", "cmd_logout", "cmd_token"]


def add_cache_commands(command: AddCommand) -> None:
    """token, accounts and logout."""
    command(
        "token", "Print only a valid access token from the cache, refreshing it silently if needed.", _token_options
    )
    command("accounts", "List the accounts and token scope sets the cache holds (no secrets).")
    command("logout", "Remove the cached tokens of an account of this client (or everything).", _logout_options)


def _token_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--min-validity",
        type=seconds_left,
        default=300.0,
        metavar="S",
        help="seconds the token must still be valid (default 300)",
    )
    sub.add_argument(
        "--output",
        choices=TOKEN_OUTPUTS,
        default=None,
        help="plain: the token alone (default); json: as --json; exec-credential: a Kubernetes ExecCredential "
        "for a kubeconfig exec entry; az: the JSON of az account get-access-token",
    )
    add_identity_options(sub)


def _logout_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--all", action="store_true", help="remove every cached token of every client")


def cmd_token(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print a valid access token from the cache (refreshed silently when needed), or from the
    credential of the place (--managed-identity, --workload-identity, --auto), as --output says."""
    output = _token_output(args)
    kind = identity_kind(args)
    if kind is not None:
        tokens = _place_token(args, kind, err)
    else:
        entry = cached_entry(args)  # a fresh cached token, found without loading the HTTP stack
        if entry is not None and output == "plain":
            print_plain_token(entry.access_token, out)  # no TokenSet needed (nor the modules that define it)
            return 0
        if entry is not None:
            from ..core.cache_rules import token_set_of

            tokens = token_set_of(entry)
        else:
            with make_client(args) as client:
                tokens = client.get_token(min_validity=args.min_validity, account=args.account, claims=claims_of(args))
    print_token_as(tokens, output, out)
    return 0


def _token_output(args: argparse.Namespace) -> str:
    """--output (default plain); --json means --output json, and goes with no other output."""
    output: str = args.output or ("json" if args.json else "plain")
    if args.json and output != "json":
        raise UsageError(f"--json means --output json: give --output {output} or --json, not both")
    return output


def _place_token(args: argparse.Namespace, kind: str, err: TextIO) -> Any:
    credential = make_credential(args, kind)
    with credential:
        try:
            return credential.get_token(min_validity=args.min_validity)
        finally:
            if args.explain:
                print_explanation(credential.explain(), err)


def _access_tokens(state: Any, account: str, now: float) -> List[Dict[str, Any]]:
    """The scope sets and expiry of an account's cached access tokens (never the tokens)."""
    from ..drivers.stores import entries

    tokens = []
    for entry in entries(state):
        expires_at = entry.get("expires_at")
        if entry.get("account") != account or isinstance(expires_at, bool):
            continue
        if not isinstance(expires_at, (int, float)) or not abs(expires_at) < 1e11:
            continue  # a hand-edited entry: not listed (and not served)
        scopes = entry.get("scopes")
        scopes = [x for x in scopes if isinstance(x, str)] if isinstance(scopes, list) else []
        tokens.append({"scopes": scopes, "expires_at": int(expires_at), "expires_in": int(expires_at - now)})
    return tokens


def _print_account(account: Mapping[str, Any], out: TextIO) -> None:
    # names and scopes come from tokens: shown made safe
    out.write(safe(f"{account.get('username') or '(unknown user)'}  account {account['account']}") + "\n")
    out.write(safe(f"  client {account.get('client_id')} at {account.get('host')}/{account.get('tenant')}") + "\n")
    for token in account["access_tokens"]:
        left = token["expires_in"]
        status = f"expires in {left // 60} min" if left > 0 else "expired"
        out.write(f"  {safe(' '.join(token['scopes'] or []))}: {status}\n")


def cmd_accounts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """List the cached accounts and their token scope sets."""
    from ..drivers.stores import accounts

    state = open_cache(args).snapshot()
    now = time.time()
    listed: List[Dict[str, Any]] = []
    for account in accounts(state):
        shown = {k: (v if isinstance(v, str) else None) for k, v in account.items()}
        listed.append({**shown, "access_tokens": _access_tokens(state, account["account"], now)})
    if args.json:
        out.write(json.dumps({"accounts": listed}) + "\n")
        return 0
    if not listed:
        out.write("The token cache is empty.\n")
    for account in listed:
        _print_account(account, out)
    return 0


def cmd_logout(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Remove the cached tokens of an account of this client (or, with --all, everything)."""
    from ..drivers.stores import CacheScope, accounts, remove_account

    cache = open_cache(args)
    with cache.transaction() as state:
        if args.all:
            removed = len(accounts(state))
            for section in ("access_tokens", "refresh_tokens", "accounts", "flags"):
                state[section].clear()
        else:
            from ..core.authority import Authority

            authority = Authority.of(authority_host(args), tenant(args))
            where = CacheScope(authority.host, authority.tenant, client_id(args))
            mine = [a for a in accounts(state, where) if args.account in (None, a.get("account"), a.get("username"))]
            for account in mine:
                remove_account(
                    state, CacheScope(where.host, str(account["tenant"]), where.client_id), account["account"]
                )
            removed = len(mine)
    err.write(f"Removed {removed} account(s) from the token cache.\n")
    return 0
