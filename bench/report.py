"""Turning results into Markdown tables, the target verdicts, JSON and PNG plots.

Plots use matplotlib's Agg backend (no display needed); without matplotlib they are skipped
with a line saying so. ``RESULTS.md`` is written by :mod:`bench.results_file`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .clients import LABELS
from .stats import percentile, ratio

__all__ = ["markdown", "plots", "targets", "write_json"]

Row = Dict[str, Any]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += [
        "| " + " | ".join(_fmt(cell) if not isinstance(cell, str) else cell for cell in row) + " |" for row in rows
    ]
    return "\n".join(lines)


# -- targets --------------------------------------------------------------------------------------


def _get(data: Dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _target(ident: str, text: str, measured: Optional[float], op: str, limit: float, detail: str) -> Row:
    met = None if measured is None else (measured <= limit if op == "<=" else measured >= limit)
    return {
        "id": ident,
        "target": text,
        "measured": None if measured is None else round(measured, 3),
        "op": op,
        "limit": limit,
        "met": met,
        "detail": detail,
    }


def targets(data: Dict[str, Any]) -> List[Row]:
    """The issue's targets, each with its measured ratio (None when its rows did not run)."""
    tls = _get(data, "latency", "tls") or {}
    plain = _get(data, "latency", "http") or {}
    mock = data.get("inprocess") or {}
    dec = data.get("decode") or {}
    cold = data.get("coldstart") or {}
    fast = _get(data, "concurrency", "fast") or {}
    delayed = _get(data, "concurrency", "emulator_delay") or {}

    def p50(rows: Dict[str, Row], name: str) -> Optional[float]:
        value = _get(rows, name, "p50_us")
        return float(value) if value is not None else None

    out = []
    r = ratio(p50(tls, "oauth_core"), p50(tls, "msal"))
    out.append(
        _target(
            "refresh_vs_msal",
            "Refresh p50 over loopback TLS vs MSAL (TLS both)",
            r,
            "<=",
            0.45,
            f"{_fmt(p50(tls, 'oauth_core'))} us vs {_fmt(p50(tls, 'msal'))} us",
        )
    )
    ours, bare = p50(plain, "oauth_core"), p50(plain, "httpx-nojar")
    out.append(
        _target(
            "refresh_vs_httpx",
            "Refresh p50 over loopback http vs bare httpx without a cookie jar",
            ratio(ours, bare),
            "<=",
            1.15,
            f"{_fmt(ours)} us vs {_fmt(bare)} us; on httpx's transport {_fmt(p50(plain, 'oauth_core-httpx'))} us",
        )
    )
    cpu, base = _get(plain, "oauth_core", "cpu_us"), _get(plain, "httpx-nojar", "cpu_us")
    out.append(
        _target(
            "loopback_cpu_vs_httpx",
            "Client CPU per refresh over loopback http vs bare httpx without a cookie jar",
            ratio(cpu, base),
            "<=",
            1.3,
            f"{_fmt(cpu)} us vs {_fmt(base)} us; on httpx's transport "
            f"{_fmt(_get(plain, 'oauth_core-httpx', 'cpu_us'))} us",
        )
    )
    r = ratio(p50(plain, "oauth_core"), p50(plain, "raw"))
    out.append(
        _target(
            "refresh_vs_floor",
            "Refresh p50 over loopback http vs the raw http.client floor",
            r,
            "<=",
            2.2,
            f"{_fmt(p50(plain, 'oauth_core'))} us vs {_fmt(p50(plain, 'raw'))} us; over TLS "
            f"{_fmt(ratio(p50(tls, 'oauth_core'), p50(tls, 'raw')), 2)}x",
        )
    )
    cpu, base = _get(mock, "oauth_core", "cpu_us"), _get(mock, "httpx-nojar", "cpu_us")
    out.append(
        _target(
            "cpu_vs_httpx",
            "Client CPU per exchange in-process vs bare httpx without a cookie jar",
            ratio(cpu, base),
            "<=",
            1.5,
            f"{_fmt(cpu)} us vs {_fmt(base)} us (mock transports)",
        )
    )
    ours, floor = _get(dec, "oauth_core", "p50_us"), _get(dec, "floor", "p50_us")
    r = ratio(ours, floor)
    rejected, total = _get(dec, "oauth_core", "rejected"), _get(dec, "oauth_core", "malformed")
    row = _target(
        "decode_vs_floor",
        "Unverified claims decode vs split+base64url+json.loads, no validation lost",
        r,
        "<=",
        2.0,
        f"{_fmt(ours, 2)} us vs {_fmt(floor, 2)} us; rejects {rejected}/{total} malformed "
        f"(floor {_get(dec, 'floor', 'rejected')}, pyjwt {_get(dec, 'pyjwt', 'rejected')})",
    )
    if row["met"] and rejected != total:
        row["met"] = False
    out.append(row)
    wall, msal_wall = _get(cold, "oauth-core decode TOKEN", "wall_p50_ms"), _get(cold, "import msal", "wall_p50_ms")
    out.append(
        _target(
            "decode_wall",
            '`oauth-core decode TOKEN` process wall time vs `python -c "import msal"`',
            ratio(wall, msal_wall),
            "<=",
            0.5,
            f"{_fmt(wall)} ms vs {_fmt(msal_wall)} ms",
        )
    )
    hit = _get(cold, "oauth-core token (a cache hit)", "wall_p50_ms")
    out.append(
        _target(
            "token_hit_wall",
            '`oauth-core token` from the cache, process wall time vs `python -c "import msal"`',
            ratio(hit, msal_wall),
            "<=",
            0.5,
            f"{_fmt(hit)} ms vs {_fmt(msal_wall)} ms",
        )
    )
    rss, msal_rss = _get(cold, "oauth-core decode TOKEN", "rss_p50_mib"), _get(cold, "import msal", "rss_p50_mib")
    out.append(
        _target(
            "decode_rss",
            '`oauth-core decode TOKEN` peak RSS vs `python -c "import msal"`',
            ratio(rss, msal_rss),
            "<=",
            0.8,
            f"{_fmt(rss)} MiB vs {_fmt(msal_rss)} MiB",
        )
    )
    ours_rate = _get(fast, "oauth_core async, gather", "per_s")
    msal_rate = next((row["per_s"] for label, row in fast.items() if row.get("client") == "msal"), None)
    n = _get(fast, "oauth_core async, gather", "n")
    out.append(
        _target(
            "async_throughput",
            f"{n or 200} concurrent refreshes: async client vs MSAL with threads",
            ratio(ours_rate, msal_rate),
            ">=",
            1.2,
            f"{_fmt(ours_rate)} vs {_fmt(msal_rate)} refreshes/s (pre-rendered TLS server)",
        )
    )
    bounded = _get(fast, "oauth_core async, gather, max_in_flight=8", "per_s")
    out.append(
        _target(
            "async_throughput_bounded",
            "the same with max_in_flight=8 vs MSAL with threads",
            ratio(bounded, msal_rate),
            ">=",
            1.2,
            f"{_fmt(bounded)} vs {_fmt(msal_rate)} refreshes/s (pre-rendered TLS server)",
        )
    )
    vs_ideal = _get(delayed, "oauth_core async, gather", "vs_ideal")
    out.append(
        _target(
            "async_delay",
            "Same with 50 ms server delay (emulator): time vs ideal",
            vs_ideal,
            "<=",
            1.5,
            f"{_fmt(_get(delayed, 'oauth_core async, gather', 'wall_s'), 3)} s vs ideal "
            f"{_fmt(_get(delayed, 'oauth_core async, gather', 'ideal_s'), 3)} s",
        )
    )
    return out


def _verdict(row: Row) -> str:
    if row["met"] is None:
        return "not measured"
    return "met" if row["met"] else "**MISSED**"


# -- Markdown -------------------------------------------------------------------------------------


def _latency_table(rows: Dict[str, Row], floor: Optional[Row], msal: Optional[Row]) -> str:
    body = []
    for name, row in rows.items():
        body.append(
            [
                f"`{name}` {LABELS.get(name, '')}",
                row["p50_us"],
                row["p90_us"],
                row["p99_us"],
                row["req_per_s"],
                row["cpu_us"],
                _fmt(ratio(row["p50_us"], floor["p50_us"] if floor else None), 2),
                _fmt(ratio(row["p50_us"], msal["p50_us"] if msal else None), 2),
            ]
        )
    return _table(["client", "p50 us", "p90 us", "p99 us", "req/s", "CPU us/exch", "p50 x floor", "p50 x MSAL"], body)


def _inprocess_table(rows: Dict[str, Row]) -> str:
    base = rows.get("httpx-nojar")
    body = [
        [
            f"`{name}` {LABELS.get(name, '')}",
            row["p50_us"],
            row["p90_us"],
            row["cpu_us"],
            _fmt(ratio(row["cpu_us"], base["cpu_us"] if base else None), 2),
        ]
        for name, row in rows.items()
    ]
    return _table(["client (mock transport)", "p50 us", "p90 us", "CPU us/exch", "CPU x httpx no jar"], body)


def _decode_table(rows: Dict[str, Row]) -> str:
    floor = rows.get("floor")
    body = [
        [
            name,
            _fmt(row["p50_us"], 2),
            _fmt(row["min_us"], 2),
            _fmt(ratio(row["p50_us"], floor["p50_us"] if floor else None), 2),
            f"{row['rejected']}/{row['malformed']}",
        ]
        for name, row in rows.items()
    ]
    return _table(["decoder", "p50 us/call", "min us/call", "x floor", "malformed rejected"], body)


def _cold_table(rows: Dict[str, Row]) -> str:
    msal = rows.get("import msal")
    body = [
        [
            f"`{label}`",
            row["wall_p50_ms"],
            row["wall_p10_ms"],
            row["wall_p90_ms"],
            row["rss_p50_mib"],
            _fmt(ratio(row["wall_p50_ms"], msal["wall_p50_ms"] if msal else None), 2),
            _fmt(ratio(row["rss_p50_mib"], msal["rss_p50_mib"] if msal else None), 2),
        ]
        for label, row in rows.items()
    ]
    return _table(["command", "wall p50 ms", "p10", "p90", "peak RSS MiB", "wall x msal", "RSS x msal"], body)


_SCENARIOS = {
    "fast": "pre-rendered TLS server",
    "emulator": "emulator (TLS)",
    "emulator_delay": "emulator (TLS), 50 ms delay",
}


_CONCURRENCY_COLUMNS = "server,mode,n,in flight,wall s,refresh/s,CPU us/refresh,new conns,ideal s,x ideal".split(",")


def _concurrency_table(groups: Dict[str, Dict[str, Row]]) -> str:
    body = []
    for key, rows in groups.items():
        for label, row in rows.items():
            body.append(
                [
                    _SCENARIOS.get(key, key),
                    label,
                    row["n"],
                    row["in_flight"],
                    _fmt(row["wall_s"], 3),
                    row["per_s"],
                    row["cpu_us_per_refresh"],
                    _fmt(row.get("new_connections"), 0),
                    _fmt(row.get("ideal_s"), 3),
                    _fmt(row.get("vs_ideal"), 2),
                ]
            )
    return _table(
        _CONCURRENCY_COLUMNS,
        body,
        "llrrrrrrrr",
    )


def markdown(data: Dict[str, Any]) -> str:
    """Every table of a run, and its skip lines, as Markdown."""
    parts: List[str] = []
    if _get(data, "meta", "quick"):
        parts.append(
            "_A --quick run: counts far too small for these ratios to mean anything; it checks that the suite runs._"
        )
    parts.append(
        "### Targets\n\n"
        + _table(
            ["target", "measured", "limit", "verdict", "numbers"],
            [
                [
                    t["target"],
                    _fmt(t["measured"], 2) + ("x" if t["measured"] is not None else ""),
                    f"{t['op']} {t['limit']}x",
                    _verdict(t),
                    t["detail"],
                ]
                for t in data.get("targets", [])
            ],
            "lrrll",
        )
    )
    latency = data.get("latency") or {}
    for key, title in (("http", "over loopback http"), ("tls", "over loopback TLS")):
        rows = latency.get(key)
        if rows:
            parts.append(
                f"### Refresh latency {title} (pre-rendered server, sequential, one connection)\n\n"
                + _latency_table(rows, rows.get("raw"), rows.get("msal"))
            )
    if data.get("inprocess"):
        parts.append("### Client CPU in-process (no socket: mock transports)\n\n" + _inprocess_table(data["inprocess"]))
    if data.get("decode"):
        parts.append("### Unverified claims decode (an Entra access token)\n\n" + _decode_table(data["decode"]))
    if data.get("coldstart"):
        parts.append("### Cold start of whole processes\n\n" + _cold_table(data["coldstart"]))
    if data.get("concurrency"):
        parts.append("### Concurrent refreshes\n\n" + _concurrency_table(data["concurrency"]))
    lines = [f"- skipped: {line}" for line in data.get("skipped", [])]
    lines += [f"- ERROR: {line}" for line in data.get("errors", [])]
    if lines:
        parts.append("### Skipped and failed\n\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write_json(data: Dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# -- plots ----------------------------------------------------------------------------------------


def plots(data: Dict[str, Any], samples: Dict[str, Dict[str, List[int]]], folder: Path) -> Tuple[List[str], List[str]]:
    """Write the PNGs; returns their file names and skip lines."""
    try:
        import matplotlib
    except ImportError:
        return [], ["plots: matplotlib is not installed (pip install '.[bench]')"]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written: List[str] = []
    panels = [(key, rows) for key, rows in samples.items() if rows]
    if panels:
        fig, axes = plt.subplots(
            len(panels), 1, figsize=(8, 2.2 + 0.45 * sum(len(r) for _, r in panels)), squeeze=False
        )
        for ax, (key, rows) in zip(axes[:, 0], panels):
            names = list(rows)[::-1]
            values = [[v / 1000.0 for v in rows[n]] for n in names]
            ax.boxplot(values, vert=False, whis=(1, 99), showfliers=False, widths=0.6)
            ax.set_yticks(range(1, len(names) + 1), names)
            top = max(percentile(v, 99) for v in values)
            ax.set_xlim(0, top * 1.05)
            ax.set_title(
                {"http": "loopback http", "tls": "loopback TLS", "inprocess": "in-process (mock transport)"}.get(
                    key, key
                ),
                fontsize=10,
            )
            ax.grid(axis="x", alpha=0.3)
        axes[-1, 0].set_xlabel("microseconds per refresh (box: p25-p75, line: p50, whiskers: p1-p99)")
        fig.suptitle("Refresh latency per exchange, by client")
        fig.tight_layout()
        fig.savefig(folder / "latency.png", dpi=80)
        plt.close(fig)
        written.append("latency.png")
    cold = data.get("coldstart") or {}
    if cold:
        labels = list(cold)[::-1]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.5 * len(labels) + 1.5), sharey=True)
        walls = [cold[k]["wall_p50_ms"] for k in labels]
        errors = [
            [cold[k]["wall_p50_ms"] - cold[k]["wall_p10_ms"] for k in labels],
            [cold[k]["wall_p90_ms"] - cold[k]["wall_p50_ms"] for k in labels],
        ]
        left.barh(labels, walls, xerr=errors, color="#4c72b0")
        left.set_xlabel("wall ms (p50, bars p10-p90)")
        right.barh(labels, [cold[k]["rss_p50_mib"] or 0 for k in labels], color="#dd8452")
        right.set_xlabel("peak RSS MiB")
        for ax in (left, right):
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle("Cold start of whole processes")
        fig.tight_layout()
        fig.savefig(folder / "coldstart.png", dpi=80)
        plt.close(fig)
        written.append("coldstart.png")
    groups = data.get("concurrency") or {}
    if groups:
        entries = [
            (f"{_SCENARIOS.get(k, k)}: {label}", row["per_s"])
            for k, rows in groups.items()
            for label, row in rows.items()
        ]
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(entries) + 1.4))
        ax.barh([e[0] for e in entries][::-1], [e[1] for e in entries][::-1], color="#55a868")
        ax.set_xscale("log")
        ax.set_xlabel("refreshes per second (log)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title("Concurrent refreshes")
        fig.tight_layout()
        fig.savefig(folder / "concurrency.png", dpi=80)
        plt.close(fig)
        written.append("concurrency.png")
    return written, []
