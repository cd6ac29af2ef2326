"""The ``hardening`` attacks driven through ``python -m oauth_core`` (numbers as in issue 11's red-team list).

Each runs the CLI in a subprocess against the lab's emulator or a loopback server started here,
with its own ``OAUTH_CORE_HOME``, and checks the exit code, what was sent (the emulator's request
count, the server's record, the network guard's log) and what was printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

from .hardening_kit import CONTROL_CHARS, PROXY_VARIABLES, CannedServer, Lab, Probe
from .shared import DBX, TENANT, jwt_of

SECRET = "Sup3rSecretValue!"
TRUNCATED_CACHE = '{"version": 1, "access_tokens": {"x": {"access_tok'
EMPTY_CACHE: Dict[str, Any] = {"version": 1, "access_tokens": {}, "refresh_tokens": {}, "accounts": {}, "flags": {}}
SPACED_USER = "spaces@contoso.onmicrosoft.com"
HOSTILE = "AADSTS70000: \x1b[31mred\x1b[0m \x1b]0;pwned title\x07\x1b[2J\x9b6n \u202eevil\x7f done"
EVIL = "evil.example.com"


def write_cache(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / "tokens.json"
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def cached_access_token(home: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The cache's content and its one access token entry."""
    data: Dict[str, Any] = json.loads((home / "tokens.json").read_text(encoding="utf-8"))
    (entry,) = data["access_tokens"].values()
    return data, entry


def _json_flag(as_json: bool) -> List[str]:
    return ["--json"] if as_json else []


def _controls(text: str) -> List[str]:
    return [repr(ch) for ch in CONTROL_CHARS if ch in text]


def token_response_body() -> bytes:
    claims = {
        "aud": DBX.split("/")[0],
        "iss": f"https://sts.windows.net/{TENANT}/",
        "tid": TENANT,
        "oid": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "upn": SPACED_USER,
        "scp": "user_impersonation",
        "iat": 1_900_000_000,
        "nbf": 1_900_000_000,
        "exp": 4_000_000_000,
    }
    body = {
        "token_type": "Bearer",
        "scope": DBX,
        "expires_in": 3600,
        "ext_expires_in": 3600,
        "access_token": jwt_of(claims, {"alg": "RS256", "typ": "JWT", "kid": "k1"}),
        "refresh_token": "0.AXkA-canned-refresh-token",
    }
    return json.dumps(body).encode()


def truncated_cache(lab: Lab, probe: Probe) -> None:
    """2: a truncated tokens.json: the grant is refused before anything is sent, exit 2."""
    username, password = lab.user
    grant = ["password", "-u", username, "--password-stdin"]
    cases = [("password", grant, password + "\n"), ("password --json", [*grant, "--json"], password + "\n")]
    if not lab.quick:
        cases += [("refresh (cached)", ["refresh"], ""), ("device-code", ["device-code", "--timeout", "5"], "")]
    for name, argv, stdin in cases:
        home = lab.home("truncated")
        cache = write_cache(home, TRUNCATED_CACHE)
        before = lab.token_requests()
        run = lab.cli(argv, home=home, stdin=stdin)
        probe.check(f"{name}: exit 2", run.code == 2, run.brief())
        probe.check(f"{name}: no token request sent", lab.token_requests() == before)
        probe.check(f"{name}: the message names the token cache", "token cache" in run.err, run.brief())
        probe.check(f"{name}: the file is left as it was", cache.read_text(encoding="utf-8") == TRUNCATED_CACHE)


def argv_secrets(lab: Lab, probe: Probe) -> None:
    """5: a secret typed as a command-line value: usage error (exit 2), never echoed, nothing sent."""
    username = lab.user[0]
    argvs = [
        ["password", "-u", username, "--password-stdin", SECRET],
        ["refresh", "--refresh-token", SECRET],
        ["password", "-u", username, "-p", SECRET],
    ]
    if not lab.quick:
        argvs += [
            ["password", "-u", username, f"-p{SECRET}"],
            ["refresh", f"--refresh-token={SECRET}"],
            ["client-credentials", "--client-secret-stdin", SECRET],
            ["--timeout", SECRET, "refresh"],
        ]
    home = lab.home("argv")
    before = lab.token_requests()
    for argv in argvs:
        for as_json in (False, True):
            label = " ".join(arg.replace(SECRET, "SECRET") for arg in [*argv, *_json_flag(as_json)])
            run = lab.cli([*argv, *_json_flag(as_json)], home=home, stdin="0.AXkA-from-stdin\n")
            probe.check(f"{label}: exit 2", run.code == 2, run.brief())
            shown = [part for part in (SECRET, "Sup3r", "SecretValue") if part in run.text]
            probe.check(f"{label}: the secret is in neither stdout nor stderr", not shown, f"found {shown}")
            if as_json:
                lines = run.err.strip().splitlines()
                try:
                    kind = json.loads(lines[-1]).get("error") if lines else None
                except ValueError:
                    kind = None
                probe.check(f"{label}: one JSON usage_error", kind == "usage_error", run.brief())
    probe.check("no token request sent by any of them", lab.token_requests() == before)


def stdin_spaces(lab: Lab, probe: Probe) -> None:
    """6: a password (or refresh token) with surrounding spaces read from stdin is sent as typed."""
    grant = ["password", "-u", SPACED_USER, "--password-stdin"]
    cases = [
        ("password, LF", grant, "password", "  pa ss w0rd  ", "\n"),
        ("password, CRLF", grant, "password", "  pa ss w0rd  ", "\r\n"),
    ]
    if not lab.quick:
        cases += [
            ("password, no line end", grant, "password", "  pa ss w0rd  ", ""),
            ("password with tabs", grant, "password", "\tpass\tword ", "\n"),
            ("refresh token", ["refresh", "--refresh-token-stdin"], "refresh_token", " 0.AXkA-refresh token ", "\n"),
        ]
    home = lab.home("spaces")
    with CannedServer(200, token_response_body()) as server:
        for name, argv, field, secret, line_end in cases:
            server.received.clear()
            env = {"AZURE_AUTHORITY_HOST": server.url, "AZURE_TENANT_ID": TENANT}
            run = lab.cli([*argv, "--no-cache", "--json"], home=home, stdin=secret + line_end, env=env)
            probe.check(f"{name}: exit 0", run.code == 0, run.brief())
            sent = [r.form().get(field) for r in server.received if b"/oauth2/v2.0/token" in r.head]
            probe.check(f"{name}: sent exactly as typed", sent == [secret], f"sent {sent!r}, typed {secret!r}")


def binary_data(lab: Lab, probe: Probe) -> None:
    """7: ``databricks --data @binary-file`` is a usage error (exit 2); the workspace gets nothing."""
    body = lab.path("body.bin")
    body.write_bytes(b"\xff\xfe\x00\x01binary\x80")
    with CannedServer(200, b"{}") as workspace:
        for as_json in (False,) if lab.quick else (False, True):
            argv = ["databricks", "--host", workspace.url, "--data", f"@{body}", "POST", "/api/2.0/clusters/start"]
            run = lab.cli([*argv, *_json_flag(as_json)], home=lab.home("data", signed_in=True))
            label = "--json" if as_json else "text"
            probe.check(f"{label}: exit 2", run.code == 2, run.brief())
            probe.check(f"{label}: says the file is not UTF-8 text", "not UTF-8" in run.err, run.brief())
            probe.check(f"{label}: no internal error", "internal error" not in run.err.lower(), run.brief())
            probe.check(f"{label}: the workspace got no request", not workspace.received, len(workspace.received))


def cache_kinds(lab: Lab, probe: Probe) -> None:
    """8: a cache of another version or with wrong section types: the message names it (not "not JSON")."""
    username, password = lab.user
    cases = [
        ("version 7", {**EMPTY_CACHE, "version": 7}, "unknown version 7"),
        ("access_tokens a list", {**EMPTY_CACHE, "access_tokens": []}, "section 'access_tokens' has the wrong type"),
    ]
    if not lab.quick:
        no_accounts = {k: v for k, v in EMPTY_CACHE.items() if k != "accounts"}
        cases += [
            ('version "1"', {**EMPTY_CACHE, "version": "1"}, 'unknown version "1"'),
            ("accounts missing", no_accounts, "section 'accounts' is missing"),
            ("flags null", {**EMPTY_CACHE, "flags": None}, "section 'flags' has the wrong type"),
        ]
    commands = [
        ("password", ["password", "-u", username, "--password-stdin"], password),
        ("accounts", ["accounts"], ""),
    ]
    for number, (name, content, says) in enumerate(cases):
        for command, argv, stdin in [commands[number % 2]] if lab.quick else commands:  # quick: one command each
            home = lab.home("kinds")
            write_cache(home, json.dumps(content))
            before = lab.token_requests()
            run = lab.cli(argv, home=home, stdin=stdin + "\n")
            label = f"{name}, {command}"
            probe.check(f"{label}: exit 2", run.code == 2, run.brief())
            probe.check(f"{label}: the message says {says!r}", says in run.err, run.brief())
            probe.check(
                f"{label}: not called 'not JSON'", "not JSON" not in run.err and "not valid JSON" not in run.err
            )
            if command == "password":
                probe.check(f"{label}: no token request sent", lab.token_requests() == before)


def verbose(lab: Lab, probe: Probe) -> None:
    """9: ``--verbose`` shows the 127.0.0.1:PORT endpoint and hides the password and tokens."""
    username, password = lab.user
    home = lab.home("verbose")
    argv = ["password", "-u", username, "--password-stdin", "--json", "--verbose"]
    run = lab.cli(argv, home=home, stdin=password + "\n")
    probe.check("password --verbose: exit 0", run.code == 0, run.brief())
    endpoint = f"POST {lab.emulator.url}/{lab.tenant}/oauth2/v2.0/token -> 200"
    probe.check(f"shows 127.0.0.1:{lab.emulator.port}", f"127.0.0.1:{lab.emulator.port}" in run.err, run.brief())
    probe.check("shows the whole endpoint URL unredacted", endpoint in run.err, run.brief())
    probe.check("hides the password", password not in run.err)
    tokens: Dict[str, Any] = json.loads(run.out) if run.code == 0 else {}
    for kind in ("access_token", "refresh_token", "id_token"):
        probe.check(f"hides the {kind}", bool(tokens.get(kind)) and tokens[kind] not in run.err)
    if not lab.quick:
        again = lab.cli(["refresh", "--json", "--verbose"], home=home)
        probe.check("refresh --verbose: exit 0", again.code == 0, again.brief())
        probe.check("refresh --verbose: shows the endpoint", endpoint in again.err, again.brief())
        hidden = [tokens.get("refresh_token"), *json.loads(again.out or "{}").values()] if again.code == 0 else []
        leaked = [v for v in hidden if isinstance(v, str) and len(v) >= 16 and v in again.err]
        probe.check("refresh --verbose: hides the old and new tokens", not leaked, f"{len(leaked)} shown")


def empty_settings(lab: Lab, probe: Probe) -> None:
    """10: an explicitly empty ``--tenant`` (and co.) is a usage error at once; nothing is sent."""
    username, password = lab.user
    cases = [("--tenant", ""), ("--tenant", "   ")]
    if not lab.quick:
        cases += [("--client-id", ""), ("--authority-host", ""), ("--account", "")]
    home = lab.home("empty")
    for flag, value in cases:
        before = lab.token_requests()
        argv = ["password", "-u", username, "--password-stdin", flag, value]
        run = lab.cli(argv, home=home, stdin=password + "\n")
        label = f"{flag} {value!r}"
        probe.check(f"{label}: exit 2", run.code == 2, run.brief())
        probe.check(f"{label}: fast (under 5 s)", run.seconds < 5, f"{run.seconds:.1f} s")
        probe.check(f"{label}: says '{flag} is empty'", f"{flag} is empty" in run.err, run.brief())
        probe.check(f"{label}: nothing sent", lab.token_requests() == before and not run.outward, run.outward)


def unsafe_files(lab: Lab, probe: Probe) -> None:
    """11: a world-writable home, a 0644 cache and a symlinked lock file are refused; the link target never made."""
    if os.name != "posix":
        probe.note("skipped: POSIX file modes")
        return
    username, password = lab.user
    grant = ["password", "-u", username, "--password-stdin"]

    def refused(label: str, home: Path, argv: List[str], says: str) -> None:
        before = lab.token_requests()
        run = lab.cli(argv, home=home, stdin=password + "\n")
        probe.check(f"{label}: exit 2", run.code == 2, run.brief())
        probe.check(f"{label}: says {says!r}", says in run.err, run.brief())
        probe.check(f"{label}: nothing sent", lab.token_requests() == before)

    home = lab.home("world-writable", signed_in=True)
    os.chmod(home, 0o777)
    refused("0777 OAUTH_CORE_HOME, password", home, grant, "writable by group or others")
    home = lab.home("0644", signed_in=True)
    _, entry = cached_access_token(home)
    os.chmod(home / "tokens.json", 0o644)
    refused("0644 tokens.json, password", home, grant, "group or others")
    if not lab.quick:
        empty = lab.home("world-writable-empty")
        os.chmod(empty, 0o777)
        refused("0777 OAUTH_CORE_HOME without a cache, password", empty, grant, "writable by group or others")
        run = lab.cli(["token"], home=home)
        probe.check("0644 tokens.json, token: exit 2", run.code == 2, run.brief())
        probe.check("0644 tokens.json, token: the cached token is not printed", entry["access_token"] not in run.out)
    commands = [("password", grant)] if lab.quick else [("password", grant), ("refresh", ["refresh"])]
    for command, argv in commands:
        home = lab.home("symlink-lock", signed_in=True)
        victim = lab.path("elsewhere") / "victim"
        victim.parent.mkdir()
        (home / "tokens.json.lock").unlink()
        (home / "tokens.json.lock").symlink_to(victim)
        refused(f"symlinked tokens.json.lock, {command}", home, argv, "symbolic link")
        probe.check(f"symlinked tokens.json.lock, {command}: the target is never created", not os.path.lexists(victim))


def untrusted_hosts(lab: Lab, probe: Probe) -> None:
    """13: ``databricks --host evil`` and ``decode --verify --authority-host https://evil`` fail before any network."""
    claims = {
        "iss": f"https://sts.windows.net/{TENANT}/",
        "tid": TENANT,
        "aud": "x",
        "exp": 4_000_000_000,
        "ver": "1.0",
    }
    token = jwt_of(claims, {"alg": "RS256", "typ": "JWT", "kid": "k1", "x5t": "k1"})
    dbx = ["databricks", "--host", EVIL, "GET", "/api/2.0/clusters/list"]
    verify = ["decode", token, "--verify", "--authority-host", f"https://{EVIL}"]
    cases = [
        (f"databricks --host {EVIL}", dbx, f"--allow-workspace-host {EVIL}", ("AZURE_TENANT_ID",)),
        (f"decode --verify --authority-host https://{EVIL}", verify, f"--allow-authority-host {EVIL}", ()),
    ]
    if not lab.quick:
        dbx_url = ["databricks", "--host", f"https://{EVIL}:8443", "--json", "GET", "/api/2.0/clusters/list"]
        cases += [
            (f"databricks --host https://{EVIL}:8443 --json", dbx_url, f"--allow-workspace-host {EVIL}", ()),
            ("decode --verify --json", [*verify, "--json"], f"--allow-authority-host {EVIL}", ()),
        ]
    home = lab.home("hosts", signed_in=True)
    with CannedServer(502) as proxy:
        proxies = {name: proxy.url for name in PROXY_VARIABLES}
        for label, argv, hint, drop in cases:
            before = lab.token_requests()
            run = lab.cli(argv, home=home, env=proxies, drop=drop)
            probe.check(f"{label}: exit 4", run.code == 4, run.brief())
            probe.check(f"{label}: names the flag that would allow it", hint in run.err, run.brief())
            probe.check(f"{label}: nothing looked up or dialled outward", not run.outward, run.outward)
            probe.check(f"{label}: nothing reached the HTTPS_PROXY", not proxy.received, len(proxy.received))
            probe.check(f"{label}: no token request either", lab.token_requests() == before)
        if not lab.quick:  # the control: allowed, the same command does try to go out, and is caught
            run = lab.cli([*verify, "--allow-authority-host", EVIL], home=home, env=proxies)
            caught = bool(proxy.received) or bool(run.outward)
            probe.check("control: with --allow-authority-host the fetch is attempted and caught", caught, run.brief())
            proxy.received.clear()


def escapes(lab: Lab, probe: Probe) -> None:
    """14: escape sequences in a JSON OAuth error's error_description print no ESC (or other control) byte."""
    body = {
        "error": "invalid_grant",
        "error_description": HOSTILE,
        "error_codes": [70000],
        "trace_id": "\x1b[5m0f3c1e2d-aaaa-bbbb-cccc-000000000001",
        "correlation_id": "0f3c1e2d-aaaa-bbbb-cccc-000000000002\x1b]52;c;Y2xpcGJvYXJk\x07",
    }
    home = lab.home("escapes")
    with CannedServer(400, json.dumps(body).encode()) as server:
        for as_json in (False, True):
            server.received.clear()
            argv = ["refresh", "--refresh-token-stdin", "--no-cache", *_json_flag(as_json)]
            env = {"AZURE_AUTHORITY_HOST": server.url, "AZURE_TENANT_ID": TENANT}
            run = lab.cli(argv, home=home, stdin="0.AXkA-some-refresh-token\n", env=env)
            label = "--json" if as_json else "text"
            probe.check(
                f"{label}: the hostile answer was fetched (exit 1)", run.code == 1 and server.received, run.brief()
            )
            probe.check(f"{label}: no ESC or control byte printed", not _controls(run.text), _controls(run.text))
            if as_json:
                lines = run.err.strip().splitlines()
                try:
                    shown = json.loads(lines[-1]).get("error_description") if lines else None
                except ValueError:
                    shown = None
                probe.check("--json: the description is kept, escaped", shown == HOSTILE, run.brief())
            else:
                probe.check("text: the readable text is kept", "AADSTS70000: red" in run.err, run.brief())
                probe.check("text: terminal payloads are dropped", "pwned" not in run.err and "Y2xp" not in run.err)


def cache_cap_and_nan(lab: Lab, probe: Probe) -> None:
    """16: a cache over OAUTH_CORE_CACHE_MAX_BYTES is refused clearly; a NaN expiry is never served as fresh."""
    username, password = lab.user
    home = lab.home("cap", signed_in=True)
    _, entry = cached_access_token(home)
    cap = {"OAUTH_CORE_CACHE_MAX_BYTES": "100"}
    run = lab.cli(["token"], home=home, env=cap)
    probe.check("cap 100, token: exit 2", run.code == 2, run.brief())
    probe.check("cap 100, token: says 'more than the 100 allowed'", "more than the 100 allowed" in run.err, run.brief())
    probe.check("cap 100, token: the cached token is not printed", entry["access_token"] not in run.out)
    before = lab.token_requests()
    run = lab.cli(["password", "-u", username, "--password-stdin"], home=home, stdin=password + "\n", env=cap)
    probe.check("cap 100, password: exit 2 before anything is sent", run.code == 2 and lab.token_requests() == before)
    expiries: List[Tuple[str, Any]] = [("'nan' (a string)", "nan"), ("NaN (a JSON literal)", float("nan"))]
    if not lab.quick:
        expiries += [("'Infinity' (a string)", "Infinity"), ("1e999 (overflows)", float("inf"))]
    for name, value in expiries:
        home = lab.home("nan", signed_in=True, own_tokens=isinstance(value, str))  # a string expiry: it refreshes
        data, entry = cached_access_token(home)
        stale, entry["expires_at"] = entry["access_token"], value
        write_cache(home, json.dumps(data).replace(": Infinity", ": 1e999"))  # JSON has no Infinity literal
        before = lab.emulator.count("token", grant_type="refresh_token")
        run = lab.cli(["token"], home=home)
        probe.check(f"expires_at {name}: the stale token is not served", stale not in run.out, run.brief())
        refreshed = lab.emulator.count("token", grant_type="refresh_token") - before
        if isinstance(value, float):  # not strict JSON: the whole file is refused, with its reason
            refused = run.code == 2 and "not finite" in run.err
            probe.check(f"expires_at {name}: refused (exit 2, 'not finite')", refused, run.brief())
        else:  # an expiry that is not a number: the entry is absent, so the refresh token is used
            probe.check(f"expires_at {name}: refreshed instead (exit 0)", run.code == 0 and refreshed == 1, run.brief())


def code_without_state(lab: Lab, probe: Probe) -> None:
    """18: ``exchange --code X`` without ``--state`` (or ``--latest``) exits 2 and sends nothing."""
    home = lab.home("exchange")
    started = lab.cli(["authorize-url", "--json"], home=home)
    probe.check("setup: authorize-url keeps a pending request", started.code == 0, started.brief())
    for as_json in (False, True):
        before = lab.token_requests()
        run = lab.cli(["exchange", "--code", "0.AXkA-a-bare-code", *_json_flag(as_json)], home=home)
        label = "--json" if as_json else "text"
        probe.check(f"{label}: exit 2", run.code == 2, run.brief())
        probe.check(f"{label}: names --state and --latest", "--state" in run.err and "--latest" in run.err, run.brief())
        probe.check(f"{label}: the code is not sent", lab.token_requests() == before)
