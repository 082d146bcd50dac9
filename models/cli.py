"""`deskhand models ...`: list, import, verify, download, default, remove, export.

`app/commands` calls `register(subparsers)` to add the `models` command and `run(args)` to run it.
Exit codes: 0 done, 1 declined or verification failed, 2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from agent.childproc import in_child, report_progress
from agent.options import Provider
from agent.termtext import visible
from models.export.pipeline import BLOCK_SIZES, DEFAULT_BLOCK_SIZE, PROVIDERS
from models.importing import import_model
from models.manifest import load_manifest, verify_manifest, write_manifest
from models.registry import (
    ModelEntry,
    ModelError,
    Registry,
    check_name,
    human_size,
    name_from,
)
from models.validate import validate_folder


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `models` command (with its sub-commands) to a top-level argparse subparsers."""
    description = ("Manage the models Deskhand can run. With nothing registered, the "
                   "installation's built-in model is used when it has one (listed as 'nano', "
                   "from assets/models/nano; DESKHAND_BUILTIN_MODEL=DIR or empty to switch it "
                   "off); for real tasks get a full model (`models get fara-7b`).")
    parser = subparsers.add_parser("models", help="manage local models (list, import, download…)",
                                   description=description)
    sub = parser.add_subparsers(dest="models_command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="show registered models and the built-in one")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("import", help="register an existing model folder (kept in place)")
    p.add_argument("dir", metavar="DIR", help="onnxruntime-genai folder or Hugging Face checkpoint")
    p.add_argument("--name", help="name to register it under (default: the folder name)")
    p.add_argument("--copy", action="store_true",
                   help="copy the folder into Deskhand's model folder instead of using it in place")

    p = sub.add_parser("verify", help="check a model's files (re-hashes against deskhand.json)")
    p.add_argument("name", metavar="NAME")

    p = sub.add_parser("download", help="download a model from the Hugging Face Hub")
    p.add_argument("repo_id", metavar="REPO_ID", help="an onnxruntime-genai folder or checkpoint")
    p.add_argument("--revision", help="branch, tag or commit (default: main)")
    p.add_argument("--subfolder", help="folder inside the repo holding genai_config.json")
    p.add_argument("--name", help="name to register it under")
    p.add_argument("--yes", "-y", action="store_true", help="don't ask before downloading")

    p = sub.add_parser(
        "get", help="get a catalogue model: download its checkpoint, export, make it default",
        description="Download a catalogue model's official checkpoint from the Hugging Face Hub "
        "(size, free disk and consent first; resumable; every file checked against the Hub's "
        "sha256), export it to int4 ONNX on this machine, register it and make it the default "
        "model. Each stage resumes when the command is run again. The export needs the "
        "export extra (torch, transformers, onnxruntime-genai; about 1 GB with CPU torch).")
    p.add_argument("name", metavar="NAME", help="catalogue name, e.g. fara-7b")
    p.add_argument("--yes", "-y", action="store_true", help="don't ask before downloading")
    p.add_argument("--install-export", action="store_true",
                   help="install the export extra with pip when it is missing (asks first "
                   "unless --yes)")

    p = sub.add_parser("default", help="choose the model `deskhand run` uses without --model")
    p.add_argument("name", metavar="NAME")

    p = sub.add_parser("remove", help="unregister a model (deletes files Deskhand downloaded)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--yes", "-y", action="store_true", help="don't ask for confirmation")

    p = sub.add_parser("export", help="convert a Hugging Face checkpoint to ONNX and register it")
    p.add_argument("hf_dir", metavar="HF_DIR", help="checkpoint folder or registered 'hf' model")
    p.add_argument("--name", help="name to register the result under")
    p.add_argument("--precision", choices=("int4", "fp16", "fp32"), default="int4")
    p.add_argument("--provider", choices=PROVIDERS, default=Provider.CPU.value)
    p.add_argument("--vision-quant", choices=("auto", "none", "int8", "int4"), default="auto",
                   help="quantize the vision and embedding weights too (auto: int8 with an int4 "
                   "decoder, which encodes screenshots about 1.4x faster on CPUs at about 2%% "
                   "feature error; none otherwise)")
    p.add_argument("--block-size", type=int, choices=BLOCK_SIZES, default=DEFAULT_BLOCK_SIZE,
                   help="weights per quantization scale for int4/int8 weights (default 128; "
                   "smaller is slightly more accurate and slower to prefill on CPUs)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed `deskhand models ...` command; returns the process exit code."""
    handler = _COMMANDS[args.models_command]
    registry = Registry()
    try:
        return handler(args, registry)
    except ModelError as exc:  # may quote a server or a file: shown, never obeyed
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:  # a damaged registry.json: what was skipped and where the backup is
        for note in registry.notes:
            print(f"warning: {visible(note)}", file=sys.stderr)


def main(argv: Sequence[str]) -> int:
    """`deskhand models ARGV` on its own (the app runs its export this way, in a child)."""
    parser = argparse.ArgumentParser(prog="deskhand")
    register(parser.add_subparsers(dest="command"))
    return run(parser.parse_args(["models", *argv]))


def confirm(question: str, assume_yes: bool = False) -> bool:
    """Ask a yes/no question on the terminal; no answer (no terminal) counts as no."""
    if assume_yes:
        return True
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, OSError):
        print("\n(no answer; pass --yes to skip this question)", file=sys.stderr)
        return False
    return answer.strip().lower() in ("y", "yes")


def _list(args: argparse.Namespace, registry: Registry) -> int:
    entries, default = registry.entries(), registry.effective_default()
    if args.json:
        print(json.dumps([{**asdict(e), "default": e.name == default} for e in entries],
                         indent=1))
        return 0
    if not entries:
        print("No models registered. Add one with `deskhand models get fara-7b`, "
              "`deskhand models download REPO_ID`, "
              "`deskhand models import DIR` or `deskhand models export HF_DIR`.")
        return 0
    rows = [("NAME", "FORMAT", "SIZE", "ADDED", "STORED", "PATH")]
    for e in entries:
        missing = "" if e.folder.is_dir() else " (missing!)"
        rows.append((e.name + (" *" if e.name == default else ""), e.format,
                     human_size(e.size_bytes), e.added[:10],
                     "built in" if registry.is_builtin(e.name) else
                     "registry" if e.owned else "in place", e.path + missing))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[5])
    if default:
        print("* default model (used by `deskhand run` without --model)")
    return 0


def _default(args: argparse.Namespace, registry: Registry) -> int:
    entry = registry.set_default(args.name)
    print(f"{entry.name} is now the default model")
    return 0


def _import(args: argparse.Namespace, registry: Registry) -> int:
    entry = import_model(args.dir, name=args.name, copy=args.copy, registry=registry,
                         progress=True)
    where = "copied into the registry" if entry.owned else "registered in place"
    print(f"{entry.name}: {entry.format} model ({entry.model_type}), "
          f"{human_size(entry.size_bytes)}, {where} at {entry.path}")
    return 0


def _verify(args: argparse.Namespace, registry: Registry) -> int:
    entry = registry.get(args.name)
    report = validate_folder(entry.folder)
    if not report.ok:
        print(report.summary())
        return 1
    for warning in report.warnings:
        print(f"warning: {warning}")
    result = verify_manifest(entry.folder, progress=True)
    if not result.has_manifest:
        print(f"{entry.name}: structure OK; no deskhand.json manifest, so file contents "
              "were not checked")
        return 0
    if result.ok:
        print(f"{entry.name}: all {result.checked} files match deskhand.json")
        return 0
    for rel in result.mismatched:
        print(f"  changed: {rel} (sha256 differs from deskhand.json)")
    for rel in result.missing:
        print(f"  missing: {rel}")
    print(f"{entry.name}: verification FAILED; re-download or re-export this model")
    return 1


def _remove(args: argparse.Namespace, registry: Registry) -> int:
    entry = registry.get(args.name)
    deletes = registry.deletes_files(entry)
    action = (f"delete {entry.path} ({human_size(entry.size_bytes)})" if deletes
              else f"unregister it (the folder {entry.path} is kept)")
    if not confirm(f"Remove model {entry.name!r}: {action}?", args.yes):
        print("nothing removed")
        return 1
    _, deleted = registry.remove(entry.name)
    print(f"removed {entry.name}" + (" and deleted its files" if deleted else ""))
    return 0


def _download(args: argparse.Namespace, registry: Registry) -> int:
    from models.download import DownloadPlan, download_model

    def ask(plan: DownloadPlan) -> bool:
        print(visible(plan.describe()))  # remote file names must not rewrite the question
        return confirm(f"Download {human_size(plan.total_bytes)}?", args.yes)

    entry = download_model(args.repo_id, revision=args.revision, subfolder=args.subfolder,
                           name=args.name, confirm=ask, progress=True, registry=registry)
    if entry is None:
        print("nothing downloaded")
        return 1
    print(f"{entry.name}: downloaded and registered ({human_size(entry.size_bytes)}) at {entry.path}")
    return 0


def _get(args: argparse.Namespace, registry: Registry) -> int:
    from models import getting

    missing = getting.export_extra_missing()
    if missing and args.install_export:
        command = " ".join(getting.install_command())
        if not confirm(f"Install the export extra ({', '.join(missing)}) with `{command}`?",
                       args.yes):
            print("nothing installed")
            return 1
        getting.install_export_extra(print)

    def ask(plan: getting.GetPlan) -> bool:
        print(visible(plan.describe()))  # remote file names must not rewrite the question
        return confirm(f"Get {plan.entry.name} ({human_size(plan.needed_bytes)} of disk)?",
                       args.yes)

    bars = _StageBars()
    entry = getting.get_model(args.name, confirm=ask, on_event=bars.show, progress=True)
    bars.close()
    if entry is None:
        print("nothing downloaded")
        return 1
    print(f"{entry.name}: ready and the default model ({human_size(entry.size_bytes)} at "
          f"{entry.path}); the checkpoint is kept for re-exports "
          f"(`deskhand models remove {getting.names(getting.entry(args.name))[1]}` frees it)")
    return 0


class _StageBars:
    """One terminal bar (with tqdm's ETA) per export stage, from the child's progress events."""

    def __init__(self) -> None:
        self._stage, self._bar = "", None

    def show(self, event) -> None:
        if event.stage == "download":
            return  # the download draws its own bar
        from tqdm import tqdm

        if event.stage != self._stage:
            self.close()
            self._stage = event.stage
            self._bar = tqdm(total=event.total, desc=f"export: {event.stage}", mininterval=0.5)
        self._bar.n = event.done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _export(args: argparse.Namespace, registry: Registry) -> int:
    hf_dir = Path(args.hf_dir).expanduser()
    if not hf_dir.is_dir() and args.hf_dir in registry:
        hf_dir = registry.get(args.hf_dir).folder
    if not hf_dir.is_dir():
        raise ModelError(f"{args.hf_dir} is neither a folder nor a registered model")
    name = check_name(args.name or name_from(f"{hf_dir.name}-{args.precision}-{args.provider}"))
    if name in registry:
        raise ModelError(f"a model named {name!r} is already registered; choose another --name")
    target = registry.owned_folder(name)
    if target.exists():
        raise ModelError(f"{target} already exists; remove it or choose another --name")
    try:
        from models.export import export_model
    except ImportError as exc:
        raise ModelError(f"export needs the export extra: pip install 'deskhand[export]' ({exc})"
                         ) from exc
    # Export into a hidden staging folder, then rename: an interrupted export never looks like
    # a registered (or registrable) model. The staging folder survives a failure or Ctrl+C so
    # that running the same command again skips the stages already finished.
    staging = registry.root / f".export-{name}"
    staging.mkdir(parents=True, exist_ok=True)
    vision_quant = {"none": None, "auto": "int8" if args.precision == "int4" else None}.get(
        args.vision_quant, args.vision_quant)
    try:  # run by the app through agent/childproc, stage progress also goes to it as events
        export_model(hf_dir, staging, precision=args.precision, provider=args.provider,
                     vision_quant=vision_quant, block_size=args.block_size, progress=True,
                     on_progress=report_progress if in_child() else None)
    except (ValueError, RuntimeError, OSError) as exc:  # the exporter's message is for users
        raise ModelError(f"export of {hf_dir} failed: {exc}\nFinished stages are kept in "
                         f"{staging}; run the same command again to continue.") from exc
    if load_manifest(staging) is None:
        write_manifest(staging, progress=True, source=f"export:{hf_dir.resolve()}",
                       precision=args.precision, provider=args.provider)
    os.replace(staging, target)
    try:
        entry: ModelEntry = registry.add(target, name=name, owned=True,
                                         source=f"export:{hf_dir.resolve()}")
    except ModelError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    print(f"{entry.name}: exported ({args.precision}, {args.provider}) and registered at "
          f"{entry.path}")
    return 0


_COMMANDS = {"list": _list, "import": _import, "verify": _verify, "download": _download,
             "get": _get, "default": _default, "remove": _remove, "export": _export}
