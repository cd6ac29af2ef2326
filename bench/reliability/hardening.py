"""The ``hardening`` part: issue 11's 18 red-team attacks, each tried again for real against the current code.

Every attack runs over real loopback sockets or processes (the emulator, servers started here,
``python -m oauth_core`` in a subprocess whose non-loopback lookups and connects are refused and
logged) and counts each behaviour it checks as *tried*; a behaviour that does not hold is a
*defect*, named in the report. An attack that raises is one more defect. The attacks here use the
library (``EntraClient``, ``AsyncEntraClient``, ``Emulator``); the CLI ones are in ``hardening_cli``.

Quick and full runs try the same 18 attacks; the full one tries more variants (more argv shapes,
1000 idle connections instead of 300, the dripped body through the CLI with ``--timeout 3``).
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple
from urllib.parse import parse_qs, urlsplit

from . import hardening_cli as cli
from .hardening_kit import PROXY_VARIABLES, AttackResult, CannedServer, DripServer, Lab, Probe, patched_env, sign_in

__all__ = ["ATTACKS", "run_hardening"]

Attack = Callable[[Lab, Probe], None]


def _outcome(action: Callable[[], Any]) -> Any:
    """What ``action()`` returns, or the exception it raised."""
    try:
        return action()
    except Exception as exc:  # reported by the caller's checks
        return exc


def env_proxy(lab: Lab, probe: Probe) -> None:
    """1: HTTP_PROXY/HTTPS_PROXY/ALL_PROXY name a recording proxy: loopback grants succeed and it records nothing."""
    import httpx

    from oauth_core import AsyncEntraClient

    username, password = lab.user
    with CannedServer(502) as proxy:
        proxies = {name: proxy.url for name in PROXY_VARIABLES}
        with patched_env(proxies):
            with httpx.Client(timeout=5) as plain:  # the control: a client trusting the environment
                status = plain.get(f"{lab.emulator.url}/{lab.tenant}/v2.0/.well-known/openid-configuration")
            works = status.status_code == 502 and len(proxy.received) == 1
            probe.check("control: plain httpx sends loopback traffic to the proxy", works, len(proxy.received))
            proxy.received.clear()
            with lab.client(timeout=5) as client:
                tokens = _outcome(lambda: client.acquire_by_password(username, password))
            probe.check("EntraClient password grant succeeds", bool(getattr(tokens, "access_token", None)), tokens)
            probe.check("EntraClient: the proxy records nothing", not proxy.received, len(proxy.received))

            async def grant() -> Any:
                async with AsyncEntraClient(lab.client_id, lab.tenant, authority_host=lab.emulator.url) as client:
                    return await client.acquire_by_password(username, password)

            tokens = _outcome(lambda: asyncio.run(grant()))
            probe.check("AsyncEntraClient password grant succeeds", bool(getattr(tokens, "access_token", None)), tokens)
            probe.check("AsyncEntraClient: the proxy records nothing", not proxy.received, len(proxy.received))
        argv = ["password", "-u", username, "--password-stdin", "--no-cache", "--json"]
        run = lab.cli(argv, home=lab.home("proxy"), stdin=password + "\n", env=proxies)
        probe.check("oauth-core password succeeds", run.code == 0, run.brief())
        probe.check("oauth-core password: the proxy records nothing", not proxy.received, len(proxy.received))


def dripped_body(lab: Lab, probe: Probe) -> None:
    """3: a dripped body is cut at the call's deadline, not just per read (library; the CLI in the full run).

    The library (timeout=1, 2 attempts: a deadline of 1 s x 2 + 0.5 s backoff) gets a byte a second,
    where a read may also time out and be retried, then a byte every 0.5 s, where no read can time
    out and only the deadline ends the call. The CLI's is the red-team case itself: a byte a second
    with ``--timeout 3`` (its deadline: 3 s x 4 attempts + 3.5 s of backoff = 15.5 s).
    """
    from oauth_core import EntraClient, RetryPolicy, TransientError

    for interval, most in ((1.0, 2), (0.5, 1)):
        with DripServer(interval=interval, give_up=25.0) as drip:
            policy = RetryPolicy(max_attempts=2, sleep=lambda seconds: None)
            with EntraClient(lab.client_id, authority_host=drip.url, timeout=1.0, retry=policy) as client:
                started = time.monotonic()
                error = _outcome(lambda: client.acquire_by_password("someone@example.test", "pw"))
                elapsed = time.monotonic() - started
        label = f"library, a byte every {interval:g} s, timeout=1"
        probe.check(f"{label}: fails as a TransientError", isinstance(error, TransientError), repr(error))
        probe.check(f"{label}: within 6 s", elapsed < 6, f"{elapsed:.1f} s")
        sent = len(drip.received)
        probe.check(f"{label}: {'one request' if most == 1 else 'at most 2 requests'}", 1 <= sent <= most, sent)
    if not lab.quick:
        with DripServer(interval=1.0, give_up=25.0) as drip:
            argv = ["password", "-u", "someone@example.test", "--password-stdin", "--no-cache", "--timeout", "3"]
            run = lab.cli(argv, home=lab.home("drip"), stdin="pw\n", env={"AZURE_AUTHORITY_HOST": drip.url})
            probe.check("oauth-core --timeout 3: exit 3", run.code == 3, run.brief())
            probe.check("oauth-core --timeout 3: within 20 s", run.seconds < 20, f"{run.seconds:.1f} s")
            probe.check("oauth-core: one request", len(drip.received) == 1, len(drip.received))


def _send_callback(host: str, location: str, *, junk: bool = False) -> None:
    """Deliver the redirect ``location`` to the listener on ``host`` and close right after sending."""
    parts = urlsplit(location)
    port = int(parts.port or 80)
    if junk:  # first a connection that sends nothing, and one cut mid-request line
        socket.create_connection((host, port), timeout=5).close()
        with socket.create_connection((host, port), timeout=5) as cut:
            cut.sendall(b"GET /?code=c&st")
    request = f"GET {parts.path or '/'}?{parts.query} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(request.encode("ascii"))


def _interactive(lab: Lab, probe: Probe, label: str, browser: Callable[[str], None]) -> None:
    """``acquire_interactive`` whose ``on_url`` starts ``browser(url)`` in a thread: the wait must end with tokens."""
    from oauth_core import OAuthCoreError

    failures: List[str] = []

    def on_url(url: str) -> None:
        def play() -> None:
            try:
                browser(url)
            except Exception as exc:  # shown with the check below
                failures.append(f"browser: {type(exc).__name__}: {exc}")

        threading.Thread(target=play, daemon=True).start()

    printed, saved = io.StringIO(), sys.stderr
    started = time.monotonic()
    sys.stderr = printed
    try:
        with lab.client(timeout=5) as client:
            tokens: Any = client.acquire_interactive(open_browser=False, on_url=on_url, timeout=10)
    except OAuthCoreError as exc:
        tokens = exc
    finally:
        sys.stderr = saved
    elapsed = time.monotonic() - started
    got = bool(getattr(tokens, "access_token", None))
    probe.check(f"{label}: the wait ends with tokens", got, f"{tokens!r} {failures}")
    probe.check(f"{label}: within 5 s", elapsed < 5, f"{elapsed:.1f} s")
    probe.check(f"{label}: no traceback printed", "Traceback" not in printed.getvalue(), printed.getvalue())


def early_close(lab: Lab, probe: Probe) -> None:
    """4: a callback whose connection closes right after sending still ends the wait (no code lost)."""
    username, password = lab.user
    for label, junk in (("callback, closed at once", False), ("after junk connections", True)):

        def browser(url: str, junk: bool = junk) -> None:
            _send_callback("127.0.0.1", sign_in(url, username, password), junk=junk)

        _interactive(lab, probe, label, browser)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def ipv6_twin(lab: Lab, probe: Probe) -> None:
    """12: for a ``localhost`` redirect the listener also holds ::1 on its port (nobody can bind it)."""
    if not _has_ipv6_loopback():
        probe.note("skipped: this machine has no ::1")
        return
    username, password = lab.user
    squat: List[Tuple[str, Any]] = []

    def browser(url: str) -> None:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        port = int(urlsplit(redirect).port or 0)
        with socket.socket(socket.AF_INET6) as squatter:
            try:
                squatter.bind(("::1", port))
                squat.append(("bound", port))
            except OSError as exc:
                squat.append(("refused", exc.errno))
        _send_callback("::1", sign_in(url, username, password))

    _interactive(lab, probe, "callback over [::1]", browser)
    probe.check(
        "binding [::1] on the listener's port fails (EADDRINUSE)", squat == [("refused", errno.EADDRINUSE)], squat
    )


def code_sent_once(lab: Lab, probe: Probe) -> None:
    """15: a code redemption answered 502 is sent once (emulator fault, a loopback gateway, the CLI)."""
    from oauth_core import EntraClient, RetryPolicy, TransientError
    from oauth_core.emulator import Fault

    waits: List[float] = []
    with lab.client(timeout=5, retry=RetryPolicy(sleep=waits.append)) as client:
        pending = client.authorization_request()
        before = lab.emulator.count("token")
        lab.emulator.inject("token", Fault("status", status=502), times=3)
        try:
            error = _outcome(lambda: client.exchange_code(pending, code="0.AXkA-a-code"))
        finally:
            lab.emulator.clear_faults()
        sent = lab.emulator.count("token") - before
    probe.check("emulator 502: TransientError", isinstance(error, TransientError), repr(error))
    probe.check("emulator 502: the code was sent once", sent == 1, f"{sent} requests")
    probe.check("emulator 502: says the code may have been used", "may have been used" in str(error), str(error))
    probe.check("emulator 502: no retry wait", waits == [], waits)
    with CannedServer(502, b"<html><body>502 Bad Gateway</body></html>", "text/html") as gateway:
        policy = RetryPolicy(sleep=waits.append)
        with EntraClient(lab.client_id, lab.tenant, authority_host=gateway.url, retry=policy, timeout=5) as client:
            error = _outcome(lambda: client.exchange_code(client.authorization_request(), code="0.AXkA-a-code"))
        time.sleep(0.2)  # a resend, had there been one, would have arrived by now
        probe.check("loopback gateway 502: TransientError", isinstance(error, TransientError), repr(error))
        probe.check("loopback gateway 502: sent once", len(gateway.received) == 1, f"{len(gateway.received)} requests")
    home = lab.home("code-502")
    started = lab.cli(["authorize-url", "--json"], home=home)
    probe.check("CLI setup: authorize-url", started.code == 0, started.brief())
    before = lab.emulator.count("token")
    lab.emulator.inject("token", Fault("status", status=502), times=3)
    try:
        run = lab.cli(["exchange", "--code", "0.AXkA-a-code", "--latest"], home=home)
    finally:
        lab.emulator.clear_faults()
    sent = lab.emulator.count("token") - before
    probe.check("oauth-core exchange, 502: exit 3", run.code == 3, run.brief())
    probe.check("oauth-core exchange, 502: the code was sent once", sent == 1, f"{sent} requests")


def _fd_room(wanted: int) -> int:
    """How many idle connections this process can hold (each costs two descriptors here), raising the limit."""
    try:
        import resource
    except ImportError:  # not POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * wanted + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else max(0, min(wanted, (soft - 256) // 2))


def _still_open(socks: List[socket.socket]) -> int:
    count = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            count += sock.recv(1) != b""  # data would be odd; b"" is a close
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def idle_connections(lab: Lab, probe: Probe) -> None:
    """17: with N idle (half of them half-sent) connections open, the emulator answers a token request in 2 s."""
    from oauth_core import EntraClient, RetryPolicy
    from oauth_core.emulator import Emulator, EmulatorConfig

    wanted = 300 if lab.quick else 1000
    count = _fd_room(wanted)
    if count < wanted:
        probe.note(f"descriptor limit: {count} connections instead of {wanted}")
    username, password = lab.user
    half_sent = b"POST /x/oauth2/v2.0/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
    with Emulator(EmulatorConfig.default(), port=0, idle_timeout=30.0) as emulator:
        socks: List[socket.socket] = []
        try:
            for number in range(count):
                sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
                socks.append(sock)
                if number % 2:
                    sock.sendall(half_sent)
            time.sleep(0.3)  # all accepted and waiting
            retry = RetryPolicy(max_attempts=1)
            client_id, tenant = emulator.config.clients[0].client_id, emulator.tenant_id
            with EntraClient(client_id, tenant, authority_host=emulator.url, timeout=2.0, retry=retry) as client:
                started = time.monotonic()
                tokens = _outcome(lambda: client.acquire_by_password(username, password))
                first = time.monotonic() - started
                probe.check(f"{count} idle: the token request is answered", hasattr(tokens, "access_token"), tokens)
                probe.check(f"{count} idle: within 2 s", first < 2.0, f"{first:.2f} s")
                started = time.monotonic()
                again = _outcome(lambda: client.refresh(tokens.refresh_token))
                second = time.monotonic() - started
                probe.check(
                    f"{count} idle: a refresh too, within 2 s",
                    hasattr(again, "access_token") and second < 2.0,
                    f"{again!r} in {second:.2f} s",
                )
            probe.note(
                f"{count} idle connections, {count // 2} half-sent; answered in {first:.2f} s and "
                f"{second:.2f} s; {_still_open(socks)} still open"
            )
        finally:
            for sock in socks:
                sock.close()


ATTACKS: List[Tuple[int, str, Attack]] = [
    (1, "HTTP_PROXY/ALL_PROXY set: loopback grant skips the proxy", env_proxy),
    (2, "truncated tokens.json: nothing sent, exit 2", cli.truncated_cache),
    (3, "body dripped 1 byte/s: cut at the deadline", dripped_body),
    (4, "listener: callback connection closed early", early_close),
    (5, "secret given as an argv value: exit 2, never echoed", cli.argv_secrets),
    (6, "stdin password with surrounding spaces sent as typed", cli.stdin_spaces),
    (7, "databricks --data @binary-file: exit 2", cli.binary_data),
    (8, "cache of another version / wrong section types named", cli.cache_kinds),
    (9, "--verbose: 127.0.0.1:PORT shown, password hidden", cli.verbose),
    (10, "--tenant '': exit 2 at once, nothing sent", cli.empty_settings),
    (11, "0777 home, 0644 cache, symlinked lock refused", cli.unsafe_files),
    (12, "listener holds ::1 on a localhost redirect's port", ipv6_twin),
    (13, "untrusted --host / --authority-host: exit 4, no network", cli.untrusted_hosts),
    (14, "ESC sequences in error_description: none printed", cli.escapes),
    (15, "code redemption answered 502: sent once", code_sent_once),
    (16, "cache over the size cap refused; NaN expiry not fresh", cli.cache_cap_and_nan),
    (17, "emulator with N idle connections answers in 2 s", idle_connections),
    (18, "exchange --code without --state: exit 2", cli.code_without_state),
]


# The library's attacks (in this thread: attack 1 sets os.environ, 4 and 12 swap sys.stderr), then
# the CLI's in two lanes of about the same length.
LANES = ((1, 3, 4, 12, 15, 17), (2, 5, 6, 7, 8, 9), (10, 11, 13, 14, 16, 18))


def _attack(lab: Lab, number: int, title: str, attack: Attack) -> AttackResult:
    result = AttackResult(number, title)
    started = time.perf_counter()
    try:
        attack(lab, Probe(result))
    except Exception as exc:  # the attack could not finish: that is a defect too
        result.tried += 1
        result.defects.append(f"the attack raised {type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - started
    return result


def _lane(
    quick: bool, attacks: List[Tuple[int, str, Attack]], environ: Dict[str, str], results: Dict[int, Any]
) -> None:
    """Try ``attacks`` in turn on a lab of their own (so request counts never mix between lanes)."""
    try:
        with Lab(quick, environ) as lab:
            for number, title, attack in attacks:
                results[number] = _attack(lab, number, title, attack)
    except Exception as exc:  # the lab itself failed: every attack not tried is a defect
        for number, title, _ in attacks:
            if number not in results:
                results[number] = AttackResult(number, title, 1, [f"the lab failed: {type(exc).__name__}: {exc}"])


def run_hardening(quick: bool) -> List[AttackResult]:
    """Try every attack, in three lanes at once: the library's attacks here, the CLI's in two threads.

    The lanes share nothing the attacks count: each has its own emulator, servers and homes, and
    the CLI's environment is taken before any starts (attack 1 sets proxy variables in this
    process). An attack that raises counts one more defect.
    """
    environ = dict(os.environ)
    results: Dict[int, AttackResult] = {}
    by_number = {entry[0]: entry for entry in ATTACKS}
    lanes = [[by_number[number] for number in lane] for lane in LANES]
    workers = [
        threading.Thread(target=_lane, args=(quick, lane, environ, results), name=f"hardening-{i}", daemon=True)
        for i, lane in enumerate(lanes[1:], 1)
    ]
    for worker in workers:
        worker.start()
    _lane(quick, lanes[0], environ, results)
    for worker in workers:
        worker.join(300)
    for number, title, _ in ATTACKS:
        results.setdefault(number, AttackResult(number, title, 1, ["did not finish within 300 s"]))
    return [results[number] for number, _, _ in ATTACKS]
