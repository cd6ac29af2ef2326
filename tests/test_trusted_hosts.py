"""Credentials go only to Entra's hosts, loopback, or hosts trusted explicitly."""

from __future__ import annotations

import io

import httpx
import pytest
import respx

from oauth_core import EntraClient
from oauth_core.cli import main
from oauth_core.core.authority import Authority
from oauth_core.core.errors import InsecureAuthorityError

# These tests mock only the token endpoint: the user realm lookup is tested in test_wstrust.py.
pytestmark = pytest.mark.usefixtures("no_realm_discovery")

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    "host",
    ["https://login.microsoftonline.com", "usgov", "china", "https://login.windows.net", "http://127.0.0.1:8400"],
)
def test_entra_and_loopback_hosts_need_no_opt_in(host: str) -> None:
    Authority.of(host, TENANT).require_trusted()


@pytest.mark.parametrize(
    "host", ["https://login.microsoftonline.co", "https://evil.example", "login.microsoft.com.evil"]
)
def test_other_hosts_are_refused_until_trusted(host: str) -> None:
    authority = Authority.of(host, TENANT)
    with pytest.raises(InsecureAuthorityError, match="--allow-authority-host"):
        authority.require_trusted()
    with pytest.raises(InsecureAuthorityError):
        EntraClient("client", TENANT, authority_host=host)
    assert authority.require_trusted([authority.hostname.upper()]) is authority


@respx.mock(assert_all_called=False)
def test_cli_refuses_an_untrusted_host_before_sending_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    route = respx.post(f"https://login.contoso-proxy.example/{TENANT}/oauth2/v2.0/token")
    monkeypatch.setattr("sys.stdin", io.StringIO("the-password\n"))
    argv = [
        "password",
        "--tenant",
        TENANT,
        "--client-id",
        "c",
        "--username",
        "u@x.com",
        "--password-stdin",
        "--authority-host",
        "https://login.contoso-proxy.example",
    ]
    err = io.StringIO()
    assert main(argv, stdout=io.StringIO(), stderr=err) == 4
    assert route.call_count == 0
    assert "the-password" not in err.getvalue() and "--allow-authority-host" in err.getvalue()


@respx.mock
def test_cli_allow_authority_host(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"token_type": "Bearer", "expires_in": 3600, "access_token": "opaque"}
    route = respx.post(f"https://login.contoso-proxy.example/{TENANT}/oauth2/v2.0/token").mock(
        return_value=httpx.Response(200, json=body)
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("the-password\n"))
    monkeypatch.setenv("OAUTH_CORE_TRUSTED_HOSTS", "login.contoso-proxy.example")
    argv = [
        "password",
        "--tenant",
        TENANT,
        "--client-id",
        "c",
        "--username",
        "u@x.com",
        "--password-stdin",
        "--authority-host",
        "https://login.contoso-proxy.example",
        "--no-cache",
    ]
    assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert route.call_count == 1
