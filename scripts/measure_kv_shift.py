"""Measure shifted reuse (`--kv-shift`, agent/inference/kv_shift.py) against plain prefix reuse
on one exported model folder: per agent step, the tokens each computes, prefill seconds, and
the drift of the approximation — first-token logits (cosine, largest difference, top-5 overlap)
and greedy tokens (agreement over the first N) against the plain run, which equals a full
recompute (tests/agent/inference/test_vlm_runtime.py). The prompts are the bench's agent run
(the Fara prompt, seeded screenshots at model size, the newest three kept). Usage:

    .venv/bin/python scripts/measure_kv_shift.py MODEL_DIR [--steps 7] [--new-tokens 24]
        [--size 1288x728] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.inference.onnx import OnnxBackend
from app.bench.worker import parse_size, screenshots, step_inputs


def _greedy(backend: OnnxBackend, messages, images, n: int) -> tuple[list[int], float, object]:
    """Prefill seconds, first-token logits and N greedy tokens (no early stop)."""
    vlm = backend.vlm
    prompt = backend._prepare(messages, images)
    start = time.perf_counter()
    logits = vlm.prefill(prompt, reserve=n + 1)
    prefill = time.perf_counter() - start
    stats, tokens, position, current = vlm.stats, [], prompt.next_position, logits
    for _ in range(n):
        token = int(np.argmax(current))
        tokens.append(token)
        current = vlm.step(token, position)
        position += 1
    return tokens, prefill, (logits, stats)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--new-tokens", type=int, default=24)
    p.add_argument("--size", type=parse_size, default="1288x728",
                   help="model image size WxH (multiples of 28)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    size = args.size
    shifted = OnnxBackend(args.model, provider="cpu", threads=args.threads, kv_shift=True)
    plain = OnnxBackend(args.model, provider="cpu", threads=args.threads)
    if shifted.vlm.rope is None:
        print(f"{args.model}: its deskhand.json has no rope settings; re-export it", file=sys.stderr)
        return 2
    shots = screenshots(args.steps, size, seed=0)
    rows = []
    head = (f"{'step':>4}{'prompt':>8}{'plain comp':>11}{'shift comp':>11}{'moved':>7}"
            f"{'plain s':>9}{'shift s':>9}{'cosine':>9}{'max|d|':>9}{'top5':>6}{'greedy':>8}")
    print(head)
    print("-" * len(head))
    for step in range(1, args.steps + 1):
        messages, images = step_inputs(step, shots, size)
        a_tokens, a_s, (a_logits, a_stats) = _greedy(plain, messages, images, args.new_tokens)
        b_tokens, b_s, (b_logits, b_stats) = _greedy(shifted, messages, images, args.new_tokens)
        top_a, top_b = set(np.argsort(a_logits)[-5:]), set(np.argsort(b_logits)[-5:])
        agree = sum(x == y for x, y in zip(a_tokens, b_tokens, strict=True)) / len(a_tokens)
        row = {"step": step, "prompt_tokens": len(plain._prepare(messages, images).ids),
               "plain_computed": a_stats.computed_tokens, "shift_computed": b_stats.computed_tokens,
               "moved": b_stats.shifted_tokens, "plain_prefill_s": a_s, "shift_prefill_s": b_s,
               "cosine": _cos(a_logits, b_logits),
               "max_abs_diff": float(np.abs(a_logits - b_logits).max()),
               "top5_overlap": len(top_a & top_b) / 5, "greedy_agreement": agree}
        rows.append(row)
        print(f"{step:>4}{row['prompt_tokens']:>8}{row['plain_computed']:>11}"
              f"{row['shift_computed']:>11}{row['moved']:>7}{a_s:>9.2f}{b_s:>9.2f}"
              f"{row['cosine']:>9.4f}{row['max_abs_diff']:>9.3f}{row['top5_overlap']:>6.1f}"
              f"{agree:>8.2f}")
    moved = [r for r in rows if r["moved"]]
    if moved:
        ratio = np.median([r["plain_prefill_s"] / r["shift_prefill_s"] for r in moved])
        print(f"\nsteps with a move: {len(moved)}; median prefill speed-up {ratio:.2f}x; "
              f"median cosine {np.median([r['cosine'] for r in moved]):.4f}; "
              f"greedy agreement {np.mean([r['greedy_agreement'] for r in moved]):.2f}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
