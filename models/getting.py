"""`deskhand models get NAME` and the first-run dialog's Get button: a catalogue model from its
official checkpoint on the Hub to this machine's default model, through one function.

Stages, each resumable (running the same command again continues where it stopped):
1. download the checkpoint (`models.download`: `.part` files continued with Range requests,
   every file checked against the sha256 in the Hub's listing), registered as `<name>-checkpoint`;
2. export it to int4 ONNX on this machine in a child process (`deskhand models export` through
   `agent.childproc`: progress events per stage with an ETA; finished export stages are kept);
3. the export is registered as `<name>` and becomes the registry's default model.
Size, free disk (download plus export) and consent are settled before the first byte is fetched.
The export needs the `export` extra (torch, transformers, onnxruntime-genai), which the app's
set-up profile leaves out; `export_extra_missing` / `install_export_extra` say what to install
and install it with consent.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from agent.childproc import Progress
from models.catalogue import CatalogueEntry, entries, entry
from models.download import DownloadCancelled, DownloadPlan, download_model, plan_download
from models.registry import ModelEntry, ModelError, Registry, check_name, human_size

EXPORT_TARGET = "models.cli:main"  # `deskhand models ARGS`, run in a child by agent/childproc
# The CPU build of torch: about 0.8 GB installed instead of several GB of CUDA libraries.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_EXPORT_MODULES = ("torch", "transformers", "onnxruntime_genai", "onnx", "onnx_ir", "onnxscript",
                   "safetensors")
OnEvent = Callable[[Progress], None]


class GetCancelled(ModelError):
    """The caller cancelled; what arrived (download parts, export stages) is kept for resuming."""


@dataclass(frozen=True)
class GetPlan:
    """What `get_model` will do, shown before asking."""

    entry: CatalogueEntry
    model: str                      # the export's registered name (the default afterwards)
    checkpoint: str                 # the downloaded checkpoint's registered name
    download: DownloadPlan | None   # None: the checkpoint is already here
    export_done: bool
    free_bytes: int

    @property
    def needed_bytes(self) -> int:
        left = self.download.total_bytes - self.download.already if self.download else 0
        return left + (0 if self.export_done else self.entry.download_bytes)

    def describe(self) -> str:
        lines = [f"{self.entry.name}: {self.entry.note or self.entry.parameters}"]
        if self.download is not None:
            lines.append("1. download the checkpoint:\n" + self.download.describe())
        else:
            lines.append(f"1. checkpoint {self.checkpoint!r} already downloaded")
        lines.append(f"2. export to int4 ONNX here (about {human_size(self.entry.download_bytes)}"
                     f"), registered as {self.model!r}" if not self.export_done
                     else f"2. {self.model!r} already exported")
        lines.append(f"3. make {self.model!r} the default model")
        lines.append(f"disk: {human_size(self.needed_bytes)} needed, "
                     f"{human_size(self.free_bytes)} free")
        return "\n".join(lines)


def names(e: CatalogueEntry) -> tuple[str, str]:
    """(export name, checkpoint name) registered for a catalogue entry."""
    base = check_name(re.sub(r"[^a-z0-9._-]+", "-", e.name.casefold()))
    return base, f"{base}-checkpoint"


def plan_get(name: str, registry: Registry | None = None) -> GetPlan:
    """Look the model up in the catalogue and the Hub (metadata only); refuse a too-full disk."""
    registry = registry or Registry()
    try:
        item = entry(name)
    except KeyError:
        known = ", ".join(e.name.casefold() for e in entries() if e.hub_repo)
        raise ModelError(f"no catalogue model {name!r}; `deskhand models get` knows: {known}"
                         ) from None
    if not item.hub_repo:
        raise ModelError(f"{item.name} has no published checkpoint Deskhand can export yet")
    model, checkpoint = names(item)
    export_done = model in registry
    download = None
    if not export_done and checkpoint not in registry:
        download = plan_download(item.hub_repo, name=checkpoint, registry=registry)
    root = registry.root
    while not root.exists() and root != root.parent:
        root = root.parent
    plan = GetPlan(item, model, checkpoint, download, export_done, shutil.disk_usage(root).free)
    if plan.needed_bytes > plan.free_bytes:
        raise ModelError(f"not enough disk space for {item.name}: "
                         f"{human_size(plan.needed_bytes)} needed (checkpoint and export), "
                         f"{human_size(plan.free_bytes)} free at {registry.root}")
    return plan


def get_model(name: str, *, confirm: Callable[[GetPlan], bool], on_event: OnEvent | None = None,
              cancel: Any = None, progress: bool = False) -> ModelEntry | None:
    """Plan, ask, download, export, register, make default; None when the user declined.

    `on_event` receives `Progress(stage, done, total, eta_s)` for every stage (download bytes,
    then the exporter's stages); `progress` also draws terminal bars; `cancel` (an Event) stops
    between chunks or export units with GetCancelled, keeping everything for the next run.
    """
    plan = plan_get(name)
    if not plan.export_done and (missing := export_extra_missing()):
        raise ModelError(export_extra_message(missing))
    if not confirm(plan):
        return None
    if plan.download is not None:
        clock = _Clock("download")
        try:
            download_model(plan.entry.hub_repo, revision=plan.download.commit,
                           name=plan.checkpoint, confirm=lambda _p: True, progress=progress,
                           on_progress=lambda d, t: on_event and on_event(clock.event(d, t)),
                           cancel=cancel)
        except DownloadCancelled as exc:
            raise GetCancelled(str(exc)) from exc
    registry = Registry()
    if not plan.export_done:
        run_export(str(registry.get(plan.checkpoint).folder), plan.model, on_event, cancel)
    registry.set_default(plan.model)
    return registry.get(plan.model)


def run_export(folder: str, name: str, on_event: OnEvent | None, cancel: Any) -> None:
    """`deskhand models export FOLDER --name NAME` in a child; its stage events go to on_event."""
    from agent.childproc import ChildCancelled, ChildError, run_child

    try:
        run_child(EXPORT_TARGET, ["export", folder, "--name", name], on_event=on_event,
                  cancel=cancel)
    except ChildCancelled as exc:
        raise GetCancelled("export stopped; finished stages are kept, run it again to continue"
                           ) from exc
    except ChildError as exc:
        raise ModelError(f"the export did not finish (exit code {exc.exit_code}): "
                         f"{exc.last_line()[:300]}; run the same command again to continue"
                         ) from exc


class _Clock:
    """Progress events with an ETA from the rate so far (bytes already there do not count)."""

    def __init__(self, stage: str) -> None:
        self.stage, self.start, self.first = stage, time.monotonic(), None

    def event(self, done: float, total: float) -> Progress:
        if self.first is None:
            self.first = done
        rate_done = done - self.first
        eta = ((time.monotonic() - self.start) / rate_done * (total - done)
               if rate_done > 0 and total >= done else None)
        return Progress(self.stage, done, total, eta)


# --- the export extra ---------------------------------------------------------------------------

def export_extra_missing() -> list[str]:
    """The modules of the `export` extra this Python lacks (empty: export can run)."""
    return [m for m in _EXPORT_MODULES if importlib.util.find_spec(m) is None]


def install_command() -> list[str]:
    """The pip command that installs the export extra into this Python (CPU torch)."""
    try:
        reqs = [r.split(";")[0].strip() for r in metadata.requires("deskhand") or []
                if re.search(r"""extra\s*==\s*["']export["']""", r)]
    except metadata.PackageNotFoundError:
        reqs = []
    return [sys.executable, "-m", "pip", "install", "--extra-index-url", TORCH_CPU_INDEX,
            *(reqs or ["deskhand[export]"])]


def export_extra_message(missing: list[str]) -> str:
    return ("exporting the checkpoint needs the export extra (missing: " + ", ".join(missing)
            + "), about 1 GB with the CPU build of torch. Install it with:\n  "
            + " ".join(_quote(a) for a in install_command())
            + "\n(or run `deskhand models get` with --install-export, or scripts/setup.sh dev)")


def install_export_extra(on_line: Callable[[str], None] | None = None) -> None:
    """Run `install_command()` (the caller asked the user first), streaming pip's lines."""
    proc = subprocess.Popen(install_command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if on_line is not None:
            on_line(line.rstrip())
    if proc.wait() != 0:
        raise ModelError(f"installing the export extra failed (pip exit code {proc.returncode})")
    importlib.invalidate_caches()


def _quote(arg: str) -> str:
    return f"'{arg}'" if re.search(r"[\[\]<>=* ]", arg) else arg
