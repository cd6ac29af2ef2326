"""Single-flight refreshes without a cache lock held over the network (real processes, real emulator).

A silent refresh holds only its own entry's lock (``<cache>.locks/<sha256(key)[:32]>.lock``) while
its request is on the wire; the cache file's lock is taken for the milliseconds of each write.
So refreshes of different accounts in different processes overlap, two processes refreshing the
same entry make one refresh, and an async client waits for another process's refresh in a worker
thread while its event loop keeps running.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import AsyncEntraClient, CacheError, EntraClient, FileTokenCache, TokensNotSaved
from oauth_core.emulator import Emulator, EmulatorConfig, Fault
from oauth_core.emulator.config import User

HELD = 3.0  # how long the service holds each refresh
BOB = User("bob@contoso.onmicrosoft.com", "Bob-Passw0rd!", "Bob Example", "5e0b2a19-8c3d-4e4f-9a6b-0c1d2e3f4a5b")

# A process that signs nothing in: it waits for "go" on stdin, then asks for a token silently.
_CHILD = """
import json, sys, time
from oauth_core import EntraClient, FileTokenCache
url, tenant, client_id, path, account = sys.argv[1:6]
client = EntraClient(client_id, tenant, authority_host=url, cache=FileTokenCache(path))
print("ready", flush=True)
sys.stdin.readline()
started = time.monotonic()
token = client.get_token(account=account)
print(json.dumps({"token": token.access_token, "seconds": time.monotonic() - started}), flush=True)
"""


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    default = EmulatorConfig.default()
    config = dataclasses.replace(default, token_lifetime=3600, users=(*default.users, BOB))
    with Emulator(config, port=0) as running:
        yield running


def client_id(emulator: Emulator) -> str:
    return emulator.config.clients[0].client_id


def file_client(emulator: Emulator, path: Path) -> EntraClient:
    return EntraClient(client_id(emulator), emulator.tenant_id, authority_host=emulator.url, cache=FileTokenCache(path))


def signed_in(emulator: Emulator, path: Path, *users: User) -> None:
    """Sign ``users`` in to the file cache at ``path``, then age every token into the hard margin."""
    with file_client(emulator, path) as c:
        for user in users:
            c.acquire_by_password(user.username, user.password)
    age(path)


def age(path: Path) -> None:
    with FileTokenCache(path).transaction() as state:
        for key, entry in state["access_tokens"].items():
            state["access_tokens"][key] = {**entry, "expires_at": time.time() + 45}  # below the 40 s margin soon


class Children:
    """Processes that each call ``get_token`` once, all released at the same moment."""

    def __init__(self, emulator: Emulator, path: Path, accounts: List[str]) -> None:
        args = [emulator.url, emulator.tenant_id, client_id(emulator), str(path)]
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-c", _CHILD, *args, account],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for account in accounts
        ]
        for proc in self.procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def go(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def results(self) -> List[Dict[str, Any]]:
        found = []
        for proc in self.procs:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            found.append(json.loads(out.strip().splitlines()[-1]))
        return found


def refreshes(emulator: Emulator) -> int:
    return emulator.count("token", grant_type="refresh_token")


def test_two_processes_refresh_two_accounts_at_the_same_time(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.json"
    alice = emulator.config.users[0]
    signed_in(emulator, path, alice, BOB)
    children = Children(emulator, path, [alice.username, BOB.username])
    emulator.inject("token", Fault("delay", seconds=HELD), times=2)
    before, started = refreshes(emulator), time.monotonic()
    children.go()
    results = children.results()
    took = time.monotonic() - started
    emulator.clear_faults()
    assert refreshes(emulator) - before == 2
    assert took < 1.5 * HELD, f"the two refreshes took {took:.1f} s: they were serialised"
    # Each write merged into the latest file: neither process dropped the other's new token.
    cached = {e["access_token"] for e in json.loads(path.read_text())["access_tokens"].values()}
    assert {r["token"] for r in results} <= cached
    folder = path.with_name("tokens.json.locks")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    locks = sorted(folder.iterdir())
    assert len(locks) == 2 and all(len(p.stem) == 32 and p.suffix == ".lock" for p in locks)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in locks)


def test_two_processes_refreshing_one_account_make_one_refresh(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    alice = emulator.config.users[0]
    signed_in(emulator, path, alice)
    children = Children(emulator, path, [alice.username, alice.username])
    emulator.inject("token", Fault("delay", seconds=1.0), times=2)
    before = refreshes(emulator)
    children.go()
    results = children.results()
    emulator.clear_faults()
    assert refreshes(emulator) - before == 1
    assert results[0]["token"] == results[1]["token"]


class Heartbeat:
    """A task that wakes every 5 ms and records the longest time the event loop kept it waiting."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: Optional[asyncio.Task[None]] = None

    async def _beat(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.longest = max(self.longest, now - last)
            last = now

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat())
        await asyncio.sleep(0.02)  # beating already: a stall from here on is seen

    def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()


def test_an_async_client_waits_for_another_process_off_its_event_loop(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    alice = emulator.config.users[0]
    signed_in(emulator, path, alice)
    other = Children(emulator, path, [alice.username])
    emulator.inject("token", Fault("delay", seconds=HELD))
    before = refreshes(emulator)
    other.go()
    time.sleep(1.0)  # the other process now holds the entry's lock, its refresh on the wire

    async def run() -> Tuple[str, float, str, float]:
        heartbeat = Heartbeat()
        async with AsyncEntraClient(
            client_id(emulator), emulator.tenant_id, authority_host=emulator.url, cache=FileTokenCache(path)
        ) as client:
            await heartbeat.start()  # (after building the client: loading CA certificates is not cache work)
            started = time.monotonic()
            waited_for = (await client.get_token()).access_token
            waited = time.monotonic() - started
            waiting_loop = heartbeat.longest
            await asyncio.to_thread(age, path)
            emulator.inject("token", Fault("delay", seconds=0.5))
            own = (await client.get_token()).access_token  # its own refresh: file work off-loop too
        heartbeat.stop()
        return waited_for, waited, own, max(waiting_loop, heartbeat.longest)

    waited_for, waited, own, stalled = asyncio.run(run())
    [theirs] = other.results()
    assert waited_for == theirs["token"]  # it used the other process's refresh ...
    assert waited > HELD - 1.0 - 0.5  # ... after waiting for it
    assert refreshes(emulator) - before == 2  # theirs, then its own
    assert own != waited_for
    assert stalled < 0.1, f"the event loop stalled for {stalled * 1000:.0f} ms"


def test_a_refresh_that_cannot_be_saved_hands_over_its_tokens(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    signed_in(emulator, path, emulator.config.users[0])
    emulator.inject("token", Fault("delay", seconds=1.0))
    spoil = threading.Timer(0.5, os.chmod, (path, 0o644))  # while the refresh is on the wire
    spoil.start()
    with file_client(emulator, path) as c:
        with pytest.raises(TokensNotSaved) as caught:
            c.get_token()
    spoil.join()
    assert isinstance(caught.value.cause, CacheError)
    assert caught.value.tokens.refresh_token and caught.value.tokens.access_token.startswith("eyJ")


def test_the_core_imports_no_driver() -> None:
    core = Path(__file__).resolve().parents[1] / "oauth_core" / "core"
    for module in sorted(core.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert (node.module or "").split(".")[0] not in ("drivers", "integrations", "cli", "emulator"), module
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith(("oauth_core.drivers", "oauth_core.integrations")) for n in names), module
