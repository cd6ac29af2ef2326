"""The public surface: a sorted, complete __all__, lazy imports of heavy dependencies, py.typed."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Set

import pytest

import oauth_core
from oauth_core.core import errors

PACKAGE_DIR = Path(oauth_core.__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
HEAVY = ("httpx", "jwt", "tenacity", "cryptography")


def test_all_is_sorted_and_unique() -> None:
    assert list(oauth_core.__all__) == sorted(oauth_core.__all__)
    assert len(set(oauth_core.__all__)) == len(oauth_core.__all__)
    assert "__version__" in oauth_core.__all__


@pytest.mark.parametrize("name", oauth_core.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(oauth_core, name)
    assert value is not None
    if isinstance(value, type):
        assert value.__name__ == name
        assert value.__module__.startswith("oauth_core.")


def test_exports_are_the_submodule_objects() -> None:
    from oauth_core.core import authority, authorize, claims, protocol

    assert oauth_core.Authority is authority.Authority
    assert oauth_core.PendingAuthorization is authorize.PendingAuthorization
    assert oauth_core.parse_redirect is authorize.parse_redirect
    assert oauth_core.inspect_token is claims.inspect_token
    assert oauth_core.TokenSet is protocol.TokenSet
    assert oauth_core.OAuthError is errors.OAuthError


def test_every_exception_is_exported() -> None:
    exceptions = {
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), BaseException)
    }
    assert exceptions
    assert exceptions <= set(oauth_core.__all__), exceptions - set(oauth_core.__all__)
    assert "AADSTS" in oauth_core.__all__


def test_submodule_all_lists_resolve() -> None:
    for module_name in (
        "core.authority",
        "core.authorize",
        "core.claims",
        "core.errors",
        "core.pkce",
        "core.protocol",
        "drivers.retry",
    ):
        module = importlib.import_module(f"oauth_core.{module_name}")
        names: List[str] = list(module.__all__)
        assert names, module_name
        for name in names:
            assert hasattr(module, name), f"oauth_core.{module_name}.{name}"


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        oauth_core.NoSuchThing  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        getattr(oauth_core, "oauth_error_from_body_x")


def test_dir_matches_all() -> None:
    assert sorted(dir(oauth_core)) == sorted(oauth_core.__all__)


def test_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc|\.dev|\.post)\d+)?", oauth_core.__version__)


def _reexported_names() -> Set[str]:
    """Names the package imports from its own modules as ``X as X`` (eagerly or for type checkers)."""
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                assert alias.asname == alias.name, f"{alias.name} must be re-exported as `{alias.name} as {alias.name}`"
                names.add(alias.name)
    return names


def test_every_export_is_visible_to_type_checkers() -> None:
    # Strict type checkers see an export only through an explicit `X as X` import.
    assert _reexported_names() == set(oauth_core.__all__) - {"__version__"}


def _loaded_after(code: str) -> List[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True, cwd=str(ROOT)
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "code",
    [
        "import oauth_core",
        "import oauth_core.core.claims",
        "import oauth_core.cli",
        "import oauth_core.core.errors, oauth_core.core.authority, oauth_core.core.pkce",
        "import oauth_core.core.protocol, oauth_core.core.authorize",
        "import oauth_core; oauth_core.unverified_claims; oauth_core.inspect_token; oauth_core.Authority",
        "import oauth_core; oauth_core.build_authorization_request; oauth_core.parse_token_response",
        "import oauth_core; oauth_core.TokenDecodeError; oauth_core.AADSTS",
    ],
)
def test_light_imports_do_not_load_heavy_dependencies(code: str) -> None:
    loaded = _loaded_after(code)
    assert not {"httpx", "jwt", "tenacity"} & set(loaded), loaded


def test_lazy_exports_do_load_on_use() -> None:
    # proves the check above can see an import: the retry policy needs tenacity
    assert "tenacity" in _loaded_after("import oauth_core; oauth_core.RetryPolicy")


def test_py_typed_ships() -> None:
    marker = PACKAGE_DIR / "py.typed"
    assert marker.is_file()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'(?m)^\[tool\.setuptools\.package-data\]\s*\n\s*oauth_core\s*=\s*\[[^\]]*"py\.typed"', pyproject)
    assert '"Typing :: Typed"' in pyproject


def test_strict_type_checkers_see_the_exports(tmp_path: Path) -> None:
    # With `mypy --strict` (no implicit re-export) a user's `from oauth_core import X` must type-check:
    # that needs an __all__ mypy can read statically, or `import X as X` re-exports.
    pytest.importorskip("mypy", reason="mypy is not installed")
    names = [name for name in oauth_core.__all__ if name != "__version__"]
    user = tmp_path / "user_code.py"
    user.write_text(
        "import oauth_core\n"
        f"from oauth_core import {', '.join(names)}\n"
        "authority: oauth_core.Authority = oauth_core.Authority.of()\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(user),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    assert "does not explicitly export" not in result.stdout, result.stdout[:2000]
    assert result.returncode == 0, result.stdout[:2000]
