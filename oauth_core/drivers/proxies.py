"""Environment proxies that loopback destinations skip: local traffic (an emulator) never reaches a proxy.

``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` keep serving Entra's hosts; 127.0.0.0/8, ::1 and
localhost go direct. :func:`proxy_mounts` builds httpx ``mounts`` for either client kind, and one
:class:`LoopbackBypass` router serves both (httpx calls ``handle_request`` on a sync client's
transports and ``handle_async_request`` on an async one's).
"""

from __future__ import annotations

import urllib.request
from typing import Any, Dict, Type, Union

import httpx

from ..core.authority import is_loopback_host
from .deadline import install_deadline_backend

__all__ = ["LoopbackBypass", "env_proxy_urls", "proxy_mounts"]

IMDS_ADDRESS = "169.254.169.254"

AnyTransport = Union[httpx.BaseTransport, httpx.AsyncBaseTransport]


class LoopbackBypass(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An environment proxy that loopback destinations skip, for a sync or an async httpx client.

    ``proxy`` and ``direct`` are both ``httpx.HTTPTransport`` or both ``httpx.AsyncHTTPTransport``.
    """

    def __init__(self, proxy: Any, direct: Any) -> None:
        self.proxy = proxy
        self.direct = direct

    def route(self, url: httpx.URL) -> Any:
        """The transport for ``url``: direct for 127.0.0.0/8, ::1, localhost and the instance metadata
        address (IMDS is never reachable through a proxy), else the proxy."""
        return self.direct if is_loopback_host(url.host) or url.host == IMDS_ADDRESS else self.proxy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self.route(request.url).handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = await self.route(request.url).handle_async_request(request)
        return response

    def close(self) -> None:
        self.proxy.close()
        self.direct.close()

    async def aclose(self) -> None:
        await self.proxy.aclose()
        await self.direct.aclose()


def env_proxy_urls() -> Dict[str, str]:
    """The proxies httpx takes from the environment, by mount key (``http://``, ``https://``, ``all://``)."""
    found = urllib.request.getproxies()
    if "*" in (host.strip() for host in found.get("no", "").split(",")):
        return {}  # NO_PROXY=*: httpx uses no proxy at all
    urls = {}
    for scheme in ("http", "https", "all"):
        url = found.get(scheme)
        if url:
            urls[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    return urls


def proxy_mounts(transport: Type[AnyTransport]) -> Dict[str, LoopbackBypass]:
    """httpx ``mounts`` replacing its environment proxies by ones that loopback hosts bypass.

    ``transport`` is ``httpx.HTTPTransport`` or ``httpx.AsyncHTTPTransport``; each transport made
    obeys the call deadline. httpx's own NO_PROXY mounts are left as they are; with no proxy in
    the environment there is nothing to mount.
    """
    urls = env_proxy_urls()
    if not urls:
        return {}
    verify = httpx.create_ssl_context()  # one CA load for all of them (SSL_CERT_FILE is honoured)
    make: Any = transport
    direct = make(verify=verify)
    install_deadline_backend(direct)
    mounts: Dict[str, LoopbackBypass] = {}
    for key, url in urls.items():
        proxy = make(verify=verify, proxy=url)
        install_deadline_backend(proxy)
        mounts[key] = LoopbackBypass(proxy, direct)
    return mounts
