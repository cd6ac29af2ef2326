"""``oauth-core bench``'s values: settings, the grant to redeem, one sample, and a run's result.

Pure data with their checks; the run itself is :mod:`.engine`, the summaries :mod:`.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..core.authorize import PendingAuthorization
from ..core.errors import ConfigError, OAuthCoreError, TransportError
from ..core.flows import ClientBase
from ..core.grants import authorization_code_grant, client_credentials_grant, password_grant, refresh_token_grant
from ..core.messages import Pairs, TokenSet

__all__ = [
    "GRANTS",
    "PHASES",
    "BenchResult",
    "BenchSettings",
    "BenchmarkStopped",
    "Grant",
    "Sample",
    "client_credentials_bench_grant",
    "code_replay_grant",
    "password_bench_grant",
    "refresh_bench_grant",
]

GRANTS = ("refresh", "password", "client-credentials", "auth-code-replay")
MAX_EXCHANGES = 10_000
MAX_CONCURRENCY = 64
MAX_WARMUP = 1_000
NO_RETRY_AFTER_PAUSE = 1.0  # seconds paused after a 429 that names no Retry-After
PHASES = ("total", "ttfb", "connect", "tls", "dns")


class BenchmarkStopped(OAuthCoreError):
    """The run stopped early because the service kept refusing the grant.

    (``oauth-core bench`` exits 1 for it: :mod:`oauth_core.cli.exit_codes` says so.)
    """


@dataclass(frozen=True)
class BenchSettings:
    """How much to send: ``n`` measured exchanges after ``warmup`` unmeasured ones, by ``concurrency`` workers.

    Attributes:
        grant: one of :data:`GRANTS`.
        max_retry_after: the longest pause (seconds) honoured after a throttled exchange.
        timeout: seconds per HTTP request.

    Raises:
        ConfigError: a value outside its bounds (1-10000 exchanges, 1-64 workers).
    """

    grant: str
    n: int = 20
    warmup: int = 2
    concurrency: int = 1
    max_retry_after: float = 60.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.grant not in GRANTS:
            raise ConfigError(f"unknown grant {self.grant!r}; use one of {', '.join(GRANTS)}")
        for name, low, high in (
            ("n", 1, MAX_EXCHANGES),
            ("concurrency", 1, MAX_CONCURRENCY),
            ("warmup", 0, MAX_WARMUP),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                flag = "-n" if name == "n" else f"--{name}"
                raise ConfigError(f"{flag} must be a whole number from {low} to {high}")
        if not 0 <= self.max_retry_after <= 3600 or not 0 < self.timeout <= 3600:
            raise ConfigError("--max-retry-after must be 0-3600 seconds and the timeout 0-3600 seconds")

    @property
    def stops_on_invalid_grant(self) -> bool:
        """Replaying a code measures refusals on purpose; every other grant stops on repeated ones."""
        return self.grant != "auth-code-replay"


@dataclass(frozen=True)
class Grant:
    """What the workers redeem: the grant's form fields and scopes (a refresh token rotates per worker)."""

    name: str
    scopes: Tuple[str, ...]
    form: Pairs = field(repr=False)
    rotates: bool = False


def refresh_bench_grant(client: ClientBase, refresh_token: str) -> Grant:
    """Redeem a refresh token; each worker goes on with the newest one it was given."""
    return Grant("refresh", client.user_scopes(), refresh_token_grant(refresh_token), rotates=True)


def password_bench_grant(client: ClientBase, username: str, password: str) -> Grant:
    """The password (ROPC) grant, the same credentials every time."""
    return Grant("password", client.user_scopes(), password_grant(username, password))


def client_credentials_bench_grant(client: ClientBase) -> Grant:
    """The client credentials grant, checked (scope, tenant, credential) as the client checks it.

    Raises:
        ConfigError: this client has no client credentials support, or the check failed.
    """
    return Grant("client-credentials", client.client_credentials_scopes(), client_credentials_grant())


def code_replay_grant(pending: PendingAuthorization, code: str) -> Grant:
    """Redeem one authorization code again and again: the first may succeed, the rest are refused (54005)."""
    form = authorization_code_grant(code, pending.redirect_uri, pending.code_verifier)
    return Grant("auth-code-replay", pending.scopes, form)


@dataclass(frozen=True)
class Sample:
    """One exchange. Times are milliseconds; ``at`` is seconds from the start of the run.

    ``status`` is None when no response came (``error`` then names the network failure);
    ``error`` is otherwise the OAuth ``error`` or ``malformed_response``, and ``error_code`` the
    first AADSTS code.
    """

    index: int
    worker: int
    warmup: bool
    at: float
    status: Optional[int]
    new_connection: bool
    dns: float
    connect: float
    tls: float
    ttfb: float
    total: float
    error: Optional[str] = None
    error_code: Optional[int] = None
    retry_after: Optional[float] = None

    @property
    def throttled(self) -> bool:
        return self.status == 429

    def to_dict(self) -> Dict[str, Any]:
        phases = {name: round(getattr(self, name), 3) for name in PHASES}
        return {
            "index": self.index,
            "worker": self.worker,
            "warmup": self.warmup,
            "at": round(self.at, 4),
            "status": self.status,
            "new_connection": self.new_connection,
            "phases": phases,
            "error": self.error,
            "error_code": self.error_code,
            "retry_after": self.retry_after,
        }


@dataclass(frozen=True)
class BenchResult:
    """Every sample of a run, plus why it stopped early (if it did) and the newest tokens (never shown)."""

    settings: BenchSettings
    token_endpoint: str
    client_id: str
    samples: Tuple[Sample, ...]
    pauses: Tuple[float, ...]
    stopped: Optional[BenchmarkStopped] = None
    newest: Optional[TokenSet] = field(default=None, repr=False)

    @property
    def measured(self) -> List[Sample]:
        return [s for s in self.samples if not s.warmup]

    def failure(self) -> Optional[OAuthCoreError]:
        """Why the run counts as failed: it stopped on refusals (exit 1), or nothing answered (exit 3)."""
        if self.stopped is not None:
            return self.stopped
        if self.samples and all(s.status is None for s in self.samples):
            kinds = sorted({s.error or "unknown" for s in self.samples})
            return TransportError(f"none of the {len(self.samples)} exchanges got a response ({', '.join(kinds)})")
        return None
