"""Cache hits in constant time: indexes per state, claims decoded only when read, and a file cache
that reads the file only when it changed (no timing here: the figures live in bench/)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any, List

import pytest

import oauth_core.drivers.stores as stores
from oauth_core import EntraClient, FileTokenCache, MemoryTokenCache, TokenSet
from oauth_core.core import cache_index, claims as claims_module
from oauth_core.core.cache_rules import LazyClaims, store

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
CLIENT = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
SCOPE = ("2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",)


def _b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def token(i: int, exp: int) -> str:
    claims = {"aud": SCOPE[0].split("/")[0], "exp": exp, "oid": f"{i:08d}-0000-0000-0000-000000000000", "tid": TENANT}
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64({**claims, 'upn': f'u{i}@x.com', 'scp': 'x'})}.sig"


def account(i: int) -> str:
    return f"{i:08d}-0000-0000-0000-000000000000.{TENANT}"


def fill(client: EntraClient, count: int, start: int = 0) -> None:
    exp = int(time.time()) + 3600

    def apply(state: Any) -> None:
        for i in range(start, start + count):
            raw = token(i, exp)
            tokens = TokenSet(
                raw,
                "Bearer",
                SCOPE,
                float(exp),
                refresh_token=f"rt{i}",
                claims=json.loads(base64.urlsafe_b64decode(raw.split(".")[1] + "==")),
            )
            store(state, client.cache_scope, tokens, SCOPE)

    client.cache.save(apply)


def client_on(cache: Any) -> EntraClient:
    return EntraClient(CLIENT, TENANT, authority_host="http://127.0.0.1:9", cache=cache)


def test_hits_name_any_of_many_accounts_by_id_or_username() -> None:
    with client_on(MemoryTokenCache()) as client:
        fill(client, 300)
        assert client.get_token(account=account(123)).claims["upn"] == "u123@x.com"
        assert client.get_token(account="u7@x.com").claims["oid"].startswith("00000007")
        fill(client, 1, start=300)  # a new state: the index follows it
        assert client.get_token(account="u300@x.com").access_token


def test_the_index_is_built_once_per_state(monkeypatch: pytest.MonkeyPatch) -> None:
    built: List[int] = []
    real = cache_index._Index.__init__

    def counting(self: Any, state: Any) -> None:
        built.append(1)
        real(self, state)

    monkeypatch.setattr(cache_index._Index, "__init__", counting)
    with client_on(MemoryTokenCache()) as client:
        fill(client, 50)
        for i in range(50):
            client.get_token(account=account(i))
    assert len(built) == 1


def test_claims_are_decoded_only_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: List[str] = []
    real = claims_module.unverified_claims
    monkeypatch.setattr(claims_module, "unverified_claims", lambda t: decoded.append(t) or real(t))
    with client_on(MemoryTokenCache()) as client:
        fill(client, 1)
        decoded.clear()
        tokens = client.get_token()
        assert decoded == []  # a hit decodes nothing
        assert isinstance(tokens.claims, LazyClaims)
        assert tokens.claims["upn"] == "u0@x.com" and dict(tokens.claims)["tid"] == TENANT
        assert len(decoded) == 1
        assert tokens.claims["oid"] and len(decoded) == 1  # once per TokenSet


def test_a_file_hit_reads_the_file_only_when_it_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cache" / "tokens.json"
    reads: List[Path] = []
    real = stores.read_private_bytes
    monkeypatch.setattr(stores, "read_private_bytes", lambda p, **kw: reads.append(p) or real(p, **kw))
    with client_on(FileTokenCache(path)) as writer, client_on(FileTokenCache(path)) as reader:
        fill(writer, 20)
        time.sleep(stores.SETTLE_SECONDS + 0.05)
        reader.get_token(account=account(3))
        reads.clear()
        for i in range(20):
            reader.get_token(account=account(i))
        assert reads == []  # unchanged: served from what was read
        fill(writer, 1, start=20)  # another process adds an account: the file is replaced
        assert reader.get_token(account=account(20)).access_token
        assert reads  # read again, and the new account is there


def test_a_file_changed_in_place_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.json"
    with client_on(FileTokenCache(path)) as client:
        fill(client, 2)
        time.sleep(stores.SETTLE_SECONDS + 0.05)
        client.get_token(account=account(1))
        state = json.loads(path.read_text())
        for section in ("access_tokens", "refresh_tokens", "accounts"):
            state[section] = {k: v for k, v in state[section].items() if account(1) not in k}
        with open(path, "r+", encoding="utf-8") as handle:  # an edit in place keeps the inode
            handle.write(json.dumps(state))
            handle.truncate()
        os.utime(path)
        from oauth_core import InteractionRequired

        with pytest.raises(InteractionRequired):
            client.get_token(account=account(1))


def test_a_cached_file_state_still_refuses_a_file_that_became_unsafe(tmp_path: Path) -> None:
    from oauth_core import CacheError

    path = tmp_path / "cache" / "tokens.json"
    with client_on(FileTokenCache(path)) as client:
        fill(client, 1)
        time.sleep(stores.SETTLE_SECONDS + 0.05)
        client.get_token()
        os.chmod(path, 0o644)
        with pytest.raises(CacheError):
            client.get_token()
