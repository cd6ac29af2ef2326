"""Entra-shaped token material for the benchmark: one refresh response, rendered once.

The response follows ``shared/entra-protocol.md``: the §3.4 body (key order, a v1 access token
for Azure Databricks, a v2 id_token, ``client_info``) and the §1.6 headers, including the three
``Set-Cookie`` headers a token client must ignore. Every value is a deterministic placeholder;
the JWT signatures are 256 pseudo-random bytes, not real RS256 signatures, because no client
checks the signature of a token it just received over TLS (a refresh does not).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import time
from typing import Any, Dict, List, Tuple

__all__ = [
    "ACCESS_TOKEN_CLAIMS",
    "CLIENT_ID",
    "REFRESH_TOKEN",
    "RESOURCE",
    "SCOPE",
    "TENANT",
    "Material",
    "b64url",
    "discovery_body",
    "material",
    "mint_jwt",
    "render",
]

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
CLIENT_ID = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
RESOURCE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"  # Azure Databricks
SCOPE = f"{RESOURCE}/.default"
OID = "bbbbbbbb-0000-0000-0000-000000000002"
KID = "J0jZvrdlukXQUCSKNgWi2fatGsI"


def _stream(seed: str, size: int) -> bytes:
    """``size`` deterministic pseudo-random bytes (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _opaque(seed: str, size: int) -> str:
    return b64url(_stream(seed, size))


def mint_jwt(header: Dict[str, Any], claims: Dict[str, Any], seed: str) -> str:
    """A compact JWS with a placeholder signature (see the module docstring)."""
    parts = [b64url(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims)]
    return ".".join([*parts, _opaque(seed + ":sig", 256)])


def _claims(now: int, lifetime: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    access = {
        "aud": RESOURCE,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "acr": "1",
        "aio": _opaque("aio", 60),
        "amr": ["pwd", "mfa"],
        "appid": CLIENT_ID,
        "appidacr": "0",
        "family_name": "Someone",
        "given_name": "Fixture",
        "ipaddr": "203.0.113.7",
        "name": "Fixture Someone",
        "oid": OID,
        "puid": "10032001A2B3C4D5",
        "rh": "0." + _opaque("rh", 60),
        "scp": "user_impersonation",
        "sub": _opaque("sub", 32),
        "tid": TENANT,
        "unique_name": "someone@contoso.onmicrosoft.com",
        "upn": "someone@contoso.onmicrosoft.com",
        "uti": _opaque("uti", 16),
        "ver": "1.0",
        "wids": ["b79fbf4d-3ef9-4689-8143-76b194e85509"],
        "xms_cc": ["CP1"],
        "xms_tcdt": now - 86400 * 400,
    }
    id_claims = {
        "aud": CLIENT_ID,
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "aio": _opaque("id-aio", 60),
        "name": "Fixture Someone",
        "oid": OID,
        "preferred_username": "someone@contoso.onmicrosoft.com",
        "rh": "0." + _opaque("id-rh", 60),
        "sub": _opaque("id-sub", 32),
        "tid": TENANT,
        "uti": _opaque("id-uti", 16),
        "ver": "2.0",
    }
    return access, id_claims


ACCESS_TOKEN_CLAIMS = _claims(0, 4432)[0]  # the claim names and shapes; times are set at render time
# A refresh token is opaque to clients; Entra's are ~750-1,400 characters starting "0.A".
REFRESH_TOKEN = "0.AXkA" + _opaque("refresh-token", 560)


class Material:
    """The rendered refresh response: body bytes, header pairs and the tokens inside."""

    def __init__(self, now: int) -> None:
        access_claims, id_claims = _claims(now, 4432)
        header = {"typ": "JWT", "alg": "RS256", "x5t": KID, "kid": KID}
        self.access_token = mint_jwt(header, access_claims, "access")
        self.id_token = mint_jwt({"typ": "JWT", "alg": "RS256", "kid": KID}, id_claims, "id")
        client_info = b64url(json.dumps({"uid": OID, "utid": TENANT}, separators=(",", ":")).encode())
        body = {  # key order as observed (§3.4)
            "token_type": "Bearer",
            "scope": f"{RESOURCE}/user_impersonation",
            "expires_in": 4432,
            "ext_expires_in": 4432,
            "access_token": self.access_token,
            "refresh_token": "0.AXkA" + _opaque("rotated-refresh-token", 560),
            "id_token": self.id_token,
            "client_info": client_info,
        }
        self.body = json.dumps(body, separators=(",", ":")).encode()
        self.headers = _headers(now, len(self.body))


def _headers(now: int, length: int) -> List[Tuple[str, str]]:
    """The §1.6 header set of a token response, in the order Entra sends it."""
    expires = email.utils.formatdate(now + 30 * 86400, usegmt=True)
    return [
        ("Cache-Control", "no-store, no-cache"),
        ("Pragma", "no-cache"),
        ("Content-Type", "application/json; charset=utf-8"),
        ("Expires", "-1"),
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
        ("X-Content-Type-Options", "nosniff"),
        ("P3P", 'CP="DSP CUR OTPi IND OTRi ONL FIN"'),
        ("x-ms-request-id", "95edfbf7-0864-f8db-a248-1332135b0f00"),
        ("x-ms-ests-server", "2.1.21718.4 - EUS2 ProdSlices"),
        ("Set-Cookie", f"fpc={_opaque('fpc', 33)}; expires={expires}; path=/; secure; HttpOnly; SameSite=None"),
        ("Set-Cookie", "x-ms-gateway-slice=estsfd; path=/; secure; samesite=none; httponly"),
        ("Set-Cookie", "stsservicecookie=estsfd; path=/; secure; samesite=none; httponly"),
        ("Date", email.utils.formatdate(now, usegmt=True)),
        ("Content-Length", str(length)),
    ]


def material() -> Material:
    """The response rendered now (expiries count from this moment)."""
    return Material(int(time.time()))


def discovery_body(origin: str) -> bytes:
    """The tenant's v2 OIDC discovery document (§1.3), the fields MSAL reads, for ``origin``."""
    base = f"{origin}/{TENANT}"
    doc = {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid"],
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def render(status: int, reason: str, headers: List[Tuple[str, str]], body: bytes) -> bytes:
    """A whole HTTP/1.1 response as bytes (headers must already carry Content-Length)."""
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + body
