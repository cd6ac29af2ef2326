"""The layers' arrows, read from the source: edges (cli, integrations, benchmark, testing) -> drivers -> core.

Every ``import`` and ``from ... import`` in the package is found with :mod:`ast`, at any depth
(function-level and ``TYPE_CHECKING`` imports count too), resolved to an absolute module name and
checked against the layer it lands in. A failure lists each offending ``file:line``. ARCHITECTURE.md
describes the layers.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Dict, FrozenSet, Iterator, List, Tuple

import pytest

import oauth_core

PACKAGE_DIR = Path(oauth_core.__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
MAX_LINES = 500
LAYERS = ("core", "drivers", "integrations", "cli", "benchmark", "emulator", "testing")
# What each layer must not import (layer names, or the top-level names of third-party packages).
FORBIDDEN: Dict[str, FrozenSet[str]] = {
    "core": frozenset(
        {"root", "drivers", "integrations", "cli", "benchmark", "emulator", "testing", "httpx", "tenacity"}
    ),
    "drivers": frozenset({"root", "integrations", "cli", "benchmark", "emulator", "testing"}),
    "integrations": frozenset({"cli", "benchmark", "emulator", "testing"}),
    "benchmark": frozenset({"cli", "integrations", "emulator", "testing"}),
    "emulator": frozenset({"drivers", "integrations", "cli", "benchmark", "testing"}),
    "root": frozenset({"cli", "benchmark", "emulator", "testing"}),
    "cli": frozenset({"testing"}),
    # the pytest plugin (an edge beside the emulator): core, drivers, the emulator and the package root
    "testing": frozenset({"cli", "integrations", "benchmark"}),
}
# The layers that may import the emulator.
EMULATOR_USERS = frozenset({"cli", "testing"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[Tuple[int, str]]:
    """``(line, absolute module name)`` for every import in ``source``, the module being ``module``.

    ``from X import name`` yields ``X`` and ``X.name`` (the name may be a submodule); for the
    package itself (``from .. import name``) only ``oauth_core.name``.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != "oauth_core":
                yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def layer_of(module: str) -> str:
    """``core``, ``drivers``, ... for a module of the package, ``root`` for the package itself,
    else the top-level name of a third-party (or standard) module."""
    parts = module.split(".")
    if parts[0] != "oauth_core":
        return parts[0]
    if len(parts) == 1:
        return "root"
    if parts[1] == "__main__":  # ``python -m oauth_core``: the command line's entry point
        return "cli"
    if parts[1] == "__version__":
        return "version"  # a plain string: any layer may show it
    return parts[1] if parts[1] in LAYERS else "root"


def violations(source: str, module: str, is_package: bool, shown_as: str) -> List[str]:
    """Every import of ``source`` that breaks its layer's arrows, as ``file:line: what``."""
    own = layer_of(module)
    found: Dict[Tuple[int, str], str] = {}  # one report per line and layer: the first (outermost) module
    for line, target in imported_modules(source, module, is_package):
        target_layer = layer_of(target)
        if target_layer == own or (line, target_layer) in found:
            continue
        if target_layer in FORBIDDEN.get(own, frozenset()):
            found[line, target_layer] = f"{own} must not import {target_layer}"
        elif target_layer == "emulator" and own not in EMULATOR_USERS:
            found[line, target_layer] = "only cli and testing may import the emulator"
        else:
            continue
        found[line, target_layer] = f"{shown_as}:{line}: {module} imports {target} ({found[line, target_layer]})"
    return [found[key] for key in sorted(found)]


def _package_files() -> List[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_package_has_every_layer() -> None:
    layers = {layer_of(_module_name(p)) for p in _package_files()}
    assert set(LAYERS) <= layers, set(LAYERS) - layers


def test_imports_follow_the_arrows() -> None:
    found: List[str] = []
    for path in _package_files():
        found += violations(path.read_text(encoding="utf-8"), _module_name(path), _is_package(path), _shown(path))
    assert not found, "imports against the layers (see ARCHITECTURE.md):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "source", "says"),
    [
        ("oauth_core.core.x", "def f():\n    from ..drivers import sync\n", "core must not import drivers"),
        ("oauth_core.core.x", "from oauth_core.integrations.databricks import call\n", "core must not import"),
        ("oauth_core.core.x", "from .. import EntraClient\n", "core must not import root"),
        ("oauth_core.core.x", "import httpx\n", "core must not import httpx"),
        ("oauth_core.core.x", "if TYPE_CHECKING:\n    import tenacity.retry\n", "core must not import tenacity"),
        ("oauth_core.drivers.x", "from ..cli import main\n", "drivers must not import cli"),
        ("oauth_core.drivers.x", "from oauth_core import emulator\n", "drivers must not import emulator"),
        ("oauth_core.integrations.x", "from ..benchmark import Grant\n", "integrations must not import benchmark"),
        ("oauth_core.benchmark.x", "from ...emulator import Emulator\n", "benchmark must not import emulator"),
        ("oauth_core.emulator.x", "from ..drivers.sync import fetch\n", "emulator must not import drivers"),
        ("oauth_core.testing.x", "from ..cli import main\n", "testing must not import cli"),
        ("oauth_core.testing.x", "from ..integrations import EntraAuth\n", "testing must not import integrations"),
        ("oauth_core.cli.x", "from ..testing.fixture import EntraEmulator\n", "cli must not import testing"),
        ("oauth_core.drivers.x", "from oauth_core import testing\n", "drivers must not import testing"),
        ("oauth_core.x", "from .testing import EntraEmulator\n", "root must not import testing"),
    ],
)
def test_the_checker_sees_a_wrong_arrow(module: str, source: str, says: str) -> None:
    found = violations(source, module, False, "x.py")
    assert found and all(item.startswith("x.py:") for item in found), found
    assert any(says in item for item in found), found


def test_the_checker_allows_the_right_arrows() -> None:
    allowed = [
        ("oauth_core.core.x", "from .errors import ConfigError\nimport json\n"),
        ("oauth_core.drivers.x", "from ..core.protocol import HttpRequest\nimport httpx\n"),
        ("oauth_core.integrations.x", "from ..drivers.sync import EntraClient\n"),
        ("oauth_core.cli.x", "def f():\n    from ..emulator import Emulator\n"),
        ("oauth_core.emulator.x", "from ..core.pkce import values_match\n"),
        ("oauth_core.drivers.x", "from .. import __version__\n"),
        ("oauth_core.__main__", "from .cli import main\n"),
        ("oauth_core.testing.x", "from ..emulator import Emulator\nfrom ..core.errors import ConfigError\n"),
        ("oauth_core.testing.x", "from ..drivers.sync import EntraClient\nfrom .. import EntraClient\n"),
    ]
    for module, source in allowed:
        assert violations(source, module, False, "x.py") == [], module


def test_relative_imports_resolve_from_packages_and_modules() -> None:
    as_package = [name for _, name in imported_modules("from .sync import X\n", "oauth_core.drivers", True)]
    as_module = [name for _, name in imported_modules("from ..core import pkce\n", "oauth_core.drivers.sync", False)]
    assert "oauth_core.drivers.sync" in as_package
    assert "oauth_core.core.pkce" in as_module


def test_no_module_is_over_500_lines() -> None:
    long = [
        f"{_shown(p)}:{count}: {count} lines (at most {MAX_LINES})"
        for p in _package_files()
        if (count := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, "modules to split:\n" + "\n".join(long)


def test_every_public_name_resolves() -> None:
    missing = [name for name in oauth_core.__all__ if getattr(oauth_core, name, None) is None]
    assert not missing, missing
    for name in ("FileTokenCache", "MemoryTokenCache"):
        assert name in oauth_core.__all__, name
        assert getattr(oauth_core, name).__module__ == "oauth_core.drivers.stores"


def test_the_error_module_knows_nothing_of_the_cli() -> None:
    path = Path(inspect.getsourcefile(oauth_core.OAuthCoreError) or "")
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [
        f"{_shown(path)}:{number}: {text.strip()}"
        for number, text in enumerate(lines, 1)
        if "exit_code" in text or "oauth-core " in text
    ]
    assert not found, "the CLI's exit codes and command names belong in cli/:\n" + "\n".join(found)
