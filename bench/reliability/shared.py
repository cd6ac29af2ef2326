"""What every reliability part shares: the ids and clock used, hostile JSON literals, token and response builders.

Nothing here imports oauth_core at module level (``--help`` works without the library's extras);
the helpers that need it import it when called.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
NOW = 1_800_000_000.0
HARD = 7200.0  # min_validity above the emulator's 3600 s token lifetime: get_token must refresh


@dataclasses.dataclass(frozen=True)
class Raw:
    """A JSON literal spliced in as is: what json.dumps cannot write."""

    name: str
    text: str

    def __repr__(self) -> str:
        return f"Raw.{self.name}"


RAWS = [
    Raw("huge_int", "1" + "0" * 400),
    Raw("int_5000_digits", "9" * 5000),
    Raw("float_overflow", "1e400"),
    Raw("nan", "NaN"),
    Raw("infinity", "-Infinity"),
    Raw("lone_surrogate", '"\\ud800"'),
    Raw("nested_5000", "[" * 5000 + "]" * 5000),
]
DELETE = Raw("deleted", "")


def dumps(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64url(dumps(value).encode("utf-8", "surrogatepass"))


def jwt_of(claims: Any, header: Any = None) -> str:
    return f"{segment({'alg': 'RS256'} if header is None else header)}.{segment(claims)}.c2ln"


def http_response(status: int, body: bytes) -> Any:
    from oauth_core.core.protocol import HttpResponse

    return HttpResponse(status=status, headers=(("content-type", "application/json"),), body=body)


def core_error() -> type:
    from oauth_core.core.errors import OAuthCoreError

    return OAuthCoreError
