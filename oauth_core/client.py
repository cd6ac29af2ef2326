"""The synchronous client: the protocol flows driven over one reused ``httpx.Client``.

Everything protocol-shaped lives in :mod:`oauth_core.protocol` and :mod:`oauth_core.authorize`;
this shell only sends requests (with tenacity around each send) and feeds responses back.
"""

from __future__ import annotations

import http.cookiejar
import logging
import platform
import time
import uuid
import webbrowser
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import httpx

from . import __version__
from .authority import Authority
from .authorize import PendingAuthorization, build_authorization_request, exchange_code_flow, parse_redirect
from .errors import (
    ConfigError,
    InvalidGrant,
    ResponseFormatError,
    TransientError,
    TransportError,
)
from .pkce import new_state
from .protocol import (
    HttpRequest,
    HttpResponse,
    Pairs,
    TokenFlow,
    TokenSet,
    build_token_request,
    jwks_request,
    normalize_scopes,
    parse_jwks_response,
    password_grant,
    refresh_token_grant,
    token_flow,
)
from .retry import NetworkFailure, RetryableResponse, RetryPolicy, is_retryable_response, sync_retrying

__all__ = ["EntraClient", "fetch_jwks", "send_once", "send_with_retry"]

log = logging.getLogger("oauth_core")

MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = f"oauth-core/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"


class _NoCookies(http.cookiejar.CookieJar):
    """Entra sets cookies a token client never needs; storing them costs time and leaks nothing useful."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


_NO_AUTH = httpx.Auth()  # explicit: no credentials from the environment (.netrc) on token calls
# Errors after which the service may have acted on the request (its answer was lost).
_MAYBE_SENT = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)
_RETRYABLE_NETWORK = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def network_failure(exc: httpx.HTTPError) -> Exception:
    """Classify an httpx error: retryable :class:`NetworkFailure`, or a final :class:`TransportError`."""
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return TransportError(
            "TLS certificate verification failed: set SSL_CERT_FILE (or pass a CA bundle) for your proxy or emulator"
        )
    if isinstance(exc, _RETRYABLE_NETWORK):
        return NetworkFailure(type(exc).__name__, maybe_sent=isinstance(exc, _MAYBE_SENT))
    if isinstance(exc, httpx.DecodingError):
        return ResponseFormatError("the response body could not be decoded (bad content encoding)")
    return TransportError(f"request failed: {type(exc).__name__}")


def response_too_large() -> ResponseFormatError:
    return ResponseFormatError(f"the response is larger than {MAX_RESPONSE_BYTES} bytes; refusing to read it")


def to_http_response(response: httpx.Response, body: bytes) -> HttpResponse:
    return HttpResponse(status=response.status_code, headers=tuple(response.headers.multi_items()), body=body)


def request_headers() -> Pairs:
    """Per-call headers: a fresh ``client-request-id`` and the throttling capability MSAL advertises."""
    return (("client-request-id", str(uuid.uuid4())), ("x-ms-lib-capability", "retry-after, h429"))


def transient_error(exc: BaseException, attempts: int, waits: List[float]) -> TransientError:
    """The error for retries spent on ``exc`` (a RetryableResponse or NetworkFailure)."""
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, RetryableResponse):
        status: Optional[int] = exc.response.status
        what = f"HTTP {status}"
        if retry_after is not None:
            what += f" (Retry-After {retry_after:g}s)"
    else:
        status, what = None, str(exc)
    return TransientError(
        f"the identity service kept failing: {what} after {attempts} attempt(s), {sum(waits):.1f}s of waiting",
        attempts=attempts,
        waits=waits,
        status=status,
        retry_after=retry_after,
    )


def lost_code_error(original: NetworkFailure, attempts: int, waits: List[float]) -> TransientError:
    return TransientError(
        f"the response to the code redemption was lost ({original.kind}); the retry was refused because "
        "an authorization code works once. Sign in again.",
        attempts=attempts,
        waits=waits,
    )


def send_once(http: httpx.Client, request: HttpRequest) -> HttpResponse:
    """Send one request (no redirects, no ambient auth), reading at most MAX_RESPONSE_BYTES.

    Raises:
        RetryableResponse / NetworkFailure: transient; the retry layer decides.
        TransportError / ResponseFormatError: final.
    """
    started = time.perf_counter()
    try:
        http_request = http.build_request(
            request.method, request.url, headers=request.headers, content=request.body or None
        )
        response = http.send(http_request, auth=_NO_AUTH, follow_redirects=False, stream=True)
        try:
            chunks = _read_limited(response)
        finally:
            response.close()
    except httpx.HTTPError as exc:
        log.debug("%s %s failed: %s", request.method, request.url, type(exc).__name__)
        raise network_failure(exc) from None
    result = to_http_response(response, b"".join(chunks))
    log.debug(
        "%s %s -> %d in %.1f ms", request.method, request.url, result.status, (time.perf_counter() - started) * 1000
    )
    if is_retryable_response(result):
        raise RetryableResponse(result)
    return result


def _read_limited(response: httpx.Response) -> List[bytes]:
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
        raise response_too_large()
    chunks: List[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise response_too_large()
        chunks.append(chunk)
    return chunks


def new_http_client(timeout: float) -> httpx.Client:
    """The client's own httpx.Client: keep-alive, no redirects, no cookie jar, our User-Agent."""
    return httpx.Client(
        timeout=timeout, follow_redirects=False, cookies=_NoCookies(), headers={"user-agent": USER_AGENT}
    )


def fetch_jwks(authority: Authority, *, timeout: float = 30.0, retry: Optional[RetryPolicy] = None) -> Dict[str, Any]:
    """GET the tenant's signing keys (``discovery/v2.0/keys``), with the usual retries."""
    with new_http_client(timeout) as http:
        return parse_jwks_response(send_with_retry(http, jwks_request(authority), retry or RetryPolicy())[0])


def send_with_retry(
    http: httpx.Client, request: HttpRequest, policy: RetryPolicy
) -> Tuple[HttpResponse, Optional[NetworkFailure], int, List[float]]:
    """Send with tenacity; returns the response, a failure whose response was lost, attempts and waits.

    Raises:
        TransientError: retries spent.
    """
    lost: Optional[NetworkFailure] = None
    attempts, waits = 0, []  # type: int, List[float]
    try:
        for attempt in sync_retrying(policy, waits):
            with attempt:
                attempts += 1
                try:
                    return send_once(http, request), lost, attempts, waits
                except NetworkFailure as failure:
                    lost = lost or (failure if failure.maybe_sent else None)
                    raise
    except (RetryableResponse, NetworkFailure) as exc:
        raise transient_error(exc, attempts, waits) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


class EntraClient:
    """A Microsoft Entra ID token client for one application (client id) and authority.

    Args:
        client_id: the application (client) id.
        tenant: tenant id, verified domain, ``organizations`` (default), ``common`` or ``consumers``.
        authority_host: ``https://login.microsoftonline.com`` (default), a cloud alias
            (``public``, ``usgov``, ``china``) or any https URL (http only for loopback).
        scopes: default scopes (the Azure Databricks scope when None).
        client_secret: for confidential applications only.
        http_client: an ``httpx.Client`` to use instead of the client's own.
        retry: the :class:`RetryPolicy` for transient failures.
        timeout: seconds for each request (connect, read, write, pool).
        offline_access: add ``offline_access openid profile`` to user grants (refresh and id tokens).

    Raises:
        ConfigError / InsecureAuthorityError: an invalid tenant, host or client id.
    """

    def __init__(
        self,
        client_id: str,
        tenant: str = "organizations",
        *,
        authority_host: Optional[str] = None,
        scopes: Union[None, str, Iterable[str]] = None,
        client_secret: Optional[str] = None,
        http_client: Optional[httpx.Client] = None,
        retry: Optional[RetryPolicy] = None,
        timeout: float = 30.0,
        offline_access: bool = True,
    ) -> None:
        if not client_id or not client_id.strip():
            raise ConfigError("client id is required")
        self.client_id = client_id.strip()
        self.authority = Authority.of(authority_host, tenant)
        self.scopes = normalize_scopes(scopes)
        self.offline_access = offline_access
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._client_secret = client_secret
        self._owns_http = http_client is None
        self._http = http_client or new_http_client(timeout)

    def __repr__(self) -> str:
        secret = "<redacted>" if self._client_secret else None
        return f"EntraClient(client_id={self.client_id!r}, authority={self.authority.base!r}, client_secret={secret})"

    # -- the authorization code flow -------------------------------------------------------

    def authorization_request(
        self,
        redirect_uri: str = "http://localhost",
        *,
        scopes: Union[None, str, Iterable[str]] = None,
        prompt: Optional[str] = None,
        login_hint: Optional[str] = None,
        domain_hint: Optional[str] = None,
    ) -> PendingAuthorization:
        """Start the authorization code flow: a pending request whose ``url`` goes to the browser."""
        return build_authorization_request(
            self.authority,
            self.client_id,
            redirect_uri,
            self._user_scopes(scopes),
            prompt=prompt,
            login_hint=login_hint,
            domain_hint=domain_hint,
        )

    def exchange_code(
        self, request: PendingAuthorization, redirect_url: Optional[str] = None, *, code: Optional[str] = None
    ) -> TokenSet:
        """Finish the flow: check the redirect's state, redeem the code with PKCE, check the nonce.

        Pass the ``redirect_url`` (or its query string) the browser landed on, or a bare ``code``
        when the redirect's state was checked elsewhere.

        Raises:
            StateMismatch / NonceMismatch, RedirectError, OAuthError, TransientError, ResponseFormatError.
        """
        if request.client_id != self.client_id:
            raise ConfigError("this pending request belongs to another client id")
        if (redirect_url is None) == (code is None):
            raise ConfigError("pass exactly one of redirect_url and code")
        if redirect_url is not None:
            code = parse_redirect(request, redirect_url)
        assert code is not None
        return self._drive(
            exchange_code_flow(request, code, client_secret=self._client_secret, headers=request_headers())
        )

    def acquire_interactive(
        self,
        *,
        scopes: Union[None, str, Iterable[str]] = None,
        redirect_uri: str = "http://localhost",
        prompt: Optional[str] = None,
        login_hint: Optional[str] = None,
        domain_hint: Optional[str] = None,
        timeout: float = 300.0,
        open_browser: bool = True,
        on_url: Optional[Callable[[str], None]] = None,
        listen_address: str = "127.0.0.1",
    ) -> TokenSet:
        """Sign in through the system browser and a one-shot loopback listener, then redeem the code.

        Args:
            redirect_uri: ``http://localhost`` (an ephemeral port is chosen) or one with a fixed port/path.
            timeout: seconds to wait for the browser to come back.
            open_browser: open the URL with :mod:`webbrowser`; ``on_url`` is called with it either way
                (and is how a caller shows it when no browser can open).
            listen_address: where the listener binds (loopback only).

        Raises:
            InteractionTimeout: nobody finished signing in within ``timeout``.
            (and everything :meth:`exchange_code` raises)
        """
        from .loopback import LoopbackListener

        state = new_state()
        with LoopbackListener(redirect_uri, state, listen_address=listen_address) as listener:
            pending = build_authorization_request(
                self.authority,
                self.client_id,
                listener.redirect_uri,
                self._user_scopes(scopes),
                prompt=prompt,
                login_hint=login_hint,
                domain_hint=domain_hint,
                state=state,
            )
            if on_url is not None:
                on_url(pending.url)
            if open_browser:
                webbrowser.open(pending.url)
            query = listener.wait(timeout)
        return self.exchange_code(pending, "?" + query)

    # -- direct grants -----------------------------------------------------------------------

    def acquire_by_password(
        self, username: str, password: str, *, scopes: Union[None, str, Iterable[str]] = None
    ) -> TokenSet:
        """The resource owner password grant (ROPC). Fails for MFA, federated and personal accounts."""
        return self._grant(password_grant(username, password), self._user_scopes(scopes))

    def refresh(self, refresh_token: str, *, scopes: Union[None, str, Iterable[str]] = None) -> TokenSet:
        """Redeem a refresh token; keep the new one the response carries (Entra rotates them)."""
        return self._grant(refresh_token_grant(refresh_token), self._user_scopes(scopes))

    # -- plumbing ----------------------------------------------------------------------------

    def _user_scopes(self, scopes: Union[None, str, Iterable[str]]) -> tuple[str, ...]:
        base = self.scopes if scopes is None else normalize_scopes(scopes)
        return normalize_scopes(base, offline_access=self.offline_access)

    def _grant(self, grant: Pairs, scopes: tuple[str, ...]) -> TokenSet:
        request = build_token_request(
            self.authority,
            self.client_id,
            grant,
            scopes=scopes,
            client_secret=self._client_secret,
            headers=request_headers(),
        )
        return self._drive(token_flow(request))

    def _drive(self, flow: TokenFlow) -> TokenSet:
        request = next(flow)
        while True:
            response, lost, attempts, waits = send_with_retry(self._http, request, self.retry)
            try:
                request = flow.send(response)
            except StopIteration as stop:
                result: TokenSet = stop.value
                return result
            except InvalidGrant:
                if request.single_use and lost is not None:
                    raise lost_code_error(lost, attempts, waits) from None
                raise

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> EntraClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
