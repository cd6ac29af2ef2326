"""azure-identity and MSAL, unchanged, against the emulator's token sources by configuration alone.

Every test clears the Azure variables of the real environment, points the IMDS host override at
the emulator, and refuses any connection that is not to a loopback address, so nothing can reach
169.254.169.254 or leave the machine. The environment comes from ``emu.identity_environment()``.
"""

from __future__ import annotations

import socket
import sys
from typing import Any, Callable, Iterator, Tuple

import jwt
import pytest

from oauth_core.emulator import Emulator

azure_identity = pytest.importorskip("azure.identity", reason="azure-identity is not installed")
msal = pytest.importorskip("msal", reason="msal is not installed")
requests = pytest.importorskip("requests", reason="requests is not installed")

GRAPH = "https://graph.microsoft.com"
_AZURE_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_REGIONAL_AUTHORITY_NAME",
    "AZUREPS_HOST_ENVIRONMENT",
    "MSAL_FORCE_REGION",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture(scope="module")
def tls_emu() -> Iterator[Emulator]:
    with Emulator(tls=True) as running:
        yield running


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear the Azure environment and refuse to resolve anything but loopback names."""
    for name in _AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK and not (isinstance(host, bytes) and host.decode() in _LOOPBACK):
            raise OSError(f"test refused to resolve {host!r}: only loopback is allowed")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def use(monkeypatch: pytest.MonkeyPatch, emu: Emulator, source: str) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.url)  # a fall-back to IMDS stays local
    for name, value in emu.identity_environment(source).items():
        monkeypatch.setenv(name, value)


def claims_of(token: str) -> Any:
    return jwt.decode(token, options={"verify_signature": False})


def msal_client(identity: Any) -> Any:
    session = requests.Session()
    session.trust_env = False
    return msal.ManagedIdentityClient(identity, http_client=session)


Identity = Tuple[str, Callable[[Emulator], Any], Callable[[Emulator], str]]
MSAL_IDENTITIES = [
    ("system", lambda e: msal.SystemAssignedManagedIdentity(), lambda e: e.config.system_identity.client_id),
    (
        "user",
        lambda e: msal.UserAssignedManagedIdentity(client_id=e.config.user_identities[0].client_id),
        lambda e: e.config.user_identities[0].client_id,
    ),
]


@pytest.mark.parametrize("source", ["appservice", "imds"])
@pytest.mark.parametrize("identity", MSAL_IDENTITIES, ids=[i[0] for i in MSAL_IDENTITIES])
def test_msal_managed_identity_client(
    monkeypatch: pytest.MonkeyPatch, emu: Emulator, source: str, identity: Identity
) -> None:
    use(monkeypatch, emu, source)
    before = emu.count(source)
    result = msal_client(identity[1](emu)).acquire_token_for_client(resource=GRAPH)
    assert "access_token" in result, result
    assert result["token_source"] == "identity_provider"
    claims = claims_of(result["access_token"])
    assert claims["aud"] == GRAPH and claims["appid"] == identity[2](emu) and claims["idtyp"] == "app"
    assert emu.count(source) == before + 1
    record = emu.requests[-1]
    assert record.param("resource") == GRAPH
    assert record.param("api-version") == ("2019-08-01" if source == "appservice" else "2018-02-01")


def test_msal_reports_an_unknown_identity(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    use(monkeypatch, emu, "imds")
    unknown = msal.UserAssignedManagedIdentity(client_id="00000000-0000-0000-0000-000000000001")
    result = msal_client(unknown).acquire_token_for_client(resource=GRAPH)
    assert result.get("error") == "invalid_request" and result.get("error_description") == "Identity not found"


def test_msal_azure_arc(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    # MSAL reads the key from a fixed folder; the one setting a test cannot make through the environment.
    from msal import managed_identity

    monkeypatch.setitem(managed_identity._supported_arc_platforms_and_their_prefixes, sys.platform, emu.arc_key_folder)
    use(monkeypatch, emu, "arc")
    uami = emu.config.user_identities[0]
    result = msal_client(msal.UserAssignedManagedIdentity(client_id=uami.client_id)).acquire_token_for_client(
        resource=GRAPH
    )
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["appid"] == uami.client_id


@pytest.mark.parametrize("source", ["appservice", "imds"])
@pytest.mark.parametrize("user_assigned", [False, True])
def test_azure_identity_managed_identity_credential(
    monkeypatch: pytest.MonkeyPatch, emu: Emulator, source: str, user_assigned: bool
) -> None:
    use(monkeypatch, emu, source)
    identity = emu.config.user_identities[0] if user_assigned else emu.config.system_identity
    assert identity is not None
    kwargs = {"client_id": identity.client_id} if user_assigned else {}
    credential = azure_identity.ManagedIdentityCredential(**kwargs)
    token = credential.get_token(f"{GRAPH}/.default")
    claims = claims_of(token.token)
    assert claims["appid"] == identity.client_id and claims["oid"] == identity.object_id
    assert token.expires_on == claims["exp"]
    assert emu.requests[-1].endpoint == source


def test_azure_identity_managed_identity_errors_surface(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    use(monkeypatch, emu, "appservice")
    credential = azure_identity.ManagedIdentityCredential(client_id="00000000-0000-0000-0000-000000000001")
    with pytest.raises(Exception, match="Unable to load the proper Managed Identity"):
        credential.get_token(f"{GRAPH}/.default")


def test_azure_identity_workload_identity_credential(monkeypatch: pytest.MonkeyPatch, tls_emu: Emulator) -> None:
    assert tls_emu.ca_bundle is not None
    use(monkeypatch, tls_emu, "workload")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_emu.ca_bundle)  # azure-core's requests transport trusts it
    credential = azure_identity.WorkloadIdentityCredential()
    token = credential.get_token(f"{GRAPH}/.default")
    claims = claims_of(token.token)
    assert claims["appid"] == tls_emu.identity_environment("workload")["AZURE_CLIENT_ID"]
    assert claims["appidacr"] == "2" and claims["idtyp"] == "app"
    assert tls_emu.requests[-1].endpoint == "token" and tls_emu.requests[-1].grant_type == "client_credentials"


def test_azure_identity_workload_identity_wrong_subject(monkeypatch: pytest.MonkeyPatch, tls_emu: Emulator) -> None:
    assert tls_emu.ca_bundle is not None
    use(monkeypatch, tls_emu, "workload")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_emu.ca_bundle)
    path = tls_emu.write_federated_token_file(subject="system:serviceaccount:default:intruder")
    try:
        credential = azure_identity.WorkloadIdentityCredential(token_file_path=path)
        from azure.core.exceptions import ClientAuthenticationError

        with pytest.raises(ClientAuthenticationError, match="AADSTS700213"):
            credential.get_token(f"{GRAPH}/.default")
    finally:
        tls_emu.write_federated_token_file()  # the default subject again, for later tests


def _banner_groups(banner: str) -> dict:
    """The banner's ``export`` groups, by their heading (e.g. "managed identity, VM (IMDS)")."""
    groups: dict = {}
    heading = None
    for line in banner.splitlines():
        text = line.strip()
        if text.startswith("export ") and heading is not None:
            name, _, value = text[len("export ") :].partition("=")
            groups.setdefault(heading, {})[name] = value
        elif text.endswith(":"):
            heading = text[:-1]
    return groups


@pytest.fixture(scope="module")
def banner() -> Iterator[dict]:
    """A real ``oauth-core emulator`` process, and the export lines its banner printed."""
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-m", "oauth_core", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Press Ctrl+C" in line:
                break
        yield _banner_groups("".join(lines))
    finally:
        process.terminate()
        process.communicate(timeout=10)  # drains and closes its stdout


@pytest.mark.parametrize("heading", ["managed identity, App Service / Functions", "managed identity, VM (IMDS)"])
def test_the_banners_lines_are_enough_for_azure_identity_and_msal(
    monkeypatch: pytest.MonkeyPatch, banner: dict, heading: str
) -> None:
    exported = banner[heading]
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    if "AZURE_POD_IDENTITY_AUTHORITY_HOST" not in exported:  # a fall-back to IMDS stays local
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    token = azure_identity.ManagedIdentityCredential().get_token(GRAPH + "/.default")
    assert claims_of(token.token)["aud"] == GRAPH
    result = msal_client(msal.SystemAssignedManagedIdentity()).acquire_token_for_client(resource=GRAPH)
    assert claims_of(result["access_token"])["aud"] == GRAPH
