"""A new user's path to a model, walked at full size (issue 12): a fresh Deskhand home, a loopback
fake of the Hugging Face Hub serving CHECKPOINT_DIR (e.g. a Fara-7B-shaped checkpoint from
`app.bench.checkpoints.make_fara_shaped_checkpoint(..., text_layers=28, vision_blocks=32)`), and
the first-run dialog's Get button pressed (the code behind `deskhand models get`): download with
hashes, export in a child process, register, default. Then the app's model is loaded and warmed
up as the app does at start. Prints each stage's wall time, the download rate, the peak private
and mapped memory of every process involved (sampled every 0.5 s), disk used, and load +
warm-up time. Nothing leaves 127.0.0.1. Usage (under Xvfb or with QT_QPA_PLATFORM=offscreen):

    .venv/bin/python scripts/walk_first_run.py CHECKPOINT_DIR --home DIR [--json OUT]
        [--cli]            # `deskhand models get NAME --yes` in a child instead of the dialog
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAME = "Fara-7B-shaped"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--home", type=Path, required=True, help="a fresh Deskhand home (created)")
    p.add_argument("--json", type=Path)
    p.add_argument("--cli", action="store_true",
                   help="the CLI equivalent: `deskhand models get NAME --yes` in a child process")
    args = p.parse_args(argv)
    if args.home.exists() and any(args.home.iterdir()):
        p.error(f"{args.home} is not empty: the walk starts from a fresh home")
    for kind in ("DATA", "CONFIG", "CACHE"):
        os.environ[f"DESKHAND_{kind}_DIR"] = str(args.home / kind.lower())
    files = {f.relative_to(args.checkpoint).as_posix(): f
             for f in args.checkpoint.rglob("*") if f.is_file()}
    total = sum(f.stat().st_size for f in files.values())
    from models.catalogue import EXTRA_ENV
    from tests.support.fake_hub import REPO, TINY_CATALOGUE_ENTRY, FakeHub

    catalogue = args.home / "catalogue.json"
    catalogue.parent.mkdir(parents=True, exist_ok=True)
    # The entry's size is the int4 export's, as in the product catalogue (Fara-7B's entry).
    from models.catalogue import entry

    catalogue.write_text(json.dumps([TINY_CATALOGUE_ENTRY | {
        "name": NAME, "parameters": "7B-shaped", "hub_repo": REPO,
        "download_bytes": entry("fara-7b").download_bytes}]))
    os.environ[EXTRA_ENV] = str(catalogue)
    hub = FakeHub(files)
    start = time.perf_counter()
    hub.tree()  # hash once before the clock runs for the user (the real Hub has them ready)
    print(f"serving {len(files)} files, {total / 1e9:.2f} GB (hashed in "
          f"{time.perf_counter() - start:.0f} s)", flush=True)
    threading.Thread(target=hub.serve_forever, args=(0.05,), daemon=True).start()
    os.environ.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1",
                      HF_HUB_DISABLE_IMPLICIT_TOKEN="1")
    os.environ.pop("HF_TOKEN", None)
    result = walk_cli(args, total) if args.cli else walk(args, total)
    hub.shutdown()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result.get("registered") else 1


def walk(args, total: int) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.firstrun import ModelSetupDialog
    from models import getting
    from models.registry import Registry

    app = QApplication.instance() or QApplication(sys.argv[:1])
    stages: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    real = getting.get_model

    def traced(name, **kw):
        outer = kw.get("on_event")

        def on_event(event) -> None:
            now = time.perf_counter() - t0
            first_last = stages.setdefault(event.stage, [now, now])
            first_last[1] = now
            if outer:
                outer(event)
        return real(name, **(kw | {"on_event": on_event}))

    getting.get_model = traced
    memory = MemoryWatch()
    memory.start()
    dialog = ModelSetupDialog(ask=lambda title, text: True, get_name=NAME.lower())
    dialog.show()
    loop, outcome = QEventLoop(), {}
    dialog.model_ready.connect(lambda name: (outcome.update(model=name), loop.quit()))
    def check() -> None:  # a failed job leaves the dialog idle with its message shown
        if dialog.job is None and "model" not in outcome:
            outcome["error"] = dialog.status.text()
            loop.quit()

    watchdog = QTimer()
    watchdog.timeout.connect(check)
    QTimer.singleShot(0, dialog.get_button.click)
    QTimer.singleShot(2000, lambda: watchdog.start(1000))
    loop.exec()
    watchdog.stop()
    wall = time.perf_counter() - t0
    memory.stop()
    result: dict = {"checkpoint_bytes": total, "wall_s": round(wall, 1),
                    "stages_s": {k: round(b - a, 1) for k, (a, b) in stages.items()},
                    "peak_memory_mb": memory.peaks(), "registered": None}
    if "model" not in outcome:
        result["error"] = outcome.get("error") or dialog.status.text()
        return result
    registry = Registry()
    entry = registry.get(registry.default)
    result["registered"] = registry.default
    result["model_disk_bytes"] = sum(f.stat().st_size for f in Path(entry.folder).rglob("*")
                                     if f.is_file())
    if "download" in stages:
        result["download_gb_per_s"] = round(total / 1e9 / max(1e-9, stages["download"][1]
                                                              - stages["download"][0]), 2)
    start = time.perf_counter()
    from agent.inference.onnx import OnnxBackend

    backend = OnnxBackend(entry.folder, provider="cpu")
    result["load_s"] = round(time.perf_counter() - start, 1)
    result["warm_up_s"] = round(backend.warm_up(), 1)
    result["load_and_warm_up_s"] = round(time.perf_counter() - start, 1)
    app.processEvents()
    return result


def walk_cli(args, total: int) -> dict:
    """`deskhand models get NAME --yes` in a child process; its stage lines are timed as read."""
    import subprocess

    from models.registry import Registry

    memory = MemoryWatch()
    memory.start()
    t0 = time.perf_counter()
    command = [sys.executable, "-m", "app.commands", "models", "get", NAME.lower(), "--yes"]
    child = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = [line.rstrip() for line in child.stdout]  # type: ignore[union-attr]
    code = child.wait()
    wall = time.perf_counter() - t0
    memory.stop()
    result: dict = {"checkpoint_bytes": total, "wall_s": round(wall, 1), "exit_code": code,
                    "last_lines": lines[-5:], "peak_memory_mb": memory.peaks(),
                    "registered": None}
    if code == 0:
        registry = Registry()
        result["registered"] = registry.default
        result["model_disk_bytes"] = sum(
            f.stat().st_size for f in Path(registry.get(registry.default).folder).rglob("*")
            if f.is_file())
    return result


class MemoryWatch(threading.Thread):
    """Peak private (RssAnon) and mapped-file (RssFile) memory of this process and its children."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._halt, self._peaks = threading.Event(), {}

    def run(self) -> None:
        me = os.getpid()
        while not self._halt.wait(0.5):
            for pid, name in _family(me).items():
                anon, mapped = _rss(pid)
                peak = self._peaks.setdefault(name, [0, 0])
                peak[0], peak[1] = max(peak[0], anon), max(peak[1], mapped)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peaks(self) -> dict[str, dict[str, int]]:
        return {k: {"private": a, "mapped_file": f} for k, (a, f) in self._peaks.items()}


def _family(root: int) -> dict[int, str]:
    """root and its descendants, each named by its command line's module or script."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        label = next((w for w in words[1:] if not w.startswith("-")), words[0] if words else "?")
        found[pid] = "walk" if pid == root else " ".join(words[1:4])[:80] or label
        todo.extend(children.get(pid, []))
    return found


def _rss(pid: int) -> tuple[int, int]:
    anon = mapped = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) // 1024
            elif line.startswith("RssFile:"):
                mapped = int(line.split()[1]) // 1024
    except OSError:
        pass
    return anon, mapped


if __name__ == "__main__":
    sys.exit(main())
