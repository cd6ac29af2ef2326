"""The pytest plugin (entry point ``pytest11``): the ``entra_emulator`` fixture.

Installed with the package, pytest loads it in every project; loading costs nothing: httpx,
cryptography and the emulator are imported only when a test asks for the fixture.

``entra_emulator`` is session-scoped: one emulated tenant on ``127.0.0.1`` and a free port serves
the whole run (:class:`oauth_core.testing.fixture.EntraEmulator`). Before each test its
``requests`` view starts afresh and the faults still queued are dropped. TLS: the ini option
``entra_emulator_tls = true`` or the command-line option ``--entra-emulator-tls``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

import pytest

if TYPE_CHECKING:
    from .fixture import EntraEmulator

__all__ = ["entra_emulator"]

TLS_INI = "entra_emulator_tls"
_RUNNING: pytest.StashKey[Optional[EntraEmulator]] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("oauth-core", "the entra_emulator fixture (oauth-core)")
    group.addoption(
        "--entra-emulator-tls",
        action="store_true",
        default=None,
        dest="entra_emulator_tls",
        help="serve the entra_emulator fixture over https with a throwaway CA (its ca_bundle)",
    )
    parser.addini(TLS_INI, "serve the entra_emulator fixture over https (true/false)", type="bool", default=False)


def _tls(config: pytest.Config) -> bool:
    option = config.getoption("entra_emulator_tls", default=None)
    return bool(option) if option is not None else bool(config.getini(TLS_INI))


@pytest.fixture(scope="session")
def entra_emulator(request: pytest.FixtureRequest) -> Iterator[EntraEmulator]:
    """A local Entra tenant for the test session: ``.url`` (the authority host), ``.tenant_id``,
    ``.public_client_id``, ``.confidential_client_id``, ``.client_secret``, ``.users``,
    ``.requests`` (this test's, as dicts with no secret), ``.fault(spec)``, ``.ca_bundle`` and
    ``.emulator``."""
    from .fixture import EntraEmulator, MissingExtra

    try:
        running = EntraEmulator.start(tls=_tls(request.config))
    except MissingExtra as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:  # outside the except block: one line, without the ImportError chained to it
        pytest.fail(missing, pytrace=False)
    request.config.stash[_RUNNING] = running
    try:
        yield running
    finally:
        request.config.stash[_RUNNING] = None
        running.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each test sees only its own requests, and no fault another test left queued."""
    running = item.config.stash.get(_RUNNING, None)
    if running is not None:
        running.clear_requests()
        running.clear_faults()
