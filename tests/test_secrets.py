"""No secret leaks: drive every flow against the emulator and search everything that could show one.

Secrets: the user's password (right and wrong), the client secret (right and wrong), every
access, refresh and id token, authorization codes, the PKCE verifier, state and nonce, device
codes, and the bogus tokens the error paths are fed.

Surfaces searched:

- every log record at any level from the root and ``oauth_core`` loggers (formatted, with its
  exception text), while the client runs; the emulator's own loggers are the service, not the
  client, and are left out;
- ``repr`` and ``str`` of every value object and client (TokenSet, PendingAuthorization,
  HttpRequest, HttpResponse, EntraClient with a secret, DeviceCode, CacheEntry, TokenInfo, EntraAuth ...);
- ``str``, ``repr``, ``to_dict()`` and the full ``traceback.format_exception`` text of every error raised;
- the CLI's stderr (with ``--verbose``) for every command, and its stdout when it failed. A
  successful command's stdout carries the tokens it was asked for (and ``authorize-url`` the
  sign-in URL, with its state and nonce): that is its job, and it is not searched.

A value is searched as is and percent-encoded. Each test fails listing every (secret, surface) pair found.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
import threading
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

import httpx
import pytest
import respx

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core import EntraClient, OAuthCoreError, RetryPolicy, TokenSet
from oauth_core.cli import main
from oauth_core.cli.demo import scripted_sign_in
from oauth_core.core.claims import inspect_token
from oauth_core.core.device import DeviceCode
from oauth_core.core.errors import (
    AccessDenied,
    AuthorizationDeclined,
    InteractionRequired,
    InvalidClient,
    InvalidGrant,
    NonceMismatch,
    OAuthError,
    StateMismatch,
)
from oauth_core.core.protocol import HttpResponse, build_token_request, password_grant, refresh_token_grant
from oauth_core.drivers.stores import FileTokenCache, find_access_token, resolve_account
from oauth_core.emulator import Emulator, EmulatorConfig
from oauth_core.integrations.httpx_auth import EntraAuth

T = TypeVar("T")
DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
WRONG_PASSWORD = "Wr0ng-Passw0rd-for-the-leak-test"
WRONG_SECRET = "wrong-client-secret-for-the-leak-test"
BOGUS_REFRESH_TOKEN = "0.AXkA-bogus-refresh-token-for-the-leak-test-0123456789"
HARD = 7200.0  # above the 3600 s token lifetime: get_token must refresh


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    # Revocation on rotation opted in: the CLI test below expects a rotated-away token to be refused.
    config = replace(EmulatorConfig.default(), token_lifetime=3600, revoke_rotated_refresh_tokens=True)
    with Emulator(config, port=0) as running:
        yield running


class Leaks:
    """The secrets seen so far and the text of every surface that must not show them."""

    def __init__(self) -> None:
        self.secrets: Dict[str, str] = {}
        self.surfaces: List[Tuple[str, str]] = []

    # -- secrets ---------------------------------------------------------------------------------

    def secret(self, name: str, value: Optional[str]) -> None:
        if value and len(value) >= 8:  # shorter values occur in ordinary text by chance
            self.secrets.setdefault(value, name)

    def tokens(self, where: str, tokens: TokenSet) -> TokenSet:
        self.secret(f"{where} access token", tokens.access_token)
        self.secret(f"{where} refresh token", tokens.refresh_token)
        self.secret(f"{where} id token", tokens.id_token)
        self.shown(f"repr/str of the TokenSet of {where}", tokens)
        return tokens

    # -- surfaces --------------------------------------------------------------------------------

    def text(self, where: str, text: str) -> None:
        self.surfaces.append((where, text))

    def shown(self, where: str, *objects: Any) -> None:
        """The repr and str of each object."""
        for value in objects:
            self.text(f"{where}: repr", repr(value))
            self.text(f"{where}: str", str(value))

    def error(self, where: str, exc: BaseException) -> None:
        self.text(f"{where}: str(error)", str(exc))
        self.text(f"{where}: repr(error)", repr(exc))
        self.text(f"{where}: traceback", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        if isinstance(exc, OAuthError):
            self.text(f"{where}: error.to_dict()", json.dumps(exc.to_dict()))
        if getattr(exc, "hint", None):
            self.text(f"{where}: error.hint", str(exc.hint))
        if getattr(exc, "snippet", None):
            self.text(f"{where}: error.snippet", str(exc.snippet))

    @contextlib.contextmanager
    def logs(self, where: str) -> Iterator[None]:
        """Every record of the root and ``oauth_core`` loggers, at DEBUG, while the block runs."""
        records: List[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        handler = Keep(logging.DEBUG)
        loggers = [logging.getLogger(), logging.getLogger("oauth_core")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.removeHandler(handler)
                logger.setLevel(level)
            formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
            for record in {id(r): r for r in records}.values():
                if not record.name.startswith("oauth_core.emulator"):
                    self.text(f"{where}: log {record.name} {record.levelname}", formatter.format(record))

    def call(self, where: str, action: Callable[[], T], expect: Any = object) -> Any:
        """Run ``action`` with logs captured; an OAuthCoreError it raises is returned (and searched).

        ``expect``: the type the result (or error) must have, so that each flow provably ran as meant.
        """
        with self.logs(where):
            try:
                result: Any = action()
            except OAuthCoreError as exc:
                self.error(where, exc)
                result = exc
        assert isinstance(result, expect), f"{where}: expected {expect}, got {type(result).__name__}: {result}"
        return result

    # -- the verdict -----------------------------------------------------------------------------

    def found(self) -> List[str]:
        hits = []
        for value, name in self.secrets.items():
            forms = {value, quote(value, safe="")}
            for where, text in self.surfaces:
                if any(form in text for form in forms):
                    hits.append(f"{name} appeared in {where}")
        return hits

    @property
    def checks(self) -> int:
        return len(self.secrets) * len(self.surfaces)

    def assert_clean(self) -> None:
        assert self.secrets and self.surfaces
        hits = self.found()
        assert not hits, f"{len(hits)} leak(s) in {self.checks} checks:\n" + "\n".join(sorted(set(hits)))


@pytest.fixture
def leaks(emulator: Emulator) -> Leaks:
    found = Leaks()
    for user in emulator.config.users:
        found.secret(f"password of {user.username}", user.password)
    for client in emulator.config.clients:
        found.secret(f"secret of {client.client_id}", client.secret)
    for name, value in (("wrong password", WRONG_PASSWORD), ("wrong secret", WRONG_SECRET)):
        found.secret(name, value)
    found.secret("bogus refresh token", BOGUS_REFRESH_TOKEN)
    return found


def no_sleep(seconds: float) -> None:
    return None


def public_client(emulator: Emulator, cache: Any = None) -> EntraClient:
    return EntraClient(
        emulator.config.clients[0].client_id,
        emulator.tenant_id,
        authority_host=emulator.url,
        retry=RetryPolicy(sleep=no_sleep, max_attempts=2),
        cache=cache,
    )


def confidential_client(emulator: Emulator, secret: str) -> EntraClient:
    return EntraClient(
        emulator.config.clients[1].client_id,
        emulator.tenant_id,
        authority_host=emulator.url,
        client_secret=secret,
        scopes=DBX,
        retry=RetryPolicy(sleep=no_sleep, max_attempts=2),
    )


ALICE = "alice@contoso.onmicrosoft.com"


def alice_password(emulator: Emulator) -> str:
    user = emulator.config.user(ALICE)
    assert user is not None
    return user.password


# -- the library's flows ---------------------------------------------------------------------------


def test_password_and_refresh_flows(emulator: Emulator, leaks: Leaks, tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path / "tokens.json")
    with public_client(emulator, cache) as client:
        leaks.shown("the client", client, client.retry, client.authority)
        signed_in = leaks.call(
            "password grant", lambda: client.acquire_by_password(ALICE, alice_password(emulator)), TokenSet
        )
        leaks.tokens("password grant", signed_in)
        leaks.call("wrong password", lambda: client.acquire_by_password(ALICE, WRONG_PASSWORD), InvalidGrant)
        mfa = emulator.config.user("mfa@contoso.onmicrosoft.com")
        assert mfa is not None
        leaks.call("MFA user", lambda: client.acquire_by_password(mfa.username, mfa.password), InteractionRequired)
        refreshed = leaks.call("refresh", lambda: client.refresh(signed_in.refresh_token or ""), TokenSet)
        leaks.tokens("refresh", refreshed)
        leaks.call("reused refresh token", lambda: client.refresh(signed_in.refresh_token or ""), InvalidGrant)
        leaks.call("bogus refresh token", lambda: client.refresh(BOGUS_REFRESH_TOKEN), InvalidGrant)
        silent = leaks.call("get_token from the cache", lambda: client.get_token(), TokenSet)
        leaks.tokens("get_token from the cache", silent)
        forced = leaks.call("get_token refreshing", lambda: client.get_token(min_validity=HARD), TokenSet)
        leaks.tokens("get_token refreshing", forced)
        emulator.revoke_refresh_tokens(ALICE)
        leaks.call(
            "get_token with a revoked refresh token", lambda: client.get_token(min_validity=HARD), InteractionRequired
        )
        leaks.call("get_token after the refusal", lambda: client.get_token(min_validity=HARD), InteractionRequired)
        state = cache.snapshot()
        account = resolve_account(state, client._where, None)
        assert account is not None
        leaks.shown("cache entry", find_access_token(state, client._where, account, client.scopes))
        leaks.shown("token info", inspect_token(forced.access_token))
        request = build_token_request(
            client.authority, client.client_id, password_grant(ALICE, WRONG_PASSWORD), scopes=(DBX,)
        )
        leaks.shown("password request", request)
        request = build_token_request(
            client.authority, client.client_id, refresh_token_grant(BOGUS_REFRESH_TOKEN), scopes=(DBX,)
        )
        leaks.shown("refresh request", request)
        leaks.shown(
            "response", HttpResponse(200, (("content-type", "application/json"),), json.dumps(forced.raw).encode())
        )
    leaks.assert_clean()


def test_authorization_code_flow(emulator: Emulator, leaks: Leaks) -> None:
    user_password = alice_password(emulator)
    with public_client(emulator) as client:

        def sign_in() -> Tuple[Any, str]:
            pending = client.authorization_request("http://localhost")
            for name in ("state", "nonce", "code_verifier"):
                leaks.secret(f"pending {name}", getattr(pending, name))
            leaks.shown("pending request", pending)
            location = scripted_sign_in(pending.url, ALICE, user_password)  # the browser: not searched
            code = parse_qs(urlsplit(location).query)["code"][0]
            leaks.secret("authorization code", code)
            return pending, location

        pending, location = sign_in()
        tampered = re.sub(r"state=[^&]+", "state=not-the-state-of-this-request", location)
        leaks.call("wrong state", lambda: client.exchange_code(pending, tampered), StateMismatch)
        stateless = "?" + urlencode([(k, v) for k, v in parse_qsl(urlsplit(location).query) if k != "state"])
        leaks.call("no state", lambda: client.exchange_code(pending, stateless), StateMismatch)
        error_redirect = f"http://localhost/?error=access_denied&error_description=nope&state={pending.state}"
        leaks.call("error redirect", lambda: client.exchange_code(pending, error_redirect), AccessDenied)
        other_nonce = replace(pending, nonce="another-nonce-for-the-leak-test-0123")
        leaks.secret("other nonce", other_nonce.nonce)
        leaks.call("nonce mismatch", lambda: client.exchange_code(other_nonce, location), NonceMismatch)

        pending, location = sign_in()
        tokens = leaks.call("code exchange", lambda: client.exchange_code(pending, location), TokenSet)
        leaks.tokens("code exchange", tokens)
        leaks.call("code reused", lambda: client.exchange_code(pending, location), InvalidGrant)
        pending, location = sign_in()
        wrong_verifier = replace(pending, code_verifier="v" * 64)
        leaks.call("wrong verifier", lambda: client.exchange_code(wrong_verifier, location), InvalidGrant)
    leaks.assert_clean()


def test_client_credentials(emulator: Emulator, leaks: Leaks) -> None:
    secret = emulator.config.clients[1].secret
    assert secret
    with confidential_client(emulator, secret) as client:
        leaks.shown("confidential client", client)
        leaks.tokens("client credentials", leaks.call("client credentials", client.acquire_for_client, TokenSet))
    with confidential_client(emulator, WRONG_SECRET) as client:
        leaks.shown("confidential client with a wrong secret", client)
        leaks.call("wrong client secret", client.acquire_for_client, InvalidClient)
    leaks.assert_clean()


def test_device_code(emulator: Emulator, leaks: Leaks) -> None:
    def approve(code: DeviceCode) -> None:
        leaks.secret("device code", code.device_code)
        leaks.shown("device code", code)
        emulator.approve_device_code(code.user_code, ALICE)

    def decline(code: DeviceCode) -> None:
        leaks.secret("declined device code", code.device_code)
        emulator.decline_device_code(code.user_code)

    with public_client(emulator) as client:
        leaks.tokens(
            "device code", leaks.call("device code", lambda: client.acquire_by_device_code(on_code=approve), TokenSet)
        )
        leaks.call(
            "declined device code", lambda: client.acquire_by_device_code(on_code=decline), AuthorizationDeclined
        )
    leaks.assert_clean()


def test_entra_auth_on_an_api(emulator: Emulator, leaks: Leaks) -> None:
    """EntraAuth sends the token to an API (mocked) that answers 401, then 200; nothing logs the header."""
    api = "https://adb-1.2.azuredatabricks.net/api/2.0/clusters/list"
    with public_client(emulator) as client:
        leaks.tokens("password grant", client.acquire_by_password(ALICE, alice_password(emulator)))
        auth = EntraAuth(client)
        leaks.shown("EntraAuth", auth)
        with respx.mock(assert_all_called=False) as router:
            router.route(host="127.0.0.1").pass_through()
            router.get(api).mock(side_effect=[httpx.Response(401), httpx.Response(200, json={"clusters": []})])
            with httpx.Client() as http:
                answer = leaks.call("API call", lambda: http.get(api, auth=auth))
                assert isinstance(answer, httpx.Response) and answer.status_code == 200
                for call in router.calls:
                    token = call.request.headers.get("authorization", "").removeprefix("Bearer ")
                    leaks.secret("bearer token sent to the API", token)
                leaks.shown("API response", answer)
    leaks.assert_clean()


# -- the CLI ---------------------------------------------------------------------------------------


class ApprovingStream(io.StringIO):
    """A stderr that approves the device code it is shown, as a person at another device would."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__()
        self.emulator = emulator

    def write(self, text: str) -> int:
        match = re.search(r"enter the code (\S+)", text)
        if match:
            threading.Timer(0.05, self.emulator.approve_device_code, (match.group(1), ALICE)).start()
        return super().write(text)


@pytest.fixture
def cli(
    emulator: Emulator, leaks: Leaks, monkeypatch: pytest.MonkeyPatch, fast_retries: Any
) -> Callable[..., Tuple[int, str, str]]:
    """``cli(argv, stdin=..., env=..., stderr=...)``: main with --verbose, every output searched as the rules say."""
    logger = logging.getLogger("oauth_core")
    handlers, level = list(logger.handlers), logger.level

    def run(
        argv: Sequence[str],
        *,
        stdin: str = "",
        env: Optional[Dict[str, str]] = None,
        stderr: Optional[io.StringIO] = None,
    ) -> Tuple[int, str, str]:
        out, err = io.StringIO(), stderr or io.StringIO()
        full = [*argv, "--verbose"]
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            patch.setattr(sys, "stderr", err)  # where --verbose logs go
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            with leaks.logs(f"CLI {argv[0]}"):
                code = main(full, stdout=out, stderr=err)
            logger.handlers[:] = handlers  # main adds a --verbose handler each call; drop it
            logger.setLevel(level)
        where = f"CLI {' '.join(argv)} (exit {code})"
        leaks.text(f"{where}: stderr", err.getvalue())
        if code != 0:
            leaks.text(f"{where}: stdout", out.getvalue())
        return code, out.getvalue(), err.getvalue()

    monkeypatch.setenv("AZURE_AUTHORITY_HOST", emulator.url)
    monkeypatch.setenv("AZURE_TENANT_ID", emulator.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", emulator.config.clients[0].client_id)
    return run


def test_cli_commands(emulator: Emulator, leaks: Leaks, cli: Callable[..., Tuple[int, str, str]]) -> None:
    password = alice_password(emulator)
    code, out, _ = cli(["password", "-u", ALICE, "--password-stdin", "--json"], stdin=password + "\n")
    assert code == 0
    first = json.loads(out)
    for kind in ("access_token", "refresh_token", "id_token"):
        leaks.secret(f"CLI password grant {kind}", first[kind])
    assert cli(["password", "-u", ALICE, "--password-stdin"], stdin=WRONG_PASSWORD + "\n")[0] == 1
    assert cli(["password", "-u", ALICE], env={"OAUTH_CORE_PASSWORD": WRONG_PASSWORD})[0] == 1
    assert cli(["password", "-u", ALICE, "--password", WRONG_PASSWORD])[0] == 2
    code, out, _ = cli(["refresh", "--json"])
    assert code == 0
    leaks.secret("CLI refresh access token", json.loads(out)["access_token"])
    leaks.secret("CLI refresh refresh token", json.loads(out)["refresh_token"])
    assert cli(["refresh", "--refresh-token-stdin"], stdin=first["refresh_token"] + "\n")[0] == 1  # rotated: revoked
    assert cli(["refresh", "--refresh-token-stdin"], stdin=BOGUS_REFRESH_TOKEN + "\n")[0] == 1
    code, out, _ = cli(["token"])
    assert code == 0
    leaks.secret("CLI token", out.strip())
    assert cli(["token", "--min-validity", "7200"])[0] == 0
    assert cli(["accounts"])[0] == 0 and cli(["accounts", "--json"])[0] == 0

    code, out, _ = cli(["authorize-url", "--json"])
    assert code == 0
    url = json.loads(out)["url"]
    query = parse_qs(urlsplit(url).query)
    for name in ("state", "nonce"):
        leaks.secret(f"CLI authorize-url {name}", query[name][0])
    location = scripted_sign_in(url, ALICE, password)
    leaks.secret("CLI authorization code", parse_qs(urlsplit(location).query)["code"][0])
    tampered = re.sub(r"state=[^&]+", "state=not-the-state-of-this-request", location)
    assert cli(["exchange", "--redirect-url", tampered])[0] == 4
    code, out, _ = cli(["exchange", "--redirect-url", location, "--json"])
    assert code == 0
    leaks.secret("CLI exchange access token", json.loads(out)["access_token"])
    assert cli(["exchange", "--redirect-url", location])[0] in (2, 4)  # the pending request is used up

    code, _, _ = cli(["device-code", "--json"], stderr=ApprovingStream(emulator))
    assert code == 0

    confidential = emulator.config.clients[1]
    secret_env = {"AZURE_CLIENT_ID": confidential.client_id, "AZURE_CLIENT_SECRET": confidential.secret or ""}
    code, out, _ = cli(["client-credentials", "--json"], env=secret_env)
    assert code == 0
    leaks.secret("CLI client credentials token", json.loads(out)["access_token"])
    assert cli(["client-credentials"], env={**secret_env, "AZURE_CLIENT_SECRET": WRONG_SECRET})[0] == 1
    assert cli(["client-credentials", "--client-secret-stdin"], stdin=WRONG_SECRET + "\n", env=secret_env)[0] == 1
    assert cli(["client-credentials", "--client-secret", WRONG_SECRET], env=secret_env)[0] == 2
    assert cli(["decode", first["access_token"]])[0] == 0
    assert cli(["logout"])[0] == 0
    assert cli(["token"])[0] == 1
    leaks.assert_clean()


def test_the_leak_search_finds_a_planted_leak(leaks: Leaks) -> None:
    """The search itself works: a secret planted in a log record and in an error is reported."""
    leaks.secret("planted", "planted-secret-value-0123456789")
    with leaks.logs("planted log"):
        logging.getLogger("oauth_core").debug("sending %s", "planted-secret-value-0123456789")
    leaks.error("planted error", ValueError("the value was planted-secret-value-0123456789"))
    found = leaks.found()
    assert any("planted log" in hit for hit in found)
    assert any("planted error: traceback" in hit for hit in found)
    with pytest.raises(AssertionError, match="leak"):
        leaks.assert_clean()
