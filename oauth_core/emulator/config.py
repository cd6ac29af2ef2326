"""What the emulated tenant contains: users, client applications, resources and timing knobs.

Everything is a frozen dataclass; change a copy with :func:`dataclasses.replace`. A config can be
loaded from JSON (:meth:`EmulatorConfig.from_file`) whose keys are the field names below; missing
keys take the defaults of :meth:`EmulatorConfig.default`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar

from ..core.errors import ConfigError
from .resources import ARM_APP_ID, DATABRICKS_APP_ID, GRAPH_APP_ID, Resource, first_party_resources

__all__ = [
    "ARM_APP_ID",
    "DATABRICKS_APP_ID",
    "FEDERATION_AUDIENCE",
    "GRAPH_APP_ID",
    "Client",
    "EmulatorConfig",
    "FederatedCredential",
    "ManagedIdentity",
    "Resource",
    "User",
]

FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
DEMO_API_APP_ID = "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60"
WORKLOAD_APP_ID = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ISSUER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_T = TypeVar("_T")


def _guid(value: str, what: str) -> str:
    if not _GUID.match(value):
        raise ConfigError(f"{what} must be a GUID")
    return value.lower()


@dataclass(frozen=True)
class User:
    """A user account of the tenant.

    Attributes:
        username: the UPN, e.g. ``alice@contoso.onmicrosoft.com``.
        password: what the password grant and the sign-in page accept.
        display_name: the ``name`` claim.
        object_id: the ``oid`` claim (a GUID).
        requires_mfa: the password grant fails with AADSTS50076; interactive sign-in adds ``mfa``.
        consented: False makes the password grant fail with AADSTS65001 (consent required).
        enabled: False makes every sign-in fail with AADSTS50057.
        step_up: a Conditional Access policy asks this user for MFA on refresh: a refresh-token
            redemption is answered with AADSTS50076 and a ``claims`` challenge (``capolids``).
    """

    username: str
    password: str
    display_name: str
    object_id: str
    requires_mfa: bool = False
    consented: bool = True
    enabled: bool = True
    step_up: bool = False

    def __post_init__(self) -> None:
        if "@" not in self.username:
            raise ConfigError("a user's username must be a UPN (name@domain)")
        object.__setattr__(self, "object_id", _guid(self.object_id, "a user's object_id"))

    def __repr__(self) -> str:
        return f"User(username={self.username!r}, object_id={self.object_id!r})"


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential: an external token with this ``iss``, ``sub`` and ``aud`` is accepted.

    Attributes:
        issuer: the issuer URL, compared exactly; ``{emulator}`` stands for the emulator's own URL,
            so ``{emulator}/federation/cluster`` names the OIDC issuer the emulator hosts as ``cluster``.
        subject: the ``sub`` claim, compared case-sensitively (``system:serviceaccount:<ns>:<name>``).
        audiences: the accepted ``aud`` values (Entra allows exactly one).
    """

    issuer: str
    subject: str
    audiences: Tuple[str, ...] = (FEDERATION_AUDIENCE,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "audiences", tuple(self.audiences))
        if len(self.audiences) != 1:
            raise ConfigError("a federated credential has exactly one audience")


@dataclass(frozen=True)
class ManagedIdentity:
    """A managed identity of the emulated machine (system-assigned or user-assigned).

    Attributes:
        client_id: its application id (``appid``/``azp`` of its tokens, the ``client_id`` selector).
        object_id: its service principal's object id (``oid``/``sub``; the ``object_id`` and
            ``principal_id`` selectors).
        resource_id: the ARM id (``xms_mirid``; the ``msi_res_id``/``mi_res_id`` selectors): the
            machine's id for a system-assigned identity, ``.../userAssignedIdentities/<name>`` otherwise.
    """

    client_id: str
    object_id: str
    resource_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_id", _guid(self.client_id, "a managed identity's client_id"))
        object.__setattr__(self, "object_id", _guid(self.object_id, "a managed identity's object_id"))
        if not self.resource_id.startswith("/subscriptions/"):
            raise ConfigError("a managed identity's resource_id is an ARM id (/subscriptions/...)")


@dataclass(frozen=True)
class Client:
    """A registered application.

    Attributes:
        client_id: the application (client) id, a GUID.
        display_name: the name Entra shows and quotes in consent errors.
        redirect_uris: registered redirect URIs; ``http://localhost`` and ``http://127.0.0.1``
            match any port, as Entra allows for loopback addresses.
        secret: a client secret; a client with a secret or certificates is confidential.
        certificates: PEM certificates whose keys may sign client assertions.
        federated_credentials: external issuers' tokens accepted as client assertions.
        family: a member of the family of client ids (FOCI): its token responses carry ``foci: "1"``.
    """

    client_id: str
    display_name: str
    redirect_uris: Tuple[str, ...] = ()
    secret: Optional[str] = None
    certificates: Tuple[str, ...] = ()
    federated_credentials: Tuple[FederatedCredential, ...] = ()
    family: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_id", _guid(self.client_id, "a client's client_id"))
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        object.__setattr__(self, "certificates", tuple(self.certificates))
        object.__setattr__(self, "federated_credentials", tuple(self.federated_credentials))

    @property
    def is_confidential(self) -> bool:
        """True when the client has a credential (a secret, a certificate or a federated credential)."""
        return bool(self.secret) or bool(self.certificates) or bool(self.federated_credentials)

    def __repr__(self) -> str:
        kind = "confidential" if self.is_confidential else "public"
        return f"Client(client_id={self.client_id!r}, {kind})"


def _default_users() -> Tuple[User, ...]:
    return (
        User(
            "alice@contoso.onmicrosoft.com", "Alice-Passw0rd!", "Alice Example", "6f1c3b2a-9d4e-4f5a-8b7c-1d2e3f4a5b6c"
        ),
        User(
            "mfa@contoso.onmicrosoft.com",
            "Mfa-Passw0rd!",
            "Morgan Mfa",
            "7a2d4c3b-0e5f-4a6b-9c8d-2e3f4a5b6c7d",
            requires_mfa=True,
        ),
        User(
            "noconsent@contoso.onmicrosoft.com",
            "NoConsent-Passw0rd!",
            "Nico Noconsent",
            "8b3e5d4c-1f6a-4b7c-8d9e-3f4a5b6c7d8e",
            consented=False,
        ),
        User(
            "disabled@contoso.onmicrosoft.com",
            "Disabled-Passw0rd!",
            "Dana Disabled",
            "9c4f6e5d-2a7b-4c8d-9e0f-4a5b6c7d8e9f",
            enabled=False,
        ),
        # A user of the federated domain: signs in at the stand-in AD FS (WS-Trust), not with ROPC.
        User("bob@fabrikam.example", "Bob-Passw0rd!", "Bob Federated", "1d5a7f6e-3b8c-4d9e-8f0a-5b6c7d8e9f0a"),
    )


def _default_clients() -> Tuple[Client, ...]:
    loopback = ("http://localhost", "http://127.0.0.1")
    return (
        Client("a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21", "oauth-core demo app", loopback),
        Client(
            "c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f",
            "oauth-core confidential app",
            (*loopback, "https://localhost/callback"),
            secret="emulator-client-secret",
        ),
        # The demo API's own registration: a middle tier that trades its users' tokens (on-behalf-of).
        Client(DEMO_API_APP_ID, "oauth-core demo API (middle tier)", secret="emulator-middle-tier-secret"),
        Client(
            WORKLOAD_APP_ID,
            "oauth-core workload app",
            federated_credentials=(
                FederatedCredential("{emulator}/federation/cluster", "system:serviceaccount:default:workload"),
            ),
        ),
        # A public client of the family of client ids (as Azure CLI is): its responses carry foci "1".
        Client("f0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b", "oauth-core family app", loopback, family=True),
    )


_ARM_GROUP = "/subscriptions/0b5c3a1d-7e2f-4a6b-8c9d-1e2f3a4b5c6d/resourcegroups/oauth-core-rg/providers"


def _default_system_identity() -> Optional[ManagedIdentity]:
    return ManagedIdentity(
        "e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a7b8",
        "f5a6b7c8-d9e0-4f1a-b2c3-d4e5f6a7b8c9",
        f"{_ARM_GROUP}/Microsoft.Compute/virtualMachines/oauth-core-vm",
    )


def _default_user_identities() -> Tuple[ManagedIdentity, ...]:
    return (
        ManagedIdentity(
            "a6b7c8d9-e0f1-4a2b-c3d4-e5f6a7b8c9d0",
            "b7c8d9e0-f1a2-4b3c-d4e5-f6a7b8c9d0e1",
            f"{_ARM_GROUP}/Microsoft.ManagedIdentity/userAssignedIdentities/oauth-core-uami",
        ),
    )


def _default_resources() -> Tuple[Resource, ...]:
    demo_api = Resource(DEMO_API_APP_ID, "oauth-core demo API", "api://oauth-core-demo-api", ("access_as_user",), 2)
    return (*first_party_resources(), demo_api)


@dataclass(frozen=True)
class EmulatorConfig:
    """The emulated tenant and the service's behaviour.

    Attributes:
        tenant_id: the tenant GUID (``tid``).
        domain: the tenant's verified domain, also accepted as the ``{tenant}`` path segment.
        users, clients, resources: the directory.
        token_lifetime: fixed access-token lifetime in seconds; None draws 3600-5400 each time.
        revoke_rotated_refresh_tokens: True revokes a refresh token once redeemed (reuse gives
            AADSTS70000, not Entra's behaviour); False (the default) keeps it valid until it
            expires, as Entra does.
        refresh_token_max_inactive: seconds a refresh token may go unused (AADSTS700082 after).
        code_lifetime: seconds an authorization code stays redeemable (AADSTS70008 after).
        device_code_lifetime: the device code's ``expires_in``.
        device_code_interval: the device code's polling ``interval``.
        crlf_error_descriptions: separate Trace ID / Correlation ID / Timestamp with ``\\r\\n``
            (Entra before late 2023) instead of single spaces.
        region: shown in the ``x-ms-ests-server`` header.
        system_identity: the machine's system-assigned managed identity; None for none.
        user_identities: user-assigned managed identities; with ``system_identity`` None and no
            user identities the machine has no identity at all ("Identity not found" everywhere).
        identity_header: the App Service / Service Fabric ``IDENTITY_HEADER`` secret; None draws a
            random one per start.
        msi_secret: Azure ML's ``MSI_SECRET``; None draws a random one per start.
        federation_issuers: names of the OIDC issuers the emulator hosts at ``/federation/<name>``.
        cloud_shell_user: whose token Cloud Shell's endpoint hands out (a UPN of ``users``); None: none.
        federated_domains: domains whose users sign in at the stand-in AD FS (user realm
            ``Federated``, MEX, WS-Trust, SAML bearer grants); their plain ROPC is refused.
        step_up_policy_id: the Conditional Access policy id sent in step-up ``claims`` (``capolids``).
    """

    tenant_id: str = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
    domain: str = "contoso.onmicrosoft.com"
    users: Tuple[User, ...] = field(default_factory=_default_users)
    clients: Tuple[Client, ...] = field(default_factory=_default_clients)
    resources: Tuple[Resource, ...] = field(default_factory=_default_resources)
    token_lifetime: Optional[int] = None
    revoke_rotated_refresh_tokens: bool = False
    refresh_token_max_inactive: int = 90 * 24 * 3600
    code_lifetime: int = 600
    device_code_lifetime: int = 900
    device_code_interval: int = 5
    crlf_error_descriptions: bool = False
    region: str = "LOCAL"
    system_identity: Optional[ManagedIdentity] = field(default_factory=_default_system_identity)
    user_identities: Tuple[ManagedIdentity, ...] = field(default_factory=_default_user_identities)
    identity_header: Optional[str] = None
    msi_secret: Optional[str] = None
    federation_issuers: Tuple[str, ...] = ("cluster",)
    cloud_shell_user: Optional[str] = "alice@contoso.onmicrosoft.com"
    federated_domains: Tuple[str, ...] = ("fabrikam.example",)
    step_up_policy_id: str = "c0a1f2e3-4b5c-4d6e-9f70-8a9b0c1d2e3f"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenant_id", _guid(self.tenant_id, "tenant_id"))
        object.__setattr__(self, "domain", self.domain.lower())
        object.__setattr__(self, "step_up_policy_id", _guid(self.step_up_policy_id, "step_up_policy_id"))
        object.__setattr__(self, "federated_domains", tuple(d.lower() for d in self.federated_domains))
        for name in ("users", "clients", "resources", "user_identities", "federation_issuers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if any(not _ISSUER_NAME.match(name) for name in self.federation_issuers):
            raise ConfigError("federation issuer names are letters, digits, '-' and '_'")
        if self.token_lifetime is not None and not 60 <= self.token_lifetime <= 86400 * 2:
            raise ConfigError("token_lifetime must be 60 to 172800 seconds")
        for name in ("refresh_token_max_inactive", "code_lifetime", "device_code_lifetime", "device_code_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 second")
        if len({c.client_id for c in self.clients}) != len(self.clients):
            raise ConfigError("client ids must be unique")
        if len({u.username.lower() for u in self.users}) != len(self.users):
            raise ConfigError("usernames must be unique")

    @classmethod
    def default(cls) -> EmulatorConfig:
        """The built-in tenant: five users (one of the federated domain ``fabrikam.example``), seven
        resources (the six Microsoft first-party APIs of :func:`.resources.first_party_resources` and
        the demo API), five clients (public, confidential, a family app, the demo API as an on-behalf-of
        middle tier, a workload app trusting the ``cluster`` issuer), a system-assigned and a
        user-assigned managed identity."""
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: Optional[Path] = None) -> EmulatorConfig:
        """Build a config from parsed JSON; unknown keys are refused.

        Certificates may be given as PEM text or as a path to a PEM file (relative to ``base_dir``).

        Raises:
            ConfigError: a key is unknown or a value has the wrong type or shape.
        """
        if not isinstance(data, Mapping):
            raise ConfigError("the emulator config must be a JSON object")
        values = _known_fields(cls, data, "emulator config")
        if "users" in values:
            values["users"] = tuple(_build(User, u, "user") for u in _list(values["users"], "users"))
        if "resources" in values:
            values["resources"] = tuple(
                _build(Resource, r, "resource") for r in _list(values["resources"], "resources")
            )
        if "clients" in values:
            values["clients"] = tuple(_client(c, base_dir) for c in _list(values["clients"], "clients"))
        if values.get("system_identity") is not None:
            values["system_identity"] = _build(ManagedIdentity, values["system_identity"], "system_identity")
        if "user_identities" in values:
            values["user_identities"] = tuple(
                _build(ManagedIdentity, m, "user identity") for m in _list(values["user_identities"], "user_identities")
            )
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"emulator config: {exc}") from exc

    @classmethod
    def from_file(cls, path: str) -> EmulatorConfig:
        """Load a JSON config file (see :meth:`from_dict`).

        Raises:
            ConfigError: the file cannot be read, is not JSON, or does not describe a config.
        """
        file = Path(path)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the emulator config {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"the emulator config {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, base_dir=file.parent)

    def user(self, username: str) -> Optional[User]:
        """The user with this UPN (case-insensitive), or None."""
        wanted = username.lower()
        return next((u for u in self.users if u.username.lower() == wanted), None)

    def is_federated(self, username: str) -> bool:
        """True when the user's domain is federated (signs in at the stand-in AD FS)."""
        return username.rpartition("@")[2].lower() in self.federated_domains

    def client(self, client_id: str) -> Optional[Client]:
        """The client with this id (case-insensitive), or None."""
        wanted = client_id.lower()
        return next((c for c in self.clients if c.client_id == wanted), None)


_NESTED = ("users", "clients", "resources", "user_identities", "federated_credentials")


def _known_fields(cls: Type[Any], data: Mapping[str, Any], what: str) -> Dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(unknown)}")
    return {k: (tuple(v) if isinstance(v, list) and k not in _NESTED else v) for k, v in data.items()}


def _list(value: Any, what: str) -> Tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"emulator config: {what} must be a list")
    return tuple(value)


def _build(cls: Type[_T], data: Any, what: str) -> _T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"emulator config: each {what} must be an object")
    try:
        return cls(**_known_fields(cls, data, what))
    except TypeError as exc:
        raise ConfigError(f"emulator config: {what}: {exc}") from exc


def _client(data: Any, base_dir: Optional[Path]) -> Client:
    client = _build(Client, data, "client")
    federated = tuple(
        _build(FederatedCredential, f, "federated credential")
        for f in _list(client.federated_credentials, "federated_credentials")
    )
    client = replace(client, federated_credentials=federated)
    pems = []
    for entry in client.certificates:
        if not isinstance(entry, str):
            raise ConfigError("emulator config: client certificates must be strings")
        if "-----BEGIN" in entry:
            pems.append(entry)
            continue
        path = Path(entry) if base_dir is None else base_dir / entry
        try:
            pems.append(path.read_text(encoding="ascii"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"emulator config: cannot read certificate file {entry}") from exc
    return replace(client, certificates=tuple(pems))
