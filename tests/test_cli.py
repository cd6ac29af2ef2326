"""The ``oauth-core`` command line: oauth_core.cli.main in-process (respx for the network) and a
few real ``python -m oauth_core`` runs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import respx
from fixturelib import (
    CLIENT_ID,
    FIXTURES,
    TENANT_ID,
    load_claims,
    load_response,
    load_token,
    mint_jwt,
    response_names,
    token_response_body,
)

from oauth_core import __version__
from oauth_core.cli import COMMANDS, ROPC_NOTICE, build_parser, main
from oauth_core.cli.hints import HINTS_BY_CLASS, HINTS_BY_CODE, shell_hint
from oauth_core.core.claims import unverified_claims
from oauth_core.core.errors import AADSTS, OAuthError, oauth_error_from_body

# These tests mock only the token endpoint: the user realm lookup is tested in test_wstrust.py.
pytestmark = pytest.mark.usefixtures("no_realm_discovery")

REPO = Path(__file__).resolve().parent.parent
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/token"
USERNAME = "someone@contoso.onmicrosoft.com"
PASSWORD = "Tr0ub4dor&3-not-in-output"
TENANT_ARGS = ["--tenant", TENANT_ID, "--client-id", CLIENT_ID]
TOKEN_JSON_KEYS = {
    "token_type",
    "access_token",
    "refresh_token",
    "id_token",
    "scope",
    "expires_in",
    "expires_at",
    "claims",
}
ERROR_JSON_KEYS = {"error", "error_description", "error_codes", "correlation_id", "trace_id", "status", "hint"}


# -- helpers ------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> List[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def error_json(self) -> Dict[str, Any]:
        payload: Dict[str, Any] = json.loads(self.err_lines[-1])
        return payload


def recorded(name: str, *, status: Optional[int] = None) -> httpx.Response:
    record = load_response(name)
    return httpx.Response(
        record["status"] if status is None else status,
        headers=[(str(k), str(v)) for k, v in record["headers"]],
        content=record["body"].encode("utf-8"),
    )


def body_of(name: str) -> Dict[str, Any]:
    return dict(json.loads(load_response(name)["body"]))


def json_response(body: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/json; charset=utf-8"}, content=body.encode())


def form_of(call: Any) -> Dict[str, str]:
    return dict(parse_qsl(call.request.content.decode("ascii"), keep_blank_values=True))


def b64url_sha256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``run(argv, stdin=None)``: call main with StringIO streams (stdin replaced when given)."""

    def invoke(argv: List[str], stdin: Optional[str] = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def token_route(router: respx.MockRouter) -> respx.Route:
    return router.post(TOKEN_URL)


def check_token_output(result: Result, fixture_body: Dict[str, Any]) -> Dict[str, Any]:
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1
    data: Dict[str, Any] = json.loads(result.out)
    assert set(data) == TOKEN_JSON_KEYS
    assert data["token_type"] == "Bearer"
    assert data["access_token"] == fixture_body["access_token"]
    assert data["refresh_token"] == fixture_body.get("refresh_token")
    assert data["id_token"] == fixture_body.get("id_token")
    assert data["scope"] == fixture_body["scope"].split()
    assert isinstance(data["expires_in"], int) and not isinstance(data["expires_in"], bool)
    assert isinstance(data["expires_at"], int) and not isinstance(data["expires_at"], bool)
    assert abs(data["expires_in"] - fixture_body["expires_in"]) <= 5
    assert abs(data["expires_at"] - (time.time() + fixture_body["expires_in"])) <= 5
    assert data["claims"] is None or isinstance(data["claims"], dict)
    return data


def cached_refresh_tokens(home: Path) -> List[str]:
    """The refresh tokens in the CLI's token cache file, which must be mode 0600."""
    path = home / "tokens.json"
    assert mode(path) == 0o600
    return [entry["refresh_token"] for entry in json.loads(path.read_text())["refresh_tokens"].values()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- help, version, lazy imports ------------------------------------------------------------------


def parser_commands() -> List[str]:
    """Every command the top-level parser lists (COMMANDS and any dispatched elsewhere)."""
    parser = build_parser()
    found: List[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices)
    return found


def test_parser_lists_every_command() -> None:
    assert set(COMMANDS) <= set(parser_commands())


@pytest.mark.parametrize("command", [None, *parser_commands()])
def test_help_exits_zero(command: Optional[str]) -> None:
    argv = ["--help"] if command is None else [command, "--help"]
    done = subprocess.run(
        [sys.executable, "-m", "oauth_core", *argv], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: oauth-core")
    assert done.stderr == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"oauth-core {__version__}"


def test_no_command_prints_help_and_exits_2(run: Any) -> None:
    result = run([])
    assert result.code == 2
    assert "usage: oauth-core" in result.out


def test_decode_and_help_do_not_import_httpx() -> None:
    script = (
        "import contextlib, io, json, sys\n"
        "from oauth_core.cli import main\n"
        "token = sys.argv[1]\n"
        "codes = [main(['decode', token], stdout=io.StringIO(), stderr=io.StringIO())]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes.append(main(['--help'], stdout=io.StringIO(), stderr=io.StringIO()))\n"
        "print(json.dumps({'codes': codes, 'modules': sorted(m for m in ('httpx', 'tenacity', 'httpcore') "
        "if m in sys.modules)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, load_token("graph-v2-user")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"codes": [0, 0], "modules": []}


# -- authorize-url and exchange ------------------------------------------------------------------


def authorize(run: Any, *extra: str) -> Tuple[Dict[str, Any], Dict[str, Any], Path]:
    """Run authorize-url --json; return its output, the saved pending request and its path."""
    result = run(["authorize-url", *TENANT_ARGS, "--json", *extra])
    assert result.code == 0, result.err
    data: Dict[str, Any] = json.loads(result.out)
    path = Path(data["pending_file"])
    pending: Dict[str, Any] = json.loads(path.read_text())
    return data, pending, path


def test_authorize_url(run: Any, isolated_env: Path, router: respx.MockRouter) -> None:
    data, pending, path = authorize(run)
    assert set(data) >= {"url", "pending_file"}
    parts = urlsplit(data["url"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"https://login.microsoftonline.com/{TENANT_ID}/oauth2/v2.0/authorize"
    )
    pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    names = [name for name, _ in pairs]
    assert sorted(names) == sorted(
        [
            "client_id",
            "response_type",
            "redirect_uri",
            "response_mode",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
            "nonce",
        ]
    )
    query = dict(pairs)
    assert query["client_id"] == CLIENT_ID
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == "http://localhost"
    assert query["response_mode"] == "query"
    assert query["scope"].split() == [
        "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
        "offline_access",
        "openid",
        "profile",
    ]
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == pending["state"]
    assert query["nonce"] == pending["nonce"]
    assert query["code_challenge"] == b64url_sha256(pending["code_verifier"])
    assert path.parent == isolated_env / "pending"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert len(router.calls) == 0


def test_authorize_url_plain_output(run: Any) -> None:
    result = run(["authorize-url", *TENANT_ARGS])
    assert result.code == 0
    assert result.out.startswith("https://login.microsoftonline.com/")
    assert result.out.count("\n") == 1
    assert "exchange" in result.err


def id_token_for(nonce: str) -> str:
    claims = dict(load_claims("id-token-v2")["claims"], nonce=nonce)
    return mint_jwt(claims, header={"x5t": None})


def redirect_url(state: str, code: str = "0.AXkA-code-from-the-browser") -> str:
    return "http://localhost/?" + urlencode({"code": code, "state": state, "session_state": "x"}) + "#"


def test_exchange_with_tampered_state(run: Any, router: respx.MockRouter) -> None:
    _, pending, path = authorize(run)
    result = run(["exchange", "--redirect-url", redirect_url(pending["state"][:-2] + "xx"), "--json"])
    assert result.code == 4
    assert len(router.calls) == 0
    assert path.exists()


def test_exchange_with_missing_state(run: Any, router: respx.MockRouter) -> None:
    authorize(run)
    result = run(["exchange", "--redirect-url", "http://localhost/?code=abc"])
    assert result.code == 4
    assert len(router.calls) == 0
    assert len(result.err_lines) == 1


def test_exchange(run: Any, isolated_env: Path, token_route: respx.Route) -> None:
    _, pending, path = authorize(run)
    body_text = token_response_body(id_token=id_token_for(pending["nonce"]))
    token_route.mock(side_effect=lambda request: json_response(body_text))
    result = run(["exchange", "--redirect-url", redirect_url(pending["state"], "0.AXkA-the-code"), "--json"])
    data = check_token_output(result, json.loads(body_text))
    assert data["claims"] == unverified_claims(json.loads(body_text)["access_token"])
    assert token_route.call_count == 1
    form = form_of(token_route.calls.last)
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == "0.AXkA-the-code"
    assert form["code_verifier"] == pending["code_verifier"]
    assert form["redirect_uri"] == "http://localhost"
    assert form["client_id"] == CLIENT_ID
    assert not path.exists()
    assert cached_refresh_tokens(isolated_env) == [json.loads(body_text)["refresh_token"]]


def test_exchange_nonce_mismatch(run: Any, token_route: respx.Route) -> None:
    _, pending, _ = authorize(run)
    body_text = token_response_body(id_token=id_token_for("not-the-saved-nonce"))
    token_route.mock(side_effect=lambda request: json_response(body_text))
    result = run(["exchange", "--redirect-url", redirect_url(pending["state"]), "--json"])
    assert result.code == 4
    assert result.out == ""
    assert result.error_json()["error"] == "nonce_mismatch"


def test_exchange_with_code_and_state(run: Any, token_route: respx.Route) -> None:
    _, pending, path = authorize(run)
    body_text = token_response_body(id_token=id_token_for(pending["nonce"]))
    token_route.mock(side_effect=lambda request: json_response(body_text))
    result = run(["exchange", "--code", "0.AXkA-bare-code", "--state", pending["state"], "--json"])
    check_token_output(result, json.loads(body_text))
    assert form_of(token_route.calls.last)["code"] == "0.AXkA-bare-code"
    assert not path.exists()


def test_exchange_with_code_and_wrong_state(run: Any, router: respx.MockRouter) -> None:
    authorize(run)
    result = run(["exchange", "--code", "0.AXkA-bare-code", "--state", "forged-state"])
    assert result.code == 4
    assert len(router.calls) == 0


def test_exchange_error_redirect(run: Any, router: respx.MockRouter) -> None:
    _, pending, _ = authorize(run)
    url = "http://localhost/?" + urlencode(
        {
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined to consent to access the app.",
            "state": pending["state"],
        }
    )
    result = run(["exchange", "--redirect-url", url])
    assert result.code == 1
    assert len(router.calls) == 0
    assert result.err_lines[0].startswith("oauth-core: error: access_denied")
    assert "65004" in result.err


# -- password and refresh -----------------------------------------------------------------------


def password_argv(*extra: str) -> List[str]:
    return ["password", *TENANT_ARGS, "--username", USERNAME, *extra]


def test_password(run: Any, isolated_env: Path, token_route: respx.Route) -> None:
    token_route.mock(side_effect=lambda request: recorded("success-password"))
    result = run(password_argv("--password-stdin", "--json"), stdin=PASSWORD + "\n")
    check_token_output(result, body_of("success-password"))
    form = form_of(token_route.calls.last)
    assert (form["grant_type"], form["username"], form["password"]) == ("password", USERNAME, PASSWORD)
    assert PASSWORD not in result.err
    assert cached_refresh_tokens(isolated_env) == [body_of("success-password")["refresh_token"]]


def test_ropc_notice_is_printed_once(run: Any, token_route: respx.Route) -> None:
    token_route.mock(side_effect=lambda request: recorded("success-password"))
    first = run(password_argv("--password-stdin", "--json"), stdin=PASSWORD + "\n")
    second = run(password_argv("--password-stdin", "--json"), stdin=PASSWORD + "\n")
    assert (first.code, second.code) == (0, 0)
    assert first.err.count(ROPC_NOTICE) == 1
    assert ROPC_NOTICE not in second.err
    assert "retiring" not in second.err


def test_password_from_environment(run: Any, monkeypatch: pytest.MonkeyPatch, token_route: respx.Route) -> None:
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", PASSWORD)
    monkeypatch.setenv("AZURE_USERNAME", USERNAME)
    token_route.mock(side_effect=lambda request: recorded("success-password"))
    result = run(["password", *TENANT_ARGS, "--json"])
    check_token_output(result, body_of("success-password"))
    assert form_of(token_route.calls.last)["password"] == PASSWORD


def test_password_on_the_command_line_is_refused(run: Any, router: respx.MockRouter) -> None:
    result = run(password_argv("--password", "hunter2-argv-secret"))
    assert result.code == 2
    assert len(router.calls) == 0
    assert len(result.err_lines) == 1
    assert "hunter2-argv-secret" not in result.err


def test_missing_client_id(run: Any, router: respx.MockRouter) -> None:
    result = run(["password", "--tenant", TENANT_ID, "--username", USERNAME, "--password-stdin"], stdin="pw\n")
    assert result.code == 2
    assert len(router.calls) == 0
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("oauth-core: error:")
    assert "client id" in result.err


def test_refresh_from_stdin(run: Any, token_route: respx.Route) -> None:
    token_route.mock(side_effect=lambda request: recorded("success-refresh"))
    result = run(["refresh", *TENANT_ARGS, "--refresh-token-stdin", "--json"], stdin="0.AXkA-piped-refresh\n")
    check_token_output(result, body_of("success-refresh"))
    form = form_of(token_route.calls.last)
    assert (form["grant_type"], form["refresh_token"]) == ("refresh_token", "0.AXkA-piped-refresh")


def test_refresh_uses_and_rotates_the_saved_token(run: Any, isolated_env: Path, token_route: respx.Route) -> None:
    first_rt = body_of("success-password")["refresh_token"]
    rotated_rt = body_of("success-refresh")["refresh_token"]
    assert first_rt != rotated_rt
    token_route.mock(side_effect=lambda request: recorded("success-password"))
    assert run(password_argv("--password-stdin"), stdin=PASSWORD + "\n").code == 0

    token_route.mock(side_effect=lambda request: recorded("success-refresh"))
    result = run(["refresh", *TENANT_ARGS, "--json"])
    check_token_output(result, body_of("success-refresh"))
    assert form_of(token_route.calls.last)["refresh_token"] == first_rt
    assert cached_refresh_tokens(isolated_env) == [rotated_rt]

    assert run(["refresh", *TENANT_ARGS, "--json"]).code == 0
    assert form_of(token_route.calls.last)["refresh_token"] == rotated_rt


def test_refresh_without_a_saved_token(run: Any, router: respx.MockRouter) -> None:
    result = run(["refresh", *TENANT_ARGS])
    assert result.code == 2
    assert len(router.calls) == 0
    assert len(result.err_lines) == 1


def test_plain_token_output(run: Any, token_route: respx.Route) -> None:
    token_route.mock(side_effect=lambda request: recorded("success-refresh"))
    result = run(["refresh", *TENANT_ARGS, "--refresh-token-stdin"], stdin="0.AXkA-piped-refresh\n")
    assert result.code == 0
    assert body_of("success-refresh")["access_token"] in result.out
    assert "Expires:" in result.out


# -- Entra errors --------------------------------------------------------------------------------

ERROR_FIXTURES = response_names("error-")


@pytest.mark.parametrize("fixture", ERROR_FIXTURES)
def test_entra_error_json(run: Any, token_route: respx.Route, fixture: str) -> None:
    token_route.mock(side_effect=lambda request: recorded(fixture))
    record = load_response(fixture)
    body = json.loads(record["body"])
    result = run(password_argv("--password-stdin", "--json"), stdin=PASSWORD + "\n")
    assert result.code == 1
    assert result.out == ""
    payload = result.error_json()
    assert set(payload) >= ERROR_JSON_KEYS
    assert payload["error"] == body["error"]
    assert payload["error_description"] == body["error_description"]
    assert payload["error_codes"] == body["error_codes"] == record["expect"]["error_codes"]
    assert payload["correlation_id"] == body["correlation_id"]
    assert payload["trace_id"] == body["trace_id"]
    assert payload["status"] == record["status"]
    assert PASSWORD not in result.err
    assert token_route.call_count == 1


@pytest.mark.parametrize("fixture", ERROR_FIXTURES)
def test_entra_error_text(run: Any, token_route: respx.Route, fixture: str) -> None:
    token_route.mock(side_effect=lambda request: recorded(fixture))
    body = json.loads(load_response(fixture)["body"])
    result = run(password_argv("--password-stdin"), stdin=PASSWORD + "\n")
    assert result.code == 1
    assert result.out == ""
    error_lines = [line for line in result.err_lines if line.startswith("oauth-core: error:")]
    assert len(error_lines) == 1
    assert body["error"] in error_lines[0]
    assert str(body["error_codes"][0]) in result.err
    assert body["correlation_id"] in result.err
    assert "Traceback" not in result.err
    assert PASSWORD not in result.err + result.out


def test_every_entra_error_has_a_hint(run: Any, token_route: respx.Route) -> None:
    """Each error fixture's message ends with a hint (JSON ``hint`` and a ``hint:`` line)."""
    missing = []
    for fixture in ERROR_FIXTURES:
        token_route.mock(side_effect=lambda request, name=fixture: recorded(name))
        as_json = run(password_argv("--password-stdin", "--json"), stdin=PASSWORD + "\n")
        as_text = run(password_argv("--password-stdin"), stdin=PASSWORD + "\n")
        if not as_json.error_json()["hint"] or "  hint: " not in as_text.err:
            missing.append(fixture)
    assert missing == [], f"no hint for: {missing}"


def test_mfa_hint_points_at_interactive_sign_in(run: Any, token_route: respx.Route) -> None:
    token_route.mock(side_effect=lambda request: recorded("error-50076"))
    result = run(password_argv("--password-stdin", "--json"), stdin=PASSWORD + "\n")
    assert result.code == 1
    assert "oauth-core login" in result.error_json()["hint"]
    text = run(password_argv("--password-stdin"), stdin=PASSWORD + "\n")
    assert "oauth-core login" in text.err


def test_commands_named_in_hints_exist() -> None:
    """Every `oauth-core <command>` a hint or notice recommends is a real command."""
    texts = [ROPC_NOTICE, *HINTS_BY_CODE.values(), *HINTS_BY_CLASS.values()]
    texts += [shell_hint(oauth_error_from_body({"error": "x", "error_codes": [code]})) or "" for code in AADSTS]
    texts += [cls.hint or "" for cls in _subclasses(OAuthError)]
    named = {match for text in texts for match in re.findall(r"`oauth-core ([a-z][a-z-]*)", text)}
    assert named, "expected hints to name commands"
    assert sorted(named - set(COMMANDS)) == []


def _subclasses(cls: type) -> List[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


# -- non-Entra answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "calls", "error"),
    [
        ("proxy-html-502", 4, "transient_error"),
        ("captive-portal-200-html", 1, "response_format_error"),
        ("empty-200", 1, "response_format_error"),
        ("truncated-200", 1, "response_format_error"),
    ],
)
def test_non_entra_answers_exit_3(
    run: Any, fast_retries: Any, token_route: respx.Route, fixture: str, calls: int, error: str
) -> None:
    token_route.mock(side_effect=lambda request: recorded(fixture))
    result = run(password_argv("--password-stdin", "--json"), stdin=PASSWORD + "\n")
    assert result.code == 3
    assert token_route.call_count == calls
    payload = result.error_json()
    assert payload["error"] == error
    assert payload["status"] == load_response(fixture)["status"]
    assert len(fast_retries.waits) == calls - 1

    text = run(password_argv("--password-stdin"), stdin=PASSWORD + "\n")
    assert text.code == 3
    assert sum(line.startswith("oauth-core: error:") for line in text.err_lines) == 1
    assert "Traceback" not in text.err
    assert PASSWORD not in text.err


def test_captive_portal_is_named(run: Any, token_route: respx.Route) -> None:
    token_route.mock(side_effect=lambda request: recorded("captive-portal-200-html"))
    result = run(password_argv("--password-stdin"), stdin=PASSWORD + "\n")
    assert result.code == 3
    assert "HTML" in result.err
    assert "Contoso Guest Wi-Fi" in result.err  # the page title, so the user knows who answered


def test_network_failure_exits_3(run: Any, fast_retries: Any, token_route: respx.Route) -> None:
    token_route.mock(side_effect=httpx.ConnectError("connection refused"))
    result = run(password_argv("--password-stdin"), stdin=PASSWORD + "\n")
    assert result.code == 3
    assert token_route.call_count == 4
    assert "Traceback" not in result.err


# -- decode -------------------------------------------------------------------------------------


def test_decode_json(run: Any) -> None:
    token = load_token("graph-v2-user")
    expected = load_claims("graph-v2-user")
    before = time.time()
    result = run(["decode", "--json", token])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == {"header", "claims", "expires_at", "expires_in", "expired", "verified"}
    assert data["header"] == expected["header"]
    assert data["claims"] == expected["claims"]
    exp = expected["claims"]["exp"]
    assert data["expires_at"] == exp
    assert exp - time.time() - 2 <= data["expires_in"] <= exp - before + 1
    assert data["expired"] is (exp <= time.time())
    assert data["verified"] is None


def test_decode_expired_token(run: Any) -> None:
    result = run(["decode", "--json", load_token("expired-v1")])
    data = json.loads(result.out)
    assert result.code == 0
    assert data["expired"] is True
    assert data["expires_in"] < 0


def test_decode_plain(run: Any) -> None:
    result = run(["decode", load_token("graph-v2-user")])
    assert result.code == 0
    assert result.out.startswith("Header:\n")
    assert "not checked" in result.out


@pytest.mark.parametrize("name", ["graph-v2-user", "databricks-v1-user", "id-token-v2"])
def test_decode_with_jwks_verifies(run: Any, name: str, router: respx.MockRouter) -> None:
    result = run(["decode", "--jwks", str(FIXTURES / "jwks.json"), "--json", load_token(name)])
    assert result.code == 0, result.err
    assert json.loads(result.out)["verified"] is True
    assert len(router.calls) == 0


def tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["oid"] = "ffffffff-0000-0000-0000-000000000009"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def test_decode_tampered_token(run: Any) -> None:
    result = run(["decode", "--jwks", str(FIXTURES / "jwks.json"), "--json", tampered(load_token("graph-v2-user"))])
    assert result.code == 4
    data = json.loads(result.out)
    assert data["verified"] is False
    assert data["claims"]["oid"] == "ffffffff-0000-0000-0000-000000000009"
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("oauth-core: error:")


def test_decode_alg_none_fails_verification(run: Any) -> None:
    result = run(["decode", "--jwks", str(FIXTURES / "jwks.json"), "--json", load_token("malformed/alg-none.txt")])
    assert result.code == 4
    assert json.loads(result.out)["verified"] is False


MALFORMED = sorted(p.name for p in (FIXTURES / "tokens" / "malformed").glob("*.txt") if p.name != "alg-none.txt")


@pytest.mark.parametrize("name", MALFORMED)
@pytest.mark.parametrize("as_json", [False, True])
def test_decode_malformed(run: Any, name: str, as_json: bool) -> None:
    argv = ["decode", load_token(f"malformed/{name}")] + (["--json"] if as_json else [])
    result = run(argv)
    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1
    assert "Traceback" not in result.err
    if as_json:
        assert result.error_json()["error"] in ("token_decode_error", "usage_error")
    else:
        assert result.err_lines[0].startswith("oauth-core: error:")


@pytest.mark.parametrize("argv", [["decode", "-", "--json"], ["decode", "--json"]])
def test_decode_from_stdin(run: Any, argv: List[str]) -> None:
    token = load_token("graph-v2-user")
    result = run(argv, stdin=token + "\n")
    assert result.code == 0, result.err
    assert json.loads(result.out)["claims"] == load_claims("graph-v2-user")["claims"]


# -- bad flags ----------------------------------------------------------------------------------

GOOD_TOKEN = load_token("graph-v2-user")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--bogus-option"], 2),
        (["decode", "--bogus-option", GOOD_TOKEN], 2),
        (["no-such-command"], 2),
        (["--timeout", "abc", "decode", GOOD_TOKEN], 2),
        (["refresh", *TENANT_ARGS, "--timeout", "abc"], 2),
        (["--timeout", "-1", "decode", GOOD_TOKEN], 2),
        (["refresh", *TENANT_ARGS, "--timeout", "0"], 2),
        (["authorize-url", "--tenant", "a/b", "--client-id", CLIENT_ID], 2),
        (["refresh", "--tenant", "a/b", "--client-id", CLIENT_ID, "--refresh-token-stdin"], 2),
        (["authorize-url", *TENANT_ARGS, "--authority-host", "http://example.com"], 4),
        (["refresh", *TENANT_ARGS, "--authority-host", "http://example.com", "--refresh-token-stdin"], 4),
        (["authorize-url", *TENANT_ARGS, "--authority-host", "ftp://x"], 2),
        (["authorize-url", *TENANT_ARGS, "--prompt", "bogus"], 2),
        (["authorize-url", *TENANT_ARGS, "--redirect-uri", "http://example.com/cb"], 2),
        (["exchange", "--redirect-url", "x", "--code", "y"], 2),
        (["decode", "--jwks", "/nonexistent/jwks.json", GOOD_TOKEN], 2),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_bad_flags(run: Any, router: respx.MockRouter, argv: List[str], code: int, as_json: bool) -> None:
    result = run(argv + (["--json"] if as_json else []), stdin="0.AXkA-refresh\n")
    assert result.code == code, result.err
    assert len(result.err_lines) == 1, result.err
    assert "Traceback" not in result.err
    assert len(router.calls) == 0
    if as_json:
        assert set(result.error_json()) >= ERROR_JSON_KEYS
    else:
        assert result.err_lines[0].startswith("oauth-core: error:")


@pytest.mark.parametrize("command", [["authorize-url"], ["refresh", "--refresh-token-stdin"]])
@pytest.mark.parametrize("value", ["", "   "])
def test_empty_client_id_from_environment(
    run: Any, monkeypatch: pytest.MonkeyPatch, router: respx.MockRouter, command: List[str], value: str
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", value)
    result = run([*command, "--tenant", TENANT_ID], stdin="0.AXkA-refresh\n")
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert "client id" in result.err
    assert len(router.calls) == 0


def test_environment_settings_are_used(run: Any, monkeypatch: pytest.MonkeyPatch, token_route: respx.Route) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT_ID)
    token_route.mock(side_effect=lambda request: recorded("success-refresh"))
    result = run(["refresh", "--refresh-token-stdin", "--json"], stdin="0.AXkA-refresh\n")
    check_token_output(result, body_of("success-refresh"))
    assert form_of(token_route.calls.last)["client_id"] == CLIENT_ID


def test_subprocess_error_has_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "oauth_core", "decode", "not-a-jwt"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("oauth-core: error:")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
