"""Client authentication at the token endpoint (entra-protocol.md §3.1, §3.3).

Public clients must present no credential (AADSTS700025). Confidential clients present a secret
(in the body or HTTP Basic, RFC 6749 §2.3.1) or a certificate-signed assertion (RFC 7523
``private_key_jwt``, RS256 or PS256, matched by ``x5t`` or ``x5t#S256``); none gives AADSTS7000218.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple
from urllib.parse import unquote

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from ..core.pkce import values_match
from .aadsts import Refusal, refusal
from .config import Client, EmulatorConfig
from .keys import thumbprints
from .wire import Request

__all__ = ["ASSERTION_TYPE", "authenticate"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ALGORITHMS = ("RS256", "PS256")
_LEEWAY = 300


@functools.lru_cache(maxsize=64)
def _certificate(pem: str) -> Tuple[str, str, PublicKeyTypes]:
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    x5t, x5t_s256 = thumbprints(cert.public_bytes(serialization.Encoding.DER))
    return x5t, x5t_s256, cert.public_key()


def _basic(request: Request) -> Optional[Tuple[str, str]]:
    header = request.header("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


def _bad_assertion(reason: str) -> Refusal:
    return refusal(700027, reason=reason)


def _key_for(client: Client, header: Mapping[str, Any]) -> PublicKeyTypes:
    x5t, x5t_s256 = header.get("x5t"), header.get("x5t#S256")
    for pem in client.certificates:
        try:
            thumb, thumb_s256, key = _certificate(pem)
        except ValueError:
            continue
        if (x5t and x5t == thumb) or (x5t_s256 and x5t_s256 == thumb_s256):
            return key
    raise _bad_assertion(f"The key was not found., Thumbprint of key used by client: '{x5t or x5t_s256}'")


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise _bad_assertion("The assertion has no 'exp' claim.")
    if exp + _LEEWAY < now:
        raise _bad_assertion("The assertion has expired.")
    if isinstance(nbf, (int, float)) and nbf - _LEEWAY > now:
        raise _bad_assertion("The assertion is not yet valid.")


def verify_assertion(client: Client, assertion: str, audiences: Sequence[str], now: float) -> Dict[str, Any]:
    """Check a client assertion: alg, registered certificate, signature, aud, iss = sub = client id, times.

    Raises:
        Refusal: AADSTS700027 (invalid_client, 401) with the reason.
    """
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise _bad_assertion("The client assertion is not a JWT.")
    alg = header.get("alg")
    if alg not in _ALGORITHMS:
        raise _bad_assertion(f"The algorithm {alg!r} is not supported; use RS256 or PS256.")
    key = _key_for(client, header)
    try:
        claims: Dict[str, Any] = jwt.decode(
            assertion,
            key=key,  # type: ignore[arg-type]
            algorithms=[str(alg)],
            audience=list(audiences),
            issuer=client.client_id,
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["aud", "iss"]},
        )
    except jwt.InvalidAudienceError:
        raise _bad_assertion("The audience claim is not this tenant's token endpoint.")
    except jwt.InvalidIssuerError:
        raise _bad_assertion("The issuer claim is not the client id.")
    except jwt.PyJWTError:
        raise _bad_assertion("The signature could not be verified with the registered certificate.")
    if claims.get("sub") != client.client_id:
        raise _bad_assertion("The subject claim is not the client id.")
    _check_times(claims, now)
    return claims


def authenticate(
    config: EmulatorConfig,
    request: Request,
    form: Mapping[str, str],
    *,
    tenant_segment: str,
    audiences: Sequence[str],
    now: float,
    federated: Optional[Callable[[Client, str], bool]] = None,
) -> Tuple[Client, str]:
    """Identify the client and check its credential.

    ``federated(client, assertion)`` may claim an assertion as a federated one: it returns True when
    it accepted it, False when the assertion is not federated, and raises a refusal otherwise.

    Returns:
        The client and its ``appidacr``: ``0`` public, ``1`` secret, ``2`` certificate.

    Raises:
        Refusal: 900144 (no client_id), 700016 (unknown client), 700025, 7000218, 7000215, 700027.
    """
    basic = _basic(request)
    client_id = form.get("client_id") or (basic[0] if basic else None)
    secret = form.get("client_secret", basic[1] if basic else None)
    assertion = form.get("client_assertion")
    if not client_id:
        raise refusal(900144, name="client_id")
    client = config.client(client_id)
    if client is None:
        raise refusal(700016, client_id=client_id, tenant=tenant_segment)
    if not client.is_confidential:
        if secret is not None or assertion is not None:
            raise refusal(700025)
        return client, "0"
    if assertion is not None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise _bad_assertion(f"client_assertion_type must be {ASSERTION_TYPE}.")
        if federated is not None and federated(client, assertion):
            return client, "2"
        verify_assertion(client, assertion, audiences, now)
        return client, "2"
    if secret is not None:
        if client.secret and values_match(client.secret, secret):
            return client, "1"
        raise refusal(7000215, client_id=client.client_id)
    raise refusal(7000218)
