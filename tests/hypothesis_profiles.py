"""Hypothesis profiles for the fuzz, CLI-walk, secret and fault tests.

``HYPOTHESIS_PROFILE=ci`` (the default) is what CI runs: derandomized (a fixed seed, so every run
tries the same examples), 200 examples per property, a 500 ms deadline per example, no example
database. ``HYPOTHESIS_PROFILE=long`` is for a person with time: 10,000 random examples per
property, no deadline. The profiles are applied per test (``@FUZZ``), not loaded globally, so
the other test modules keep their own settings.
"""

from __future__ import annotations

import os
from typing import Sequence

from hypothesis import HealthCheck, settings

__all__ = ["FUZZ", "PROFILE", "fuzz_settings"]

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=200,
    deadline=500,
    suppress_health_check=_SLOW_IS_FINE,
    print_blob=True,
)
settings.register_profile(
    "long",
    derandomize=False,
    database=None,
    max_examples=10_000,
    deadline=None,
    suppress_health_check=_SLOW_IS_FINE,
    print_blob=True,
)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci").strip() or "ci"
try:
    FUZZ = settings.get_profile(PROFILE)
except Exception as exc:  # hypothesis raises InvalidArgument for an unknown name
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r} is not a profile: use ci or long") from exc


def fuzz_settings(scale: float = 1.0, *, suppress: Sequence[HealthCheck] = ()) -> settings:
    """The chosen profile with ``scale`` times its examples (for properties that are slow per example).

    ``suppress`` adds health checks to ignore, e.g. ``function_scoped_fixture`` for a test that
    resets the fixture's state itself in every example.
    """
    return settings(
        FUZZ,
        max_examples=max(10, int(FUZZ.max_examples * scale)),
        suppress_health_check=[*FUZZ.suppress_health_check, *suppress],
    )
