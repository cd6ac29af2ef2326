"""Smoke test of the benchmark suite: ``python -m bench --quick`` runs, exits 0 and writes its JSON.

Nothing here is about speed. Rows of optional peers (msal, authlib, matplotlib) must either be
there or be skipped with a line saying so.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("latency", "inprocess", "decode", "coldstart", "concurrency")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_quick_suite_runs_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "### Targets" in done.stdout
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for key in ("meta", "targets", "skipped", "errors", "plots", *SECTIONS):
        assert key in data, key
    assert data["errors"] == []
    assert data["meta"]["quick"] is True
    assert {t["id"] for t in data["targets"]} >= {"refresh_vs_msal", "cpu_vs_httpx", "decode_vs_floor", "decode_rss"}
    assert {"raw", "httpx", "oauth_core"} <= set(data["latency"]["http"])
    assert data["decode"]["oauth_core"]["rejected"] == data["decode"]["oauth_core"]["malformed"]
    skipped = "\n".join(data["skipped"])
    for module, row in (("msal", "msal"), ("authlib", "authlib")):
        if _installed(module):
            assert row in data["inprocess"], f"{row} is installed but has no row"
        else:
            assert f"{row}: {module} is not installed" in skipped
    if _installed("matplotlib"):
        assert data["plots"] and all(Path(p).is_file() for p in data["plots"])
    else:
        assert "matplotlib is not installed" in skipped
