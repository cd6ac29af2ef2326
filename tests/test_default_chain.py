"""DefaultCredential: which link it picks, how fast it gives up, and what it explains.

Every environment is an explicit dict, and each one points IMDS (``AZURE_POD_IDENTITY_AUTHORITY_HOST``)
at a loopback address, so no probe can leave the machine.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import jwt
import pytest

from oauth_core.drivers.chain import CredentialUnavailable, DefaultCredential
from oauth_core.drivers.stores import FileTokenCache, MemoryTokenCache
from oauth_core.drivers.sync import EntraClient
from oauth_core.emulator import Emulator, EmulatorConfig

GRAPH = "https://graph.microsoft.com"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
CONFIDENTIAL = "c0f1d3e0-5a7b-4c2d-8e9f-0a1b2c3d4e5f"
CONFIDENTIAL_SECRET = "emulator-client-secret"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
LINKS = ["environment", "workload_identity", "managed_identity", "shared_cache", "managed_identity (IMDS)"]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class SilentListener:
    """Accepts connections, counts them, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: List[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    listener = SilentListener()
    try:
        yield listener
    finally:
        listener.close()


def claims_of(token: str) -> Dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def probes(emu: Emulator) -> int:
    """IMDS requests without the Metadata header: the chain's probes."""
    return sum(1 for r in emu.requests if r.endpoint == "imds" and "metadata" not in r.header_names)


def service_principal(emu: Emulator) -> Dict[str, str]:
    return {
        "AZURE_CLIENT_ID": CONFIDENTIAL,
        "AZURE_TENANT_ID": emu.tenant_id,
        "AZURE_CLIENT_SECRET": CONFIDENTIAL_SECRET,
        "AZURE_AUTHORITY_HOST": emu.url,
    }


def test_environment_service_principal_first(emu: Emulator) -> None:
    env = {
        **emu.identity_environment("workload"),
        **emu.identity_environment("appservice"),
        **emu.identity_environment("imds"),
        **service_principal(emu),
    }
    before = probes(emu)
    with DefaultCredential(environ=env, cache=MemoryTokenCache()) as credential:
        tokens = credential.get_token(scopes=f"{GRAPH}/.default")
        assert credential.chosen == "environment"
        claims = claims_of(tokens.access_token)
        assert claims["appid"] == CONFIDENTIAL and claims["idtyp"] == "app"
        (report,) = credential.explain()
        assert report.name == "environment" and report.applies and CONFIDENTIAL in report.why
        assert CONFIDENTIAL_SECRET not in report.why and CONFIDENTIAL_SECRET not in repr(credential)
    assert probes(emu) == before


def test_workload_identity_next(emu: Emulator) -> None:
    workload = emu.identity_environment("workload")
    env = {**workload, **emu.identity_environment("appservice"), **emu.identity_environment("imds")}
    with DefaultCredential(environ=env, cache=MemoryTokenCache()) as credential:
        tokens = credential.get_token(scopes=f"{GRAPH}/.default")
        assert credential.chosen == "workload_identity"
        assert claims_of(tokens.access_token)["appid"] == workload["AZURE_CLIENT_ID"]
        reports = credential.explain()
    assert [r.name for r in reports] == LINKS[:2] and [r.applies for r in reports] == [False, True]
    assert "AZURE_CLIENT_SECRET" in reports[0].why


def test_app_service_managed_identity_from_env(emu: Emulator) -> None:
    env = {**emu.identity_environment("appservice"), **emu.identity_environment("imds")}
    before_probes, before_app = probes(emu), emu.count("appservice")
    with DefaultCredential(environ=env, cache=MemoryTokenCache()) as credential:
        tokens = credential.get_token(scopes=f"{GRAPH}/.default")
        assert credential.chosen == "managed_identity"
        system = emu.config.system_identity
        assert system is not None and claims_of(tokens.access_token)["appid"] == system.client_id
        reports = credential.explain()
    assert [r.name for r in reports] == LINKS[:3] and reports[2].applies and "app service" in reports[2].why
    assert "AZURE_FEDERATED_TOKEN_FILE" in reports[1].why
    assert env["IDENTITY_HEADER"] not in " ".join(r.why for r in reports)
    assert probes(emu) == before_probes and emu.count("appservice") == before_app + 1


def test_shared_cache_account(emu: Emulator, tmp_path: Path, closed_port: int) -> None:
    cache = FileTokenCache(tmp_path / "tokens.json")
    with EntraClient(PUBLIC, emu.tenant_id, authority_host=emu.url, cache=cache) as public:
        signed_in = public.acquire_by_password(*ALICE, scopes=f"{GRAPH}/User.Read")
    env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{closed_port}"}
    before = emu.count("token")
    with DefaultCredential(environ=env, cache=FileTokenCache(tmp_path / "tokens.json")) as credential:
        tokens = credential.get_token(scopes=f"{GRAPH}/User.Read")
        assert credential.chosen == "shared_cache"
        reports = credential.explain()
    assert tokens.access_token == signed_in.access_token and emu.count("token") == before  # served from the cache
    assert claims_of(tokens.access_token)["upn"] == ALICE[0]
    assert [r.name for r in reports] == LINKS[:4] and ALICE[0] in reports[3].why


def test_shared_cache_asks_for_username_when_several(emu: Emulator, tmp_path: Path, closed_port: int) -> None:
    cache = FileTokenCache(tmp_path / "tokens.json")
    with EntraClient(PUBLIC, emu.tenant_id, authority_host=emu.url, cache=cache) as public:
        public.acquire_by_password(*ALICE, scopes=f"{GRAPH}/User.Read")
    with EntraClient(
        CONFIDENTIAL, emu.tenant_id, authority_host=emu.url, client_secret=CONFIDENTIAL_SECRET, cache=cache
    ) as other:
        other.acquire_by_password(*ALICE, scopes=f"{GRAPH}/User.Read")  # a second account entry (another client)
    env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{closed_port}"}
    credential = DefaultCredential(environ=env, cache=cache, probe_timeout=0.3)
    reports = credential.explain()
    assert not reports[3].applies and "2 accounts" in reports[3].why and "AZURE_USERNAME" in reports[3].why
    assert credential.chosen is None
    named = DefaultCredential(environ={**env, "AZURE_USERNAME": "bob@contoso.onmicrosoft.com"}, cache=cache)
    assert "as bob@contoso.onmicrosoft.com" in named.explain()[3].why


def test_imds_by_probe_and_remembered(emu: Emulator) -> None:
    env = emu.identity_environment("imds")
    before_probes, before_imds = probes(emu), emu.count("imds")
    with DefaultCredential(environ=env, cache=MemoryTokenCache()) as credential:
        first = credential.get_token(scopes=f"{GRAPH}/.default")
        assert credential.chosen == "managed_identity" and probes(emu) == before_probes + 1
        second = credential.get_token(scopes=f"{GRAPH}/.default")
        credential.get_token(scopes="https://management.azure.com/.default")
        reports = credential.explain()
    assert probes(emu) == before_probes + 1  # decided once, never probed again
    assert emu.count("imds") == before_imds + 3  # one probe, two token requests (the second call was cached)
    assert second.access_token == first.access_token
    system = emu.config.system_identity
    assert system is not None and claims_of(first.access_token)["appid"] == system.client_id
    assert [r.name for r in reports] == LINKS and reports[-1].applies and "probe answered HTTP 400" in reports[-1].why


@pytest.mark.parametrize("where", ["closed", "silent"])
def test_nothing_available_fails_fast(closed_port: int, silent: SilentListener, where: str) -> None:
    port = closed_port if where == "closed" else silent.port
    env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{port}"}
    credential = DefaultCredential(environ=env, cache=MemoryTokenCache())
    started = time.monotonic()
    with pytest.raises(CredentialUnavailable) as raised:
        credential.get_token(scopes=f"{GRAPH}/.default")
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # the goal is well under 1 s
    links = raised.value.links
    assert [link.name for link in links] == LINKS and not any(link.applies for link in links)
    assert all(link.why.strip() and "\n" not in link.why for link in links)
    assert f"127.0.0.1:{port}" in links[-1].why and "no IMDS" in links[-1].why
    for name in LINKS:
        assert f"{name}: " in str(raised.value)
    if where == "silent":
        assert silent.accepted == 1
    reports = credential.explain()  # decides again: nothing was chosen
    assert [r.name for r in reports] == LINKS and all(r.why for r in reports) and credential.chosen is None


def test_unusable_variables_are_explained(tmp_path: Path, closed_port: int) -> None:
    env = {
        "AZURE_CLIENT_SECRET": "s3cret-value",  # no client id or tenant
        "IDENTITY_ENDPOINT": "not a url",
        "IDENTITY_HEADER": "h",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{closed_port}",
    }
    credential = DefaultCredential(environ=env, cache=MemoryTokenCache(), probe_timeout=0.3)
    reports = credential.explain()
    assert [r.applies for r in reports] == [False] * 5
    assert "AZURE_CLIENT_ID" in reports[0].why and "IDENTITY_ENDPOINT" in reports[2].why
    assert all("s3cret-value" not in r.why for r in reports)
