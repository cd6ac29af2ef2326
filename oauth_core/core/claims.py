"""Reading JWTs: unverified claims for expiry tracking, and signature checks with the ``crypto`` extra.

Reading claims needs no key and imports nothing heavy (no pyjwt, no cryptography), so
``oauth-core decode`` starts fast. The names say what is trusted: :func:`unverified_claims`
checks the token's *shape* strictly but not who signed it; :func:`verify_signature` does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, Mapping, NamedTuple, Optional, Sequence, Tuple

from .errors import ConfigError, SignatureVerificationError, TokenDecodeError, UnknownSigningKey

__all__ = [
    "LazyClaims",
    "TokenInfo",
    "decode_claims",
    "inspect_token",
    "unverified_claims",
    "unverified_header",
    "verify_signature",
    "verify_with_refresh",
]

MAX_TOKEN_LENGTH = 64 * 1024
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
_TIME_CLAIMS = ("iat", "nbf", "exp")
_TIME_LIMIT = 10**11  # epoch seconds, about the year 5100
_ALLOWED_ALGORITHMS = ("RS256",)


def _b64url_json(segment: str, what: str) -> Dict[str, Any]:
    if not _SEGMENT.fullmatch(segment):
        raise TokenDecodeError(f"JWT {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as exc:  # Unicode/JSON errors are ValueErrors
        raise TokenDecodeError(f"JWT {what} is not base64url-encoded JSON") from exc
    if not isinstance(value, dict):
        raise TokenDecodeError(f"JWT {what} is not a JSON object")
    return value


def _split(token: str) -> Tuple[str, str, str]:
    if not isinstance(token, str):
        raise TokenDecodeError("a JWT must be a string")
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenDecodeError(f"JWT longer than {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenDecodeError("this is an encrypted token (JWE); its claims cannot be read")
    if len(parts) != 3:
        raise TokenDecodeError(f"a JWT has 3 dot-separated segments, this has {len(parts)}")
    return parts[0], parts[1], parts[2]


def _check_claims(claims: Dict[str, Any]) -> Dict[str, Any]:
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TokenDecodeError(f"JWT claim {name!r} is not a number")
        if not -_TIME_LIMIT <= value <= _TIME_LIMIT:  # also refuses NaN; huge ints never reach float()
            raise TokenDecodeError(f"JWT claim {name!r} is out of range")
    return claims


def _header(segment: str) -> Dict[str, Any]:
    header = _b64url_json(segment, "header")
    if not isinstance(header.get("alg"), str):
        raise TokenDecodeError("JWT header has no 'alg'")
    return header


def _decode(token: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    header_b64, payload_b64, _signature = _split(token)
    return _header(header_b64), _check_claims(_b64url_json(payload_b64, "payload"))


def unverified_header(token: str) -> Dict[str, Any]:
    """The JOSE header of a JWT, without checking the signature.

    Raises:
        TokenDecodeError: not a well-formed JWS compact JWT.
    """
    return _header(_split(token)[0])


def unverified_claims(token: str) -> Dict[str, Any]:
    """The claims of a JWT, without checking the signature.

    The shape is checked strictly: three base64url segments, a JSON-object header with ``alg``,
    a JSON-object payload whose ``iat``/``nbf``/``exp`` are numbers.

    Raises:
        TokenDecodeError: not a well-formed JWT.
    """
    return _decode(token)[1]


decode_claims = unverified_claims


def _aware(value: Any) -> Optional[datetime]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


class TokenInfo(NamedTuple):
    """What a JWT says about itself (nothing here is verified). Immutable.

    A NamedTuple rather than a frozen dataclass: ``oauth-core decode`` should not pay for
    importing :mod:`dataclasses` (and :mod:`inspect`) at start-up.

    Attributes:
        header, claims: the decoded JSON objects.
        issued_at, not_before, expires_at: ``iat``/``nbf``/``exp`` as aware UTC datetimes, or None.
        seconds_left: ``exp`` minus now (negative once expired), or None without ``exp``.
        expired: True once ``exp`` has passed; False when there is no ``exp``.
    """

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    issued_at: Optional[datetime]
    not_before: Optional[datetime]
    expires_at: Optional[datetime]
    seconds_left: Optional[float]
    expired: bool

    def __repr__(self) -> str:
        return f"TokenInfo(alg={self.header.get('alg')!r}, expires_at={self.expires_at!r}, expired={self.expired})"


def inspect_token(token: str, *, now: Optional[float] = None) -> TokenInfo:
    """Decode a JWT's header and claims and work out its lifetime at ``now`` (epoch seconds).

    Raises:
        TokenDecodeError: not a well-formed JWT.
    """
    header, claims = _decode(token)
    now = time.time() if now is None else now
    exp = claims.get("exp")
    seconds_left = float(exp) - now if isinstance(exp, (int, float)) else None
    return TokenInfo(
        header=header,
        claims=claims,
        issued_at=_aware(claims.get("iat")),
        not_before=_aware(claims.get("nbf")),
        expires_at=_aware(exp),
        seconds_left=seconds_left,
        expired=seconds_left is not None and seconds_left <= 0,
    )


def verify_with_refresh(
    token: str,
    get_jwks: Callable[[bool], Mapping[str, Any]],
    *,
    issuer: Optional[str] = None,
    audience: Optional[str] = None,
) -> str:
    """:func:`verify_signature` with a key set from ``get_jwks(refresh)``, refetched once on an unknown kid.

    Keys roll over: a token signed with a key newer than a cached JWKS earns one refetch, no more.
    """
    try:
        return verify_signature(token, get_jwks(False), issuer=issuer, audience=audience)
    except UnknownSigningKey:
        return verify_signature(token, get_jwks(True), issuer=issuer, audience=audience)


def verify_signature(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: Optional[str] = None,
    audience: Optional[str] = None,
    algorithms: Sequence[str] = _ALLOWED_ALGORITHMS,
) -> str:
    """Check a JWT's signature against a JWKS (the tenant's ``discovery/v2.0/keys``).

    Only RS256 is accepted by default, so ``alg: none`` and HS256-with-the-public-key tokens fail.
    Expiry is not checked here (see :func:`inspect_token`); issuer and audience only when given.

    Returns:
        The ``kid`` of the key that verified the token.

    Raises:
        SignatureVerificationError: no key with the token's kid, bad signature, wrong alg/iss/aud.
        TokenDecodeError: not a well-formed JWT.
        ConfigError: the ``crypto`` extra (cryptography) is not installed.
    """
    header = unverified_header(token)
    alg = header.get("alg")
    if alg not in algorithms or str(alg).lower() == "none" or str(alg).upper().startswith("HS"):
        raise SignatureVerificationError(f"JWT algorithm {alg!r} is not accepted (only {', '.join(algorithms)})")
    kid = header.get("kid") or header.get("x5t")
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise SignatureVerificationError("the JWKS has no 'keys' list")
    key_dict = next((k for k in keys if isinstance(k, dict) and kid is not None and k.get("kid") == kid), None)
    if key_dict is None:
        raise UnknownSigningKey(f"no key with kid {kid!r} in the JWKS")
    try:
        import jwt
        from jwt.algorithms import has_crypto
    except ImportError as exc:  # pragma: no cover - pyjwt is a runtime dependency
        raise ConfigError("signature checks need pyjwt") from exc
    if not has_crypto:
        raise ConfigError("signature checks need the crypto extra: pip install 'oauth-core[crypto]'")
    try:
        key = jwt.PyJWK(key_dict, algorithm=str(alg))
        jwt.decode(
            token,
            key=key.key,
            algorithms=list(algorithms),
            audience=audience,
            issuer=issuer,
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": audience is not None,
                "verify_iss": issuer is not None,
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise SignatureVerificationError("JWT audience does not match") from exc
    except jwt.InvalidIssuerError as exc:
        raise SignatureVerificationError("JWT issuer does not match") from exc
    except (jwt.PyJWTError, ValueError, TypeError, NotImplementedError) as exc:
        raise SignatureVerificationError(f"JWT signature check failed: {type(exc).__name__}") from exc
    return str(kid)


class LazyClaims(Mapping[str, Any]):
    """A cached token's claims, decoded (unverified) the first time they are read.

    A cache hit builds the :class:`TokenSet` without decoding the access token: callers that read
    ``tokens.claims`` pay for the decode, once; the others never do. A token that does not decode
    reads as no claims.
    """

    __slots__ = ("_decoded", "_token")

    def __init__(self, token: str) -> None:
        self._token = token
        self._decoded: Optional[Dict[str, Any]] = None

    def _claims(self) -> Dict[str, Any]:
        if self._decoded is None:
            try:
                self._decoded = unverified_claims(self._token)
            except TokenDecodeError:
                self._decoded = {}
        return self._decoded

    def __getitem__(self, name: str) -> Any:
        return self._claims()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims())

    def __len__(self) -> int:
        return len(self._claims())

    def __repr__(self) -> str:
        return repr(self._claims())
