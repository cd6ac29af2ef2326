"""RedisTokenCache against a real redis-server (started here) and the emulator.

L1 hits send nothing to Redis, another process sees the token, access tokens expire in Redis when
they do, keys stay in their namespace, credentials come from the URL or the environment and never
show, refresh tokens can be encrypted at rest, Redis stopped mid-run leaves a working memory cache
(warned once) that shares again once Redis is back, and a fleet of processes refreshes once.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")
pytest.importorskip("redis", reason="the redis extra is not installed")

from redis_server import RedisServer

from oauth_core import ConfigError, EntraClient, RedisTokenCache
from oauth_core.cli import main
from oauth_core.emulator import Emulator, EmulatorConfig, Fault

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    config = dataclasses.replace(EmulatorConfig.default(), token_lifetime=3600)
    with Emulator(config, port=0, tls=False) as running:
        yield running


@pytest.fixture()
def server() -> Iterator[RedisServer]:
    running = RedisServer().start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(autouse=True)
def no_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OAUTH_CORE_CACHE", "OAUTH_CORE_CACHE_KEY", "OAUTH_CORE_REDIS_USERNAME", "OAUTH_CORE_REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def client_for(emulator: Emulator, cache: Any) -> EntraClient:
    return EntraClient(
        emulator.config.clients[0].client_id, emulator.tenant_id, authority_host=emulator.url, cache=cache
    )


def sign_in(emulator: Emulator, cache: Any) -> EntraClient:
    client = client_for(emulator, cache)
    user = emulator.config.users[0]
    client.acquire_by_password(user.username, user.password)
    return client


def age(cache: RedisTokenCache, seconds_left: float) -> None:
    with cache.transaction() as state:
        for key, entry in state["access_tokens"].items():
            state["access_tokens"][key] = {**entry, "expires_at": time.time() + seconds_left}


def refresh_count(emulator: Emulator) -> int:
    return emulator.count("token", grant_type="refresh_token")


def test_round_trip_and_an_l1_hit_sends_nothing_to_redis(emulator: Emulator, server: RedisServer) -> None:
    cache = RedisTokenCache(server.url)
    with sign_in(emulator, cache) as client:
        first = client.get_token()
        before = server.command_calls()
        for _ in range(50):
            assert client.get_token().access_token == first.access_token
        assert server.command_calls() == before  # L1 hits: no command at all


def test_another_client_sees_the_token_without_a_request(emulator: Emulator, server: RedisServer) -> None:
    with sign_in(emulator, RedisTokenCache(server.url)) as client:
        token = client.get_token().access_token
    requests = emulator.count("token")
    with client_for(emulator, RedisTokenCache(server.url)) as other:
        assert other.get_token().access_token == token
    assert emulator.count("token") == requests


def test_access_tokens_expire_in_redis_with_the_token_and_keys_are_namespaced(
    emulator: Emulator, server: RedisServer
) -> None:
    with sign_in(emulator, RedisTokenCache(server.url, namespace="team-a")) as client:
        expires_at = client.get_token().expires_at
    admin = server.admin()
    keys = [k.decode() for k in admin.keys("*")]
    assert keys and all(k.startswith("team-a:") for k in keys)
    (at_key,) = [k for k in keys if k.startswith("team-a:at:")]
    assert emulator.config.clients[0].client_id in at_key and emulator.tenant_id in at_key
    assert abs(admin.pttl(at_key) / 1000 - (expires_at - time.time())) < 3
    assert RedisTokenCache(server.url, namespace="team-b").snapshot()["accounts"] == {}
    cache = RedisTokenCache(server.url, namespace="team-a")
    age(cache, 1.0)  # an expired access token vanishes from Redis by itself
    time.sleep(1.3)
    assert admin.exists(at_key) == 0
    assert cache.latest()["access_tokens"] == {} and cache.latest()["refresh_tokens"]


def test_credentials_from_the_url_or_the_environment_never_shown(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server.admin().acl_setuser("alice", enabled=True, passwords=["+alice-pw-123"], keys=["*"], commands=["+@all"])
    by_url = RedisTokenCache(f"redis://alice:alice-pw-123@127.0.0.1:{server.port}/0")
    assert by_url.latest()["version"] == 1 and by_url.available
    assert "alice-pw-123" not in repr(by_url) and "***" in repr(by_url)
    monkeypatch.setenv("OAUTH_CORE_REDIS_USERNAME", "alice")
    monkeypatch.setenv("OAUTH_CORE_REDIS_PASSWORD", "alice-pw-123")
    by_env = RedisTokenCache(server.bare_url)
    by_env.latest()
    assert by_env.available
    monkeypatch.setenv("OAUTH_CORE_REDIS_PASSWORD", "wrong-pw-456")
    with caplog.at_level(logging.WARNING, logger="oauth_core"):
        refused = RedisTokenCache(server.bare_url)
        assert refused.latest()["accounts"] == {}  # served from memory, not failed
    assert not refused.available
    assert "wrong-pw-456" not in caplog.text and "unreachable" in caplog.text
    with pytest.raises(ConfigError) as info:
        RedisTokenCache("http://:top-secret-pw@127.0.0.1:1/0")
    assert "top-secret-pw" not in str(info.value)


def test_refresh_tokens_encrypted_at_rest(emulator: Emulator, server: RedisServer) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    cache = RedisTokenCache(server.url, encryption_key=key)
    sign_in(emulator, cache).close()
    (record,) = cache.latest()["refresh_tokens"].values()
    refresh_token = record["refresh_token"]
    raw = server.admin().hgetall("oauth-core:refresh_tokens")
    assert raw and all(refresh_token.encode() not in v and v.startswith(b"fernet:") for v in raw.values())
    assert RedisTokenCache(server.url, encryption_key=key).latest()["refresh_tokens"] == {
        k: record for k in cache.latest()["refresh_tokens"]
    }
    other_key = Fernet.generate_key().decode()
    assert RedisTokenCache(server.url, encryption_key=other_key).latest()["refresh_tokens"] == {}
    assert RedisTokenCache(server.url).latest()["refresh_tokens"] == {}
    with pytest.raises(ConfigError, match="Fernet"):
        RedisTokenCache(server.url, encryption_key="not-a-key")


def test_redis_stopped_then_restarted(
    emulator: Emulator, server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisTokenCache(server.url)
    cache.retry_interval = 0.3
    client = sign_in(emulator, cache)
    token = client.get_token().access_token
    server.stop()
    with caplog.at_level(logging.WARNING, logger="oauth_core"):
        assert client.get_token().access_token == token  # L1 keeps serving
        refreshes = refresh_count(emulator)
        age(cache, 100)  # saved in memory
        refreshed = client.get_token().access_token  # a refresh goes straight to Entra
        assert refreshed != token and refresh_count(emulator) == refreshes + 1
        time.sleep(0.4)
        age(cache, 100)
        assert client.get_token().access_token != refreshed  # again, Redis still down
        assert refresh_count(emulator) == refreshes + 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "unreachable" in r.getMessage()]
    assert len(warnings) == 1 and server.password not in caplog.text
    server.start()  # empty: no persistence
    time.sleep(0.4)
    age(cache, 100)
    latest = client.get_token().access_token  # a flow reads Redis: it reconnects
    assert cache.available and refresh_count(emulator) == refreshes + 3
    with client_for(emulator, RedisTokenCache(server.url)) as other:
        assert other.get_token().access_token == latest  # shared again
    client.close()


# -- the fleet: 8 processes, each with its own home, one refresh ---------------------------------

_CHILD = """
import io, sys
from oauth_core.cli import main
argv = sys.argv[1:]
print("ready", flush=True)
sys.stdin.readline()
out, err = io.StringIO(), io.StringIO()
code = main(argv, stdout=out, stderr=err)
print(code, out.getvalue().strip(), err.getvalue().strip().replace(chr(10), " "), flush=True)
"""


def cli_args(emulator: Emulator) -> List[str]:
    client_id = emulator.config.clients[0].client_id
    return ["--client-id", client_id, "--tenant", emulator.tenant_id, "--authority-host", emulator.url]


def test_eight_processes_needing_a_refresh_make_one(emulator: Emulator, server: RedisServer, tmp_path: Path) -> None:
    cache = RedisTokenCache(server.url)
    sign_in(emulator, cache).close()
    age(cache, 120)  # every process needs a refresh (120 s left, 600 s wanted)
    emulator.inject("token", Fault("delay", seconds=0.3), times=8)
    before = refresh_count(emulator)
    children = []
    for n in range(8):
        env = {**os.environ, "OAUTH_CORE_HOME": str(tmp_path / f"home-{n}"), "OAUTH_CORE_CACHE": server.url}
        argv = [sys.executable, "-c", _CHILD, "token", "--min-validity", "600", *cli_args(emulator)]
        children.append(
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
        )
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=60)[0].split(" ", 2) for child in children]
    finally:
        for child in children:
            child.kill()
    assert all(r[0] == "0" for r in results), results
    assert len({r[1] for r in results}) == 1
    assert refresh_count(emulator) == before + 1
    emulator.clear_faults()


# -- the command line ----------------------------------------------------------------------------


def run(argv: List[str]) -> Any:
    out, err = io.StringIO(), io.StringIO()
    return main(argv, stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_cli_cache_selection_and_accounts_logout_on_redis(
    emulator: Emulator, server: RedisServer, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    sign_in(emulator, RedisTokenCache(server.url)).close()
    code, out, _ = run(["accounts", "--json", "--cache", server.url])
    assert code == 0 and len(json.loads(out)["accounts"]) == 1
    code, out, _ = run(["accounts", "--json", "--cache", "memory"])
    assert code == 0 and json.loads(out)["accounts"] == []
    code, out, _ = run(["accounts", "--json", "--cache", "file"])
    assert code == 0 and json.loads(out)["accounts"] == []
    monkeypatch.setenv("OAUTH_CORE_CACHE", server.url)
    code, out, _ = run(["token", *cli_args(emulator)])
    assert code == 0 and out.strip()
    code, out, _ = run(["accounts", "--json", "--no-cache"])  # --no-cache still means memory
    assert code == 0 and json.loads(out)["accounts"] == []
    code, _, err = run(["logout", *cli_args(emulator)])
    assert code == 0 and "Removed 1 account(s)" in err
    code, out, _ = run(["accounts", "--json"])
    assert code == 0 and json.loads(out)["accounts"] == []
    assert server.admin().hlen("oauth-core:refresh_tokens") == 0
    assert not (isolated_env / "tokens.json").exists()


def test_cli_refuses_a_bad_cache_spec_without_showing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["accounts", "--cache", "memcached://:hush-hush-pw@host"])
    assert code == 2 and "hush-hush-pw" not in err and "--cache" in err
    monkeypatch.setenv("OAUTH_CORE_CACHE", "nonsense")
    code, _, err = run(["accounts"])
    assert code == 2 and "OAUTH_CORE_CACHE" in err
    code, _, err = run(["accounts", "--no-cache", "--cache", "file"])
    assert code == 2


def test_cli_subprocess_with_env_cache(emulator: Emulator, server: RedisServer, tmp_path: Path) -> None:
    with sign_in(emulator, RedisTokenCache(server.url)) as client:
        token = client.get_token().access_token
    env = {**os.environ, "OAUTH_CORE_HOME": str(tmp_path / "home"), "OAUTH_CORE_CACHE": server.url}
    done = subprocess.run(
        [sys.executable, "-m", "oauth_core", "token", *cli_args(emulator)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == token and server.password not in done.stderr
