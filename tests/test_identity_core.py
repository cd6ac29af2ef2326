"""Managed identity core, no network: source detection, requests per source, Arc challenge, parsing, errors."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, Union
from urllib.parse import parse_qsl, urlsplit

import pytest

from oauth_core.core.aadsts import AADSTS
from oauth_core.core.errors import (
    ConfigError,
    FederatedCredentialRejected,
    InvalidClient,
    OAuthCoreError,
    ResponseFormatError,
    _class_for,
    oauth_error_from_body,
)
from oauth_core.core.identity import (
    IMDS_HOST,
    IMDS_STARTUP_RETRY_SECONDS,
    RETRY_STATUSES_IMDS,
    SOURCES,
    IdentityId,
    IdentitySource,
    ReadArcKey,
    arc_key_path,
    default_arc_key_folder,
    detect_source,
    environment_source,
    is_probe_answer,
    parse_token_response,
    probe_request,
    resource_for,
    token_flow,
    token_request,
)
from oauth_core.core.identity_errors import (
    IdentityNotFound,
    IdentityUnavailable,
    ManagedIdentityError,
    NoIdentityAssigned,
    ResourceNotPermitted,
    check_arc_echo,
    managed_identity_error,
)
from oauth_core.core.messages import HttpRequest, HttpResponse

SECRET = "f00dfeed-5ec2-e7e7-a1b2-c3d4e5f60718"
THUMB = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
ARM = "https://management.azure.com"
IMDS_URL = f"http://{IMDS_HOST}/metadata/identity/oauth2/token"
ARC_FOLDER = "/var/opt/azcmagent/tokens"
NOW = 1_700_000_000.0
SYSTEM = IdentityId.of()


def _jwt(claims: Mapping[str, Any]) -> str:
    def part(value: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def _response(
    status: int, body: Union[Mapping[str, Any], bytes], headers: Tuple[Tuple[str, str], ...] = ()
) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status=status, headers=headers, body=raw)


def _query(request: HttpRequest) -> List[Tuple[str, str]]:
    return parse_qsl(urlsplit(request.url).query)


def _header(request: HttpRequest, name: str) -> Optional[str]:
    return next((v for k, v in request.headers if k.lower() == name.lower()), None)


# --- source detection -------------------------------------------------------------------------

SF = {"IDENTITY_ENDPOINT": "https://localhost:2377/metadata/identity/oauth2/token", "IDENTITY_HEADER": SECRET}
APP = {"IDENTITY_ENDPOINT": "http://localhost:42356/msi/token", "IDENTITY_HEADER": SECRET}
ML = {"MSI_ENDPOINT": "http://127.0.0.1:46808/", "MSI_SECRET": SECRET}
ARC = {
    "IDENTITY_ENDPOINT": "http://localhost:40342/metadata/identity/oauth2/token",
    "IMDS_ENDPOINT": "http://localhost:40342",
}
SHELL = {"MSI_ENDPOINT": "http://localhost:50342/oauth2/token"}


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({**SF, "IDENTITY_SERVER_THUMBPRINT": THUMB}, "service_fabric"),
        ({**SF, "IDENTITY_SERVER_THUMBPRINT": THUMB, **ML, "IMDS_ENDPOINT": "http://x"}, "service_fabric"),
        (APP, "app_service"),
        ({**APP, **ML, "IMDS_ENDPOINT": "http://localhost:40342"}, "app_service"),
        (ML, "azure_ml"),
        ({**ML, **ARC}, "azure_ml"),  # MSAL's order: ML before Arc
        (ARC, "azure_arc"),
        ({**ARC, **SHELL}, "azure_arc"),  # both libraries put Arc before Cloud Shell
        (SHELL, "cloud_shell"),
        ({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://10.0.0.4:2579/"}, "imds"),
        ({}, "imds"),
        ({"IDENTITY_ENDPOINT": APP["IDENTITY_ENDPOINT"]}, "imds"),  # neither header nor IMDS_ENDPOINT
        ({**APP, "IDENTITY_HEADER": "  "}, "imds"),  # blank values count as unset
        ({"IDENTITY_SERVER_THUMBPRINT": THUMB, "IDENTITY_HEADER": SECRET}, "imds"),
    ],
)
def test_precedence(env: Dict[str, str], kind: str) -> None:
    assert detect_source(env).kind == kind


def test_endpoints_and_secrets_come_from_their_variables() -> None:
    sf = detect_source({**SF, "IDENTITY_SERVER_THUMBPRINT": THUMB})
    assert (sf.endpoint, sf.secret, sf.server_thumbprint) == (
        SF["IDENTITY_ENDPOINT"],
        SECRET,
        "abcdef0123456789" * 2 + "abcdef01",
    )
    assert detect_source(ML).secret == SECRET and detect_source(ML).endpoint == ML["MSI_ENDPOINT"]
    assert detect_source(ARC).secret is None and detect_source(SHELL).endpoint == SHELL["MSI_ENDPOINT"]
    assert detect_source({}).endpoint == IMDS_URL
    pod = detect_source({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://10.0.0.4:2579/"})
    assert pod.endpoint == "http://10.0.0.4:2579/metadata/identity/oauth2/token"


def test_arc_agent_selects_its_local_endpoint_only_when_nothing_else_does() -> None:
    assert detect_source({}, arc_agent_present=True).endpoint == "http://localhost:40342/metadata/identity/oauth2/token"
    assert detect_source({}, arc_agent_present=True).kind == "azure_arc"
    assert detect_source(APP, arc_agent_present=True).kind == "app_service"
    assert detect_source(ARC, arc_agent_present=True).endpoint == ARC["IDENTITY_ENDPOINT"]
    assert environment_source({}, arc_agent_present=True) is not None


def test_environment_source_is_none_only_for_the_imds_default() -> None:
    assert environment_source({}) is None
    assert environment_source({"PATH": "/usr/bin", "IDENTITY_ENDPOINT": ""}) is None
    assert environment_source(APP) == detect_source(APP)
    pod = environment_source({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://10.0.0.4:2579"})
    assert pod is not None and pod.kind == "imds"


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/token",  # named by the environment: trusted by design
        "http://172.17.0.1:8081/msi/token",  # App Service on Linux: a bridge address
        "https://msi.example:8443/token?x=1",
        "http://[::1]:42356/msi/token",
    ],
)
def test_named_endpoints_may_be_http_to_any_host(url: str) -> None:
    assert detect_source({**APP, "IDENTITY_ENDPOINT": url}).endpoint == url


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@localhost:42356/msi/token",
        "http://token@localhost/msi/token",
        "http://localhost:42356/msi/token#frag",
        "ftp://localhost/msi/token",
        "file:///etc/passwd",
        "localhost:42356/msi/token",
        "http:///msi/token",
        "http://localhost:99999/",
        "http://local host/",
        "http://localhost/\r\nX: y",
        "http://[::1/",
    ],
)
def test_malformed_endpoints_are_refused_naming_the_variable(url: str) -> None:
    for env, name in (
        ({**APP, "IDENTITY_ENDPOINT": url}, "IDENTITY_ENDPOINT"),
        ({**ML, "MSI_ENDPOINT": url}, "MSI_ENDPOINT"),
    ):
        with pytest.raises(ConfigError, match=name) as info:
            detect_source(env)
        assert SECRET not in str(info.value) and "pw" not in str(info.value)


def test_pod_identity_host_is_checked() -> None:
    for bad in ("http://u:p@10.0.0.4", "http://10.0.0.4/?q=1", "gopher://10.0.0.4"):
        with pytest.raises(ConfigError, match="AZURE_POD_IDENTITY_AUTHORITY_HOST"):
            detect_source({"AZURE_POD_IDENTITY_AUTHORITY_HOST": bad})


def test_service_fabric_needs_https_and_a_thumbprint() -> None:
    with pytest.raises(ConfigError, match="IDENTITY_ENDPOINT"):
        detect_source({**SF, "IDENTITY_ENDPOINT": "http://localhost:2377/", "IDENTITY_SERVER_THUMBPRINT": THUMB})
    with pytest.raises(ConfigError, match="IDENTITY_SERVER_THUMBPRINT"):
        detect_source({**SF, "IDENTITY_SERVER_THUMBPRINT": "not-a-thumbprint"})
    with pytest.raises(ConfigError):
        IdentitySource("service_fabric", "http://localhost:2377/", SECRET)


@pytest.mark.parametrize("secret", ["a b", "line\r\nX-Injected: 1", "tab\there"])
def test_secrets_with_spaces_or_control_characters_are_refused_without_showing_them(secret: str) -> None:
    for env, name in (
        ({**APP, "IDENTITY_HEADER": secret}, "IDENTITY_HEADER"),
        ({**ML, "MSI_SECRET": secret}, "MSI_SECRET"),
    ):
        with pytest.raises(ConfigError, match=name) as info:
            detect_source(env)
        assert secret not in str(info.value)


def test_source_repr_and_str_never_show_the_secret() -> None:
    source = detect_source({**SF, "IDENTITY_SERVER_THUMBPRINT": THUMB})
    for text in (repr(source), str(source), f"{source}", repr([source])):
        assert SECRET not in text and "<redacted>" in text and "service_fabric" in text
    assert "secret=None" in repr(detect_source({}))


def test_source_kind_is_checked() -> None:
    assert set(SOURCES) == {"service_fabric", "app_service", "azure_ml", "cloud_shell", "azure_arc", "imds"}
    with pytest.raises(ConfigError):
        IdentitySource("vm", IMDS_URL)


# --- identities and resources -------------------------------------------------------------------


def test_identity_of() -> None:
    assert IdentityId.of() == IdentityId("system") and not IdentityId.of().user_assigned
    assert IdentityId.of(client_id="c1") == IdentityId("client_id", "c1")
    assert IdentityId.of(object_id=" o1 ") == IdentityId("object_id", "o1")
    assert IdentityId.of(resource_id="/subscriptions/s/x").user_assigned
    assert repr(IdentityId.of(client_id="c1")) == "IdentityId(kind='client_id', value='c1')"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"client_id": "a", "object_id": "b"},
        {"client_id": "a", "resource_id": "r"},
        {"client_id": ""},
        {"object_id": "  "},
    ],
)
def test_identity_of_refuses_several_or_blank(kwargs: Dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        IdentityId.of(**kwargs)


def test_identity_kind_and_value_are_checked() -> None:
    for kind, value in (("user", "x"), ("system", "x"), ("client_id", None), ("client_id", "a b")):
        with pytest.raises(ConfigError):
            IdentityId(kind, value)


@pytest.mark.parametrize(
    ("scopes", "resource"),
    [
        (["https://management.azure.com/.default"], ARM),
        (["https://management.azure.com"], ARM),
        (["https://storage.azure.com//.default"], "https://storage.azure.com/"),
        (["api://00000000-aaaa-bbbb-cccc-000000000001/.default"], "api://00000000-aaaa-bbbb-cccc-000000000001"),
        (("https://vault.azure.net/.default",), "https://vault.azure.net"),
    ],
)
def test_resource_for(scopes: List[str], resource: str) -> None:
    assert resource_for(scopes) == resource


@pytest.mark.parametrize(
    "scopes", [[], [ARM, "https://graph.microsoft.com"], [""], ["/.default"], ["a b"], [" "], "https://x/.default"]
)
def test_resource_for_refuses(scopes: Any) -> None:
    with pytest.raises(ConfigError):
        resource_for(scopes)


# --- requests ---------------------------------------------------------------------------------


def _source(kind: str) -> IdentitySource:
    return {
        "service_fabric": detect_source({**SF, "IDENTITY_SERVER_THUMBPRINT": THUMB}),
        "app_service": detect_source(APP),
        "azure_ml": detect_source(ML),
        "cloud_shell": detect_source(SHELL),
        "azure_arc": detect_source(ARC),
        "imds": detect_source({}),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "version", "headers"),
    [
        ("imds", "2018-02-01", {"Metadata": "true"}),
        ("app_service", "2019-08-01", {"X-IDENTITY-HEADER": SECRET, "Metadata": "true"}),
        ("service_fabric", "2019-07-01-preview", {"secret": SECRET}),
        ("azure_ml", "2017-09-01", {"secret": SECRET}),
        ("azure_arc", "2020-06-01", {"Metadata": "true"}),
    ],
)
def test_get_request_per_source(kind: str, version: str, headers: Dict[str, str]) -> None:
    source = _source(kind)
    request = token_request(source, SYSTEM, ARM, headers=(("client-request-id", "r1"),))
    assert request.method == "GET" and request.form == () and request.body == b""
    assert request.url.startswith(source.endpoint + "?")
    assert _query(request) == [("api-version", version), ("resource", ARM)]
    assert request.headers == (*headers.items(), ("client-request-id", "r1"))


def test_cloud_shell_is_a_form_post() -> None:
    request = token_request(_source("cloud_shell"), SYSTEM, ARM)
    assert (request.method, request.url) == ("POST", SHELL["MSI_ENDPOINT"])
    assert request.form == (("resource", ARM),) and request.body == b"resource=https%3A%2F%2Fmanagement.azure.com"
    assert _header(request, "metadata") == "true"
    assert _header(request, "content-type") == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("kind", "identity", "param"),
    [
        ("imds", IdentityId.of(client_id="c1"), ("client_id", "c1")),
        ("imds", IdentityId.of(object_id="o1"), ("object_id", "o1")),
        ("imds", IdentityId.of(resource_id="/subs/r1"), ("msi_res_id", "/subs/r1")),
        ("app_service", IdentityId.of(client_id="c1"), ("client_id", "c1")),
        ("app_service", IdentityId.of(object_id="o1"), ("object_id", "o1")),
        ("app_service", IdentityId.of(resource_id="/subs/r1"), ("mi_res_id", "/subs/r1")),
        ("azure_arc", IdentityId.of(client_id="c1"), ("client_id", "c1")),
        ("azure_arc", IdentityId.of(object_id="o1"), ("object_id", "o1")),
        ("azure_arc", IdentityId.of(resource_id="/subs/r1"), ("msi_res_id", "/subs/r1")),
        ("azure_ml", IdentityId.of(client_id="c1"), ("clientid", "c1")),
    ],
)
def test_user_assigned_parameter_names_per_source(kind: str, identity: IdentityId, param: Tuple[str, str]) -> None:
    assert _query(token_request(_source(kind), identity, ARM))[2:] == [param]


@pytest.mark.parametrize(
    ("kind", "identity"),
    [
        ("service_fabric", IdentityId.of(client_id="c1")),
        ("cloud_shell", IdentityId.of(client_id="c1")),
        ("cloud_shell", IdentityId.of(resource_id="/subs/r1")),
        ("azure_ml", IdentityId.of(object_id="o1")),
        ("azure_ml", IdentityId.of(resource_id="/subs/r1")),
    ],
)
def test_unsupported_identity_kinds_are_refused(kind: str, identity: IdentityId) -> None:
    with pytest.raises(ConfigError, match=kind):
        token_request(_source(kind), identity, ARM)


def test_endpoint_query_is_kept_and_resource_checked() -> None:
    source = detect_source({**APP, "IDENTITY_ENDPOINT": "http://localhost:1/msi/token?code=abc"})
    assert _query(token_request(source, SYSTEM, ARM))[:2] == [("code", "abc"), ("api-version", "2019-08-01")]
    for bad in ("", "a b", "x\n"):
        with pytest.raises(ConfigError):
            token_request(source, SYSTEM, bad)
    with pytest.raises(ConfigError, match="secret"):
        token_request(IdentitySource("app_service", APP["IDENTITY_ENDPOINT"]), SYSTEM, ARM)


def test_request_repr_shows_no_secret_header() -> None:
    request = token_request(_source("app_service"), SYSTEM, ARM, headers=(("Authorization", "Basic k3y"),))
    for source in (_source("service_fabric"), _source("azure_ml")):
        request_sf = token_request(source, SYSTEM, ARM)
        assert SECRET not in repr(request_sf) and SECRET not in str(request_sf)
    assert SECRET not in repr(request) and "k3y" not in repr(request) and SECRET not in str(request)


def test_probe_request_and_answers() -> None:
    probe = probe_request(detect_source({}))
    assert probe.method == "GET" and probe.headers == ()
    assert probe.url.startswith(IMDS_URL + "?") and ("api-version", "2018-02-01") in _query(probe)
    with pytest.raises(ConfigError):
        probe_request(_source("app_service"))
    assert is_probe_answer(
        _response(400, {"error": "bad_request_102", "error_description": "Required metadata header not specified"})
    )
    assert is_probe_answer(_response(200, b"")) and is_probe_answer(_response(500, b"<html>"))
    assert not is_probe_answer(_response(403, b"connecting to 169.254.169.254:80: ... unreachable network"))
    assert is_probe_answer(_response(403, {"error": "forbidden"}))


def test_retry_constants() -> None:
    assert RETRY_STATUSES_IMDS == frozenset({404, 410, 429, 500, 502, 503, 504})
    assert IMDS_STARTUP_RETRY_SECONDS >= 70


# --- Azure Arc ----------------------------------------------------------------------------------

KEY_PATH = f"{ARC_FOLDER}/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9.key"


def _challenge(value: Optional[str], status: int = 401) -> HttpResponse:
    return _response(status, b"", (("www-authenticate", value),) if value is not None else ())


@pytest.mark.parametrize(
    "value", [f"Basic realm={KEY_PATH}", f"basic  realm = {KEY_PATH}", f'Basic realm="{KEY_PATH}"']
)
def test_arc_key_path_accepts_the_agent_folder(value: str) -> None:
    assert arc_key_path(_challenge(value), allowed_folder=ARC_FOLDER) == KEY_PATH
    assert arc_key_path(_challenge(value), allowed_folder=ARC_FOLDER + "/") == KEY_PATH


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        f"Bearer realm={KEY_PATH}",
        f"Digest realm={KEY_PATH}",
        f"Basic {KEY_PATH}",
        f"Basic realm={ARC_FOLDER}/../../../etc/shadow.key",
        f"Basic realm={ARC_FOLDER}/sub/../x.key",
        "Basic realm=/etc/ssh/host.key",
        f"Basic realm={ARC_FOLDER}/sub/x.key",
        f"Basic realm={ARC_FOLDER}s/x.key",
        f"Basic realm={ARC_FOLDER}/x.pem",
        f"Basic realm={ARC_FOLDER}/.key",
        "Basic realm=var/opt/azcmagent/tokens/x.key",
        "Basic realm=x.key",
        f"Basic realm={ARC_FOLDER}/x\x00.key",
    ],
)
def test_arc_key_path_refuses(value: Optional[str]) -> None:
    with pytest.raises(ManagedIdentityError):
        arc_key_path(_challenge(value), allowed_folder=ARC_FOLDER)


def test_arc_key_path_on_windows_is_case_insensitive() -> None:
    folder = r"C:\ProgramData\AzureConnectedMachineAgent\Tokens"
    path = r"C:\ProgramData\AzureConnectedMachineAgent\tokens\abc.key"
    assert arc_key_path(_challenge(f"Basic realm={path}"), allowed_folder=folder) == path
    for bad in (
        r"C:\ProgramData\AzureConnectedMachineAgent\Tokens\..\x.key",
        r"\ProgramData\x.key",
        r"D:\Tokens\abc.key",
    ):
        with pytest.raises(ManagedIdentityError):
            arc_key_path(_challenge(f"Basic realm={bad}"), allowed_folder=folder)


def test_default_arc_key_folder() -> None:
    assert default_arc_key_folder("linux") == ARC_FOLDER
    windows = default_arc_key_folder("win32", {"ProgramData": "C:\\ProgramData"})
    assert windows == "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens"
    assert default_arc_key_folder("win32", {"PROGRAMDATA": "D:\\PD"}) == "D:\\PD\\AzureConnectedMachineAgent\\Tokens"
    with pytest.raises(ConfigError):
        default_arc_key_folder("win32")
    with pytest.raises(ConfigError):
        default_arc_key_folder("win32", {"ProgramData": "relative"})
    with pytest.raises(ManagedIdentityError):
        default_arc_key_folder("darwin")


def _token_body(**extra: Any) -> Dict[str, Any]:
    return {"access_token": "opaque-token", "expires_in": "3599", "token_type": "Bearer", "resource": ARM, **extra}


def _run(flow: Any, answers: List[Any]) -> Tuple[List[Any], Any]:
    steps = [next(flow)]
    try:
        for answer in answers:
            steps.append(flow.send(answer))
    except StopIteration as stop:
        return steps, stop.value
    raise AssertionError("the flow did not finish")


def test_arc_flow_reads_the_key_and_repeats_with_basic() -> None:
    flow = token_flow(_source("azure_arc"), SYSTEM, ARM, clock=lambda: NOW, allowed_arc_folder=ARC_FOLDER)
    key = "0123456789abcdef" * 4
    steps, tokens = _run(flow, [_challenge(f"Basic realm={KEY_PATH}"), key + "\n", _response(200, _token_body())])
    first, read, second = steps
    assert isinstance(first, HttpRequest) and isinstance(second, HttpRequest)
    assert read == ReadArcKey(KEY_PATH) and read.max_bytes == 4096
    assert _header(first, "authorization") is None and _header(second, "Authorization") == f"Basic {key}"
    assert second.url == first.url and _header(second, "metadata") == "true"
    assert key not in repr(second)
    assert tokens.access_token == "opaque-token" and tokens.expires_at == NOW + 3599


@pytest.mark.parametrize("key", ["", "   ", "has space", "x" * 5000, b"bytes", None])
def test_arc_flow_refuses_a_bad_key(key: Any) -> None:
    flow = token_flow(_source("azure_arc"), SYSTEM, ARM, clock=lambda: NOW, allowed_arc_folder=ARC_FOLDER)
    next(flow)
    flow.send(_challenge(f"Basic realm={KEY_PATH}"))
    with pytest.raises(ManagedIdentityError) as info:
        flow.send(key)
    assert "has space" not in str(info.value)


def test_arc_flow_second_401_and_outside_path() -> None:
    flow = token_flow(_source("azure_arc"), SYSTEM, ARM, clock=lambda: NOW, allowed_arc_folder=ARC_FOLDER)
    next(flow)
    flow.send(_challenge(f"Basic realm={KEY_PATH}"))
    flow.send("k3y")
    with pytest.raises(ManagedIdentityError, match="401"):
        flow.send(_challenge(f"Basic realm={KEY_PATH}"))
    flow = token_flow(_source("azure_arc"), SYSTEM, ARM, clock=lambda: NOW, allowed_arc_folder=ARC_FOLDER)
    next(flow)
    with pytest.raises(ManagedIdentityError):
        flow.send(_challenge("Basic realm=/root/.ssh/id.key"))


def test_arc_user_assigned_needs_the_echo() -> None:
    identity = IdentityId.of(client_id="AAAA-1")

    def run(body: Dict[str, Any]) -> Any:
        flow = token_flow(_source("azure_arc"), identity, ARM, clock=lambda: NOW, allowed_arc_folder=ARC_FOLDER)
        return _run(flow, [_challenge(f"Basic realm={KEY_PATH}"), "k3y", _response(200, body)])[1]

    assert run(_token_body(client_id="aaaa-1")).access_token == "opaque-token"
    for body in (_token_body(), _token_body(client_id="other"), _token_body(object_id="aaaa-1")):
        with pytest.raises(IdentityNotFound):
            run(body)
    check_arc_echo("resource_id", "/Subs/R", {"mi_res_id": "/subs/r"})


def test_non_arc_flow_is_one_request() -> None:
    flow = token_flow(_source("imds"), SYSTEM, ARM, clock=lambda: NOW, allowed_arc_folder=ARC_FOLDER)
    steps, tokens = _run(flow, [_response(200, _token_body())])
    assert len(steps) == 1 and tokens.scopes == (ARM + "/.default",)
    flow = token_flow(_source("app_service"), SYSTEM, ARM, clock=lambda: NOW, allowed_arc_folder=ARC_FOLDER)
    next(flow)
    with pytest.raises(NoIdentityAssigned):  # a 401 from another source is not an Arc challenge
        flow.send(_response(401, {"error": "unauthorized_client", "error_description": "no identity"}))


# --- success bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expires_at"),
    [
        (_token_body(expires_on="1700003599", not_before="1700000000", refresh_token=""), NOW + 3599),  # IMDS
        ({"access_token": "t", "expires_on": "1700086400", "resource": ARM, "token_type": "Bearer"}, 1700086400.0),
        ({"access_token": "t", "expires_on": 1700003600, "token_type": "Bearer"}, 1700003600.0),  # SF, ML
        ({"access_token": "t", "expires_in": 3600}, NOW + 3600),
        ({"access_token": "t", "expires_on": "06/20/2019 02:57:58 +00:00"}, 1560999478.0),  # 2017, Linux
        ({"access_token": "t", "expires_on": "1/16/2020 5:24:12 AM +00:00"}, 1579152252.0),  # 2017, Windows
        ({"access_token": "t", "expires_on": "1/16/2020 5:24:12 PM +00:00"}, 1579152252.0 + 12 * 3600),
    ],
)
def test_expiry_shapes(body: Dict[str, Any], expires_at: float) -> None:
    tokens = parse_token_response(_response(200, body), resource=ARM, now=NOW)
    assert tokens.expires_at == expires_at
    assert tokens.token_type == "Bearer" and tokens.scopes == (ARM + "/.default",)
    assert tokens.refresh_token is None and tokens.raw["access_token"] == body["access_token"]


def test_refresh_at_from_refresh_in_or_half_life() -> None:
    day = parse_token_response(_response(200, _token_body(expires_in="86399")), resource=ARM, now=NOW)
    assert day.refresh_at == NOW + 86399 / 2
    told = parse_token_response(
        _response(200, _token_body(expires_in=86400, refresh_in="43200")), resource=ARM, now=NOW
    )
    assert told.refresh_at == NOW + 43200
    hour = parse_token_response(_response(200, _token_body()), resource=ARM, now=NOW)
    assert hour.refresh_at is None


def test_jwt_claims_are_decoded_and_used_without_expiry_fields() -> None:
    token = _jwt({"aud": ARM, "oid": "o1", "exp": 1700005000, "tid": "t1"})
    tokens = parse_token_response(_response(200, {"access_token": token}), resource=ARM, now=NOW)
    assert tokens.claims is not None and tokens.claims["oid"] == "o1" and tokens.expires_at == 1700005000
    assert token not in repr(tokens)
    opaque = parse_token_response(_response(200, _token_body(token_type="pop")), resource=ARM, now=NOW)
    assert opaque.claims is None and opaque.token_type == "pop"


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": "3599"},
        {"access_token": "", "expires_in": "3599"},
        {"access_token": 42, "expires_in": "3599"},
        {"access_token": "t"},
        {"access_token": "t", "expires_in": "soon"},
        {"access_token": "t", "expires_in": -5},
        {"access_token": "t", "expires_on": "yesterday"},
        {"access_token": "t", "expires_on": True},
        {"access_token": "t", "expires_on": 10**13},
        {"access_token": "t", "expires_on": "1" * 5000},
    ],
)
def test_malformed_success_bodies(body: Dict[str, Any]) -> None:
    with pytest.raises(ResponseFormatError):
        parse_token_response(_response(200, body), resource=ARM, now=NOW)


@pytest.mark.parametrize(
    ("status", "raw", "says"),
    [
        (200, b"<!DOCTYPE html><html><title>Proxy login</title></html>", "HTML"),
        (502, b"<html><body>Bad gateway</body></html>", "HTML"),
        (200, b"", "empty"),
        (500, b"", "empty"),
        (200, b"not json", "not JSON"),
        (200, b"[1, 2]", "not an object"),
        (302, b"", "redirects"),
        (204, b"", "unexpected"),
    ],
)
def test_non_token_answers_are_format_errors(status: int, raw: bytes, says: str) -> None:
    with pytest.raises(ResponseFormatError, match=says) as info:
        parse_token_response(_response(status, raw), resource=ARM, now=NOW)
    assert info.value.status == status


def test_format_errors_never_show_the_token() -> None:
    token = _jwt({"exp": 1700005000})
    with pytest.raises(ResponseFormatError) as info:
        parse_token_response(_response(200, {"access_token": token, "expires_in": "x"}), resource=ARM, now=NOW)
    assert token not in str(info.value) and token not in info.value.snippet


# --- error bodies -------------------------------------------------------------------------------

IMDS_NOT_FOUND = {"error": "invalid_request", "error_description": "Identity not found"}


@pytest.mark.parametrize(
    ("status", "body", "user_assigned", "cls"),
    [
        (400, IMDS_NOT_FOUND, True, IdentityNotFound),
        (400, IMDS_NOT_FOUND, False, NoIdentityAssigned),
        (
            400,
            {"error": "invalid_resource", "error_description": "AADSTS50001: The application named x was not found"},
            False,
            ResourceNotPermitted,
        ),
        (400, {"error": "invalid_scope", "error_description": "The scope is invalid"}, False, ResourceNotPermitted),
        (400, {"error": "unauthorized_client", "error_description": "MI not enabled"}, False, NoIdentityAssigned),
        (
            400,
            {"error": "bad_request_102", "error_description": "Required metadata header not specified"},
            False,
            ManagedIdentityError,
        ),
        (401, {"error": "unknown_source", "error_description": "Unknown Source"}, False, ManagedIdentityError),
        (
            500,
            {"error": "unknown", "error_description": "Failed to retrieve token from the Active directory."},
            False,
            ManagedIdentityError,
        ),
        (
            500,
            {
                "statusCode": 500,
                "message": "An unexpected error occured while fetching the AAD Token.",
                "correlationId": "c-1",
            },
            False,
            ManagedIdentityError,
        ),
        (
            400,
            {"statusCode": 400, "message": "Unable to load the proper Managed Identity.", "correlationId": "c-2"},
            True,
            IdentityNotFound,
        ),
        (400, {"statusCode": 400, "message": "Unable to load the proper Managed Identity."}, False, NoIdentityAssigned),
        (
            404,
            {"error": {"correlationId": "c-3", "code": "ManagedIdentityNotFound", "message": "no identity"}},
            False,
            NoIdentityAssigned,
        ),
        (400, {"error": {"code": "ArgumentNullOrEmpty", "message": "resource is empty"}}, False, ResourceNotPermitted),
        (
            401,
            {"error": {"code": "SecretHeaderNotFound", "message": "Secret is not found in the request headers."}},
            False,
            ManagedIdentityError,
        ),
        (500, {"error": {"code": "InternalServerError", "message": "x"}}, False, ManagedIdentityError),
        (403, {"error": "forbidden", "error_description": "network unreachable"}, False, IdentityUnavailable),
        (
            400,
            {"error": "invalid_request", "error_description": "AADSTS500011: resource principal not found"},
            False,
            ResourceNotPermitted,
        ),
        (400, {"unexpected": True}, False, ManagedIdentityError),
        (200, {"error": "invalid_request", "error_description": "Identity not found"}, True, IdentityNotFound),
    ],
)
def test_error_bodies_map_to_typed_errors(
    status: int, body: Dict[str, Any], user_assigned: bool, cls: Type[ManagedIdentityError]
) -> None:
    identity = IdentityId.of(client_id="c1") if user_assigned else SYSTEM
    with pytest.raises(ManagedIdentityError) as info:
        parse_token_response(_response(status, body), resource=ARM, now=NOW, identity=identity)
    exc = info.value
    assert type(exc) is cls and exc.status == status and isinstance(exc, OAuthCoreError)
    assert exc.hint and "oauth-core" not in exc.hint and "--" not in exc.hint
    assert set(exc.to_dict()) == {"error", "error_description", "correlation_id", "status"}


def test_error_fields_are_carried() -> None:
    sf = managed_identity_error(
        404, {"error": {"correlationId": "c-3", "code": "ManagedIdentityNotFound", "message": "m"}}, user_assigned=False
    )
    assert (sf.error, sf.error_description, sf.correlation_id) == ("ManagedIdentityNotFound", "m", "c-3")
    app = managed_identity_error(
        500, {"statusCode": 500, "message": "boom", "correlationId": "c-1"}, user_assigned=False
    )
    assert (app.error, app.error_description, app.correlation_id) == (None, "boom", "c-1")
    imds = managed_identity_error(400, IMDS_NOT_FOUND, user_assigned=True)
    assert str(imds) == "the managed identity endpoint refused (HTTP 400): invalid_request: Identity not found"


def test_plain_text_unreachable_403_is_unavailable() -> None:
    with pytest.raises(IdentityUnavailable):
        parse_token_response(
            _response(403, b"dial tcp 169.254.169.254:80: connect: network is unreachable"), resource=ARM, now=NOW
        )


def test_error_texts_are_redacted_and_single_line() -> None:
    token = _jwt({"exp": 1})
    body = {"error": "invalid_request", "error_description": f"bad token {token}\x1b[31m\nsecret=hunter2"}
    exc = managed_identity_error(400, body, user_assigned=False)
    for text in (str(exc), exc.error_description, json.dumps(exc.to_dict())):
        assert token not in text and "hunter2" not in text and "\x1b" not in text and "\n" not in text


def test_unavailable_can_be_raised_by_a_driver() -> None:
    exc = IdentityUnavailable("no managed identity endpoint answered")
    assert exc.status is None and exc.hint and "169.254.169.254" in exc.hint
    assert issubclass(IdentityUnavailable, ManagedIdentityError) and issubclass(ManagedIdentityError, OAuthCoreError)


# --- federation codes ---------------------------------------------------------------------------

FEDERATION = (70021, 700211, 700212, 700213, 700024)


@pytest.mark.parametrize("code", FEDERATION)
def test_federation_codes_in_the_table(code: int) -> None:
    cls, meaning, hint = AADSTS[code]
    assert cls is FederatedCredentialRejected and meaning and hint
    assert "oauth-core" not in hint and "--" not in hint
    body = {
        "error": "invalid_client",
        "error_description": f"AADSTS{code}: No matching federated identity record found.",
        "error_codes": [code],
    }
    exc = oauth_error_from_body(body, status=401)
    assert type(exc) is FederatedCredentialRejected and isinstance(exc, InvalidClient) and exc.hint == hint


@pytest.mark.parametrize("code", FEDERATION)
def test_class_for_prefers_federation_codes(code: int) -> None:
    assert _class_for("invalid_client", [code]) is FederatedCredentialRejected
    assert _class_for("invalid_client", [70002, code]) is FederatedCredentialRejected
    assert _class_for("invalid_request", [code]) is FederatedCredentialRejected
    assert _class_for("invalid_client", [70002]) is InvalidClient


def test_subject_hint_names_the_sub_claim() -> None:
    hint = AADSTS[700213][2] or ""
    assert "sub" in hint and "system:serviceaccount" in hint
    assert "api://AzureADTokenExchange" in (AADSTS[700212][2] or "")


def test_a_hand_built_source_is_checked_too() -> None:
    for endpoint, secret in (("http://u:p@localhost/", None), ("http://localhost/#x", None), (IMDS_URL, "a\r\nb: c")):
        with pytest.raises(ConfigError) as info:
            IdentitySource("app_service", endpoint, secret)
        assert "p@" not in str(info.value) and "a\r\nb" not in str(info.value)
