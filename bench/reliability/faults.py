"""The ``faults`` part: the emulator's fault injection on a real socket around a silent refresh.

429 with and without Retry-After, 5xx bursts, delays past the timeout, dropped connections,
truncated and HTML answers, with a file token cache. A scenario survives when the caller gets
tokens or the expected typed error, the cache file is whole, and the cached refresh token works
once the service behaves. Waits are recorded on a fake clock, so the run takes seconds.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .shared import HARD

Faults = List[Tuple[Any, int]]


@dataclasses.dataclass
class FaultResult:
    scenario: str
    attempts: int
    waits: List[float]
    seconds: float
    outcome: str
    survived: bool
    note: str = ""


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def fault_scenarios() -> List[Tuple[str, List[Tuple[Any, int]], Optional[str], float, Dict[str, Any]]]:
    """(name, faults, expected error class name or None, client timeout, retry policy overrides)."""
    from oauth_core.emulator import Fault

    return [
        ("429 x3, Retry-After: 2", [(Fault("status", status=429, retry_after=2), 3)], None, 2.0, {}),
        ("429 storm, no Retry-After", [(Fault("status", status=429, body="slow down"), 10)], "TransientError", 2.0, {}),
        (
            "429, Retry-After: 120 (over the cap)",
            [(Fault("status", status=429, retry_after=120), 1)],
            "Throttled",  # a TransientError that says when to retry
            2.0,
            {},
        ),
        ("503 x2", [(Fault("status", status=503), 2)], None, 2.0, {}),
        ("500, 502, 504", [(Fault("status", status=s), 1) for s in (500, 502, 504)], None, 2.0, {}),
        ("503 burst beyond the attempts", [(Fault("status", status=503), 10)], "TransientError", 2.0, {}),
        ("delay 0.8 s, timeout 0.3 s, once", [(Fault("delay", seconds=0.8), 1)], None, 0.3, {}),
        (
            "delay past the timeout, every attempt",
            [(Fault("delay", seconds=0.6), 3)],
            "TransientError",
            0.3,
            {"max_attempts": 3},
        ),
        ("dropped before the request was read", [(Fault("drop_before"), 1)], None, 2.0, {}),
        ("dropped after the refresh (lost response)", [(Fault("drop_after"), 1)], None, 2.0, {}),
        ("every response lost", [(Fault("drop_after"), 4)], "TransientError", 2.0, {}),
        ("truncated body", [(Fault("truncate"), 1)], None, 2.0, {}),
        ("proxy HTML, 502", [(Fault("html", status=502), 1)], None, 2.0, {}),
        ("captive portal HTML, 200", [(Fault("html", status=200), 1)], "ResponseFormatError", 2.0, {}),
    ]


def _cache_ok(path: Path) -> Tuple[bool, Optional[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tokens = [e["refresh_token"] for e in data["refresh_tokens"].values()]
        whole = data["version"] == 1 and not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
        return whole, (tokens[0] if len(tokens) == 1 else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False, None


def _fault_cases() -> List[Tuple[Any, str, Faults, Optional[str], float, Dict[str, Any]]]:
    """(emulator config, *scenario): every scenario against a service that keeps rotated refresh tokens,
    then one against a service that revokes them."""
    from oauth_core.emulator import EmulatorConfig, Fault

    keeping = dataclasses.replace(EmulatorConfig.default(), revoke_rotated_refresh_tokens=False, token_lifetime=3600)
    revoking = dataclasses.replace(EmulatorConfig.default(), revoke_rotated_refresh_tokens=True, token_lifetime=3600)
    cases = [(keeping, *scenario) for scenario in fault_scenarios()]
    cases.append(
        (
            revoking,
            "lost response, service revokes on rotation",
            [(Fault("drop_after"), 1)],
            "InteractionRequired",
            2.0,
            {},
        )
    )
    return cases


def _signed_in_client(emulator: Any, path: Path, fake: FakeTime, timeout: float, policy: Dict[str, Any]) -> Any:
    """A client on the fake clock with a file cache at ``path``, after one password grant."""
    from oauth_core import EntraClient, RetryPolicy
    from oauth_core.drivers.stores import FileTokenCache

    settings: Dict[str, Any] = {"jitter": False, "sleep": fake.sleep, "clock": fake.monotonic, **policy}
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
    return client


def _silent_refresh_outcome(client: Any) -> str:
    from oauth_core import OAuthCoreError

    try:
        client.get_token(min_validity=HARD)
        return "tokens"
    except OAuthCoreError as exc:
        return type(exc).__name__
    except Exception as exc:  # a failure of the client: counted, not raised
        return f"UNTYPED {type(exc).__name__}"


def _wait_for_delayed_requests(emulator: Any, faults: Faults, before: int, fake: FakeTime) -> None:
    deadline = time.monotonic() + 3.0  # delayed requests are logged when the emulator finishes them
    while time.monotonic() < deadline and any(f.kind == "delay" for f, _ in faults):
        if emulator.count("token") - before >= len(fake.waits) + 1:
            break
        time.sleep(0.05)


def _after_the_faults(
    client: Any, path: Path, expected: Optional[str], before_token: Optional[str]
) -> Tuple[bool, bool, str]:
    """(cache file whole, the session still works, a note) once the service behaves again."""
    from oauth_core import OAuthCoreError

    whole, token = _cache_ok(path)
    works = False
    note = ""
    if expected == "InteractionRequired":
        note = "the retry sent the revoked token: invalid_grant; the session needs a new sign-in"
        works = token == before_token  # the cache kept the (dead) token whole; nothing was lost
    else:
        # Past any throttling window the faults opened (at most an hour): an identical request
        # inside it is refused unsent, by design, so the client's clock moves beyond it.
        client.clock = lambda: time.time() + 3601
        try:
            works = bool(client.get_token(min_validity=HARD).access_token)
        except OAuthCoreError as exc:
            note = f"refresh after the faults failed: {type(exc).__name__}"
        if expected is not None and token != before_token:
            whole, note = False, "a failed refresh changed the cached refresh token"
    return whole, works, note


def _run_scenario(
    emulator: Any, name: str, faults: Faults, expected: Optional[str], timeout: float, policy: Dict[str, Any]
) -> FaultResult:
    fake = FakeTime()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokens.json"
        client = _signed_in_client(emulator, path, fake, timeout, policy)
        _, before_token = _cache_ok(path)
        before = emulator.count("token")
        for fault, times in faults:
            emulator.inject("token", fault, times=times)
        started = time.perf_counter()
        outcome = _silent_refresh_outcome(client)
        seconds = time.perf_counter() - started
        emulator.clear_faults()
        _wait_for_delayed_requests(emulator, faults, before, fake)
        attempts = emulator.count("token") - before
        whole, works, note = _after_the_faults(client, path, expected, before_token)
        survived = outcome == (expected or "tokens") and whole and works
        result = FaultResult(name, attempts, list(fake.waits), seconds, outcome, survived, note)
        client.close()
    return result


def run_faults() -> List[FaultResult]:
    from oauth_core.emulator import Emulator

    results = []
    emulators: Dict[int, Any] = {}
    try:
        for config, name, faults, expected, timeout, policy in _fault_cases():
            emulator = emulators.get(id(config))
            if emulator is None:
                emulator = emulators[id(config)] = Emulator(config, port=0).start()
            results.append(_run_scenario(emulator, name, faults, expected, timeout, policy))
    finally:
        for emulator in emulators.values():
            emulator.stop()
    return results
