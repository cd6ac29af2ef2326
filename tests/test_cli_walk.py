"""Walk every ``oauth-core`` command with missing, empty and malformed arguments and environment values.

The commands and their options come from :func:`oauth_core.cli.build_parser` (and the emulator's
own :func:`~oauth_core.emulator.cli.add_arguments`), so a new command or option is walked without
editing this file. Each command first runs with a *baseline* (the options it needs, all valid);
then one option (or environment variable) at a time is made missing, empty or malformed.

The rules, for every run:

- never a traceback, never exit 70 (internal error) or 130;
- exit 2 (a usage error) prints exactly one line on stderr, ``oauth-core: error: ...`` (a second
  ``  hint:`` line is allowed), or one JSON line with ``--json``;
- an option given without its value exits 2;
- a malformed or empty value is either refused, exit 2 (4 for an http authority that is not
  loopback) *before any request is sent*, or ignored: the same exit code and stderr as when the
  option is not given at all.

Values known to be malformed come from tables keyed by option name; an option missing from the
tables still gets the generic values (empty, blank, a NUL, undecodable bytes). Network access is
blocked by respx; requests only the baseline itself needs are allowed (and fail at once). The
``emulator`` and ``demo`` commands, which would serve or run forever, are walked with their serving
loop and demo replaced by stand-ins that return at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import itertools
import json
import pkgutil
import re
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import httpx
import pytest
import respx

import oauth_core.cli
import oauth_core.drivers.files
from oauth_core.cli import build_parser, main

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
UNDECODABLE = "\udcff"  # how Python hands over argv/environ bytes that are not UTF-8 (surrogateescape)

# -- what each option accepts, and what is malformed for it ---------------------------------------------

# A valid value per option name (dest). Options named here join the baseline only when listed in
# CONTEXT or required; the others are only used when they are the option under test.
GOOD: Dict[str, str] = {
    "tenant": TENANT,
    "client_id": CLIENT,
    "authority_host": "https://login.microsoftonline.com",
    "allow_authority_host": "login.example.com",
    "scope": "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
    "account": "alice@contoso.com",
    "timeout": "0.05",
    "redirect_uri": "http://localhost",
    "prompt": "login",
    "login_hint": "alice@contoso.com",
    "domain_hint": "contoso.com",
    "listen_address": "127.0.0.1",
    "redirect_url": "http://localhost/?code=the-code&state=the-state",
    "code": "the-code",
    "state": "the-state",
    "username": "alice@contoso.com",
    "min_validity": "300",
    "host": "adb-1.2.azuredatabricks.net",
    "resource_id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg"
    "/providers/microsoft.databricks/workspaces/ws",
    "data": "{}",
    "method": "GET",
    "path": "/api/2.0/clusters/list",
    "grant": "refresh",
    "n": "1",
    "concurrency": "1",
    "warmup": "0",
    "max_retry_after": "1",
    # the emulator's options
    "port": "0",
    "listen": "127.0.0.1",
    "token_lifetime": "3600",
    "fault": "token:429x1:retry-after=1",
}
# Credentials every run has in its environment, so that the password and client-credentials
# commands get past asking for them and their other options are really checked (their baseline
# then sends a request, which the blocked network fails at once).
CONTEXT_ENV = {"AZURE_CLIENT_SECRET": "walk-client-secret-0123", "OAUTH_CORE_PASSWORD": "walk-password-0123"}
# Options every baseline carries when the command has them: who, where, and a short wait.
CONTEXT = ("client_id", "tenant", "timeout", "username", "token", "jwks", "host", "method", "path", "port")

NOT_A_NUMBER = ["abc", "nan", "inf", "-1", "1e999", "0x10", "\u00b2"]
BAD_URL = ["not a url", "ftp://x", "https://", "http://[::1", "https://host:99999", "https://u:p@host", UNDECODABLE]
# Values that are wrong for each option (beyond the generic empty/blank/NUL/undecodable ones).
BAD: Dict[str, List[str]] = {
    "tenant": ["a/b", "../x", "ten ant", "x" * 300, "00000000-0000-0000-0000-000000000000", "-"],
    "client_id": ["a b", "a\tb"],
    "authority_host": [*BAD_URL, "https://host/path", "https://host?x=1", "http://example.com"],
    "allow_authority_host": BAD_URL,
    "scope": ['a"b', "a\\b", "\u00e9"],
    "timeout": [*NOT_A_NUMBER, "0", "3601"],
    "min_validity": [*NOT_A_NUMBER, "86401"],
    "redirect_uri": [*BAD_URL, "http://example.com/cb", "http://localhost/#f", "http://localhost:99999"],
    "prompt": ["bogus", "LOGIN"],
    "listen_address": ["8.8.8.8", "not-an-ip", "::ffff:8.8.8.8"],
    "redirect_url": ["?state=a&state=b", "?%zz", "http://[::1", "x" * 20_000, "?state=" + UNDECODABLE + "&code=c"],
    "state": ["a\x00b"],
    "username": ["a b\x00"],
    "token": ["x.y", "a.b.c", "a.b.c.d.e"],
    "jwks": ["/nonexistent/jwks.json", "<dir>", "<not-json>", "<json-list>"],
    "host": [*BAD_URL, "http://example.com", "adb-1.azuredatabricks.net/path"],
    "resource_id": ["/subscriptions/x", "not-an-id"],
    "data": ["{", "@/nonexistent/body.json", "[" * 5000],
    "method": ["FETCH", "get get"],
    "path": ["/not-api", "/api/../x", "//evil.example/api/2.0", "/api/2.0/x#y"],
    "certificate": ["/nonexistent/cert.pem", "<dir>", "<not-json>"],
    "grant": ["bogus"],
    "n": [*NOT_A_NUMBER, "0", "100000"],
    "concurrency": [*NOT_A_NUMBER, "0", "1000"],
    "warmup": [*NOT_A_NUMBER, "100000"],
    "max_retry_after": NOT_A_NUMBER,
    "plot": ["/nonexistent/dir/plot.png"],
    "port": ["abc", "-1", "99999", "65536"],
    "listen": ["8.8.8.8", "nope", "localhost6"],
    "ca_dir": ["/nonexistent/dir"],
    "config": ["/nonexistent.json", "<dir>", "<not-json>", "<json-list>"],
    "fault": ["bogus", "token:", "nope:429", "token:999", "token:429x0", "token:delay=abc", "token:delay=9999"],
    "token_lifetime": ["abc", "5", "-1", "999999"],
}
# Secrets that must never come from argv: any value is refused, and never echoed.
ARGV_SECRETS = ("password_argv", "client_secret_argv")
# The http authority that is not loopback: refused with exit 4 (InsecureAuthorityError).
INSECURE = {"http://example.com"}
# Options checked against what this machine issued: a non-blank value that matches nothing is a
# failed security check (exit 4, StateMismatch), not a usage error. A blank one is a usage error.
SECURITY_CHECKED = {"state"}


def generic_values(name: str) -> List[str]:
    """Empty, blank, a NUL and undecodable bytes: what any option may be handed."""
    return ["", "   ", "a\x00b", UNDECODABLE]


# -- the walk ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option of one command, as argparse declared it."""

    command: str
    dest: str
    flag: Optional[str]  # None for a positional
    takes_value: bool
    required: bool
    group: Optional[Tuple[str, ...]]  # dests of its mutually exclusive group
    group_required: bool  # one of the group must be given
    env: Optional[str]  # the environment variable its help names, if any

    @property
    def id(self) -> str:
        return f"{self.command}:{self.flag or self.dest}"


def _env_of(action: argparse.Action) -> Optional[str]:
    match = re.search(r"\benv ([A-Z][A-Z0-9_]{2,})", action.help or "")
    return match.group(1) if match else None


def _walk(command: str, parser: argparse.ArgumentParser) -> List[Option]:
    groups: Dict[str, Tuple[Tuple[str, ...], bool]] = {}
    for group in parser._mutually_exclusive_groups:
        members = tuple(a.dest for a in group._group_actions)
        groups.update({dest: (members, bool(group.required)) for dest in members})
    found = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.dest in ("help", "version"):
            continue
        flag = max(action.option_strings, key=len) if action.option_strings else None
        found.append(
            Option(
                command=command,
                dest=action.dest,
                flag=flag,
                takes_value=action.nargs != 0,
                required=bool(action.required),
                group=groups[action.dest][0] if action.dest in groups else None,
                group_required=groups[action.dest][1] if action.dest in groups else False,
                env=_env_of(action),
            )
        )
    return found


def _emulator_parser() -> argparse.ArgumentParser:
    from oauth_core.emulator.cli import add_arguments

    parser = argparse.ArgumentParser(prog="oauth-core emulator")
    add_arguments(parser)
    return parser


def walk_commands() -> Dict[str, List[Option]]:
    """Every command and its options, from the parsers themselves."""
    parser = build_parser()
    commands: Dict[str, List[Option]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = _walk(name, _emulator_parser() if name == "emulator" else sub.declare_arguments())
    return commands


COMMANDS = walk_commands()
OPTIONS = [option for options in COMMANDS.values() for option in options]
VALUED = [o for o in OPTIONS if o.takes_value]


def env_names() -> List[str]:
    """Every environment variable the CLI reads: from its source and from the options' help texts."""
    pattern = re.compile(r"""(?:_env|environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']""")
    names = set()
    cli_modules = [
        importlib.import_module(f"oauth_core.cli.{info.name}") for info in pkgutil.iter_modules(oauth_core.cli.__path__)
    ]
    for module in (oauth_core.cli, *cli_modules, oauth_core.drivers.files):
        names.update(pattern.findall(inspect.getsource(module)))
    names.update(o.env for o in OPTIONS if o.env)
    return sorted(names - {"LOCALAPPDATA", "XDG_STATE_HOME"})


ENV_NAMES = env_names()
ENV_BAD: Dict[str, List[str]] = {
    "AZURE_CLIENT_ID": ["a b"],
    "AZURE_TENANT_ID": ["a/b", "x" * 300],
    "AZURE_AUTHORITY_HOST": ["not a url", "ftp://x", "https://host/path", "http://example.com"],
    "AZURE_USERNAME": ["a b"],
    "OAUTH_CORE_HOME": ["<file>"],
    "OAUTH_CORE_TRUSTED_HOSTS": ["not a url", "http://[::1"],
    "DATABRICKS_HOST": ["http://example.com", "not a url"],
    "DATABRICKS_AZURE_RESOURCE_ID": ["not-an-id"],
    "AZURE_CLIENT_CERTIFICATE_PATH": ["/nonexistent/cert.pem"],
}


# -- running one case -------------------------------------------------------------------------------


class Hang(BaseException):
    """A run that did not finish within its alarm."""


@contextlib.contextmanager
def no_hang(seconds: float = 20.0) -> Iterator[None]:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"the command did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Outcome:
    argv: Tuple[str, ...]
    code: int
    out: str
    err: str
    requests: int

    @property
    def err_lines(self) -> List[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def same_as(self, other: Outcome) -> bool:
        return self.code == other.code and _normal(self.err) == _normal(other.err)

    def __str__(self) -> str:
        return f"{list(self.argv)!r} -> exit {self.code}, {self.requests} request(s), stderr {self.err[-400:]!r}"


def _normal(text: str) -> str:
    """stderr without what differs between two runs of one command (ports, temp paths, URLs)."""
    text = "\n".join(line for line in text.splitlines() if not line.startswith("note: "))  # once-only notices
    text = re.sub(r"https?://\S+", "<url>", text)
    text = re.sub(r"/tmp/\S+", "<path>", text)
    return re.sub(r"\d+(\.\d+)?", "<n>", text)


class Walker:
    """Runs ``main`` with the network blocked, the interactive parts stubbed, and checks the common rules."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, router: respx.MockRouter) -> None:
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.router = router
        self.files = self._files(tmp_path)
        self.problems: List[str] = []  # every run's breaches of the common rules, reported by each test
        self._absent: Dict[Tuple[str, ...], Outcome] = {}

    def absent(self, argv: Sequence[str]) -> Outcome:
        """The outcome of ``argv`` (run once, remembered): the reference a malformed value is compared with."""
        key = tuple(argv)
        if key not in self._absent:
            self._absent[key] = self.run(argv)
        return self._absent[key]

    def verdict(self, problems: List[str]) -> None:
        found = [*dict.fromkeys(self.problems + problems)]
        assert not found, f"{len(found)} problem(s):\n" + "\n".join(found)

    @staticmethod
    def _files(tmp_path: Path) -> Dict[str, str]:
        folder = tmp_path / "inputs"
        folder.mkdir()
        (folder / "a-dir").mkdir()
        (folder / "not-json.txt").write_text("this is { not json", encoding="utf-8")
        (folder / "list.json").write_text("[1, 2]", encoding="utf-8")
        (folder / "config.json").write_text("{}", encoding="utf-8")
        (folder / "regular-file").write_text("x", encoding="utf-8")
        jwks, token = _fixture_jwks_and_token()
        (folder / "jwks.json").write_text(json.dumps(jwks), encoding="utf-8")
        return {
            "<dir>": str(folder / "a-dir"),
            "<not-json>": str(folder / "not-json.txt"),
            "<json-list>": str(folder / "list.json"),
            "<file>": str(folder / "regular-file"),
            "<config>": str(folder / "config.json"),
            "<jwks>": str(folder / "jwks.json"),
            "<token>": token,
            "<ca-dir>": str(tmp_path / "ca"),
        }

    def value(self, text: str) -> str:
        return self.files.get(text, text)

    def good(self, option: Option) -> str:
        special = {"jwks": "<jwks>", "token": "<token>", "config": "<config>", "ca_dir": "<ca-dir>"}
        return self.value(special.get(option.dest, GOOD.get(option.dest, "x")))

    def baseline(
        self, command: str, *, without: Sequence[str] = (), swap: Optional[Option] = None, prefer: Sequence[str] = ()
    ) -> List[str]:
        """The command with the options it needs, all valid.

        In a required mutually exclusive group the member is ``swap`` (the option under test) if it
        belongs there, else the first of ``prefer`` in the group, else the group's first member.
        """
        argv: List[str] = []
        positionals: List[str] = []
        taken_groups = set()
        for option in COMMANDS[command]:
            if option.dest in without or option.dest in ARGV_SECRETS or not option.takes_value:
                continue
            if option.group is not None:
                preferred = [d for d in prefer if d in option.group]
                if swap is not None and swap.dest in option.group:
                    chosen = swap.dest
                else:
                    chosen = preferred[0] if preferred else option.group[0]
                if option.group in taken_groups or option.dest != chosen:
                    continue
                if not option.group_required and option.dest not in CONTEXT:
                    continue
                taken_groups.add(option.group)
            elif not (option.required or option.flag is None or option.dest in CONTEXT):
                continue
            if option.flag is None:
                positionals.append(self.good(option))
            else:
                argv += [option.flag, self.good(option)]
        return [command, *argv, *positionals]

    def run(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None) -> Outcome:
        with self.monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, self.value(value))
            patch.setattr("sys.stdin", io.StringIO(""))
            before = len(self.router.calls)
            out, err = io.StringIO(), io.StringIO()
            with no_hang():
                code = main(list(argv), stdout=out, stderr=err)
            outcome = Outcome(tuple(argv), code, out.getvalue(), err.getvalue(), len(self.router.calls) - before)
        self.problems += common_problems(outcome)
        return outcome


def common_problems(outcome: Outcome) -> List[str]:
    """What every run must get right: no traceback, no internal error, one-line usage errors."""
    found = []
    if "Traceback" in outcome.err + outcome.out:
        found.append(f"a traceback: {outcome}")
    if outcome.code not in (0, 1, 2, 3, 4):
        found.append(f"exit {outcome.code} (70 is an internal error): {outcome}")
    if outcome.code == 2 and "--help" not in outcome.argv:
        lines = outcome.err_lines
        if not lines:
            found.append(f"exit 2 without a message: {outcome}")
        elif "--json" in outcome.argv:
            try:
                ok = len(lines) == 1 and "error" in json.loads(lines[0])
            except ValueError:
                ok = False
            if not ok:
                found.append(f"--json error output is not one JSON line: {outcome}")
        elif not lines[0].startswith("oauth-core: error:") or [x for x in lines[1:] if not x.startswith("  hint:")]:
            found.append(f"a usage error must be one line, oauth-core: error: ... (plus a hint): {outcome}")
    return found


def _fixture_jwks_and_token() -> Tuple[Dict[str, Any], str]:
    try:
        from fixturelib import jwks, load_token

        return jwks(), load_token("databricks-v1-user").strip()
    except Exception:  # no cryptography: decode still walks, against an empty JWKS
        return {"keys": []}, "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.c2ln"


@pytest.fixture
def walker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast_retries: Any, isolated_env: Path) -> Iterator[Walker]:
    """A Walker with the network blocked (every request fails at once) and nothing interactive left.

    Stand-ins: the browser opens nothing; the loopback listener binds (so its checks run) but
    times out at once; the emulator starts and stops instead of serving until Ctrl-C; ``demo``
    returns 0. The client's own httpx.Client skips loading the CA bundle (no request leaves anyway).
    """
    import webbrowser

    import oauth_core.drivers.loopback
    import oauth_core.drivers.sync
    import oauth_core.emulator.cli
    from oauth_core.core.errors import InteractionTimeout

    def no_sign_in(self: Any, timeout: float) -> str:
        self.close()
        raise InteractionTimeout(f"no sign-in response within {timeout:g} s")

    def light_http_client(timeout: float) -> httpx.Client:
        return httpx.Client(timeout=timeout, verify=False, follow_redirects=False)

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in CONTEXT_ENV.items():  # credentials, so that commands get past asking for them
        monkeypatch.setenv(name, value)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # relative OAUTH_CORE_HOME values land here
    monkeypatch.setattr(webbrowser, "open", lambda *args, **kwargs: True)
    monkeypatch.setattr(oauth_core.emulator.cli, "_wait_for_signal", lambda: None)
    monkeypatch.setitem(oauth_core.cli.COMMANDS, "demo", lambda args, out, err: 0)
    monkeypatch.setattr(oauth_core.drivers.loopback.LoopbackListener, "wait", no_sign_in)
    monkeypatch.setattr(oauth_core.drivers.sync, "new_http_client", light_http_client)
    with respx.mock(assert_all_called=False) as router:
        router.route().mock(side_effect=httpx.ConnectError("the CLI walk allows no network"))
        yield Walker(monkeypatch, tmp_path, router)


# -- the tests --------------------------------------------------------------------------------------


def test_the_walk_sees_every_command() -> None:
    assert set(COMMANDS) >= set(oauth_core.cli.COMMANDS) | {"emulator"}
    assert sum(len(options) for options in COMMANDS.values()) >= 3 * len(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_baseline_bare_and_unknown_option(walker: Walker, command: str) -> None:
    """The baseline and the bare command (nothing given) run cleanly; an unknown option exits 2."""
    problems = []
    walker.run(walker.baseline(command))
    bare = walker.run([command])
    if any(o.required or o.group_required for o in COMMANDS[command]) and bare.code != 2:
        problems.append(f"a required option is missing, exit must be 2: {bare}")
    unknown = walker.run([command, "--no-such-option"])
    if unknown.code != 2 or unknown.requests:
        problems.append(f"an unknown option must exit 2 before any request: {unknown}")
    walker.verdict(problems)


def refused_or_ignored(case: Outcome, absent: Outcome, *, insecure: bool) -> Optional[str]:
    """None when ``case`` was refused before any request (2, or 4 if insecure) or changed nothing.

    An exit code outside 0-4 is not judged here: :func:`common_problems` reports it already.
    """
    if case.code not in (0, 1, 2, 3, 4):
        return None
    if case.code in ((2, 4) if insecure else (2,)) and case.requests == 0:
        return None
    if case.same_as(absent):
        return None
    return f"neither refused (exit 2, no request) nor ignored (as without it: exit {absent.code}): {case}"


def group_choices(option: Option) -> List[Tuple[str, ...]]:
    """Each way to satisfy the command's required groups that ``option`` is not in (one member of each)."""
    groups = {o.group for o in COMMANDS[option.command] if o.group_required and o.group and option.dest not in o.group}
    return [tuple(choice) for choice in itertools.product(*sorted(groups))] or [()]


@pytest.mark.parametrize("option", VALUED, ids=[o.id for o in VALUED])
def test_option_values(walker: Walker, option: Option) -> None:
    """One option at a time: without its value, empty, blank, with a NUL, undecodable, malformed.

    A command with a required group (``exchange``: ``--redirect-url`` or ``--code``) is walked once
    per member, so that an option that only counts with one of them is really exercised.
    """
    problems: List[str] = []
    for prefer in group_choices(option):
        problems += option_problems(walker, option, prefer)
    walker.verdict(problems)


def option_problems(walker: Walker, option: Option, prefer: Sequence[str]) -> List[str]:
    command = option.command
    base = walker.baseline(command, without=[option.dest], swap=option, prefer=prefer)
    problems: List[str] = []
    if option.flag is not None:
        missing = walker.run([*base, option.flag])
        if missing.code != 2 or missing.requests:
            problems.append(f"a missing value must exit 2 before any request: {missing}")
    takes_json = "--json" in {o.flag for o in COMMANDS[command]}
    for index, raw in enumerate([*generic_values(option.dest), *BAD.get(option.dest, [])]):
        value = walker.value(raw)
        argv = [*base, value] if option.flag is None else [*base, option.flag, value]
        variants = [argv, [*argv, "--json"]] if index == 0 and takes_json else [argv]
        for variant in variants:
            case = walker.run(variant)
            if option.dest in ARGV_SECRETS:  # a secret on argv: refused (unless blank), and never echoed
                if (value.strip() and case.code != 2) or (len(value.strip()) > 2 and value in case.err + case.out):
                    problems.append(f"a secret given on the command line must be refused, unechoed: {case}")
                continue
            reference = walker.absent([*base, *variant[len(argv) :]])
            allow_4 = raw in INSECURE or (option.dest in SECURITY_CHECKED and bool(value.strip()))
            problem = refused_or_ignored(case, reference, insecure=allow_4)
            if problem:
                problems.append(problem)
    return problems


ENV_CASES = [(name, value) for name in ENV_NAMES for value in ["", "   ", UNDECODABLE, *ENV_BAD.get(name, [])]]
# The emulator has its own options and reads none of the CLI's environment.
ENV_COMMANDS = sorted(name for name in COMMANDS if name != "emulator")


def _dest_for_env(command: str, name: str) -> Optional[str]:
    for option in COMMANDS[command]:
        if option.env == name:
            return option.dest
    return {"AZURE_CLIENT_ID": "client_id", "AZURE_TENANT_ID": "tenant", "AZURE_AUTHORITY_HOST": "authority_host"}.get(
        name
    )


@pytest.mark.parametrize("command", ENV_COMMANDS)
def test_environment_values(walker: Walker, command: str) -> None:
    """Each environment variable empty, blank, undecodable or malformed, with its option not given."""
    problems: List[str] = []
    for name, raw in ENV_CASES:
        dest = _dest_for_env(command, name)
        base = walker.baseline(command, without=[dest] if dest else [])
        case = walker.run(base, env={name: raw})
        problem = refused_or_ignored(case, walker.absent(base), insecure=raw in INSECURE)
        if problem:
            problems.append(f"{name}={raw[:40]!r}: {problem}")
    walker.verdict(problems)


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_client_id_in_the_environment_is_missing(walker: Walker, value: str) -> None:
    """AZURE_CLIENT_ID empty or blank counts as unset: the same one-line answer as without it."""
    problems = []
    for command, options in sorted(COMMANDS.items()):
        if "client_id" not in {o.dest for o in options} or command == "emulator":
            continue
        base = walker.baseline(command, without=["client_id"])
        blank = walker.run(base, env={"AZURE_CLIENT_ID": value})
        if not blank.same_as(walker.absent(base)):
            problems.append(f"{blank} differs from AZURE_CLIENT_ID unset: {walker.absent(base)}")
    walker.verdict(problems)


def test_every_env_variable_is_walked() -> None:
    """The walk finds the environment the CLI reads (a new variable gets the generic values)."""
    assert {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST", "OAUTH_CORE_HOME"} <= set(ENV_NAMES)
