"""Issue 11: the CLI hardening found by a red-team pass, each fix driven over real loopback sockets.

A. a damaged token cache is refused before any grant is sent; tokens issued but not saved are printed.
B. usage errors never repeat a command-line value (it may be a secret typed in the wrong place).
C. ``*-stdin`` secrets lose only their line end, not their spaces.
D. ``databricks --data @binary`` is a usage error.
E. ``--verbose`` redacts secrets but keeps URLs readable.
F. an explicitly empty ``--tenant``/``--client-id``/``--authority-host`` is a usage error.
G. ``databricks --host`` sends the token only to workspace domains (or ``--allow-workspace-host``);
   ``decode --verify`` fetches keys only from a trusted authority host.
H. server-provided text is printed without escape sequences or control characters.
I. ``exchange --code`` needs ``--state`` or ``--latest`` (and so does ``bench --grant auth-code-replay``).

Every name lookup is guarded: anything but a loopback host (or a test alias for it) fails the
lookup and is recorded, so no test can reach the network.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from test_auth import StandIn, json_reply

from oauth_core.cli import main
from oauth_core.cli.demo import scripted_sign_in
from oauth_core.core.authority import is_loopback_host
from oauth_core.core.errors import ConfigError, InsecureAuthorityError
from oauth_core.core.protocol import redacted_snippet, terminal_safe
from oauth_core.drivers.stores import FileTokenCache
from oauth_core.emulator import Client, Emulator, EmulatorConfig, Fault, User
from oauth_core.integrations.databricks import is_workspace_host, require_workspace_host

SECRET = "Sup3rSecretValue!"
SPACED_PASSWORD = "  pa ss w0rd  "
SPACED_SECRET = " sp-client secret "
SPACED_USER = "spaces@contoso.onmicrosoft.com"
SPACED_CLIENT = "3c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
DBX_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
TOKEN_JSON_KEYS = {"token_type", "access_token", "refresh_token", "id_token", "scope", "expires_in", "expires_at"}
TRUNCATED_CACHE = '{"version": 1, "access_tokens": {"x": {"access_tok'
ALIASES = {"workspace.test", "keys.test"}  # names the guard resolves to 127.0.0.1
CONTROL_BYTES = ("\x1b", "\x9b", "\x07", "\x9d", "\x7f", "\u202e")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Dict[str, Any]:
        data: Dict[str, Any] = json.loads(self.out)
        return data


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    base = EmulatorConfig.default()
    spaced_user = User(SPACED_USER, SPACED_PASSWORD, "Sam Spaces", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
    spaced_client = Client(SPACED_CLIENT, "spaced secret app", ("http://localhost",), secret=SPACED_SECRET)
    config = dataclasses.replace(
        base, users=(*base.users, spaced_user), clients=(*base.clients, spaced_client), token_lifetime=3600
    )
    with Emulator(config, port=0) as emu:
        yield emu


@pytest.fixture(autouse=True)
def env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", emulator.url)
    monkeypatch.setenv("AZURE_TENANT_ID", emulator.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", emulator.config.clients[0].client_id)
    for name in ("DATABRICKS_HOST", "DATABRICKS_AZURE_RESOURCE_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    yield
    emulator.clear_faults()


@pytest.fixture(autouse=True)
def lookups(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Every host name looked up; only loopback hosts and ALIASES (as 127.0.0.1) resolve."""
    real = socket.getaddrinfo
    seen: List[str] = []

    def guarded(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        seen.append(name)
        if name in ALIASES:
            return real("127.0.0.1", port, *args, **kwargs)
        if not is_loopback_host(name):
            raise socket.gaierror(socket.EAI_NONAME, f"the test allows no lookup of {name}")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return seen


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    def invoke(argv: List[str], stdin: Optional[str] = None) -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


def alice(emulator: Emulator) -> User:
    return emulator.config.users[0]


def token_requests(emulator: Emulator) -> int:
    return emulator.count("token") + emulator.count("devicecode")


def damage_cache(home: Path, text: str = TRUNCATED_CACHE) -> Path:
    """Write ``text`` as the token cache (0600 in a 0700 directory, so only its content is wrong)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / "tokens.json"
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def sign_in_url(run: Callable[..., Result], emulator: Emulator) -> str:
    """authorize-url, then the scripted browser: the redirect Location (code and state in it)."""
    started = run(["authorize-url", "--json"])
    assert started.code == 0, started.err
    return scripted_sign_in(started.json()["url"], alice(emulator).username, alice(emulator).password)


def code_and_state(location: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(location).query)
    return query["code"][0], query["state"][0]


def pending_files(home: Path) -> List[Path]:
    return sorted((home / "pending").glob("*.json"))


def no_controls(text: str) -> bool:
    return not any(ch in text for ch in CONTROL_BYTES)


# -- A. a damaged cache costs nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        (["password", "-u", "alice@contoso.onmicrosoft.com", "--password-stdin"], "Alice-Passw0rd!\n"),
        (["refresh"], None),
        (["refresh", "--refresh-token-stdin"], "0.AXkA-some-refresh-token\n"),
        (["device-code", "--timeout", "5"], None),
        (["login", "--no-browser", "--timeout", "5"], None),
        (["bench", "--grant", "password", "-u", "alice@contoso.onmicrosoft.com", "--password-stdin"], "pw\n"),
        (["bench", "--grant", "refresh", "--refresh-token-stdin"], "0.AXkA-some-refresh-token\n"),
    ],
    ids=["password", "refresh-cached", "refresh-stdin", "device-code", "login", "bench-password", "bench-refresh"],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_a_damaged_cache_is_refused_before_anything_is_sent(
    run: Callable[..., Result],
    emulator: Emulator,
    isolated_env: Path,
    argv: List[str],
    stdin: Optional[str],
    as_json: bool,
) -> None:
    cache = damage_cache(isolated_env)
    before, authorize_before = token_requests(emulator), emulator.count("authorize")
    result = run([*argv, *(["--json"] if as_json else [])], stdin)
    assert result.code == 2, result.err
    assert "token cache" in result.err
    assert token_requests(emulator) == before  # no grant, not even a device code request
    assert emulator.count("authorize") == authorize_before
    assert "http" not in result.err.split("token cache")[0]  # login showed no sign-in URL first
    assert cache.read_text(encoding="utf-8") == TRUNCATED_CACHE  # left for the user to look at


def test_exchange_with_a_damaged_cache_keeps_the_code_usable(
    run: Callable[..., Result], emulator: Emulator, isolated_env: Path
) -> None:
    location = sign_in_url(run, emulator)
    cache = damage_cache(isolated_env)
    before = emulator.count("token")
    refused = run(["exchange", "--redirect-url", location])
    assert refused.code == 2, refused.err
    assert "token cache" in refused.err
    assert emulator.count("token") == before  # the single-use code was not presented
    assert len(pending_files(isolated_env)) == 1  # and its pending request is still there
    cache.unlink()  # the user repairs the cache: the same code still works
    redeemed = run(["exchange", "--redirect-url", location, "--json"])
    assert redeemed.code == 0, redeemed.err
    assert set(redeemed.json()) >= TOKEN_JSON_KEYS
    assert pending_files(isolated_env) == []


@pytest.fixture
def unsaveable(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> Path:
    """A cache that passes the check but cannot take the tokens (it broke after the check)."""
    monkeypatch.setattr(FileTokenCache, "check_usable", lambda self: None)
    return damage_cache(isolated_env)


def check_unsaved_output(result: Result, emulator: Emulator) -> None:
    assert result.code == 0, result.err
    assert len(result.out.strip().splitlines()) == 1  # one JSON object, as --json prints it
    data = result.json()
    assert set(data) >= TOKEN_JSON_KEYS
    assert data["access_token"] and data["refresh_token"]
    assert data["claims"]["tid"] == emulator.tenant_id
    warning = result.err.strip().splitlines()[-1]  # (after the once-only ROPC note)
    assert warning.startswith("warning: ") and "could not be saved" in warning


@pytest.mark.parametrize("as_json", [False, True])
def test_password_tokens_are_printed_when_they_cannot_be_saved(
    run: Callable[..., Result], emulator: Emulator, unsaveable: Path, as_json: bool
) -> None:
    user = alice(emulator)
    argv = ["password", "-u", user.username, "--password-stdin", *(["--json"] if as_json else [])]
    before = emulator.count("token", grant_type="password")
    result = run(argv, user.password + "\n")
    assert emulator.count("token", grant_type="password") == before + 1
    check_unsaved_output(result, emulator)
    assert unsaveable.read_text(encoding="utf-8") == TRUNCATED_CACHE


def test_refresh_tokens_are_printed_when_they_cannot_be_saved(
    run: Callable[..., Result], emulator: Emulator, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    user = alice(emulator)
    first = run(["password", "-u", user.username, "--password-stdin", "--no-cache", "--json"], user.password + "\n")
    assert first.code == 0, first.err
    monkeypatch.setattr(FileTokenCache, "check_usable", lambda self: None)
    damage_cache(isolated_env)
    result = run(["refresh", "--refresh-token-stdin"], first.json()["refresh_token"] + "\n")
    check_unsaved_output(result, emulator)
    assert result.json()["refresh_token"] != first.json()["refresh_token"]  # the rotated one is not lost


def test_exchange_tokens_are_printed_when_they_cannot_be_saved(
    run: Callable[..., Result], emulator: Emulator, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    location = sign_in_url(run, emulator)
    monkeypatch.setattr(FileTokenCache, "check_usable", lambda self: None)
    damage_cache(isolated_env)
    result = run(["exchange", "--redirect-url", location])
    check_unsaved_output(result, emulator)
    assert pending_files(isolated_env) == []  # the code was redeemed: its pending request is gone


# -- B. usage errors never echo values ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["password", "-u", "alice@contoso.onmicrosoft.com", "--password-stdin", SECRET],
        ["password", "--password-stdin", f"--password-stdin={SECRET}"],
        ["password", "-u", "alice@contoso.onmicrosoft.com", "-p", SECRET],
        ["password", "-u", "alice@contoso.onmicrosoft.com", f"-p{SECRET}"],
        ["password", "-u", "alice@contoso.onmicrosoft.com", f"--{SECRET}"],
        ["password", "-u", "alice@contoso.onmicrosoft.com", f"--passwd={SECRET}"],
        ["refresh", "--refresh-token", SECRET],
        ["refresh", f"--refresh-token={SECRET}"],
        ["refresh", "--refresh-token-stdin", SECRET],
        ["bench", "--grant", "refresh", "--refresh-token", SECRET],
        ["bench", "--grant", "refresh", "-n", SECRET],
        ["client-credentials", "--client-secret-stdin", SECRET],
        ["authorize-url", "--prompt", SECRET],
        ["--timeout", SECRET, "refresh"],
        ["--json", SECRET],
        ["exchange", "--code", "abc", "--state", "def", SECRET],
        ["decode", "x", SECRET],
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_a_secret_on_the_command_line_is_never_echoed(
    run: Callable[..., Result], emulator: Emulator, argv: List[str], as_json: bool
) -> None:
    before = token_requests(emulator)
    result = run([*argv, *(["--json"] if as_json else [])], "0.AXkA-from-stdin\n")
    as_json = "--json" in argv or as_json
    assert result.code == 2, result.err
    for fragment in (SECRET, "Sup3r", "SecretValue"):
        assert fragment not in result.out + result.err
    assert token_requests(emulator) == before
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    if as_json:
        assert json.loads(lines[0])["error"] == "usage_error"
    else:
        assert lines[0].startswith("oauth-core: error: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["password", "--refresh-token", SECRET], "unrecognized arguments: --refresh-token; 1 unexpected positional"),
        (["password", "--password-stdin", SECRET], "1 unexpected positional argument"),
        (["password", "-p", SECRET, SECRET], "unrecognized arguments: -p; 2 unexpected positional arguments"),
        (["password", f"-p{SECRET}"], "1 unrecognized option (not shown)"),
        (["refresh", "--refresh-token", SECRET], "never pass a refresh token on the command line"),
        (["password", f"--password-stdin={SECRET}"], "argument --password-stdin: takes no value"),
        (["bench", "--grant", "refresh", "-n", SECRET], "argument -n: invalid int value"),
        (["authorize-url", "--prompt", SECRET], "argument --prompt: invalid choice (choose from 'login'"),
        (["--timeout", SECRET, "refresh"], "argument --timeout: not a number"),
        (["refresh", "--refresh-tok", "x"], "unrecognized arguments: --refresh-tok"),  # no abbreviations
    ],
)
def test_usage_errors_name_the_flag_only(run: Callable[..., Result], argv: List[str], message: str) -> None:
    result = run(argv)
    assert result.code == 2
    assert message in result.err


# -- C. stdin secrets keep their spaces --------------------------------------------------------------


@pytest.fixture
def token_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """A loopback token endpoint that records each form body and answers with a token response.

    (The emulator strips form values before comparing them, so it cannot tell a stripped password.)
    """
    from fixturelib import TENANT_ID, token_response_body

    server = StandIn()
    reply = (200, {"content-type": "application/json"}, token_response_body().encode())
    server.queue(f"/{TENANT_ID}/oauth2/v2.0/token", reply, times=10)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", server.url)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT_ID)
    yield server
    server.close()


def sent_form(server: StandIn) -> Dict[str, str]:
    assert len(server.requests) == 1
    return {k: v[0] for k, v in parse_qs(server.requests[0].body.decode("ascii"), keep_blank_values=True).items()}


@pytest.mark.parametrize("line_end", ["\n", "\r\n", ""])
@pytest.mark.parametrize(
    ("argv", "field", "secret"),
    [
        (["password", "-u", SPACED_USER, "--password-stdin"], "password", SPACED_PASSWORD),
        (["password", "-u", SPACED_USER, "--password-stdin"], "password", "\tpass\tword "),
        (["refresh", "--refresh-token-stdin"], "refresh_token", " 0.AXkA-refresh token "),
    ],
)
@pytest.mark.usefixtures("no_realm_discovery")  # the stand-in serves the token endpoint only
def test_stdin_secrets_are_sent_as_typed(
    run: Callable[..., Result], token_service: StandIn, argv: List[str], field: str, secret: str, line_end: str
) -> None:
    result = run([*argv, "--no-cache", "--json"], secret + line_end)
    assert result.code == 0, result.err
    assert sent_form(token_service)[field] == secret  # only the line end went


def test_client_secret_stdin_keeps_surrounding_spaces(run: Callable[..., Result], emulator: Emulator) -> None:
    argv = ["client-credentials", "--client-id", SPACED_CLIENT, "--client-secret-stdin", "--json"]
    assert run(argv, SPACED_SECRET + "\r\n").code == 0
    stripped = run(argv, SPACED_SECRET.strip() + "\n")
    assert stripped.code == 1 and "invalid_client" in stripped.err


def test_blank_stdin_is_still_no_secret(run: Callable[..., Result], emulator: Emulator) -> None:
    before = token_requests(emulator)
    result = run(["password", "-u", SPACED_USER, "--password-stdin"], "   \n")
    assert result.code == 2 and "no password on standard input" in result.err
    assert token_requests(emulator) == before


# -- D. --data @binary-file ----------------------------------------------------------------------------


@pytest.fixture
def workspace() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00\x01binary\x80", "not UTF-8 text"),
        (b'{"a": "' + b"x" * 64 + b'"}', "larger than"),
    ],
)
def test_data_file_that_is_not_a_json_text_is_a_usage_error(
    run: Callable[..., Result],
    workspace: StandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    message: str,
) -> None:
    monkeypatch.setattr("oauth_core.cli.databricks.MAX_DATA_BYTES", 32)
    body = tmp_path / "body.bin"
    body.write_bytes(content)
    result = run(["databricks", "--host", workspace.url, "--data", f"@{body}", "POST", "/api/2.0/clusters/start"])
    assert result.code == 2, result.err
    assert message in result.err
    assert "internal error" not in result.err
    assert workspace.requests == []


def test_data_file_with_a_bom_is_read(
    run: Callable[..., Result], emulator: Emulator, workspace: StandIn, tmp_path: Path
) -> None:
    user = alice(emulator)
    assert run(["password", "-u", user.username, "--password-stdin"], user.password + "\n").code == 0
    body = tmp_path / "body.json"
    body.write_bytes(b'\xef\xbb\xbf{"cluster_id": "c1"}')
    argv = ["databricks", "--host", workspace.url, "--data", f"@{body}", "POST", "/api/2.0/clusters/start"]
    result = run(argv)
    assert result.code == 0, result.err
    assert json.loads(workspace.requests[-1].body) == {"cluster_id": "c1"}


# -- E. --verbose keeps URLs readable ------------------------------------------------------------------


@pytest.fixture
def verbose_stderr() -> Iterator[io.StringIO]:
    """The stderr to give main (where --verbose logs go); the log handler main adds is removed afterwards."""
    captured = io.StringIO()
    logger = logging.getLogger("oauth_core")
    level = logger.level
    yield captured
    for handler in [h for h in logger.handlers if h.get_name() == "oauth-core-cli"]:
        logger.removeHandler(handler)
    logger.setLevel(level)


def test_verbose_shows_the_endpoint_and_hides_the_secrets(
    emulator: Emulator, verbose_stderr: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = alice(emulator)
    monkeypatch.setattr(sys, "stdin", io.StringIO(user.password + "\n"))
    out = io.StringIO()
    argv = ["password", "-u", user.username, "--password-stdin", "--json", "--verbose"]
    code = main(argv, stdout=out, stderr=verbose_stderr)
    assert code == 0
    logged = verbose_stderr.getvalue()
    assert f"POST {emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token -> 200" in logged
    assert "[redacted]" not in logged.split("->")[0]
    tokens = json.loads(out.getvalue())
    for secret in (user.password, tokens["access_token"], tokens["refresh_token"], tokens["id_token"]):
        assert secret not in logged


@pytest.mark.parametrize(
    ("text", "kept", "hidden"),
    [
        (
            "GET https://adb-1234567890123456.7.azuredatabricks.net:8443/api/2.0/clusters/list?o=1 -> 200",
            ["https://adb-1234567890123456.7.azuredatabricks.net:8443/api/2.0/clusters/list?o=1"],
            [],
        ),
        (
            "POST http://127.0.0.1:54321/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token failed",
            ["http://127.0.0.1:54321/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"],
            [],
        ),
        (
            "http://localhost:8400/?code=0.AXkA-short&state=st4te&session_state=s1",
            ["http://localhost:8400/?code=[redacted]&state=[redacted]"],
            ["0.AXkA-short", "st4te"],
        ),
        ("https://alice:hunter2@host.example/x", ["host.example/x"], ["alice", "hunter2"]),
        (
            "https://host.example/cb#access_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl&expires_in=3599",
            ["https://host.example/cb#access_token=[redacted]&expires_in=3599"],
            ["eyJhbGciOiJSUzI1NiJ9"],
        ),
        ("grant_type=password&password=hunter2&username=bob", ["username=bob"], ["hunter2"]),
        ('{"refresh_token": "short-rt", "error": "invalid_grant"}', ['"error": "invalid_grant"'], ["short-rt"]),
        ("opaque " + "A1b2" * 20, ["opaque [redacted]"], ["A1b2A1b2"]),
    ],
)
def test_redacted_snippet_keeps_urls_and_hides_secrets(text: str, kept: List[str], hidden: List[str]) -> None:
    shown = redacted_snippet(text.encode(), limit=2000)
    for part in kept:
        assert part in shown, shown
    for part in hidden:
        assert part not in shown, shown


# -- F. blank settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--tenant", "--client-id", "--authority-host", "--account"])
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_setting_is_a_usage_error(
    run: Callable[..., Result], emulator: Emulator, fast_retries: Any, flag: str, value: str
) -> None:
    user = alice(emulator)
    before = token_requests(emulator)
    result = run(["password", "-u", user.username, "--password-stdin", flag, value], user.password + "\n")
    assert result.code == 2, result.err
    assert f"{flag} is empty" in result.err
    assert token_requests(emulator) == before  # not sent to the environment's (or the default) tenant
    assert fast_retries.waits == []


def test_an_empty_databricks_host_does_not_fall_back_to_the_environment(
    run: Callable[..., Result], workspace: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    result = run(["databricks", "--host", "", "GET", "/api/2.0/clusters/list"])
    assert result.code == 2 and "--host is empty" in result.err
    assert workspace.requests == []


# -- G. where tokens may go ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("adb-1234567890123456.7.azuredatabricks.net", True),
        ("ADB-1.2.AzureDatabricks.NET", True),
        ("adb-1.2.databricks.azure.us", True),
        ("adb-1.2.databricks.azure.cn", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("[::1]", True),
        ("azuredatabricks.net", False),
        ("evilazuredatabricks.net", False),
        ("adb-1.azuredatabricks.net.evil.example", False),
        ("databricks.azure.us.example", False),
        ("evil.example", False),
    ],
)
def test_workspace_hosts(host: str, expected: bool) -> None:
    assert is_workspace_host(host) is expected


def test_require_workspace_host() -> None:
    assert require_workspace_host("adb-1.2.azuredatabricks.net") == "https://adb-1.2.azuredatabricks.net"
    assert require_workspace_host("https://Other.Example/", ["other.example"]) == "https://other.example"
    assert require_workspace_host("other.example", ["https://OTHER.example:8443"]) == "https://other.example"
    with pytest.raises(InsecureAuthorityError, match=r"allowed_hosts=\['other\.example'\]"):
        require_workspace_host("other.example")
    with pytest.raises(ConfigError, match="empty"):
        require_workspace_host("other.example", [" "])


@pytest.mark.parametrize("as_json", [False, True])
def test_databricks_refuses_a_host_outside_the_workspace_domains(
    run: Callable[..., Result], emulator: Emulator, lookups: List[str], monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    user = alice(emulator)
    assert run(["password", "-u", user.username, "--password-stdin"], user.password + "\n").code == 0
    monkeypatch.delenv("AZURE_TENANT_ID")  # the CLI would look the tenant up from the workspace first
    before = token_requests(emulator)
    argv = ["databricks", "--host", "workspace.example.invalid", "GET", "/api/2.0/clusters/list"]
    result = run([*argv, *(["--json"] if as_json else [])])
    assert result.code == 4, result.err
    assert "--allow-workspace-host workspace.example.invalid" in result.err
    assert "workspace.example.invalid" not in lookups  # refused before the tenant lookup, let alone the call
    assert token_requests(emulator) == before


def test_allow_workspace_host_lets_the_named_host_through(
    run: Callable[..., Result], lookups: List[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_TENANT_ID")  # so that the tenant is looked up from the workspace
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["databricks", "--host", f"https://workspace.test:{port}", "GET", "/api/2.0/clusters/list"]
    refused = run(argv)
    assert refused.code == 4 and lookups == []
    allowed = run([*argv, "--allow-workspace-host", "workspace.test"])
    assert allowed.code == 3, allowed.err  # it tried the workspace (the port is closed)
    assert "cannot reach the workspace" in allowed.err
    assert "workspace.test" in lookups


@pytest.fixture
def jwks_fetches(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """decode --verify's key fetch, recorded (answered with the fixture keys) instead of sent."""
    from fixturelib import jwks

    import oauth_core.drivers.sync

    fetched: List[str] = []

    def fetch(authority: Any, **kwargs: Any) -> Dict[str, Any]:
        fetched.append(authority.host)
        return jwks()

    monkeypatch.setattr(oauth_core.drivers.sync, "fetch_jwks", fetch)
    return fetched


@pytest.mark.parametrize("as_json", [False, True])
def test_decode_verify_refuses_an_untrusted_authority_host(
    run: Callable[..., Result], jwks_fetches: List[str], lookups: List[str], as_json: bool
) -> None:
    from fixturelib import load_token

    token = load_token("databricks-v1-user").strip()
    argv = ["decode", token, "--verify", "--authority-host", "https://keys.test", *(["--json"] if as_json else [])]
    result = run(argv)
    assert result.code == 4, result.err
    assert "--allow-authority-host keys.test" in result.err
    assert jwks_fetches == [] and lookups == []


@pytest.mark.parametrize("how", ["flag", "env"])
def test_decode_verify_fetches_from_a_trusted_authority_host(
    run: Callable[..., Result], jwks_fetches: List[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from fixturelib import load_token

    token = load_token("databricks-v1-user").strip()
    argv = ["decode", token, "--verify", "--authority-host", "https://keys.test", "--json"]
    if how == "flag":
        argv += ["--allow-authority-host", "keys.test"]
    else:
        monkeypatch.setenv("OAUTH_CORE_TRUSTED_HOSTS", "other.example, keys.test")
    result = run(argv)
    assert result.code == 0, result.err
    assert result.json()["verified"] is True
    assert jwks_fetches == ["https://keys.test"]


# -- H. server text is made safe to print ----------------------------------------------------------------

HOSTILE = "AADSTS70000: \x1b[31mred\x1b[0m \x1b]0;pwned title\x07\x1b[2J\x9b6n\x9d8;;x\x07 \u202eevil\x7f done"


def test_terminal_safe() -> None:
    assert terminal_safe(HOSTILE) == "AADSTS70000: red  evil done"
    assert terminal_safe("a\r\nb\tc\x00d") == "a  b cd"
    assert terminal_safe("a\r\nb\tc\x1b[1m\n", multiline=True) == "a\nb\tc\n"
    assert terminal_safe("lone \udcff surrogate") == "lone \ufffd surrogate"


def hostile_error(**extra: Any) -> Fault:
    body = {
        "error": "invalid_grant",
        "error_description": HOSTILE,
        "error_codes": [70000],
        "trace_id": "\x1b[5m0f3c1e2d-aaaa-bbbb-cccc-000000000001",
        "correlation_id": "0f3c1e2d-aaaa-bbbb-cccc-000000000002\x1b]52;c;Y2xpcGJvYXJk\x07",
        **extra,
    }
    return Fault("status", status=400, body=json.dumps(body))


def test_an_error_description_with_escape_sequences_prints_none(run: Callable[..., Result], emulator: Emulator) -> None:
    emulator.inject("token", hostile_error())
    result = run(["refresh", "--refresh-token-stdin"], "0.AXkA-some-refresh-token\n")
    assert result.code == 1, result.err
    assert no_controls(result.err), repr(result.err)
    assert "oauth-core: error: invalid_grant: AADSTS70000: red" in result.err
    assert "done" in result.err and "pwned" not in result.err and "Y2xpcGJvYXJk" not in result.err


def test_json_errors_carry_escapes_only_escaped(run: Callable[..., Result], emulator: Emulator) -> None:
    emulator.inject("token", hostile_error())
    result = run(["refresh", "--refresh-token-stdin", "--json"], "0.AXkA-some-refresh-token\n")
    assert result.code == 1
    assert no_controls(result.err)  # json.dumps writes ESC as \u001b: nothing reaches the terminal raw
    assert json.loads(result.err.strip().splitlines()[-1])["error_description"] == HOSTILE


def test_a_response_snippet_with_escape_sequences_prints_none(
    run: Callable[..., Result], emulator: Emulator, fast_retries: Any
) -> None:
    page = "<html><title>\x1b[31mGateway\x1b]0;pwned\x07</title><body>\x1b[2Joops</body></html>"
    emulator.inject("token", Fault("html", status=200, body=page), times=5)
    result = run(["refresh", "--refresh-token-stdin"], "0.AXkA-some-refresh-token\n")
    assert result.code == 3, result.err
    assert "response began" in result.err and "Gateway" in result.err
    assert no_controls(result.err), repr(result.err)


@pytest.fixture
def signed_in(run: Callable[..., Result], emulator: Emulator) -> None:
    user = alice(emulator)
    assert run(["password", "-u", user.username, "--password-stdin"], user.password + "\n").code == 0


@pytest.mark.parametrize("as_json", [False, True])
def test_databricks_error_messages_print_no_escape_sequences(
    run: Callable[..., Result], signed_in: None, workspace: StandIn, as_json: bool
) -> None:
    message = "\x1b]8;;https://evil.example\x07click me\x1b]8;;\x07 \x1b[2Jgone\x9b1;1H"
    workspace.queue("/api/2.0/clusters/list", json_reply(403, {"error_code": "PERMISSION_DENIED", "message": message}))
    result = run(["databricks", "--host", workspace.url, "GET", "/api/2.0/clusters/list", *(["--json"] * as_json)])
    assert result.code == 1, result.err
    assert no_controls(result.err), repr(result.err)
    assert "PERMISSION_DENIED: click me gone" in result.err
    assert "evil.example" not in result.err


def test_databricks_text_answers_print_no_escape_sequences(
    run: Callable[..., Result], signed_in: None, workspace: StandIn
) -> None:
    reply = (200, {"content-type": "text/plain"}, b"hello \x1b[31mworld\x1b[0m\r\nline two\x07\n")
    workspace.queue("/api/2.0/clusters/list", reply)
    result = run(["databricks", "--host", workspace.url, "GET", "/api/2.0/clusters/list"])
    assert result.code == 0, result.err
    assert result.out == "hello world\nline two\n"


def test_accounts_print_no_escape_sequences(run: Callable[..., Result], isolated_env: Path) -> None:
    account = {
        "account": "oid.tid\x1b[8m",
        "username": "\x1b[31malice\x1b[0m@contoso.com\x1b]0;pwned\x07",
        "host": "https://login.microsoftonline.com",
        "client_id": "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21\x07",
        "tenant": "contoso.com",
    }
    state = {"version": 1, "access_tokens": {}, "refresh_tokens": {}, "accounts": {"k": account}, "flags": {}}
    damage_cache(isolated_env, json.dumps(state))
    result = run(["accounts"])
    assert result.code == 0, result.err
    assert no_controls(result.out), repr(result.out)
    assert "alice@contoso.com  account oid.tid" in result.out
    as_json = run(["accounts", "--json"])
    assert no_controls(as_json.out)
    assert json.loads(as_json.out)["accounts"][0]["username"] == account["username"]


# -- I. --code needs --state or --latest -----------------------------------------------------------------


def test_exchange_code_needs_state_or_latest(
    run: Callable[..., Result], emulator: Emulator, isolated_env: Path
) -> None:
    code, state = code_and_state(sign_in_url(run, emulator))
    before = emulator.count("token")
    bare = run(["exchange", "--code", code])
    assert bare.code == 2 and "--latest" in bare.err and "--state" in bare.err
    both = run(["exchange", "--code", code, "--state", state, "--latest"])
    assert both.code == 2 and "not both" in both.err
    assert emulator.count("token") == before and len(pending_files(isolated_env)) == 1
    latest = run(["exchange", "--code", code, "--latest", "--json"])
    assert latest.code == 0, latest.err
    assert "warning: --latest" in latest.err
    assert set(latest.json()) >= TOKEN_JSON_KEYS
    assert pending_files(isolated_env) == []


def test_exchange_redirect_url_takes_no_latest(run: Callable[..., Result], emulator: Emulator) -> None:
    location = sign_in_url(run, emulator)
    result = run(["exchange", "--redirect-url", location, "--latest"])
    assert result.code == 2 and "--latest go with --code" in result.err
    assert run(["exchange", "--redirect-url", location, "--json"]).code == 0  # still redeemable


def test_bench_code_replay_needs_state_or_latest(
    run: Callable[..., Result], emulator: Emulator, isolated_env: Path
) -> None:
    code, _ = code_and_state(sign_in_url(run, emulator))
    base = ["bench", "--grant", "auth-code-replay", "--code", code, "-n", "2", "--warmup", "0", "--json"]
    before = emulator.count("token")
    bare = run(base)
    assert bare.code == 2 and "--latest" in bare.err
    assert emulator.count("token") == before and len(pending_files(isolated_env)) == 1
    wrong = run(["bench", "--grant", "refresh", "--latest"])
    assert wrong.code == 2 and "--latest goes with --grant auth-code-replay" in wrong.err
    latest = run([*base, "--latest"])
    assert latest.code == 0, latest.err
    assert latest.json()["statuses"] == {"200": 1, "400": 1}
    assert pending_files(isolated_env) == []
