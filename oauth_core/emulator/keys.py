"""Key material: RSA token-signing keys with self-signed certificates, the JWKS, and a throwaway TLS CA.

Keys are generated once per process and cached, so starting another emulator costs nothing. The
signing keys are 2048-bit RSA as Entra's are (RFC 7518 §3.3 asks at least that for RS256); the TLS
CA and server certificate use P-256, which is quick to generate.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["SigningKey", "TlsMaterial", "b64url", "idp_signing_key", "signing_keys", "thumbprints", "tls_material"]

_LOCK = threading.Lock()
_SIGNING: List[SigningKey] = []
_TLS: List[TlsMaterial] = []
_IDP: List[SigningKey] = []


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprints(cert_der: bytes) -> Tuple[str, str]:
    """The certificate's ``x5t`` (SHA-1) and ``x5t#S256`` (SHA-256) thumbprints, base64url."""
    return b64url(hashlib.sha1(cert_der).digest()), b64url(hashlib.sha256(cert_der).digest())  # noqa: S324


@dataclass(frozen=True)
class SigningKey:
    """An RSA signing key and its self-signed certificate; ``kid`` is the certificate's ``x5t``."""

    private_key: rsa.RSAPrivateKey
    cert_der: bytes
    kid: str

    def sign(self, data: bytes) -> bytes:
        """An RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256) of ``data``."""
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def verifies(self, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's RS256 signature of ``data``."""
        try:
            self.private_key.public_key().verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def jwk(self, issuer: str) -> Dict[str, Any]:
        """The key as Entra publishes it (entra-protocol.md §1.4), keys in Entra's order."""
        numbers = self.private_key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(n),
            "e": b64url(e),
            "x5c": [base64.b64encode(self.cert_der).decode("ascii")],
            "cloud_instance_name": "microsoftonline.com",
            "issuer": issuer,
        }

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


@dataclass(frozen=True)
class TlsMaterial:
    """A CA certificate and a server certificate (with its key) for 127.0.0.1, ::1 and localhost."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:
        return "TlsMaterial(<loopback server certificate>)"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_signing_key(index: int) -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(f"oauth-core emulator signing key {index}")
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return SigningKey(private_key=key, cert_der=der, kid=thumbprints(der)[0])


def signing_keys() -> Tuple[SigningKey, SigningKey]:
    """The process's two signing keys (the first signs; the second is the published "rollover" key)."""
    with _LOCK:
        while len(_SIGNING) < 2:
            _SIGNING.append(_new_signing_key(len(_SIGNING) + 1))
        return _SIGNING[0], _SIGNING[1]


def idp_signing_key() -> SigningKey:
    """The stand-in AD FS's token-signing key and certificate (one per process, made on first use)."""
    with _LOCK:
        if not _IDP:
            _IDP.append(_new_signing_key(0))
        return _IDP[0]


def _new_tls_material() -> TlsMaterial:
    now = _now()
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("oauth-core emulator throwaway CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: List[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return TlsMaterial(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def tls_material() -> TlsMaterial:
    """The process's throwaway CA and loopback server certificate (made on first use)."""
    with _LOCK:
        if not _TLS:
            _TLS.append(_new_tls_material())
        return _TLS[0]
