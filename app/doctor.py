"""Every `deskhand doctor` check, in order, for the command line and the first-run dialog.

The machine checks are `agent/doctor.py`'s; the ones here need the model registry: the default
model (the one the app and `deskhand run` use, see `app/model_choice.py`) is verified, and RAM
and free disk are measured against what it needs. No Qt here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from agent import doctor
from agent.doctor import Check, Level

GIB = 1 << 30
# Without a model yet: what getting Fara-7B needs (the official bf16 checkpoint, ~16.6 GB, plus
# its int4 export, ~6 GB) and what running that export needs (weights, ~6 GB, KV cache, arena).
SETUP_DISK = 24 * GIB
SETUP_RAM = 8 * GIB
RUNS_DISK = 1 * GIB  # screenshots of recorded runs
RAM_OVER_WEIGHTS = 1.3  # peak RSS against the weight files (the runtime's target, issue 12)
RAM_BASE = 1 * GIB  # the app, the tokenizer, the screenshots


def default_model() -> tuple[str, Path | None, Check]:
    """The default model's name, folder and its check line."""
    from app.model_choice import model_name
    from app.settings import load_settings

    name = model_name(load_settings())
    if not name:
        return "", None, Check("model", Level.FAIL, "no model is set up yet",
                               "open the app (its first-run dialog gets one), or `deskhand "
                               "models import DIR` / `export HF_DIR`, then `deskhand models "
                               "default NAME`")
    return (name, *_verify(name))


def _verify(name: str) -> tuple[Path | None, Check]:
    from models.registry import ModelError, Registry
    from models.validate import validate_folder

    try:
        registry = Registry()
        folder = registry.get(name).folder if name in registry else Path(name).expanduser()
    except ModelError as exc:
        return None, Check("model", Level.FAIL, str(exc), "fix or move aside registry.json")
    fix = (f"`deskhand models remove {name}` and get it again (`deskhand models import`, "
           "`export` or `download`), or choose another with `deskhand models default NAME`")
    if not folder.is_dir():
        return None, Check("model", Level.FAIL, f"{name}: {folder} does not exist", fix)
    report = validate_folder(folder)
    if not report.ok:
        return folder, Check("model", Level.FAIL, f"{name}: " + "; ".join(report.errors), fix)
    hashed = " (sizes checked against its manifest; `deskhand models verify " \
             f"{name}` checks every hash)" if report.manifest else " (no manifest to check)"
    return folder, Check("model", Level.OK, f"{name}: valid {report.format} model "
                         f"({report.model_type}){hashed}")


def _resources(folder: Path | None, name: str) -> list[Check]:
    from agent.paths import data_dir, models_dir
    from models.validate import folder_size

    if folder is None:
        return doctor.memory_and_disk(SETUP_RAM, SETUP_DISK, models_dir(),
                                      "getting and running Fara-7B (int4)")
    weights = folder_size(folder)
    return doctor.memory_and_disk(int(weights * RAM_OVER_WEIGHTS) + RAM_BASE, RUNS_DISK,
                                  data_dir(), f"{name} ({weights / GIB:.1f} GB of weights)")


def checks() -> Iterator[Check]:
    """Every check, in the order a user fixes them (each yielded as soon as it is done)."""
    display = doctor.display_server()
    yield display
    reachable = display.level is not Level.FAIL
    if reachable:
        yield doctor.screen_capture()
        yield doctor.input_injection()
    yield doctor.cpu_features()
    name, folder, model = default_model()
    yield from _resources(folder, name)
    yield doctor.providers()
    yield model
    yield doctor.offline_guard()
    yield doctor.chromium()


def run_all(on_check: Callable[[Check], None] = lambda _c: None) -> list[Check]:
    """All checks, `on_check` called with each as it finishes."""
    found = []
    for check in checks():
        on_check(check)
        found.append(check)
    return found


def exit_code(found: list[Check]) -> int:
    """1 when anything failed, else 0 (warnings are for reading, not for scripts)."""
    return 1 if any(c.level is Level.FAIL for c in found) else 0


def text_line(check: Check) -> str:
    """`[ok]   display   X11 display :0` and, on the next line, the fix."""
    line = f"[{check.level.value}]".ljust(7) + f"{check.name:<10} {check.detail}"
    return line + (f"\n{'':17}fix: {check.fix}" if check.fix else "")


def to_json(found: list[Check]) -> str:
    """`{"ok": bool, "checks": [{"name", "level", "detail", "fix"}, …]}`."""
    return json.dumps({"ok": exit_code(found) == 0, "checks": [c.to_json() for c in found]},
                      indent=1)
