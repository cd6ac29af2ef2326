"""Helpers for tests that use the recorded Entra ID fixtures in ``fixtures/``.

The fixtures are produced by ``fixtures/make_fixtures.py`` (see ``fixtures/README.md``)::

    from fixturelib import load_response, mint_jwt, token_response_body

    resp = load_response("error-50126")            # {"status", "headers", "body", "expect", ...}
    token = mint_jwt({**claims, "nonce": "n-123"})  # signed with the fixture key, verifies with jwks()
    body = token_response_body(id_token=token, refresh_token=None)  # None drops a field
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, cast

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

__all__ = [
    "CLIENT_ID",
    "DATABRICKS_APP_ID",
    "FIXTURES",
    "ISSUED_AT",
    "NONCE",
    "STATE",
    "TENANT_ID",
    "USER_OID",
    "fixture_kid",
    "jwks",
    "load_claims",
    "load_redirects",
    "load_response",
    "load_token",
    "mint_jwt",
    "response_names",
    "signing_key_pem",
    "token_response_body",
]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RESPONSES = FIXTURES / "responses"
TOKENS = FIXTURES / "tokens"
KEYS = FIXTURES / "keys"

# The placeholder identities every fixture uses.
TENANT_ID = "aaaaaaaa-0000-0000-0000-000000000001"
USER_OID = "bbbbbbbb-0000-0000-0000-000000000002"
CLIENT_ID = "12a34b56-789c-0d12-e3fa-b456789c0123"
DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
NONCE = "fixture-nonce-3f9c2a"  # nonce inside tokens/id-token-v2.jwt
STATE = "fixture-state-7d1e"  # state in redirects.json
ISSUED_AT = 1795600000  # issuance moment of the fixture tokens (iat = nbf = ISSUED_AT - 300)


def _strip_json(name: str) -> str:
    return name[:-5] if name.endswith(".json") else name


def load_response(name: str) -> Dict[str, Any]:
    """A recorded response (``"error-50126"`` or ``"error-50126.json"``) as a dict.

    Keys: description, endpoint, grant_type, status, headers ([name, value] pairs, repeated names
    possible), body (raw text), expect.
    """
    path = RESPONSES / f"{_strip_json(name)}.json"
    return cast(Dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def response_names(prefix: str = "") -> List[str]:
    """Sorted names (without ``.json``) of the recorded responses starting with ``prefix``."""
    return sorted(p.stem for p in RESPONSES.glob("*.json") if p.stem.startswith(prefix))


def load_token(name: str) -> str:
    """A fixture token: ``"databricks-v1-user"``, ``"id-token-v2.jwt"`` or ``"malformed/empty.txt"``."""
    path = TOKENS / name
    if not path.suffix or not path.exists():
        path = TOKENS / f"{name}.jwt"
    return path.read_text(encoding="ascii")


def load_claims(name: str) -> Dict[str, Any]:
    """``{"header": ..., "claims": ...}`` as put into tokens/<name>.jwt."""
    record = cast(Dict[str, Any], json.loads((TOKENS / "claims.json").read_text(encoding="utf-8")))
    key = name if name.endswith(".jwt") else f"{name}.jwt"
    return cast(Dict[str, Any], record[key])


def load_redirects() -> Dict[str, str]:
    """The authorize redirect URLs of ``fixtures/redirects.json`` by name."""
    return cast(Dict[str, str], json.loads((FIXTURES / "redirects.json").read_text(encoding="utf-8")))


def jwks() -> Dict[str, Any]:
    """The v2 JWKS (signing key first, then the rollover key that never signs)."""
    return cast(Dict[str, Any], json.loads((FIXTURES / "jwks.json").read_text(encoding="utf-8")))


def signing_key_pem() -> bytes:
    """The PKCS8 PEM of the fixture TEST signing key (with its comment banner)."""
    return (KEYS / "fixture-signing-key.pem").read_bytes()


def fixture_kid() -> str:
    """kid (= x5t) of the signing key: base64url SHA-1 of its certificate."""
    cert = x509.load_pem_x509_certificate((KEYS / "fixture-signing-cert.pem").read_bytes())
    return base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode("ascii")


def mint_jwt(claims: Dict[str, Any], *, header: Optional[Dict[str, Any]] = None) -> str:
    """Sign ``claims`` (in the given order) RS256 with the fixture key.

    The header starts as Entra's v1 header ``{"typ", "alg", "x5t", "kid"}`` with the fixture
    key's thumbprint; ``header`` entries are merged over it, and an entry set to None removes
    that field (``header={"x5t": None}`` gives the v2 ``{"typ", "alg", "kid"}`` form).
    """
    kid = fixture_kid()
    full: Dict[str, Any] = {"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid}
    for name, value in (header or {}).items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
    return jwt.PyJWS().encode(
        payload, signing_key_pem(), algorithm=str(full.get("alg", "RS256")), headers=full, sort_headers=False
    )


def token_response_body(**overrides: Any) -> str:
    """A success body like success-authorization-code with fields replaced.

    Keys keep the recorded order; new keys are appended; a value of None removes the key.
    Returns compact JSON text, as Entra sends it.
    """
    body = cast(Dict[str, Any], json.loads(load_response("success-authorization-code")["body"]))
    for name, value in overrides.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return json.dumps(body, separators=(",", ":"))
