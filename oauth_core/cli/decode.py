"""``decode``: a JWT's header, claims and expiry, its signature checked on request."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, TextIO

from .exit_codes import exit_code_for
from .output import safe, when
from .settings import authority_host, tenant, trusted_hosts
from .usage import AddCommand, UsageError

if TYPE_CHECKING:
    from ..core.claims import TokenInfo

__all__ = ["add_decode_command", "cmd_decode"]


def add_decode_command(command: AddCommand) -> None:
    """decode TOKEN [--verify] [--jwks FILE]."""
    command("decode", "Show a JWT's header, claims and expiry (no network unless --verify).", _decode_options)


def _decode_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("token", nargs="?", default="-", help="the token, or - (default) to read standard input")
    sub.add_argument(
        "--verify", action="store_true", help="check the signature against the tenant's JWKS (needs the crypto extra)"
    )
    sub.add_argument("--jwks", metavar="FILE", help="verify against this JWKS file instead of fetching it")


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
    from ..core.authority import Authority
    from ..drivers.sync import fetch_jwks

    tid = claims.get("tid") if isinstance(claims.get("tid"), str) else None
    authority = Authority.of(authority_host(args), tenant(args) or tid or "common")
    authority.require_trusted(trusted_hosts(args))  # keys from an untrusted host would "verify" anything
    fetched: Dict[str, Dict[str, Any]] = {}

    def source(refresh: bool) -> Dict[str, Any]:
        if refresh or "keys" not in fetched:
            fetched["keys"] = fetch_jwks(authority, timeout=args.timeout or 30.0)
        return fetched["keys"]

    return source


def _print_json(info: TokenInfo, verified: Optional[bool], out: TextIO) -> None:
    fields = {
        "header": dict(info.header),
        "claims": dict(info.claims),
        "expires_at": int(info.expires_at.timestamp()) if info.expires_at else None,
        "expires_in": int(info.seconds_left) if info.seconds_left is not None else None,
        "expired": info.expired,
        "verified": verified,
    }
    out.write(json.dumps(fields) + "\n")


def _print_text(info: TokenInfo, verified: Optional[bool], detail: Optional[str], out: TextIO) -> None:
    """``detail``: the key id of a valid signature, or why it is invalid."""
    out.write("Header:\n" + json.dumps(dict(info.header), indent=2) + "\n")
    out.write("Claims:\n" + json.dumps(dict(info.claims), indent=2) + "\n")
    now = time.time()
    for label, moment in (("Issued", info.issued_at), ("Not before", info.not_before), ("Expires", info.expires_at)):
        if moment is not None:
            out.write(f"{label + ':':<12}{when(moment.timestamp(), now) if label == 'Expires' else moment}\n")
    if verified is None:
        out.write("Signature:  not checked (use --verify)\n")
    elif verified:
        out.write(f"Signature:  valid (key {safe(detail)})\n")
    else:
        out.write(f"Signature:  INVALID ({safe(detail)})\n")


def cmd_decode(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Show a JWT's header, claims and expiry; with --verify or --jwks, check its signature."""
    from ..core.claims import inspect_token, verify_with_refresh
    from ..core.errors import SignatureVerificationError

    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    if not token:
        raise UsageError("no token given (pass it as an argument or on standard input)")
    info = inspect_token(token)
    verified: Optional[bool] = None
    detail: Optional[str] = None
    if args.verify or args.jwks:
        try:
            detail = verify_with_refresh(token, _jwks_source(args, dict(info.claims)))
            verified = True
        except SignatureVerificationError as exc:
            verified, detail = False, str(exc)
    if args.json:
        _print_json(info, verified, out)
    else:
        _print_text(info, verified, detail, out)
    if verified is False:
        err.write(f"oauth-core: error: {safe(detail)}\n")
        return exit_code_for(SignatureVerificationError)
    return 0
