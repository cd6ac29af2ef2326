"""The ``fuzz`` part: every parser that sees outside data, run under hypothesis and an alarm.

Derandomized (the same examples on every run) unless a seed is given. A case fails when the
parser raises anything but an :class:`oauth_core.OAuthCoreError`, hangs, or returns a value that
breaks the parser's contract (see :mod:`bench.reliability.fuzz_targets`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional

from .fuzz_inputs import corpus, strategies
from .fuzz_targets import fuzz_targets
from .shared import core_error


class Hang(BaseException):
    """The alarm fired: the call did not return in time."""


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass
class FuzzResult:
    parser: str
    cases: int = 0
    typed_errors: int = 0
    failures: int = 0
    examples: Dict[str, str] = dataclasses.field(default_factory=dict)  # failure kind -> first input


def _fuzz_body(result: FuzzResult, target: Callable[[Any], None], core_error: type) -> Callable[[Any], None]:
    """One example: counted, and classified as a valid value, a typed error or a failure."""

    def body(value: Any) -> None:
        result.cases += 1
        try:
            with alarm(5.0):
                target(value)
        except core_error:
            result.typed_errors += 1
        except (Exception, Hang) as exc:
            result.failures += 1
            kind = type(exc).__name__ + (": " + str(exc)[:80] if isinstance(exc, AssertionError) else "")
            result.examples.setdefault(kind, repr(value)[:160])

    return body


def run_fuzz(examples: int, seed: Optional[int]) -> List[FuzzResult]:
    from hypothesis import HealthCheck, Phase, example, given, seed as hypothesis_seed, settings

    error_class = core_error()
    pool = strategies()
    known = corpus()
    results = []
    for name, (key, target) in fuzz_targets().items():
        result = FuzzResult(name)

        body = _fuzz_body(result, target, error_class)
        test = given(pool[key])(body)
        for value in known.get(key, []):
            test = example(value)(test)
        test = settings(
            max_examples=examples,
            derandomize=seed is None,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(test)
        if seed is not None:
            test = hypothesis_seed(seed)(test)
        test()
        results.append(result)
    return results
