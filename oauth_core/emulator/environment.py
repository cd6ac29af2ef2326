"""The environment variables that point real clients at the emulator's token sources.

:func:`identity_environment` is what ``Emulator.identity_environment(source)`` returns and what the
banner prints: per source the variables azure-identity and MSAL read (entra-protocol-2.md §1.1, §2.1).
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Callable, Dict, List, Mapping, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..core.errors import ConfigError
from .keys import tls_material
from .service import Service

__all__ = ["IDENTITY_SOURCES", "SOURCE_TITLES", "export_lines", "identity_environment", "server_thumbprint"]

SOURCE_TITLES: Mapping[str, str] = {
    "appservice": "managed identity, App Service / Functions",
    "imds": "managed identity, VM (IMDS)",
    "arc": "managed identity, Azure Arc",
    "cloudshell": "managed identity, Cloud Shell",
    "azureml": "managed identity, Azure ML",
    "servicefabric": "managed identity, Service Fabric",
    "workload": "workload identity (federated token file)",
}
IDENTITY_SOURCES = tuple(SOURCE_TITLES)


def server_thumbprint() -> str:
    """The SHA-1 thumbprint (hex) of the TLS server certificate, Service Fabric's pin."""
    cert = x509.load_pem_x509_certificate(tls_material().cert_pem)
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()  # noqa: S324


def identity_environment(
    source: str, *, url: str, service: Service, token_file: Callable[[], str], tls: bool
) -> Dict[str, str]:
    """The variables that select ``source`` and point it at the emulator at ``url``.

    Raises:
        ConfigError: an unknown source, Service Fabric without TLS, or workload identity without a
            client that trusts a federated credential.
    """
    if source == "appservice":
        return {"IDENTITY_ENDPOINT": f"{url}/msi/token", "IDENTITY_HEADER": service.identity_header}
    if source == "imds":
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": url}
    if source == "arc":
        return {"IDENTITY_ENDPOINT": f"{url}/arc/metadata/identity/oauth2/token", "IMDS_ENDPOINT": f"{url}/arc"}
    if source == "cloudshell":
        return {"MSI_ENDPOINT": f"{url}/cloudshell/oauth2/token"}
    if source == "azureml":
        return {"MSI_ENDPOINT": f"{url}/azureml/msi/token", "MSI_SECRET": service.msi_secret}
    if source == "servicefabric":
        if not tls:
            raise ConfigError("Service Fabric's endpoint is https only: start the emulator with tls=True (--tls)")
        return {
            "IDENTITY_ENDPOINT": f"{url}/servicefabric/metadata/identity/oauth2/token",
            "IDENTITY_HEADER": service.identity_header,
            "IDENTITY_SERVER_THUMBPRINT": server_thumbprint(),
        }
    if source == "workload":
        client = workload_client_id(service)
        if client is None:
            raise ConfigError("no client in the emulator's config trusts a federated credential")
        return {
            "AZURE_FEDERATED_TOKEN_FILE": token_file(),
            "AZURE_CLIENT_ID": client,
            "AZURE_TENANT_ID": service.config.tenant_id,
            "AZURE_AUTHORITY_HOST": url,
        }
    raise ConfigError(f"unknown identity source {source!r}; use one of {', '.join(IDENTITY_SOURCES)}")


def workload_client_id(service: Service) -> Optional[str]:
    """The first client that trusts a federated credential, or None."""
    return next((c.client_id for c in service.config.clients if c.federated_credentials), None)


def export_lines(variables: Mapping[str, str], indent: str = "    ") -> List[str]:
    """``export NAME=value`` lines, values shell-quoted."""
    return [f"{indent}export {name}={shlex.quote(value)}" for name, value in variables.items()]
