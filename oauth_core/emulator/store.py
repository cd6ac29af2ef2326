"""The emulator's memory: pending sign-ins, codes, refresh tokens, device flows and issued SAML assertions.

Records are frozen; a change replaces the record. One re-entrant lock guards everything, and
callers hold it (``with store.lock:``) across a check-then-update so two requests cannot redeem
the same code.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

__all__ = ["CodeRecord", "DeviceFlow", "PendingSignIn", "RefreshRecord", "Store", "normalize_user_code"]


@dataclass(frozen=True)
class PendingSignIn:
    """An authorize request waiting for the sign-in form, kept server-side behind ``flow_id``."""

    flow_id: str
    tenant: str
    client_id: str
    redirect_uri: str
    scope: str
    state: Optional[str]
    nonce: Optional[str]
    code_challenge: Optional[str]
    code_challenge_method: Optional[str]
    response_mode: str
    created: float
    claims: Optional[str] = None


@dataclass(frozen=True)
class CodeRecord:
    """An issued authorization code and everything it is bound to."""

    tenant: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: Optional[str]
    code_challenge: Optional[str]
    code_challenge_method: Optional[str]
    username: str
    amr: Tuple[str, ...]
    issued_at: float
    redeemed: bool = False
    claims: Optional[str] = None


@dataclass(frozen=True)
class RefreshRecord:
    """An issued refresh token: bound to user and client, not to a resource.

    ``signed_in_at`` is the original sign-in time, kept across rotations (revocation compares it).
    """

    username: str
    client_id: str
    scope: str
    amr: Tuple[str, ...]
    issued_at: float
    signed_in_at: float
    revoked: bool = False


@dataclass(frozen=True)
class DeviceFlow:
    """A device authorization: ``status`` is pending, approved, declined or redeemed."""

    device_code: str
    user_code: str
    tenant: str
    client_id: str
    scope: str
    expires_at: float
    status: str = "pending"
    username: Optional[str] = None
    amr: Tuple[str, ...] = ()


@dataclass
class Store:
    """All mutable state of one emulator."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    pending: Dict[str, PendingSignIn] = field(default_factory=dict)
    codes: Dict[str, CodeRecord] = field(default_factory=dict)
    refresh_tokens: Dict[str, RefreshRecord] = field(default_factory=dict)
    device_flows: Dict[str, DeviceFlow] = field(default_factory=dict)
    user_codes: Dict[str, str] = field(default_factory=dict)
    device_sign_ins: Dict[str, str] = field(default_factory=dict)
    valid_from: Dict[str, float] = field(default_factory=dict)
    assertions: Dict[str, float] = field(default_factory=dict)

    def prune(self, now: float, *, keep: float) -> None:
        """Forget pending sign-ins, codes and device flows older than ``keep`` seconds."""
        with self.lock:
            for flow_id in [k for k, p in self.pending.items() if now - p.created > keep]:
                del self.pending[flow_id]
            for code in [k for k, c in self.codes.items() if now - c.issued_at > keep]:
                del self.codes[code]
            for assertion_id in [k for k, until in self.assertions.items() if now - until > keep]:
                del self.assertions[assertion_id]
            for device_code in [k for k, d in self.device_flows.items() if now - d.expires_at > keep]:
                self.user_codes.pop(self.device_flows.pop(device_code).user_code, None)
            live = set(self.device_flows)
            for flow_id in [k for k, d in self.device_sign_ins.items() if d not in live]:
                del self.device_sign_ins[flow_id]

    def device_flow_by_user_code(self, user_code: str) -> Optional[DeviceFlow]:
        """The device flow with this user code (case and dashes ignored), or None."""
        with self.lock:
            device_code = self.user_codes.get(normalize_user_code(user_code))
            return self.device_flows.get(device_code) if device_code else None


def normalize_user_code(user_code: str) -> str:
    """User codes compare case-insensitively, ignoring spaces and dashes."""
    return "".join(ch for ch in user_code.upper() if ch.isalnum())
