"""Azure Databricks: the workspace's tenant, REST calls with the cached token, and `oauth-core databricks`.

The workspace is :class:`test_auth.StandIn` on a loopback socket: it answers ``/aad/auth`` with the
redirect Azure Databricks sends and records the headers of every API call. Tokens come from the
emulator, whose tenant the stand-in's redirect names.
"""

from __future__ import annotations

import dataclasses
import io
import json
import socket
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import httpx
import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from test_auth import RESOURCE_ID, StandIn, json_reply

from oauth_core import ConfigError, EntraClient, InsecureAuthorityError, ResponseFormatError, TransportError
from oauth_core.cli import main
from oauth_core.emulator import Emulator, EmulatorConfig, Resource
from oauth_core.integrations.databricks import MANAGEMENT_SCOPE, call, describe_error, normalize_host, workspace_tenant

CLUSTERS = "/api/2.0/clusters/list"
ARM_APP_ID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    base = EmulatorConfig.default()
    arm = Resource(ARM_APP_ID, "Windows Azure Service Management API", "https://management.core.windows.net/")
    with Emulator(dataclasses.replace(base, resources=(*base.resources, arm)), port=0) as emu:
        yield emu


@pytest.fixture
def workspace(emulator: Emulator) -> Iterator[StandIn]:
    """The stand-in workspace; its /aad/auth redirects to the emulator's tenant."""
    server = StandIn()
    location = f"https://login.microsoftonline.com/{emulator.tenant_id}/oauth2/authorize?client_id=x&response_type=code"
    server.queue("/aad/auth", (302, {"location": location}, b""), times=10)
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_databricks_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABRICKS_HOST", "DATABRICKS_AZURE_RESOURCE_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[EntraClient]:
    user = emulator.config.users[0]
    with EntraClient(
        emulator.config.clients[0].client_id, emulator.tenant_id, authority_host=emulator.url, timeout=5.0
    ) as signed_in:
        signed_in.acquire_by_password(user.username, user.password)
        yield signed_in


def api_calls(server: StandIn) -> List[Any]:
    return [r for r in server.requests if r.path.startswith("/api/")]


# -- normalize_host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("adb-123.4.azuredatabricks.net", "https://adb-123.4.azuredatabricks.net"),
        ("https://adb-123.4.azuredatabricks.net/", "https://adb-123.4.azuredatabricks.net"),
        ("  ADB-123.4.AzureDatabricks.net  ", "https://adb-123.4.azuredatabricks.net"),
        ("https://adb-123.4.azuredatabricks.net/?o=123", "https://adb-123.4.azuredatabricks.net"),
        ("https://adb-123.4.azuredatabricks.net:443", "https://adb-123.4.azuredatabricks.net"),
        ("https://adb-123.4.azuredatabricks.net:8443", "https://adb-123.4.azuredatabricks.net:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost", "http://localhost"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
    ],
)
def test_normalize_host(given: str, expected: str) -> None:
    assert normalize_host(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "ftp://adb-1.azuredatabricks.net",
        "https://adb-1.azuredatabricks.net/api/2.0",
        "https://user:pw@adb-1.azuredatabricks.net",
        "https://adb-1.azuredatabricks.net/?x=1",
        "https://adb-1.azuredatabricks.net/#frag",
        "https://adb-1.azuredatabricks.net:99999",
        "https://bad_host!",
    ],
)
def test_normalize_host_rejects(given: str) -> None:
    with pytest.raises(ConfigError):
        normalize_host(given)


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(InsecureAuthorityError, match="plain http"):
        normalize_host("http://adb-123.4.azuredatabricks.net")


# -- workspace_tenant ----------------------------------------------------------------------------------------


def test_tenant_from_the_workspace_redirect(workspace: StandIn) -> None:
    assert workspace_tenant(workspace.url) == TENANT
    (request,) = workspace.requests
    assert (request.method, request.path) == ("GET", "/aad/auth")
    assert "authorization" not in request.headers


def test_tenant_with_a_given_http_client(workspace: StandIn) -> None:
    with httpx.Client(follow_redirects=True) as http:  # redirects are not followed all the same
        assert workspace_tenant(workspace.url, http_client=http) == TENANT
        assert not http.is_closed
    assert len(workspace.requests) == 1


def test_tenant_guid_is_lower_cased() -> None:
    server = StandIn()
    try:
        location = f"https://login.microsoftonline.com/{TENANT.upper()}/oauth2/authorize"
        server.queue("/aad/auth", (302, {"location": location}, b""))
        assert workspace_tenant(server.url) == TENANT
    finally:
        server.close()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (json_reply(200, {"ok": True}), ResponseFormatError),
        ((302, {}, b""), ResponseFormatError),
        ((302, {"location": "https://login.microsoftonline.com/common/oauth2/authorize"}, b""), ResponseFormatError),
        ((302, {"location": "/login.html"}, b""), ResponseFormatError),
        ((302, {"location": "https://[::1/x"}, b""), TransportError),  # httpx itself refuses the Location
        ((404, {}, b"not found"), ResponseFormatError),
        ((503, {}, b"busy"), TransportError),
    ],
)
def test_tenant_discovery_errors(reply: Tuple[int, Dict[str, str], bytes], error: type) -> None:
    server = StandIn()
    try:
        server.queue("/aad/auth", reply)
        with pytest.raises(error):
            workspace_tenant(server.url)
    finally:
        server.close()


def test_tenant_discovery_network_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match="cannot reach"):
        workspace_tenant(f"http://127.0.0.1:{port}", timeout=2.0)


def test_tenant_discovery_refuses_http_to_a_remote_host() -> None:
    with pytest.raises(ConfigError):
        workspace_tenant("http://adb-123.4.azuredatabricks.net")


# -- call ----------------------------------------------------------------------------------------------


def test_call_lists_clusters_with_the_expected_headers(client: EntraClient, workspace: StandIn) -> None:
    status, body = call(
        client, workspace.url, "get", CLUSTERS, resource_id=RESOURCE_ID, management_token="arm-token-value"
    )
    assert status == 200
    assert body == {"clusters": [{"cluster_id": "0123-456789-abcde"}]}
    (request,) = api_calls(workspace)
    assert (request.method, request.path) == ("GET", CLUSTERS)
    assert request.headers["authorization"] == f"Bearer {client.get_token().access_token}"
    assert request.headers["x-databricks-azure-workspace-resource-id"] == RESOURCE_ID
    assert request.headers["x-databricks-azure-sp-management-token"] == "arm-token-value"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"].startswith("oauth-core/")


def test_call_without_optional_headers(client: EntraClient, workspace: StandIn) -> None:
    call(client, workspace.url, "GET", CLUSTERS + "?can_use_client=NOTEBOOKS")
    (request,) = api_calls(workspace)
    assert request.path == CLUSTERS + "?can_use_client=NOTEBOOKS"
    assert "x-databricks-azure-workspace-resource-id" not in request.headers
    assert "x-databricks-azure-sp-management-token" not in request.headers


def test_call_posts_json(client: EntraClient, workspace: StandIn) -> None:
    workspace.queue("/api/2.0/clusters/start", json_reply(200, {}))
    assert call(client, workspace.url, "POST", "/api/2.0/clusters/start", json_body={"cluster_id": "c1"}) == (200, {})
    (request,) = api_calls(workspace)
    assert json.loads(request.body) == {"cluster_id": "c1"}
    assert request.headers["content-type"] == "application/json"


def test_call_retries_once_after_a_401(client: EntraClient, workspace: StandIn, emulator: Emulator) -> None:
    workspace.queue(CLUSTERS, json_reply(401, {"error_code": "401"}))
    before = emulator.count("token", grant_type="refresh_token")
    assert call(client, workspace.url, "GET", CLUSTERS)[0] == 200
    assert emulator.count("token", grant_type="refresh_token") == before + 1
    assert len(api_calls(workspace)) == 2


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ((200, {"content-type": "text/plain"}, b"plain text"), "plain text"),
        ((200, {}, b""), None),
        ((200, {}, b"[" * 5000 + b"]" * 5000), "[" * 5000 + "]" * 5000),
        (
            json_reply(403, {"error_code": "PERMISSION_DENIED", "message": "no"}),
            {"error_code": "PERMISSION_DENIED", "message": "no"},
        ),
    ],
)
def test_call_bodies(client: EntraClient, workspace: StandIn, reply: Any, expected: Any) -> None:
    workspace.queue(CLUSTERS, reply)
    assert call(client, workspace.url, "GET", CLUSTERS)[1] == expected


def test_call_with_a_given_http_client(client: EntraClient, workspace: StandIn) -> None:
    with httpx.Client() as http:
        assert call(client, workspace.url, "GET", CLUSTERS, http_client=http)[0] == 200
        assert not http.is_closed


def test_call_network_failure(client: EntraClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError):
        call(client, f"http://127.0.0.1:{port}", "GET", CLUSTERS, timeout=2.0)


@pytest.mark.parametrize(
    "path",
    [
        "api/2.0/clusters/list",
        "/api2.0/clusters/list",
        "/",
        "//evil.example/api/2.0/x",
        "/api//evil.example/x",
        "/api/2.0@evil.example/x",
        "/api/http://evil.example/x",
        "/api/../login",
        "/api/2.0/%2e%2e/%2E%2E/x",
        "/api/2.0/./x",
        "/api/2.0/clusters list",
        "/api/2.0/x\r\nHost: evil",
        "/api/2.0/x#frag",
        "/api/2.0\\x",
    ],
)
def test_call_rejects_paths_that_could_leave_the_api(client: EntraClient, workspace: StandIn, path: str) -> None:
    with pytest.raises(ConfigError):
        call(client, workspace.url, "GET", path)
    assert workspace.requests == []


@pytest.mark.parametrize("body", [{"x": float("nan")}, {"x": object()}])
def test_call_rejects_bodies_that_are_not_json(client: EntraClient, workspace: StandIn, body: Any) -> None:
    with pytest.raises(ConfigError, match="JSON body"):
        call(client, workspace.url, "POST", CLUSTERS, json_body=body)
    assert workspace.requests == []


def test_call_rejects_a_path_too_long_for_a_url(client: EntraClient, workspace: StandIn) -> None:
    with pytest.raises(ConfigError, match="valid URL path"):
        call(client, workspace.url, "GET", "/api/" + "x" * 70000)


@pytest.mark.parametrize("method", ["", "TRACE", "CONNECT", "GET /x"])
def test_call_rejects_methods(client: EntraClient, workspace: StandIn, method: str) -> None:
    with pytest.raises(ConfigError, match="method"):
        call(client, workspace.url, method, CLUSTERS)


def test_call_refuses_http_to_a_remote_host(client: EntraClient) -> None:
    with pytest.raises(InsecureAuthorityError):
        call(client, "http://adb-1.2.azuredatabricks.net", "GET", CLUSTERS)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            403,
            {"error_code": "PERMISSION_DENIED", "message": "not allowed"},
            "HTTP 403: PERMISSION_DENIED: not allowed",
        ),
        (400, {"error": "bad"}, "HTTP 400: bad"),
        (404, "Not Found\nmore", "HTTP 404: Not Found"),
        (500, None, "HTTP 500"),
        (302, None, "HTTP 302: a redirect"),
        (400, {"message": "bad\x1b[31m"}, "HTTP 400: bad"),  # the whole escape sequence goes
    ],
)
def test_describe_error(status: int, body: Any, expected: str) -> None:
    assert describe_error(status, body).startswith(f"Azure Databricks answered {expected}")


# -- the CLI -------------------------------------------------------------------------------------------------


def run(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli_signed_in(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Sign alice in with `oauth-core password` (the state dir's token cache); returns the common options."""
    user = emulator.config.users[0]
    common = ["--client-id", emulator.config.clients[0].client_id, "--authority-host", emulator.url]
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", user.password)
    code, _, err = run("password", *common, "--tenant", emulator.tenant_id, "-u", user.username)
    assert code == 0, err
    return common


def test_cli_lists_clusters(cli_signed_in: List[str], workspace: StandIn, emulator: Emulator) -> None:
    code, out, err = run("databricks", *cli_signed_in, "--host", workspace.url, "GET", CLUSTERS)
    assert code == 0, err
    assert json.loads(out) == {"clusters": [{"cluster_id": "0123-456789-abcde"}]}
    assert out.startswith("{\n  ")  # pretty
    assert [r.path for r in workspace.requests] == ["/aad/auth", CLUSTERS]  # tenant found from the workspace
    assert workspace.requests[1].headers["authorization"].startswith("Bearer ey")
    assert "x-databricks-azure-workspace-resource-id" not in workspace.requests[1].headers


def test_cli_json_output_resource_id_and_tenant(
    cli_signed_in: List[str], workspace: StandIn, emulator: Emulator
) -> None:
    code, out, err = run(
        "databricks",
        *cli_signed_in,
        "--tenant",
        emulator.tenant_id,
        "--host",
        workspace.url,
        "--resource-id",
        RESOURCE_ID,
        "--json",
        "GET",
        CLUSTERS,
    )
    assert code == 0, err
    assert out.count("\n") == 1 and json.loads(out)["clusters"]
    (request,) = workspace.requests  # --tenant given: no discovery
    assert request.headers["x-databricks-azure-workspace-resource-id"] == RESOURCE_ID


def test_cli_reads_the_environment(
    cli_signed_in: List[str], workspace: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
    monkeypatch.setenv("DATABRICKS_AZURE_RESOURCE_ID", RESOURCE_ID)
    code, _, err = run("databricks", *cli_signed_in, "GET", CLUSTERS)
    assert code == 0, err
    assert api_calls(workspace)[0].headers["x-databricks-azure-workspace-resource-id"] == RESOURCE_ID


def test_cli_posts_data(cli_signed_in: List[str], workspace: StandIn, tmp_path: Path) -> None:
    workspace.queue("/api/2.0/clusters/start", json_reply(200, {}), times=2)
    code, _, err = run(
        "databricks",
        *cli_signed_in,
        "--host",
        workspace.url,
        "--data",
        '{"cluster_id": "c1"}',
        "POST",
        "/api/2.0/clusters/start",
    )
    assert code == 0, err
    body_file = tmp_path / "body.json"
    body_file.write_text('{"cluster_id": "c2"}', encoding="utf-8")
    code, _, err = run(
        "databricks",
        *cli_signed_in,
        "--host",
        workspace.url,
        "--data",
        f"@{body_file}",
        "POST",
        "/api/2.0/clusters/start",
    )
    assert code == 0, err
    assert [json.loads(r.body) for r in api_calls(workspace)] == [{"cluster_id": "c1"}, {"cluster_id": "c2"}]


def test_cli_prints_text_answers(cli_signed_in: List[str], workspace: StandIn) -> None:
    workspace.queue(CLUSTERS, (200, {"content-type": "text/plain"}, b"hello"))
    assert run("databricks", *cli_signed_in, "--host", workspace.url, "GET", CLUSTERS)[:2] == (0, "hello\n")


def test_cli_403_exits_1_with_the_message(cli_signed_in: List[str], workspace: StandIn) -> None:
    body = {"error_code": "PERMISSION_DENIED", "message": "User is not authorized to list clusters"}
    workspace.queue(CLUSTERS, json_reply(403, body), times=2)
    code, out, err = run("databricks", *cli_signed_in, "--host", workspace.url, "GET", CLUSTERS)
    assert (code, out) == (1, "")
    assert "HTTP 403: PERMISSION_DENIED: User is not authorized to list clusters" in err
    code, out, err = run("databricks", *cli_signed_in, "--host", workspace.url, "--json", "GET", CLUSTERS)
    assert (code, out) == (1, "")
    assert json.loads(err) == {
        "error": "databricks_error",
        "error_description": "Azure Databricks answered HTTP 403: PERMISSION_DENIED: "
        "User is not authorized to list clusters",
        "status": 403,
    }


def test_cli_500_exits_3(cli_signed_in: List[str], workspace: StandIn) -> None:
    workspace.queue(CLUSTERS, json_reply(500, {"error_code": "INTERNAL_ERROR", "message": "boom"}))
    code, _, err = run("databricks", *cli_signed_in, "--host", workspace.url, "GET", CLUSTERS)
    assert code == 3
    assert "HTTP 500: INTERNAL_ERROR: boom" in err


def test_cli_network_failure_exits_3(cli_signed_in: List[str], emulator: Emulator) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run(
        "databricks",
        *cli_signed_in,
        "--tenant",
        emulator.tenant_id,
        "--host",
        f"http://127.0.0.1:{port}",
        "--timeout",
        "2",
        "GET",
        CLUSTERS,
    )
    assert code == 3, err


def test_cli_discovery_failure_exits_3(cli_signed_in: List[str]) -> None:
    server = StandIn()
    try:
        server.queue("/aad/auth", json_reply(200, {}))
        code, _, err = run("databricks", *cli_signed_in, "--host", server.url, "GET", CLUSTERS)
    finally:
        server.close()
    assert code == 3
    assert "did not redirect" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["GET", "/clusters/list"], "/api/"),
        (["--data", "{not json", "POST", CLUSTERS], "not valid JSON"),
        (["--data", "@/nonexistent/body.json", "POST", CLUSTERS], "cannot read"),
        (["--data", '{"x": NaN}', "POST", CLUSTERS], "JSON body"),
        (["GET"], "PATH"),
        (["--resource-id", "/subscriptions/x", "GET", CLUSTERS], "resource id"),
    ],
)
def test_cli_usage_errors_exit_2(cli_signed_in: List[str], workspace: StandIn, extra: List[str], message: str) -> None:
    code, _, err = run("databricks", *cli_signed_in, "--tenant", TENANT, "--host", workspace.url, *extra)
    assert code == 2
    assert message in err
    assert api_calls(workspace) == []


def test_cli_needs_a_host(cli_signed_in: List[str]) -> None:
    code, _, err = run("databricks", *cli_signed_in, "GET", CLUSTERS)
    assert code == 2 and "DATABRICKS_HOST" in err


def test_cli_not_signed_in_exits_1(emulator: Emulator, workspace: StandIn) -> None:
    code, _, err = run(
        "databricks",
        "--client-id",
        emulator.config.clients[0].client_id,
        "--authority-host",
        emulator.url,
        "--host",
        workspace.url,
        "GET",
        CLUSTERS,
    )
    assert code == 1
    assert "sign in" in err
    assert api_calls(workspace) == []


def test_cli_service_principal_sends_the_management_token(
    emulator: Emulator, workspace: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    confidential = emulator.config.clients[1]
    assert confidential.secret
    monkeypatch.setenv("AZURE_CLIENT_SECRET", confidential.secret)
    code, out, err = run(
        "databricks",
        "--client-id",
        confidential.client_id,
        "--authority-host",
        emulator.url,
        "--host",
        workspace.url,
        "--resource-id",
        RESOURCE_ID,
        "--sp-management-token",
        "GET",
        CLUSTERS,
    )
    assert code == 0, err
    assert json.loads(out)["clusters"]
    (request,) = api_calls(workspace)
    headers = request.headers
    assert headers["x-databricks-azure-workspace-resource-id"] == RESOURCE_ID
    management = headers["x-databricks-azure-sp-management-token"]
    assert management != headers["authorization"].split(" ", 1)[1]
    from oauth_core import unverified_claims

    assert unverified_claims(management)["aud"].rstrip("/") == "https://management.core.windows.net"
    assert unverified_claims(headers["authorization"].split(" ", 1)[1])["aud"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
    assert emulator.count("token", grant_type="client_credentials") >= 2


def test_cli_service_principal_needs_a_credential(emulator: Emulator, workspace: StandIn) -> None:
    code, _, err = run(
        "databricks",
        "--client-id",
        emulator.config.clients[1].client_id,
        "--authority-host",
        emulator.url,
        "--tenant",
        emulator.tenant_id,
        "--host",
        workspace.url,
        "--sp-management-token",
        "GET",
        CLUSTERS,
    )
    assert code == 2
    assert "client credential" in err
    assert workspace.requests == []


def test_management_scope_keeps_the_resource_slash() -> None:
    assert MANAGEMENT_SCOPE == "https://management.core.windows.net//.default"
