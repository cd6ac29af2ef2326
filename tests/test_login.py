"""End to end: `oauth-core login`, `authorize-url` + `exchange`, `password`, `refresh` against the
emulator over real sockets; the sign-in page driven by a script and by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Dict, Iterator, List, Optional

import httpx
import pytest

pytest.importorskip("cryptography", reason="the emulator needs the crypto extra")

from oauth_core.cli.demo import scripted_sign_in
from oauth_core.core.claims import unverified_claims
from oauth_core.emulator import Emulator, EmulatorConfig

JSON_KEYS = {"token_type", "access_token", "refresh_token", "id_token", "scope", "expires_in", "expires_at", "claims"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0) as emu:
        yield emu


@pytest.fixture
def cli_env(isolated_env: Path, emulator: Emulator) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AZURE_AUTHORITY_HOST": emulator.url,
            "AZURE_TENANT_ID": emulator.tenant_id,
            "AZURE_CLIENT_ID": emulator.config.clients[0].client_id,
        }
    )
    return env


def _alice(emulator: Emulator) -> tuple[str, str]:
    user = emulator.config.users[0]
    return user.username, user.password


def _run(args: List[str], env: Dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oauth_core", *args], input=stdin, env=env, capture_output=True, text=True, timeout=60
    )


def _start_login(env: Dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "oauth_core", "login", "--no-browser", "--json", "--timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = _read_url(proc.stderr)
    return proc, url


def _read_url(stream: Optional[IO[str]]) -> str:
    assert stream is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = stream.readline()
        if line.startswith("http"):
            return line.strip()
        if not line:
            break
    raise AssertionError("login printed no URL")


def _finish(proc: subprocess.Popen[str]) -> Dict[str, object]:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert set(data) == JSON_KEYS
    return data


def test_login_with_a_scripted_browser(emulator: Emulator, cli_env: Dict[str, str]) -> None:
    proc, url = _start_login(cli_env)
    try:
        assert url.startswith(f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/authorize?")
        location = scripted_sign_in(url, *_alice(emulator))
        assert location.startswith("http://localhost:")
        # The browser follows the redirect to the listener (localhost resolves to the loopback).
        landing = httpx.get(location.replace("http://localhost:", "http://127.0.0.1:"), timeout=10)
        assert landing.status_code == 200 and "Signed in" in landing.text
        data = _finish(proc)
    finally:
        proc.kill()
    claims = unverified_claims(str(data["access_token"]))
    assert claims["upn"] == _alice(emulator)[0]
    assert data["refresh_token"]


def test_login_times_out_cleanly(cli_env: Dict[str, str]) -> None:
    result = _run(["login", "--no-browser", "--timeout", "1"], cli_env)
    assert result.returncode == 3
    assert "no sign-in response within" in result.stderr
    assert "Traceback" not in result.stderr


def test_authorize_url_then_exchange(emulator: Emulator, cli_env: Dict[str, str]) -> None:
    started = _run(["authorize-url", "--json"], cli_env)
    assert started.returncode == 0, started.stderr
    url = json.loads(started.stdout)["url"]
    location = scripted_sign_in(url, *_alice(emulator))
    finished = _run(["exchange", "--redirect-url", location, "--json"], cli_env)
    assert finished.returncode == 0, finished.stderr
    assert set(json.loads(finished.stdout)) == JSON_KEYS
    again = _run(["exchange", "--redirect-url", location, "--json"], cli_env)
    assert again.returncode == 4  # the pending request was used up: nothing is sent


def test_password_then_refresh_rotates_the_saved_token(emulator: Emulator, cli_env: Dict[str, str]) -> None:
    user, password = _alice(emulator)
    first = _run(["password", "--username", user, "--password-stdin", "--json"], cli_env, stdin=password + "\n")
    assert first.returncode == 0, first.stderr
    first_rt = json.loads(first.stdout)["refresh_token"]
    second = _run(["refresh", "--json"], cli_env)
    assert second.returncode == 0, second.stderr
    second_rt = json.loads(second.stdout)["refresh_token"]
    assert second_rt and second_rt != first_rt
    third = _run(["refresh", "--json"], cli_env)  # uses the rotated token the last run saved
    assert third.returncode == 0, third.stderr


def test_mfa_user_gets_the_login_hint(emulator: Emulator, cli_env: Dict[str, str]) -> None:
    mfa = next(u for u in emulator.config.users if u.requires_mfa)
    result = _run(["password", "--username", mfa.username, "--password-stdin"], cli_env, stdin=mfa.password + "\n")
    assert result.returncode == 1
    assert "50076" in result.stderr and "oauth-core login" in result.stderr
    assert mfa.password not in result.stderr


def test_demo_exits_zero(cli_env: Dict[str, str]) -> None:
    result = _run(["demo"], cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("Authorization code flow", "Password grant", "rotated refresh token: True", "retried after", "hint"):
        assert step in result.stdout


def _chrome() -> object:
    """A headless Debian Chromium under Selenium, or a skip that says what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (test extra)")
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_login_in_a_real_headless_browser(emulator: Emulator, cli_env: Dict[str, str]) -> None:
    driver = _chrome()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    proc, url = _start_login(cli_env)
    try:
        driver.get(url)  # type: ignore[attr-defined]
        user, password = _alice(emulator)
        driver.find_element(By.ID, "username").send_keys(user)  # type: ignore[attr-defined]
        driver.find_element(By.ID, "password").send_keys(password)  # type: ignore[attr-defined]
        driver.find_element(By.ID, "signin").click()  # type: ignore[attr-defined]
        WebDriverWait(driver, 20).until(lambda d: "Signed in" in d.page_source)
        assert driver.current_url.startswith("http://localhost:")  # type: ignore[attr-defined]
        data = _finish(proc)
    finally:
        proc.kill()
        driver.quit()  # type: ignore[attr-defined]
    assert unverified_claims(str(data["access_token"]))["aud"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
