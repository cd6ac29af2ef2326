"""A federated user of the password grant: user realm, MEX, WS-Trust, SAML bearer grant, over loopback."""

from __future__ import annotations

import io
import json
from typing import Iterator, List, Tuple

import pytest

from oauth_core import EntraClient, FederatedSignInFailed
from oauth_core.cli import main
from oauth_core.core.claims import unverified_claims
from oauth_core.emulator import Emulator, EmulatorConfig

BOB = ("bob@fabrikam.example", "Bob-Passw0rd!")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as running:
        yield running


def run(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def common(emu: Emulator) -> List[str]:
    return ["--authority-host", emu.url, "--tenant", emu.tenant_id, "--client-id", emu.config.clients[0].client_id]


def test_the_federated_user_signs_in_with_oauth_core_password(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", BOB[1])
    before = len(emu.requests)
    code, out, err = run("password", *common(emu), "--username", BOB[0], "--json")
    assert code == 0, err
    claims = unverified_claims(json.loads(out)["access_token"])
    assert claims["upn"] == BOB[0]
    path = [r.endpoint for r in emu.requests[before:]]
    assert path == ["userrealm", "mex", "usernamemixed", "token"]
    [grant] = [r for r in emu.requests[before:] if r.endpoint == "token"]
    assert grant.grant_type in (
        "urn:ietf:params:oauth:grant-type:saml2-bearer",
        "urn:ietf:params:oauth:grant-type:saml1_1-bearer",
    )
    assert BOB[1] not in out + err


def test_a_wrong_federated_password_is_sent_once_and_exits_1(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", "Wrong-Passw0rd!")
    before = len(emu.requests)
    code, out, err = run("password", *common(emu), "--username", BOB[0])
    assert code == 1 and out == ""
    assert "Wrong-Passw0rd!" not in err
    sent = [r.endpoint for r in emu.requests[before:]]
    assert sent.count("usernamemixed") == 1  # a 500 SOAP fault is never resent: each try counts toward lockout
    assert "token" not in sent


def test_the_library_types_the_refusal(emu: Emulator) -> None:
    with EntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url) as client:
        with pytest.raises(FederatedSignInFailed) as caught:
            client.acquire_by_password(BOB[0], "Wrong-Passw0rd!")
        assert "Wrong-Passw0rd!" not in repr(caught.value) + str(caught.value)
        tokens = client.acquire_by_password(*BOB)
    assert tokens.claims is not None and tokens.claims["upn"] == BOB[0]


def test_a_managed_user_still_uses_the_password_grant(emu: Emulator) -> None:
    user = emu.config.users[0]
    before = len(emu.requests)
    with EntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url) as client:
        client.acquire_by_password(user.username, user.password)
    assert [r.endpoint for r in emu.requests[before:]] == ["userrealm", "token"]
    assert emu.requests[-1].grant_type == "password"
