"""The ``oauth-core`` argument parser: common options, then one subcommand per command."""

from __future__ import annotations

import argparse
from typing import Any, Optional

from .. import __version__
from .bench import add_bench_command
from .cache import add_cache_commands
from .databricks import add_databricks_command
from .decode import add_decode_command
from .emulator import add_emulator_commands
from .signin import add_app_commands, add_sign_in_commands
from .usage import Declare, Parser, positive_seconds

__all__ = ["build_parser"]

HELP_TEXT = "show this help message and exit"  # argparse's own words for -h


def _add_common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options every command takes; with ``suppress`` they do not overwrite earlier values."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("common options")
    group.add_argument(
        "--tenant",
        default=default(None),
        help="tenant id, domain, organizations, common or consumers (env AZURE_TENANT_ID; default organizations)",
    )
    group.add_argument("--client-id", default=default(None), help="application (client) id (env AZURE_CLIENT_ID)")
    group.add_argument(
        "--authority-host",
        default=default(None),
        help="login host URL or public/usgov/china/gov-fr/gov-de/gov-sg (env AZURE_AUTHORITY_HOST)",
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
    group.add_argument(
        "--cache",
        default=default(None),
        metavar="SPEC",
        help="the token cache: file (default: the 0600 file in the state directory), memory, or a "
        "redis:// or rediss:// URL shared by a fleet (env OAUTH_CORE_CACHE)",
    )
    group.add_argument("--account", default=default(None), help="which cached account to use (username or account id)")
    group.add_argument(
        "--claims",
        default=default(None),
        metavar="JSON",
        help="a claims request (the JSON of a claims challenge): asked for anew, never served from the cache",
    )
    group.add_argument(
        "--client-capability",
        action="append",
        default=default(None),
        metavar="CAP",
        help="a capability the client declares, repeatable (cp1: it answers claims challenges, CAE)",
    )
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
        type=positive_seconds,
        default=default(None),
        help="seconds per HTTP request (default 30); for login and device-code, the sign-in wait "
        "(default 300; device-code: the code's expiry)",
    )
    group.add_argument(
        "--verbose", "-v", action="store_true", default=default(False), help="log requests to stderr (secrets redacted)"
    )


def build_parser() -> Parser:
    """The whole command line; every command is a subcommand.

    A command's options (the common ones too) are declared when it is parsed or its help shown:
    a run pays for one command's options, not for all of them.
    """
    parser = Parser(
        prog="oauth-core",
        description="Microsoft Entra ID tokens over raw HTTP (the Azure Databricks scope by default).",
        epilog="Exit codes: 0 ok, 1 refused by Entra, 2 usage/bad input, 3 network/service failure, "
        "4 security check failed.",
    )
    _add_common_options(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"oauth-core {__version__}")
    commands: Any = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_text: str, declare: Optional[Declare] = None) -> argparse.ArgumentParser:
        def options(sub: argparse.ArgumentParser) -> None:
            sub.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS, help=HELP_TEXT)
            _add_common_options(sub, suppress=True)
            if declare is not None:
                declare(sub)

        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, description=help_text, add_help=False, late_arguments=options
        )
        return sub

    add_sign_in_commands(command)
    add_app_commands(command)
    add_cache_commands(command)
    add_databricks_command(command)
    add_bench_command(command)
    emulator = add_emulator_commands(command, commands)
    if isinstance(emulator, Parser):  # it takes no common options: its leftovers point at its own help
        parser.commands["emulator"] = emulator
    add_decode_command(command)
    return parser
