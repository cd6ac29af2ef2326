"""Certificate credentials: the client assertion JWT of RFC 7523 (``private_key_jwt``), signed locally.

A confidential client proves itself with a short-lived JWT signed by the private key of a
certificate registered on the app (entra-protocol.md §3.3): header ``alg`` PS256 (or RS256 with
the SHA-1 ``x5t`` MSAL historically sends), ``typ`` JWT and ``x5t#S256`` (the base64url SHA-256
thumbprint of the certificate's DER); claims ``aud`` = the token endpoint URL, ``iss`` = ``sub``
= the client id, a unique ``jti``, ``nbf`` = ``iat`` = now and ``exp`` 10 minutes later.

Needs the ``crypto`` extra (cryptography); without it, loading a certificate raises
:class:`~oauth_core.errors.ConfigError` naming the extra.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import jwt

from .errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["ASSERTION_LIFETIME", "CRYPTO_HINT", "ClientCertificate"]

ASSERTION_LIFETIME = 600  # seconds; Entra accepts at most 10 minutes (§3.3)
CRYPTO_HINT = "certificate credentials need the crypto extra: pip install 'oauth-core[crypto]'"
_ALGORITHMS = ("PS256", "RS256")
_MIN_KEY_BITS = 2048
_PEM_KEY = re.compile(rb"-----BEGIN ((?:RSA |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL)
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, repr=False)
class ClientCertificate:
    """A certificate's RSA private key and DER, able to sign client assertions.

    Build it with :meth:`from_pem` or :meth:`from_file`, which check that key and certificate
    belong together.

    Attributes:
        private_key: the RSA private key (never shown in ``repr``).
        certificate_der: the certificate, DER-encoded.
        algorithm: ``PS256`` (default, current guidance) or ``RS256``.
    """

    private_key: RSAPrivateKey
    certificate_der: bytes
    algorithm: str = "PS256"

    def __post_init__(self) -> None:
        if self.algorithm not in _ALGORITHMS:
            raise ConfigError("the client assertion algorithm must be PS256 or RS256")

    @classmethod
    def from_pem(
        cls,
        private_key_pem: bytes,
        certificate_pem: bytes,
        password: Optional[bytes] = None,
        *,
        algorithm: str = "PS256",
    ) -> ClientCertificate:
        """Load a PEM private key (optionally encrypted) and its PEM certificate (the first one is used).

        Raises:
            ConfigError: cryptography is missing; the key or certificate cannot be read; the
                key is not RSA of at least 2048 bits; the certificate is not the key's.
        """
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
        except ImportError as exc:
            raise ConfigError(CRYPTO_HINT) from exc
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=password)
        except TypeError:
            raise ConfigError("the private key is encrypted: a password is needed (or was given for a plain key)")
        except ValueError:
            raise ConfigError("the private key cannot be read (not PEM, or a wrong password)")
        match = _PEM_CERT.search(certificate_pem)
        if match is None:
            raise ConfigError("no PEM certificate found (-----BEGIN CERTIFICATE-----)")
        try:
            cert = x509.load_pem_x509_certificate(match.group(0))
        except ValueError:
            raise ConfigError("the certificate cannot be read")
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("client assertions need an RSA private key (PS256/RS256)")
        if key.key_size < _MIN_KEY_BITS:
            raise ConfigError(f"the RSA key has {key.key_size} bits; Entra needs at least {_MIN_KEY_BITS}")
        cert_key = cert.public_key()
        if not isinstance(cert_key, rsa.RSAPublicKey) or cert_key.public_numbers() != key.public_key().public_numbers():
            raise ConfigError("the certificate does not belong to the private key")
        return cls(key, cert.public_bytes(serialization.Encoding.DER), algorithm)

    @classmethod
    def from_file(
        cls, path: Union[str, Path], password: Optional[bytes] = None, *, algorithm: str = "PS256"
    ) -> ClientCertificate:
        """Load one PEM file holding the private key and the certificate (in any order).

        Raises:
            ConfigError: the file cannot be read or lacks the key or the certificate (and
                everything :meth:`from_pem` raises).
        """
        try:
            data = Path(path).read_bytes()
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
            reason = exc.strerror if isinstance(exc, OSError) else "not a valid path"
            raise ConfigError(f"cannot read the certificate file {path!r}: {reason}") from None
        key = _PEM_KEY.search(data)
        if key is None:
            raise ConfigError(f"the certificate file {path} holds no PEM private key")
        return cls.from_pem(key.group(0), data, password, algorithm=algorithm)

    @property
    def thumbprint_sha256(self) -> str:
        """The ``x5t#S256`` header value: base64url SHA-256 of the certificate's DER."""
        return _b64url(hashlib.sha256(self.certificate_der).digest())

    @property
    def thumbprint_sha1(self) -> str:
        """The ``x5t`` header value (RS256): base64url SHA-1 of the certificate's DER."""
        return _b64url(hashlib.sha1(self.certificate_der).digest())  # noqa: S324 - a thumbprint, not a signature

    def assertion(self, client_id: str, audience: str, *, now: float, jti: Optional[str] = None) -> str:
        """A signed client assertion for one token request.

        Args:
            client_id: the application (client) id: ``iss`` and ``sub``.
            audience: the token endpoint URL the assertion is sent to: ``aud``.
            now: epoch seconds: ``nbf`` and ``iat``; ``exp`` is 10 minutes later.
            jti: the unique id (a fresh UUID4 when None).

        Returns:
            The compact JWT.
        """
        issued = int(now)
        claims: Dict[str, Any] = {
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti or str(uuid.uuid4()),
            "nbf": issued,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        headers = {"typ": "JWT", "x5t#S256": self.thumbprint_sha256}
        if self.algorithm == "RS256":
            headers["x5t"] = self.thumbprint_sha1
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=headers)

    def __repr__(self) -> str:
        return f"ClientCertificate(x5t#S256={self.thumbprint_sha256!r}, algorithm={self.algorithm!r})"
