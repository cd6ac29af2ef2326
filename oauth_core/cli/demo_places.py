"""The demo's chapters for places with no user and no secret: managed identity, workload identity,
on-behalf-of and the default chain, each against the embedded emulator."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Callable

from ..core.claims import unverified_claims
from ..core.errors import FederatedCredentialRejected
from ..core.managed import CredentialUnavailable
from ..drivers.chain import DefaultCredential
from ..drivers.federated import WorkloadIdentity
from ..drivers.identity import ManagedIdentity
from ..drivers.stores import MemoryTokenCache
from ..drivers.sync import EntraClient

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = ["run_place_chapters"]


def _managed_identity(emulator: Emulator, say: Callable[[str], None]) -> bool:
    say("\n6. Managed identity, App Service shape (IDENTITY_ENDPOINT + IDENTITY_HEADER)")
    with ManagedIdentity(environ=emulator.identity_environment("appservice")) as identity:
        tokens = identity.get_token()
        sent = len(emulator.requests)
        again = identity.get_token()
        claims = tokens.claims or {}
        say(f"   aud={claims.get('aud')} appid={claims.get('appid')} idtyp={claims.get('idtyp')}")
        cached = len(emulator.requests) == sent and again.access_token == tokens.access_token
        say(f"   a second call is served from the cache: {cached}")
    say("\n7. Managed identity on a VM (IMDS), user-assigned by client id")
    user = emulator.config.user_identities[0]
    with ManagedIdentity(environ=emulator.identity_environment("imds"), client_id=user.client_id) as identity:
        appid = (identity.get_token().claims or {}).get("appid")
        say(f"   the token is the user-assigned identity's own: {appid == user.client_id}")
    return cached and appid == user.client_id


def _workload_identity(emulator: Emulator, say: Callable[[str], None]) -> bool:
    say("\n8. Workload identity: a Kubernetes service account token traded for an app-only token")
    env = emulator.identity_environment("workload")
    with WorkloadIdentity(environ=env) as workload:
        claims = workload.get_token().claims or {}
    say(f"   token file {env['AZURE_FEDERATED_TOKEN_FILE']}: appid={claims.get('appid')} idtyp={claims.get('idtyp')}")
    intruder = emulator.mint_federated_token(subject="system:serviceaccount:default:intruder")
    client = EntraClient(
        env["AZURE_CLIENT_ID"], env["AZURE_TENANT_ID"], authority_host=emulator.url, client_assertion=intruder
    )
    with client:
        try:
            client.acquire_for_client()
            say("   UNEXPECTED: an untrusted subject got a token")
            return False
        except FederatedCredentialRejected as exc:
            say(f"   another service account is refused: AADSTS{exc.error_codes[0] if exc.error_codes else '?'}")
    return claims.get("appid") == env["AZURE_CLIENT_ID"]


def _on_behalf_of(emulator: Emulator, say: Callable[[str], None]) -> bool:
    say("\n9. On-behalf-of: the demo API calls Azure Databricks as the user who called it")
    config = emulator.config
    user = config.users[0]
    public = config.clients[0].client_id
    api = next(c for c in config.clients if "middle tier" in c.display_name)
    with EntraClient(public, emulator.tenant_id, authority_host=emulator.url) as app:
        caller = app.acquire_by_password(
            user.username, user.password, scopes=["api://oauth-core-demo-api/access_as_user"]
        )
    with EntraClient(api.client_id, emulator.tenant_id, authority_host=emulator.url, client_secret=api.secret) as tier:
        tokens = tier.acquire_on_behalf_of(caller.access_token)
    claims = tokens.claims or {}
    caller_claims = unverified_claims(caller.access_token)
    say(f"   aud={claims.get('aud')} upn={claims.get('upn')} appid={claims.get('appid') or claims.get('azp')}")
    return claims.get("oid") == caller_claims.get("oid")


def _default_chain(emulator: Emulator, say: Callable[[str], None]) -> bool:
    say("\n10. One default chain: nothing here, then workload identity")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # a port nobody listens on: "no IMDS on this host"
    nothing = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{port}"}
    started = time.monotonic()
    chain = DefaultCredential(environ=nothing, cache=MemoryTokenCache())
    try:
        chain.get_token()
        say("   UNEXPECTED: a credential was found")
        return False
    except CredentialUnavailable as exc:
        say(f"   unavailable in {time.monotonic() - started:.2f}s, and why:")
        for link in exc.links:
            say(f"     {link.name}: {link.why}")
    with DefaultCredential(environ=emulator.identity_environment("workload"), cache=MemoryTokenCache()) as chain:
        chain.get_token()
        say(f"   with the workload identity variables set, it chose: {chain.chosen}")
        return chain.chosen == "workload_identity"


def run_place_chapters(emulator: Emulator, say: Callable[[str], None]) -> bool:
    """Chapters 6 to 10; True when each behaved as told."""
    return all(
        chapter(emulator, say) for chapter in (_managed_identity, _workload_identity, _on_behalf_of, _default_chain)
    )
