"""The MSAL rows: ``PublicClientApplication.acquire_token_by_refresh_token`` over TLS or in process.

Over a socket MSAL uses its own ``requests`` session with ``verify=`` the bench CA. In process
(``Endpoint.mock``) it gets either a duck-typed ``http_client`` answering from memory (``msal``:
MSAL's own logic, no HTTP stack) or a ``requests.Session`` whose adapter builds each response
from the pre-rendered bytes (``msal+requests``).
"""

from __future__ import annotations

import importlib
import io
import os
from typing import Any, Dict

from .entra import discovery_body, material
from .runner_base import Endpoint, Runner, Skip, require_access_token

__all__ = ["MsalRunner"]


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
        require_access_token(self.app.acquire_token_by_refresh_token(self.refresh_token, scopes=self.scopes))

    def close(self) -> None:
        http = getattr(self.app, "http_client", None)
        if http is not None and hasattr(http, "close"):
            http.close()
