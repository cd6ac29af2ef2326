"""Refusals are remembered briefly and never outlive a sign-in; every tenant spelling and superset share tokens."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from oauth_core import EntraClient, InteractionRequired, MemoryTokenCache
from oauth_core.core.cache_rules import REFUSAL_MEMORY, remove_account
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

GRAPH = ["https://graph.microsoft.com/User.Read"]
PASSWORD_CHANGED = json.dumps(
    {
        "error": "invalid_grant",
        "error_description": "AADSTS50173: The provided grant has expired due to it being revoked.",
        "error_codes": [50173],
        "trace_id": "00000000-0000-0000-0000-000000000001",
        "correlation_id": "00000000-0000-0000-0000-000000000002",
    }
)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as running:
        yield running


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


OPENED: list = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def signed_in(emu: Emulator, tenant: str, cache: MemoryTokenCache, clock: Clock) -> EntraClient:
    client = EntraClient(emu.config.clients[0].client_id, tenant, authority_host=emu.url, cache=cache, clock=clock)
    OPENED.append(client)
    user = emu.config.users[0]
    client.acquire_by_password(user.username, user.password)
    return client


def refuse_next_refresh(emu: Emulator) -> None:
    emu.inject("token", Fault("status", status=400, body=PASSWORD_CHANGED), times=1)


def token_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.endpoint == "token")


def test_signing_in_again_clears_a_refusal_of_another_scope(emu: Emulator) -> None:
    cache, clock = MemoryTokenCache(), Clock()
    client = signed_in(emu, "organizations", cache, clock)
    refuse_next_refresh(emu)
    with pytest.raises(InteractionRequired) as refused:
        client.get_token(scopes=GRAPH)
    assert 50173 in refused.value.error_codes
    before = token_requests(emu)
    with pytest.raises(InteractionRequired):
        client.get_token(scopes=GRAPH)  # remembered: not resent within the window
    assert token_requests(emu) == before

    user = emu.config.users[0]
    client.acquire_by_password(user.username, user.password)  # sign in again (the Databricks scope)
    before = token_requests(emu)
    tokens = client.get_token(scopes=GRAPH)
    assert token_requests(emu) == before + 1  # that scope refreshes: one request sent
    assert tokens.claims is not None
    assert tokens.claims["aud"] in ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")


def test_a_sign_in_under_another_tenant_spelling_clears_it_too(emu: Emulator) -> None:
    cache, clock = MemoryTokenCache(), Clock()
    by_guid = signed_in(emu, emu.tenant_id, cache, clock)  # as `oauth-core databricks` spells it
    refuse_next_refresh(emu)
    with pytest.raises(InteractionRequired):
        by_guid.get_token(scopes=GRAPH)
    signed_in(emu, "organizations", cache, clock)  # as `oauth-core login` spells it
    before = token_requests(emu)
    by_guid.get_token(scopes=GRAPH)
    assert token_requests(emu) == before + 1


def test_a_refusal_is_tried_again_after_the_window(emu: Emulator) -> None:
    cache, clock = MemoryTokenCache(), Clock()
    client = signed_in(emu, "organizations", cache, clock)
    refuse_next_refresh(emu)
    with pytest.raises(InteractionRequired):
        client.get_token(scopes=GRAPH)
    clock.now += REFUSAL_MEMORY + 1
    before = token_requests(emu)
    client.get_token(scopes=GRAPH)  # the refusal was not Entra's last word: resent, and it works now
    assert token_requests(emu) == before + 1


def test_logout_of_an_account_clears_its_marks_in_every_tenant(emu: Emulator) -> None:
    cache, clock = MemoryTokenCache(), Clock()
    client = signed_in(emu, emu.tenant_id, cache, clock)
    refuse_next_refresh(emu)
    with pytest.raises(InteractionRequired):
        client.get_token(scopes=GRAPH)
    [account] = [a["account"] for a in cache.snapshot()["accounts"].values()]
    assert cache.snapshot()["flags"]
    organizations = EntraClient(emu.config.clients[0].client_id, "organizations", authority_host=emu.url)
    OPENED.append(organizations)
    cache.save(lambda state: remove_account(state, organizations.cache_scope, account))
    state = cache.snapshot()
    assert state["flags"] == {} and state["access_tokens"] == {} and state["accounts"] == {}


def test_every_spelling_of_a_tenant_shares_one_cached_token(emu: Emulator) -> None:
    cache, clock = MemoryTokenCache(), Clock()
    signed_in(emu, "organizations", cache, clock)  # as `oauth-core login` spells it
    by_guid = EntraClient(
        emu.config.clients[0].client_id, emu.tenant_id.upper(), authority_host=emu.url, cache=cache, clock=clock
    )
    OPENED.append(by_guid)
    before = token_requests(emu)
    assert by_guid.get_token().access_token  # the token the organizations sign-in cached: no request
    assert token_requests(emu) == before
    [key] = cache.snapshot()["access_tokens"]
    assert f"|{emu.tenant_id}|" in key  # filed under the tenant id the token came from


def test_a_cached_superset_serves_a_subset_request(emu: Emulator) -> None:
    cache, clock = MemoryTokenCache(), Clock()
    client = EntraClient(
        emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url, cache=cache, clock=clock
    )
    OPENED.append(client)
    user = emu.config.users[0]
    both = ["https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read"]
    tokens = client.acquire_by_password(user.username, user.password, scopes=both)
    before = token_requests(emu)
    assert client.get_token(scopes=GRAPH).access_token == tokens.access_token
    assert token_requests(emu) == before
