"""Signature checks refetch the key set once when a token names an unknown key (rollover)."""

from __future__ import annotations

import io
import json
from typing import Any, Dict, List

import pytest

pytest.importorskip("cryptography", reason="signature checks need the crypto extra")

from oauth_core.cli import main
from oauth_core.core.claims import verify_with_refresh
from oauth_core.core.errors import UnknownSigningKey
from tests.fixturelib import jwks, load_token


def _source(sets: List[Dict[str, Any]]) -> tuple[Any, List[bool]]:
    calls: List[bool] = []

    def get(refresh: bool) -> Dict[str, Any]:
        calls.append(refresh)
        return sets[min(len(calls) - 1, len(sets) - 1)]

    return get, calls


def test_unknown_kid_triggers_one_refetch() -> None:
    stale = {"keys": [k for k in jwks()["keys"][1:]]}  # the signing key rolled in after this copy
    get, calls = _source([stale, jwks()])
    kid = verify_with_refresh(load_token("databricks-v1-user"), get)
    assert kid == jwks()["keys"][0]["kid"]
    assert calls == [False, True]


def test_still_unknown_after_the_refetch_fails() -> None:
    stale = {"keys": [k for k in jwks()["keys"][1:]]}
    get, calls = _source([stale, stale])
    with pytest.raises(UnknownSigningKey):
        verify_with_refresh(load_token("databricks-v1-user"), get)
    assert calls == [False, True]  # exactly one refetch


def test_known_kid_needs_no_refetch() -> None:
    get, calls = _source([jwks()])
    verify_with_refresh(load_token("databricks-v1-user"), get)
    assert calls == [False]


def test_decode_verify_fetches_the_tenants_jwks_from_the_emulator() -> None:
    from oauth_core.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig.default(), port=0) as emu:
        from oauth_core import EntraClient

        user = emu.config.users[0]
        with EntraClient(emu.config.clients[0].client_id, emu.tenant_id, authority_host=emu.url) as client:
            token = client.acquire_by_password(user.username, user.password).access_token
        out, err = io.StringIO(), io.StringIO()
        code = main(["decode", token, "--verify", "--json", "--authority-host", emu.url], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["verified"] is True
