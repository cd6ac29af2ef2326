"""The Redis cache's parts that touch no server: its URL, its client, its key layout, its records.

Key layout (``<ns>`` is the namespace, ``oauth-core`` by default):

- ``<ns>:version``: the cache's version (1, as in the file cache);
- ``<ns>:refresh_tokens``, ``<ns>:accounts``, ``<ns>:flags``: one hash per section, the field the
  entry's key (``host|tenant|client|account``...), the value its JSON record (a refresh-token record
  is ``fernet:<token>`` when encryption is on);
- ``<ns>:at:<key>``: one string per access token, its JSON record, expiring (``PEXPIREAT``) when the
  token does, so an expired token vanishes by itself; the key names host, tenant, client, account
  and scopes (``SCAN <ns>:at:*|<client id>|*`` finds a client's tokens);
- ``<ns>:access_tokens``: a set of the access-token keys (members whose token expired are dropped
  at the next write);
- ``<ns>:lock:state`` (a write, milliseconds) and ``<ns>:lock:<sha256(key)>`` (one entry's refresh):
  ``SET NX PX`` locks whose value is their owner's random id.

A whole read is one round trip (a Lua script); a write is one ``MULTI``/``EXEC`` of what changed.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

from ..core.cache_rules import VERSION, State, empty_state, validated
from ..core.errors import CacheError, ConfigError

__all__ = [
    "HASHED",
    "KEY_ENV",
    "PASSWORD_ENV",
    "READ_SCRIPT",
    "RELEASE_SCRIPT",
    "USERNAME_ENV",
    "Sealer",
    "connect",
    "decode_reply",
    "redact_url",
    "write_changes",
]

USERNAME_ENV = "OAUTH_CORE_REDIS_USERNAME"
PASSWORD_ENV = "OAUTH_CORE_REDIS_PASSWORD"
KEY_ENV = "OAUTH_CORE_CACHE_KEY"
HASHED = ("refresh_tokens", "accounts", "flags")
_SEALED = "fernet:"

# The whole state in one round trip: the version, the three hashes, then the live access tokens
# (key, record, ...) and the index members whose token expired.
READ_SCRIPT = """
local ns = ARGV[1]
local version = redis.call('GET', ns .. ':version')
local out = {version or '', redis.call('HGETALL', ns .. ':refresh_tokens'),
             redis.call('HGETALL', ns .. ':accounts'), redis.call('HGETALL', ns .. ':flags')}
local live, gone = {}, {}
for _, member in ipairs(redis.call('SMEMBERS', ns .. ':access_tokens')) do
  local value = redis.call('GET', ns .. ':at:' .. member)
  if value then
    table.insert(live, member)
    table.insert(live, value)
  else
    table.insert(gone, member)
  end
end
table.insert(out, live)
table.insert(out, gone)
return out
"""

# Let go of a lock only if it is still ours (it may have expired and been taken by another).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def redact_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "(a Redis URL that could not be parsed)"


def _import_redis() -> Any:
    try:
        import redis
    except ImportError:
        raise ConfigError("RedisTokenCache needs the redis package: pip install 'oauth-core[redis]'") from None
    return redis


def connect(url: str, socket_timeout: float) -> Tuple[Any, List[str]]:
    """A Redis client for ``url`` (credentials from it, else from the environment), and the secrets to hide.

    The client fails fast: socket timeouts of ``socket_timeout`` seconds and no retries of its own
    (the cache decides when to try again).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"a Redis cache URL is redis://host[:port][/db] or rediss://..., not {redact_url(url)!r}")
    redis = _import_redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: Dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
    }
    username, password = os.environ.get(USERNAME_ENV) or None, os.environ.get(PASSWORD_ENV) or None
    if parts.username is None and username:
        options["username"] = username
    if parts.password is None and password:
        options["password"] = password
    secrets = [s for s in (unquote(parts.password or ""), options.get("password") or "") if s]
    try:
        return redis.Redis.from_url(url, **options), secrets
    except ValueError as exc:
        message = hide(str(exc), secrets)
        raise ConfigError(f"the Redis cache URL {redact_url(url)!r} is not valid: {message}") from None


def hide(text: str, secrets: List[str]) -> str:
    """``text`` with every secret in it replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class Sealer:
    """Fernet encryption of refresh-token records (the crypto extra); a key from ``OAUTH_CORE_CACHE_KEY``."""

    def __init__(self, key: str) -> None:
        try:
            from cryptography.fernet import Fernet
        except ImportError:
            raise ConfigError(
                "encrypting the Redis cache needs the cryptography package: pip install 'oauth-core[crypto]'"
            ) from None
        try:
            self._fernet = Fernet(key.strip().encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError):
            raise ConfigError(
                f"the cache encryption key ({KEY_ENV} or encryption_key=) is not a Fernet key: "
                "32 url-safe base64-encoded bytes, as Fernet.generate_key() makes"
            ) from None

    def seal(self, text: str) -> str:
        return _SEALED + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, text: str) -> Optional[str]:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(text[len(_SEALED) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            return None


def _record(raw: bytes, sealer: Optional[Sealer]) -> Any:
    """A stored value as a record; None when it is unreadable (damaged, or sealed with another key)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith(_SEALED):
        opened = sealer.open(text) if sealer is not None else None
        if opened is None:
            return None
        text = opened
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _pairs(flat: List[bytes], sealer: Optional[Sealer]) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for i in range(0, len(flat) - 1, 2):
        record = _record(flat[i + 1], sealer)
        if record is not None:
            found[flat[i].decode("utf-8", "replace")] = record
    return found


def decode_reply(reply: List[Any], where: str, sealer: Optional[Sealer]) -> Tuple[State, List[str]]:
    """The validated state of a :data:`READ_SCRIPT` reply, and the expired index members.

    Raises:
        CacheError: the namespace holds a cache of another version.
    """
    raw_version, refresh_tokens, known, flags, live, gone = reply
    text = raw_version.decode("utf-8", "replace") if raw_version else ""
    state = empty_state()
    if text:
        state["version"] = int(text) if text.isdigit() else text
    state["refresh_tokens"] = _pairs(refresh_tokens, sealer)
    state["accounts"] = _pairs(known, sealer)
    state["flags"] = _pairs(flags, sealer)
    state["access_tokens"] = _pairs(live, None)
    return validated(state, where), [m.decode("utf-8", "replace") for m in gone]


def _text(record: Any, where: str) -> str:
    try:
        return json.dumps(record, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise CacheError(f"the token cache {where!r} was not saved: a record is not JSON") from None


def _expires_ms(record: Any) -> Optional[int]:
    expires_at = record.get("expires_at") if isinstance(record, dict) else None
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)) or not math.isfinite(expires_at):
        return None
    return int(expires_at * 1000)


def write_changes(
    pipe: Any, ns: str, base: State, state: State, gone: List[str], sealer: Optional[Sealer], where: str
) -> None:
    """Queue on ``pipe`` (a ``MULTI``) what turns ``base``, as read, into ``state``: nothing else is touched."""
    pipe.set(f"{ns}:version", VERSION)
    for section in HASHED:
        old, new = base[section], state[section]
        changed = {k: _text(v, where) for k, v in new.items() if k not in old or old[k] != v}
        if section == "refresh_tokens" and sealer is not None:
            changed = {k: sealer.seal(v) for k, v in changed.items()}
        removed = [k for k in old if k not in new]
        if changed:
            pipe.hset(f"{ns}:{section}", mapping=changed)
        if removed:
            pipe.hdel(f"{ns}:{section}", *removed)
    old, new = base["access_tokens"], state["access_tokens"]
    now_ms = int(time.time() * 1000)
    dropped = [k for k in gone if k not in new]
    for key, record in new.items():
        if key in old and old[key] == record:
            continue
        expires = _expires_ms(record)
        if expires is not None and expires <= now_ms:
            dropped.append(key)
            continue
        pipe.set(f"{ns}:at:{key}", _text(record, where), pxat=expires)  # no expiry for a hand-made record
        pipe.sadd(f"{ns}:access_tokens", key)
    dropped += [k for k in old if k not in new]
    if dropped:
        pipe.delete(*[f"{ns}:at:{k}" for k in dropped])
        pipe.srem(f"{ns}:access_tokens", *dropped)
