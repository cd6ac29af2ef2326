"""The ``oauth_core.cli`` package: every command a subcommand, exit codes and shell hints kept in the CLI."""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, List, NamedTuple

import pytest
from fixturelib import load_claims, load_token

import oauth_core.emulator.cli
from oauth_core.benchmark import BenchmarkStopped
from oauth_core.cli import COMMANDS, build_parser, main
from oauth_core.cli.exit_codes import EXIT_CODES, exit_code_for
from oauth_core.cli.hints import HINTS_BY_CLASS, HINTS_BY_CODE, shell_hint
from oauth_core.core import errors
from oauth_core.core.aadsts import AADSTS
from oauth_core.core.errors import (
    CacheError,
    ConfigError,
    InsecureAuthorityError,
    InteractionRequired,
    InteractionTimeout,
    InvalidGrant,
    OAuthCoreError,
    OAuthError,
    TokensNotSaved,
    UnknownSigningKey,
    oauth_error_from_body,
)

REPO = Path(__file__).resolve().parent.parent
CLI_DIR = REPO / "oauth_core" / "cli"


class Result(NamedTuple):
    code: int
    out: str
    err: str


def run(argv: List[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


# -- every command is a subcommand ----------------------------------------------------------------


def test_a_common_option_valued_emulator_does_not_start_the_emulator() -> None:
    """`--tenant emulator` is the tenant's value: argparse, not an argv scan, picks the command."""
    result = run(["--tenant", "emulator", "decode", load_token("graph-v2-user"), "--json"])
    assert result.code == 0, result.err
    assert json.loads(result.out)["claims"] == load_claims("graph-v2-user")["claims"]


def test_the_emulator_is_a_subcommand_of_the_parser() -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "emulator" in subcommands.choices
    assert set(COMMANDS) == set(subcommands.choices)


def test_emulator_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["emulator", "--help"]).code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: oauth-core emulator [-h] [--port PORT]")
    assert "A local Entra ID compatible token service." in shown
    for flag in ("--listen", "--tls", "--ca-dir", "--config", "--fault", "--token-lifetime"):
        assert flag in shown
    assert "--tenant" not in shown  # the emulator takes no common options


def test_emulator_leftovers_point_at_its_own_help() -> None:
    result = run(["emulator", "--bogus"])
    assert result.code == 2
    assert result.err == "oauth-core: error: unrecognized arguments: --bogus (see oauth-core emulator --help)\n"
    decode = run(["decode", "--bogus"])
    assert decode.err == "oauth-core: error: unrecognized arguments: --bogus (see oauth-core --help)\n"


def test_emulator_runs_as_a_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oauth_core.emulator.cli, "_wait_for_signal", lambda: None)
    result = run(["--verbose", "emulator", "--port", "0", "--token-lifetime", "120"])
    assert result.code == 0, result.err
    assert re.match(r"oauth-core emulator listening on http://127\.0\.0\.1:\d+\n", result.out)


def test_help_and_decode_load_neither_httpx_nor_the_emulator() -> None:
    script = (
        "import contextlib, io, json, sys\n"
        "from oauth_core.cli import main\n"
        "codes = [main(['decode', sys.argv[1]], stdout=io.StringIO(), stderr=io.StringIO())]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes.append(main(['--help'], stdout=io.StringIO(), stderr=io.StringIO()))\n"
        "names = ('httpx', 'oauth_core.emulator', 'oauth_core.benchmark')\n"
        "print(json.dumps({'codes': codes, 'loaded': [m for m in names if m in sys.modules]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, load_token("graph-v2-user")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"codes": [0, 0], "loaded": []}


# -- exit codes live in the CLI ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 2),
        (CacheError("x"), 2),
        (InsecureAuthorityError("x"), 4),
        (UnknownSigningKey("x"), 4),
        (InteractionTimeout("x"), 3),
        (InvalidGrant("invalid_grant"), 1),
        (TokensNotSaved(None, ConfigError("x")), 0),
        (OAuthCoreError("x"), 2),
        (BenchmarkStopped("x"), 1),
        (ValueError("x"), 70),
    ],
)
def test_exit_code_for(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code
    assert exit_code_for(type(error)) == code


def test_every_library_exception_has_an_exit_code() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    for cls in [c for c in classes if isinstance(c, type) and issubclass(c, BaseException)]:
        assert any(klass in EXIT_CODES for klass in cls.__mro__), cls
        assert not hasattr(cls, "exit_code"), cls


# -- hints: the library's in API terms, the CLI's in shell terms --------------------------------------


def test_library_hints_name_no_command_or_flag() -> None:
    source = (REPO / "oauth_core" / "core" / "errors.py").read_text(encoding="utf-8")
    assert "oauth-core " not in source and "exit_code" not in source
    assert not re.search(r"--[a-z]", source)
    assert "acquire_interactive" in str(InteractionRequired.hint)


def test_the_cli_words_class_and_code_hints_for_the_shell() -> None:
    mfa = oauth_error_from_body({"error": "invalid_grant", "error_codes": [50076]})
    assert mfa.hint == AADSTS[50076][2] and "acquire_interactive" in str(mfa.hint)
    assert shell_hint(mfa) == HINTS_BY_CODE[50076] and "`oauth-core login`" in HINTS_BY_CODE[50076]
    interaction = oauth_error_from_body({"error": "interaction_required"})
    assert shell_hint(interaction) == HINTS_BY_CLASS[InteractionRequired]
    assert shell_hint(InteractionTimeout("x")) == "Sign in within the time allowed, or raise --timeout."


def test_a_hint_set_on_one_error_is_shown_as_it_is() -> None:
    refused = ConfigError("the cache is unsafe")
    refused.hint = "chmod 600 /some/file"
    assert shell_hint(refused) == "chmod 600 /some/file"
    changed = oauth_error_from_body({"error": "invalid_grant", "error_codes": [50076]})
    changed.hint = "a hint of the caller's own"
    assert shell_hint(changed) == "a hint of the caller's own"
    assert shell_hint(OAuthError("x")) is None


def test_every_shell_hint_replaces_a_library_hint() -> None:
    """A code in the CLI's table has library advice to replace; so does a class."""
    assert all(AADSTS[code][2] for code in HINTS_BY_CODE)
    assert all(cls.hint for cls in HINTS_BY_CLASS)


# -- the package's shape ----------------------------------------------------------------------------


def _private_uses(path: Path) -> List[str]:
    """``obj._name`` accesses in a module, except on ``self`` (dunders allowed)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner: Any = node.value
            if not (isinstance(owner, ast.Name) and owner.id == "self"):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


def test_the_cli_uses_no_private_member() -> None:
    assert [use for path in sorted(CLI_DIR.glob("*.py")) for use in _private_uses(path)] == []


def test_modules_stay_small() -> None:
    paths = [
        *CLI_DIR.glob("*.py"),
        REPO / "oauth_core" / "core" / "errors.py",
        REPO / "oauth_core" / "core" / "aadsts.py",
    ]
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in paths}
    assert {name: size for name, size in sizes.items() if size >= 500} == {}
