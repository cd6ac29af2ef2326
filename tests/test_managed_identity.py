"""ManagedIdentity and AsyncManagedIdentity against the emulator's token sources, over loopback HTTP.

Every client gets an explicit ``environ=`` and a retry policy on a fake clock: nothing reaches
169.254.169.254 and no retry really sleeps.
"""

from __future__ import annotations

import asyncio
import http.server
import logging
import os
import stat
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Optional, Tuple

import jwt
import pytest

import oauth_core.drivers.sync
from oauth_core.core.errors import ConfigError, TransientError
from oauth_core.core.identity import IdentitySource
from oauth_core.core.identity_errors import IdentityNotFound, ManagedIdentityError, NoIdentityAssigned
from oauth_core.drivers.identity import AsyncManagedIdentity, ManagedIdentity, imds_retry_policy
from oauth_core.drivers.retry import RetryPolicy
from oauth_core.drivers.stores import FileTokenCache
from oauth_core.emulator import Emulator, EmulatorConfig, Fault
from oauth_core.emulator.wire import RequestRecord

GRAPH = "https://graph.microsoft.com"
ARM = "https://management.azure.com"
ALICE = "alice@contoso.onmicrosoft.com"


class FakeTime:
    """A fake sleep (recorded, never waits) and the monotonic clock it moves."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.waits: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def retry(fake: FakeTime) -> RetryPolicy:
    return replace(imds_retry_policy(), sleep=fake.sleep, async_sleep=fake.async_sleep, clock=fake.monotonic)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as running:
        yield running


def claims_of(token: str) -> Dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def new_requests(emu: Emulator, before: int) -> List[RequestRecord]:
    return emu.requests[before:]


# What each source is: the emulator's name for it, whether it takes the user-assigned identity in
# these tests, and a check of the requests the endpoint saw.


def check_app_service(records: List[RequestRecord], emu: Emulator) -> None:
    (record,) = records
    assert record.method == "GET" and record.endpoint == "appservice" and record.status == 200
    assert record.param("api-version") == "2019-08-01" and record.param("resource") == GRAPH
    assert "x-identity-header" in record.header_names


def check_imds(records: List[RequestRecord], emu: Emulator) -> None:
    (record,) = records
    assert record.method == "GET" and record.endpoint == "imds" and record.status == 200
    assert record.param("api-version") == "2018-02-01" and record.param("resource") == GRAPH
    assert record.param("client_id") == emu.config.user_identities[0].client_id
    assert "metadata" in record.header_names


def check_arc(records: List[RequestRecord], emu: Emulator) -> None:
    challenge, answered = records
    assert [r.endpoint for r in records] == ["arc", "arc"] and [r.status for r in records] == [401, 200]
    assert "authorization" not in challenge.header_names and "authorization" in answered.header_names
    for record in records:
        assert record.param("api-version") == "2020-06-01" and record.param("resource") == GRAPH
        assert record.param("client_id") == emu.config.user_identities[0].client_id
        assert "metadata" in record.header_names


def check_cloud_shell(records: List[RequestRecord], emu: Emulator) -> None:
    (record,) = records
    assert record.method == "POST" and record.endpoint == "cloudshell" and record.status == 200
    assert "metadata" in record.header_names and record.param("api-version") is None


def check_azure_ml(records: List[RequestRecord], emu: Emulator) -> None:
    (record,) = records
    assert record.method == "GET" and record.endpoint == "azureml" and record.status == 200
    assert record.param("api-version") == "2017-09-01" and record.param("resource") == GRAPH
    assert record.param("clientid") == emu.config.user_identities[0].client_id
    assert record.param("client_id") is None and "secret" in record.header_names


SOURCES: Dict[str, Tuple[str, bool, Callable[[List[RequestRecord], Emulator], None]]] = {
    "appservice": ("app_service", False, check_app_service),
    "imds": ("imds", True, check_imds),
    "arc": ("azure_arc", True, check_arc),
    "cloudshell": ("cloud_shell", False, check_cloud_shell),
    "azureml": ("azure_ml", True, check_azure_ml),
}


def client_for(emu: Emulator, name: str, retry: RetryPolicy, cls: Any = ManagedIdentity, **kwargs: Any) -> Any:
    kind, user_assigned, _ = SOURCES[name]
    if user_assigned and "client_id" not in kwargs:
        kwargs["client_id"] = emu.config.user_identities[0].client_id
    client = cls(environ=emu.identity_environment(name), arc_key_folder=emu.arc_key_folder, retry=retry, **kwargs)
    assert client.source.kind == kind
    return client


def check_token_claims(emu: Emulator, name: str, access_token: str, audience: str) -> None:
    claims = claims_of(access_token)
    assert claims["aud"] == audience
    if name == "cloudshell":
        assert claims["upn"] == ALICE  # Cloud Shell hands out the signed-in user's tokens
    elif SOURCES[name][1]:
        assert claims["appid"] == emu.config.user_identities[0].client_id
    else:
        system = emu.config.system_identity
        assert system is not None and claims["appid"] == system.client_id


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sync_token_request_and_cache_hit(emu: Emulator, retry: RetryPolicy, name: str) -> None:
    with client_for(emu, name, retry, scopes=f"{GRAPH}/.default") as client:
        before = len(emu.requests)
        tokens = client.get_token()
        SOURCES[name][2](new_requests(emu, before), emu)
        assert tokens.scopes == (f"{GRAPH}/.default",)
        check_token_claims(emu, name, tokens.access_token, GRAPH)
        after = len(emu.requests)
        again = client.get_token()
        assert len(emu.requests) == after  # served from the cache
        assert again.access_token == tokens.access_token


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_async_token_request_and_cache_hit(emu: Emulator, retry: RetryPolicy, name: str) -> None:
    async def main() -> Tuple[Any, Any, int, int, int]:
        async with client_for(emu, name, retry, cls=AsyncManagedIdentity, scopes=f"{GRAPH}/.default") as client:
            start = len(emu.requests)
            first = await client.get_token()
            middle = len(emu.requests)
            second = await client.get_token()
            return first, second, start, middle, len(emu.requests)

    first, second, start, middle, end = asyncio.run(main())
    SOURCES[name][2](emu.requests[start:middle], emu)
    check_token_claims(emu, name, first.access_token, GRAPH)
    assert end == middle and second.access_token == first.access_token


@pytest.mark.parametrize("name", ["appservice", "imds", "azureml", "arc"])
def test_scope_becomes_resource(emu: Emulator, retry: RetryPolicy, name: str) -> None:
    with client_for(emu, name, retry) as client:
        before = len(emu.requests)
        tokens = client.get_token(scopes=f"{ARM}/.default")
        assert {r.param("resource") for r in new_requests(emu, before)} == {ARM}
        assert tokens.scopes == (f"{ARM}/.default",) and claims_of(tokens.access_token)["aud"] == ARM


def test_cloud_shell_scope_becomes_resource(emu: Emulator, retry: RetryPolicy) -> None:
    with client_for(emu, "cloudshell", retry) as client:
        tokens = client.get_token(scopes=[f"{ARM}/.default"])
        assert claims_of(tokens.access_token)["aud"] == ARM and tokens.scopes == (f"{ARM}/.default",)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_several_scopes_refused_before_sending(emu: Emulator, retry: RetryPolicy, name: str) -> None:
    with client_for(emu, name, retry) as client:
        before = len(emu.requests)
        with pytest.raises(ConfigError, match="exactly one resource"):
            client.get_token(scopes=[f"{GRAPH}/.default", f"{ARM}/.default"])
        assert len(emu.requests) == before


def test_async_several_scopes_refused_before_sending(emu: Emulator, retry: RetryPolicy) -> None:
    async def main() -> None:
        async with client_for(emu, "imds", retry, cls=AsyncManagedIdentity) as client:
            await client.get_token(scopes=f"{GRAPH}/.default {ARM}/.default")

    before = len(emu.requests)
    with pytest.raises(ConfigError):
        asyncio.run(main())
    assert len(emu.requests) == before


def test_imds_throttling_retried_through(emu: Emulator, retry: RetryPolicy, fake: FakeTime) -> None:
    emu.inject("imds", Fault("status", status=429, retry_after=1), times=2)
    with client_for(emu, "imds", retry) as client:
        before = len(emu.requests)
        tokens = client.get_token(scopes=f"{GRAPH}/.default")
    assert [r.status for r in new_requests(emu, before)] == [429, 429, 200]
    assert fake.waits == [1.0, 1.0]
    assert claims_of(tokens.access_token)["aud"] == GRAPH


def test_imds_410_retried(emu: Emulator, retry: RetryPolicy, fake: FakeTime) -> None:
    emu.inject("imds", Fault("status", status=410))
    with client_for(emu, "imds", retry) as client:
        before = len(emu.requests)
        client.get_token(scopes=f"{ARM}/.default")
    assert [r.status for r in new_requests(emu, before)] == [410, 200]
    assert len(fake.waits) == 1 and fake.waits[0] >= 1.0


def test_async_imds_throttling_retried_through(emu: Emulator, retry: RetryPolicy, fake: FakeTime) -> None:
    emu.inject("imds", Fault("status", status=429, retry_after=1), times=2)

    async def main() -> Any:
        async with client_for(emu, "imds", retry, cls=AsyncManagedIdentity) as client:
            return await client.get_token(scopes=f"{GRAPH}/.default")

    before = len(emu.requests)
    asyncio.run(main())
    assert [r.status for r in new_requests(emu, before)] == [429, 429, 200]
    assert fake.waits == [1.0, 1.0]


def test_retries_stop_at_max_attempts(emu: Emulator, fake: FakeTime) -> None:
    policy = replace(imds_retry_policy(), max_attempts=3, sleep=fake.sleep, clock=fake.monotonic)
    emu.inject("imds", Fault("status", status=503), times=3)
    with client_for(emu, "imds", policy) as client:
        before = len(emu.requests)
        with pytest.raises(TransientError):
            client.get_token(scopes=f"{GRAPH}/.default")
    emu.clear_faults()
    assert [r.status for r in new_requests(emu, before)] == [503, 503, 503]
    assert fake.waits == [1.0, 2.0]


@pytest.mark.parametrize("name", ["imds", "appservice", "arc"])
def test_unknown_user_assigned_identity(emu: Emulator, retry: RetryPolicy, name: str) -> None:
    unknown = str(uuid.uuid4())
    with client_for(emu, name, retry, client_id=unknown) as client:
        with pytest.raises(IdentityNotFound) as raised:
            client.get_token(scopes=f"{GRAPH}/.default")
    assert raised.value.status == 400


def test_no_identity_assigned(retry: RetryPolicy) -> None:
    config = replace(EmulatorConfig.default(), system_identity=None, user_identities=())
    with Emulator(config, port=0, tls=False) as bare:
        with ManagedIdentity(environ=bare.identity_environment("imds"), retry=retry) as client:
            with pytest.raises(NoIdentityAssigned) as raised:
                client.get_token(scopes=f"{GRAPH}/.default")
        assert raised.value.status == 400
        assert [r.status for r in bare.requests if r.endpoint == "imds"] == [400]  # not retried


def test_identity_header_never_shown(emu: Emulator, retry: RetryPolicy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env = emu.identity_environment("appservice")
    secret = env["IDENTITY_HEADER"]
    wrong = dict(env, IDENTITY_HEADER="wrong-header-value-0123456789")
    shown: List[str] = []
    with ManagedIdentity(environ=env, retry=retry) as client:
        shown += [repr(client), str(client), repr(client.source), str(client.source)]
        client.get_token(scopes=f"{GRAPH}/.default")
        with ManagedIdentity(environ=env, client_id=str(uuid.uuid4()), retry=retry) as unknown:
            with pytest.raises(IdentityNotFound) as not_found:
                unknown.get_token(scopes=f"{GRAPH}/.default")
        shown += [str(not_found.value), repr(not_found.value), repr(not_found.value.to_dict())]
    with ManagedIdentity(environ=wrong, retry=retry) as refused:
        with pytest.raises(ManagedIdentityError) as bad_header:
            refused.get_token(scopes=f"{GRAPH}/.default")
        shown += [repr(refused), repr(refused.source), str(bad_header.value), repr(bad_header.value.to_dict())]
    assert bad_header.value.status == 401
    assert "<redacted>" in repr(client.source)
    logged = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    assert caplog.records  # DEBUG logging was on and something was logged
    for text in (*shown, logged):
        assert secret not in text and "wrong-header-value-0123456789" not in text


def test_file_cache_private_and_shared(emu: Emulator, retry: RetryPolicy, tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.json"
    env = emu.identity_environment("appservice")
    with ManagedIdentity(environ=env, retry=retry, cache=FileTokenCache(path)) as first:
        tokens = first.get_token(scopes=f"{GRAPH}/.default")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert env["IDENTITY_HEADER"] not in path.read_text()
    before = len(emu.requests)
    with ManagedIdentity(environ=env, retry=retry, cache=FileTokenCache(path)) as second:
        again = second.get_token(scopes=f"{GRAPH}/.default")
    assert len(emu.requests) == before and again.access_token == tokens.access_token
    # another identity at the same source is not served that token
    uami = emu.config.user_identities[0]
    with ManagedIdentity(environ=env, client_id=uami.client_id, retry=retry, cache=FileTokenCache(path)) as other:
        theirs = other.get_token(scopes=f"{GRAPH}/.default")
    assert len(emu.requests) == before + 1 and claims_of(theirs.access_token)["appid"] == uami.client_id


def test_single_flight_across_threads(emu: Emulator, retry: RetryPolicy) -> None:
    emu.inject("imds", Fault("delay", seconds=0.3))  # the first request is slow: the others pile up behind it
    results: List[str] = []
    errors: List[BaseException] = []
    barrier = threading.Barrier(8)
    with client_for(emu, "imds", retry) as client:

        def worker() -> None:
            try:
                barrier.wait()
                results.append(client.get_token(scopes=f"{GRAPH}/.default").access_token)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        before = len(emu.requests)
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors and len(results) == 8 and len(set(results)) == 1
    assert [r.endpoint for r in new_requests(emu, before)] == ["imds"]


def test_several_ids_refused() -> None:
    with pytest.raises(ConfigError, match="not several"):
        ManagedIdentity(client_id=str(uuid.uuid4()), object_id=str(uuid.uuid4()), environ={})


def test_source_cannot_serve_identity_kind(emu: Emulator, retry: RetryPolicy) -> None:
    with ManagedIdentity(environ=emu.identity_environment("azureml"), object_id=str(uuid.uuid4()), retry=retry) as mi:
        before = len(emu.requests)
        with pytest.raises(ConfigError, match="does not accept a object_id"):
            mi.get_token(scopes=f"{GRAPH}/.default")
        assert len(emu.requests) == before


# Azure Arc's key folder


class ChallengeHandler(http.server.BaseHTTPRequestHandler):
    realm = "/etc/passwd"
    seen: ClassVar[List[Optional[str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = b'{"error":"unauthorized"}'
        self.send_response(401)
        self.send_header("WWW-Authenticate", f"Basic realm={self.realm}")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def challenger() -> Iterator[Tuple[str, type]]:
    handler = type("Handler", (ChallengeHandler,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("realm", ["/etc/passwd", "{folder}/../../etc/passwd.key", "/etc/{name}.key", "{folder}/x"])
def test_arc_realm_outside_folder_refused(
    challenger: Tuple[str, Any], tmp_path: Path, retry: RetryPolicy, monkeypatch: pytest.MonkeyPatch, realm: str
) -> None:
    url, handler = challenger
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    handler.realm = realm.format(folder=folder, name="k")
    reads: List[str] = []
    real = oauth_core.drivers.sync.read_arc_key
    monkeypatch.setattr(oauth_core.drivers.sync, "read_arc_key", lambda p, n: reads.append(p) or real(p, n))
    env = {"IDENTITY_ENDPOINT": f"{url}/metadata/identity/oauth2/token", "IMDS_ENDPOINT": url}
    with ManagedIdentity(environ=env, arc_key_folder=str(folder), retry=retry) as client:
        assert client.source.kind == "azure_arc"
        with pytest.raises(ManagedIdentityError, match="outside the allowed folder"):
            client.get_token(scopes=f"{ARM}/.default")
    assert reads == [] and handler.seen == [None]  # one challenge, no file read, no second request


def test_arc_key_inside_folder_is_read(
    challenger: Tuple[str, Any], tmp_path: Path, retry: RetryPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same server, naming a key file in the allowed folder: it is read and sent (and refused again)."""
    url, handler = challenger
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    key = folder / "abc.key"
    key.write_text("s3cr3t-key")
    handler.realm = str(key)
    source = IdentitySource("azure_arc", f"{url}/metadata/identity/oauth2/token")
    with ManagedIdentity(source=source, environ={}, arc_key_folder=str(folder), retry=retry) as client:
        with pytest.raises(ManagedIdentityError, match="refused the key file") as raised:
            client.get_token(scopes=f"{ARM}/.default")
    assert handler.seen == [None, "Basic s3cr3t-key"] and "s3cr3t-key" not in str(raised.value)
