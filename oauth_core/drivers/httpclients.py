"""The clients' own httpx clients: keep-alive, no redirects, no cookie jar, our User-Agent.

Environment proxies serve non-loopback hosts only (:mod:`~oauth_core.drivers.proxies`), and the
sockets obey the call deadline (:mod:`~oauth_core.drivers.deadline`).
"""

from __future__ import annotations

import http.cookiejar
import logging
import platform
from typing import Any, Type, TypeVar

import httpx

from .. import __version__
from .deadline import install_deadline_backend
from .proxies import proxy_mounts

__all__ = ["USER_AGENT", "new_async_http_client", "new_http_client"]

log = logging.getLogger("oauth_core")

USER_AGENT = f"oauth-core/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"


class _NoCookies(http.cookiejar.CookieJar):
    """Entra sets cookies a token client never needs; storing them costs time and leaks nothing useful."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


Client = TypeVar("Client", httpx.Client, httpx.AsyncClient)


def _configured(kind: Type[Client], timeout: float, transport: Type[Any]) -> Client:
    http = kind(
        timeout=timeout,
        follow_redirects=False,
        cookies=_NoCookies(),
        headers={"user-agent": USER_AGENT},
        mounts=proxy_mounts(transport),
    )
    if not install_deadline_backend(getattr(http, "_transport", None)):
        log.debug("httpx layout not recognised: the call deadline is checked between reads only")
    return http


def new_http_client(timeout: float) -> httpx.Client:
    """The client's own httpx.Client: keep-alive, no redirects, no cookie jar, our User-Agent.

    Environment proxies serve non-loopback hosts only, and its sockets obey the call deadline.
    """
    return _configured(httpx.Client, timeout, httpx.HTTPTransport)


def new_async_http_client(timeout: float) -> httpx.AsyncClient:
    """The async twin of :func:`new_http_client`: an httpx.AsyncClient configured the same way."""
    return _configured(httpx.AsyncClient, timeout, httpx.AsyncHTTPTransport)
