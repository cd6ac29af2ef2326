"""One runner per client, each doing the refresh_token grant the way its users would.

* ``raw``: ``http.client`` on one keep-alive connection, a pre-encoded body, ``json.loads``: the floor.
* ``httpx`` / ``httpx-nojar``: ``httpx.Client.post(url, data=form).json()``, with httpx's default
  cookie jar and with a jar that stores nothing (Entra sets three cookies per token response).
* ``httpx-async``: the same over ``httpx.AsyncClient`` (no jar), the base the async client stands on.
* ``oauth_core`` / ``oauth_core-async``: ``EntraClient(...).refresh(rt)`` and its async twin,
  as constructed by users (their own httpx client, in-memory token cache).
* ``oauth_core-httpx``: the same client built with ``OAUTH_CORE_TRANSPORT=httpx``, so its httpx
  client sends through httpx's own transport instead of the lean one (the before/after).
* ``msal``: ``PublicClientApplication(..., instance_discovery=False, verify=ca)`` and
  ``acquire_token_by_refresh_token``. MSAL refuses http authorities, so it only runs over TLS.
* ``authlib``: ``authlib.integrations.httpx_client.OAuth2Client.refresh_token`` (public client).

With ``Endpoint.mock`` no socket is opened: httpx-based clients get an ``httpx.MockTransport``
answering the pre-rendered response, MSAL a duck-typed ``http_client`` (``msal``) or a
``requests.Session`` with an adapter that builds the response from bytes (``msal+requests``).
A peer that is not installed raises :class:`Skip`; nothing is ever faked in its place.
"""

from __future__ import annotations

import http.client
import importlib
import json
import ssl
import warnings
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlencode, urlsplit

from .entra import Material, material
from .msal_runner import MsalRunner
from .runner_base import (
    AsyncRunner,
    Endpoint,
    NoJar,
    Runner,
    Skip,
    environment,
    refresh_form,
    require_access_token,
    trusting,
)

__all__ = [
    "ASYNC_CLIENTS",
    "CLIENTS",
    "LABELS",
    "AsyncRunner",
    "Endpoint",
    "Runner",
    "Skip",
    "make_runner",
    "trusting",
]

LABELS: Dict[str, str] = {
    "raw": "raw http.client + json.loads (floor)",
    "httpx": "httpx.Client.post (default cookie jar)",
    "httpx-nojar": "httpx.Client.post, no cookie jar",
    "oauth_core": "oauth_core EntraClient.refresh",
    "oauth_core-httpx": "the same on httpx's own transport (OAUTH_CORE_TRANSPORT=httpx)",
    "httpx-async": "httpx.AsyncClient.post, no cookie jar",
    "oauth_core-async": "oauth_core AsyncEntraClient.refresh",
    "msal": "MSAL acquire_token_by_refresh_token",
    "msal+requests": "MSAL + requests (mock adapter)",
    "authlib": "authlib httpx OAuth2Client.refresh_token",
}
CLIENTS = tuple(LABELS)
ASYNC_CLIENTS = ("httpx-async", "oauth_core-async")
BOUNDED_IN_FLIGHT = 8  # the bound measured best for 200 gathered refreshes on 2 cores


# -- raw floor ------------------------------------------------------------------------------------


class RawRunner(Runner):
    name = "raw"

    def __init__(self, endpoint: Endpoint) -> None:
        if endpoint.mock:
            raise Skip("the raw floor is a socket measurement; it has no in-process form")
        parts = urlsplit(endpoint.token_url)
        host, port = parts.hostname or "127.0.0.1", parts.port
        if endpoint.tls:
            context = ssl.create_default_context(cafile=endpoint.ca)
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, context=context)
        else:
            self.conn = http.client.HTTPConnection(host, port)
        self.path = parts.path
        self.body = urlencode(refresh_form(endpoint)).encode()
        self.headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}

    def once(self) -> None:
        self.conn.request("POST", self.path, self.body, self.headers)
        require_access_token(json.loads(self.conn.getresponse().read()))

    def close(self) -> None:
        self.conn.close()


# -- httpx-based ----------------------------------------------------------------------------------


def _httpx_response(tokens: Material) -> Callable[[Any], Any]:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=tokens.headers, content=tokens.body)

    return handler


def _transport(endpoint: Endpoint) -> Dict[str, Any]:
    if not endpoint.mock:
        return {}
    import httpx

    return {"transport": httpx.MockTransport(_httpx_response(material()))}


class HttpxRunner(Runner):
    def __init__(self, endpoint: Endpoint, *, jar: bool) -> None:
        import httpx

        self.name = "httpx" if jar else "httpx-nojar"
        with trusting(endpoint.ca):
            cookies: Dict[str, Any] = {} if jar else {"cookies": NoJar()}
            self.client = httpx.Client(**cookies, **_transport(endpoint))
        self.url = endpoint.token_url
        self.form = refresh_form(endpoint)

    def once(self) -> None:
        response = self.client.post(self.url, data=self.form)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        require_access_token(response.json())

    def close(self) -> None:
        self.client.close()


class AsyncHttpxRunner(AsyncRunner):
    """The async reference: bare ``httpx.AsyncClient`` without a jar (what AsyncEntraClient sends through)."""

    name = "httpx-async"

    def __init__(self, endpoint: Endpoint) -> None:
        import httpx

        super().__init__()

        async def build() -> Any:
            with trusting(endpoint.ca):
                return httpx.AsyncClient(cookies=NoJar(), **_transport(endpoint))

        self.client = self.loop.run_until_complete(build())
        self.url = endpoint.token_url
        self.form = refresh_form(endpoint)

    async def aonce(self) -> None:
        response = await self.client.post(self.url, data=self.form)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        require_access_token(response.json())

    async def aclose(self) -> None:
        await self.client.aclose()


def _oauth_core_http(endpoint: Endpoint, *, asynchronous: bool) -> Dict[str, Any]:
    """In-process only: an httpx client configured like oauth_core's own, over the mock transport."""
    if not endpoint.mock:
        return {}
    import httpx

    from oauth_core.drivers.sync import USER_AGENT

    cls: Any = httpx.AsyncClient if asynchronous else httpx.Client
    client = cls(follow_redirects=False, cookies=NoJar(), headers={"user-agent": USER_AGENT}, **_transport(endpoint))
    return {"http_client": client}


class OauthCoreRunner(Runner):
    name = "oauth_core"

    def __init__(self, endpoint: Endpoint, *, transport: Optional[str] = None) -> None:
        from oauth_core.drivers.sync import EntraClient

        if transport is not None:
            self.name = f"oauth_core-{transport}"
        with trusting(endpoint.ca), environment("OAUTH_CORE_TRANSPORT", transport):  # the client keeps it
            http = _oauth_core_http(endpoint, asynchronous=False)
            self.client = EntraClient(
                endpoint.client_id,
                endpoint.tenant,
                authority_host=None if endpoint.mock else endpoint.origin,
                scopes=endpoint.scope,
                **http,
            )
        self.refresh_token = endpoint.refresh_token
        self._own_http = http.get("http_client")  # a client handed in is the caller's to close

    def once(self) -> None:
        self.client.refresh(self.refresh_token)

    def close(self) -> None:
        self.client.close()
        if self._own_http is not None:
            self._own_http.close()


class AsyncOauthCoreRunner(AsyncRunner):
    name = "oauth_core-async"

    def __init__(self, endpoint: Endpoint) -> None:
        try:
            from oauth_core.drivers.aio import AsyncEntraClient
        except ImportError:
            raise Skip("oauth_core.drivers.aio not available") from None
        super().__init__()

        async def build() -> Any:  # the AsyncClient is made inside the loop that will drive it
            with trusting(endpoint.ca):
                http = _oauth_core_http(endpoint, asynchronous=True)
                self._own_http = http.get("http_client")  # a client handed in is the caller's to close
                return AsyncEntraClient(
                    endpoint.client_id,
                    endpoint.tenant,
                    authority_host=None if endpoint.mock else endpoint.origin,
                    scopes=endpoint.scope,
                    **http,
                )

        self._own_http: Any = None
        self.client = self.loop.run_until_complete(build())
        self.refresh_token = endpoint.refresh_token

    async def aonce(self) -> None:
        await self.client.refresh(self.refresh_token)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._own_http is not None:
            await self._own_http.aclose()


class AuthlibRunner(Runner):
    name = "authlib"

    def __init__(self, endpoint: Endpoint) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module("authlib.deprecate")  # its import turns its own warnings back on
                warnings.simplefilter("ignore")  # "use httpx2": we compare on the httpx oauth_core uses
                OAuth2Client = importlib.import_module("authlib.integrations.httpx_client").OAuth2Client
        except ImportError:
            raise Skip("authlib is not installed (pip install '.[bench]')") from None
        with trusting(endpoint.ca):
            self.client = OAuth2Client(
                client_id=endpoint.client_id,
                token_endpoint_auth_method="none",  # a public client: client_id in the body, no secret
                scope=f"{endpoint.scope} offline_access openid profile",
                **_transport(endpoint),
            )
        self.url = endpoint.token_url
        self.refresh_token = endpoint.refresh_token

    def once(self) -> None:
        require_access_token(self.client.refresh_token(self.url, refresh_token=self.refresh_token))

    def close(self) -> None:
        self.client.close()


def make_runner(name: str, endpoint: Endpoint) -> Runner:
    """Build client ``name`` for ``endpoint``.

    Raises:
        Skip: the client cannot run here (says why).
    """
    if name == "raw":
        return RawRunner(endpoint)
    if name in ("httpx", "httpx-nojar"):
        return HttpxRunner(endpoint, jar=name == "httpx")
    if name == "oauth_core":
        return OauthCoreRunner(endpoint)
    if name == "oauth_core-httpx":
        return OauthCoreRunner(endpoint, transport="httpx")
    if name == "httpx-async":
        return AsyncHttpxRunner(endpoint)
    if name == "oauth_core-async":
        return AsyncOauthCoreRunner(endpoint)
    if name == "oauth_core-async-8":  # AsyncEntraClient.max_in_flight = 8: CPU-bound fan-out on few cores
        runner = AsyncOauthCoreRunner(endpoint)
        runner.client.max_in_flight = BOUNDED_IN_FLIGHT
        return runner
    if name in ("msal", "msal+requests"):
        return MsalRunner(endpoint, with_requests=name == "msal+requests")
    if name == "authlib":
        return AuthlibRunner(endpoint)
    raise ValueError(f"unknown client {name!r}")
