"""Settings from options and the environment, and the client and token cache built from them."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, List, Optional

from .usage import UsageError

if TYPE_CHECKING:  # imported by the functions that need them: start-up stays light
    from ..core.assertion import ClientCertificate
    from ..drivers.stores import TokenCache
    from ..drivers.sync import EntraClient

__all__ = [
    "authority_host",
    "cache_spec",
    "check_cache",
    "check_not_blank",
    "claims_of",
    "client_id",
    "is_text",
    "make_client",
    "open_cache",
    "read_env",
    "secret_env",
    "tenant",
    "trusted_hosts",
]


def is_text(value: str) -> bool:
    """False for strings holding undecodable bytes (lone surrogates from the OS)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_env(name: str) -> Optional[str]:
    """An environment variable, stripped; blank means unset."""
    value = os.environ.get(name)
    if value is not None and not is_text(value):
        raise UsageError(f"{name} is not valid UTF-8")
    return value.strip() if value and value.strip() else None


def secret_env(name: str) -> Optional[str]:
    """A secret from the environment, unstripped (spaces may belong to it); blank means unset."""
    value = os.environ.get(name)
    if value is not None and not is_text(value):
        raise UsageError(f"{name} is not valid UTF-8")
    return value if value and value.strip() else None


def client_id(args: argparse.Namespace) -> str:
    """--client-id or AZURE_CLIENT_ID, required."""
    value = args.client_id or read_env("AZURE_CLIENT_ID")
    if not value or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise UsageError("a client id is required: --client-id or AZURE_CLIENT_ID")
    return str(value)


# Options whose empty value must not read as "not given" (and fall back to a default or the environment).
_NOT_BLANK = (
    ("tenant", "--tenant"),
    ("client_id", "--client-id"),
    ("authority_host", "--authority-host"),
    ("account", "--account"),
    ("host", "--host"),
    ("resource_id", "--resource-id"),
)


def check_not_blank(args: argparse.Namespace) -> None:
    """An option given as an empty or blank value is a usage error, not a silent default."""
    for dest, flag in _NOT_BLANK:
        value = getattr(args, dest, None)
        if value is not None and not value.strip():
            raise UsageError(f"{flag} is empty: give a value, or leave the option out")


def tenant(args: argparse.Namespace) -> Optional[str]:
    """--tenant or AZURE_TENANT_ID, if given."""
    return args.tenant or read_env("AZURE_TENANT_ID")


def authority_host(args: argparse.Namespace) -> Optional[str]:
    """--authority-host or AZURE_AUTHORITY_HOST, if given."""
    return args.authority_host or read_env("AZURE_AUTHORITY_HOST")


def trusted_hosts(args: argparse.Namespace) -> List[str]:
    """The --allow-authority-host values, then OAUTH_CORE_TRUSTED_HOSTS (comma or space separated)."""
    from_env = (read_env("OAUTH_CORE_TRUSTED_HOSTS") or "").replace(",", " ").split()
    return [*(args.allow_authority_host or []), *from_env]


def cache_spec(args: argparse.Namespace) -> str:
    """Which cache: ``file``, ``memory`` or a Redis URL (--cache, else OAUTH_CORE_CACHE; --no-cache is memory)."""
    given = getattr(args, "cache", None)
    if getattr(args, "no_cache", False):
        if given is not None and given.strip() != "memory":
            raise UsageError("--no-cache and --cache say different things: give one of them")
        return "memory"
    spec = given.strip() if given is not None else (read_env("OAUTH_CORE_CACHE") or "file")
    if spec in ("file", "memory") or spec.startswith(("redis://", "rediss://")):
        return spec
    from ..drivers.redis_codec import redact_url

    source = "--cache" if given is not None else "OAUTH_CORE_CACHE"
    raise UsageError(f"{source} is file, memory or a redis:// or rediss:// URL, not {redact_url(spec)!r}")


def open_cache(args: argparse.Namespace) -> TokenCache:
    """The cache --cache (or OAUTH_CORE_CACHE) names: the 0600 token cache in the state directory
    (``file``, the default), ``memory`` (also --no-cache), or Redis at a ``redis://``/``rediss://`` URL."""
    spec = cache_spec(args)
    if spec == "memory":
        from ..drivers.stores import MemoryTokenCache

        return MemoryTokenCache()
    if spec == "file":
        from ..drivers.files import state_dir
        from ..drivers.stores import FileTokenCache

        return FileTokenCache(state_dir() / "tokens.json")
    from ..drivers.redis_store import RedisTokenCache

    return RedisTokenCache(spec)


def make_client(
    args: argparse.Namespace,
    client: Optional[str] = None,
    tenant_id: Optional[str] = None,
    host: Optional[str] = None,
    *,
    client_secret: Optional[str] = None,
    client_certificate: Optional[ClientCertificate] = None,
) -> EntraClient:
    """An EntraClient from the common options; ``client``, ``tenant_id`` and ``host`` override them."""
    from ..drivers.sync import EntraClient

    return EntraClient(
        client or client_id(args),
        tenant_id or tenant(args) or "organizations",
        authority_host=host or authority_host(args),
        scopes=args.scope,
        timeout=args.timeout or 30.0,
        offline_access=not args.no_offline_access,
        cache=open_cache(args),
        client_secret=client_secret,
        client_certificate=client_certificate,
        trusted_hosts=trusted_hosts(args),
        client_capabilities=getattr(args, "client_capability", None) or (),
    )


def claims_of(args: argparse.Namespace) -> Optional[str]:
    """--claims, checked to be a JSON object (a usage error otherwise, before anything is sent)."""
    import json

    text = getattr(args, "claims", None)
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise UsageError("--claims must be a JSON object, as a claims challenge gives it")
    return str(text)


def check_cache(client: EntraClient) -> None:
    """Refuse a damaged or unusable token cache before anything is sent (or a secret asked for)."""
    client.cache.check_usable()
