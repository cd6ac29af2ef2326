"""The Markdown report of a reliability run: a summary table, then one section per part that ran."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str], align: str) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _summary(report: Dict[str, Any]) -> List[str]:
    summary: List[Tuple[str, Any, str]] = []
    fuzz = report.get("fuzz")
    if fuzz is not None:
        cases = sum(r["cases"] for r in fuzz)
        failures = sum(r["failures"] for r in fuzz)
        summary.append(("fuzz cases (all parsers)", cases, f"{failures} failures"))
    faults = report.get("faults")
    if faults is not None:
        summary.append(("fault scenarios", len(faults), f"{sum(r['survived'] for r in faults)} survived"))
    kill = report.get("kill")
    if kill is not None:
        summary.append(("SIGKILL during cache writes", kill["runs"], f"{kill['corrupt']} corrupt caches"))
    secrets = report.get("secrets")
    if secrets is not None:
        summary.append(("secret-leak checks", secrets["checks"], f"{len(secrets['leaks'])} leaks"))
    hardening = report.get("hardening")
    if hardening is not None:
        tried, defects = sum(r["tried"] for r in hardening), sum(len(r["defects"]) for r in hardening)
        summary.append((f"hardening checks ({len(hardening)} red-team attacks)", tried, f"{defects} defects"))
    return [*_table(summary, ["what", "runs", "result"], "lrl"), ""]


def _fuzz_section(fuzz: List[Dict[str, Any]]) -> List[str]:
    rows = [
        (
            r["parser"],
            r["cases"],
            r["typed_errors"],
            r["failures"],
            "; ".join(f"{k} on {v}" for k, v in r["examples"].items())[:160],
        )
        for r in fuzz
    ]
    header = ["parser", "cases", "typed errors", "failures", "first failing input"]
    return ["### Fuzzing (hypothesis)", "", *_table(rows, header, "lrrrl"), ""]


def _faults_section(faults: List[Dict[str, Any]]) -> List[str]:
    rows = [
        (
            r["scenario"],
            r["attempts"],
            ", ".join(f"{w:g}" for w in r["waits"]) or "-",
            f"{r['seconds']:.2f}",
            r["outcome"],
            "yes" if r["survived"] else "NO",
            r["note"],
        )
        for r in faults
    ]
    header = ["scenario", "requests", "waits (s)", "real s", "caller sees", "survived", "note"]
    return ["### Faults on a real socket (silent refresh, file cache)", "", *_table(rows, header, "lrlrlll"), ""]


def _kill_section(kill: Dict[str, Any]) -> List[str]:
    return [
        "### SIGKILL during cache writes",
        "",
        f"{kill['runs']} runs in {kill['seconds']:.1f} s: {kill['corrupt']} corrupt, {kill['missing']} before the "
        f"first write, {kill['versions_seen']} distinct versions seen, {kill['temp_files_left']} temp files left "
        "by killed writers (0600, never read as the cache).",
        "",
    ]


def _secrets_section(secrets: Dict[str, Any]) -> List[str]:
    return [
        "### Secrets",
        "",
        f"{secrets['flows']} flows and CLI runs; {secrets['secrets']} secret values searched in "
        f"{secrets['surfaces']} surfaces (logs, reprs, errors, tracebacks, CLI output): "
        f"{secrets['checks']} checks, {len(secrets['leaks'])} leaks.",
        *[f"- {leak}" for leak in secrets["leaks"][:20]],
        "",
    ]


def _hardening_section(hardening: List[Dict[str, Any]], seconds: float) -> List[str]:
    rows = [
        (r["number"], r["attack"], r["tried"], len(r["defects"]), f"{r['seconds']:.1f}", r["note"]) for r in hardening
    ]
    tried, defects = sum(r["tried"] for r in hardening), sum(len(r["defects"]) for r in hardening)
    rows.append(("", f"**total ({len(hardening)} attacks)**", tried, defects, "", ""))
    header = ["#", "attack", "tried", "defects", "s", "note"]
    found = [f"- {r['number']}. {defect}" for r in hardening for defect in r["defects"]]
    return [
        "### Hardening (issue 11's red-team attacks, tried again)",
        "",
        f"{len(hardening)} attacks in {seconds:.1f} s over loopback sockets and `python -m oauth_core` processes "
        f"(three lanes at once; s is each attack's own time): {tried} checks tried, {defects} defects.",
        "",
        *_table(rows, header, "rlrrrl"),
        "",
        *(["Defects:", "", *found[:40], ""] if found else []),
    ]


def markdown(report: Dict[str, Any]) -> str:
    lines = [f"## Reliability ({report['mode']} run, {report['seconds']:.0f} s, oauth-core {report['version']})", ""]
    lines += _summary(report)
    if report.get("fuzz") is not None:
        lines += _fuzz_section(report["fuzz"])
    if report.get("faults") is not None:
        lines += _faults_section(report["faults"])
    if report.get("kill") is not None:
        lines += _kill_section(report["kill"])
    if report.get("secrets") is not None:
        lines += _secrets_section(report["secrets"])
    if report.get("hardening") is not None:
        lines += _hardening_section(report["hardening"], report.get("hardening_seconds", 0.0))
    return "\n".join(lines)
