"""Credentials of places with no user and no secret: --managed-identity, --workload-identity, --auto.

``token`` and ``databricks`` take these options; each builds a credential whose tokens go to the
same 0600 cache as every other command's (or memory with --no-cache).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, Optional, TextIO

from .output import safe
from .settings import authority_host, open_cache, read_env
from .usage import UsageError

if TYPE_CHECKING:
    from ..core.managed import LinkReport

__all__ = ["add_identity_options", "identity_kind", "make_credential", "print_explanation"]


def add_identity_options(sub: argparse.ArgumentParser) -> None:
    """The options that choose a credential of the place instead of a signed-in account."""
    group = sub.add_argument_group("credentials of the place (no sign-in, no secret)")
    group.add_argument(
        "--managed-identity",
        action="store_true",
        help="the managed identity the environment names (App Service, Arc, Azure ML, Cloud Shell, else IMDS)",
    )
    group.add_argument("--mi-client-id", metavar="ID", help="a user-assigned managed identity, by client id")
    group.add_argument("--mi-object-id", metavar="ID", help="a user-assigned managed identity, by object id")
    group.add_argument("--mi-resource-id", metavar="ID", help="a user-assigned managed identity, by ARM resource id")
    group.add_argument(
        "--workload-identity",
        action="store_true",
        help="workload identity federation (AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID)",
    )
    group.add_argument(
        "--auto",
        action="store_true",
        help="the first that applies: environment service principal, workload identity, managed identity, "
        "a signed-in account",
    )
    group.add_argument("--explain", action="store_true", help="with --auto: say on stderr why each link applies or not")


def identity_kind(args: argparse.Namespace) -> Optional[str]:
    """``managed``, ``workload``, ``auto`` or None (a signed-in account); a usage error for a mix."""
    selectors = [flag for flag, dest in _SELECTORS if getattr(args, dest, None) is not None]
    for flag, dest in _SELECTORS:
        value = getattr(args, dest, None)
        if value is not None and not value.strip():
            raise UsageError(f"{flag} is empty: give an id, or leave the option out")
    chosen = [
        name
        for name, flag in (("managed", "managed_identity"), ("workload", "workload_identity"), ("auto", "auto"))
        if getattr(args, flag, False)
    ]
    if selectors and not chosen:
        chosen = ["managed"]
    if len(chosen) > 1:
        raise UsageError("choose one of --managed-identity, --workload-identity and --auto")
    if len(selectors) > 1:
        raise UsageError(f"name a user-assigned identity once: {' or '.join(selectors)}, not both")
    if selectors and chosen != ["managed"]:
        raise UsageError(f"{selectors[0]} goes with --managed-identity")
    if getattr(args, "explain", False) and chosen != ["auto"]:
        raise UsageError("--explain goes with --auto")
    if chosen and (args.account or getattr(args, "client_secret_stdin", False) or getattr(args, "certificate", None)):
        raise UsageError("--account, --client-secret-stdin and --certificate do not go with a credential of the place")
    return chosen[0] if chosen else None


_SELECTORS = (
    ("--mi-client-id", "mi_client_id"),
    ("--mi-object-id", "mi_object_id"),
    ("--mi-resource-id", "mi_resource_id"),
)


def make_credential(args: argparse.Namespace, kind: str) -> Any:
    """The credential ``kind`` names, caching in the command's cache, with --scope and --timeout."""
    options: dict[str, Any] = {"scopes": args.scope, "timeout": args.timeout or 30.0, "cache": open_cache(args)}
    if kind == "managed":
        from ..drivers.identity import ManagedIdentity

        return ManagedIdentity(
            client_id=args.mi_client_id, object_id=args.mi_object_id, resource_id=args.mi_resource_id, **options
        )
    if kind == "workload":
        from ..drivers.federated import WorkloadIdentity

        return WorkloadIdentity(
            client_id=args.client_id, tenant_id=args.tenant, authority_host=authority_host(args), **options
        )
    from ..drivers.chain import DefaultCredential

    environ = dict(os.environ)
    for dest, name in (("client_id", "AZURE_CLIENT_ID"), ("tenant", "AZURE_TENANT_ID")):
        if getattr(args, dest, None):
            environ[name] = getattr(args, dest)
    if read_env("AZURE_AUTHORITY_HOST") is None and args.authority_host:
        environ["AZURE_AUTHORITY_HOST"] = args.authority_host
    return DefaultCredential(environ=environ, **options)


def print_explanation(links: list[LinkReport], err: TextIO) -> None:
    """One line per link of the chain: whether it applies, and why."""
    for link in links:
        mark = "yes" if link.applies else "no "
        err.write(f"oauth-core: {mark} {link.name}: {safe(link.why)}\n")
