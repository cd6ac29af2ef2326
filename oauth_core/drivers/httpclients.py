"""The clients' own httpx clients: keep-alive, no redirects, no cookie jar, our User-Agent.

They send through the lean transports (:mod:`~oauth_core.drivers.lean`) unless a proxy is set in
the environment or ``OAUTH_CORE_TRANSPORT=httpx`` asks for httpx's own transport. Environment
proxies serve non-loopback hosts only (:mod:`~oauth_core.drivers.proxies`), and the sockets obey
the call deadline (:mod:`~oauth_core.drivers.deadline`) either way.
"""

from __future__ import annotations

import http.cookiejar
import logging
import os
import platform
from typing import Any, Type, TypeVar

import httpx

from .. import __version__
from ..core.errors import ConfigError
from .deadline import install_deadline_backend
from .lean import LeanTransport
from .lean_async import AsyncLeanTransport
from .proxies import proxy_mounts

__all__ = ["TRANSPORTS", "USER_AGENT", "new_async_http_client", "new_http_client", "transport_choice"]

log = logging.getLogger("oauth_core")

USER_AGENT = f"oauth-core/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"


class _NoCookies(http.cookiejar.CookieJar):
    """Entra sets cookies a token client never needs; storing them costs time and leaks nothing useful."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


Client = TypeVar("Client", httpx.Client, httpx.AsyncClient)


TRANSPORTS = ("lean", "httpx")


def transport_choice() -> str:
    """``OAUTH_CORE_TRANSPORT``, else ``"lean"``: which transport new clients send with.

    Raises:
        ConfigError: neither ``lean`` nor ``httpx``.
    """
    chosen = os.environ.get("OAUTH_CORE_TRANSPORT", "").strip() or "lean"
    if chosen not in TRANSPORTS:
        raise ConfigError(f"unknown transport {chosen!r}: OAUTH_CORE_TRANSPORT is 'lean' or 'httpx'")
    return chosen


def _configured(kind: Type[Client], timeout: float, default: Type[Any], lean: Type[Any]) -> Client:
    mounts = proxy_mounts(default)
    options: Any = {}
    if transport_choice() == "lean" and not mounts:
        options["transport"] = lean()  # with a proxy in the environment, httpx's transport does it all
    http = kind(
        timeout=timeout,
        follow_redirects=False,
        cookies=_NoCookies(),
        headers={"user-agent": USER_AGENT},
        mounts=mounts,
        **options,
    )
    if not options and not install_deadline_backend(getattr(http, "_transport", None)):
        log.debug("httpx layout not recognised: the call deadline is checked between reads only")
    return http


def new_http_client(timeout: float) -> httpx.Client:
    """The client's own httpx.Client: keep-alive, no redirects, no cookie jar, our User-Agent.

    It sends through the lean transport (:mod:`~oauth_core.drivers.lean`), or httpx's own when
    ``OAUTH_CORE_TRANSPORT=httpx`` or a proxy is set in the environment. Environment proxies serve
    non-loopback hosts only, and its sockets obey the call deadline.

    Raises:
        ConfigError: an unknown ``OAUTH_CORE_TRANSPORT``.
    """
    return _configured(httpx.Client, timeout, httpx.HTTPTransport, LeanTransport)


def new_async_http_client(timeout: float) -> httpx.AsyncClient:
    """The async twin of :func:`new_http_client`: an httpx.AsyncClient configured the same way."""
    return _configured(httpx.AsyncClient, timeout, httpx.AsyncHTTPTransport, AsyncLeanTransport)
