"""One runner per client, each doing the refresh_token grant the way its users would.

* ``raw``: ``http.client`` on one keep-alive connection, a pre-encoded body, ``json.loads``: the floor.
* ``httpx`` / ``httpx-nojar``: ``httpx.Client.post(url, data=form).json()``, with httpx's default
  cookie jar and with a jar that stores nothing (Entra sets three cookies per token response).
* ``httpx-async``: the same over ``httpx.AsyncClient`` (no jar), the base the async client stands on.
* ``oauth_core`` / ``oauth_core-async``: ``EntraClient(...).refresh(rt)`` and its async twin,
  as constructed by users (their own httpx client, in-memory token cache).
* ``msal``: ``PublicClientApplication(..., instance_discovery=False, verify=ca)`` and
  ``acquire_token_by_refresh_token``. MSAL refuses http authorities, so it only runs over TLS.
* ``authlib``: ``authlib.integrations.httpx_client.OAuth2Client.refresh_token`` (public client).

With ``Endpoint.mock`` no socket is opened: httpx-based clients get an ``httpx.MockTransport``
answering the pre-rendered response, MSAL a duck-typed ``http_client`` (``msal``) or a
``requests.Session`` with an adapter that builds the response from bytes (``msal+requests``).
A peer that is not installed raises :class:`Skip`; nothing is ever faked in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.cookiejar
import importlib
import io
import json
import os
import ssl
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlencode, urlsplit

from .entra import CLIENT_ID, REFRESH_TOKEN, SCOPE, TENANT, Material, discovery_body, material

__all__ = [
    "ASYNC_CLIENTS",
    "CLIENTS",
    "LABELS",
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
    "httpx-async": "httpx.AsyncClient.post, no cookie jar",
    "oauth_core-async": "oauth_core AsyncEntraClient.refresh",
    "msal": "MSAL acquire_token_by_refresh_token",
    "msal+requests": "MSAL + requests (mock adapter)",
    "authlib": "authlib httpx OAuth2Client.refresh_token",
}
CLIENTS = tuple(LABELS)
ASYNC_CLIENTS = ("httpx-async", "oauth_core-async")


class Skip(Exception):
    """This client cannot run here (a peer is not installed, or the transport does not apply)."""


@dataclass(frozen=True)
class Endpoint:
    """Where the clients send their refresh: a loopback server, or nowhere (``mock``)."""

    origin: str
    ca: Optional[str] = None
    tenant: str = TENANT
    client_id: str = CLIENT_ID
    refresh_token: str = REFRESH_TOKEN
    scope: str = SCOPE
    mock: bool = False

    @property
    def tls(self) -> bool:
        return self.origin.startswith("https:")

    @property
    def authority(self) -> str:
        return f"{self.origin}/{self.tenant}"

    @property
    def token_url(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"


class NoJar(http.cookiejar.CookieJar):
    """A cookie jar that stores nothing (what oauth_core's own httpx client uses)."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


@contextlib.contextmanager
def trusting(ca: Optional[str]) -> Iterator[None]:
    """Trust ``ca`` while clients are built: httpx reads ``SSL_CERT_FILE`` when it makes its SSL context.

    ``SSL_CERT_FILE`` is what oauth_core tells users to set for a private CA; httpx-based peers
    (bare httpx, authlib) read it the same way, so every httpx client gets the same trust.
    """
    if ca is None:
        yield
        return
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = ca
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved


def _check(data: Dict[str, Any]) -> None:
    if "access_token" not in data:
        raise RuntimeError(f"no access token in the answer: {data.get('error')} {data.get('error_description')}")


class Runner:
    """A client ready to refresh; :meth:`block` times ``n`` refreshes one after another."""

    name = ""
    is_async = False

    def once(self) -> None:
        raise NotImplementedError

    def block(self, n: int) -> Tuple[List[int], float, float]:
        """Per-exchange wall times (ns), the block's process CPU (s) and its wall time (s)."""
        latencies: List[int] = []
        append, once, clock = latencies.append, self.once, time.perf_counter_ns
        cpu0, start = time.process_time(), clock()
        for _ in range(n):
            began = clock()
            once()
            append(clock() - began)
        return latencies, time.process_time() - cpu0, (clock() - start) / 1e9

    def close(self) -> None:
        return None


class AsyncRunner(Runner):
    """An async client with its own event loop; each block runs inside it."""

    is_async = True

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    async def aonce(self) -> None:
        raise NotImplementedError

    async def _block(self, n: int) -> Tuple[List[int], float, float]:
        latencies: List[int] = []
        append, aonce, clock = latencies.append, self.aonce, time.perf_counter_ns
        cpu0, start = time.process_time(), clock()
        for _ in range(n):
            began = clock()
            await aonce()
            append(clock() - began)
        return latencies, time.process_time() - cpu0, (clock() - start) / 1e9

    def block(self, n: int) -> Tuple[List[int], float, float]:
        return self.loop.run_until_complete(self._block(n))

    async def aclose(self) -> None:
        return None

    def close(self) -> None:
        self.loop.run_until_complete(self.aclose())
        self.loop.close()


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
        self.body = urlencode(_form(endpoint)).encode()
        self.headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}

    def once(self) -> None:
        self.conn.request("POST", self.path, self.body, self.headers)
        _check(json.loads(self.conn.getresponse().read()))

    def close(self) -> None:
        self.conn.close()


def _form(endpoint: Endpoint) -> Dict[str, str]:
    return {
        "client_id": endpoint.client_id,
        "grant_type": "refresh_token",
        "refresh_token": endpoint.refresh_token,
        "scope": f"{endpoint.scope} offline_access openid profile",
        "client_info": "1",
    }


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
        self.form = _form(endpoint)

    def once(self) -> None:
        response = self.client.post(self.url, data=self.form)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        _check(response.json())

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
        self.form = _form(endpoint)

    async def aonce(self) -> None:
        response = await self.client.post(self.url, data=self.form)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        _check(response.json())

    async def aclose(self) -> None:
        await self.client.aclose()


def _oauth_core_http(endpoint: Endpoint, *, asynchronous: bool) -> Dict[str, Any]:
    """In-process only: an httpx client configured like oauth_core's own, over the mock transport."""
    if not endpoint.mock:
        return {}
    import httpx

    from oauth_core.client import USER_AGENT

    cls: Any = httpx.AsyncClient if asynchronous else httpx.Client
    client = cls(follow_redirects=False, cookies=NoJar(), headers={"user-agent": USER_AGENT}, **_transport(endpoint))
    return {"http_client": client}


class OauthCoreRunner(Runner):
    name = "oauth_core"

    def __init__(self, endpoint: Endpoint) -> None:
        from oauth_core.client import EntraClient

        with trusting(endpoint.ca):
            self.client = EntraClient(
                endpoint.client_id,
                endpoint.tenant,
                authority_host=None if endpoint.mock else endpoint.origin,
                scopes=endpoint.scope,
                **_oauth_core_http(endpoint, asynchronous=False),
            )
        self.refresh_token = endpoint.refresh_token
        self._own_http = endpoint.mock

    def once(self) -> None:
        self.client.refresh(self.refresh_token)

    def close(self) -> None:
        self.client.close()
        if self._own_http:
            self.client._http.close()


class AsyncOauthCoreRunner(AsyncRunner):
    name = "oauth_core-async"

    def __init__(self, endpoint: Endpoint) -> None:
        try:
            from oauth_core.aio import AsyncEntraClient
        except ImportError:
            raise Skip("oauth_core.aio not available") from None
        super().__init__()

        async def build() -> Any:  # the AsyncClient is made inside the loop that will drive it
            with trusting(endpoint.ca):
                return AsyncEntraClient(
                    endpoint.client_id,
                    endpoint.tenant,
                    authority_host=None if endpoint.mock else endpoint.origin,
                    scopes=endpoint.scope,
                    **_oauth_core_http(endpoint, asynchronous=True),
                )

        self.client = self.loop.run_until_complete(build())
        self.refresh_token = endpoint.refresh_token
        self._own_http = endpoint.mock

    async def aonce(self) -> None:
        await self.client.refresh(self.refresh_token)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._own_http:
            await self.client._http.aclose()


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
        _check(self.client.refresh_token(self.url, refresh_token=self.refresh_token))

    def close(self) -> None:
        self.client.close()


# -- MSAL -----------------------------------------------------------------------------------------


class _FakeResponse:
    """What MSAL reads from its ``http_client`` answers (status_code, text, headers)."""

    def __init__(self, status_code: int, text: str, headers: Dict[str, str]) -> None:
        self.status_code, self.text, self.headers = status_code, text, headers

    def raise_for_status(self) -> None:
        return None


class _FakeMsalHttp:
    """MSAL's duck-typed http_client contract, answering from memory: MSAL's own logic, no HTTP stack."""

    def __init__(self, origin: str) -> None:
        tokens = material()
        joined: Dict[str, str] = {}
        for name, value in tokens.headers:
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        self.token = _FakeResponse(200, tokens.body.decode(), joined)
        self.discovery = _FakeResponse(200, discovery_body(origin).decode(), {"Content-Type": "application/json"})

    def post(self, url: str, **kwargs: Any) -> _FakeResponse:
        return self.token

    def get(self, url: str, **kwargs: Any) -> _FakeResponse:
        return self.discovery

    def close(self) -> None:
        return None


def _requests_session(origin: str) -> Any:
    """A ``requests.Session`` whose adapter builds each response from the pre-rendered bytes."""
    import requests
    import requests.adapters
    from urllib3 import HTTPResponse
    from urllib3._collections import HTTPHeaderDict

    tokens = material()
    discovery = discovery_body(origin)

    class Adapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            body = tokens.body if request.method == "POST" else discovery
            headers = tokens.headers if request.method == "POST" else [("Content-Type", "application/json")]
            raw = HTTPResponse(
                body=io.BytesIO(body),
                headers=HTTPHeaderDict(headers),
                status=200,
                reason="OK",
                preload_content=False,
                decode_content=True,
            )
            return self.build_response(request, raw)

    session = requests.Session()
    session.mount("https://", Adapter())
    return session


class MsalRunner(Runner):
    def __init__(self, endpoint: Endpoint, *, with_requests: bool = False) -> None:
        self.name = "msal+requests" if with_requests else "msal"
        try:
            msal = importlib.import_module("msal")  # untyped: no stubs, no py.typed
        except ImportError:
            raise Skip("msal is not installed (pip install '.[bench]')") from None
        if not endpoint.tls and not endpoint.mock:
            raise Skip("MSAL refuses http authorities; its rows run over TLS only")
        if with_requests and not endpoint.mock:
            raise Skip("msal+requests is the in-process form; over a socket the msal row is MSAL + requests")
        options: Dict[str, Any] = {}
        origin = "https://login.microsoftonline.com" if endpoint.mock else endpoint.origin
        if endpoint.mock:
            options["http_client"] = _requests_session(origin) if with_requests else _FakeMsalHttp(origin)
        else:
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the verify= MSAL sets on its
            # session, at every request; without the variables (in this process only) verify= holds.
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                os.environ.pop(name, None)
            options["verify"] = endpoint.ca
        self.app = msal.PublicClientApplication(
            endpoint.client_id,
            authority=f"{origin}/{endpoint.tenant}",
            instance_discovery=False,
            **options,
        )
        self.scopes = [endpoint.scope]
        self.refresh_token = endpoint.refresh_token

    def once(self) -> None:
        _check(self.app.acquire_token_by_refresh_token(self.refresh_token, scopes=self.scopes))

    def close(self) -> None:
        http = getattr(self.app, "http_client", None)
        if http is not None and hasattr(http, "close"):
            http.close()


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
    if name == "httpx-async":
        return AsyncHttpxRunner(endpoint)
    if name == "oauth_core-async":
        return AsyncOauthCoreRunner(endpoint)
    if name in ("msal", "msal+requests"):
        return MsalRunner(endpoint, with_requests=name == "msal+requests")
    if name == "authlib":
        return AuthlibRunner(endpoint)
    raise ValueError(f"unknown client {name!r}")
