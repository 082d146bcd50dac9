"""The evaluation harness sits on the agent core: it never reaches up into the command line
(`app.commands`, which imports the harness), the rest of the app or model management."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import agent.eval

EVAL_DIR = Path(agent.eval.__file__).parent
FORBIDDEN = ("app", "models", "PySide6")


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def _imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names, at module level or inside a function."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.lineno, node.module))
            # `from app import commands` names app.commands too
            names += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return names


def test_no_eval_module_imports_the_cli_app_or_models_even_lazily() -> None:
    found = []
    for path in sorted(EVAL_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found += [f"{path.name}:{line} {name}" for line, name in _imported_names(tree)
                  if _forbidden(name)]
    assert found == []


def test_importing_every_eval_module_loads_no_cli_app_or_models() -> None:
    modules = sorted(m.name for m in pkgutil.iter_modules([str(EVAL_DIR)], "agent.eval."))
    assert "agent.eval.runner" in modules and "agent.eval.worker" in modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert [name for name in loaded if _forbidden(name)] == []


def test_the_ast_check_sees_lazy_and_from_imports() -> None:
    tree = ast.parse("def f():\n    from app.commands import load_backend\n"
                     "def g():\n    from app import commands\n    import models.registry\n")
    assert {line for line, n in _imported_names(tree) if _forbidden(n)} == {2, 4, 5}
