"""``bench``: timed token exchanges (each sent once, no retries)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, TextIO, Tuple

from .credentials import (
    cached_refresh_token,
    client_credential,
    password,
    read_stdin_secret,
    refuse_refresh_token_argv,
    ropc_notice,
    username,
)
from .output import safe
from .pending import find_pending
from .settings import check_cache, make_client
from .usage import AddCommand, UsageError

if TYPE_CHECKING:
    from ..benchmark import Grant
    from ..drivers.sync import EntraClient

__all__ = ["add_bench_command", "cmd_bench"]


def add_bench_command(command: AddCommand) -> None:
    """bench: timed token exchanges."""
    command(
        "bench",
        "Time token exchanges, each sent once (no retries): DNS/connect/TLS/TTFB/total percentiles, "
        "throttling (429, Retry-After) and AADSTS errors. Real tenants throttle: keep -n small.",
        _bench_options,
    )


def _bench_options(sub: argparse.ArgumentParser) -> None:
    sub.epilog = (
        "connect includes name resolution (httpx resolves inside it); dns is socket.getaddrinfo() timed separately "
        "after each new connection. auth-code-replay redeems one --code repeatedly: it measures refusal latency "
        "(AADSTS54005 after the first). A run stops, exit 1, on invalid_grant twice in a row (except a replay)."
    )
    sub.add_argument(
        "--grant", required=True, choices=("refresh", "password", "client-credentials", "auth-code-replay")
    )
    sub.add_argument("-n", type=int, default=20, metavar="N", help="exchanges to measure (default 20, at most 10000)")
    sub.add_argument("--concurrency", type=int, default=1, metavar="C", help="threads, one connection each (max 64)")
    sub.add_argument("--warmup", type=int, default=2, metavar="W", help="exchanges sent first, not counted (default 2)")
    sub.add_argument(
        "--max-retry-after", type=float, default=60.0, metavar="S", help="longest pause after a 429 (default 60)"
    )
    sub.add_argument("--plot", metavar="FILE.png", help="also draw the latencies (needs matplotlib: the bench extra)")
    sub.add_argument("--progress", action="store_true", help="progress bar on stderr even when it is not a terminal")
    sub.add_argument("--username", "-u", default=None, help="password grant: the user")
    sub.add_argument("--password-stdin", action="store_true", help="password grant: read the password from stdin")
    sub.add_argument("--password", dest="password_argv", help=argparse.SUPPRESS)
    sub.add_argument("--refresh-token-stdin", action="store_true", help="refresh: read it from stdin (else cached)")
    sub.add_argument("--refresh-token", dest="refresh_token_argv", help=argparse.SUPPRESS)
    sub.add_argument("--client-secret-stdin", action="store_true", help="client credentials: secret from stdin")
    sub.add_argument("--certificate", metavar="PEMFILE", help="client credentials: PEM key and certificate")
    sub.add_argument("--client-secret", dest="client_secret_argv", help=argparse.SUPPRESS)
    sub.add_argument("--code", help="auth-code-replay: the authorization code (pending request from authorize-url)")
    sub.add_argument("--state", help="auth-code-replay: the state that came with --code")
    sub.add_argument(
        "--latest", action="store_true", help="auth-code-replay without --state: the newest pending request"
    )


_BENCH_OPTIONS = {
    "password_stdin": "password",
    "refresh_token_stdin": "refresh",
    "client_secret_stdin": "client-credentials",
    "certificate": "client-credentials",
    "code": "auth-code-replay",
    "state": "auth-code-replay",
    "latest": "auth-code-replay",
}


def _bench_setup(args: argparse.Namespace, err: TextIO) -> Tuple[EntraClient, Grant]:
    """The client and the grant to measure; credentials come as each grant's own command takes them."""
    from .. import benchmark
    from ..drivers.files import remove_quietly

    if args.password_argv is not None or args.client_secret_argv is not None:
        raise UsageError("never pass a password or client secret on the command line (see bench --help)")
    refuse_refresh_token_argv(args)
    for option, grant in _BENCH_OPTIONS.items():
        if getattr(args, option) and args.grant != grant:
            raise UsageError(f"--{option.replace('_', '-')} goes with --grant {grant}")
    if args.grant == "password":
        user = username(args)
        client = make_client(args)
        check_cache(client)
        user_password = password(args)
        ropc_notice(err)
        return client, benchmark.password_bench_grant(client, user, user_password)
    if args.grant == "client-credentials":
        secret, certificate = client_credential(args)
        client = make_client(args, client_secret=secret, client_certificate=certificate)
        check_cache(client)
        return client, benchmark.client_credentials_bench_grant(client)
    if args.grant == "auth-code-replay":
        if not args.code or not args.code.strip():
            raise UsageError(
                "--grant auth-code-replay needs the --code and --state of an authorize-url sign-in (or --latest)"
            )
        path, pending = find_pending(args.state, args.latest, err)
        client = make_client(args, pending.client_id, pending.tenant, pending.authority_host)
        check_cache(client)
        remove_quietly(path)  # the code is about to be presented: the pending request cannot be reused
        return client, benchmark.code_replay_grant(pending, args.code.strip())
    client = make_client(args)
    check_cache(client)
    stdin = args.refresh_token_stdin
    token = read_stdin_secret("refresh token") if stdin else cached_refresh_token(client, args.account)
    return client, benchmark.refresh_bench_grant(client, token)


def cmd_bench(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the benchmark and print its summary; a run that failed raises why."""
    from .. import benchmark

    settings = benchmark.BenchSettings(
        grant=args.grant,
        n=args.n,
        warmup=args.warmup,
        concurrency=args.concurrency,
        max_retry_after=args.max_retry_after,
        timeout=args.timeout or 30.0,
    )
    if args.plot:
        benchmark.require_plotting()
    client, grant = _bench_setup(args, err)
    progress = benchmark.ProgressBar(err) if args.progress or err.isatty() else None
    with client:
        warning = benchmark.throttle_warning(client.authority.token_endpoint, settings)
        if warning:
            err.write(warning + "\n")
        try:
            result = benchmark.run_benchmark(client, grant, settings, progress=progress)
        finally:
            if progress is not None:
                progress.close()
        benchmark.keep_newest_tokens(client, grant, result)
    # The summary quotes the service's error texts: made safe for a terminal.
    out.write(
        json.dumps(benchmark.result_json(result)) + "\n"
        if args.json
        else safe(benchmark.render_text(result), multiline=True)
    )
    if args.plot:
        benchmark.plot_result(result, args.plot)
        err.write(f"plot written to {args.plot}\n")
    failure = result.failure()
    if failure is not None:
        raise failure
    return 0
