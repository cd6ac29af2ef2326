"""A local, Entra-compatible token service for tests, demos and benchmarks (needs the ``crypto`` extra).

It serves the v2.0 endpoints of one tenant on a loopback address (discovery, JWKS, authorize with
a sign-in page, token with its grants including on-behalf-of and federated client assertions,
device code), the managed identity sources (IMDS, App Service, Azure Arc, Cloud Shell, Azure ML,
Service Fabric with TLS), OIDC issuers for workload identity federation and a stand-in AD FS for
federated users (user realm, MEX, WS-Trust 1.3/2005, SAML bearer grants) and a stand-in Azure
Databricks workspace (host metadata, SCIM ``Me``, the clusters list: :mod:`.workspace`); the
default tenant has the Microsoft first-party APIs (:mod:`.resources`); it mints RS256 tokens
shaped like Entra's, and answers errors with Entra's bodies, headers and AADSTS codes
(``shared/entra-protocol.md``, ``entra-protocol-2.md``). Faults can be injected per endpoint. Usage::

    from oauth_core.emulator import Emulator, EmulatorConfig, Fault

    with Emulator(EmulatorConfig.default(), port=0, tls=False) as emu:
        emu.inject("token", Fault("status", status=429, retry_after=2), times=3)
        ...  # point a client at f"{emu.url}/{emu.tenant_id}"
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from types import TracebackType
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Type

from ..core.errors import ConfigError
from .config import FEDERATION_AUDIENCE, Client, EmulatorConfig, FederatedCredential, ManagedIdentity, Resource, User
from .faults import Fault, FaultSpec, parse_fault_spec
from .wire import RequestRecord

if TYPE_CHECKING:
    from .server import EmulatorServer
    from .service import Service

__all__ = [
    "Client",
    "Emulator",
    "EmulatorConfig",
    "Fault",
    "FaultSpec",
    "FederatedCredential",
    "ManagedIdentity",
    "RequestRecord",
    "Resource",
    "User",
    "parse_fault_spec",
]

CRYPTO_HINT = "the emulator needs the crypto extra: pip install 'oauth-core[crypto]'"


def _require_crypto() -> None:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError as exc:
        raise ConfigError(CRYPTO_HINT) from exc


def _check_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ConfigError("the emulator listens on a loopback address only (127.0.0.1 or ::1)")
    if not address.is_loopback:
        raise ConfigError("the emulator listens on a loopback address only (127.0.0.1 or ::1)")
    return str(address)


class Emulator:
    """One running emulated tenant on ``127.0.0.1`` (or ``::1``), in a daemon thread.

    Args:
        config: the tenant; :meth:`EmulatorConfig.default` when None.
        port: the TCP port; 0 picks a free one.
        tls: serve https with a throwaway CA (see :attr:`ca_bundle`).
        host: the loopback address to listen on.
        ca_dir: where to write ``ca.pem`` (a private temp dir when None).
        clock: epoch-seconds clock for everything time-based (tests may pass a fake one).
        workers: threads answering requests (idle connections never hold one).
        idle_timeout: seconds an idle keep-alive connection, or one still sending its request
            (or TLS handshake), stays open.
        max_connections: open connections at most; the oldest idle one makes room for a new one.
        request_log: a file to append every request to, one JSON line each with no secret (time,
            endpoint, grant type, client id, status; see :mod:`.requestlog`); created 0600.

    Raises:
        ConfigError: cryptography is missing, ``host`` is not a loopback address, a pool size
            or timeout is not positive, or (on start) the request log cannot be opened.
    """

    def __init__(
        self,
        config: Optional[EmulatorConfig] = None,
        port: int = 0,
        tls: bool = False,
        *,
        host: str = "127.0.0.1",
        ca_dir: Optional[str] = None,
        clock: Optional[Callable[[], float]] = None,
        workers: int = 16,
        idle_timeout: float = 5.0,
        max_connections: int = 1000,
        request_log: Optional[str] = None,
    ) -> None:
        _require_crypto()
        if workers < 1 or max_connections < 1 or not idle_timeout > 0:
            raise ConfigError("workers and max_connections must be at least 1, idle_timeout above 0")
        self._workers, self._idle_timeout, self._max_connections = workers, idle_timeout, max_connections
        self.config = config or EmulatorConfig.default()
        self._host = _check_host(host)
        self._port = port
        self._tls = tls
        self._ca_dir = ca_dir
        self._clock = clock
        self.request_log = request_log
        self._server: Optional[EmulatorServer] = None
        self._temp_dir: Optional[str] = None
        self._last_log: List[RequestRecord] = []
        self._token_dir: Optional[str] = None
        self._token_file: Optional[str] = None
        self.ca_bundle: Optional[str] = None

    def start(self) -> Emulator:
        """Bind and start serving; returns self. Starting twice is a no-op."""
        if self._server is not None:
            return self
        from .app import App
        from .server import EmulatorServer, make_tls
        from .service import Service

        tls = make_tls(self._ca_dir) if self._tls else None
        self._server = EmulatorServer(
            App(Service(self.config, clock=self._clock)),
            host=self._host,
            port=self._port,
            tls=tls,
            workers=self._workers,
            idle_timeout=self._idle_timeout,
            max_connections=self._max_connections,
            request_log=self.request_log,
        )
        if tls is not None:
            self.ca_bundle, self._temp_dir = tls.ca_bundle, tls.temp_dir
        self._server.app.service.origin = self._server.origin
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the temporary CA directory (a ``ca_dir`` you gave is kept)."""
        if self._server is not None:
            self._server.stop()
            self._server.app.service.arc.close()
            self._last_log = self._server.snapshot()
            self._server = None
        if self._token_dir is not None:
            shutil.rmtree(self._token_dir, ignore_errors=True)
            self._token_dir = self._token_file = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.stop()

    def _running(self) -> EmulatorServer:
        if self._server is None:
            raise ConfigError("the emulator is not running: call start() or use it in a with block")
        return self._server

    @property
    def _service(self) -> Service:
        return self._running().app.service

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with TLS): the authority host to give clients."""
        return self._running().origin

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._running().port

    @property
    def tenant_id(self) -> str:
        """The tenant GUID."""
        return self.config.tenant_id

    @property
    def requests(self) -> List[RequestRecord]:
        """A copy of the request log (no secrets: paths without query strings, no bodies).

        After :meth:`stop`, the log of the last run.
        """
        return self._server.snapshot() if self._server is not None else list(self._last_log)

    def count(self, endpoint: str, grant_type: Optional[str] = None) -> int:
        """How many requests reached ``endpoint`` (with this ``grant_type``, if given)."""
        return sum(
            1 for r in self.requests if r.endpoint == endpoint and (grant_type is None or r.grant_type == grant_type)
        )

    def inject(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint`` (``token``, ``authorize``...).

        Raises:
            ConfigError: unknown endpoint or a bad ``times``.
        """
        self._running().faults.inject(endpoint, fault, times)

    def clear_faults(self) -> None:
        """Drop every fault still queued."""
        self._running().faults.clear()

    def approve_device_code(self, user_code: str, username: str) -> None:
        """Sign ``username`` in for a pending device code, as the ``/devicelogin`` page does.

        Raises:
            ConfigError: the user is unknown or disabled, or the code is unknown, used or expired.
        """
        from .device import approve

        service = self._service
        user = service.config.user(username)
        if user is None or not user.enabled:
            raise ConfigError(f"no enabled user {username!r} in the emulator's tenant")
        if not approve(service, user_code, user, now=service.clock()):
            raise ConfigError("no pending device code with that user code")

    def decline_device_code(self, user_code: str) -> None:
        """Decline a pending device code, as the page's Cancel button does.

        Raises:
            ConfigError: the code is unknown, used or expired.
        """
        from .device import decline

        service = self._service
        if not decline(service, user_code, now=service.clock()):
            raise ConfigError("no pending device code with that user code")

    def revoke_refresh_tokens(self, username: str) -> None:
        """Revoke every refresh token of ``username`` issued so far (later use: AADSTS50173)."""
        service = self._service
        with service.store.lock:
            service.store.valid_from[username.lower()] = service.clock()

    @property
    def arc_key_folder(self) -> str:
        """The private (0700) folder where the Azure Arc endpoint writes its ``<guid>.key`` files."""
        return self._service.arc.folder

    def mint_federated_token(
        self,
        subject: str = "system:serviceaccount:default:workload",
        audience: str = FEDERATION_AUDIENCE,
        lifetime: int = 3600,
        *,
        issuer: str = "cluster",
    ) -> str:
        """A token of the hosted OIDC issuer ``issuer`` (``{url}/federation/<issuer>``) for ``subject``.

        Raises:
            ConfigError: an unknown issuer, an empty subject or audience, or a lifetime outside 60-86400 s.
        """
        service = self._service
        try:
            return service.issuers.mint(
                service.origin, issuer, subject=subject, audience=audience, lifetime=lifetime, now=int(service.clock())
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def write_federated_token_file(self, path: Optional[str] = None, **mint: object) -> str:
        """Write :meth:`mint_federated_token` (``mint`` are its arguments) to ``path`` (0600) and return it.

        Without ``path`` the file is ``azure-identity-token`` in a private temp folder the emulator
        removes on :meth:`stop`; it is also the file :meth:`identity_environment` names.
        """
        token = self.mint_federated_token(**mint)  # type: ignore[arg-type]
        if path is None:
            if self._token_dir is None:
                self._token_dir = tempfile.mkdtemp(prefix="oauth-core-federation-")
            path = os.path.join(self._token_dir, "azure-identity-token")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(token)
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a valid path"
            raise ConfigError(f"cannot write the federated token file {path!r}: {reason}") from None
        self._token_file = path
        return path

    def identity_environment(self, source: str) -> Dict[str, str]:
        """The environment variables that point a client's ``source`` at this emulator.

        Sources: ``appservice``, ``imds``, ``arc``, ``cloudshell``, ``azureml``, ``servicefabric``
        (TLS only) and ``workload`` (writes the federated token file if none was written yet).

        Raises:
            ConfigError: an unknown source, or one this emulator cannot serve as configured.
        """
        from .environment import identity_environment

        def token_file() -> str:
            return self._token_file or self.write_federated_token_file()

        return identity_environment(source, url=self.url, service=self._service, token_file=token_file, tls=self._tls)

    def __repr__(self) -> str:
        state = self._server.origin if self._server else "stopped"
        return f"Emulator({state}, tenant={self.tenant_id})"
