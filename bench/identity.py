"""``python -m bench.identity``: the default chain and managed identity tokens, oauth_core vs azure-identity and MSAL.

Two parts, everything on loopback (the IMDS host override is always set, so nothing goes to
169.254.169.254; the clients' name lookups of anything but loopback are refused and counted):

``chain``   a host without managed identity: the seconds from building the default chain to its
            "no credential here" error, with the IMDS host on a closed loopback port and on a
            port that accepts connections and never answers. oauth_core
            ``DefaultCredential(environ=..., cache=MemoryTokenCache()).get_token()`` against
            azure-identity ``DefaultAzureCredential(...).get_token(scope)``, each run in a new
            process with every Azure variable cleared; azure-identity's developer-tool, shared
            cache, browser and broker links are excluded (:data:`~bench.identity_worker.AZURE_EXCLUDED`).
            A run still waiting at ``--cap`` seconds is killed and reported as ``>= cap``.
``token``   managed identity tokens from the emulator (App Service and IMDS shapes): a fetch with
            a new credential each time (new cache, new connection), a fetch with a new cache on a
            kept connection, and a cached hit; oauth_core ``ManagedIdentity``, azure-identity
            ``ManagedIdentityCredential`` and MSAL ``ManagedIdentityClient``, each in its own
            process, the emulator in this one.

Prints Markdown tables; writes ``OUT/identity.json`` and ``OUT/identity.md`` (``--out``, default
``bench/out``). Ratios are oauth_core over the peer: below 1 is faster. The clients run in
subprocesses (:mod:`bench.identity_worker`), with this interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import util
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .identity_worker import AZURE_EXCLUDED
from .meta import load, run_meta, say, write_results
from .stats import percentile, ratio

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGES = ("oauth-core", "httpx", "azure-identity", "azure-core", "msal", "requests")
SOURCES = ("appservice", "imds")
MODES = (
    ("fetch", "fetch, new credential (new connection)"),
    ("fetch_kept", "fetch, new cache, kept connection"),
    ("hit", "cached hit"),
)
PEERS = {"oauth_core": "oauth_core", "azure": "azure-identity", "msal": "MSAL"}
_CLEARED_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_", "MSAL_", "AZUREPS_")
_CLEARED = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass(frozen=True)
class Sizes:
    runs: int  # chain runs per client and port
    cap: float  # seconds a chain run may take before it is killed
    fetches: int  # token fetches per client, source and fetch mode
    hits: int  # cached hits per client and source


FULL = Sizes(runs=10, cap=30.0, fetches=200, hits=2000)
QUICK = Sizes(runs=3, cap=30.0, fetches=20, hits=200)


def _environment(extra: Dict[str, str]) -> Dict[str, str]:
    """This process's environment minus every Azure, MSAL, CA bundle and proxy variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_PREFIXES) and k not in _CLEARED}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(extra)
    return env


def _worker(*args: str) -> List[str]:
    return [sys.executable, "-m", "bench.identity_worker", *args]


# -- part 1: the default chain on a host without managed identity -----------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def _imds_host(kind: str) -> Iterator[str]:
    """A loopback URL for the IMDS host: a closed port, or one that accepts and never answers."""
    if kind == "closed":
        yield f"http://127.0.0.1:{_closed_port()}"
        return
    with socket.socket() as silent:  # the kernel completes the handshakes; nobody ever reads
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


def _chain_run(client: str, host: str, cap: float) -> Dict[str, Any]:
    """One run in a new process: its JSON answer, or ``capped`` when it was still waiting at ``cap`` s."""
    env = _environment({"AZURE_POD_IDENTITY_AUTHORITY_HOST": host})
    with subprocess.Popen(
        _worker("chain", client), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        ready = child.stdout.readline().strip()  # the library is imported; the clock starts now
        if ready != "ready":
            child.wait()
            raise RuntimeError(f"{client} chain worker failed: {child.stderr.read()[-800:]}")
        try:
            child.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            return {"seconds": cap, "capped": True, "raised": "-", "expected": None, "refused": []}
        if child.returncode != 0:
            raise RuntimeError(f"{client} chain worker exited {child.returncode}: {child.stderr.read()[-800:]}")
        answer: Dict[str, Any] = json.loads(child.stdout.read().strip().splitlines()[-1])
    answer["capped"] = False
    return answer


def _chain_summary(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    return {
        "runs": len(runs),
        "median_s": percentile(seconds, 50),
        "max_s": max(seconds),
        "capped": sum(r["capped"] for r in runs),
        "raised": sorted({r["raised"] for r in runs}),
        "unexpected": sum(r["expected"] is False for r in runs),
        "refused": sorted({name for r in runs for name in r["refused"]}),
        "message": next((r.get("message", "") for r in runs if not r["capped"]), ""),
        "seconds": seconds,
    }


def run_chain(sizes: Sizes, clients: Sequence[str]) -> Dict[str, Any]:
    """Per IMDS host kind, per client: the chain's time to answer over ``sizes.runs`` runs."""
    results: Dict[str, Any] = {}
    for kind in ("closed", "silent"):
        results[kind] = {}
        for client in clients:
            runs = []
            for _ in range(sizes.runs):
                with _imds_host(kind) as host:
                    runs.append(_chain_run(client, host, sizes.cap))
            results[kind][client] = _chain_summary(runs)
            got = results[kind][client]
            say(f"   chain, {kind} port, {client}: median {got['median_s']:.3f} s, max {got['max_s']:.3f} s")
    return results


# -- part 2: managed identity tokens from the emulator ----------------------------------------------


def _token_run(client: str, env: Dict[str, str], sizes: Sizes) -> Dict[str, Any]:
    args = _worker("token", client, str(sizes.fetches), str(sizes.hits))
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{client} token worker exited {done.returncode}: {done.stderr[-800:]}")
    answer: Dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _latency(samples_ns: List[int]) -> Dict[str, Any]:
    return {
        "n": len(samples_ns),
        "p50_us": round(percentile(samples_ns, 50) / 1000.0, 1),
        "p90_us": round(percentile(samples_ns, 90) / 1000.0, 1),
    }


def run_tokens(sizes: Sizes, clients: Sequence[str]) -> Dict[str, Any]:
    """Per source, per client, per mode: p50/p90 in microseconds (the emulator runs in this process)."""
    from oauth_core.emulator import Emulator, EmulatorConfig

    results: Dict[str, Any] = {}
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as emu:
        for source in SOURCES:
            env = _environment({"AZURE_POD_IDENTITY_AUTHORITY_HOST": emu.url, **emu.identity_environment(source)})
            results[source] = {}
            for client in clients:
                answer = _token_run(client, env, sizes)
                got = {mode: _latency(ns) for mode, ns in answer["latencies_ns"].items()}
                got["refused"] = answer["refused"]
                results[source][client] = got
                say(f"   tokens, {source}, {client}: " + ", ".join(f"{m} {got[m]['p50_us']} us" for m, _ in MODES))
    return results


# -- report --------------------------------------------------------------------------------------


def _secs(summary: Optional[Dict[str, Any]], key: str, cap: float) -> str:
    if summary is None:
        return "-"
    value = summary[key]
    if summary["capped"] and (key == "max_s" or summary["capped"] * 2 > summary["runs"]):
        return f">= {cap:.0f} s (capped)"
    return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.2f} s"


def _ratio_text(value: Optional[float], at_least: bool = False) -> str:
    if value is None:
        return "-"
    return f"{'<= ' if at_least else ''}{value:.3f}x" if value < 0.1 else f"{'<= ' if at_least else ''}{value:.2f}x"


def chain_table(data: Dict[str, Any]) -> List[str]:
    cap = data["sizes"]["cap"]
    lines = [
        "| IMDS host | oauth_core median | max | azure-identity median | max | median x azure-identity | raised |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for kind, label in (("closed", "closed loopback port"), ("silent", "port that accepts, never answers")):
        ours, peer = data["chain"][kind].get("oauth_core"), data["chain"][kind].get("azure")
        capped = bool(peer and peer["capped"] * 2 > peer["runs"])
        value = ratio(ours["median_s"], peer["median_s"]) if ours and peer else None
        raised = " / ".join(", ".join(s["raised"]) for s in (ours, peer) if s)
        lines.append(
            f"| {label} | {_secs(ours, 'median_s', cap)} | {_secs(ours, 'max_s', cap)} | {_secs(peer, 'median_s', cap)}"
            f" | {_secs(peer, 'max_s', cap)} | {_ratio_text(value, capped)} | {raised} |"
        )
    return lines


def token_table(data: Dict[str, Any]) -> List[str]:
    peers = [c for c in ("azure", "msal") if c in data["clients"]]
    head = "| source | what | oauth_core p50 us | p90 |" + "".join(
        f" {PEERS[p]} p50 | p90 | x {PEERS[p]} |" for p in peers
    )
    lines = [head, "|---|---|---:|---:|" + "---:|---:|---:|" * len(peers)]
    for source in SOURCES:
        row_of = data["tokens"][source]
        for mode, label in MODES:
            ours = row_of["oauth_core"][mode]
            cells = [f"{ours['p50_us']:,.1f}", f"{ours['p90_us']:,.1f}"]
            for peer in peers:
                theirs = row_of[peer][mode]
                cells += [f"{theirs['p50_us']:,.1f}", f"{theirs['p90_us']:,.1f}"]
                cells.append(_ratio_text(ratio(ours["p50_us"], theirs["p50_us"])))
            lines.append(f"| {source} | {label} | " + " | ".join(cells) + " |")
    return lines


def markdown(data: Dict[str, Any]) -> str:
    meta, sizes = data["meta"], data["sizes"]
    out = [
        f"#### Default chain without managed identity ({sizes['runs']} runs each, new process per run)",
        "",
        *chain_table(data),
        "",
        f"azure-identity excludes: {', '.join(data['azure_excluded'])}. A run still waiting at {sizes['cap']:.0f} s"
        " is killed; the ratio is then an upper bound.",
        "",
        f"#### Managed identity tokens from the emulator ({sizes['fetches']} fetches per mode, {sizes['hits']} hits)",
        "",
        *token_table(data),
        "",
    ]
    refused = sorted(
        {n for part in ("chain", "tokens") for g in data[part].values() for c in g.values() for n in c["refused"]}
    )
    out.append(f"Non-loopback name lookups refused: {', '.join(refused) if refused else 'none'}.")
    for line in data["skipped"]:
        out.append(f"- skipped: {line}")
    out.append(
        f"\n`{meta['command']}`, {meta['date']}, {meta['seconds']} s;"
        f" load {meta['load_before']} / {meta['load_after']}."
    )
    return "\n".join(out) + "\n"


# -- command line --------------------------------------------------------------------------------


def _clients() -> Tuple[List[str], List[str]]:
    """The clients whose libraries this interpreter has, and skip lines for the others."""
    clients, skipped = ["oauth_core"], []
    for client, module in (("azure", "azure.identity"), ("msal", "msal")):
        if util.find_spec(module.split(".")[0]) is not None and util.find_spec(module) is not None:
            clients.append(client)
        else:
            skipped.append(f"{PEERS[client]}: {module} is not installed (pip install -e '.[bench]')")
    return clients, skipped


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 chain runs, 20 fetches: a smoke run")
    parser.add_argument("--cap", type=float, help="seconds a chain run may wait before it is killed (default 30)")
    parser.add_argument(
        "--out", type=Path, default=HERE / "out", help="folder for identity.json/.md (default bench/out)"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parse_args(args_list)
    sizes = QUICK if args.quick else FULL
    if args.cap is not None:
        sizes = Sizes(sizes.runs, args.cap, sizes.fetches, sizes.hits)
    clients, skipped = _clients()
    data: Dict[str, Any] = {
        "meta": run_meta("bench.identity", args_list, PACKAGES),
        "sizes": sizes.__dict__,
        "clients": clients,
        "azure_excluded": [f"exclude_{name}_credential" for name in AZURE_EXCLUDED],
        "skipped": skipped,
    }
    started = time.perf_counter()
    say("== chain")
    data["chain"] = run_chain(sizes, [c for c in clients if c != "msal"])
    say("== tokens")
    data["tokens"] = run_tokens(sizes, clients)
    data["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    data["meta"]["load_after"] = load()
    text = markdown(data)
    written = write_results(args.out, "identity", data, text)
    print(text, end="")
    say(f"wrote {written} and its .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
