"""`deskhand bench`: an agent run of Fara-sized steps, timed per phase on every backend.

Builds a Fara-7B-shaped checkpoint (real widths, heads, vocabulary and vision tower, random
weights, fewer layers), exports it to ONNX, then runs the same agent run (the real Fara prompt,
one new 1428x896 screenshot per step, the newest three kept, `--new-tokens` forced decoded
tokens per step) on each backend in its own process, so each row's peak memory is its own.
Prints per-step times, the cold first step and the steady state (steps 4 on, where the history
window slides) against PyTorch bf16 and fp32, each optimisation's measured gain, costs
extrapolated to the full model, and decode speed against this machine's memory bandwidth.
With `--families fara7b,fara15-4b` it does the same for each family in one run (Fara1.5-4B:
Qwen3.5-4B's widths at `--fara15-layers` hybrid layers; `nano`: Deskhand Nano at its real size,
with its declared prompt and 512x320 screenshots) and prints them side by side.

The package: this module (the command: options, checkpoint and exports, one worker per row),
`families` (what each family builds, runs and scales to), `checkpoints` and `checkpoints_qwen35`
(the random tiny and Fara-shaped checkpoints), `worker` (one measurement, in a child process),
`model` (the cost model) and `report` (the printed report). It sits in the
composition root because it uses both `models` (export) and `agent` (the runtime).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from agent.prompts import declared_system_prompt
from app.bench.families import DEFAULT_FAMILY, FAMILIES, BenchFamily
from app.bench.llamacpp import GGUF_KEY, QUANT, convert
from app.bench.llamacpp import tools as llama_tools
from app.bench.model import Shape, bytes_per_token, extrapolate, measure_bandwidth, weight_bytes
from app.bench.worker import parse_size


@dataclass(frozen=True)
class Variant:
    """One row of the bench: a runner on one model folder with one set of options."""

    runner: str  # "onnx" (Deskhand's loop), "genai" (onnxruntime-genai's pipeline) or "torch"
    model: str  # "hf" or the key of an export in EXPORTS
    dtype: str = "float32"
    vision_cache: bool = True
    prefix_cache: bool = True
    lever: str = ""  # for lever rows: the optimisation this row turns off
    history_scale: float = 1.0  # adaptive compute: earlier screenshots at this fraction
    kv_shift: bool = False  # shifted reuse past the screenshot that left (kv_shift.py)


# Exports the variants run: precision, quantization block size, vision quantization.
EXPORTS = {
    "int4": {"precision": "int4", "block_size": 128, "vision_quant": "int8"},
    "int4-b32": {"precision": "int4", "block_size": 32, "vision_quant": None},
    "fp32": {"precision": "fp32", "block_size": 128, "vision_quant": None},
}
VARIANTS = {
    "onnx-int4": Variant("onnx", "int4"),
    "onnx-int4-nocache": Variant("onnx", "int4", vision_cache=False, prefix_cache=False,
                                 lever="vision cache + prefix reuse"),
    "onnx-int4-novcache": Variant("onnx", "int4", vision_cache=False, lever="vision cache"),
    "onnx-int4-noprefix": Variant("onnx", "int4", prefix_cache=False, lever="prefix reuse"),
    "onnx-int4-b32": Variant("onnx", "int4-b32",
                             lever="GEMM route (block 128 + int8 vision vs builder block 32 + fp32 vision)"),
    "genai-int4-b32": Variant("genai", "int4-b32",
                              lever="all of it (vs onnxruntime-genai's pipeline, builder defaults)"),
    "onnx-int4-halfhistory": Variant("onnx", "int4", history_scale=0.5),
    "onnx-int4-kvshift": Variant("onnx", "int4", kv_shift=True),
    # llama.cpp's server on the same checkpoint converted to Q4_K_M (needs --llama-cpp DIR).
    "llamacpp-q4km": Variant("llamacpp", "gguf-q4km"),
    "onnx-fp32": Variant("onnx", "fp32"),
    "torch-bf16": Variant("torch", "hf", dtype="bfloat16"),
    "torch-fp32": Variant("torch", "hf"),
}
DEFAULT_BACKENDS = ("onnx-int4", "torch-bf16", "torch-fp32")
LEVER_BACKENDS = ("onnx-int4-nocache", "onnx-int4-novcache", "onnx-int4-noprefix", "onnx-int4-b32",
                  "onnx-int4-halfhistory", "onnx-int4-kvshift")


@dataclass(frozen=True)
class Models:
    """The folders the variants run, and what this bench built and may delete afterwards."""

    folders: dict[str, Path]
    built: tuple[Path, ...] = ()


def register(subparsers) -> None:
    """Add the `bench` subcommand to the deskhand command line."""
    p = subparsers.add_parser("bench", help="benchmark an agent run on this machine",
                              description=__doc__.split("\n\n")[1])
    add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The bench options (shared by `deskhand bench` and `python -m app.bench`)."""
    p.add_argument("--text-layers", type=int, default=2,
                   help="decoder layers built (Fara: 28; nano is built at its real size)")
    p.add_argument("--vision-blocks", type=int, default=2,
                   help="vision blocks built (Fara: 32; nano is built at its real size)")
    p.add_argument("--families", default=None,
                   help=f"comma separated, from {','.join(FAMILIES)}: each family's model side by "
                   "side in one run (default: fara7b alone, the classic report)")
    p.add_argument("--fara15-layers", type=int, default=4,
                   help="decoder layers built for fara15-4b (default 4: three linear-attention, "
                   "one full; Fara1.5-4B: 32)")
    p.add_argument("--steps", type=int, default=5,
                   help="agent steps per run (default 5; steps 4 on are the steady state)")
    p.add_argument("--size", default=None,
                   help="screenshot size WxH at model size (default: the family's: fara7b "
                   "1428x896, fara15-4b 1440x896, nano 512x320)")
    p.add_argument("--new-tokens", type=int, default=None,
                   help="decoded tokens per step (default: the family's: 100; nano 34, one "
                   "click reply)")
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                   help=f"comma separated, from {','.join(VARIANTS)}")
    p.add_argument("--levers", action="store_true",
                   help="also run the rows that each turn one optimisation off, and the "
                   f"adaptive-compute row ({','.join(LEVER_BACKENDS)})")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per backend (default: one per physical core)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="where the checkpoint and exports are built (default: cache dir/bench)")
    p.add_argument("--keep", action="store_true",
                   help="keep the built checkpoint and exports for the next run (several GB)")
    p.add_argument("--json", type=Path, default=None, help="also write all results to this file")
    p.add_argument("--tiny", action="store_true",
                   help="the tiny test model at a small size, for a quick check of the bench itself")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="use this Hugging Face Qwen2.5-VL folder instead of building one")
    for key in EXPORTS:
        p.add_argument(f"--onnx-{key}", type=Path, default=None, dest=f"onnx_{key.replace('-', '_')}",
                       help=f"use this {key} export as it is")
    p.add_argument("--llama-cpp", type=Path, default=None, metavar="DIR",
                   help="a llama.cpp source tree with build/bin/llama-server and llama-quantize: "
                   "enables the llamacpp-q4km row (the checkpoint converted with its own tools)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the whole agent run this many times per backend; report medians")
    p.add_argument("--no-warmup", action="store_true", help="skip the short warm-up generation")
    p.add_argument("--bandwidth-mb", type=int, default=None,
                   help="array size for the bandwidth measurement (default 1024, tiny 128)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark the parsed arguments describe; print the report."""
    from app.bench.report import format_families, format_report

    names = _backend_names(args)
    families = _families(args)
    problem = _check(args, names, families)
    if problem:
        print(f"deskhand bench: {problem}", file=sys.stderr)
        return 2
    if args.work_dir is None:
        from agent.paths import cache_dir

        args.work_dir = cache_dir() / "bench"
    from agent.inference.ort_session import physical_cores

    threads = args.threads or physical_cores()
    megabytes = args.bandwidth_mb or (128 if args.tiny else 1024)
    _log(f"measuring memory bandwidth ({megabytes} MB, {threads} threads)")
    bandwidth = measure_bandwidth(megabytes, threads=threads)
    reports = {family.name: run_family(args, family, names, threads, bandwidth)
               for family in families}
    bandwidth = _bandwidth_again(bandwidth, megabytes, threads)
    for report in reports.values():
        report["bandwidth"] = bandwidth
    if args.families is None:  # the classic one-family report, unchanged
        (report,) = reports.values()
        print(format_report(report))
    else:
        report = {"bandwidth": bandwidth, "families": reports}
        print(format_families(reports))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    ok = all("error" not in r for rep in reports.values() for r in rep["rows"])
    return 0 if ok else 1


def run_family(args: argparse.Namespace, family: BenchFamily, names: Sequence[str], threads: int,
               bandwidth: dict[str, Any]) -> dict[str, Any]:
    """Build (or reuse) one family's checkpoint and exports, run every backend on it; its report."""
    w, h = _size(args, family)
    new_tokens = args.new_tokens or (4 if args.tiny else family.new_tokens)
    models = prepare(args, names, family)
    # One prompt for every row, the one the loop gives this model: the checkpoint's declared
    # system prompt, if any (read once here: the llama.cpp row's folder is a GGUF conversion).
    system = declared_system_prompt(models.folders["hf"])
    rows = []
    try:
        for name in names:
            variant = VARIANTS[name]
            spec = {"backend": name, "steps": args.steps, "size": [w, h], "new_tokens": new_tokens,
                    "seed": 0, "warmup": not args.no_warmup, "repeat": max(1, args.repeat),
                    "threads": threads, "model_dir": str(models.folders[variant.model]),
                    "family": family.prompt_family, "system": system,
                    "llama_cpp": str(args.llama_cpp or "")} | asdict(variant)
            _log(f"{family.name} {name}: running {args.steps} steps")
            rows.append(run_worker(spec))
            _log(_row_summary(rows[-1]))
    finally:
        costs = _costs(models, names, family.name)
        if not args.keep:
            for path in models.built:
                shutil.rmtree(path, ignore_errors=True)
    shape, bytes_read = costs["shape"], costs["bytes_per_token"]
    # Built at the real model's depth (Nano, unless --tiny): the measured figures are the real
    # model's, and there is nothing to extrapolate.
    real = family.real_size and (shape.layers, shape.v_blocks) == (family.full.text,
                                                                    family.full.vision)
    return {"family": family.name, "bandwidth": bandwidth, "shape": shape.__dict__,
            "bytes_per_token": bytes_read, "weight_bytes": costs["weight_bytes"],
            "new_tokens": new_tokens, "size": [w, h], "rows": rows, "real_size": real,
            "extrapolated": {} if real else {
                r["backend"]: [extrapolate(s, shape, bytes_read[r["backend"]], (w, h))
                               for s in r["steps"]]
                # llama-server's prompt time holds the screenshots' encoding,
                # which the per-layer scaling would misread: not extrapolated.
                for r in rows if "error" not in r and r["runner"] != "llamacpp"}}


def _families(args: argparse.Namespace) -> list[BenchFamily]:
    """The families asked for (--families), or the default one; unknown names raise KeyError
    only after `_check` has reported them."""
    keys = [k.strip() for k in (args.families or DEFAULT_FAMILY).split(",") if k.strip()]
    return [FAMILIES[k] for k in keys if k in FAMILIES] if keys else []


def _backend_names(args: argparse.Namespace) -> list[str]:
    """The rows asked for: --backends, then the lever rows with --levers."""
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.levers:
        names += [b for b in LEVER_BACKENDS if b not in names]
    return names


def _size(args: argparse.Namespace, family: BenchFamily) -> tuple[int, int]:
    """The screenshot size at model size: --size, else the family's (a small one with --tiny)."""
    return parse_size(args.size or (family.tiny_size if args.tiny else family.size))


def _check(args: argparse.Namespace, names: Sequence[str], families: Sequence[BenchFamily]) -> str:
    """What is wrong with the bench arguments, or "" when nothing is."""
    unknown = [b for b in names if b not in VARIANTS]
    if unknown or not names:
        return f"unknown backend(s) {unknown}; choose from {', '.join(VARIANTS)}"
    asked = [k.strip() for k in (args.families or DEFAULT_FAMILY).split(",") if k.strip()]
    if not families or len(families) != len(asked):
        return f"unknown famil(ies) in {asked}; choose from {', '.join(FAMILIES)}"
    given = args.checkpoint is not None or any(getattr(args, f"onnx_{k.replace('-', '_')}")
                                               for k in EXPORTS)
    if given and len(families) > 1:
        return "--checkpoint and --onnx-* name one family's folders: run one family with them"
    for family in families:
        try:
            w, h = _size(args, family)
        except ValueError as exc:
            return f"--size: {exc}"
        if w % family.unit or h % family.unit:
            return (f"--size must be a model size for {family.name} (both sides multiples of "
                    f"{family.unit})")
    if args.steps < 1:
        return "--steps must be at least 1"
    if any(VARIANTS[n].runner == "llamacpp" for n in names):
        if args.llama_cpp is None:
            return "the llamacpp-q4km row needs --llama-cpp DIR (a built llama.cpp tree)"
        try:
            llama_tools(args.llama_cpp)
        except FileNotFoundError as exc:
            return str(exc)
    if FAMILIES["fara15-4b"] in families and (args.fara15_layers < 4 or args.fara15_layers % 4):
        return "--fara15-layers must be a multiple of 4 (three linear-attention layers to one full)"
    return ""


def _bandwidth_again(first: dict[str, Any], megabytes: int, threads: int) -> dict[str, Any]:
    """Shared machines vary: measured again at the end, the better reading is the bound."""
    _log("measuring memory bandwidth again")
    again = measure_bandwidth(megabytes, threads=threads)
    return {key: max(first[key], again[key]) for key in ("read_gbs", "copy_gbs")} | {
        "threads": threads, "megabytes": megabytes,
        "readings_gbs": [first["read_gbs"], again["read_gbs"]]}


def _costs(models: Models, names: Sequence[str], family: str = "") -> dict[str, Any]:
    """The cost model's inputs, read from the folders before they may be deleted."""
    hf = models.folders["hf"]
    return {"shape": replace(Shape.from_config(hf), family=family),
            "weight_bytes": {name: weight_bytes(models.folders[VARIANTS[name].model],
                                                VARIANTS[name].runner, VARIANTS[name].dtype)
                             for name in names},
            "bytes_per_token": {name: bytes_per_token(VARIANTS[name].runner, VARIANTS[name].dtype,
                                                      hf, models.folders[VARIANTS[name].model])
                                for name in names}}


def prepare(args: argparse.Namespace, names: Sequence[str],
            family: BenchFamily = FAMILIES[DEFAULT_FAMILY]) -> Models:
    """The checkpoint and exports the variants need: given ones as they are, else built (cached)."""
    from models.export import export_model

    name = family.folder_name(args)
    root = Path(args.work_dir).expanduser() / name
    built: list[Path] = []
    hf = args.checkpoint
    if hf is None:
        hf = root / "hf"
        if not (hf / "config.json").is_file():
            _log(f"building the {name} checkpoint in {hf}")
            shutil.rmtree(hf, ignore_errors=True)
            if args.tiny:
                family.build_tiny(hf)
            else:
                family.build(hf, args)
        built.append(hf)
    folders: dict[str, Path] = {"hf": Path(hf)}
    for key in sorted({VARIANTS[n].model for n in names} - {"hf"}):
        if key == GGUF_KEY:
            _log(f"converting to GGUF {QUANT} with llama.cpp's tools (skipped when done before)")
            folders[key] = convert(Path(hf), root / key, args.llama_cpp)
            built.append(folders[key])
            continue
        given = getattr(args, f"onnx_{key.replace('-', '_')}")
        if given is not None:
            folders[key] = Path(given)
            continue
        out = root / f"onnx-{key}"
        _log(f"exporting {key} to {out} (skipped when done before)")
        export_model(hf, out, provider="cpu", progress=False, **EXPORTS[key])
        folders[key] = out
        built.append(out)
    return Models(folders, tuple(built))


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh Python process; its result, or the spec with an error."""
    from agent.childproc import ChildError, Progress, run_child

    def step_done(event: Progress) -> None:
        _log(f"{spec['backend']}: {event.stage} {event.done:.0f}/{event.total:.0f}")

    start = time.perf_counter()
    try:
        result = run_child("app.bench.worker:main", [json.dumps(spec)],
                           on_event=step_done, env={"TOKENIZERS_PARALLELISM": "false"}).value
    except ChildError as exc:
        tail = exc.output.strip().splitlines()[-8:]
        return spec | {"error": f"exit {exc.exit_code}: " + " | ".join(tail)}
    result["process_s"] = time.perf_counter() - start
    return result


def _row_summary(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['backend']}: FAILED {row['error']}"
    steps = ", ".join(f"{s['total_s']:.1f}" for s in row["steps"])
    return f"{row['backend']}: step seconds {steps}; peak RSS {row['peak_rss'] / 1e9:.2f} GB"


def _log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m app.bench`: the same as `deskhand bench`."""
    parser = argparse.ArgumentParser(prog="python -m app.bench",
                                     description=__doc__.split("\n\n")[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))
