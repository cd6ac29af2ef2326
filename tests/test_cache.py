"""The token cache and silent acquisition: freshness zones, rotation, single flight, crash safety."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest
import respx

from oauth_core import EntraClient, InteractionRequired, RetryPolicy, TransientError
from oauth_core.core.cache_rules import (
    CacheEntry,
    CacheScope,
    accounts,
    find_access_token,
    find_refresh_token,
    freshness,
    remove_account,
    resolve_account,
    scope_key,
    store,
)
from oauth_core.core.errors import ConfigError
from oauth_core.core.protocol import DATABRICKS_SCOPE, TokenSet
from oauth_core.drivers.stores import FileTokenCache, MemoryTokenCache
from tests.fixturelib import mint_jwt

# These tests mock only the token endpoint: the user realm lookup is tested in test_wstrust.py.
pytestmark = pytest.mark.usefixtures("no_realm_discovery")

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
CLIENT = "12a34b56-789c-0d12-e3fa-b456789c0123"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
WHERE = CacheScope("https://login.microsoftonline.com", TENANT, CLIENT)
SCOPES = (DATABRICKS_SCOPE, "offline_access", "openid", "profile")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def access_token(n: int, oid: str = "bbbbbbbb-0000-0000-0000-000000000002") -> str:
    return mint_jwt(
        {
            "aud": "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d",
            "oid": oid,
            "tid": TENANT,
            "upn": f"user{n}@x.com",
            "scp": "user_impersonation",
            "n": n,
        }
    )


def token_set(n: int = 1, *, expires_at: float = 1_800_003_600.0, refresh: str = "rt-1", oid: str = "") -> TokenSet:
    oid = oid or "bbbbbbbb-0000-0000-0000-000000000002"
    token = access_token(n, oid)
    from oauth_core.core.claims import unverified_claims

    return TokenSet(
        access_token=token,
        token_type="Bearer",
        scopes=(DATABRICKS_SCOPE,),
        expires_at=expires_at,
        refresh_token=refresh,
        claims=unverified_claims(token),
        raw={},
    )


def body(n: int, refresh: str, expires_in: int = 3600) -> Dict[str, Any]:
    return {
        "token_type": "Bearer",
        "scope": "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/user_impersonation",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token(n),
        "refresh_token": refresh,
    }


# -- pure cache operations -------------------------------------------------------------------


def test_store_and_find() -> None:
    state = MemoryTokenCache().snapshot()
    account = store(state, WHERE, token_set(), SCOPES)
    assert account == f"bbbbbbbb-0000-0000-0000-000000000002.{TENANT}"
    entry = find_access_token(state, WHERE, account, [DATABRICKS_SCOPE, "openid"])  # OIDC scopes do not matter
    assert entry is not None and entry.username == "user1@x.com"
    assert find_refresh_token(state, WHERE, account) == "rt-1"
    assert [a["username"] for a in accounts(state, WHERE)] == ["user1@x.com"]
    assert "rt-1" not in repr(entry) and entry.access_token not in repr(entry)


def test_a_response_without_refresh_token_keeps_the_old_one() -> None:
    state = MemoryTokenCache().snapshot()
    account = store(state, WHERE, token_set(refresh="rt-old"), SCOPES)
    store(state, WHERE, token_set(2, refresh=""), SCOPES)
    assert find_refresh_token(state, WHERE, account) == "rt-old"


def test_scope_key_ignores_oidc_scopes_and_order() -> None:
    assert scope_key(["b/.default", "openid", "a/x"]) == scope_key(["a/x", "b/.default", "offline_access"])


def test_resolve_account_by_name_and_ambiguity() -> None:
    state = MemoryTokenCache().snapshot()
    first = store(state, WHERE, token_set(1, oid="bbbbbbbb-0000-0000-0000-000000000002"), SCOPES)
    assert resolve_account(state, WHERE, None) == first
    store(state, WHERE, token_set(2, oid="cccccccc-0000-0000-0000-000000000003"), SCOPES)
    with pytest.raises(ConfigError, match="several accounts"):
        resolve_account(state, WHERE, None)
    assert resolve_account(state, WHERE, "user1@x.com") == first
    assert resolve_account(state, WHERE, "nobody") is None
    remove_account(state, WHERE, first)
    assert resolve_account(state, WHERE, None) != first


@pytest.mark.parametrize(
    ("left", "refresh_at", "min_validity", "expected"),
    [
        (3000, None, 300, "fresh"),
        (299, None, 300, "hard"),  # below min_validity
        (299, None, 200, "soft"),  # valid enough, but inside the 5-minute window
        (39, None, 0, "hard"),  # below the 40 s hard margin
        (2000, 500.0, 300, "soft"),  # Entra's refresh_in has passed
        (2000, 5000.0, 300, "fresh"),  # refresh_in still ahead
    ],
)
def test_freshness_zones(left: float, refresh_at: Any, min_validity: float, expected: str) -> None:
    entry = CacheEntry("t", "Bearer", (), 1000.0 + left, refresh_at, "a", None)
    assert freshness(entry, 1000.0, min_validity=min_validity) == expected


def test_hard_margin_applies_even_with_small_min_validity() -> None:
    entry = CacheEntry("t", "Bearer", (), 1040.0, None, "a", None)
    assert freshness(entry, 1000.0, min_validity=0) == "hard"


# -- get_token -------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> Iterator[EntraClient]:
    policy = RetryPolicy(max_attempts=1, sleep=lambda s: None)
    with EntraClient(CLIENT, TENANT, retry=policy, clock=clock) as c:
        yield c


def _seed(client: EntraClient, expires_in: float, refresh: str = "rt-1") -> None:
    with client.cache.transaction() as state:
        store(state, client._where, token_set(expires_at=client.clock() + expires_in, refresh=refresh), SCOPES)


@respx.mock(assert_all_mocked=True)
def test_fresh_token_is_served_without_a_request(client: EntraClient) -> None:
    route = respx.post(TOKEN_URL)
    _seed(client, 3600)
    assert client.get_token().access_token == access_token(1)
    assert route.call_count == 0


@respx.mock
def test_hard_expiry_refreshes_and_stores_the_rotated_token(client: EntraClient) -> None:
    route = respx.post(TOKEN_URL).mock(return_value=httpx.Response(200, json=body(2, "rt-2")))
    _seed(client, 100)
    tokens = client.get_token()
    assert tokens.access_token == access_token(2)
    assert route.call_count == 1
    assert dict(httpx.QueryParams(route.calls.last.request.content.decode()))["refresh_token"] == "rt-1"
    state = client.cache.snapshot()
    assert find_refresh_token(state, client._where, resolve_account(state, client._where, None) or "") == "rt-2"
    assert client.get_token().access_token == access_token(2) and route.call_count == 1


@respx.mock
def test_soft_window_failure_serves_the_old_token_and_waits_30s(client: EntraClient, clock: Clock) -> None:
    route = respx.post(TOKEN_URL).mock(return_value=httpx.Response(503, text="busy"))
    _seed(client, 400)  # valid, but inside the 5-minute window once 100 s pass
    clock.now += 110
    assert client.get_token(min_validity=60).access_token == access_token(1)
    assert route.call_count == 1
    clock.now += 10
    assert client.get_token(min_validity=60).access_token == access_token(1)
    assert route.call_count == 1  # no second attempt within 30 s
    clock.now += 25
    assert client.get_token(min_validity=60).access_token == access_token(1)
    # a public client does not resend an identical request within 60 s of a 503 (MSAL's default)
    assert route.call_count == 1
    clock.now += 30
    client.get_token(min_validity=60)
    assert route.call_count == 2


@respx.mock
def test_hard_expiry_failure_raises(client: EntraClient) -> None:
    respx.post(TOKEN_URL).mock(return_value=httpx.Response(503, text="busy"))
    _seed(client, 30)
    with pytest.raises(TransientError):
        client.get_token()


@respx.mock
def test_invalid_grant_marks_the_scope_set_and_keeps_the_refresh_token(client: EntraClient) -> None:
    refused = {
        "error": "invalid_grant",
        "error_description": "AADSTS50076: MFA",
        "error_codes": [50076],
        "suberror": "basic_action",
    }
    route = respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json=refused))
    _seed(client, 10)
    with pytest.raises(InteractionRequired) as caught:
        client.get_token()
    assert caught.value.error_codes == (50076,) and route.call_count == 1
    with pytest.raises(InteractionRequired):
        client.get_token()
    assert route.call_count == 1  # marked: no second refresh for this scope set
    state = client.cache.snapshot()
    assert find_refresh_token(state, client._where, resolve_account(state, client._where, None) or "") == "rt-1"
    # another scope set may still be refreshed with the same refresh token
    route.mock(return_value=httpx.Response(200, json=body(3, "rt-3")))
    tokens = client.get_token(scopes="https://graph.microsoft.com/.default")
    assert tokens.access_token == access_token(3)
    assert "graph.microsoft.com" in dict(httpx.QueryParams(route.calls.last.request.content.decode()))["scope"]


def test_nothing_cached_is_interaction_required(client: EntraClient) -> None:
    with pytest.raises(InteractionRequired, match="No signed-in account"):
        client.get_token()


@respx.mock
def test_threads_share_one_refresh(client: EntraClient) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.2)
        return httpx.Response(200, json=body(2, "rt-2"))

    route = respx.post(TOKEN_URL).mock(side_effect=slow)
    _seed(client, 10)
    results: List[str] = []
    threads = [threading.Thread(target=lambda: results.append(client.get_token().access_token)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert route.call_count == 1
    assert results == [access_token(2)] * 20


# -- the file cache --------------------------------------------------------------------------


def test_file_cache_is_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.json"
    with FileTokenCache(path).transaction() as state:
        store(state, WHERE, token_set(), SCOPES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    other = FileTokenCache(path).snapshot()
    assert find_refresh_token(other, WHERE, resolve_account(other, WHERE, None) or "") == "rt-1"


@pytest.mark.parametrize(
    "content", ["{", "[]", '{"version": 2}', '{"version": 1, "access_tokens": []}', '{"version": true}']
)
def test_damaged_file_cache_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="delete it"):
        FileTokenCache(path).snapshot()


def test_hand_edited_entry_is_ignored_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    cache = FileTokenCache(path)
    with cache.transaction() as state:
        account = store(state, WHERE, token_set(), SCOPES)
    data = json.loads(path.read_text())
    for entry in data["access_tokens"].values():
        entry["expires_at"] = "soon"
    path.write_text(json.dumps(data))
    assert find_access_token(cache.snapshot(), WHERE, account, SCOPES) is None


_WRITER = """
import sys
from oauth_core.drivers.stores import FileTokenCache
cache = FileTokenCache(sys.argv[1])
n = 0
print("ready", flush=True)
while True:
    n += 1
    with cache.transaction() as state:
        state["access_tokens"] = {f"key{i}": {"access_token": "x" * 2000, "n": n} for i in range(50)}
"""


def test_sigkill_during_writes_never_leaves_a_broken_cache(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    runs = 25
    for i in range(runs):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.02 + (i % 5) * 0.013)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if path.exists():
            data = json.loads(path.read_text())  # never half a file
            assert data["version"] == 1 and len(data["access_tokens"]) == 50
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= runs  # temp files of killed writers may remain; the cache never is one


# -- two processes, one refresh (real emulator, real sockets) ----------------------------------


def test_two_processes_refresh_once(tmp_path: Path, isolated_env: Path) -> None:
    pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")
    import dataclasses

    from oauth_core.emulator import Emulator, EmulatorConfig

    config = dataclasses.replace(EmulatorConfig.default(), token_lifetime=3600)
    with Emulator(config, port=0) as emu:
        env = dict(
            os.environ,
            AZURE_AUTHORITY_HOST=emu.url,
            AZURE_TENANT_ID=emu.tenant_id,
            AZURE_CLIENT_ID=config.clients[0].client_id,
        )
        user = config.users[0]
        signed_in = subprocess.run(
            [sys.executable, "-m", "oauth_core", "password", "--username", user.username, "--password-stdin"],
            input=user.password + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert signed_in.returncode == 0, signed_in.stderr
        cache_file = isolated_env / "tokens.json"
        data = json.loads(cache_file.read_text())
        for entry in data["access_tokens"].values():
            entry["expires_at"] = time.time() + 45  # almost expired: inside the hard margin
        cache_file.write_text(json.dumps(data))
        before = emu.count("token", grant_type="refresh_token")
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "oauth_core", "token"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert emu.count("token", grant_type="refresh_token") - before == 1
        assert outputs[0][0] == outputs[1][0] and outputs[0][0].startswith("eyJ")
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    json.loads(cache_file.read_text())
