"""Shared test setup: every test runs with a clean environment and its own OAUTH_CORE_HOME.

No test may reach the real network, read the developer's proxy/CA settings, or really sleep:
retry waits go to :class:`FakeClock`, which records them and advances a fake monotonic clock
that the retry policy's deadline reads (``RetryPolicy(sleep=..., clock=...)``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, List

import pytest

from oauth_core.drivers.retry import RetryPolicy

PLACE_ENV_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_", "ACTIONS_ID_TOKEN_", "SYSTEM_OIDC", "SYSTEM_ACCESSTOKEN")
ISOLATED_ENV = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_USERNAME",
    "OAUTH_CORE_PASSWORD",
    "OAUTH_CORE_HOME",
    "XDG_STATE_HOME",
    "NETRC",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Remove every variable oauth_core or httpx reads; OAUTH_CORE_HOME is a fresh tmp dir.

    respx intercepts httpx's own transport (httpcore's pool), not the lean one, so the modules
    that mock with respx send through httpx's transport (``OAUTH_CORE_TRANSPORT=httpx``); every
    other test, and every real-socket test, sends through the lean transport, the default.
    """
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OAUTH_CORE_TRANSPORT", raising=False)
    if "respx" in vars(request.module):
        monkeypatch.setenv("OAUTH_CORE_TRANSPORT", "httpx")
    for name in list(os.environ):  # every credential of the place: managed identity, federation, CI tokens
        if name.startswith(PLACE_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "oauth-core-home"
    monkeypatch.setenv("OAUTH_CORE_HOME", str(home))
    # A managed identity lookup with nothing else set goes to IMDS: never the real 169.254.169.254.
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    return home


class FakeClock:
    """A sleep that returns at once, records each wait and moves a fake monotonic clock on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """A FakeClock for RetryPolicy's ``sleep`` and ``clock``."""
    return FakeClock()


@pytest.fixture
def make_policy(clock: FakeClock) -> Callable[..., RetryPolicy]:
    """``make_policy(**overrides)``: a RetryPolicy that sleeps on the fake clock (jitter off by default)."""

    def make(**overrides: Any) -> RetryPolicy:
        settings: dict[str, Any] = {"jitter": False, "sleep": clock.sleep, "clock": clock.monotonic}
        settings.update(overrides)
        return RetryPolicy(**settings)

    return make


@pytest.fixture
def policy(make_policy: Callable[..., RetryPolicy]) -> RetryPolicy:
    """The default RetryPolicy values, jitter off, sleeping on the fake clock."""
    return make_policy()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> FakeClock:
    """Make every RetryPolicy() the client builds itself (the CLI's) sleep on the fake clock.

    Patching ``time.sleep`` would not help: the dataclass default ``sleep=time.sleep`` captured
    the function object when retry.py was imported. The drivers look ``RetryPolicy`` up in
    :mod:`oauth_core.drivers.common` (and ``fetch_jwks`` in sync) at call time, so that name is what gets replaced.
    """
    import oauth_core.drivers.common
    import oauth_core.drivers.identity
    import oauth_core.drivers.sync

    # sync: fetch_jwks; identity: the managed identity clients' IMDS policy
    for module in (oauth_core.drivers.common, oauth_core.drivers.sync, oauth_core.drivers.identity):
        monkeypatch.setattr(
            module, "RetryPolicy", functools.partial(RetryPolicy, sleep=clock.sleep, clock=clock.monotonic)
        )
    return clock


@pytest.fixture
def no_realm_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Password grants without the user realm lookup first, for tests that mock only the token
    endpoint (respx): the lookup and WS-Trust have tests of their own."""
    from oauth_core.core.flows import ClientBase

    monkeypatch.setattr(ClientBase, "user_realm_discovery", False)
