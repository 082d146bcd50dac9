"""Time one agent-sized step on an exported model (and optionally the transformers reference).

    python -m models.bench EXPORT_DIR [--reference HF_DIR] [--images 3] [--size 1428x896]
                           [--new-tokens 64] [--provider auto] [--repeat 2]

Screenshots are seeded random noise at model size, the prompt a Fara-like conversation with
one screenshot per user turn, so runs are comparable across machines and exports.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

from agent.inference.base import Backend, Generation

PHASES = ("preprocess", "vision", "prefill", "decode", "total")


def step_inputs(images: int, size: tuple[int, int], seed: int = 0) -> tuple[list, list]:
    """Messages and noise screenshots for one step with `images` screenshots."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    shots = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
             for _ in range(images)]
    messages: list[dict] = [{"role": "system", "content": [{"type": "text", "text": (
        f"You are a web automation agent. The screen's resolution is {w}x{h}. "
        "Stop at critical points such as checkout.")}]}]
    for i in range(images):
        messages.append({"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": "Find a recipe." if i == 0 else "Next?"}]})
        if i < images - 1:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": (
                '<tool_call>\n{"name": "computer_use", "arguments": {"action": "scroll", '
                '"pixels": -500}}\n</tool_call>')}]})
    return messages, shots


def bench(backend: Backend, images: int, size: tuple[int, int], new_tokens: int,
          repeat: int) -> list[Generation]:
    """Run the same step `repeat` times (the first one includes warm-up)."""
    messages, shots = step_inputs(images, size)
    return [backend.generate(messages, shots, max_new_tokens=new_tokens) for _ in range(repeat)]


def summary(name: str, runs: Sequence[Generation]) -> str:
    """One line: median seconds per phase over the runs after the first, and tokens."""
    steady = list(runs[1:]) or list(runs)
    parts = [f"{name:<10}", f"prompt {steady[0].prompt_tokens:>6} tok"]
    for phase in PHASES:
        values = [r.timings[phase] for r in steady if phase in r.timings]
        if values:
            parts.append(f"{phase} {statistics.median(values):7.2f}s")
    decode = [r.tokens_per_second for r in steady if r.tokens_per_second]
    if decode:
        parts.append(f"{statistics.median(decode):6.1f} tok/s ({steady[0].generated_tokens} tok)")
    return "  ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints one summary line per backend."""
    parser = argparse.ArgumentParser(prog="python -m models.bench", description=__doc__.split(
        "\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--reference", help="Hugging Face checkpoint to time with transformers")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--size", default="1428x896")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--provider", default="auto")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    if w % 28 or h % 28:
        parser.error("--size must be a model size (both sides multiples of 28)")

    from agent.inference.onnx import OnnxBackend

    onnx = OnnxBackend(args.export_dir, provider=args.provider)
    print(summary(f"onnx/{onnx.provider}",
                  bench(onnx, args.images, (w, h), args.new_tokens, args.repeat)))
    if args.reference:
        from agent.inference.reference import ReferenceBackend

        ref = ReferenceBackend(args.reference)
        print(summary("reference", bench(ref, args.images, (w, h), args.new_tokens, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
