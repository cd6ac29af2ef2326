"""The emulator's request log file: one JSON line per request, every grant, refusals, and no secret."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oauth_core import EntraClient, MemoryTokenCache
from oauth_core.core.errors import ConfigError
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
CONFIDENTIAL = "c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f"
SECRET = "emulator-client-secret"
DEMO_API = "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60"
MIDDLE_SECRET = "emulator-middle-tier-secret"
DATABRICKS = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
GRAPH = "00000003-0000-0000-c000-000000000000"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
BOB = ("bob@fabrikam.example", "Bob-Passw0rd!")
DBX = f"{DATABRICKS}/.default offline_access openid profile"
REDIRECT = "http://localhost:53123"
KEYS = ["time", "at", "method", "endpoint", "grant_type", "client_id", "status"]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PASSWORD_GRANT = "password"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SAML2_GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"


def lines_of(path: Path) -> List[Dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Tuple[Emulator, httpx.Client, Path]]:
    path = tmp_path / "requests.jsonl"
    config = replace(EmulatorConfig.default(), token_lifetime=3600, device_code_interval=1)
    with Emulator(config, request_log=str(path)) as emu:
        with httpx.Client(base_url=emu.url, follow_redirects=False, timeout=10) as http:
            yield emu, http, path


def token(emu: Emulator, http: httpx.Client, **form: str) -> httpx.Response:
    return http.post(f"/{emu.tenant_id}/oauth2/v2.0/token", data=form)


def ok(response: httpx.Response) -> Dict[str, Any]:
    assert response.status_code == 200, response.text
    body: Dict[str, Any] = response.json()
    return body


def every_grant(emu: Emulator, http: httpx.Client) -> Set[str]:
    """One request of every grant (and a refusal, a managed identity token); the secrets seen."""
    secrets: Set[str] = {ALICE[1], BOB[1], SECRET, MIDDLE_SECRET}
    tenant = emu.tenant_id

    def keep(body: Dict[str, Any]) -> Dict[str, Any]:
        secrets.update(str(body[k]) for k in ("access_token", "refresh_token", "id_token") if k in body)
        return body

    password = {"grant_type": PASSWORD_GRANT, "client_id": PUBLIC, "username": ALICE[0], "password": ALICE[1]}
    first = keep(ok(token(emu, http, **password, scope=DBX)))
    keep(ok(token(emu, http, grant_type="refresh_token", client_id=PUBLIC, refresh_token=first["refresh_token"])))
    refused = token(emu, http, **{**password, "password": "Wrong-Passw0rd-Secret!"}, scope=DBX)
    assert refused.status_code == 400
    secrets.add("Wrong-Passw0rd-Secret!")

    # authorization code with PKCE, through the sign-in page
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(__import__("hashlib").sha256(verifier.encode()).digest()).rstrip(b"=")
    params = {"client_id": PUBLIC, "response_type": "code", "redirect_uri": REDIRECT, "scope": DBX, "state": "s1"}
    params.update({"code_challenge": challenge.decode(), "code_challenge_method": "S256"})
    page = http.get(f"/{tenant}/oauth2/v2.0/authorize", params=params)
    flow = re.search(r'name="flowtoken" value="([^"]+)"', page.text)
    assert page.status_code == 200 and flow, page.text
    secrets.add(flow.group(1))
    signed = http.post(
        f"/{tenant}/oauth2/v2.0/authorize",
        data={"flowtoken": flow.group(1), "username": ALICE[0], "password": ALICE[1], "action": "signin"},
    )
    assert signed.status_code == 302, signed.text
    code = parse_qs(urlsplit(signed.headers["location"]).query)["code"][0]
    secrets.update({code, verifier})
    redeem = {"grant_type": "authorization_code", "client_id": PUBLIC, "code": code, "redirect_uri": REDIRECT}
    keep(ok(token(emu, http, **redeem, code_verifier=verifier)))

    # device code
    started = ok(http.post(f"/{tenant}/oauth2/v2.0/devicecode", data={"client_id": PUBLIC, "scope": DBX}))
    secrets.add(started["device_code"])
    emu.approve_device_code(started["user_code"], ALICE[0])
    keep(ok(token(emu, http, grant_type=DEVICE_GRANT, client_id=PUBLIC, device_code=started["device_code"])))

    # client credentials: the secret in the body, then in HTTP Basic
    app = {"grant_type": "client_credentials", "scope": f"{GRAPH}/.default"}
    keep(ok(token(emu, http, **app, client_id=CONFIDENTIAL, client_secret=SECRET)))
    basic = base64.b64encode(f"{CONFIDENTIAL}:{SECRET}".encode()).decode()
    secrets.add(basic)
    keep(ok(http.post(f"/{tenant}/oauth2/v2.0/token", data=app, headers={"Authorization": f"Basic {basic}"})))

    # on-behalf-of
    incoming = keep(ok(token(emu, http, **password, scope="api://oauth-core-demo-api/access_as_user")))
    obo = {"grant_type": OBO_GRANT, "requested_token_use": "on_behalf_of", "assertion": incoming["access_token"]}
    keep(ok(token(emu, http, **obo, client_id=DEMO_API, client_secret=MIDDLE_SECRET, scope=f"{GRAPH}/User.Read")))

    # a federated user: user realm, MEX, WS-Trust and the SAML bearer grant (the library's own path)
    with EntraClient(PUBLIC, tenant, authority_host=emu.url, cache=MemoryTokenCache()) as client:
        keep(dict(client.acquire_by_password(BOB[0], BOB[1], scopes=[f"{DATABRICKS}/.default"]).raw))

    # a managed identity token (IMDS shape)
    imds = http.get(
        "/metadata/identity/oauth2/token",
        params={"api-version": "2018-02-01", "resource": "https://management.azure.com"},
        headers={"Metadata": "true"},
    )
    keep(ok(imds))
    return secrets


def test_every_grant_is_one_line_with_the_agreed_keys(logged: Tuple[Emulator, httpx.Client, Path]) -> None:
    emu, http, path = logged
    every_grant(emu, http)
    lines = lines_of(path)
    assert len(lines) == len(emu.requests)
    for line, record in zip(lines, emu.requests):
        assert list(line) == KEYS
        assert TIME.match(line["time"]) and line["at"] == pytest.approx(record.at, abs=1e-5)
        assert (line["method"], line["endpoint"], line["grant_type"], line["status"]) == (
            record.method,
            record.endpoint,
            record.grant_type,
            record.status,
        )
    grants = [(x["grant_type"], x["client_id"], x["status"]) for x in lines if x["endpoint"] == "token"]
    for expected in (
        (PASSWORD_GRANT, PUBLIC, 200),
        ("refresh_token", PUBLIC, 200),
        (PASSWORD_GRANT, PUBLIC, 400),  # the refused one
        ("authorization_code", PUBLIC, 200),
        (DEVICE_GRANT, PUBLIC, 200),
        ("client_credentials", CONFIDENTIAL, 200),
        (OBO_GRANT, DEMO_API, 200),
        (SAML2_GRANT, PUBLIC, 200),
    ):
        assert expected in grants, grants
    basic = [x for x in lines if x["grant_type"] == "client_credentials"]
    assert len(basic) == 2 and all(x["client_id"] == CONFIDENTIAL for x in basic)  # Basic's user name too
    endpoints = {x["endpoint"] for x in lines}
    assert {"authorize", "devicecode", "userrealm", "mex", "usernamemixed", "imds"} <= endpoints
    assert all(x["grant_type"] is None for x in lines if x["endpoint"] != "token")
    assert emu.count("token") == len(grants)


def test_no_secret_reaches_the_file(logged: Tuple[Emulator, httpx.Client, Path]) -> None:
    emu, http, path = logged
    secrets = every_grant(emu, http)
    text = path.read_text(encoding="utf-8")
    for secret in secrets:
        assert secret not in text
        for piece in (secret[:12], secret[-12:]) if len(secret) >= 24 else ():
            assert piece not in text
    assert "eyJ" not in text and "Passw0rd" not in text and "Basic" not in text
    assert '"username"' not in text and "oauth2" not in text  # no field names or paths beyond the agreed keys
    assert ALICE[0] not in text and BOB[0] not in text  # nor who signed in


def test_file_is_private_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"earlier": true}\n')
    os.chmod(path, 0o644)
    with Emulator(request_log=str(path)) as emu:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        httpx.get(f"{emu.url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration")
        # line-buffered: the line is there while the emulator still runs
        assert lines_of(path)[-1]["endpoint"] == "discovery" and lines_of(path)[-1]["status"] == 200
    fresh = tmp_path / "new.jsonl"
    with Emulator(request_log=str(fresh)) as emu:
        httpx.get(f"{emu.url}/no/such/path")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert [x["endpoint"] for x in lines_of(fresh)] == ["notfound"]
    assert json.loads(path.read_text().splitlines()[0]) == {"earlier": True}


def test_a_symbolic_link_or_a_missing_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="request log"):
        Emulator(request_log=str(link)).start()
    with pytest.raises(ConfigError, match="request log"):
        Emulator(request_log=str(tmp_path / "missing" / "log.jsonl")).start()
    assert target.read_text() == ""


def test_dropped_and_odd_requests(logged: Tuple[Emulator, httpx.Client, Path]) -> None:
    emu, http, path = logged
    emu.inject("token", Fault("drop_after"))
    with pytest.raises(httpx.HTTPError):
        token(emu, http, grant_type="client_credentials", client_id=CONFIDENTIAL, client_secret=SECRET, scope=DBX)
    pasted = "client-secret-pasted-into-client-id-" + "x" * 20
    token(emu, http, grant_type="client_credentials", client_id=pasted, client_secret=SECRET)
    token(emu, http, grant_type="refresh_token eyJhbGciOi.secret", client_id=PUBLIC)
    http.post(f"/{emu.tenant_id}/oauth2/v2.0/token", content=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    lines = lines_of(path)
    assert lines[0]["status"] is None and lines[0]["grant_type"] == "client_credentials"
    assert lines[1]["client_id"] == "(not a GUID)" and lines[1]["status"] == 400
    assert lines[2]["grant_type"] == "(other)"
    assert lines[3]["grant_type"] is None and lines[3]["client_id"] is None
    text = path.read_text()
    assert pasted not in text and "eyJ" not in text and SECRET not in text


def test_worker_threads_never_interleave_lines(logged: Tuple[Emulator, httpx.Client, Path]) -> None:
    emu, _, path = logged

    def hammer() -> None:
        with httpx.Client(base_url=emu.url, timeout=10) as own:
            for _ in range(25):
                own.post(f"/{emu.tenant_id}/oauth2/v2.0/token", data={"grant_type": "password", "client_id": PUBLIC})

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = lines_of(path)
    assert len(lines) == 200 and all(list(x) == KEYS and x["status"] == 400 for x in lines)


def test_the_command_line_option(tmp_path: Path) -> None:
    path = tmp_path / "cli.jsonl"
    command = [sys.executable, "-m", "oauth_core.emulator", "--request-log", str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        try:
            url = child.stdout.readline().split()[-1]
            assert url.startswith("http://127.0.0.1:")
            described = [child.stdout.readline() for _ in range(40)]
            assert any(str(path) in line for line in described)
            form = {"grant_type": "password", "client_id": PUBLIC, "username": ALICE[0], "password": ALICE[1]}
            tenant = "organizations"
            assert httpx.post(f"{url}/{tenant}/oauth2/v2.0/token", data={**form, "scope": DBX}).status_code == 200
        finally:
            child.terminate()
            child.wait(timeout=10)
    (line,) = lines_of(path)
    assert (line["endpoint"], line["grant_type"], line["client_id"], line["status"]) == (
        "token",
        "password",
        PUBLIC,
        200,
    )
    assert ALICE[1] not in path.read_text()
