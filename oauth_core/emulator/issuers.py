"""OIDC issuers the emulator hosts for workload identity federation (a Kubernetes cluster, a CI service).

Each issuer has its own RSA key (never the tenant's), an OIDC discovery document and a JWKS at
``/federation/<name>/...``, and mints tokens shaped like Kubernetes' projected service-account
tokens (``aud`` a list, ``kubernetes.io`` claims for ``system:serviceaccount:<ns>:<name>`` subjects).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .config import FEDERATION_AUDIENCE
from .keys import b64url

__all__ = ["FederationIssuers", "IssuerKey", "MAX_LIFETIME", "MIN_LIFETIME"]

MIN_LIFETIME, MAX_LIFETIME = 60, 86400
_LOCK = threading.Lock()
_KEYS: Dict[str, IssuerKey] = {}


@dataclass(frozen=True)
class IssuerKey:
    """An issuer's RSA key; ``kid`` is the base64url SHA-256 of its public key (as Kubernetes does)."""

    private_key: rsa.RSAPrivateKey
    kid: str

    def jwk(self) -> Dict[str, Any]:
        """The public key as a JWK."""
        numbers = self.private_key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256", "n": b64url(n), "e": b64url(e)}

    def __repr__(self) -> str:
        return f"IssuerKey(kid={self.kid!r})"


def _key(name: str) -> IssuerKey:
    with _LOCK:  # one key per issuer name and process: starting emulators stays cheap
        if name not in _KEYS:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            der = private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            _KEYS[name] = IssuerKey(private, b64url(hashlib.sha256(der).digest()))
        return _KEYS[name]


class FederationIssuers:
    """The hosted issuers by name; URLs are built on the emulator's own origin."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names: Tuple[str, ...] = tuple(names)

    def key(self, name: str) -> IssuerKey:
        """The issuer's signing key."""
        return _key(name)

    @staticmethod
    def url(origin: str, name: str) -> str:
        """The issuer URL (the ``iss`` of its tokens)."""
        return f"{origin}/federation/{name}"

    def named(self, origin: str, issuer: str) -> Optional[str]:
        """The hosted issuer whose URL is ``issuer``, or None."""
        return next((n for n in self.names if self.url(origin, n) == issuer), None)

    def discovery(self, origin: str, name: str) -> Dict[str, Any]:
        """The OIDC discovery document, as a Kubernetes API server publishes it."""
        url = self.url(origin, name)
        return {
            "issuer": url,
            "jwks_uri": f"{url}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self, name: str) -> Dict[str, Any]:
        """The issuer's JWKS."""
        return {"keys": [self.key(name).jwk()]}

    def mint(
        self,
        origin: str,
        name: str,
        *,
        subject: str,
        now: int,
        audience: str = FEDERATION_AUDIENCE,
        lifetime: int = 3600,
    ) -> str:
        """A signed token of issuer ``name`` for ``subject``.

        Raises:
            ValueError: an unknown issuer, an empty subject or audience, or a lifetime outside 60-86400 s.
        """
        if name not in self.names:
            raise ValueError(f"no federation issuer named {name!r}")
        if not subject or not audience:
            raise ValueError("a federated token needs a subject and an audience")
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise ValueError(f"a federated token lives {MIN_LIFETIME} to {MAX_LIFETIME} seconds")
        claims: Dict[str, Any] = {
            "aud": [audience],
            "exp": now + lifetime,
            "iat": now,
            "iss": self.url(origin, name),
            "jti": str(uuid.uuid4()),
        }
        parts = subject.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            account = {"name": parts[3], "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, subject))}
            claims["kubernetes.io"] = {"namespace": parts[2], "serviceaccount": account}
        claims.update({"nbf": now, "sub": subject})
        key = self.key(name)
        segments = [
            b64url(json.dumps(p, separators=(",", ":")).encode()) for p in ({"alg": "RS256", "kid": key.kid}, claims)
        ]
        signing_input = ".".join(segments).encode("ascii")
        signature = key.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode('ascii')}.{b64url(signature)}"
