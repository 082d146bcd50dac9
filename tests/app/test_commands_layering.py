"""The composition root is `app.commands`: the terminal commands stay Qt-free, `agent` stays below.

Checked on live processes (what Python really loads), beside the source scan of
tests/app/test_architecture.py: `deskhand run` and `deskhand runs` never import PySide6, and importing
every `agent` module loads neither `app` nor `models`.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import agent

ROOT = Path(__file__).resolve().parents[2]

# Runs the command line in this process, then reports which top-level packages it loaded.
PROBE = """\
import json, sys
from app.commands import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help exits
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted({m.split('.')[0] for m in sys.modules})}))
"""


def _probe(tmp_path: Path, *argv: str) -> dict:
    env = {**os.environ, "DESKHAND_DATA_DIR": str(tmp_path / "data"),
           "DESKHAND_CONFIG_DIR": str(tmp_path / "config"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "XDG_DATA_HOME": str(tmp_path / "xdg-data")}
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_run_help_and_runs_list_import_no_qt(tmp_path: Path) -> None:
    for argv in (("run", "--help"), ("runs", "list"), ("--help",)):
        report = _probe(tmp_path, *argv)
        assert report["code"] in (0, None), (argv, report)
        assert "app" in report["loaded"]  # the probe really went through the command line
        assert not {"PySide6", "shiboken6"} & set(report["loaded"]), argv


def test_the_command_line_lives_in_app_not_agent() -> None:
    assert not (ROOT / "agent" / "cli.py").exists()
    import app.commands

    assert Path(app.commands.__file__).parent == ROOT / "app" / "commands"


def test_importing_every_agent_module_loads_no_app_or_models() -> None:
    names = sorted(m.name for m in pkgutil.walk_packages(agent.__path__, "agent.")
                   if not m.name.split(".")[-1].startswith("_"))
    assert "agent.loop" in names and "agent.eval.runner" in names and len(names) > 40
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError:\n"
            "        pass  # an optional extra missing here: what it loaded so far still counts\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    above = [m for m in loaded if m.split(".")[0] in ("app", "models", "PySide6")]
    assert above == []
