"""A private ``redis-server`` for the cache benchmarks: a free loopback port, a temp dir, no persistence.

:func:`redis_cache_class` imports ``oauth_core.drivers.redis_store.RedisTokenCache`` lazily;
:func:`redis_unavailable` says why a Redis column is skipped (the module or the ``redis`` package
missing, no ``redis-server`` on the PATH), and :func:`private_redis` runs one server for a
``with`` block and stops it (by its own process id) afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Iterator, Optional, Tuple

__all__ = ["private_redis", "redis_cache_class", "redis_unavailable"]


def redis_cache_class() -> Any:
    """``RedisTokenCache`` (raises ImportError when it, or the ``redis`` package, is missing)."""
    from oauth_core.drivers.redis_store import RedisTokenCache

    return RedisTokenCache


def redis_unavailable() -> Optional[str]:
    """Why the Redis rows cannot run here, or None when they can."""
    try:
        redis_cache_class()
    except ImportError as exc:
        return f"oauth_core.drivers.redis_store.RedisTokenCache is not importable ({exc})"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def private_redis(timeout: float = 10.0) -> Iterator[str]:
    """Run ``redis-server`` on 127.0.0.1 (a free port, a private temp dir, nothing saved); yield its URL."""
    folder = tempfile.mkdtemp(prefix="oauth-core-bench-redis-")
    port = _free_port()
    command = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        folder,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--logfile",
        f"{folder}/redis.log",
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(port):
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def optional_redis() -> Iterator[Tuple[Optional[str], Optional[str]]]:
    """``(url, None)`` of a private redis-server for the block, or ``(None, why)`` when there can be none."""
    reason = redis_unavailable()
    if reason is not None:
        yield None, reason
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(private_redis())
        except RuntimeError as exc:  # it did not start: the Redis rows are skipped, with why
            yield None, str(exc)
            return
        yield url, None
