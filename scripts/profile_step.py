"""Where one steady agent step's time goes (issue 18), before and after shifted reuse: the bench's
agent run (the Fara prompt, one new seeded screenshot per step, the newest three kept) through
the real backend, with and without `--kv-shift`, and for step S (default 5: the window has slid)
the stage times the runtime records (prompt building and tokenizing, vision, prefill, decode),
the tokens computed / reused / shifted, onnxruntime's per-operator time of the decoder and the
vision graph during that step, and the Python functions that cost most outside onnxruntime.
Usage:

    .venv/bin/python scripts/profile_step.py MODEL_DIR [--steps 5] [--new-tokens 20]
        [--size 1428x896] [--threads N] [--json OUT]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.inference.onnx import OnnxBackend
from agent.inference.ort_session import make_session
from app.bench.worker import parse_size, screenshots, step_inputs

_ORT_RUN = ("run", "_forward", "image_features")  # functions whose time is onnxruntime's


def profile_mode(model: Path, kv_shift: bool, steps: int, size: tuple[int, int], tokens: int,
                 threads: int | None) -> dict:
    """Run `steps` agent steps; return the last step's stages, tokens and operator profile."""
    backend = OnnxBackend(model, provider="cpu", threads=threads, fixed_length=True,
                          kv_shift=kv_shift)
    vlm = backend.vlm
    folder = Path(tempfile.mkdtemp())
    # Each session's profile clock starts when that session is created: one origin per session.
    origin_d = time.perf_counter()
    vlm.decoder = make_session(model / graph_file(model, "decoder"), "cpu", backend.threads,
                               profile=str(folder / "d"))
    origin_v = time.perf_counter()
    vlm.vision = make_session(model / graph_file(model, "vision"), "cpu", backend.threads,
                              profile=str(folder / "v"))
    backend.warm_up()
    shots = screenshots(steps, size, 0)
    for step in range(1, steps + 1):
        messages, images = step_inputs(step, shots, size)
        last = step == steps
        profiler = cProfile.Profile() if last else None
        begin = time.perf_counter()
        if profiler:
            profiler.enable()
        generation = backend.generate(messages, images, max_new_tokens=tokens)
        if profiler:
            profiler.disable()
        end = time.perf_counter()
    stats = vlm.stats
    result = {
        "kv_shift": kv_shift, "step": steps, "prompt_tokens": generation.prompt_tokens,
        "computed_tokens": stats.computed_tokens, "cached_tokens": stats.cached_tokens,
        "shifted_tokens": stats.shifted_tokens, "images_encoded": stats.images_encoded,
        "images_cached": stats.images_cached,
        "stages_s": {k: round(v, 3) for k, v in generation.timings.items()},
        "decoder_runs": _runs(decoder_profile := vlm.decoder.end_profiling(),
                              *_window(origin_d, begin, end)),
        "decoder_ops_ms": _ops(decoder_profile, *_window(origin_d, begin, end)),
        "vision_ops_ms": _ops(vlm.vision.end_profiling(), *_window(origin_v, begin, end)),
        "python": _python(profiler),
    }
    shutil.rmtree(folder, ignore_errors=True)  # onnxruntime's profiles: large at full size
    return result


def _window(origin: float, begin: float, end: float) -> tuple[float, float]:
    """[begin, end] (perf_counter seconds) on a session's profile clock (µs since `origin`)."""
    return (begin - origin) * 1e6, (end - origin) * 1e6


def graph_file(model: Path, graph: str) -> str:
    """The file genai_config.json names for `graph` ("decoder" or "vision")."""
    config = json.loads((model / "genai_config.json").read_text())["model"]
    return config[graph]["filename"]


def _runs(path: str, begin: float, end: float) -> int:
    """Decoder calls between `begin` and `end`: prefill chunks plus one per decoded token."""
    events = json.loads(Path(path).read_text())
    return sum(1 for e in events if e.get("name") == "model_run" and begin <= e["ts"] <= end)


def _ops(path: str, begin: float, end: float) -> dict[str, float]:
    """Milliseconds per operator type between `begin` and `end` (µs on the profile's clock)."""
    events = json.loads(Path(path).read_text())
    ops: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and begin <= e["ts"] <= end:
            op = e["args"].get("op_name", "?")
            if op == "MatMulNBits" and "lm_head" in e["name"]:
                op += " (LM head)"
            ops[op] = ops.get(op, 0.0) + e["dur"] / 1000
    return {k: round(v, 1) for k, v in sorted(ops.items(), key=lambda kv: -kv[1])}


def _python(profiler: cProfile.Profile) -> list[tuple[str, float]]:
    """The costliest Python functions by own time, onnxruntime's session runs left out."""
    stats = pstats.Stats(profiler)
    rows = []
    for (file, line, name), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name in _ORT_RUN or "onnxruntime" in file or "onnxruntime" in name:
            continue
        rows.append((f"{Path(file).name}:{line}({name})", round(own * 1000, 1)))
    return sorted(rows, key=lambda r: -r[1])[:8]


def report(result: dict) -> str:
    s = result["stages_s"]
    lines = [f"{'kv-shift' if result['kv_shift'] else 'prefix reuse'}: step {result['step']}, "
             f"{result['prompt_tokens']} prompt tokens: {result['computed_tokens']} computed, "
             f"{result['cached_tokens']} reused ({result['shifted_tokens']} shifted); images "
             f"{result['images_encoded']} encoded, {result['images_cached']} cached",
             "  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in s.items())]
    for graph in ("decoder", "vision"):
        ops = result[f"{graph}_ops_ms"]
        total = sum(ops.values()) or 1.0
        top = ", ".join(f"{k} {v / 1000:.2f} s ({100 * v / total:.0f} %)"
                        for k, v in list(ops.items())[:5])
        lines.append(f"  {graph} kernels {total / 1000:.2f} s: {top or '-'}")
    lines.append("  python (own time, ms): " + ", ".join(f"{n} {ms}" for n, ms in result["python"][:5]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--new-tokens", type=int, default=20)
    p.add_argument("--size", type=parse_size, default="1428x896",
                   help="model image size WxH (multiples of 28)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be at least 1")
    size = args.size
    results = []
    for kv_shift in (False, True):
        results.append(profile_mode(args.model, kv_shift, args.steps, size, args.new_tokens,
                                    args.threads))
        print(report(results[-1]), flush=True)
    before, after = (r["stages_s"]["total"] for r in results)
    print(f"step {args.steps}: {before:.2f} s -> {after:.2f} s with --kv-shift "
          f"({before / after:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
