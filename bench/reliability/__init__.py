"""Reliability figures: fuzzed parsers, injected faults, killed cache writers, secret leaks, red-team attacks.

Run from the repository root::

    python -m bench.reliability            # the full run, a few minutes
    python -m bench.reliability --quick    # under a minute
    python -m bench.reliability --json     # the same figures as one JSON object

Five parts, each standalone (nothing is imported from ``tests/`` or the rest of ``bench/``):

``fuzz``     every parser that sees outside data, fed by hypothesis with its own settings
             (derandomized: the same examples on every run unless ``--seed`` is given). A case
             fails when the parser raises anything but an :class:`oauth_core.OAuthCoreError`,
             hangs, or returns a value that breaks the parser's contract.
``faults``   the emulator's fault injection on a real socket (429 with and without Retry-After,
             5xx bursts, delays past the timeout, dropped connections, truncated and HTML
             answers) around a silent refresh with a file token cache. A scenario survives when
             the caller gets tokens or the expected typed error, the cache file is whole, and the
             cached refresh token works once the service behaves.
``kill``     a process rewriting the token cache in a loop is SIGKILLed at a random moment, many
             times; the file must always be a whole cache (the old version or the new one).
``secrets``  every flow (password, refresh, code exchange with state and nonce failures, client
             credentials, device code, get_token, CLI commands with --verbose) is driven while
             logs, reprs, errors, tracebacks and CLI error output are kept; every secret value is
             searched in every one of them.
``hardening`` the 18 red-team attacks of issue 11 ("Hardening, second pass"), each tried again for
             real over loopback sockets and ``python -m oauth_core`` subprocesses (env proxies,
             damaged and unsafe caches, dripped bodies, dropped callbacks, argv secrets, untrusted
             hosts, escape sequences, resent codes, idle connections...); every behaviour checked
             is a try, every one that does not hold a defect.

The exit code is 0 when there is no failure, no corrupt cache, no leak and no defect, else 1.
Needs the test extra (hypothesis, cryptography): ``pip install -e '.[test]'``.

Modules: ``fuzz`` (runner), ``fuzz_inputs`` (strategies and seed corpus), ``fuzz_targets``
(the parsers and their contracts), ``faults``, ``kill``, ``leaks`` (the ``secrets`` part),
``hardening`` (the attacks on the library), ``hardening_cli`` (the attacks through the CLI),
``hardening_kit`` (loopback servers, the guarded CLI runner), ``report`` (Markdown), ``shared``
(ids and builders); this module holds the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from typing import Any, Dict, Optional, Sequence

from .faults import run_faults
from .fuzz import run_fuzz
from .hardening import run_hardening
from .kill import run_kills
from .leaks import run_secrets
from .report import markdown

__all__ = ["main"]

PARTS = ("fuzz", "faults", "kill", "secrets", "hardening")


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and kills: under a minute")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--examples", type=int, help="fuzz examples per parser (default 1000, quick 150)")
    parser.add_argument("--kills", type=int, help="SIGKILL runs (default 200, quick 50)")
    parser.add_argument("--seed", type=int, help="random fuzzing and kill times from this seed (default: fixed)")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts")
    return parser.parse_args(argv)


def _run_parts(args: argparse.Namespace) -> Dict[str, Any]:
    parts = set(args.only or PARTS)
    examples = args.examples or (150 if args.quick else 1000)
    kills = args.kills or (50 if args.quick else 200)
    import oauth_core

    report: Dict[str, Any] = {"mode": "quick" if args.quick else "full", "version": oauth_core.__version__}
    started = time.perf_counter()
    if "kill" in parts:  # first: forking is safest before any thread starts
        report["kill"] = dataclasses.asdict(
            run_kills(kills, random.Random(args.seed if args.seed is not None else 20240601))
        )
    if "fuzz" in parts:
        report["fuzz"] = [dataclasses.asdict(r) for r in run_fuzz(examples, args.seed)]
    if "faults" in parts:
        report["faults"] = [dataclasses.asdict(r) for r in run_faults()]
    if "secrets" in parts:
        report["secrets"] = dataclasses.asdict(run_secrets())
    if "hardening" in parts:
        begun = time.perf_counter()
        report["hardening"] = [dataclasses.asdict(r) for r in run_hardening(args.quick)]
        report["hardening_seconds"] = time.perf_counter() - begun
    report["seconds"] = time.perf_counter() - started
    return report


def _count_bad(report: Dict[str, Any]) -> int:
    """Fuzz failures, faults not survived, corrupt caches, leaks and hardening defects."""
    bad: int = (
        sum(r["failures"] for r in report.get("fuzz", []))
        + sum(not r["survived"] for r in report.get("faults", []))
        + report.get("kill", {}).get("corrupt", 0)
        + len(report.get("secrets", {}).get("leaks", []))
        + sum(len(r["defects"]) for r in report.get("hardening", []))
    )
    return bad


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    report = _run_parts(args)
    bad = _count_bad(report)
    report["clean"] = bad == 0
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0 if bad == 0 else 1
