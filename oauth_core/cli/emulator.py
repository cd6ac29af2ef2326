"""``emulator`` and ``demo``: the local Entra ID emulator, served or walked through."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from .usage import AddCommand

__all__ = ["add_emulator_commands", "cmd_demo", "cmd_emulator"]

EMULATOR_DESCRIPTION = "A local Entra ID compatible token service."


def _emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """The emulator's own options, declared when ``oauth-core emulator`` is parsed or its help shown."""
    from ..emulator.cli import add_arguments

    add_arguments(parser)


def add_emulator_commands(command: AddCommand, commands: Any) -> argparse.ArgumentParser:
    """demo, and emulator: a subcommand without the common options, whose options load on use.

    ``commands`` is the argparse subparsers action the other commands were added to; the
    emulator's parser is returned.
    """
    command("demo", "Run the whole story against the embedded emulator (offline; needs the crypto extra).")
    parser: argparse.ArgumentParser = commands.add_parser(
        "emulator",
        help="Run the local Entra ID emulator (see `oauth-core emulator --help`).",
        description=EMULATOR_DESCRIPTION,
        late_arguments=_emulator_arguments,
    )
    return parser


def cmd_emulator(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Serve the emulator until SIGINT or SIGTERM."""
    from ..emulator.cli import run

    return run(args, out)


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The whole story against the embedded emulator."""
    from .demo import main as demo_main

    return demo_main(out)
