"""Command-line glue: ``python -m oauth_core.emulator`` and the ``oauth-core emulator`` subcommand.

:func:`add_arguments` declares the options on any parser; :func:`run` starts the emulator, prints
what a person needs to use it (URL, tenant, clients, test users, CA bundle, the ``export`` lines of
each managed identity and workload identity source), and serves until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import replace
from types import FrameType
from typing import Any, Dict, List, Optional, TextIO

from ..core.errors import ConfigError
from . import Emulator, EmulatorConfig
from .faults import FaultSpec, parse_fault_spec

__all__ = ["add_arguments", "run"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535 (0: any free port)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser``."""
    parser.add_argument("--port", type=_port, default=0, help="TCP port (default 0: any free port)")
    parser.add_argument("--listen", default="127.0.0.1", help="loopback address: 127.0.0.1 (default) or ::1")
    parser.add_argument("--tls", action="store_true", help="serve https with a throwaway CA")
    parser.add_argument("--ca-dir", metavar="DIR", help="where to write ca.pem with --tls (default: a temp dir)")
    parser.add_argument("--config", metavar="FILE", help="JSON tenant config (users, clients, resources, timing)")
    parser.add_argument(
        "--fault",
        metavar="SPEC",
        action="append",
        default=[],
        help="inject a fault, e.g. token:429x3:retry-after=1, token:503x2, token:delay=2.5, token:drop-after, "
        "token:truncate, token:html=502 (repeatable)",
    )
    parser.add_argument(
        "--request-log",
        metavar="FILE",
        help="append every request to FILE as one JSON line (time, endpoint, grant type, client id, status; "
        "no secret), created 0600",
    )
    parser.add_argument("--token-lifetime", type=int, metavar="SECONDS", help="fixed access-token lifetime")
    parser.add_argument(
        "--federated-token-file",
        metavar="PATH",
        help="where to write the workload identity token (default: a private temp folder)",
    )
    rotation = parser.add_mutually_exclusive_group()
    rotation.add_argument(
        "--keep-rotated-refresh-tokens",
        action="store_true",
        help="keep a redeemed refresh token valid until it expires, as Entra does (the default; kept for old scripts)",
    )
    rotation.add_argument(
        "--revoke-rotated-refresh-tokens",
        action="store_true",
        help="revoke a refresh token once redeemed (reuse: AADSTS70000); Entra does not do this",
    )
    parser.add_argument(
        "--step-up",
        metavar="UPN_OR_APP_ID",
        action="append",
        default=[],
        help="a Conditional Access policy asks this user (or a token for this resource) for MFA on refresh: "
        "AADSTS50076 with a claims challenge (repeatable)",
    )


def _config(args: argparse.Namespace) -> EmulatorConfig:
    config = EmulatorConfig.from_file(args.config) if args.config else EmulatorConfig.default()
    if args.token_lifetime is not None:
        config = replace(config, token_lifetime=args.token_lifetime)
    if args.revoke_rotated_refresh_tokens:
        config = replace(config, revoke_rotated_refresh_tokens=True)
    return _with_step_up(config, args.step_up)


def _with_step_up(config: EmulatorConfig, names: List[str]) -> EmulatorConfig:
    """Flag the named users (UPNs) and resources (app ids or app id URIs) ``step_up``."""
    wanted = {name.strip().lower() for name in names}
    users = tuple(replace(u, step_up=True) if u.username.lower() in wanted else u for u in config.users)
    resources = tuple(replace(r, step_up=True) if any(map(r.known_as, wanted)) else r for r in config.resources)
    unknown = {
        name for name in wanted - {u.username.lower() for u in users} if not any(r.known_as(name) for r in resources)
    }
    if unknown:
        raise ConfigError(f"--step-up: no user or resource {', '.join(sorted(unknown))}")
    return replace(config, users=users, resources=resources)


def _describe(emu: Emulator, faults: List[FaultSpec]) -> List[str]:
    cfg = emu.config
    lines = [
        f"oauth-core emulator listening on {emu.url}",
        f"  tenant:     {cfg.tenant_id} ({cfg.domain})",
        f"  authority:  {emu.url}/{cfg.tenant_id}",
    ]
    for client in cfg.clients:
        kind = f"confidential, secret: {client.secret}" if client.secret else "public"
        if client.certificates and not client.secret:
            kind = "confidential, certificate"
        elif client.federated_credentials and not client.secret:
            kind = "confidential, federated credential"
        family = ", family of client ids" if client.family else ""
        lines.append(f"  client:     {client.client_id}  {client.display_name} ({kind}{family})")
    lines.append("  users:")
    for user in cfg.users:
        notes = [
            n
            for n, on in (
                ("needs MFA", user.requires_mfa),
                ("no consent", not user.consented),
                ("disabled", not user.enabled),
                ("federated", cfg.is_federated(user.username)),
                ("step-up on refresh", user.step_up),
            )
            if on
        ]
        suffix = f"  ({', '.join(notes)})" if notes else ""
        lines.append(f"    {user.username}  {user.password}{suffix}")
    if cfg.federated_domains:
        lines.append(f"  federated:  {', '.join(cfg.federated_domains)} sign in at the stand-in AD FS:")
        lines.append(f"    MEX:      {emu.url}/adfs/services/trust/mex")
        for version in ("13", "2005"):
            lines.append(f"    WS-Trust: {emu.url}/adfs/services/trust/{version}/usernamemixed")
        if not emu.ca_bundle:
            lines.append("    (MSAL takes WS-Trust endpoints from MEX only over https: start with --tls)")
    if not cfg.revoke_rotated_refresh_tokens:
        lines.append("  refresh:    a rotated refresh token stays valid until it expires, as in Entra")
    else:
        lines.append("  refresh:    a rotated refresh token is revoked (--revoke-rotated-refresh-tokens; not Entra)")
    for spec in faults:
        lines.append(f"  fault:      {spec.endpoint}: {spec.fault.kind} x{spec.times}")
    if emu.request_log:
        lines.append(f"  requests:   logged to {emu.request_log} (one JSON line each, no secrets)")
    if emu.ca_bundle:
        lines.append(f"  CA bundle:  {emu.ca_bundle}")
        lines.append(f"  trust it:   SSL_CERT_FILE={emu.ca_bundle} (requests: REQUESTS_CA_BUNDLE={emu.ca_bundle})")
    lines.extend(_identity_lines(emu))
    lines.append("Press Ctrl+C to stop.")
    return lines


def _identity_lines(emu: Emulator) -> List[str]:
    """One group of ``export`` lines per token source with no user and no secret (export one group)."""
    from .environment import IDENTITY_SOURCES, SOURCE_TITLES, export_lines

    lines = ["  token sources without a user or a secret (export one group):"]
    for source in IDENTITY_SOURCES:
        try:
            variables = emu.identity_environment(source)
        except ConfigError:
            continue  # Service Fabric without TLS, or no client trusting a federated credential
        lines.append(f"    {SOURCE_TITLES[source]}:")
        lines.extend(export_lines(variables, indent="      "))
        if source == "workload" and not emu.ca_bundle:
            lines.append("      (azure-identity wants an https authority: start with --tls and trust the CA bundle)")
    return lines


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    previous: Dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: only stop() of the process ends us
            pass
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Start the emulator from parsed options, print how to use it, serve until SIGINT/SIGTERM.

    Returns:
        0 after a clean stop.

    Raises:
        ConfigError: a bad option, config file or fault spec, or cryptography is missing.
    """
    config = _config(args)
    faults = [parse_fault_spec(spec) for spec in args.fault]
    emu = Emulator(
        config, port=args.port, tls=args.tls, host=args.listen, ca_dir=args.ca_dir, request_log=args.request_log
    )
    with emu:
        for spec in faults:
            emu.inject(spec.endpoint, spec.fault, times=spec.times)
        # A day: the longest a projected service-account token lives, and the emulator may run that long.
        emu.write_federated_token_file(args.federated_token_file, lifetime=86400)
        for line in _describe(emu, faults):
            print(line, file=out)
        out.flush()
        _wait_for_signal()
    return 0
