"""Where tokens come from: the cloud's login host, the tenant, and the v2.0 endpoint URLs.

Pure: no discovery request is ever needed for the known Entra hosts, so one token exchange is
exactly one POST. Credentials go only over https, or plain http to a loopback address (a local
emulator or test server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional
from urllib.parse import urlsplit

from .hosts import (
    CLOUD_ALIASES as CLOUD_ALIASES,
    DEFAULT_AUTHORITY_HOST as DEFAULT_AUTHORITY_HOST,
    DEFAULT_TENANT as DEFAULT_TENANT,
    KNOWN_ENTRA_HOSTS as KNOWN_ENTRA_HOSTS,
    check_tenant,
    is_loopback_host as is_loopback_host,
    normalise_host,
    require_trusted_host,
)

__all__ = [
    "CLOUD_ALIASES",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_TENANT",
    "KNOWN_ENTRA_HOSTS",
    "Authority",
    "is_loopback_host",
]


@dataclass(frozen=True)
class Authority:
    """A validated authority: ``host`` (``scheme://host[:port]``) and ``tenant``.

    Build it with :meth:`Authority.of`, which checks both; the constructor trusts its input.
    """

    host: str
    tenant: str

    @classmethod
    def of(cls, authority_host: Optional[str] = None, tenant: Optional[str] = None) -> Authority:
        """Validate and normalise a host (URL, bare name or cloud alias) and a tenant.

        Raises:
            ConfigError: the host or tenant is malformed.
            InsecureAuthorityError: plain http to a host that is not loopback.
        """
        return cls(
            host=normalise_host(authority_host or DEFAULT_AUTHORITY_HOST),
            tenant=check_tenant(tenant or DEFAULT_TENANT),
        )

    @property
    def hostname(self) -> str:
        return urlsplit(self.host).hostname or ""

    @property
    def is_known_entra_host(self) -> bool:
        return self.hostname in KNOWN_ENTRA_HOSTS

    @property
    def base(self) -> str:
        return f"{self.host}/{self.tenant}"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.base}/oauth2/v2.0/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}/oauth2/v2.0/token"

    @property
    def device_code_endpoint(self) -> str:
        return f"{self.base}/oauth2/v2.0/devicecode"

    @property
    def discovery_endpoint(self) -> str:
        return f"{self.base}/v2.0/.well-known/openid-configuration"

    @property
    def jwks_endpoint(self) -> str:
        return f"{self.base}/discovery/v2.0/keys"

    def require_trusted(self, trusted_hosts: Iterable[str] = ()) -> Authority:
        """Refuse a host that is neither a known Entra host, nor loopback, nor explicitly trusted.

        Credentials (passwords, secrets, refresh tokens) go to this host: a typo or a hostile
        configuration must not be enough to send them elsewhere.

        Raises:
            InsecureAuthorityError: the host is not trusted.
        """
        require_trusted_host(self.host, trusted_hosts)
        return self

    def with_tenant(self, tenant: str) -> Authority:
        """The same host with another (validated) tenant."""
        return Authority(self.host, check_tenant(tenant))
