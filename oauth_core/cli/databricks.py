"""``databricks``: an Azure Databricks REST call with the cached token."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, Optional, TextIO

from ..core.errors import InsecureAuthorityError, TokensNotSaved
from .credentials import client_credential
from .exit_codes import EXIT_REFUSED, EXIT_SERVICE
from .identities import add_identity_options, identity_kind, make_credential
from .output import safe
from .settings import make_client, open_cache, read_env, tenant
from .usage import AddCommand, UsageError

if TYPE_CHECKING:
    pass

__all__ = ["MAX_DATA_BYTES", "add_databricks_command", "cmd_databricks"]

MAX_DATA_BYTES = 16 * 1024 * 1024


def add_databricks_command(command: AddCommand) -> None:
    """databricks: a REST call to a workspace with the cached token."""
    command(
        "databricks",
        "Call an Azure Databricks REST API path with the cached token and print the JSON answer "
        "(the tenant is found from the workspace unless --tenant is given).",
        _databricks_options,
    )


def _databricks_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--host", help="workspace host or URL, e.g. adb-123.4.azuredatabricks.net (env DATABRICKS_HOST)")
    sub.add_argument(
        "--allow-workspace-host",
        action="append",
        metavar="HOST",
        help="send the token to this workspace host too (repeatable); by default only *.azuredatabricks.net, "
        "*.databricks.azure.us, *.databricks.azure.cn and loopback hosts get it",
    )
    sub.add_argument(
        "--resource-id",
        metavar="ID",
        help="the workspace's ARM resource id, sent as X-Databricks-Azure-Workspace-Resource-Id "
        "(env DATABRICKS_AZURE_RESOURCE_ID)",
    )
    sub.add_argument(
        "--sp-management-token",
        action="store_true",
        help="as a service principal (client credentials): also send X-Databricks-Azure-SP-Management-Token",
    )
    sub.add_argument("--data", metavar="JSON|@FILE", help="JSON request body, or @file to read it from")
    sub.add_argument("--client-secret-stdin", action="store_true", help="service principal: read the secret from stdin")
    sub.add_argument("--certificate", metavar="PEMFILE", help="service principal: PEM key and certificate")
    sub.add_argument("--client-secret", dest="client_secret_argv", help=argparse.SUPPRESS)
    add_identity_options(sub)
    sub.add_argument("method", metavar="METHOD", help="GET, POST, PUT, PATCH, DELETE or HEAD")
    sub.add_argument("path", metavar="PATH", help="REST path starting with /api/, e.g. /api/2.0/clusters/list")


def _data_file(name: str) -> str:
    """The text of a --data @FILE: at most MAX_DATA_BYTES of UTF-8."""
    if not name:
        raise UsageError("--data @FILE needs a file name after the @")
    try:
        with open(name, "rb") as handle:
            raw = handle.read(MAX_DATA_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read the --data file: {reason}") from None
    if len(raw) > MAX_DATA_BYTES:
        raise UsageError(f"the --data file is larger than {MAX_DATA_BYTES // (1024 * 1024)} MiB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError("the --data file is not UTF-8 text: it must hold a JSON request body") from None


def _json_data(text: Optional[str]) -> Any:
    """The --data value: JSON text, or @file holding it."""
    if text is None:
        return None
    if text.startswith("@"):
        text = _data_file(text[1:])
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise UsageError("--data is not valid JSON") from None


def _management_token(client: Any, err: TextIO) -> str:
    """A service principal's (or the place's credential's) Azure Resource Manager token, for the
    authority's cloud, used even when the cache cannot keep it."""
    from ..integrations.databricks import management_scope

    authority = getattr(client, "authority", None)  # a managed identity has none: the public cloud's
    scope = management_scope(getattr(authority, "host", None))
    try:
        if not hasattr(client, "acquire_for_client"):  # a managed identity or the default chain
            return str(client.get_token(scopes=scope).access_token)
        return str(client.acquire_for_client(scopes=scope).access_token)
    except TokensNotSaved as exc:
        err.write(f"warning: {safe(exc)}\n")
        return str(exc.tokens.access_token)


def _print_payload(payload: Any, as_json: bool, out: TextIO) -> None:
    if isinstance(payload, str):  # not JSON: the workspace's text, made safe for a terminal
        text = safe(payload, multiline=True)
        out.write(text if text.endswith("\n") else text + "\n")
    elif payload is not None:
        out.write(json.dumps(payload, indent=None if as_json else 2) + "\n")


def _is_service_principal(args: argparse.Namespace, app_account: str) -> bool:
    """A credential given (or refused: a secret on argv) means a service principal, as does --account app."""
    return bool(
        args.sp_management_token
        or args.account == app_account
        or args.client_secret_stdin
        or args.certificate
        or args.client_secret_argv is not None
    )


def _report_refusal(status: int, payload: Any, as_json: bool, err: TextIO) -> int:
    """4xx (and redirects): the workspace refused, exit 1; 5xx: it failed, exit 3."""
    from ..integrations.databricks import describe_error

    message = describe_error(status, payload)
    if as_json:
        err.write(json.dumps({"error": "databricks_error", "error_description": message, "status": status}) + "\n")
    else:
        err.write(f"oauth-core: error: {message}\n")
    return EXIT_SERVICE if status >= 500 else EXIT_REFUSED


def cmd_databricks(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Call a workspace REST path with the cached token (the tenant found from the workspace if not given)."""
    from ..integrations.databricks import call, require_workspace_host, workspace_tenant
    from ..integrations.httpx_auth import APP_ACCOUNT

    given = args.host or read_env("DATABRICKS_HOST")
    if not given:
        raise UsageError("a workspace is required: --host or DATABRICKS_HOST")
    allowed = args.allow_workspace_host or []
    try:
        host = require_workspace_host(given, allowed)  # before anything is sent, even the tenant lookup
    except InsecureAuthorityError as exc:
        message = str(exc).split(": trust it explicitly", 1)[0]
        hostname = message.split(" ", 1)[0]
        raise InsecureAuthorityError(f"{message}: trust it explicitly with --allow-workspace-host {hostname}") from None
    body = _json_data(args.data)
    kind = identity_kind(args)
    service_principal = kind is None and _is_service_principal(args, APP_ACCOUNT)
    secret, certificate = client_credential(args) if service_principal else (None, None)
    open_cache(args).check_usable()
    if kind is not None:  # a credential of the place: no tenant to look up, no account to choose
        client: Any = make_credential(args, kind)
        account = None
    else:
        tenant_id = tenant(args) or workspace_tenant(host, timeout=args.timeout or 10.0)
        client = make_client(args, tenant_id=tenant_id, client_secret=secret, client_certificate=certificate)
        account = APP_ACCOUNT if service_principal else args.account
    with client:
        management = _management_token(client, err) if args.sp_management_token else None
        status, payload = call(
            client,
            host,
            args.method,
            args.path,
            json_body=body,
            resource_id=args.resource_id or read_env("DATABRICKS_AZURE_RESOURCE_ID"),
            management_token=management,
            scopes=client.scopes,
            account=account,
            timeout=args.timeout or 30.0,
            allowed_hosts=allowed,
        )
    if status >= 300:
        return _report_refusal(status, payload, args.json, err)
    _print_payload(payload, args.json, out)
    return 0
