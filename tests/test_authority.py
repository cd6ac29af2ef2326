"""Authority: cloud aliases, host normalisation, endpoint URLs, tenant checks, the https rule."""

from __future__ import annotations

import pytest

from oauth_core.cli.exit_codes import exit_code_for
from oauth_core.core.authority import (
    CLOUD_ALIASES,
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_TENANT,
    KNOWN_ENTRA_HOSTS,
    Authority,
    is_loopback_host,
)
from oauth_core.core.errors import ConfigError, InsecureAuthorityError

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"


# --- hosts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "host"),
    [
        ("public", "https://login.microsoftonline.com"),
        ("azure", "https://login.microsoftonline.com"),
        ("usgov", "https://login.microsoftonline.us"),
        ("china", "https://login.partner.microsoftonline.cn"),  # Microsoft's docs; MSAL deprecates the old one
        ("gov-fr", "https://login.sovcloud-identity.fr"),
        ("gov-de", "https://login.sovcloud-identity.de"),
        ("gov-sg", "https://login.sovcloud-identity.sg"),
        ("PUBLIC", "https://login.microsoftonline.com"),
        ("  usgov  ", "https://login.microsoftonline.us"),
    ],
)
def test_cloud_aliases(alias: str, host: str) -> None:
    assert Authority.of(alias, TENANT).host == host


def test_the_old_china_host_is_still_an_entra_host() -> None:
    assert Authority.of("https://login.chinacloudapi.cn", TENANT).is_known_entra_host


def test_every_cloud_alias_points_at_a_known_entra_host() -> None:
    for alias in CLOUD_ALIASES:
        authority = Authority.of(alias, TENANT)
        assert authority.is_known_entra_host, alias
        assert authority.host.startswith("https://")


def test_defaults() -> None:
    authority = Authority.of()
    assert authority.host == DEFAULT_AUTHORITY_HOST == "https://login.microsoftonline.com"
    assert authority.tenant == DEFAULT_TENANT == "organizations"


@pytest.mark.parametrize(
    ("given", "host"),
    [
        ("login.microsoftonline.com", "https://login.microsoftonline.com"),
        ("login.microsoftonline.us", "https://login.microsoftonline.us"),
        ("login.partner.microsoftonline.cn", "https://login.partner.microsoftonline.cn"),
        ("LOGIN.MicrosoftOnline.com", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com/", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com:443", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.com:443/", "https://login.microsoftonline.com"),
        ("https://LOGIN.MICROSOFTONLINE.COM/", "https://login.microsoftonline.com"),
        ("https://emulator.example:8443", "https://emulator.example:8443"),
        ("https://emulator.example:8443/", "https://emulator.example:8443"),
        ("  https://login.microsoftonline.com  ", "https://login.microsoftonline.com"),
    ],
)
def test_host_normalisation(given: str, host: str) -> None:
    assert Authority.of(given, TENANT).host == host


def test_default_http_port_is_dropped_like_the_https_one() -> None:
    # RFC 3986 §6.2.3: the scheme's default port is redundant; :443 is dropped for https, so
    # :80 should be dropped for http (both spellings name the same origin).
    assert Authority.of("http://127.0.0.1:80", TENANT) == Authority.of("http://127.0.0.1", TENANT)


def test_port_443_is_not_default_for_http() -> None:
    assert Authority.of("http://localhost:443", TENANT).host == "http://localhost:443"


@pytest.mark.parametrize(
    ("given", "host"),
    [
        ("http://127.0.0.1", "http://127.0.0.1"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.5.6.7:1234", "http://127.5.6.7:1234"),
        ("http://[::1]", "http://[::1]"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
        ("http://localhost", "http://localhost"),
        ("http://LOCALHOST:5000", "http://localhost:5000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_http_allowed_for_loopback(given: str, host: str) -> None:
    authority = Authority.of(given, TENANT)
    assert authority.host == host
    assert authority.token_endpoint == f"{host}/{TENANT}/oauth2/v2.0/token"
    assert not authority.is_known_entra_host


@pytest.mark.parametrize(
    "given",
    [
        "http://login.microsoftonline.com",
        "http://login.microsoftonline.com:80",
        "http://example.com:8080",
        "http://localhost.attacker.example",
        "http://127.0.0.1.nip.io",
        "http://0.0.0.0",
        "http://10.0.0.1",
        "http://[fe80::1]",
    ],
)
def test_http_refused_for_non_loopback(given: str) -> None:
    with pytest.raises(InsecureAuthorityError) as info:
        Authority.of(given, TENANT)
    assert exit_code_for(info.value) == 4
    assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize(
    "given",
    [
        "https://user:secret@login.microsoftonline.com",
        "https://user@login.microsoftonline.com",
        "http://user:secret@localhost:8080",
        "https://login.microsoftonline.com/common",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "https://login.microsoftonline.com//",
        "https://login.microsoftonline.com?tenant=x",
        "https://login.microsoftonline.com/?x=1",
        "https://login.microsoftonline.com#frag",
        "ftp://login.microsoftonline.com",
        "file:///etc/passwd",
        "https://",
        "https://login_microsoftonline.com",
        "https://login.microsoftonline.com:99999",
        "https://login.microsoftonline.com:port",
        "https://exa mple.com",
    ],
)
def test_malformed_or_decorated_hosts_refused(given: str) -> None:
    with pytest.raises(ConfigError) as info:
        Authority.of(given, TENANT)
    # these are config mistakes, not the insecure-http refusal
    assert type(info.value) is ConfigError
    assert exit_code_for(info.value) == 2


def test_credentials_do_not_leak_into_the_error_message() -> None:
    with pytest.raises(ConfigError) as info:
        Authority.of("https://admin:hunter2@login.microsoftonline.com", TENANT)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.255.255.254", "::1", "[::1]"])
def test_is_loopback_host_true(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["localhost.example", "example.com", "0.0.0.0", "128.0.0.1", "::", "[::2]", "", "local host"]
)
def test_is_loopback_host_false(host: str) -> None:
    assert not is_loopback_host(host)


def test_known_entra_hosts() -> None:
    assert Authority.of("login.windows.net", TENANT).is_known_entra_host
    assert Authority.of("login.microsoftonline.de", TENANT).is_known_entra_host
    assert not Authority.of("login.microsoftonline.com.attacker.example", TENANT).is_known_entra_host
    assert "login.microsoftonline.com" in KNOWN_ENTRA_HOSTS
    assert Authority.of(None, TENANT).hostname == "login.microsoftonline.com"


# --- endpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "tenant"),
    [
        ("https://login.microsoftonline.com", TENANT),
        ("https://login.microsoftonline.us", "organizations"),
        ("https://login.chinacloudapi.cn", "contoso.partner.onmschina.cn"),
        ("http://127.0.0.1:8400", "common"),
        ("http://[::1]:8400", "consumers"),
    ],
)
def test_endpoints_exactly(host: str, tenant: str) -> None:
    authority = Authority.of(host, tenant)
    assert authority.base == f"{host}/{tenant}"
    assert authority.authorize_endpoint == f"{host}/{tenant}/oauth2/v2.0/authorize"
    assert authority.token_endpoint == f"{host}/{tenant}/oauth2/v2.0/token"
    assert authority.device_code_endpoint == f"{host}/{tenant}/oauth2/v2.0/devicecode"
    assert authority.discovery_endpoint == f"{host}/{tenant}/v2.0/.well-known/openid-configuration"
    assert authority.jwks_endpoint == f"{host}/{tenant}/discovery/v2.0/keys"


def test_endpoints_from_alias_and_trailing_slash() -> None:
    authority = Authority.of("https://login.microsoftonline.com/", "Contoso.OnMicrosoft.com")
    assert authority.token_endpoint == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert (
        Authority.of("usgov", TENANT).jwks_endpoint == f"https://login.microsoftonline.us/{TENANT}/discovery/v2.0/keys"
    )


# --- tenants ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "tenant"),
    [
        ("AAAAAAAA-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000001"),
        ("9188040D-6C67-4C5B-B112-36A304B66DAD", "9188040d-6c67-4c5b-b112-36a304b66dad"),
        ("organizations", "organizations"),
        ("common", "common"),
        ("consumers", "consumers"),
        ("Organizations", "organizations"),
        ("COMMON", "common"),
        ("contoso.onmicrosoft.com", "contoso.onmicrosoft.com"),
        ("Contoso.COM", "contoso.com"),
        ("sub-domain.contoso.co.uk", "sub-domain.contoso.co.uk"),
        ("  contoso.com  ", "contoso.com"),
    ],
)
def test_valid_tenants(given: str, tenant: str) -> None:
    assert Authority.of(None, given).tenant == tenant


@pytest.mark.parametrize(
    "given",
    [
        "00000000-0000-0000-0000-000000000000",
        "x/../y",
        "../common",
        "common/",
        "/common",
        "a?b",
        "common?x=1",
        "common#frag",
        "a b",
        "contoso .com",
        "contoso",
        "..",
        ".",
        "contoso..com",
        "-contoso.com",
        "contoso.com%2F..",
        "aaaaaaaa-0000-0000-0000-00000000000g",
        "{aaaaaaaa-0000-0000-0000-000000000001}",
        "aaaaaaaa000000000000000000000001",
        "contoso.com\\x",
        "contoso.com@evil.example",
        "tenant\u00e9.com",
        "contoso.c0m1",
        "a" * 64 + ".com",
    ],
)
def test_invalid_tenants_refused(given: str) -> None:
    with pytest.raises(ConfigError) as info:
        Authority.of(None, given)
    assert exit_code_for(info.value) == 2


def test_all_zero_guid_error_says_why() -> None:
    with pytest.raises(ConfigError, match="all-zero"):
        Authority.of(None, "00000000-0000-0000-0000-000000000000")


def test_with_tenant_validates_and_keeps_host() -> None:
    base = Authority.of("usgov", "organizations")
    other = base.with_tenant("AAAAAAAA-0000-0000-0000-000000000001")
    assert other.host == "https://login.microsoftonline.us"
    assert other.tenant == TENANT
    assert base.tenant == "organizations"  # frozen, not mutated
    with pytest.raises(ConfigError):
        base.with_tenant("x/../y")


def test_authority_is_frozen_and_hashable() -> None:
    authority = Authority.of(None, TENANT)
    with pytest.raises(AttributeError):
        authority.tenant = "common"  # type: ignore[misc]
    assert {authority, Authority.of("https://login.microsoftonline.com:443/", TENANT.upper())} == {authority}
