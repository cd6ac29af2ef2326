"""``oauth-core bench``: time token exchanges against any authority, one request per measurement.

Each exchange is one token-endpoint POST made by the client's own builder
(:meth:`~oauth_core.base.ClientBase._token_request` over the grants of :mod:`oauth_core.protocol`)
and read by :func:`~oauth_core.protocol.parse_token_response`. It is sent exactly once, with no
retry layer: a 429 is a measurement (throttling, with its ``Retry-After``), after which every
worker pauses for what the service asked, capped, before its next request.

Phases come from httpx's ``trace`` request extension (httpcore's events), in milliseconds:

- ``connect``: ``connection.connect_tcp`` started to complete. httpcore resolves the host name
  inside it, so connect *includes* DNS. ``dns`` is a separate ``socket.getaddrinfo`` of the host,
  timed after each exchange that opened a connection (outside the timed window): an estimate.
- ``tls``: ``connection.start_tls``.
- ``ttfb``: ``http11.send_request_headers.started`` to ``http11.receive_response_headers.complete``
  (writing the request, the service's time, one round trip).
- ``total``: from handing the request to httpx to the last byte of the body.

Each worker thread owns one ``httpx.Client`` and keeps its connection alive, so an exchange that
reused a connection shows 0 for dns, connect and tls. Tokens are never printed, logged or put
into the results; the newest token set can be saved to the token cache once, at the end.
"""

from __future__ import annotations

import importlib
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple
from urllib.parse import urlsplit

import httpx

from .authorize import PendingAuthorization
from .base import ClientBase
from .cache import store
from .client import fetch, new_http_client
from .errors import AADSTS, ConfigError, OAuthCoreError, OAuthError, ResponseFormatError, TransportError
from .protocol import (
    HttpResponse,
    Pairs,
    TokenSet,
    authorization_code_grant,
    client_credentials_grant,
    parse_token_response,
    password_grant,
    refresh_token_grant,
)
from .retry import NetworkFailure, retry_after_seconds

__all__ = [
    "GRANTS",
    "BenchResult",
    "BenchSettings",
    "BenchmarkStopped",
    "Grant",
    "ProgressBar",
    "Sample",
    "code_replay_grant",
    "client_credentials_bench_grant",
    "keep_newest_tokens",
    "password_bench_grant",
    "plot_result",
    "refresh_bench_grant",
    "render_text",
    "require_plotting",
    "result_json",
    "run_benchmark",
    "throttle_warning",
]

GRANTS = ("refresh", "password", "client-credentials", "auth-code-replay")
MAX_EXCHANGES = 10_000
MAX_CONCURRENCY = 64
MAX_WARMUP = 1_000
NO_RETRY_AFTER_PAUSE = 1.0  # seconds paused after a 429 that names no Retry-After
PHASES = ("total", "ttfb", "connect", "tls", "dns")
PERCENTILES = (50, 90, 99)
DNS_NOTE = (
    "connect includes name resolution (httpx resolves inside connect); dns is socket.getaddrinfo() "
    "timed separately after each new connection"
)
PLOT_HINT = "--plot needs matplotlib: pip install 'oauth-core[bench]' (or pip install matplotlib)"


class BenchmarkStopped(OAuthCoreError):
    """The run stopped early because the service kept refusing the grant (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class BenchSettings:
    """How much to send: ``n`` measured exchanges after ``warmup`` unmeasured ones, by ``concurrency`` workers.

    Attributes:
        grant: one of :data:`GRANTS`.
        max_retry_after: the longest pause (seconds) honoured after a throttled exchange.
        timeout: seconds per HTTP request.

    Raises:
        ConfigError: a value outside its bounds (1-10000 exchanges, 1-64 workers).
    """

    grant: str
    n: int = 20
    warmup: int = 2
    concurrency: int = 1
    max_retry_after: float = 60.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.grant not in GRANTS:
            raise ConfigError(f"unknown grant {self.grant!r}; use one of {', '.join(GRANTS)}")
        for name, low, high in (
            ("n", 1, MAX_EXCHANGES),
            ("concurrency", 1, MAX_CONCURRENCY),
            ("warmup", 0, MAX_WARMUP),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                flag = "-n" if name == "n" else f"--{name}"
                raise ConfigError(f"{flag} must be a whole number from {low} to {high}")
        if not 0 <= self.max_retry_after <= 3600 or not 0 < self.timeout <= 3600:
            raise ConfigError("--max-retry-after must be 0-3600 seconds and the timeout 0-3600 seconds")

    @property
    def stops_on_invalid_grant(self) -> bool:
        """Replaying a code measures refusals on purpose; every other grant stops on repeated ones."""
        return self.grant != "auth-code-replay"


@dataclass(frozen=True)
class Grant:
    """What the workers redeem: the grant's form fields and scopes (a refresh token rotates per worker)."""

    name: str
    scopes: Tuple[str, ...]
    form: Pairs = field(repr=False)
    rotates: bool = False


def refresh_bench_grant(client: ClientBase, refresh_token: str) -> Grant:
    """Redeem a refresh token; each worker goes on with the newest one it was given."""
    return Grant("refresh", client._user_scopes(None), refresh_token_grant(refresh_token), rotates=True)


def password_bench_grant(client: ClientBase, username: str, password: str) -> Grant:
    """The password (ROPC) grant, the same credentials every time."""
    return Grant("password", client._user_scopes(None), password_grant(username, password))


def client_credentials_bench_grant(client: ClientBase) -> Grant:
    """The client credentials grant, checked (scope, tenant, credential) as the client checks it.

    Raises:
        ConfigError: this client has no client credentials support, or the check failed.
    """
    check = getattr(client, "_client_credentials_flow", None)
    if check is None:
        raise ConfigError("--grant client-credentials needs client credentials support, which this build lacks")
    check(None).close()  # validates and builds one request; nothing is sent
    return Grant("client-credentials", client.scopes, client_credentials_grant())


def code_replay_grant(pending: PendingAuthorization, code: str) -> Grant:
    """Redeem one authorization code again and again: the first may succeed, the rest are refused (54005)."""
    form = authorization_code_grant(code, pending.redirect_uri, pending.code_verifier)
    return Grant("auth-code-replay", pending.scopes, form)


@dataclass(frozen=True)
class Sample:
    """One exchange. Times are milliseconds; ``at`` is seconds from the start of the run.

    ``status`` is None when no response came (``error`` then names the network failure);
    ``error`` is otherwise the OAuth ``error`` or ``malformed_response``, and ``error_code`` the
    first AADSTS code.
    """

    index: int
    worker: int
    warmup: bool
    at: float
    status: Optional[int]
    new_connection: bool
    dns: float
    connect: float
    tls: float
    ttfb: float
    total: float
    error: Optional[str] = None
    error_code: Optional[int] = None
    retry_after: Optional[float] = None

    @property
    def throttled(self) -> bool:
        return self.status == 429

    def to_dict(self) -> Dict[str, Any]:
        phases = {name: round(getattr(self, name), 3) for name in PHASES}
        return {
            "index": self.index,
            "worker": self.worker,
            "warmup": self.warmup,
            "at": round(self.at, 4),
            "status": self.status,
            "new_connection": self.new_connection,
            "phases": phases,
            "error": self.error,
            "error_code": self.error_code,
            "retry_after": self.retry_after,
        }


@dataclass(frozen=True)
class BenchResult:
    """Every sample of a run, plus why it stopped early (if it did) and the newest tokens (never shown)."""

    settings: BenchSettings
    token_endpoint: str
    client_id: str
    samples: Tuple[Sample, ...]
    pauses: Tuple[float, ...]
    stopped: Optional[BenchmarkStopped] = None
    newest: Optional[TokenSet] = field(default=None, repr=False)

    @property
    def measured(self) -> List[Sample]:
        return [s for s in self.samples if not s.warmup]

    def failure(self) -> Optional[OAuthCoreError]:
        """Why the run counts as failed: it stopped on refusals (exit 1), or nothing answered (exit 3)."""
        if self.stopped is not None:
            return self.stopped
        if self.samples and all(s.status is None for s in self.samples):
            kinds = sorted({s.error or "unknown" for s in self.samples})
            return TransportError(f"none of the {len(self.samples)} exchanges got a response ({', '.join(kinds)})")
        return None


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
        request = self.client._token_request(form, self.grant.scopes)
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


def keep_newest_tokens(client: ClientBase, grant: Grant, result: BenchResult) -> None:
    """Save the run's newest tokens to the client's cache, once, as the grant's own command would.

    A long refresh run rotates the refresh token many times; saving the last one keeps the cache
    usable where the authority revokes redeemed refresh tokens. A replayed code's tokens are not
    kept: their id_token nonce is not checked here.
    """
    if result.newest is not None and grant.name != "auth-code-replay":
        with client.cache.transaction() as state:
            store(state, client._where, result.newest, grant.scopes)


def throttle_warning(endpoint: str, settings: BenchSettings) -> Optional[str]:
    """The one-line warning for a non-loopback authority, or None."""
    from .authority import is_loopback_host

    host = urlsplit(endpoint).hostname or ""
    if is_loopback_host(host):
        return None
    total = settings.n + settings.warmup
    return (
        f"warning: {total} token requests to {host}: real tenants throttle (HTTP 429) and may lock accounts; "
        "lower -n/--concurrency to send fewer"
    )


# -- statistics -----------------------------------------------------------------------------------


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), so p50 <= p90 <= p99 <= max."""
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _stats(values: Sequence[float]) -> Dict[str, Optional[float]]:
    ordered = sorted(values)
    keys = [f"p{q}" for q in PERCENTILES] + ["max", "min", "mean"]
    if not ordered:
        return {"count": 0, **{k: None for k in keys}}
    numbers = [_percentile(ordered, q) for q in PERCENTILES] + [ordered[-1], ordered[0], sum(ordered) / len(ordered)]
    return {"count": len(ordered), **{k: round(v, 3) for k, v in zip(keys, numbers)}}


def _phase_values(result: BenchResult) -> Dict[str, List[float]]:
    """total/ttfb: answered, unthrottled, measured exchanges; dns/connect/tls: every one that opened a connection.

    Connections open mostly during the warm-up, so the connection phases count it in.
    """
    answered = [s for s in result.measured if s.status is not None and not s.throttled]
    opened = [s for s in result.samples if s.new_connection and s.status is not None]
    tls = [s.tls for s in opened] if result.token_endpoint.startswith("https:") else []
    return {
        "total": [s.total for s in answered],
        "ttfb": [s.ttfb for s in answered],
        "connect": [s.connect for s in opened],
        "tls": tls,
        "dns": [s.dns for s in opened],
    }


def _errors(samples: Sequence[Sample]) -> Dict[str, Dict[str, Any]]:
    found: Dict[str, Dict[str, Any]] = {}
    for sample in samples:
        if sample.error is None:
            continue
        key = f"AADSTS{sample.error_code}" if sample.error_code is not None else sample.error
        entry = found.setdefault(key, {"error": sample.error, "count": 0, "meaning": None})
        entry["count"] += 1
        if sample.error_code is not None and sample.error_code in AADSTS:
            entry["meaning"] = AADSTS[sample.error_code][1]
    return dict(sorted(found.items(), key=lambda item: -item[1]["count"]))


def _window(measured: Sequence[Sample]) -> float:
    if not measured:
        return 0.0
    return max(s.at + s.total / 1000.0 for s in measured) - min(s.at for s in measured)


def result_json(result: BenchResult) -> Dict[str, Any]:
    """The run as one JSON-ready object: config, summary, phases, statuses, throttled, errors, samples."""
    measured = result.measured
    window = _window(measured)
    statuses: Dict[str, int] = {}
    for sample in result.samples:
        key = "none" if sample.status is None else str(sample.status)
        statuses[key] = statuses.get(key, 0) + 1
    throttled = [s for s in result.samples if s.throttled]
    settings = result.settings
    return {
        "config": {
            "grant": settings.grant,
            "n": settings.n,
            "warmup": settings.warmup,
            "concurrency": settings.concurrency,
            "max_retry_after": settings.max_retry_after,
            "timeout": settings.timeout,
            "token_endpoint": result.token_endpoint,
            "client_id": result.client_id,
            "units": "milliseconds",
            "dns": DNS_NOTE,
        },
        "summary": {
            "exchanges": len(measured),
            "requests": len(result.samples),
            "ok": sum(1 for s in measured if s.status == 200 and s.error is None),
            "answered": len(_phase_values(result)["total"]),
            "new_connections": sum(1 for s in result.samples if s.new_connection),
            "elapsed_s": round(window, 4),
            "requests_per_second": round(len(measured) / window, 2) if window > 0 else None,
            "stopped": None if result.stopped is None else str(result.stopped),
        },
        "phases": {name: _stats(values) for name, values in _phase_values(result).items()},
        "statuses": dict(sorted(statuses.items())),
        "throttled": {
            "count": len(throttled),
            "retry_after": [s.retry_after for s in throttled],
            "paused_s": round(sum(result.pauses), 3),
        },
        "errors": _errors(result.samples),
        "samples": [s.to_dict() for s in result.samples],
    }


# -- output ---------------------------------------------------------------------------------------


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def _histogram(values: Sequence[float], bins: int = 10, width: int = 40) -> List[str]:
    if not values:
        return ["  (no answered exchanges)"]
    low, high = min(values), max(values)
    bins = 1 if high == low else min(bins, len(values))
    step = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / step))] += 1
    most = max(counts)
    return [
        f"  {low + i * step:9.2f} - {low + (i + 1) * step:9.2f} |{'#' * round(width * c / most):<{width}}| {c}"
        for i, c in enumerate(counts)
    ]


def render_text(result: BenchResult) -> str:
    """The terminal summary: phase percentiles, throughput, statuses, throttling, errors, histogram."""
    data = result_json(result)
    config, summary, phases = data["config"], data["summary"], data["phases"]
    warm = f" (+{config['warmup']} warm-up)" if config["warmup"] else ""
    lines = [
        f"oauth-core bench: {config['grant']}, {summary['exchanges']} exchanges{warm}, "
        f"concurrency {config['concurrency']}, {config['token_endpoint']}",
        "",
        f"{'phase (ms)':<12}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}   over",
    ]
    over = {
        "total": f"{phases['total']['count']} answered exchanges (429s and network failures left out)",
        "ttfb": "the same; request written to response headers",
        "connect": f"{phases['connect']['count']} new connection(s), warm-up included",
        "tls": "the same" if result.token_endpoint.startswith("https:") else "no TLS (http)",
        "dns": "the same; getaddrinfo, see note",
    }
    for name in PHASES:
        stats = phases[name]
        cells = "".join(f"{_ms(stats[k]):>10}" for k in ("p50", "p90", "p99", "max"))
        lines.append(f"{name + ('*' if name == 'dns' else ''):<12}{cells}   {over[name]}")
    rate = summary["requests_per_second"]
    lines += [
        "",
        f"throughput: {summary['exchanges']} measured requests in {summary['elapsed_s']:.3f} s"
        + (f" = {rate:.1f} req/s" if rate else ""),
        f"below, all {summary['requests']} requests" + (" (warm-up included):" if config["warmup"] else ":"),
        "statuses:   " + (", ".join(f"{k} x{v}" for k, v in data["statuses"].items()) or "none"),
    ]
    throttled = data["throttled"]
    if throttled["count"]:
        waits = ", ".join("none" if w is None else f"{w:g} s" for w in throttled["retry_after"])
        lines.append(
            f"throttled:  {throttled['count']} x 429, Retry-After: {waits}; paused {throttled['paused_s']:g} s"
        )
    else:
        lines.append("throttled:  none")
    errors = data["errors"]
    lines.append("errors:     none" if not errors else "errors:")
    for key, entry in errors.items():
        label = key if key == entry["error"] else f"{key} {entry['error']}"
        meaning = f" ({entry['meaning']})" if entry["meaning"] else ""
        lines.append(f"  {label}{meaning} x{entry['count']}")
    if summary["stopped"]:
        lines.append(summary["stopped"])
    lines += ["", "total latency (ms):", *_histogram(_phase_values(result)["total"]), "", f"* {DNS_NOTE}"]
    return "\n".join(lines) + "\n"


class ProgressBar:
    """``[#####.....] 12/50`` on a stream, rewritten in place with ``\\r``; :meth:`close` ends the line."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        if done == self._shown:
            return
        self._shown = done
        filled = self.width * done // max(1, total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (if it showed anything)."""
        if self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = -1


def require_plotting() -> Any:
    """matplotlib, imported lazily (the ``bench`` extra).

    Raises:
        ConfigError: matplotlib is not installed.
    """
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise ConfigError(PLOT_HINT) from None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def plot_result(result: BenchResult, path: str) -> None:
    """Draw the total-latency histogram and the latency of each exchange over time to a PNG.

    Raises:
        ConfigError: matplotlib is missing, or the file cannot be written.
    """
    pyplot = require_plotting()
    answered = [s for s in result.measured if s.status is not None and not s.throttled]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
    left.hist([s.total for s in answered], bins=min(30, max(1, len(answered))))
    left.set_xlabel("total latency (ms)")
    left.set_ylabel("exchanges")
    right.plot([s.at for s in answered], [s.total for s in answered], ".", label="total")
    right.plot([s.at for s in answered], [s.ttfb for s in answered], ".", label="ttfb")
    right.set_xlabel("seconds into the run")
    right.set_ylabel("ms")
    right.legend()
    figure.suptitle(f"oauth-core bench: {result.settings.grant}, {len(result.measured)} exchanges")
    try:
        figure.savefig(path, dpi=100)
    except OSError as exc:
        raise ConfigError(f"cannot write the plot {path}: {exc.strerror}") from None
    finally:
        pyplot.close(figure)
