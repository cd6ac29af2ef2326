"""``python -m bench``: run the sections, print the Markdown tables, write JSON and plots.

Exit status 0 when every section ran (speed targets never change it; missed ones are printed),
1 when a section failed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import report, results_file
from .clients import Endpoint, trusting
from .meta import load, say, versions
from .stats import Samples

__all__ = ["Sizes", "main"]

HERE = Path(__file__).resolve().parent
SECTIONS = ("latency", "inprocess", "decode", "coldstart", "concurrency")
HTTP_CLIENTS = (
    "raw",
    "httpx",
    "httpx-nojar",
    "oauth_core",
    "oauth_core-httpx",
    "httpx-async",
    "oauth_core-async",
    "msal",
    "authlib",
)
MOCK_CLIENTS = (
    "httpx",
    "httpx-nojar",
    "oauth_core",
    "httpx-async",
    "oauth_core-async",
    "msal",
    "msal+requests",
    "authlib",
)
PACKAGES = (
    "oauth-core",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "PyJWT",
    "tenacity",
    "cryptography",
    "msal",
    "requests",
    "urllib3",
    "Authlib",
    "matplotlib",
)


@dataclass(frozen=True)
class Sizes:
    """How much work each section does."""

    warmup: int
    blocks: int
    per_block: int
    mock_per_block: int
    decode_blocks: int
    decode_loops: int
    cold_repeats: int
    concurrent: int
    threads: int
    repeats: int
    delay: float = 0.05


FULL = Sizes(
    warmup=100,
    blocks=20,
    per_block=100,
    mock_per_block=200,
    decode_blocks=20,
    decode_loops=2000,
    cold_repeats=20,
    concurrent=200,
    threads=20,
    repeats=3,
)
QUICK = Sizes(
    warmup=5,
    blocks=2,
    per_block=10,
    mock_per_block=20,
    decode_blocks=3,
    decode_loops=200,
    cold_repeats=2,
    concurrent=20,
    threads=5,
    repeats=1,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run in seconds (no speed claims)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="folder for JSON and plots (default bench/out)")
    parser.add_argument("--json", type=Path, default=None, help="JSON file (default OUT/results.json)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument(
        "--results", action="store_true", help="also write bench/RESULTS.md and bench/plots/*.png from this run"
    )
    return parser


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> Optional[str]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return None


def _meta(argv: Sequence[str], quick: bool) -> Dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m bench", *argv]),
        "quick": quick,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": {
            "cpu": _cpu_model(),
            "nproc": os.cpu_count(),
            "memory": _memory(),
            "platform": platform.platform(),
            "load_before": load(),
        },
        "versions": versions(PACKAGES),
        "sniffio_importable": _has("sniffio"),
    }


class Run:
    """One run's results, skip lines and errors, filled in section by section."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.data: Dict[str, Any] = {"skipped": [], "errors": []}
        self.samples: Dict[str, Dict[str, List[int]]] = {}

    def skip(self, lines: Sequence[str], where: str = "") -> None:
        for line in lines:
            text = f"{where}{line}"
            if text not in self.data["skipped"]:
                self.data["skipped"].append(text)
                say(f"skipped: {text}")

    def section(self, name: str, action: Callable[[], None]) -> None:
        began = time.perf_counter()
        say(f"== {name}")
        try:
            action()
        except Exception as exc:  # a broken section is reported, and the others still run
            self.data["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            say(traceback.format_exc())
        say(f"   {name} took {time.perf_counter() - began:.1f} s")

    def keep(self, key: str, samples: Dict[str, Samples]) -> Dict[str, Any]:
        self.samples[key] = {name: s.latencies_ns for name, s in samples.items()}
        return {name: s.summary() for name, s in samples.items()}

    # -- sections ---------------------------------------------------------------------------

    def latency(self) -> None:
        from .latency import interleaved
        from .server import ServerProcess

        s = self.sizes
        with ServerProcess("fast") as server:
            results: Dict[str, Any] = {}
            endpoints = [("http", Endpoint(server.info["http"]))]
            if server.info["https"]:
                endpoints.append(("tls", Endpoint(server.info["https"], server.info["ca"])))
            else:
                self.skip([server.info["tls_skipped"]], "latency over TLS: ")
            for key, endpoint in endpoints:
                say(f"   {key}: {len(HTTP_CLIENTS)} clients x {s.blocks} blocks x {s.per_block} (+{s.warmup} warm-up)")
                samples, skipped = interleaved(
                    HTTP_CLIENTS, endpoint, warmup=s.warmup, blocks=s.blocks, per_block=s.per_block
                )
                self.skip(skipped, f"latency over {key}: ")
                results[key] = self.keep(key, samples)
        self.data["latency"] = results

    def inprocess(self) -> None:
        from .latency import interleaved

        s = self.sizes
        endpoint = Endpoint("https://login.microsoftonline.com", mock=True)
        samples, skipped = interleaved(
            MOCK_CLIENTS, endpoint, warmup=s.warmup, blocks=s.blocks, per_block=s.mock_per_block
        )
        self.skip(skipped, "in-process: ")
        self.data["inprocess"] = self.keep("inprocess", samples)

    def decode(self) -> None:
        from .decode import measure

        results, skipped = measure(blocks=self.sizes.decode_blocks, loops=self.sizes.decode_loops)
        self.skip(skipped, "decode: ")
        self.data["decode"] = results

    def coldstart(self) -> None:
        from .coldstart import measure
        from .entra import material

        results, skipped = measure(material().access_token, repeats=self.sizes.cold_repeats)
        self.skip(skipped, "cold start: ")
        self.data["coldstart"] = results

    def concurrency(self) -> None:
        from .concurrency import add_ideal, modes, run_modes
        from .server import ServerProcess

        s = self.sizes
        if not _has("cryptography"):
            self.skip(["the emulator and TLS need cryptography (pip install '.[bench]')"], "concurrency: ")
            return
        chosen = modes(s.threads)
        groups: Dict[str, Any] = {}
        self.data["concurrency"] = groups
        with ServerProcess("fast") as server:
            if not server.info["https"]:
                self.skip([server.info["tls_skipped"]], "concurrency: ")
                return
            fast = Endpoint(server.info["https"], server.info["ca"])
            groups["fast"], skipped = run_modes(
                fast, chosen, s.concurrent, repeats=s.repeats, connections=server.connections
            )
            self.skip(skipped, "concurrency: ")
        with ServerProcess("emulator") as emulator:
            endpoint = _emulator_endpoint(emulator.info)
            groups["emulator"], skipped = run_modes(endpoint, chosen, s.concurrent, repeats=s.repeats)
            self.skip(skipped, "concurrency: ")
            delayed, skipped = run_modes(
                endpoint, chosen, s.concurrent, repeats=s.repeats, delay=s.delay, inject=emulator.command
            )
            add_ideal(delayed, groups["emulator"], s.delay)
            groups["emulator_delay"] = delayed


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _emulator_endpoint(info: Dict[str, Any]) -> Endpoint:
    """A refresh token from the emulator (password grant for its test user), and where to redeem it."""
    from oauth_core.drivers.sync import EntraClient

    from .entra import SCOPE

    with trusting(info["ca"]):
        client = EntraClient(info["client_id"], info["tenant"], authority_host=info["url"], scopes=SCOPE)
    with client:
        tokens = client.acquire_by_password(info["username"], info["password"])
    if not tokens.refresh_token:
        raise RuntimeError("the emulator returned no refresh token")
    return Endpoint(
        info["url"], info["ca"], tenant=info["tenant"], client_id=info["client_id"], refresh_token=tokens.refresh_token
    )


def _quiet_peers() -> None:
    warnings.filterwarnings("ignore")  # MSAL's and authlib's deprecation notices are not results
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "connection pool is full" under 20 threads
    logging.getLogger("msal").setLevel(logging.ERROR)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        say(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        return 2
    _quiet_peers()
    run = Run(QUICK if args.quick else FULL)
    run.data["meta"] = _meta(args_list, args.quick)
    if not run.data["meta"]["sniffio_importable"]:
        say("note: sniffio is not importable, so httpcore's async locks take a slow path (encode/httpcore#1103)")
    started = time.perf_counter()
    for name in SECTIONS:
        if name in chosen:
            run.section(name, getattr(run, name))
    run.data["meta"]["machine"]["load_after"] = load()
    run.data["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    run.data["targets"] = report.targets(run.data)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    plot_names, skipped = report.plots(run.data, run.samples, out)
    run.skip(skipped)
    run.data["plots"] = [str(out / name) for name in plot_names]
    json_path = args.json or out / "results.json"
    report.write_json(run.data, json_path)
    if args.results:
        plot_dir = HERE / "plots"
        plot_dir.mkdir(exist_ok=True)
        for name in plot_names:
            shutil.copyfile(out / name, plot_dir / name)
        results_file.write_results(run.data, HERE / "RESULTS.md", plot_names)
        say(f"wrote {HERE / 'RESULTS.md'} and {plot_dir}")
    print(report.markdown(run.data), end="")
    for target in run.data["targets"]:
        if target["met"] is False:
            print(f"MISSED: {target['target']}: {target['measured']}x (limit {target['op']} {target['limit']}x)")
    say(f"wrote {json_path}" + (f" and {len(plot_names)} plot(s) in {out}" if plot_names else ""))
    say(f"total {run.data['meta']['seconds']} s")
    return 1 if run.data["errors"] else 0
