"""Offline mode from a child process's first import: environment out, bootstrap in.

A guarded process hands its children an environment that puts `agent/_offline_boot` first on
PYTHONPATH; its `sitecustomize` runs during interpreter start-up, before `-c`/`-m`, before
multiprocessing unpickles anything and before any library is imported, and calls `bootstrap()`.
So a multiprocessing spawn child, or `subprocess.run([sys.executable, ...])` during a run, is
guarded before its own code runs. Chosen over installing the guard at each child's entry point
because that misses everything imported before the entry point (spawn re-imports the parent's
main module first) and every child we did not write. Python started with -S, -I or -E skips the
bootstrap (a documented limit); non-Python programs are only covered by the OS layer.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

BOOT_DIR = str(Path(__file__).resolve().parent / "_offline_boot")
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def child_environment(*, strict: bool = False, allow: tuple[str, ...] = (),
                      sandbox: bool = False) -> dict[str, str]:
    """Variables that make a Python child guard itself at start-up (`sandbox`: OS layer too)."""
    from agent.offline import OfflineGuard

    path = os.environ.get("PYTHONPATH", "")
    parts = [p for p in path.split(os.pathsep) if p and p != BOOT_DIR]
    env = {"DESKHAND_OFFLINE": "strict" if strict else "1",
           "DESKHAND_OFFLINE_ALLOW": ",".join(allow),
           "DESKHAND_OFFLINE_LOG": str(OfflineGuard.new_child_log()),
           "DESKHAND_OFFLINE_ROOT": PACKAGE_ROOT,
           "PYTHONPATH": os.pathsep.join([BOOT_DIR, *parts])}
    if sandbox:
        env["DESKHAND_SANDBOX"] = "net,syscalls"
    return env


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """`env` in os.environ while a child is started (multiprocessing reads os.environ)."""
    from agent.offline import OfflineGuard

    with OfflineGuard._lock:  # the guard edits os.environ under the same lock
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def bootstrap() -> None:
    """Called by sitecustomize: the OS layer if asked, then the guard for the process's life."""
    mode = os.environ.get("DESKHAND_OFFLINE")
    if not mode:
        return
    if os.environ.get("DESKHAND_OFFLINE_ROOT") and \
            os.environ["DESKHAND_OFFLINE_ROOT"] not in sys.path:
        sys.path.append(os.environ["DESKHAND_OFFLINE_ROOT"])  # agent/ for another interpreter
    try:
        layers = os.environ.pop("DESKHAND_SANDBOX", "")
        if layers:
            from agent import sandbox

            sandbox.isolate(network="net" in layers, syscalls="syscalls" in layers)
        from agent.offline import OfflineGuard

        allow = tuple(h for h in os.environ.get("DESKHAND_OFFLINE_ALLOW", "").split(",") if h)
        guard = OfflineGuard(allow, strict=mode == "strict")
        guard.__enter__()  # for the life of the process; never exited
        sys.modules["agent.offline"].PROCESS_GUARD = guard  # type: ignore[attr-defined]
    except BaseException as exc:  # fail closed: a pixel-holding child never runs unguarded
        sys.stderr.write(f"deskhand: offline mode could not be set up in this process: {exc!r}\n")
        os._exit(70)
