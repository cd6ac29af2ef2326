"""The authorization code flow's first half: the authorize URL, the pending request, the redirect.

A :class:`PendingAuthorization` holds everything needed to finish the flow later (state, nonce,
PKCE verifier, redirect URI) and round-trips through JSON, so ``oauth-core authorize-url`` and
``oauth-core exchange`` can run in different processes. Pure: no I/O here.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlsplit

from .authority import Authority, is_loopback_host
from .errors import ConfigError, NonceMismatch, RedirectError, StateMismatch, oauth_error_from_body
from .grants import TokenFlow, authorization_code_grant, build_token_request, token_flow, with_claims
from .messages import HttpRequest, Pairs, TokenSet, encode_form
from .pkce import code_challenge, new_code_verifier, new_nonce, new_state, values_match

__all__ = [
    "PROMPTS",
    "PendingAuthorization",
    "build_authorization_request",
    "exchange_code_flow",
    "parse_redirect",
    "redirect_state",
]

PROMPTS = ("login", "none", "consent", "select_account", "create")
_FORMAT_VERSION = 1
MAX_REDIRECT_LENGTH = 16 * 1024


def check_redirect_uri(redirect_uri: str) -> str:
    """A redirect URI is https, or http on a loopback host (RFC 8252 §7.3); no fragment.

    Raises:
        ConfigError: anything else.
    """
    try:
        parts = urlsplit(redirect_uri)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError("redirect URI is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("redirect URI must be an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError("an http redirect URI must point at localhost or a loopback address")
    if parts.fragment or parts.username or parts.password:
        raise ConfigError("redirect URI must have no fragment and no credentials")
    return redirect_uri


@dataclass(frozen=True)
class PendingAuthorization:
    """An authorization request waiting for its redirect. Holds secrets: keep it private.

    Attributes:
        authority_host, tenant, client_id, redirect_uri, scopes: what the request asked for.
        state, nonce, code_verifier: the request's one-time secrets.
        url: the authorize URL to open in a browser.
        created_at: epoch seconds.
    """

    authority_host: str
    tenant: str
    client_id: str
    redirect_uri: str
    scopes: Tuple[str, ...]
    state: str
    nonce: str
    code_verifier: str
    url: str
    created_at: float
    claims: Optional[str] = None  # the claims request sent, sent again with the code

    @property
    def authority(self) -> Authority:
        return Authority.of(self.authority_host, self.tenant)

    def to_json(self) -> str:
        data: Dict[str, Any] = {"version": _FORMAT_VERSION, **asdict(self)}
        data["scopes"] = list(self.scopes)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PendingAuthorization:
        """Load a pending request saved by :meth:`to_json`.

        Raises:
            ConfigError: the text is not a pending request of this version.
        """
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise ConfigError("the pending authorization request is not valid JSON") from None
        version = data.pop("version", None) if isinstance(data, dict) else None
        if type(version) is not int or version != _FORMAT_VERSION:
            raise ConfigError("the pending authorization request has an unknown format")
        strings = ("authority_host", "tenant", "client_id", "redirect_uri", "state", "nonce", "code_verifier", "url")
        scopes = data.get("scopes")
        claims = data.get("claims")
        if (
            set(data) - {"claims"} != set(strings) | {"scopes", "created_at"}
            or not (claims is None or (isinstance(claims, str) and claims))
            or not all(isinstance(data[k], str) and data[k] for k in strings)
            or not isinstance(scopes, list)
            or not all(isinstance(s, str) for s in scopes)
            or type(data["created_at"]) not in (int, float)
        ):
            raise ConfigError("the pending authorization request is incomplete or malformed")
        data["scopes"] = tuple(scopes)
        return cls(**data)

    def __repr__(self) -> str:
        return (
            f"PendingAuthorization(authority={self.authority_host}/{self.tenant}, client_id={self.client_id!r}, "
            f"redirect_uri={self.redirect_uri!r}, scopes={self.scopes!r}, state=<redacted>, nonce=<redacted>, "
            "code_verifier=<redacted>)"
        )


def build_authorization_request(
    authority: Authority,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    *,
    prompt: Optional[str] = None,
    login_hint: Optional[str] = None,
    domain_hint: Optional[str] = None,
    state: Optional[str] = None,
    nonce: Optional[str] = None,
    code_verifier: Optional[str] = None,
    now: Optional[float] = None,
    claims: Optional[str] = None,
) -> PendingAuthorization:
    """Build the authorize URL with fresh state, nonce and PKCE (S256) values (and ``claims``, the
    JSON text of a claims request, when given).

    Raises:
        ConfigError: an empty client id, a bad redirect URI or prompt.
    """
    if not client_id:
        raise ConfigError("client id is required")
    check_redirect_uri(redirect_uri)
    if prompt is not None and prompt not in PROMPTS:
        raise ConfigError(f"prompt must be one of {', '.join(PROMPTS)}")
    state = state or new_state()
    nonce = nonce or new_nonce()
    code_verifier = code_verifier or new_code_verifier()
    params: Pairs = (
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri),
        ("response_mode", "query"),
        ("scope", " ".join(scopes)),
        ("state", state),
        ("code_challenge", code_challenge(code_verifier)),
        ("code_challenge_method", "S256"),
        ("nonce", nonce),
    )
    optional = (("prompt", prompt), ("login_hint", login_hint), ("domain_hint", domain_hint), ("claims", claims))
    params += tuple((k, v) for k, v in optional if v)
    return PendingAuthorization(
        authority_host=authority.host,
        tenant=authority.tenant,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(scopes),
        state=state,
        nonce=nonce,
        code_verifier=code_verifier,
        url=f"{authority.authorize_endpoint}?{encode_form(params)}",
        created_at=time.time() if now is None else now,
        claims=claims,
    )


def _query_params(redirect: str) -> Tuple[Dict[str, str], Optional[Tuple[str, str, str, Optional[int]]]]:
    """The redirect's parameters (duplicates refused) and, for a full URL, its scheme/host/path/port."""
    redirect = redirect.strip()
    if not redirect:
        raise RedirectError("the redirect URL is empty")
    if len(redirect) > MAX_REDIRECT_LENGTH:
        raise RedirectError("the redirect URL is too long")
    try:
        redirect.encode("utf-8")
    except UnicodeEncodeError:
        raise RedirectError("the redirect URL holds undecodable bytes") from None
    origin = None
    if "://" in redirect:
        try:
            parts = urlsplit(redirect)
            origin = (parts.scheme.lower(), (parts.hostname or "").lower(), parts.path or "/", parts.port)
        except ValueError as exc:
            raise RedirectError("the redirect URL is not a valid URL") from exc
        query = parts.query or parts.fragment  # query mode; a fragment-mode paste still parses
    else:
        query = redirect.lstrip("?").split("#", 1)[0]
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise RedirectError("the redirect's query string is malformed") from exc
    params: Dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise RedirectError(f"the redirect repeats the parameter {key!r}")
        params[key] = value
    return params, origin


def redirect_state(redirect: str) -> Optional[str]:
    """The ``state`` a redirect URL or query carries, if any (for finding its pending request)."""
    return _query_params(redirect)[0].get("state")


def _same_endpoint(origin: Tuple[str, str, str, Optional[int]], redirect_uri: str) -> bool:
    expected = urlsplit(redirect_uri)
    default = {"http": 80, "https": 443}
    got_port = origin[3] or default.get(origin[0])
    want_port = expected.port or default.get(expected.scheme)
    same_host = origin[1] == (expected.hostname or "").lower() or (
        is_loopback_host(origin[1]) and is_loopback_host(expected.hostname or "")
    )
    # Entra accepts any port for an `http://localhost` registration, so a loopback port may differ.
    port_ok = got_port == want_port or (expected.port is None and is_loopback_host(origin[1]))
    return origin[0] == expected.scheme and same_host and (expected.path or "/") == origin[2] and port_ok


def parse_redirect(pending: PendingAuthorization, redirect: str) -> str:
    """Check a redirect (full URL, or its query string) against the pending request; return the code.

    ``state`` is compared in constant time before anything else is trusted. An ``error`` in the
    redirect becomes the typed :class:`OAuthError`, built from ``error``, ``error_description``
    and ``error_uri`` only.

    Raises:
        StateMismatch: the state is missing or wrong.
        OAuthError: Entra redirected with an error.
        RedirectError: malformed, duplicated parameters, another endpoint, or no code.
    """
    params, origin = _query_params(redirect)
    if origin is not None and not _same_endpoint(origin, pending.redirect_uri):
        raise RedirectError("the redirect URL does not point at this request's redirect URI")
    state = params.get("state")
    if state is None:
        if "error" in params:
            raise oauth_error_from_body(
                {k: params[k] for k in ("error", "error_description", "error_uri") if k in params}
            )
        raise StateMismatch("the redirect carries no state: it does not answer this request")
    if not values_match(pending.state, state):
        raise StateMismatch("the redirect's state does not match the pending request")
    if "error" in params:
        raise oauth_error_from_body({k: params[k] for k in ("error", "error_description", "error_uri") if k in params})
    code = params.get("code")
    if not code:
        raise RedirectError("the redirect carries no authorization code")
    return code


def exchange_code_flow(
    pending: PendingAuthorization,
    code: str,
    *,
    client_secret: Optional[str] = None,
    client_assertion: Optional[str] = None,
    headers: Pairs = (),
    clock: Callable[[], float] = time.time,
) -> TokenFlow:
    """Redeem a code with the pending request's verifier; check the id_token's nonce.

    ``clock`` (epoch seconds) dates the response, so the tokens' expiry counts from it: pass the
    client's clock.

    Raises:
        NonceMismatch: the id_token's nonce is missing or differs.
        (and everything :func:`~oauth_core.core.messages.parse_token_response` raises)
    """
    request: HttpRequest = build_token_request(
        pending.authority,
        pending.client_id,
        with_claims(authorization_code_grant(code, pending.redirect_uri, pending.code_verifier), pending.claims),
        scopes=pending.scopes,
        client_secret=client_secret,
        client_assertion=client_assertion,
        headers=headers,
    )
    tokens: TokenSet = yield from token_flow(request, clock=clock)
    if tokens.id_token is not None:
        nonce = (tokens.id_token_claims or {}).get("nonce")
        if not isinstance(nonce, str) or not values_match(pending.nonce, nonce):
            raise NonceMismatch("the id_token's nonce does not match the pending request")
    return tokens
