"""``oauth-core``: Entra ID tokens from a shell.

Exit codes: 0 success; 1 the identity service refused; 2 usage or bad input; 3 network or
service failure after retries, or a malformed service response; 4 a security check failed
(state, nonce, signature, insecure authority); 130 interrupted; 70 an internal error
(:mod:`oauth_core.cli.exit_codes` maps each library exception to one).

Every command, the emulator included, is an argparse subcommand (:mod:`oauth_core.cli.parser`);
each lives in the module of its group (signin, cache, databricks, decode, bench, emulator).
Each command imports only what it needs: ``--help`` and ``decode`` never load httpx.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, List, Optional, Sequence, TextIO

from ..core.errors import OAuthCoreError, TokensNotSaved
from .bench import cmd_bench
from .cache import cmd_accounts, cmd_logout, cmd_token
from .credentials import ROPC_NOTICE
from .databricks import cmd_databricks
from .decode import cmd_decode
from .emulator import cmd_demo, cmd_emulator
from .exit_codes import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from .output import report, setup_logging, unsaved
from .parser import build_parser
from .settings import check_not_blank, claims_of, is_text
from .signin import (
    cmd_authorize_url,
    cmd_client_credentials,
    cmd_device_code,
    cmd_exchange,
    cmd_login,
    cmd_password,
    cmd_refresh,
)
from .usage import UsageError, parse

__all__ = ["COMMANDS", "ROPC_NOTICE", "UsageError", "build_parser", "main"]

Command = Callable[[argparse.Namespace, TextIO, TextIO], int]

COMMANDS: Dict[str, Command] = {
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
    "emulator": cmd_emulator,
}


def _run(argv: List[str], out: TextIO, err: TextIO) -> int:
    """Parse ``argv`` and run its command; library errors propagate to :func:`main`."""
    if not all(is_text(arg) for arg in argv):
        raise UsageError("an argument is not valid UTF-8")
    parser = build_parser()
    try:
        args = parse(parser, argv)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(out)
        return EXIT_USAGE
    check_not_blank(args)
    claims_of(args)  # a bad --claims is a usage error before anything else is done
    setup_logging(args.verbose, err)
    return COMMANDS[args.command](args, out, err)


def _internal_error(exc: Exception, err: TextIO) -> int:
    import logging

    logging.getLogger("oauth_core").debug("internal error", exc_info=True)
    err.write(f"oauth-core: internal error ({type(exc).__name__}); please report it. Run with --verbose for details.\n")
    return EXIT_INTERNAL


def main(
    argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None
) -> int:
    """Run the command line; returns the exit code (never raises, never prints a traceback)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args_list  # errors found while parsing are reported as JSON too
    try:
        return _run(args_list, out, err)
    except TokensNotSaved as exc:
        return unsaved(exc, out, err)
    except OAuthCoreError as exc:
        return report(exc, as_json, err)
    except KeyboardInterrupt:
        err.write("oauth-core: interrupted\n")
        return EXIT_INTERRUPTED
    except OSError as exc:  # local files: the network's errors arrive typed from the client
        where = f" {str(exc.filename)!r}" if exc.filename else ""
        err.write(f"oauth-core: error: cannot use{where}: {exc.strerror or type(exc).__name__}\n")
        return EXIT_USAGE
    except Exception as exc:
        return _internal_error(exc, err)
