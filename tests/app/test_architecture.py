"""The layering and size rules of docs/architecture.md, checked on the source itself.

Import direction: app -> models -> agent. `agent` imports neither `app`, `models` nor Qt; `models`
does not import `app` or Qt. Imports inside functions and `importlib.import_module("...")` with a
literal name count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "app", "models")
# A module longer than this is split by a seam that a newcomer can name (issue 11).
MAX_LINES = 400

FORBIDDEN = {
    "agent": ("app", "models", "PySide6", "shiboken6"),
    "models": ("app", "PySide6", "shiboken6"),
}


def _sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def _top(name: str) -> str:
    return name.split(".", 1)[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package: str) -> None:
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in _sources(package)
           for line, name in imported_modules(path)
           if _top(name) in FORBIDDEN[package]]
    assert not bad, "imports against the layering (app -> models -> agent):\n" + "\n".join(bad)


def test_import_scan_sees_lazy_and_dynamic_imports(tmp_path: Path) -> None:
    # The rule above is only as good as the scanner: it must see what a lazy import hides.
    sample = tmp_path / "sample.py"
    sample.write_text("import importlib\n"
                      "def f():\n    from app.main import main\n"
                      "def g():\n    return importlib.import_module('models.cli')\n")
    names = {name for _, name in imported_modules(sample)}
    assert {"app.main", "models.cli"} <= names


def test_no_module_is_too_long() -> None:
    long = [f"{path.relative_to(ROOT)}: {n} lines"
            for package in PACKAGES for path in _sources(package)
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines (split them by a named seam):\n" + "\n".join(long)
