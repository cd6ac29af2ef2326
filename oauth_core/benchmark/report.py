"""``oauth-core bench``'s summaries: statistics, the JSON result, the terminal text, progress, plots."""

from __future__ import annotations

import importlib
import math
from typing import Any, Dict, List, Optional, Sequence, TextIO

from ..core.errors import AADSTS, ConfigError
from .model import PHASES, BenchResult, Sample

__all__ = [
    "DNS_NOTE",
    "PERCENTILES",
    "PLOT_HINT",
    "ProgressBar",
    "plot_result",
    "render_text",
    "require_plotting",
    "result_json",
]

PERCENTILES = (50, 90, 99)
DNS_NOTE = (
    "connect includes name resolution (httpx resolves inside connect); dns is socket.getaddrinfo() "
    "timed separately after each new connection"
)
PLOT_HINT = "--plot needs matplotlib: pip install 'oauth-core[bench]' (or pip install matplotlib)"


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
