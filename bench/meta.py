"""What every benchmark module writes beside its figures: the run's metadata, and its result files."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence

__all__ = ["load", "run_meta", "say", "versions", "write_results"]


def say(text: str) -> None:
    """Progress on stderr (stdout carries the tables)."""
    print(text, file=sys.stderr, flush=True)


def versions(packages: Iterable[str]) -> Dict[str, str]:
    """The installed version of each package that is installed."""
    found: Dict[str, str] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def load() -> Optional[str]:
    """The 1, 5 and 15 minute load averages, where the system has them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else None


def run_meta(module: str, argv: Sequence[str], packages: Iterable[str]) -> Dict[str, Any]:
    """Date, the exact command, Python, CPUs, load and package versions of a ``python -m <module>`` run."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([f"python -m {module}", *argv]),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "nproc": os.cpu_count(),
        "load_before": load(),
        "versions": versions(packages),
    }


def write_results(out: Path, stem: str, data: Dict[str, Any], markdown: str) -> Path:
    """``<out>/<stem>.json`` and ``<out>/<stem>.md``; returns the JSON file's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n", encoding="utf-8")
    return out / f"{stem}.json"
