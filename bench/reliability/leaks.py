"""The ``secrets`` part: every flow is driven while everything it shows is kept, then searched for secrets.

Password, refresh, code exchange with state and nonce failures, client credentials, device code,
get_token and the CLI commands with --verbose run against the emulator; logs, reprs, errors,
tracebacks and CLI error output are kept (:class:`LeakSearch`), and every secret value (at least
8 characters, also URL-encoded) is looked for in every one of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .shared import DBX, HARD


@dataclasses.dataclass
class SecretResult:
    secrets: int = 0
    surfaces: int = 0
    checks: int = 0
    leaks: List[str] = dataclasses.field(default_factory=list)
    flows: int = 0


class LeakSearch:
    def __init__(self) -> None:
        self.secrets: Dict[str, str] = {}
        self.surfaces: List[Tuple[str, str]] = []
        self.flows = 0

    def secret(self, name: str, value: Optional[str]) -> None:
        if value and len(value) >= 8:
            self.secrets.setdefault(value, name)

    def tokens(self, where: str, tokens: Any) -> None:
        for kind in ("access_token", "refresh_token", "id_token"):
            self.secret(f"{where} {kind}", getattr(tokens, kind, None))
        self.shown(where, tokens)

    def shown(self, where: str, *objects: Any) -> None:
        for value in objects:
            self.surfaces += [(f"{where}: repr", repr(value)), (f"{where}: str", str(value))]

    @contextlib.contextmanager
    def logs(self, where: str) -> Iterator[None]:
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
            formatter = logging.Formatter("%(name)s %(message)s")
            for record in {id(r): r for r in records}.values():
                if not record.name.startswith("oauth_core.emulator"):
                    self.surfaces.append((f"{where}: log", formatter.format(record)))

    def call(self, where: str, action: Callable[[], Any]) -> Any:
        from oauth_core.core.errors import OAuthCoreError, OAuthError

        self.flows += 1
        with self.logs(where):
            try:
                return action()
            except OAuthCoreError as exc:
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                self.surfaces += [(f"{where}: error", f"{exc}\n{exc!r}\n{text}")]
                if isinstance(exc, OAuthError):
                    self.surfaces.append((f"{where}: error dict", json.dumps(exc.to_dict())))
                return exc

    def cli(
        self, where: str, argv: List[str], stdin: str = "", env: Optional[Dict[str, str]] = None
    ) -> Tuple[int, str]:
        from oauth_core.cli import main

        out, err = io.StringIO(), io.StringIO()
        saved_env = {name: os.environ.get(name) for name in (env or {})}
        saved_streams = sys.stdin, sys.stderr
        logger = logging.getLogger("oauth_core")
        handlers, level = list(logger.handlers), logger.level
        try:
            os.environ.update(env or {})
            sys.stdin, sys.stderr = io.StringIO(stdin), err
            with self.logs(where):
                code = main([*argv, "--verbose"], stdout=out, stderr=err)
        finally:
            sys.stdin, sys.stderr = saved_streams
            logger.handlers[:] = handlers
            logger.setLevel(level)
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self.flows += 1
        self.surfaces.append((f"{where}: stderr", err.getvalue()))
        if code != 0:
            self.surfaces.append((f"{where}: stdout", out.getvalue()))
        return code, out.getvalue()

    def result(self) -> SecretResult:
        from urllib.parse import quote

        leaks = []
        for value, name in self.secrets.items():
            forms = {value, quote(value, safe="")}
            leaks += [f"{name} in {where}" for where, text in self.surfaces if any(f in text for f in forms)]
        return SecretResult(
            len(self.secrets),
            len(self.surfaces),
            len(self.secrets) * len(self.surfaces),
            sorted(set(leaks)),
            self.flows,
        )


WRONG_PASSWORD = "Wr0ng-Passw0rd-xyz"
WRONG_SECRET = "wrong-client-secret-xyz"
BOGUS_REFRESH_TOKEN = "0.AXkA-bogus-refresh-token-xyz"


class SecretFlows:
    """The flows whose surfaces are searched, against one emulator and one cache folder (``home``)."""

    def __init__(self, search: LeakSearch, emulator: Any, config: Any, home: str) -> None:
        from oauth_core import RetryPolicy

        self.search, self.emulator, self.config, self.home = search, emulator, config, home
        for user in config.users:
            search.secret(f"password of {user.username}", user.password)
        self.confidential = config.clients[1]
        search.secret("client secret", self.confidential.secret)
        self.alice = config.users[0]
        self.policy = RetryPolicy(sleep=lambda s: None, max_attempts=2)

    def public_client(self) -> None:
        """Password, refresh, get_token, code exchange and device code on one public client with a file cache."""
        from oauth_core import EntraClient
        from oauth_core.drivers.stores import FileTokenCache

        search, alice = self.search, self.alice
        client = EntraClient(
            self.config.clients[0].client_id,
            self.config.tenant_id,
            authority_host=self.emulator.url,
            retry=self.policy,
            cache=FileTokenCache(Path(self.home) / "tokens.json"),
        )
        search.shown("client", client)
        first = search.call("password", lambda: client.acquire_by_password(alice.username, alice.password))
        search.tokens("password", first)
        search.call("wrong password", lambda: client.acquire_by_password(alice.username, WRONG_PASSWORD))
        search.tokens("refresh", search.call("refresh", lambda: client.refresh(first.refresh_token)))
        search.call("reused refresh token", lambda: client.refresh(first.refresh_token))
        search.call("bogus refresh token", lambda: client.refresh(BOGUS_REFRESH_TOKEN))
        search.tokens("get_token", search.call("get_token", lambda: client.get_token(min_validity=HARD)))
        self.code_exchanges(client)
        self.device_code(client)
        client.close()

    def _sign_in(self, pending: Any) -> str:
        """Alice signs in at ``pending``'s URL: the redirect location, its code registered as a secret."""
        from urllib.parse import parse_qs, urlsplit

        from oauth_core.cli.demo import scripted_sign_in

        location = scripted_sign_in(pending.url, self.alice.username, self.alice.password)
        self.search.secret("code", parse_qs(urlsplit(location).query)["code"][0])
        return location

    def _register_pending(self, pending: Any) -> None:
        for name in ("state", "nonce", "code_verifier"):
            self.search.secret(f"pending {name}", getattr(pending, name))

    def code_exchanges(self, client: Any) -> None:
        """A tampered state, a wrong nonce, then a good exchange and its code reused."""
        search = self.search
        pending = client.authorization_request()
        self._register_pending(pending)
        search.shown("pending", pending)
        location = self._sign_in(pending)
        tampered = re.sub(r"state=[^&]+", "state=tampered-state-value", location)
        search.call("state mismatch", lambda: client.exchange_code(pending, tampered))
        other = dataclasses.replace(pending, nonce="another-nonce-value-xyz")
        search.secret("other nonce", other.nonce)
        search.call("nonce mismatch", lambda: client.exchange_code(other, location))
        pending = client.authorization_request()
        location = self._sign_in(pending)
        self._register_pending(pending)
        search.tokens("code exchange", search.call("code exchange", lambda: client.exchange_code(pending, location)))
        search.call("code reused", lambda: client.exchange_code(pending, location))

    def device_code(self, client: Any) -> None:
        search = self.search

        def approve(code: Any) -> None:
            search.secret("device code", code.device_code)
            search.shown("device code", code)
            self.emulator.approve_device_code(code.user_code, self.alice.username)

        search.tokens("device code", search.call("device code", lambda: client.acquire_by_device_code(on_code=approve)))

    def client_credentials(self) -> None:
        """The confidential client with its secret, then with a wrong one."""
        from oauth_core import EntraClient

        confidential = self.confidential
        for secret in (confidential.secret, WRONG_SECRET):
            app = EntraClient(
                confidential.client_id,
                self.config.tenant_id,
                authority_host=self.emulator.url,
                client_secret=secret,
                scopes=DBX,
                retry=self.policy,
            )
            self.search.shown("confidential client", app)
            result = self.search.call("client credentials", app.acquire_for_client)
            if secret == confidential.secret:
                self.search.tokens("client credentials", result)
            app.close()

    def cli_commands(self) -> None:
        """The CLI commands, each with --verbose, sharing the cache in ``home``."""
        search, alice = self.search, self.alice
        env = {
            "OAUTH_CORE_HOME": self.home,
            "AZURE_AUTHORITY_HOST": self.emulator.url,
            "AZURE_TENANT_ID": self.config.tenant_id,
            "AZURE_CLIENT_ID": self.config.clients[0].client_id,
        }
        code, out = search.cli(
            "cli password", ["password", "-u", alice.username, "--password-stdin", "--json"], alice.password + "\n", env
        )
        if code == 0:
            for kind in ("access_token", "refresh_token", "id_token"):
                search.secret(f"cli {kind}", json.loads(out)[kind])
        search.cli(
            "cli wrong password", ["password", "-u", alice.username, "--password-stdin"], WRONG_PASSWORD + "\n", env
        )
        search.cli("cli password on argv", ["password", "-u", alice.username, "--password", WRONG_PASSWORD], "", env)
        search.cli("cli refresh", ["refresh"], "", env)
        search.cli("cli bogus refresh token", ["refresh", "--refresh-token-stdin"], BOGUS_REFRESH_TOKEN + "\n", env)
        search.cli("cli token", ["token"], "", env)
        search.cli("cli accounts", ["accounts", "--json"], "", env)
        secret_env = {**env, "AZURE_CLIENT_ID": self.confidential.client_id, "AZURE_CLIENT_SECRET": WRONG_SECRET}
        search.cli("cli wrong client secret", ["client-credentials"], "", secret_env)
        search.cli("cli logout", ["logout"], "", env)


def run_secrets() -> SecretResult:
    from oauth_core.emulator import Emulator, EmulatorConfig

    search = LeakSearch()
    for name, value in (
        ("wrong password", WRONG_PASSWORD),
        ("wrong secret", WRONG_SECRET),
        ("bogus RT", BOGUS_REFRESH_TOKEN),
    ):
        search.secret(name, value)
    config = dataclasses.replace(EmulatorConfig.default(), token_lifetime=3600)
    with Emulator(config, port=0) as emulator, tempfile.TemporaryDirectory() as home:
        flows = SecretFlows(search, emulator, config, home)
        flows.public_client()
        flows.client_credentials()
        flows.cli_commands()
    return search.result()
