"""Hardening of the file token cache and the private state files (issue 11).

Each case says what is wrong with the cache (version, section, JSON, NaN), refuses caches and
folders that another local user could have written (as ssh does), never follows a symbolic link
at the cache or its lock file, caps the size, and is caught by ``check_usable`` before a grant
sends anything.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Callable, Iterator, Type

import httpx
import pytest
import respx

from oauth_core import EntraClient, RetryPolicy
from oauth_core.core.cache_rules import CacheEntry, CacheScope, find_access_token, freshness, store
from oauth_core.core.errors import CacheError, ConfigError
from oauth_core.core.protocol import DATABRICKS_SCOPE, TokenSet
from oauth_core.drivers.files import NotStrictJSON, read_private, state_dir, strict_json, write_private
from oauth_core.drivers.stores import DEFAULT_MAX_BYTES, MAX_BYTES_ENV, FileTokenCache

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX owner and mode bits")

TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
CLIENT = "12a34b56-789c-0d12-e3fa-b456789c0123"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
WHERE = CacheScope("https://login.microsoftonline.com", TENANT, CLIENT)
SCOPES = (DATABRICKS_SCOPE,)
OTHER_UID = 54321
GOOD = {"version": 1, "access_tokens": {}, "refresh_tokens": {}, "accounts": {}, "flags": {}}


def token_set(expires_at: float = 1_800_003_600.0) -> TokenSet:
    claims = {"oid": "bbbbbbbb-0000-0000-0000-000000000002", "tid": TENANT, "upn": "u@x.com", "scp": "x"}
    return TokenSet(
        access_token="at-1",
        token_type="Bearer",
        scopes=SCOPES,
        expires_at=expires_at,
        refresh_token="rt-1",
        claims=claims,
        raw={},
    )


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def refused(call: Callable[[], object], *parts: str, kind: Type[ConfigError] = CacheError) -> ConfigError:
    """The error ``call()`` raises, whose message or hint contains every one of ``parts``."""
    with pytest.raises(kind) as caught:
        call()
    for part in parts:
        assert part in str(caught.value) or part in str(caught.value.hint), (part, str(caught.value))
    return caught.value


def saved(tmp_path: Path) -> FileTokenCache:
    cache = FileTokenCache(tmp_path / "state" / "tokens.json")
    with cache.transaction() as state:
        store(state, WHERE, token_set(), SCOPES)
    return cache


# -- 1. each kind of damage says what it is ----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (json.dumps({**GOOD, "version": 2}), "unknown version 2 (this oauth-core reads version 1)"),
        (json.dumps({**GOOD, "version": True}), "unknown version true"),
        (json.dumps({**GOOD, "version": "1"}), 'unknown version "1"'),
        (json.dumps({**GOOD, "access_tokens": []}), "section 'access_tokens' has the wrong type (a list"),
        (json.dumps({**GOOD, "flags": None}), "section 'flags' has the wrong type (null"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "accounts"}), "section 'accounts' is missing"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "version"}), "it has no version"),
        ("[]", "its JSON is a list, not an object"),
        ("{", "is not JSON (Expecting property name"),
        ("\ufeff{}", "is not JSON"),
        ('{"version": 1, "x": NaN}', "not finite (NaN or Infinity)"),
        ('{"version": 1, "x": -Infinity}', "not finite"),
        ('{"version": 1, "x": 1e999}', "not finite"),
        ("[" * 100_000, "nesting too deep"),
        ("1" * 5000, "number too long"),
    ],
)
def test_each_damage_is_named_with_a_hint(tmp_path: Path, content: str, says: str) -> None:
    path = write(tmp_path / "tokens.json", content)
    error = refused(FileTokenCache(path).snapshot, says, "delete it")
    assert error.hint and "delete the file" in error.hint
    assert "`" not in error.hint and "logout" not in error.hint  # library wording, no CLI command
    refused(FileTokenCache(path).check_usable, says)


def test_another_version_hint_names_the_other_version(tmp_path: Path) -> None:
    path = write(tmp_path / "tokens.json", json.dumps({**GOOD, "version": 7}))
    error = refused(FileTokenCache(path).snapshot, "unknown version 7")
    assert "another version of oauth-core" in str(error.hint)


def test_bytes_that_are_not_utf8_are_not_json(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(b"\xff\xfe{}")
    path.chmod(0o600)
    refused(FileTokenCache(path).snapshot, "is not JSON (not UTF-8 text)")
    with pytest.raises(NotStrictJSON, match="not finite"):
        strict_json(b"[Infinity]")
    assert strict_json(b'{"a": [1.5, 2]}') == {"a": [1.5, 2]}


# -- 5. NaN and non-numbers are never fresh ------------------------------------------------------------


@pytest.mark.parametrize(
    "expires_at", ["Infinity", "nan", "1900000000", True, None, [1], {"x": 1}, pytest.param(10**400, id="10**400")]
)
def test_a_non_number_expiry_is_absent_not_fresh(tmp_path: Path, expires_at: object) -> None:
    cache = saved(tmp_path)
    data = json.loads(cache.path.read_text())
    (key,) = data["access_tokens"]
    data["access_tokens"][key]["expires_at"] = expires_at
    cache.path.write_text(json.dumps(data))
    state = cache.snapshot()
    account = data["access_tokens"][key]["account"]
    assert find_access_token(state, WHERE, account, SCOPES) is None


def test_a_non_number_refresh_at_makes_the_entry_absent(tmp_path: Path) -> None:
    cache = saved(tmp_path)
    data = json.loads(cache.path.read_text())
    (key,) = data["access_tokens"]
    account = data["access_tokens"][key]["account"]
    assert find_access_token(cache.snapshot(), WHERE, account, SCOPES) is not None
    data["access_tokens"][key]["refresh_at"] = "Infinity"
    cache.path.write_text(json.dumps(data))
    assert find_access_token(cache.snapshot(), WHERE, account, SCOPES) is None


@pytest.mark.parametrize("expires_at", [math.nan, math.inf, -math.inf])
def test_freshness_of_a_non_finite_expiry_is_hard(expires_at: float) -> None:
    entry = CacheEntry("at", "Bearer", SCOPES, expires_at, None, "a", None)
    assert freshness(entry, 1000.0, min_validity=0) == "hard"
    ok = CacheEntry("at", "Bearer", SCOPES, 1000.0 + 3600, math.nan, "a", None)
    assert freshness(ok, 1000.0, min_validity=0) == "fresh"  # a NaN refresh_at is ignored


def test_a_non_finite_state_is_never_written(tmp_path: Path) -> None:
    cache = saved(tmp_path)
    before = cache.path.read_bytes()
    with pytest.raises(CacheError, match="not saved"):
        with cache.transaction() as state:
            state["flags"]["x"] = {"last_attempt": math.nan}
    assert cache.path.read_bytes() == before


# -- 2. permissions and owners, as ssh ---------------------------------------------------------------


@posix_only
def test_new_folders_and_files_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTH_CORE_HOME", str(tmp_path / "a" / "b" / "home"))
    home = state_dir()
    write_private(home / "pending" / "x.json", "{}")
    for folder in (tmp_path / "a", tmp_path / "a" / "b", home, home / "pending"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((home / "pending" / "x.json").stat().st_mode) == 0o600
    cache = saved(tmp_path)
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.with_name("tokens.json.lock").stat().st_mode) == 0o600


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o601], ids=oct)
def test_a_cache_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    cache = saved(tmp_path)
    cache.path.chmod(mode)
    error = refused(cache.snapshot, "can be read or written by group or others", f"mode {mode:04o}", "chmod 600")
    assert error.hint == f"chmod 600 {cache.path}"
    refused(cache.check_usable, "group or others")
    with pytest.raises(CacheError):
        with cache.transaction():
            pass
    cache.path.chmod(0o600)
    cache.check_usable()


@posix_only
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o1777, 0o702], ids=oct)
def test_a_folder_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    cache = saved(tmp_path)
    cache.path.parent.chmod(mode)
    error = refused(cache.snapshot, "is writable by group or others", "swap in")
    assert error.hint == f"chmod 700 {cache.path.parent}"
    refused(cache.check_usable, "writable by group or others")
    refused(lambda: write_private(cache.path, "{}", error=CacheError), "writable by group or others")
    cache.path.parent.chmod(0o755)  # readable by others is fine for the folder (the file is 0600)
    cache.check_usable()


@posix_only
def test_folders_above_the_cache_folder_are_not_checked(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    cache = FileTokenCache(shared / "mine" / "tokens.json")
    cache.check_usable()
    with cache.transaction() as state:
        store(state, WHERE, token_set(), SCOPES)
    assert stat.S_IMODE((shared / "mine").stat().st_mode) == 0o700


@posix_only
def test_a_cache_or_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    cache = saved(tmp_path)
    os.chown(cache.path, OTHER_UID, -1)
    refused(cache.snapshot, f"belongs to another user (uid {OTHER_UID})")
    refused(cache.check_usable, "belongs to another user")
    os.chown(cache.path, os.geteuid(), -1)
    cache.check_usable()
    os.chown(cache.path.parent, OTHER_UID, -1)
    refused(cache.check_usable, f"the folder {str(cache.path.parent)!r} belongs to another user")


@posix_only
def test_an_unsafe_lock_file_is_refused(tmp_path: Path) -> None:
    cache = saved(tmp_path)
    lock = cache.path.with_name("tokens.json.lock")
    lock.chmod(0o644)
    refused(cache.check_usable, "lock file", "group or others")
    with pytest.raises(CacheError):
        with cache.transaction():
            pass
    lock.chmod(0o600)
    os.chown(lock, OTHER_UID, -1)
    refused(cache.check_usable, "lock file", "another user")


@posix_only
def test_pending_files_get_the_same_checks(tmp_path: Path) -> None:
    pending = tmp_path / "home" / "pending"
    path = pending / "abc.json"
    write_private(path, '{"state": "s"}')
    assert read_private(path) == '{"state": "s"}'
    assert read_private(pending / "missing.json") is None
    assert read_private(tmp_path / "nowhere" / "missing.json") is None
    pending.chmod(0o777)
    refused(lambda: read_private(path), "writable by group or others", "chmod 700", kind=ConfigError)
    refused(lambda: write_private(pending / "new.json", "{}"), "chmod 700", kind=ConfigError)
    assert not (pending / "new.json").exists()
    pending.chmod(0o700)
    path.chmod(0o644)
    refused(lambda: read_private(path), "chmod 600", kind=ConfigError)
    path.chmod(0o600)
    os.chown(path, OTHER_UID, -1)
    refused(lambda: read_private(path), "belongs to another user", kind=ConfigError)


# -- 3. symbolic links are refused, never followed ---------------------------------------------------


@posix_only
@respx.mock(assert_all_mocked=True)
def test_a_symlinked_lock_file_target_is_never_created(tmp_path: Path) -> None:
    route = respx.post(TOKEN_URL).mock(return_value=httpx.Response(200, json={"access_token": "x"}))
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    target = tmp_path / "elsewhere" / "victim"
    target.parent.mkdir()
    (folder / "tokens.json.lock").symlink_to(target)
    cache = FileTokenCache(folder / "tokens.json")
    refused(cache.check_usable, "lock file", "is a symbolic link")
    with pytest.raises(CacheError, match="symbolic link"):
        with cache.transaction():
            pass
    with EntraClient(CLIENT, TENANT, cache=cache, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(CacheError, match="symbolic link"):
            client.refresh("rt-1")
    assert route.call_count == 0
    assert not target.exists() and not os.path.lexists(target)


@posix_only
def test_a_symlinked_cache_is_refused_and_its_target_never_read(tmp_path: Path) -> None:
    other = saved(tmp_path / "other")  # a valid cache elsewhere
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    (folder / "tokens.json").symlink_to(other.path)
    cache = FileTokenCache(folder / "tokens.json")
    refused(cache.snapshot, "the token cache", "is a symbolic link", "rm ")
    refused(cache.check_usable, "is a symbolic link")
    (folder / "pending.json").symlink_to(other.path)
    refused(lambda: read_private(folder / "pending.json"), "symbolic link", kind=ConfigError)


@posix_only
def test_a_fifo_at_the_cache_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    os.mkfifo(path, 0o600)
    refused(FileTokenCache(path).snapshot, "is not a regular file")


def test_a_directory_at_the_cache_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").mkdir()
    refused(FileTokenCache(tmp_path / "tokens.json").check_usable, "is not a regular file")


# -- 4. the size cap ---------------------------------------------------------------------------------


def test_default_cap_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "tokens.json", "")
    os.truncate(path, DEFAULT_MAX_BYTES + 1)  # sparse: no 64 MB written
    cache = FileTokenCache(path)

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened for reading past its cap")

    monkeypatch.setattr(os, "fdopen", no_read)
    assert cache.max_bytes == 64 * 1024 * 1024
    refused(cache.snapshot, f"is {DEFAULT_MAX_BYTES + 1} bytes, more than the {DEFAULT_MAX_BYTES} allowed")
    error = refused(cache.check_usable, "more than")
    assert MAX_BYTES_ENV in str(error.hint) and "max_bytes=" in str(error.hint)


def test_cap_from_argument_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "tokens.json", json.dumps(GOOD))
    size = path.stat().st_size
    assert FileTokenCache(path, max_bytes=size).snapshot() == GOOD
    refused(FileTokenCache(path, max_bytes=size - 1).snapshot, f"is {size} bytes, more than the {size - 1} allowed")
    monkeypatch.setenv(MAX_BYTES_ENV, str(size - 1))
    assert FileTokenCache(path).max_bytes == size - 1
    refused(FileTokenCache(path).snapshot, "more than")
    assert FileTokenCache(path, max_bytes=size).max_bytes == size  # the argument wins
    monkeypatch.setenv(MAX_BYTES_ENV, " ")
    assert FileTokenCache(path).max_bytes == DEFAULT_MAX_BYTES


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "1.5"])
def test_a_bad_cap_in_the_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv(MAX_BYTES_ENV, bad)
    with pytest.raises(ConfigError, match=MAX_BYTES_ENV):
        FileTokenCache("tokens.json")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "100"])
def test_a_bad_cap_argument_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_bytes"):
        FileTokenCache("tokens.json", max_bytes=bad)  # type: ignore[arg-type]


def test_a_state_over_the_cap_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    cache = FileTokenCache(path, max_bytes=300)
    with pytest.raises(CacheError, match=r"would grow to \d+ bytes, more than its cap of 300") as caught:
        with cache.transaction() as state:
            store(state, WHERE, token_set(), SCOPES)
    assert MAX_BYTES_ENV in str(caught.value.hint)
    assert not path.exists()


# -- 6. check_usable: cheap, and before any request ------------------------------------------------


def test_check_usable_makes_a_missing_folder_privately(tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path / "new" / "deeper" / "tokens.json")
    cache.check_usable()
    assert (tmp_path / "new" / "deeper").is_dir() and not cache.path.exists()
    if sys.platform != "win32":
        assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700


def test_check_usable_refuses_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    refused(FileTokenCache(tmp_path / "afile" / "tokens.json").check_usable, "cannot use")
    refused(FileTokenCache(tmp_path / "afile" / "sub" / "tokens.json").check_usable, "cannot use")


def test_check_usable_refuses_a_folder_it_cannot_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = saved(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == cache.path.parent else real_access(p, m))
    refused(cache.check_usable, "is not writable")


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[EntraClient]:
    cache = saved(tmp_path)
    with EntraClient(CLIENT, TENANT, cache=cache, retry=RetryPolicy(max_attempts=1)) as client:
        yield client


@posix_only
@respx.mock(assert_all_mocked=True)
@pytest.mark.parametrize("spoil", ["mode", "folder", "owner", "damage", "size"])
def test_an_unusable_cache_stops_a_grant_before_any_request(seeded: EntraClient, spoil: str) -> None:
    route = respx.post(TOKEN_URL).mock(return_value=httpx.Response(500))
    cache = seeded.cache
    assert isinstance(cache, FileTokenCache)
    if spoil == "mode":
        cache.path.chmod(0o644)
    elif spoil == "folder":
        cache.path.parent.chmod(0o777)
    elif spoil == "owner":
        os.chown(cache.path, OTHER_UID, -1)
    elif spoil == "damage":
        cache.path.write_text('{"version": 1, "x": NaN}')
    else:
        cache.max_bytes = 10
    with pytest.raises(CacheError):
        seeded.refresh("rt-1")
    assert route.call_count == 0
