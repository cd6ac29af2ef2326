"""Usage errors, and an argparse that reports them in one line without repeating a value."""

from __future__ import annotations

import argparse
import re
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..core.errors import ConfigError

__all__ = ["AddCommand", "Parser", "UsageError", "parse", "positive_seconds", "seconds_left"]

# How a command module declares a command: ``command(name, help_text)`` returns its parser.
AddCommand = Callable[[str, str], argparse.ArgumentParser]


class UsageError(ConfigError):
    """A command-line usage mistake (exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line.

    Its messages never repeat a value from the command line (it may be a secret typed in the wrong
    place), and options must be spelled out: an abbreviation could swallow the wrong argument.

    ``late_arguments`` declares this parser's options the first time it parses or shows help, so a
    command whose options live in a heavier module (the emulator's) costs nothing until it is used.
    ``commands`` holds the subcommand parsers that report leftovers against their own help.
    """

    def __init__(
        self, *args: Any, late_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._late_arguments = late_arguments
        self.commands: Dict[str, Parser] = {}

    def _declare_late_arguments(self) -> None:
        declare, self._late_arguments = self._late_arguments, None
        if declare is not None:
            declare(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._declare_late_arguments()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self._declare_late_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._declare_late_arguments()
        return super().format_help()

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
