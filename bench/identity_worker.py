"""The client side of ``python -m bench.identity``, run in a child process per client.

``python -m bench.identity_worker chain oauth_core|azure`` prints ``ready`` once the library is
imported, then one JSON line: the seconds from building the default chain to its
CredentialUnavailable (or whatever it raised instead). ``python -m bench.identity_worker token
oauth_core|azure|msal FETCHES HITS`` prints one JSON line of nanosecond latencies: ``fetch``
(a new credential each time: new cache, new connection), ``fetch_kept`` (a new cache on a kept
connection) and ``hit`` (the credential's cached token). The parent sets the environment (every
Azure variable cleared, the managed identity endpoints and the IMDS host on loopback). Name
lookups of anything but loopback are refused and counted.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from typing import Any, Callable, Dict, List

__all__ = ["AZURE_EXCLUDED", "DATABRICKS_SCOPE", "main"]

DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
GRAPH = "https://graph.microsoft.com"
# azure-identity's links that would spawn az / azd / pwsh, read the user's files, or open a browser.
AZURE_EXCLUDED = (
    "cli",
    "developer_cli",
    "powershell",
    "visual_studio_code",
    "shared_token_cache",
    "interactive_browser",
    "broker",
)
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_refused: List[str] = []


def _guard_lookups() -> None:
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            _refused.append(str(name))
            raise OSError(f"bench refused to resolve {name!r}: loopback only")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = guarded


def _say(data: Any) -> None:
    sys.stdout.write((data if isinstance(data, str) else json.dumps(data)) + "\n")
    sys.stdout.flush()


# -- the default chain on a host without managed identity ------------------------------------------


def _chain(client: str) -> None:
    if client == "oauth_core":
        import os

        from oauth_core import DefaultCredential, MemoryTokenCache

        def answer() -> None:
            DefaultCredential(environ=dict(os.environ), cache=MemoryTokenCache()).get_token()

        expected = "CredentialUnavailable"
    else:
        from azure.identity import DefaultAzureCredential

        excluded = {f"exclude_{name}_credential": True for name in AZURE_EXCLUDED}

        def answer() -> None:
            DefaultAzureCredential(**excluded).get_token(DATABRICKS_SCOPE)

        expected = "CredentialUnavailableError ClientAuthenticationError"  # the chain ends with the latter
    _say("ready")
    started = time.perf_counter()
    raised, message = "nothing", ""
    try:
        answer()
    except Exception as exc:  # the point: which exception, and when
        raised, message = type(exc).__name__, str(exc).splitlines()[0][:160] if str(exc) else ""
    seconds = time.perf_counter() - started
    _say(
        {
            "seconds": seconds,
            "raised": raised,
            "expected": raised in expected.split(),
            "message": message,
            "refused": _refused,
        }
    )


# -- managed identity tokens ---------------------------------------------------------------------------


def _timed(action: Callable[[], Any], n: int) -> List[int]:
    out = []
    for _ in range(n):
        began = time.perf_counter_ns()
        action()
        out.append(time.perf_counter_ns() - began)
    return out


def _fresh(make: Callable[[], Any], get: Callable[[Any], Any], close: Callable[[Any], Any], n: int) -> List[int]:
    """``n`` tokens, each from a newly built credential (built and closed off the clock)."""
    out = []
    for _ in range(n):
        credential = make()
        began = time.perf_counter_ns()
        get(credential)
        out.append(time.perf_counter_ns() - began)
        close(credential)
    return out


def _oauth_core(fetches: int, hits: int) -> Dict[str, List[int]]:
    import os

    from oauth_core import ManagedIdentity, MemoryTokenCache

    env = dict(os.environ)
    results = {
        "fetch": _fresh(lambda: ManagedIdentity(environ=env), lambda c: c.get_token(), lambda c: c.close(), fetches)
    }
    with ManagedIdentity(environ=env) as kept:

        def fetch_kept() -> None:
            kept.cache = MemoryTokenCache()
            kept.get_token()

        fetch_kept()  # the connection
        results["fetch_kept"] = _timed(fetch_kept, fetches)
        results["hit"] = _timed(kept.get_token, hits)
    return results


def _azure(fetches: int, hits: int) -> Dict[str, List[int]]:
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.identity import ManagedIdentityCredential

    scope = f"{GRAPH}/.default"
    results = {"fetch": _fresh(ManagedIdentityCredential, lambda c: c.get_token(scope), lambda c: c.close(), fetches)}
    session = requests.Session()
    session.trust_env = False

    def kept() -> Any:
        return ManagedIdentityCredential(transport=RequestsTransport(session=session, session_owner=False))

    kept().get_token(scope)  # the connection
    results["fetch_kept"] = _fresh(kept, lambda c: c.get_token(scope), lambda c: None, fetches)
    credential = ManagedIdentityCredential()
    credential.get_token(scope)
    results["hit"] = _timed(lambda: credential.get_token(scope), hits)
    return results


def _msal(fetches: int, hits: int) -> Dict[str, List[int]]:
    import msal
    import requests

    def session() -> Any:
        made = requests.Session()
        made.trust_env = False
        return made

    def get(client: Any) -> None:
        result = client.acquire_token_for_client(resource=GRAPH)
        if "access_token" not in result:
            raise RuntimeError(f"MSAL got no token: {result.get('error')}: {result.get('error_description')}")

    def fresh() -> Any:
        own = session()
        return own, msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=own)

    results = {"fetch": _fresh(fresh, lambda pair: get(pair[1]), lambda pair: pair[0].close(), fetches)}
    shared = session()

    def kept() -> Any:
        return msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=shared)

    get(kept())  # the connection
    results["fetch_kept"] = _fresh(kept, get, lambda c: None, fetches)
    client = kept()
    get(client)
    results["hit"] = _timed(lambda: get(client), hits)
    return results


def main(argv: List[str]) -> int:
    logging.disable(logging.CRITICAL)  # the peers' warnings about unavailable links are not results
    _guard_lookups()
    if argv[0] == "chain":
        _chain(argv[1])
        return 0
    runners = {"oauth_core": _oauth_core, "azure": _azure, "msal": _msal}
    results = runners[argv[1]](int(argv[2]), int(argv[3]))
    _say({"latencies_ns": results, "refused": _refused})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
