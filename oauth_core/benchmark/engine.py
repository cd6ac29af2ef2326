"""``oauth-core bench``'s run: worker threads sending token exchanges, one request per measurement.

Each exchange is one token-endpoint POST built by the client's own
:meth:`~oauth_core.core.flows.ClientBase.token_request`, sent once by
:func:`~oauth_core.drivers.sync.fetch` (no retry layer) and read by
:func:`~oauth_core.core.messages.parse_token_response`.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import httpx

from ..core.authority import is_loopback_host
from ..core.errors import AADSTS, OAuthError, ResponseFormatError
from ..core.flows import ClientBase
from ..core.grants import refresh_token_grant
from ..core.messages import HttpResponse, Pairs, TokenSet, parse_token_response
from ..drivers.retry import NetworkFailure, retry_after_seconds
from ..drivers.stores import store
from ..drivers.sync import EntraClient
from ..drivers.transport import fetch, new_http_client
from .model import BenchmarkStopped, BenchResult, BenchSettings, Grant, Sample

__all__ = ["NO_RETRY_AFTER_PAUSE", "keep_newest_tokens", "run_benchmark", "throttle_warning"]

NO_RETRY_AFTER_PAUSE = 1.0  # seconds paused after a 429 that names no Retry-After


class _Trace:
    """The ``trace`` extension callback: the first time each httpcore event fired."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.marks: Dict[str, float] = {}

    def __call__(self, name: str, info: Dict[str, Any]) -> None:
        self.marks.setdefault(name, self.clock())

    def span(self, first: str, last: str) -> float:
        if first in self.marks and last in self.marks:
            return max(0.0, (self.marks[last] - self.marks[first]) * 1000.0)
        return 0.0


def _resolve_ms(url: str, clock: Callable[[], float]) -> float:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = clock()
    try:
        socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)
    except OSError:
        return 0.0
    return (clock() - started) * 1000.0


class _Run:
    """The shared state of one run: work to hand out, samples, the throttling pause, the stop flag."""

    def __init__(self, client: ClientBase, grant: Grant, settings: BenchSettings, clock: Callable[[], float]) -> None:
        self.client, self.grant, self.settings, self.clock = client, grant, settings, clock
        self.total = settings.warmup + settings.n
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.go = threading.Event()  # every worker starts at once, so each gets work from the start
        self.started = clock()
        self.workers = min(settings.concurrency, self.total)
        self.next_index = self.workers  # index k < workers is worker k's first exchange
        self.resume_at = 0.0
        self.samples: List[Sample] = []
        self.pauses: List[float] = []
        self.refused_in_a_row: Dict[int, int] = {}  # per worker: each keeps its own refresh token chain
        self.stopped: Optional[BenchmarkStopped] = None
        self.fatal: Optional[BaseException] = None
        self.newest: Optional[TokenSet] = None

    def worker(self, number: int) -> None:
        form = self.grant.form
        self.go.wait()
        try:
            with new_http_client(self.settings.timeout) as http:
                first: Optional[int] = number
                while True:
                    self._pause()
                    index, first = self._claim(first), None
                    if index is None:
                        return
                    sample, tokens, refusal = self._exchange(http, number, index, form)
                    if tokens is not None and tokens.refresh_token and self.grant.rotates:
                        form = refresh_token_grant(tokens.refresh_token)  # none returned: keep the old one
                    self._record(sample, tokens, refusal)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            with self.lock:
                self.fatal = self.fatal or exc
            self.stop.set()

    def _pause(self) -> None:
        delay = self.resume_at - self.clock()
        if delay > 0:
            self.stop.wait(delay)

    def _claim(self, reserved: Optional[int]) -> Optional[int]:
        """The next exchange's index (a worker's first one is reserved for it), or None when done."""
        with self.lock:
            if self.stop.is_set():
                return None
            if reserved is not None:
                return reserved
            if self.next_index >= self.total:
                return None
            self.next_index += 1
            return self.next_index - 1

    def _exchange(
        self, http: httpx.Client, number: int, index: int, form: Pairs
    ) -> Tuple[Sample, Optional[TokenSet], Optional[OAuthError]]:
        request = self.client.token_request(form, self.grant.scopes)
        trace = _Trace(self.clock)
        started = self.clock()
        response: Optional[HttpResponse] = None
        error: Optional[str] = None
        try:
            response = fetch(http, request, extensions={"trace": trace})
        except NetworkFailure as failure:
            error = failure.kind
        ended = self.clock()
        new = "connection.connect_tcp.started" in trace.marks
        tokens, refusal, code = None, None, None
        if response is not None and response.status != 429:
            try:
                tokens = parse_token_response(response, received_at=time.time(), requested_scopes=self.grant.scopes)
            except OAuthError as exc:
                refusal, error, code = exc, exc.error, (exc.error_codes[0] if exc.error_codes else None)
            except ResponseFormatError:
                error = "malformed_response"
        sample = Sample(
            index=index,
            worker=number,
            warmup=index < self.settings.warmup,
            at=started - self.started,
            status=None if response is None else response.status,
            new_connection=new,
            dns=_resolve_ms(request.url, self.clock) if new else 0.0,
            connect=trace.span("connection.connect_tcp.started", "connection.connect_tcp.complete"),
            tls=trace.span("connection.start_tls.started", "connection.start_tls.complete"),
            ttfb=trace.span("http11.send_request_headers.started", "http11.receive_response_headers.complete"),
            total=(ended - started) * 1000.0,
            error=error,
            error_code=code,
            retry_after=None if response is None else retry_after_seconds(response),
        )
        return sample, tokens, refusal

    def _record(self, sample: Sample, tokens: Optional[TokenSet], refusal: Optional[OAuthError]) -> None:
        with self.lock:
            self.samples.append(sample)
            if tokens is not None:
                self.newest = tokens
            wait = sample.retry_after
            if sample.throttled or (wait is not None and sample.status is not None and sample.status >= 500):
                wait = min(self.settings.max_retry_after, NO_RETRY_AFTER_PAUSE if wait is None else wait)
                self.pauses.append(wait)
                self.resume_at = max(self.resume_at, self.clock() + wait)
            refused = self.refused_in_a_row.get(sample.worker, 0)
            if sample.error == "invalid_grant":
                refused += 1
            elif sample.status is not None and not sample.throttled:
                refused = 0
            self.refused_in_a_row[sample.worker] = refused
            if refusal is not None and refused >= 2 and self.settings.stops_on_invalid_grant:
                self.stopped = self.stopped or _stop_error(refusal, self.grant, self.settings)
                self.stop.set()

    def result(self) -> BenchResult:
        samples = tuple(sorted(self.samples, key=lambda s: s.index))
        endpoint = self.client.authority.token_endpoint
        return BenchResult(
            self.settings, endpoint, self.client.client_id, samples, tuple(self.pauses), self.stopped, self.newest
        )


def _stop_error(refusal: OAuthError, grant: Grant, settings: BenchSettings) -> BenchmarkStopped:
    code = refusal.error_codes[0] if refusal.error_codes else None
    meaning = ""
    if code is not None:
        meaning = f" (AADSTS{code}: {AADSTS[code][1]})" if code in AADSTS else f" (AADSTS{code})"
    stopped = BenchmarkStopped(f"stopped: the service refused the grant twice in a row: {refusal.error}{meaning}")
    hints = [refusal.hint] if refusal.hint else []
    if grant.rotates and settings.concurrency > 1:
        hints.append(
            "All workers start from the same refresh token; an authority that revokes a redeemed refresh "
            "token (the emulator does by default) leaves one chain alive: use --concurrency 1."
        )
    if grant.name == "password":
        hints.append("Repeated password failures can lock the account (AADSTS50053).")
    stopped.hint = " ".join(hints) or None
    return stopped


def run_benchmark(
    client: ClientBase,
    grant: Grant,
    settings: BenchSettings,
    *,
    progress: Optional[Callable[[int, int], None]] = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BenchResult:
    """Run ``settings.warmup + settings.n`` exchanges over ``settings.concurrency`` worker threads.

    ``progress(done, total)`` is called from this thread about ten times a second.

    Raises:
        OAuthCoreError: a failure that would repeat on every exchange (a bad credential value, TLS
            verification), raised as soon as a worker meets it.
        KeyboardInterrupt: after the workers have stopped.
    """
    run = _Run(client, grant, settings, clock)
    threads = [
        threading.Thread(target=run.worker, args=(number,), name=f"oauth-core-bench-{number}", daemon=True)
        for number in range(run.workers)
    ]
    for thread in threads:
        thread.start()
    run.started = clock()
    run.go.set()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
                if progress is not None:
                    progress(len(run.samples), run.total)
    except KeyboardInterrupt:
        run.stop.set()
        run.go.set()
        for thread in threads:
            thread.join()
        raise
    if progress is not None:
        progress(len(run.samples), run.total)
    if run.fatal is not None:
        raise run.fatal
    return run.result()


def keep_newest_tokens(client: EntraClient, grant: Grant, result: BenchResult) -> None:
    """Save the run's newest tokens to the client's cache, once, as the grant's own command would.

    A long refresh run rotates the refresh token many times; saving the last one keeps the cache
    usable where the authority revokes redeemed refresh tokens. A replayed code's tokens are not
    kept: their id_token nonce is not checked here.
    """
    if result.newest is not None and grant.name != "auth-code-replay":
        with client.cache.transaction() as state:
            store(state, client.cache_scope, result.newest, grant.scopes)


def throttle_warning(endpoint: str, settings: BenchSettings) -> Optional[str]:
    """The one-line warning for a non-loopback authority, or None."""
    host = urlsplit(endpoint).hostname or ""
    if is_loopback_host(host):
        return None
    total = settings.n + settings.warmup
    return (
        f"warning: {total} token requests to {host}: real tenants throttle (HTTP 429) and may lock accounts; "
        "lower -n/--concurrency to send fewer"
    )
