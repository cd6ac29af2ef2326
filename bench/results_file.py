"""``bench/RESULTS.md``: the latest full run's tables, regenerated, above hand-written notes that are kept.

Whatever follows the notes marker in the old file survives the next run, so explanations written
under the figures are never lost to a regeneration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence

from .report import markdown

__all__ = ["NOTES_MARKER", "write_results"]

NOTES_MARKER = "<!-- notes: everything below this line is kept when the file is regenerated -->"


def _machine(meta: Dict[str, Any]) -> str:
    m = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    return "\n".join(
        [
            f"- Date: {meta.get('date')}",
            f"- Command: `{meta.get('command')}`",
            f"- Machine: {m.get('cpu')}, {m.get('nproc')} CPUs (`nproc`), {m.get('memory')} RAM; {m.get('platform')}",
            f"- Load average before / after: {m.get('load_before')} / {m.get('load_after')}",
            f"- Python: {meta.get('python')}",
            f"- Packages: {versions}",
        ]
    )


def write_results(data: Dict[str, Any], path: Path, plot_names: Sequence[str]) -> None:
    """Write ``RESULTS.md`` for a run (plots referenced relative to it), keeping the old notes."""
    notes = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if NOTES_MARKER in old:
            notes = old.split(NOTES_MARKER, 1)[1].strip("\n")
    parts = [
        "# Benchmark results",
        "The latest full run of `python -m bench` (regenerate with `python -m bench --results`). Ratios come "
        "from one run on one machine; absolute times are context only. How to run and what each row means: "
        "the Benchmarks section of the README.",
        _machine(data.get("meta", {})),
        markdown(data).rstrip("\n"),
    ]
    parts += [f"![{Path(name).stem}](plots/{name})" for name in plot_names]
    parts.append(NOTES_MARKER)
    if notes:
        parts.append(notes)
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
