"""The ``claims`` request parameter and Conditional Access step-up (entra-protocol-2.md §5).

A token or authorize request may carry ``claims``: a JSON object such as
``{"access_token":{"xms_cc":{"values":["cp1"]}}}`` (client capabilities) or a challenge the
service sent back (``{"access_token":{"capolids":{"essential":true,"values":["<policy id>"]}}}``).
Anything that is not a JSON object is refused (AADSTS90100; the pairing of that code with a bad
``claims`` value is unconfirmed).

Step-up: a refresh for a ``step_up`` user or resource is refused with AADSTS50076 and a claims
challenge naming the policy, unless the sign-in behind the refresh token included MFA or the
request answers a challenge (its claims ask for ``acrs`` or ``capolids``). The emulator takes such
claims as satisfied, standing in for the interactive MFA step Entra would demand.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple

from .aadsts import Refusal, refusal
from .config import EmulatorConfig, User
from .scopes import ScopeGrant

__all__ = [
    "capabilities",
    "needs_step_up",
    "parse_claims",
    "satisfies_step_up",
    "step_up_challenge",
    "step_up_refusal",
]

MAX_CLAIMS = 16 * 1024


def parse_claims(value: Optional[str]) -> Optional[Dict[str, Any]]:
    """The parsed ``claims`` parameter, None when absent or blank.

    Raises:
        Refusal: AADSTS90100 when it is not a JSON object (or is too long).
    """
    if value is None or not value.strip():
        return None
    if len(value) > MAX_CLAIMS:
        raise refusal(90100, name="claims")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise refusal(90100, name="claims") from None
    if not isinstance(parsed, dict):
        raise refusal(90100, name="claims")
    return parsed


def _access_token_part(claims: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    part = claims.get("access_token") if claims else None
    return part if isinstance(part, dict) else {}


def capabilities(claims: Optional[Mapping[str, Any]]) -> Tuple[str, ...]:
    """The known client capabilities the claims declare (``access_token.xms_cc.values``): ``cp1`` or none."""
    xms_cc = _access_token_part(claims).get("xms_cc")
    values = xms_cc.get("values") if isinstance(xms_cc, dict) else None
    if not isinstance(values, list):
        return ()
    return ("cp1",) if any(isinstance(v, str) and v.lower() == "cp1" for v in values) else ()


def satisfies_step_up(claims: Optional[Mapping[str, Any]]) -> bool:
    """True when the claims answer a Conditional Access challenge (they ask for ``acrs`` or ``capolids``)."""
    part = _access_token_part(claims)
    return "acrs" in part or "capolids" in part


def step_up_challenge(policy_id: str) -> str:
    """The ``claims`` string Entra sends with a step-up refusal (compact JSON, as captured)."""
    challenge = {"access_token": {"capolids": {"essential": True, "values": [policy_id]}}}
    return json.dumps(challenge, separators=(",", ":"))


def needs_step_up(user: User, scope: ScopeGrant) -> bool:
    """True when a step-up policy covers this user or this resource."""
    return user.step_up or scope.resource.step_up


def step_up_refusal(config: EmulatorConfig, scope: ScopeGrant) -> Refusal:
    """AADSTS50076 (invalid_grant, ``basic_action``) carrying the policy's claims challenge."""
    refused = refusal(50076, resource=scope.resource.app_id)
    refused.claims = step_up_challenge(config.step_up_policy_id)
    return refused
