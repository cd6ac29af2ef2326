"""Injected faults, observed from a raw httpx client on the emulator's real socket, and the spec parser."""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import replace
from typing import Any, Dict, Iterator, Optional
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oauth_core.core.errors import ConfigError
from oauth_core.emulator import Emulator, EmulatorConfig, Fault, FaultSpec, parse_fault_spec

TENANT = "5d1e7c7a-3b3f-4c1e-9c55-0e3a9f6b2d11"
PUBLIC = "a0c5e0f6-1d2b-4c3e-9f8a-7b6c5d4e3f21"
ALICE = ("alice@contoso.onmicrosoft.com", "Alice-Passw0rd!")
DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default offline_access openid profile"
REDIRECT = "http://localhost:53123"
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(replace(EmulatorConfig.default(), token_lifetime=3600)) as running:
        yield running


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.url, follow_redirects=False, timeout=10) as client:
        yield client


def password(http: httpx.Client) -> httpx.Response:
    form = {"grant_type": "password", "client_id": PUBLIC, "username": ALICE[0], "password": ALICE[1], "scope": DBX}
    return http.post(f"/{TENANT}/oauth2/v2.0/token", data=form)


def refresh(http: httpx.Client, rt: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "client_id": PUBLIC, "refresh_token": rt, "scope": DBX}
    return http.post(f"/{TENANT}/oauth2/v2.0/token", data=form)


def new_code(http: httpx.Client) -> str:
    params = {"client_id": PUBLIC, "response_type": "code", "redirect_uri": REDIRECT, "scope": DBX, "state": "s"}
    page = http.get(f"/{TENANT}/oauth2/v2.0/authorize", params=params)
    match = re.search(r'name="flowtoken" value="([^"]+)"', page.text)
    assert match
    form = {"flowtoken": match.group(1), "username": ALICE[0], "password": ALICE[1], "action": "signin"}
    resp = http.post(f"/{TENANT}/oauth2/v2.0/authorize", data=form)
    return parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]


def redeem(http: httpx.Client, code: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "client_id": PUBLIC, "code": code, "redirect_uri": REDIRECT}
    return http.post(f"/{TENANT}/oauth2/v2.0/token", data=form)


def error_code(resp: httpx.Response) -> Optional[int]:
    codes = resp.json().get("error_codes")
    return codes[0] if codes else None


# --- each kind on the wire -----------------------------------------------------------------------


def test_429_with_retry_after_then_normal_service(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("status", status=429, retry_after=2), times=3)
    answers = [password(http) for _ in range(4)]
    assert [r.status_code for r in answers] == [429, 429, 429, 200]
    throttled = answers[0]
    assert throttled.headers["retry-after"] == "2" and throttled.text == "Too Many Requests"
    assert throttled.headers["content-type"].startswith("text/plain") and throttled.headers["x-ms-request-id"]
    assert emu.count("token", grant_type="password") == 4
    assert [r.status for r in emu.requests] == [429, 429, 429, 200]


def test_retry_after_ms_header(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("status", status=429, retry_after=1, retry_after_ms=1500))
    resp = password(http)
    assert resp.headers["retry-after"] == "1" and resp.headers["retry-after-ms"] == "1500"


def test_503_is_an_entra_like_temporarily_unavailable(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("status", status=503), times=2)
    first, second, third = password(http), password(http), password(http)
    assert first.status_code == second.status_code == 503 and third.status_code == 200
    body = first.json()
    assert body["error"] == "temporarily_unavailable" and body["error_codes"] == [90033]
    assert body["trace_id"] == first.headers["x-ms-request-id"]
    assert "retry-after" not in first.headers


def test_500_has_a_plain_body_and_custom_bodies_are_served(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("status", status=500))
    emu.inject("token", Fault("status", status=502, body='{"error":"bad_gateway"}'))
    emu.inject("token", Fault("status", status=504, body="upstream timed out"))
    plain, as_json, as_text = password(http), password(http), password(http)
    assert plain.status_code == 500 and plain.text == "Internal Server Error"
    assert as_json.status_code == 502 and as_json.json() == {"error": "bad_gateway"}
    assert as_text.status_code == 504 and as_text.text == "upstream timed out"
    assert as_text.headers["content-type"].startswith("text/plain")


def test_faults_are_consumed_in_order(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("status", status=429, retry_after=1))
    emu.inject("token", Fault("status", status=503))
    emu.inject("token", Fault("html", status=502))
    assert [password(http).status_code for _ in range(4)] == [429, 503, 502, 200]


def test_delay_then_normal_answer(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("delay", seconds=0.3))
    started = time.perf_counter()
    resp = password(http)
    elapsed = time.perf_counter() - started
    assert resp.status_code == 200 and elapsed >= 0.3
    started = time.perf_counter()
    password(http)
    assert time.perf_counter() - started < 0.3


def test_drop_before_does_not_process_the_request(emu: Emulator, http: httpx.Client) -> None:
    code = new_code(http)
    emu.inject("token", Fault("drop_before"))
    with pytest.raises(DROPPED):
        redeem(http, code)
    assert redeem(http, code).status_code == 200
    dropped = next(r for r in emu.requests if r.endpoint == "token")
    assert dropped.status is None and dropped.grant_type is None


def test_drop_after_loses_the_response_but_redeems_the_code(emu: Emulator, http: httpx.Client) -> None:
    code = new_code(http)
    emu.inject("token", Fault("drop_after"))
    with pytest.raises(DROPPED):
        redeem(http, code)
    retry = redeem(http, code)
    assert retry.status_code == 400 and error_code(retry) == 54005
    lost = next(r for r in emu.requests if r.endpoint == "token")
    assert lost.status is None and lost.grant_type == "authorization_code"


def test_drop_after_rotates_the_refresh_token() -> None:
    # Revocation on rotation is opt-in (Entra keeps a rotated-away refresh token valid).
    config = replace(EmulatorConfig.default(), token_lifetime=3600, revoke_rotated_refresh_tokens=True)
    with Emulator(config) as emu, httpx.Client(base_url=emu.url, follow_redirects=False, timeout=10) as http:
        rt = password(http).json()["refresh_token"]
        emu.inject("token", Fault("drop_after"))
        with pytest.raises(DROPPED):
            refresh(http, rt)
        assert error_code(refresh(http, rt)) == 70000


def test_truncate_sends_half_the_body(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("truncate"))
    with pytest.raises(DROPPED):
        password(http)
    assert password(http).status_code == 200


def test_truncate_seen_raw(emu: Emulator) -> None:
    emu.inject("keys", Fault("truncate"))
    with httpx.Client() as http, http.stream("GET", f"{emu.url}/{TENANT}/discovery/v2.0/keys") as resp:
        assert resp.status_code == 200
        announced = int(resp.headers["content-length"])
        received = b""
        with pytest.raises(DROPPED):
            for chunk in resp.iter_raw():
                received += chunk
    assert 0 < len(received) < announced


def test_html_fault_is_a_proxy_page(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("html", status=502))
    emu.inject("discovery", Fault("html", status=200, body="<html><body>Sign in to the Wi-Fi</body></html>"))
    resp = password(http)
    assert resp.status_code == 502 and resp.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>502 Bad Gateway</title>" in resp.text
    portal = http.get(f"/{TENANT}/v2.0/.well-known/openid-configuration")
    assert portal.status_code == 200 and "Wi-Fi" in portal.text
    assert http.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").json()["issuer"]


@pytest.mark.parametrize(
    ("endpoint", "method", "path"),
    [
        ("discovery", "GET", f"/{TENANT}/v2.0/.well-known/openid-configuration"),
        ("keys", "GET", f"/{TENANT}/discovery/v2.0/keys"),
        ("instance", "GET", "/common/discovery/instance"),
        ("userrealm", "GET", "/common/userrealm/alice@contoso.onmicrosoft.com"),
        ("authorize", "GET", f"/{TENANT}/oauth2/v2.0/authorize"),
        ("devicecode", "POST", f"/{TENANT}/oauth2/v2.0/devicecode"),
        ("devicelogin", "GET", "/devicelogin"),
    ],
)
def test_faults_apply_per_endpoint(emu: Emulator, http: httpx.Client, endpoint: str, method: str, path: str) -> None:
    emu.inject(endpoint, Fault("status", status=503))
    assert http.request(method, path).status_code == 503
    assert http.request(method, path).status_code != 503
    assert password(http).status_code == 200


def test_faults_over_tls() -> None:
    with Emulator(replace(EmulatorConfig.default(), token_lifetime=3600), tls=True) as emu:
        assert emu.ca_bundle is not None
        context = ssl.create_default_context(cafile=emu.ca_bundle)
        with httpx.Client(base_url=emu.url, verify=context) as http:
            emu.inject("token", Fault("drop_before"))
            emu.inject("token", Fault("truncate"))
            for _ in range(2):
                with pytest.raises(DROPPED):
                    password(http)
            assert password(http).status_code == 200


def test_clear_faults(emu: Emulator, http: httpx.Client) -> None:
    emu.inject("token", Fault("status", status=500), times=5)
    emu.clear_faults()
    assert password(http).status_code == 200


# --- values and the text form --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "status", "status": 200},
        {"kind": "status", "status": 600},
        {"kind": "html", "status": 100},
        {"kind": "delay", "seconds": -1},
        {"kind": "delay", "seconds": 10_000},
        {"kind": "status", "status": 429, "retry_after": -1},
        {"kind": "status", "status": 429, "retry_after_ms": 1.5},
    ],
)
def test_bad_fault_values(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Fault(**kwargs)


def test_html_defaults_to_502() -> None:
    assert Fault("html").status == 502


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("token:429x3:retry-after=1", FaultSpec("token", Fault("status", status=429, retry_after=1), 3)),
        ("token:503x2", FaultSpec("token", Fault("status", status=503), 2)),
        ("token:500", FaultSpec("token", Fault("status", status=500), 1)),
        (
            "token:429:retry-after-ms=250:times=2",
            FaultSpec("token", Fault("status", status=429, retry_after_ms=250), 2),
        ),
        ("token:delay=2.5", FaultSpec("token", Fault("delay", seconds=2.5), 1)),
        ("keys:delay=1x4", FaultSpec("keys", Fault("delay", seconds=1.0), 4)),
        ("token:drop-before", FaultSpec("token", Fault("drop_before"), 1)),
        ("token:drop-after", FaultSpec("token", Fault("drop_after"), 1)),
        ("token:truncate", FaultSpec("token", Fault("truncate"), 1)),
        ("token:html=502", FaultSpec("token", Fault("html", status=502), 1)),
        ("discovery:html", FaultSpec("discovery", Fault("html", status=502), 1)),
        (" authorize:status=503x2 ", FaultSpec("authorize", Fault("status", status=503), 2)),
    ],
)
def test_parse_fault_spec(spec: str, expected: FaultSpec) -> None:
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected ENDPOINT:KIND"),
        ("token", "expected ENDPOINT:KIND"),
        ("token:", "expected ENDPOINT:KIND"),
        ("nowhere:429", "unknown endpoint"),
        ("token:teapot", "unknown kind"),
        ("token:99", "unknown kind"),
        ("token:200", "status from 400 to 599"),
        ("token:429x0", "at least 1"),
        ("token:delay=abc", "must be a number"),
        ("token:delay=9999", "delay must be"),
        ("token:429:retry-after=soon", "whole number"),
        ("token:429:retry-after=-1", "whole number"),
        ("token:429:bogus=1", "unknown option"),
        ("token:delay=1:retry-after=1", "unknown option"),
        ("token:429:retry-after", "NAME=VALUE"),
        ("token:html=abc", "whole number"),
        ("token:drop-after=1", "unknown kind"),
    ],
)
def test_bad_fault_specs(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_fault_spec(spec)
