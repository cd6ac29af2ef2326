"""Test helpers for applications that use oauth_core: the ``entra_emulator`` pytest fixture.

The fixture comes from :mod:`oauth_core.testing.pytest_plugin`, which pytest loads by itself once
the package is installed; :class:`~oauth_core.testing.fixture.EntraEmulator` is the object it
gives a test (it can also be started by hand: ``EntraEmulator.start(tls=False)``, then ``close()``).
Nothing here is imported by the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fixture import EntraEmulator

__all__ = ["EntraEmulator"]


def __getattr__(name: str) -> Any:
    if name == "EntraEmulator":  # lazily: the fixture module imports nothing heavy, but stays on demand
        from .fixture import EntraEmulator

        return EntraEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
