"""Service Fabric's endpoint: TLS trusted by the pinned thumbprint only, checked before anything is sent."""

from __future__ import annotations

import asyncio
import io
from typing import Iterator

import pytest

from oauth_core import AsyncManagedIdentity, ManagedIdentity, SecurityCheckError
from oauth_core.cli import main
from oauth_core.emulator import Emulator, EmulatorConfig


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=True) as emu:
        yield emu


def fabric_requests(emulator: Emulator) -> int:
    return sum(1 for r in emulator.requests if r.endpoint == "servicefabric")


def test_the_pinned_certificate_is_trusted_without_a_ca(emulator: Emulator) -> None:
    env = emulator.identity_environment("servicefabric")
    assert env["IDENTITY_ENDPOINT"].startswith("https://")
    with ManagedIdentity(environ=env) as identity:  # no CA bundle given: only the pin can make this work
        tokens = identity.get_token()
    assert tokens.claims is not None and tokens.claims["aud"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
    [seen] = [r for r in emulator.requests if r.endpoint == "servicefabric"][-1:]
    assert seen.param("api-version") == "2019-07-01-preview" and "secret" in seen.header_names


def test_a_wrong_pin_sends_nothing(emulator: Emulator) -> None:
    env = dict(emulator.identity_environment("servicefabric"), IDENTITY_SERVER_THUMBPRINT="ab" * 20)
    before = fabric_requests(emulator)
    with ManagedIdentity(environ=env) as identity, pytest.raises(SecurityCheckError) as caught:
        identity.get_token()
    assert "IDENTITY_SERVER_THUMBPRINT" in str(caught.value) and env["IDENTITY_HEADER"] not in str(caught.value)
    assert fabric_requests(emulator) == before  # refused after the handshake, before the request


def test_a_wrong_pin_sends_nothing_async(emulator: Emulator) -> None:
    env = dict(emulator.identity_environment("servicefabric"), IDENTITY_SERVER_THUMBPRINT="cd" * 20)
    before = fabric_requests(emulator)

    async def fetch() -> None:
        async with AsyncManagedIdentity(environ=env) as identity:
            await identity.get_token()

    with pytest.raises(SecurityCheckError):
        asyncio.run(fetch())
    assert fabric_requests(emulator) == before
    good = emulator.identity_environment("servicefabric")

    async def fetch_good() -> str:
        async with AsyncManagedIdentity(environ=good) as identity:
            return (await identity.get_token()).access_token

    assert asyncio.run(fetch_good())


def test_the_command_line_exits_4_on_a_wrong_pin(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(emulator.identity_environment("servicefabric"), IDENTITY_SERVER_THUMBPRINT="ef" * 20)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    assert main(["token", "--managed-identity", "--no-cache"], stdout=out, stderr=err) == 4
    assert out.getvalue() == "" and env["IDENTITY_HEADER"] not in err.getvalue()
