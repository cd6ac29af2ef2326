"""Login hosts and tenants: validated and normalised, as plain strings.

The checks behind :class:`~oauth_core.core.authority.Authority`, kept free of dataclasses so the
``token`` command's cache-hit path can validate a host and a tenant without loading them.
Credentials go only over https, or plain http to a loopback address (a local emulator or test
server).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from .errors import ConfigError, InsecureAuthorityError

__all__ = [
    "CLOUD_ALIASES",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_TENANT",
    "KNOWN_ENTRA_HOSTS",
    "check_tenant",
    "is_loopback_host",
    "normalise_host",
    "require_trusted_host",
]

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_TENANT = "organizations"

CLOUD_ALIASES: Mapping[str, str] = {
    "public": "https://login.microsoftonline.com",
    "azure": "https://login.microsoftonline.com",
    "usgov": "https://login.microsoftonline.us",
    # Microsoft's docs give login.partner.microsoftonline.cn; login.chinacloudapi.cn (deprecated in
    # MSAL) is still accepted as a host.
    "china": "https://login.partner.microsoftonline.cn",
    "gov-fr": "https://login.sovcloud-identity.fr",
    "gov-de": "https://login.sovcloud-identity.de",
    "gov-sg": "https://login.sovcloud-identity.sg",
}

# The hosts instance discovery lists for Entra's clouds (entra-protocol.md §1.5, §1.7), and the
# sovereign clouds MSAL knows (France, Germany, Singapore).
KNOWN_ENTRA_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login-us.microsoftonline.com",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
        "login.sovcloud-identity.fr",
        "login.sovcloud-identity.de",
        "login.sovcloud-identity.sg",
    }
)

_TENANT_ALIASES = frozenset({"organizations", "common", "consumers"})
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    if not (host[:1].isdigit() or ":" in host):
        return False  # a name, not an IP literal
    try:
        import ipaddress  # only for a host that is an IP address: login hosts never pay for it

        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tenant(tenant: str) -> str:
    """``tenant`` checked and lower-cased: an alias, a tenant id (GUID) or a verified domain.

    Raises:
        ConfigError: anything else.
    """
    tenant = tenant.strip()
    if tenant.lower() in _TENANT_ALIASES:
        return tenant.lower()
    if _GUID.fullmatch(tenant):
        if set(tenant.replace("-", "")) == {"0"}:
            raise ConfigError("tenant: the all-zero GUID is not a tenant id")
        return tenant.lower()
    if _DOMAIN.fullmatch(tenant):
        return tenant.lower()
    raise ConfigError(
        "tenant must be a tenant id (GUID), a verified domain, or one of organizations, common, consumers"
    )


def normalise_host(host: str) -> str:
    """``scheme://host[:port]`` of a login host given as a URL, a bare name or a cloud alias.

    Raises:
        ConfigError: a malformed host.
        InsecureAuthorityError: plain http to a host that is not loopback.
    """
    host = host.strip()
    if not host:
        raise ConfigError("authority host is empty")
    host = CLOUD_ALIASES.get(host.lower(), host)
    if "://" not in host:
        host = "https://" + host
    try:
        parts = urlsplit(host)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("authority host is not a valid URL") from exc
    if parts.scheme not in ("https", "http"):
        raise ConfigError("authority host must be an https URL")
    hostname = parts.hostname or ""
    if not hostname or not (_HOSTNAME.fullmatch(hostname) or ":" in hostname):
        raise ConfigError("authority host has no valid host name")
    if parts.username or parts.password:
        raise ConfigError("authority host must not carry credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("authority host must be scheme://host[:port] only; pass the tenant separately (tenant=)")
    if parts.scheme == "http" and not is_loopback_host(hostname):
        raise InsecureAuthorityError(
            f"refusing plain http to {hostname}: credentials go only over https, "
            "or http to a loopback address (127.0.0.1, ::1, localhost)"
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None and port != {"https": 443, "http": 80}[parts.scheme]:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


def require_trusted_host(host: str, trusted_hosts: Iterable[str] = ()) -> None:
    """Refuse a normalised ``host`` that is neither a known Entra host, nor loopback, nor trusted.

    Raises:
        InsecureAuthorityError: the host is not trusted.
    """
    name = (urlsplit(host).hostname or "").lower()
    if name in KNOWN_ENTRA_HOSTS or is_loopback_host(name):
        return
    if name in {h.strip().lower() for h in trusted_hosts if h.strip()}:
        return
    raise InsecureAuthorityError(
        f"{name} is not a known Entra ID host: trust it explicitly with "
        f"--allow-authority-host {name} (library: trusted_hosts=[{name!r}])"
    )
