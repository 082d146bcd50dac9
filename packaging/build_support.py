"""What the bundle is built from, read from pyproject.toml: entry point, version, requirements.

Standard library only: it runs under the base Python before the build venv exists, and inside
the PyInstaller spec. Nothing here names an internal module: the `deskhand` command's module is
whatever `[project.scripts]` says at build time, so moving it never breaks the installers.

    python packaging/build_support.py requirements gui onnx package   one requirement a line
    python packaging/build_support.py version                         0.1.0
    python packaging/build_support.py launcher FILE                   write the bundle's main script
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "deskhand"
LAUNCHER = '''"""The bundle's main script, generated from pyproject's [project.scripts] {command}."""

import multiprocessing
import runpy
import sys


def _python_mode(argv: list[str]) -> bool:
    """Act like `python -c CODE` / `python -m MODULE`: the app starts helpers that way."""
    args = [a for a in argv if a not in ("-S", "-s", "-B", "-u", "-E", "-I")]
    if len(args) >= 2 and args[0] == "-c":
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {{"__name__": "__main__"}})
        return True
    if len(args) >= 2 and args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return True
    return False


if __name__ == "__main__":
    multiprocessing.freeze_support()  # the model's helper process is a spawn child of this binary
    if not _python_mode(sys.argv[1:]):
        from {module} import {function} as _main

        sys.exit(_main())
'''


def project(root: Path = ROOT) -> dict:
    """pyproject.toml's [project] table."""
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def entry_point(root: Path = ROOT, command: str = COMMAND) -> tuple[str, str]:
    """(module, function) of the console script `command`, e.g. ('app.cli', 'main')."""
    target = project(root).get("scripts", {}).get(command)
    match = re.fullmatch(r"\s*([\w.]+)\s*:\s*(\w+)\s*", target or "")
    if not match:
        raise ValueError(f"pyproject.toml: [project.scripts] {command} = {target!r} is not 'module:function'")
    return match.group(1), match.group(2)


def version(root: Path = ROOT) -> str:
    """The project's version."""
    return str(project(root)["version"])


def requirements(extras: list[str], root: Path = ROOT) -> list[str]:
    """The base dependencies plus those of `extras`, without duplicates, in pyproject order."""
    table = project(root)
    optional = table.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise ValueError(f"pyproject.toml has no extra {', '.join(unknown)}")
    found: list[str] = []
    for requirement in [*table.get("dependencies", []), *(r for e in extras for r in optional[e])]:
        if requirement not in found:
            found.append(requirement)
    return found


def launcher_source(root: Path = ROOT) -> str:
    """The bundle's main script: imports the entry point statically, so the bundler sees it."""
    module, function = entry_point(root)
    return LAUNCHER.format(command=COMMAND, module=module, function=function)


def main(argv: list[str]) -> int:
    if argv[:1] == ["requirements"]:
        print("\n".join(requirements(argv[1:])))
    elif argv == ["version"]:
        print(version())
    elif len(argv) == 2 and argv[0] == "launcher":
        Path(argv[1]).parent.mkdir(parents=True, exist_ok=True)
        Path(argv[1]).write_text(launcher_source(), encoding="utf-8")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
