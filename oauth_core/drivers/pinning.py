"""Service Fabric's managed identity endpoint: TLS trusted by one pinned certificate thumbprint.

The cluster serves its token endpoint with a certificate no public CA signed; the environment
names it by ``IDENTITY_SERVER_THUMBPRINT`` (the SHA-1 of the certificate's DER). The clients made
here skip CA validation and instead compare the peer certificate's SHA-1 with the pin, in constant
time, right after the TLS handshake and before a single byte of the request (which carries the
identity secret) is written. A mismatch closes the connection and fails the call with a
:class:`~oauth_core.core.errors.SecurityCheckError` (not retried).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import ssl
from typing import Any, Awaitable, Iterable, Optional, Type, TypeVar

import httpcore
import httpx

from ..core.errors import ConfigError, SecurityCheckError
from .deadline import install_deadline_backend
from .httpclients import USER_AGENT

__all__ = ["PinnedBackend", "pinned_http_client"]

Client = TypeVar("Client", httpx.Client, httpx.AsyncClient)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # trust comes from the pinned thumbprint, checked below
    return context


def _matches(stream: Any, thumbprint: str) -> bool:
    ssl_object = stream.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(True) if ssl_object is not None else None
    if not der:
        return False
    return hmac.compare_digest(hashlib.sha1(der).hexdigest(), thumbprint)  # noqa: S324 - the pin is SHA-1


_MISMATCH = "the server's certificate does not match IDENTITY_SERVER_THUMBPRINT: nothing was sent"


class _PinnedStream:
    """A TCP stream whose TLS handshake must present the pinned certificate (sync or async)."""

    def __init__(self, stream: Any, thumbprint: str) -> None:
        self.stream = stream
        self.thumbprint = thumbprint

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> Any:
        return self.stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> Any:
        return self.stream.write(buffer, timeout)

    def close(self) -> Any:
        return self.stream.close()

    def aclose(self) -> Any:
        return self.stream.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: Optional[str] = None, timeout: Optional[float] = None
    ) -> Any:
        opened = self.stream.start_tls(_unverified_context(), server_hostname, timeout)
        if inspect.isawaitable(opened):
            return self._checked_when_open(opened)
        if not _matches(opened, self.thumbprint):
            opened.close()
            raise SecurityCheckError(_MISMATCH)
        return opened

    async def _checked_when_open(self, opened: Awaitable[Any]) -> Any:
        stream = await opened
        if not _matches(stream, self.thumbprint):
            await stream.aclose()
            raise SecurityCheckError(_MISMATCH)
        return stream


class PinnedBackend:
    """An httpcore network backend (sync or async) whose TLS connections must present the pin."""

    def __init__(self, backend: Any, thumbprint: str) -> None:
        self.backend = backend
        self.thumbprint = thumbprint

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[Iterable[Any]] = None,
    ) -> Any:
        opened = self.backend.connect_tcp(host, port, timeout, local_address, socket_options)
        if inspect.isawaitable(opened):
            return self._wrap_when_open(opened)
        return _PinnedStream(opened, self.thumbprint)

    async def _wrap_when_open(self, opened: Awaitable[Any]) -> _PinnedStream:
        return _PinnedStream(await opened, self.thumbprint)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise httpcore.ConnectError("a pinned endpoint is reached over TCP only")

    def sleep(self, seconds: float) -> Any:
        return self.backend.sleep(seconds)


def pinned_http_client(kind: Type[Client], transport: Type[Any], timeout: float, thumbprint: str) -> Client:
    """An httpx client (``kind``, with its ``transport`` class) that trusts only ``thumbprint``.

    No environment proxy (the endpoint is the cluster's own), no redirects, the call deadline kept.

    Raises:
        ConfigError: httpx's layout is not the one known here, so the pin cannot be enforced.
    """
    http = kind(
        timeout=timeout,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
        transport=transport(verify=False),  # the pin replaces CA trust
    )
    inner = getattr(http, "_transport", None)
    install_deadline_backend(inner)
    pool = getattr(inner, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        raise ConfigError(
            "this httpx version hides its network backend: the Service Fabric certificate cannot be pinned"
        )
    pool._network_backend = PinnedBackend(backend, thumbprint)  # type: ignore[union-attr]
    return http
