"""Usage errors, and an argparse that reports them in one line without repeating a value."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

from ..core.errors import ConfigError

__all__ = ["AddCommand", "Declare", "Parser", "UsageError", "parse", "positive_seconds", "seconds_left"]

# Adds a command's own options to its parser.
Declare = Callable[[argparse.ArgumentParser], None]


class AddCommand(Protocol):
    """How a command module declares a command: ``command(name, help_text, declare)``.

    ``declare`` adds the command's options; it runs only when that command is parsed or its help
    shown, so each run builds the options of one command, not of all of them.
    """

    def __call__(self, name: str, help_text: str, declare: Optional[Declare] = None) -> argparse.ArgumentParser: ...


class UsageError(ConfigError):
    """A command-line usage mistake (exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line.

    Its messages never repeat a value from the command line (it may be a secret typed in the wrong
    place), and options must be spelled out: an abbreviation could swallow the wrong argument.

    ``late_arguments`` declares this parser's options the first time it parses or shows help, so a
    run builds the options of the command it runs only, and those of a heavier module (the
    emulator's) load only when that command is used.
    ``commands`` holds the subcommand parsers that report leftovers against their own help.
    """

    def __init__(self, *args: Any, late_arguments: Optional[Declare] = None, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self._late_arguments = late_arguments
        self.commands: Dict[str, Parser] = {}

    def declare_arguments(self) -> Parser:
        """Declare the late arguments now (once); returns this parser, all of whose options are then known."""
        declare, self._late_arguments = self._late_arguments, None
        if declare is not None:
            declare(self)
        return self

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self.declare_arguments()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self.declare_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self.declare_arguments()
        return super().format_help()

    def error(self, message: str) -> Any:
        raise UsageError(f"{_without_values(message)} (see {self.prog} --help)")


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized as argparse sizes it (``COLUMNS``, else the terminal, less 2).

    argparse makes one for every option it declares, and finds the width through :mod:`shutil`,
    whose import (with lzma, bz2 and zlib) costs a ``token`` run more than the parsing does.
    """

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: Optional[int] = None, **kw: Any
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width, **kw)


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size().columns`` gives it (80 when unknown)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


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


def parse(parser: Parser, argv: Sequence[str]) -> argparse.Namespace:
    """parse_args, but what it cannot place is reported by name (options) or count, never by value.

    Leftovers after a command listed in ``parser.commands`` point at that command's own help.
    """
    args: argparse.Namespace
    extras: List[str]
    args, extras = parser.parse_known_args(list(argv))
    if extras:
        command = parser.commands.get(getattr(args, "command", None) or "")
        raise UsageError(f"{_unrecognized(extras)} (see {(command or parser).prog} --help)")
    return args


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number") from None


def positive_seconds(text: str) -> float:
    """An argparse type: seconds in (0, 3600]."""
    value = _number(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def seconds_left(text: str) -> float:
    """An argparse type: seconds in [0, 86400]."""
    value = _number(text)
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return value
