"""Unverified claims decode: oauth_core's checked decoder against the hand-rolled floor and pyjwt.

The floor is what a script would write: split, base64url, ``json.loads``. It checks nothing.
``oauth_core.unverified_claims`` also checks the shape (three base64url segments, JSON-object
header with ``alg``, JSON-object payload, numeric ``iat``/``nbf``/``exp``), so alongside the speed
this counts which malformed tokens each decoder rejects: the target allows no loss of validation.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from typing import Any, Callable, Dict, List, Tuple

from .entra import b64url, material

__all__ = ["MALFORMED", "decoders", "measure"]


def floor(token: str) -> Dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def _segment(value: Any) -> str:
    return b64url(json.dumps(value).encode() if not isinstance(value, bytes) else value)


_HEADER = _segment({"typ": "JWT", "alg": "RS256", "kid": "k"})
_CLAIMS = _segment({"aud": "api", "exp": 2000000000})
_SIG = b64url(b"\x01" * 64)

# Each is something a decoder of Entra tokens should refuse.
MALFORMED: Dict[str, str] = {
    "empty": "",
    "two segments": f"{_HEADER}.{_CLAIMS}",
    "four segments": f"{_HEADER}.{_CLAIMS}.{_SIG}.{_SIG}",
    "encrypted (JWE, five segments)": ".".join([_HEADER, _SIG, _SIG, _SIG, _SIG]),
    "payload not base64url": f"{_HEADER}.{_CLAIMS[:-4]}*/+=.{_SIG}",
    "payload not JSON": f"{_HEADER}.{b64url(b'not json')}.{_SIG}",
    "payload a JSON array": f"{_HEADER}.{_segment([1, 2])}.{_SIG}",
    "payload not UTF-8": f"{_HEADER}.{b64url(bytes([0xFF, 0xFE, 0x7B]))}.{_SIG}",
    "header not JSON": f"{b64url(b'{nope')}.{_CLAIMS}.{_SIG}",
    "header without alg": f"{_segment({'typ': 'JWT'})}.{_CLAIMS}.{_SIG}",
    "exp not a number": f"{_HEADER}.{_segment({'exp': 'tomorrow'})}.{_SIG}",
    "exp is true": f"{_HEADER}.{_segment({'exp': True})}.{_SIG}",
}


def decoders() -> Tuple[Dict[str, Callable[[str], Any]], List[str]]:
    """The decoders to compare, and skip lines for those that cannot be imported."""
    from oauth_core.core.claims import unverified_claims

    found: Dict[str, Callable[[str], Any]] = {
        "floor": floor,
        "oauth_core": unverified_claims,
    }
    skipped: List[str] = []
    try:
        import jwt
    except ImportError:
        skipped.append("pyjwt: not installed")
    else:
        found["pyjwt"] = lambda token: jwt.decode(token, options={"verify_signature": False})
    return found, skipped


def _rejects(decode: Callable[[str], Any]) -> List[str]:
    refused = []
    for name, token in MALFORMED.items():
        try:
            decode(token)
        except Exception:
            refused.append(name)
    return refused


def measure(*, blocks: int, loops: int) -> Tuple[Dict[str, Dict[str, Any]], List[str]]:
    """Per-call time (median over interleaved blocks of ``loops`` calls) and malformed-input rejections."""
    token = material().access_token
    found, skipped = decoders()
    per_call: Dict[str, List[float]] = {name: [] for name in found}
    for decode in found.values():
        if decode(token)["aud"] is None:
            raise RuntimeError("decoder lost the audience")
    for _ in range(blocks):
        for name, decode in found.items():
            began = time.perf_counter_ns()
            for _ in range(loops):
                decode(token)
            per_call[name].append((time.perf_counter_ns() - began) / loops / 1000.0)
    results = {}
    for name, decode in found.items():
        refused = _rejects(decode)
        results[name] = {
            "p50_us": round(statistics.median(per_call[name]), 2),
            "min_us": round(min(per_call[name]), 2),
            "rejected": len(refused),
            "malformed": len(MALFORMED),
            "accepted_malformed": [n for n in MALFORMED if n not in refused],
            "token_chars": len(token),
        }
    return results, skipped
