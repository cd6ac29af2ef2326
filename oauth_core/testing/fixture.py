"""The object the ``entra_emulator`` fixture hands a test: one running emulated tenant and its facts.

:class:`EntraEmulator` wraps :class:`oauth_core.emulator.Emulator` (which it starts on a free
loopback port, with TLS if asked) and names what a test of an application needs: the URL to give
as ``authority_host``, the tenant, a public and a confidential client, the users and their
passwords, the requests the emulator saw (as plain dicts, with no secret) and fault injection in
the CLI's ``--fault`` text form. It needs the ``crypto`` extra (the emulator signs its tokens).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = ["CRYPTO_EXTRA_MESSAGE", "EntraEmulator", "MissingExtra"]

CRYPTO_EXTRA_MESSAGE = (
    "the entra_emulator fixture needs the crypto extra (cryptography signs the emulator's tokens): "
    "pip install 'oauth-core[crypto]'"
)


class MissingExtra(ConfigError):
    """An optional dependency the fixture needs is not installed."""


def _require_crypto() -> None:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(CRYPTO_EXTRA_MESSAGE) from exc


class EntraEmulator:
    """A running emulated Entra tenant for tests (see :meth:`start`).

    Attributes:
        emulator: the underlying :class:`~oauth_core.emulator.Emulator` (its config, ``inject``,
            ``approve_device_code``, ``identity_environment``...).
    """

    def __init__(self, emulator: Emulator, log_dir: str) -> None:
        self.emulator = emulator
        self._log_dir = log_dir
        self._log_path = emulator.request_log or os.path.join(log_dir, "requests.jsonl")
        self._log: List[Dict[str, Any]] = []
        self._read_to = 0  # bytes of the log file already parsed
        self._pending = b""  # a line still being written
        self._mark = 0  # where the current test's requests start

    @classmethod
    def start(cls, *, tls: bool = False) -> EntraEmulator:
        """Start the emulator's default tenant on ``127.0.0.1`` and a free port.

        Raises:
            MissingExtra: cryptography is not installed (the ``crypto`` extra).
        """
        _require_crypto()
        from ..emulator import Emulator, EmulatorConfig

        log_dir = tempfile.mkdtemp(prefix="oauth-core-entra-emulator-")
        try:
            log = os.path.join(log_dir, "requests.jsonl")
            emulator = Emulator(EmulatorConfig.default(), port=0, tls=tls, request_log=log)
            emulator.start()
        except BaseException:
            shutil.rmtree(log_dir, ignore_errors=True)
            raise
        return cls(emulator, log_dir)

    def close(self) -> None:
        """Stop the emulator and remove its temporary files."""
        self.emulator.stop()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    # -- where and who ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS): the ``authority_host`` to give clients."""
        return self.emulator.url

    @property
    def tenant_id(self) -> str:
        """The tenant GUID."""
        return self.emulator.tenant_id

    @property
    def authority(self) -> str:
        """``{url}/{tenant_id}``: the tenant's authority URL."""
        return f"{self.url}/{self.tenant_id}"

    @property
    def public_client_id(self) -> str:
        """A public client (no secret), redirect URIs ``http://localhost`` and ``http://127.0.0.1``."""
        return next(c.client_id for c in self.emulator.config.clients if not c.is_confidential and not c.family)

    @property
    def confidential_client_id(self) -> str:
        """A confidential client, whose secret is :attr:`client_secret`."""
        return next(c.client_id for c in self.emulator.config.clients if c.secret)

    @property
    def client_secret(self) -> str:
        """The secret of :attr:`confidential_client_id`."""
        for client in self.emulator.config.clients:
            if client.secret:
                return client.secret
        raise ConfigError("the emulator's tenant has no client with a secret")

    @property
    def users(self) -> List[Tuple[str, str]]:
        """Every user as ``(username, password)``; the first signs in plainly by password.

        The others show Entra's refusals (MFA required, consent missing, a disabled account) and a
        federated user; ``emulator.config.users`` has their details.
        """
        return [(u.username, u.password) for u in self.emulator.config.users]

    @property
    def ca_bundle(self) -> Optional[str]:
        """With TLS, the PEM file of the throwaway CA to trust (else None)."""
        return self.emulator.ca_bundle

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the emulator's CA, e.g. ``httpx.Client(verify=emu.ssl_context())``.

        Raises:
            ConfigError: the emulator does not serve TLS.
        """
        if self.ca_bundle is None:
            raise ConfigError("the emulator serves plain http: turn TLS on (entra_emulator_tls = true)")
        return ssl.create_default_context(cafile=self.ca_bundle)

    # -- what it saw -----------------------------------------------------------------------------

    def _read_log(self) -> List[Dict[str, Any]]:
        try:
            with open(self._log_path, "rb") as handle:
                handle.seek(self._read_to)
                chunk = handle.read()
        except FileNotFoundError:
            chunk = b""
        self._read_to += len(chunk)
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        self._log.extend(json.loads(line) for line in lines if line.strip())
        return self._log

    @property
    def requests(self) -> List[Dict[str, Any]]:
        """The requests since the current test started, oldest first, as dicts with no secret.

        Keys: ``endpoint`` (``token``, ``authorize``, ``devicecode``, ``discovery``, ``keys``...),
        ``grant_type`` (token requests), ``client_id``, ``status`` (None when a fault dropped the
        connection), ``method``, ``time`` (UTC, ISO 8601) and ``at`` (epoch seconds). No path,
        query, body, header, token, code, password or assertion is kept.
        """
        return [dict(entry) for entry in self._read_log()[self._mark :]]

    @property
    def all_requests(self) -> List[Dict[str, Any]]:
        """Every request since the emulator started (the whole test session), as :attr:`requests`."""
        return [dict(entry) for entry in self._read_log()]

    def clear_requests(self) -> None:
        """Start :attr:`requests` afresh (the plugin does this before each test)."""
        self._mark = len(self._read_log())

    # -- misbehaving -----------------------------------------------------------------------------

    def fault(self, spec: str) -> None:
        """Queue a fault in the CLI's ``--fault`` form: ``ENDPOINT:KIND[xTIMES][:OPTION=VALUE...]``.

        E.g. ``token:429x2:retry-after=1`` (two 429s with ``Retry-After: 1``), ``token:503``,
        ``token:delay=2.5``, ``token:drop-after``, ``token:truncate``, ``token:html=502``. Faults
        still queued when a test ends are dropped.

        Raises:
            ConfigError: the spec is not understood.
        """
        from ..emulator import parse_fault_spec

        parsed = parse_fault_spec(spec)
        self.emulator.inject(parsed.endpoint, parsed.fault, parsed.times)

    def clear_faults(self) -> None:
        """Drop every fault still queued."""
        self.emulator.clear_faults()

    def __repr__(self) -> str:
        return f"EntraEmulator({self.url}, tenant={self.tenant_id})"
