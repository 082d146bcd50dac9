"""Where one decode step's time goes at steady state (issue 18): onnxruntime's per-operator
profile of the decoder over N decode steps after the bench's agent run has reached step S
(three screenshots in the prompt), the LM head apart from the layers' matrix products, and the
Python-side cost per token. Usage:

    .venv/bin/python scripts/profile_decode.py MODEL_DIR [--step 4] [--tokens 32]
        [--size 1428x896]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.inference.onnx import OnnxBackend
from agent.inference.ort_session import make_session
from app.bench.worker import parse_size, screenshots, step_inputs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--step", type=int, default=4)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--size", type=parse_size, default="1428x896")
    args = p.parse_args(argv)
    size = args.size
    backend = OnnxBackend(args.model, provider="cpu")
    vlm, n = backend.vlm, args.tokens
    prefix = str(Path(tempfile.mkdtemp()) / "decoder")
    vlm.decoder = make_session(args.model / "model.onnx", "cpu", backend.threads, profile=prefix)
    shots = screenshots(args.step, size, 0)
    for step in range(1, args.step + 1):
        prompt = backend._prepare(*step_inputs(step, shots, size))
        logits = vlm.prefill(prompt, reserve=n + 1)
    position, forward_s, other_s = prompt.next_position, 0.0, 0.0
    for _ in range(n):
        ids = np.asarray([int(np.argmax(logits))], np.int64)
        start = time.perf_counter()
        positions = np.full((3, 1), position, np.int64)
        logits = vlm._forward(ids, positions, np.zeros((0, vlm.hidden), np.float32))
        mid = time.perf_counter()
        vlm.kv.extend(ids, positions=positions)
        other_s += time.perf_counter() - mid
        forward_s += mid - start
        position += 1
    events = json.loads(Path(vlm.decoder.end_profiling()).read_text())
    runs = [e for e in events if e.get("name") == "model_run"][-n:]
    lo, hi = runs[0]["ts"], runs[-1]["ts"] + runs[-1]["dur"]
    ops: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and lo <= e["ts"] <= hi:
            op = e["args"].get("op_name", "?")
            if op == "MatMulNBits":
                op += " (LM head)" if "lm_head" in e["name"] else " (layers)"
            ops[op] = ops.get(op, 0.0) + e["dur"]
    total = sum(ops.values())
    print(f"context {vlm.kv.length} tokens; per decode token: forward {1000 * forward_s / n:.1f} ms "
          f"(decoder run {sum(r['dur'] for r in runs) / n / 1000:.1f} ms, kernels "
          f"{total / n / 1000:.1f} ms), bookkeeping {1000 * other_s / n:.2f} ms")
    for op, us in sorted(ops.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {op:<30}{us / n / 1000:8.2f} ms {100 * us / total:6.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
