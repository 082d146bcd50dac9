"""`deskhand bench`: one Fara-sized agent step, timed per phase on every backend of this machine.

Builds a Fara-7B-shaped checkpoint (real widths, heads, vocabulary and vision tower, random
weights, fewer layers), exports it to ONNX int4 and fp32, then times one agent step (the real
Fara prompt, 1 and 3 screenshots, `--new-tokens` forced decoded tokens) for each backend in its
own process, so each row's peak memory is its own. Prints one table, ratios against PyTorch,
costs extrapolated to the full model, and decode speed against this machine's memory bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.bench_model import FULL, Shape, bytes_per_token, extrapolate, measure_bandwidth

BACKENDS = ("onnx-int4", "onnx-fp32", "torch-fp32", "torch-bf16")
GB = 1e9


@dataclass(frozen=True)
class Models:
    """The folders the backends run: the Hugging Face checkpoint and the two exports."""

    hf: Path
    onnx: dict[str, Path]
    built: tuple[Path, ...] = ()  # what this run created and may delete afterwards


def register(subparsers) -> None:
    """Add the `bench` subcommand to the deskhand command line."""
    p = subparsers.add_parser("bench", help="benchmark one agent step on this machine",
                              description=__doc__.split("\n\n")[1])
    add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The bench options (shared by `deskhand bench` and `python -m models.bench`)."""
    p.add_argument("--text-layers", type=int, default=2, help="decoder layers built (Fara: 28)")
    p.add_argument("--vision-blocks", type=int, default=2, help="vision blocks built (Fara: 32)")
    p.add_argument("--images", default="1,3", help="screenshot counts, comma separated")
    p.add_argument("--size", default=None, help="screenshot size WxH (default 1428x896)")
    p.add_argument("--new-tokens", type=int, default=None, help="decoded tokens (default 100)")
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help=f"comma separated, from {','.join(BACKENDS)}")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="where the checkpoint and exports are built (default: cache dir/bench)")
    p.add_argument("--keep", action="store_true",
                   help="keep the built checkpoint and exports for the next run (several GB)")
    p.add_argument("--json", type=Path, default=None, help="also write all results to this file")
    p.add_argument("--tiny", action="store_true",
                   help="the tiny test model at a small size, for a quick check of the bench itself")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="use this Hugging Face Qwen2.5-VL folder instead of building one")
    p.add_argument("--onnx-int4", type=Path, default=None, help="use this int4 export as it is")
    p.add_argument("--onnx-fp32", type=Path, default=None, help="use this fp32 export as it is")
    p.add_argument("--repeat", type=int, default=1,
                   help="time the step this many times per backend and report medians")
    p.add_argument("--no-warmup", action="store_true", help="skip the short warm-up generation")
    p.add_argument("--bandwidth-mb", type=int, default=None,
                   help="array size for the bandwidth measurement (default 1024, tiny 128)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark the parsed arguments describe; print the report."""
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        print(f"deskhand bench: unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}",
              file=sys.stderr)
        return 2
    counts = [int(v) for v in args.images.split(",")]
    size_text = args.size or ("308x224" if args.tiny else "1428x896")
    w, h = (int(v) for v in size_text.lower().split("x"))
    if w % 28 or h % 28:
        print("deskhand bench: --size must be a model size (both sides multiples of 28)",
              file=sys.stderr)
        return 2
    new_tokens = args.new_tokens or (4 if args.tiny else 100)
    if args.work_dir is None:
        from agent.paths import cache_dir

        args.work_dir = cache_dir() / "bench"
    models = prepare(args, backends)
    _log(f"measuring memory bandwidth ({args.bandwidth_mb or (128 if args.tiny else 1024)} MB)")
    bandwidth = measure_bandwidth(args.bandwidth_mb or (128 if args.tiny else 1024))
    rows = []
    try:
        for count in counts:
            for backend in backends:
                spec = {"backend": backend, "images": count, "size": [w, h],
                        "new_tokens": new_tokens, "seed": 0, "warmup": not args.no_warmup,
                        "repeat": max(1, args.repeat),
                        "model_dir": str(models.onnx[backend] if backend.startswith("onnx")
                                         else models.hf),
                        "dtype": "bfloat16" if backend == "torch-bf16" else "float32"}
                _log(f"{backend}, {count} image(s): running")
                rows.append(run_worker(spec, args.work_dir))
                _log(_row_summary(rows[-1]))
    finally:
        shape = Shape.from_config(models.hf)
        bytes_read = {b: bytes_per_token(b, models.hf, models.onnx.get(b)) for b in backends}
        if not args.keep:
            for path in models.built:
                shutil.rmtree(path, ignore_errors=True)
    report = {"bandwidth": bandwidth, "shape": shape.__dict__, "bytes_per_token": bytes_read,
              "rows": rows, "extrapolated": [extrapolate(r, shape, bytes_read[r["backend"]])
                                             for r in rows if "error" not in r]}
    print(format_report(report, new_tokens, (w, h)))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


def prepare(args: argparse.Namespace, backends: Sequence[str]) -> Models:
    """The checkpoint and exports the backends need: given ones as they are, else built (cached)."""
    from models.export import export_model

    name = "tiny" if args.tiny else f"fara-t{args.text_layers}-v{args.vision_blocks}"
    root = Path(args.work_dir).expanduser() / name
    built: list[Path] = []
    hf = args.checkpoint
    if hf is None:
        hf = root / "hf"
        if not (hf / "config.json").is_file():
            _log(f"building the {name} checkpoint in {hf}")
            shutil.rmtree(hf, ignore_errors=True)
            if args.tiny:
                from models.tiny import make_tiny_checkpoint

                make_tiny_checkpoint(hf)
            else:
                from models.tiny import make_fara_shaped_checkpoint

                make_fara_shaped_checkpoint(hf, text_layers=args.text_layers,
                                            vision_blocks=args.vision_blocks)
        built.append(hf)
    onnx: dict[str, Path] = {}
    for precision in ("int4", "fp32"):
        key = f"onnx-{precision}"
        if key not in backends:
            continue
        given = getattr(args, f"onnx_{precision}")
        if given is not None:
            onnx[key] = Path(given)
            continue
        out = root / key
        _log(f"exporting {precision} to {out} (skipped when done before)")
        export_model(hf, out, precision=precision, provider="cpu", progress=False)
        onnx[key] = out
        built.append(out)
    return Models(Path(hf), onnx, tuple(built))


def run_worker(spec: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Run one measurement in a fresh Python process; its result, or the spec with an error."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        result_path = Path(tmp) / "result.json"
        log_path = Path(tmp) / "worker.log"
        start = time.perf_counter()
        with log_path.open("w") as log:
            proc = subprocess.run(
                [sys.executable, "-m", "models.bench_worker", json.dumps(spec), str(result_path)],
                stdout=log, stderr=subprocess.STDOUT, check=False,
                env=os.environ | {"TOKENIZERS_PARALLELISM": "false"})
        if proc.returncode != 0 or not result_path.is_file():
            tail = log_path.read_text(errors="replace").strip().splitlines()[-8:]
            return spec | {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
        result = json.loads(result_path.read_text())
        result["process_s"] = time.perf_counter() - start
        return result


def _row_summary(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['backend']}, {row['images']} image(s): FAILED {row['error']}"
    return (f"{row['backend']}, {row['images']} image(s): step {row['total_s']:.1f} s, "
            f"{row['prompt_tokens']} prompt tokens, {row['generated']} generated")


def format_report(report: dict[str, Any], new_tokens: int, size: tuple[int, int]) -> str:
    """The printed report: measured table with ratios, extrapolation, bandwidth."""
    shape = report["shape"]
    rows = report["rows"]
    ok = [r for r in rows if "error" not in r]
    totals = {(r["backend"], r["images"]): r["total_s"] for r in ok}
    lines = [f"One agent step: {size[0]}x{size[1]} screenshots, {new_tokens} decoded tokens "
             f"(EOS suppressed), model with {shape['layers']} text layers and "
             f"{shape['v_blocks']} vision blocks ({shape['v_full_blocks']} full-attention), "
             f"hidden {shape['hidden']}, vocab {shape['vocab']}."]
    repeats = max((r.get("repeats", 1) for r in ok), default=1)
    if repeats > 1:
        lines.append(f"Each row: medians of {repeats} timed steps after a warm-up; all step "
                     "totals are in the JSON (--json).")
    lines.append("")
    head = (f"{'backend':<11}{'img':>4}{'prompt':>8}{'vision s':>10}{'prefill s':>11}"
            f"{'ms/tok':>9}{'tok/s':>8}{'step s':>9}{'x bf16':>8}{'x fp32':>8}{'RSS GB':>8}")
    lines += ["Measured", head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['backend']:<11}{r['images']:>4}  FAILED: {r['error'][:200]}")
            continue
        mark = "*" if r.get("vision_note") else " "
        lines.append(
            f"{r['backend']:<11}{r['images']:>4}{r['prompt_tokens']:>8}{r['vision_s']:>9.2f}{mark}"
            f"{r['prefill_s']:>11.2f}{1000 * r['decode_per_token_s']:>9.1f}"
            f"{1 / r['decode_per_token_s']:>8.2f}{r['total_s']:>9.2f}"
            f"{_ratio(r['total_s'], totals.get(('torch-bf16', r['images']))):>8}"
            f"{_ratio(r['total_s'], totals.get(('torch-fp32', r['images']))):>8}"
            f"{r['peak_rss'] / GB:>8.2f}")
    lines += ["  step s = preprocessing + vision + prefill + decode, from messages to the last "
              "token; x bf16 / x fp32 = step time over PyTorch's on the same images.",
              "  prefill s = time to the first token without vision; ms/tok over the tokens "
              "after the first; RSS = peak resident memory of the backend's own process.",
              "  * onnxruntime-genai runs vision inside set_inputs: vision.onnx is timed apart "
              "with onnxruntime on the same pixels, and prefill = first-token time minus that."]
    ext = {(e["backend"], e["images"]): e for e in report["extrapolated"]}
    full = {k: e["step_full_s"] for k, e in ext.items()}
    head = (f"{'backend':<11}{'img':>4}{'win blk s':>10}{'full blk s':>11}{'layer pf s':>11}"
            f"{'layer ms/tok':>13}{'vision s':>10}{'prefill s':>11}{'ms/tok':>9}{'step s':>9}"
            f"{'x bf16':>8}")
    lines += ["", f"Extrapolated to Fara-7B ({FULL['text']} text layers, {FULL['vision']} vision "
              f"blocks, {FULL['vision_full_attention']} of them full-attention)", head,
              "-" * len(head)]
    for (backend, images), e in ext.items():
        lines.append(
            f"{backend:<11}{images:>4}{e['vision_block_window_s']:>10.2f}"
            f"{e['vision_block_full_s']:>11.2f}{e['prefill_layer_s']:>11.2f}"
            f"{e['decode_layer_ms']:>13.2f}{e['vision_full_s']:>10.1f}{e['prefill_full_s']:>11.1f}"
            f"{e['decode_full_ms']:>9.1f}{e['step_full_s']:>9.1f}"
            f"{_ratio(e['step_full_s'], full.get(('torch-bf16', images))):>8}")
    lines += ["  Method: each measured phase is split over its parts by a work model and the "
              "per-layer part is scaled to the full depth.",
              "  Vision and prefill (compute-bound) split by multiply-accumulates: linear layers "
              "per token plus attention (64-patch windows, whole image in full-attention blocks,",
              "  causal prompt in text layers); patch embedding, merger and the one-token LM head "
              "stay as they are. Decode (memory-bound) splits by the weight bytes read per",
              "  token: decoder layers vs LM head as each backend stores them. Preprocessing "
              "is kept as measured.",
              "  ONNX prefill is the first-token time minus vision, so it also holds "
              "embedding.onnx and runtime work outside the decoder; scaled as if per layer,",
              "  its full-model prefill is an upper bound."]
    bw = report["bandwidth"]
    lines += ["", f"Memory bandwidth: {bw['read_gbs']:.1f} GB/s streaming read ({bw['threads']} "
              f"threads), {bw['copy_gbs']:.1f} GB/s copy (1 thread, read + write counted); best "
              f"of 5 over {bw['megabytes']} MB.",
              "Decode bound = read bandwidth / weight bytes per token (decoder layers + LM head; "
              "embedding rows and KV cache left out).",
              f"{'backend':<11}{'img':>4}{'MB/tok':>9}{'bound tok/s':>13}{'tok/s':>8}"
              f"{'of bound':>10}{'GB/s used':>11}{'full MB/tok':>13}{'full bound':>12}"]
    for r in ok:
        weights = report["bytes_per_token"][r["backend"]]
        read = weights["layers"] + weights["lm_head"]
        e = ext[(r["backend"], r["images"])]
        bound = bw["read_gbs"] * GB / read
        speed = 1 / r["decode_per_token_s"]
        lines.append(f"{r['backend']:<11}{r['images']:>4}{read / 1e6:>9.0f}{bound:>13.1f}"
                     f"{speed:>8.2f}{speed / bound:>9.0%} {speed * read / GB:>10.1f}"
                     f"{e['full_weight_bytes'] / 1e6:>13.0f}"
                     f"{bw['read_gbs'] * GB / e['full_weight_bytes']:>12.2f}")
    return "\n".join(lines)


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def _log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m models.bench`: the same as `deskhand bench`."""
    parser = argparse.ArgumentParser(prog="python -m models.bench",
                                     description=__doc__.split("\n\n")[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
