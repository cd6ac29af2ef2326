"""A misbehaving token service, on a real socket, around a file token cache.

The emulator's fault injection makes the token endpoint throttle (429 with and without
``Retry-After``), fail (5xx bursts), stall past the client's timeout, drop the connection before
or after doing the work, truncate its answer, or answer with a proxy's HTML page. Each scenario
drives a silent refresh (``get_token`` below the hard margin, so it must refresh) of a signed-in
:class:`EntraClient` whose tokens live in a :class:`FileTokenCache`, and records

- how many requests reached the service, and the waits the retry policy asked for (slept on a
  fake clock, so only the injected delays take real time);
- what the caller saw: tokens, or which typed error with which ``attempts``/``waits``;
- the cache file afterwards: whole JSON of the current version, mode 0600, no temp file left,
  and a refresh token that still works once the service behaves again.

Real Entra keeps a redeemed refresh token valid after rotation, so most scenarios run against
an emulator with ``revoke_rotated_refresh_tokens=False`` (the default). The last ones opt in to
revoking a refresh token once redeemed: there a lost refresh response costs the session,
and the tests pin down what the caller sees.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type

import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import (
    EntraClient,
    InteractionRequired,
    InvalidGrant,
    OAuthCoreError,
    ResponseFormatError,
    RetryPolicy,
    TokenSet,
    TransientError,
)
from oauth_core.drivers.stores import FileTokenCache
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

HARD = 7200.0  # min_validity above the emulator's 3600 s lifetime: every get_token must refresh


@pytest.fixture(scope="module")
def keeping() -> Iterator[Emulator]:
    """Entra's behaviour: a rotated refresh token stays valid."""
    config = replace(EmulatorConfig.default(), revoke_rotated_refresh_tokens=False, token_lifetime=3600)
    with Emulator(config, port=0) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def revoking() -> Iterator[Emulator]:
    """Revocation on rotation, opted in (not Entra's behaviour): a refresh token is revoked once redeemed."""
    config = replace(EmulatorConfig.default(), token_lifetime=3600, revoke_rotated_refresh_tokens=True)
    with Emulator(config, port=0) as emulator:
        yield emulator


class FakeTime:
    """The retry policy's sleep and monotonic clock: waits are recorded, not slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@dataclass
class Session:
    """A signed-in client over a file cache, and what it takes to observe it."""

    emulator: Emulator
    client: EntraClient
    path: Path
    time: FakeTime

    def refresh_token(self) -> str:
        data = json.loads(self.path.read_text(encoding="utf-8"))
        tokens = [entry["refresh_token"] for entry in data["refresh_tokens"].values()]
        assert len(tokens) == 1, data["refresh_tokens"].keys()
        return str(tokens[0])

    def requests(self) -> int:
        return self.emulator.count("token")

    def check_cache(self) -> Dict[str, Any]:
        """The cache file is one whole cache of this version, private, with no temp file beside it."""
        data: Dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        assert data["version"] == 1
        assert all(isinstance(data[s], dict) for s in ("access_tokens", "refresh_tokens", "accounts", "flags"))
        assert stat.S_IMODE(self.path.stat().st_mode) == 0o600
        assert not [p.name for p in self.path.parent.iterdir() if p.name.endswith(".tmp")]
        return data


def sign_in(emulator: Emulator, tmp_path: Path, *, timeout: float = 2.0, **policy: Any) -> Session:
    fake = FakeTime()
    settings: Dict[str, Any] = {"jitter": False, "sleep": fake.sleep, "clock": fake.monotonic, **policy}
    path = tmp_path / "cache" / "tokens.json"
    client = EntraClient(
        emulator.config.clients[0].client_id,
        emulator.tenant_id,
        authority_host=emulator.url,
        retry=RetryPolicy(**settings),
        timeout=timeout,
        cache=FileTokenCache(path),
    )
    user = emulator.config.users[0]
    client.acquire_by_password(user.username, user.password)
    return Session(emulator, client, path, fake)


@dataclass(frozen=True)
class Scenario:
    """Faults queued on the token endpoint, and what a silent refresh must then do."""

    name: str
    faults: Tuple[Tuple[Fault, int], ...]
    attempts: int  # requests that reached (or were sent to) the token endpoint
    waits: Tuple[float, ...]  # the retry policy's waits, in order
    error: Optional[Type[OAuthCoreError]] = None  # None: tokens come back
    timeout: float = 2.0
    policy: Dict[str, Any] = field(default_factory=dict)
    max_seconds: float = 5.0  # real time, for the whole refresh


SCENARIOS = [
    Scenario("429x3 with Retry-After: 2", ((Fault("status", status=429, retry_after=2), 3),), 4, (2.0, 2.0, 2.0)),
    Scenario("429 with retry-after-ms: 1500", ((Fault("status", status=429, retry_after_ms=1500), 1),), 2, (1.5,)),
    Scenario(
        "429 storm without Retry-After: retries spent",
        ((Fault("status", status=429, body="Too Many Requests"), 10),),
        4,
        (0.5, 1.0, 2.0),
        TransientError,
    ),
    Scenario(
        "429 with Retry-After: 120, beyond the 60 s cap: stop at once",
        ((Fault("status", status=429, retry_after=120), 1),),
        1,
        (),
        TransientError,
    ),
    Scenario("503x2 (temporarily_unavailable)", ((Fault("status", status=503), 2),), 3, (0.5, 1.0)),
    Scenario(
        "500, 502, 504 then service",
        ((Fault("status", status=500), 1), (Fault("status", status=502), 1), (Fault("status", status=504), 1)),
        4,
        (0.5, 1.0, 2.0),
    ),
    Scenario("503 burst beyond the attempts", ((Fault("status", status=503), 10),), 4, (0.5, 1.0, 2.0), TransientError),
    Scenario("delay 0.8 s beyond a 0.3 s timeout, once", ((Fault("delay", seconds=0.8), 1),), 2, (0.5,), timeout=0.3),
    Scenario(
        "delay beyond the timeout on every attempt",
        ((Fault("delay", seconds=0.6), 3),),
        3,
        (0.5, 1.0),
        TransientError,
        timeout=0.3,
        policy={"max_attempts": 3},
    ),
    Scenario("connection dropped before the request was read", ((Fault("drop_before"), 1),), 2, (0.5,)),
    Scenario("connection dropped after the refresh was done (lost response)", ((Fault("drop_after"), 1),), 2, (0.5,)),
    Scenario(
        "every response lost",
        ((Fault("drop_after"), 4),),
        4,
        (0.5, 1.0, 2.0),
        TransientError,
    ),
    Scenario("truncated body", ((Fault("truncate"), 1),), 2, (0.5,)),
    Scenario("proxy HTML page with 502", ((Fault("html", status=502), 1),), 2, (0.5,)),
    Scenario(
        "captive portal: HTML with 200, not retried", ((Fault("html", status=200), 1),), 1, (), ResponseFormatError
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_silent_refresh_under_faults(keeping: Emulator, tmp_path: Path, scenario: Scenario) -> None:
    session = sign_in(keeping, tmp_path, timeout=scenario.timeout, **scenario.policy)
    before_token, before_requests = session.refresh_token(), session.requests()
    keeping.clear_faults()
    for fault, times in scenario.faults:
        keeping.inject("token", fault, times=times)
    started = time.perf_counter()
    try:
        if scenario.error is None:
            tokens = session.client.get_token(min_validity=HARD)
            assert isinstance(tokens, TokenSet) and tokens.access_token
        else:
            with pytest.raises(scenario.error) as caught:
                session.client.get_token(min_validity=HARD)
            if isinstance(caught.value, TransientError):
                assert caught.value.attempts == scenario.attempts
                assert caught.value.waits == scenario.waits
    finally:
        keeping.clear_faults()
    elapsed = time.perf_counter() - started
    # A delayed request is logged when the emulator finishes it, after the client gave up on it.
    deadline = time.monotonic() + 3.0
    while session.requests() - before_requests < scenario.attempts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session.requests() - before_requests == scenario.attempts
    assert tuple(session.time.waits) == scenario.waits
    assert elapsed < scenario.max_seconds
    session.check_cache()
    if scenario.error is not None:
        assert session.refresh_token() == before_token, "a failed refresh changed the cached refresh token"
    # The service behaves again: the cached refresh token (old or rotated) still works, once any
    # throttling window the faults opened (at most an hour) is over: the client's clock moves past it.
    session.client.clock = lambda: time.time() + 3601
    after = session.client.get_token(min_validity=HARD)
    assert after.access_token
    session.check_cache()
    session.client.close()


def test_lost_refresh_response_keeps_a_working_refresh_token(keeping: Emulator, tmp_path: Path) -> None:
    """The refresh is done server-side but every answer is lost: the old refresh token stays, and works."""
    session = sign_in(keeping, tmp_path, max_attempts=2)
    old = session.refresh_token()
    keeping.inject("token", Fault("drop_after"), times=2)
    with pytest.raises(TransientError) as caught:
        session.client.get_token(min_validity=HARD)
    assert caught.value.attempts == 2 and caught.value.status is None
    assert "RemoteProtocolError" in str(caught.value) or "ReadError" in str(caught.value)
    data = session.check_cache()
    assert session.refresh_token() == old
    assert not any(flag.get("interaction_required") for flag in data["flags"].values())
    tokens = session.client.refresh(old)  # the very token the lost responses rotated away still works
    assert tokens.refresh_token and tokens.refresh_token != old
    assert session.refresh_token() == tokens.refresh_token  # the rotated one replaced it in the cache
    session.client.close()


def test_lost_refresh_response_when_the_service_revokes_on_rotation(revoking: Emulator, tmp_path: Path) -> None:
    """With revocation on rotation, a lost answer costs the session; this is what the caller sees.

    The first attempt rotates (and revokes) the refresh token, its answer is lost; the retry sends
    the revoked token and Entra answers ``invalid_grant`` (AADSTS70000 in the emulator). The silent
    refresh raises InteractionRequired carrying those codes, remembers it for the scope set (the
    next get_token raises at once, without a request), and keeps the dead refresh token in the
    cache, which stays whole. ``refresh()`` with the token raises InvalidGrant.
    """
    session = sign_in(revoking, tmp_path)
    old = session.refresh_token()
    before = session.requests()
    revoking.inject("token", Fault("drop_after"), times=1)
    with pytest.raises(InteractionRequired) as caught:
        session.client.get_token(min_validity=HARD)
    assert session.requests() - before == 2 and session.time.waits == [0.5]
    assert caught.value.error == "invalid_grant" and caught.value.error_codes
    data = session.check_cache()
    assert session.refresh_token() == old
    assert any(flag.get("interaction_required") for flag in data["flags"].values())
    again = session.requests()
    with pytest.raises(InteractionRequired):
        session.client.get_token(min_validity=HARD)
    assert session.requests() == again, "a refused refresh was tried again"
    with pytest.raises(InvalidGrant):
        session.client.refresh(old)
    session.client.close()


def test_lost_refresh_response_through_refresh_when_revoking(revoking: Emulator, tmp_path: Path) -> None:
    """``refresh()`` (not the cache path) with a lost answer and revocation: InvalidGrant, cache whole."""
    session = sign_in(revoking, tmp_path)
    old = session.refresh_token()
    revoking.inject("token", Fault("drop_after"), times=1)
    with pytest.raises(InvalidGrant):
        session.client.refresh(old)
    session.check_cache()
    assert session.refresh_token() == old
    session.client.close()


def test_concurrent_refreshes_under_faults_lose_nothing(keeping: Emulator, tmp_path: Path) -> None:
    """Threads refreshing one cache while the service throttles and fails: typed outcomes, one valid cache."""
    session = sign_in(keeping, tmp_path)
    keeping.inject("token", Fault("status", status=503), times=3)
    keeping.inject("token", Fault("status", status=429, retry_after=1), times=3)
    keeping.inject("token", Fault("drop_after"), times=2)
    outcomes: List[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            try:
                session.client.get_token(min_validity=HARD)
                result = "ok"
            except OAuthCoreError as exc:
                result = type(exc).__name__
            except Exception as exc:  # anything else is a failure of the test
                result = f"UNTYPED {type(exc).__name__}: {exc}"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    keeping.clear_faults()
    assert len(outcomes) == 12 and not [o for o in outcomes if o.startswith("UNTYPED")], outcomes
    # "Throttled": refused unsent inside the window a 429/503 opened for that identical request
    assert outcomes.count("ok") + outcomes.count("Throttled") >= 9, outcomes
    session.check_cache()
    session.client.clock = lambda: time.time() + 3601  # past any throttling window
    assert session.client.get_token(min_validity=HARD).access_token
    session.client.close()


def test_the_scenarios_cover_every_fault_kind() -> None:
    from oauth_core.emulator.faults import FAULT_KINDS

    used = {fault.kind for scenario in SCENARIOS for fault, _ in scenario.faults}
    assert used == set(FAULT_KINDS)
