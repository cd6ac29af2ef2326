"""`oauth-core token` from the cache: the token printed without loading the HTTP stack or sending anything."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from oauth_core.cli import main
from oauth_core.emulator import Emulator, EmulatorConfig

HEAVY = ("httpx", "httpcore", "tenacity", "jwt", "cryptography")
# Not heavy for a program, but each costs a shell loop's `token` more than its whole lookup: dataclasses
# imports inspect (ast, dis, tokenize); argparse finds the terminal width through shutil (lzma, bz2).
STARTUP = ("dataclasses", "inspect", "shutil")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig.default(), port=0, tls=False) as running:
        yield running


@pytest.fixture
def signed_in(emu: Emulator, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    common = ["--authority-host", emu.url, "--tenant", emu.tenant_id, "--client-id", emu.config.clients[0].client_id]
    user = emu.config.users[0]
    monkeypatch.setenv("OAUTH_CORE_PASSWORD", user.password)
    out, err = io.StringIO(), io.StringIO()
    assert main(["password", *common, "--username", user.username], stdout=out, stderr=err) == 0, err.getvalue()
    return common


def run_isolated(argv: List[str]) -> subprocess.CompletedProcess[str]:
    """``oauth-core`` in a fresh interpreter that reports, on stderr, which heavy modules it loaded."""
    code = (
        "import sys\n"
        "from oauth_core.cli import main\n"
        f"code = main({argv!r})\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY + STARTUP!r})\n"
        "print('LOADED=' + ','.join(loaded), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=60
    )


def loaded(result: subprocess.CompletedProcess[str]) -> List[str]:
    line = [x for x in result.stderr.splitlines() if x.startswith("LOADED=")][-1]
    return [m for m in line[len("LOADED=") :].split(",") if m]


@pytest.mark.parametrize("output", ["plain", "json", "exec-credential", "az"])
def test_a_cache_hit_loads_no_http_stack_and_sends_nothing(emu: Emulator, signed_in: List[str], output: str) -> None:
    before = len(emu.requests)
    result = run_isolated(["token", *signed_in, "--output", output])
    assert result.returncode == 0, result.stderr
    if output == "plain":
        assert loaded(result) == []
    else:  # the other outputs build a TokenSet (a dataclass) from the cached entry
        assert [m for m in loaded(result) if m.split(".")[0] in HEAVY] == []
    assert len(emu.requests) == before
    if output == "plain":
        assert result.stdout.count(".") == 2
    else:
        assert json.loads(result.stdout)


def test_the_fast_path_prints_what_the_ordinary_path_prints(emu: Emulator, signed_in: List[str]) -> None:
    fast = run_isolated(["token", *signed_in, "--json"])
    out, err = io.StringIO(), io.StringIO()
    assert (
        main(
            ["token", *signed_in, "--json", "--cache", "file", "--claims", '{"access_token":{}}'],
            stdout=out,
            stderr=err,
        )
        == 0
    )
    assert json.loads(fast.stdout).keys() == json.loads(out.getvalue()).keys()


@pytest.mark.parametrize(
    "extra",
    [["--min-validity", "86400"], ["--claims", '{"access_token":{"xms_cc":{"values":["cp1"]}}}'], ["--no-cache"]],
)
def test_anything_but_a_plain_hit_takes_the_ordinary_path(
    emu: Emulator, signed_in: List[str], extra: List[str]
) -> None:
    result = run_isolated(["token", *signed_in, *extra])
    assert "httpx" in loaded(result)  # a refresh (or a memory cache) needs the HTTP stack


def test_a_damaged_cache_is_reported_by_the_ordinary_path(signed_in: List[str], isolated_env: Path) -> None:
    (isolated_env / "tokens.json").write_text("{ not json")
    result = run_isolated(["token", *signed_in])
    assert result.returncode == 2 and "token cache" in result.stderr and "Traceback" not in result.stderr
