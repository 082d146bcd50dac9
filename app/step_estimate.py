"""The expected time per agent step on this machine, measured once the model is warm.

The warm-up (`OnnxBackend.warm_up`, run in the app's model process) only pays the runtimes'
one-time set-up on a tiny input, so its time says nothing about a step. After it, one *probe*
generation is timed: a 224x224 image (64 image tokens for Fara-7B) and a short instruction,
8 new tokens. A real step differs in size, not in kind, so the probe's rates are scaled to it:

    prompt rate  r_p = probe prompt tokens / (vision + prefill seconds)
    decode cost  c_d = decode seconds / (generated tokens - 1)   (the first comes from prefill)
    step         t   = STEP_PROMPT_TOKENS / r_p + STEP_REPLY_TOKENS * c_d

A step sends one new screenshot at model size (1428x896 = 1632 image tokens) and about 100 text
tokens (the previous reply, the new turn); the rest of the history is reused from the KV cache.
A Fara reply (a sentence of thoughts and one tool call) is about 80 tokens. Both prefill and the
vision encoder are close to linear in tokens at these sizes (the 4 full-attention vision blocks
and the decoder's attention are a few percent of the work), and the probe's fixed costs are
counted as per-token work, so the estimate errs slightly on the slow side. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

PROBE_SIDE = 224  # a multiple of every family's image unit (28 for Qwen2.5-VL, 32 for Qwen3.5)
PROBE_NEW_TOKENS = 8
SCREENSHOT_TOKENS = 1632  # 1428x896 (agent.geometry.DEFAULT_MODEL_PIXELS) / 28^2
STEP_PROMPT_TOKENS = SCREENSHOT_TOKENS + 100
STEP_REPLY_TOKENS = 80
PROBE_TEXT = ("Look at the screenshot and say in one short sentence what is on the screen, then "
              "name the single next action that would continue the task.")


@dataclass(frozen=True)
class StepEstimate:
    """Rates measured by the probe, and the step time they predict."""

    prompt_tokens_per_s: float
    decode_s_per_token: float

    @property
    def step_s(self) -> float:
        return (STEP_PROMPT_TOKENS / self.prompt_tokens_per_s
                + STEP_REPLY_TOKENS * self.decode_s_per_token)

    def text(self) -> str:
        """`about 42 s per step on this machine (prompt 41 tok/s, reply 7.5 tok/s)`."""
        return (f"about {_seconds(self.step_s)} per step on this machine "
                f"(prompt {self.prompt_tokens_per_s:.0f} tok/s, reply "
                f"{1 / self.decode_s_per_token:.1f} tok/s, measured after warm-up)")


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def from_generation(gen: Any) -> StepEstimate | None:
    """The estimate from one probe `Generation` (None when it measured nothing usable)."""
    t = gen.timings
    decode = t.get("decode", 0.0)
    prompt_s = (t.get("vision", 0.0) + t["prefill"] if "prefill" in t
                else t.get("total", 0.0) - decode)
    steps = gen.generated_tokens - 1  # the first token comes from the prefill's logits
    if gen.prompt_tokens <= 0 or prompt_s <= 0 or steps <= 0 or decode <= 0:
        return None
    return StepEstimate(gen.prompt_tokens / prompt_s, decode / steps)


def probe(backend: Any) -> StepEstimate | None:
    """Warm `backend` up if it was not (in-process models), then time one probe generation."""
    warm_up = getattr(backend, "warm_up", None)
    if callable(warm_up):
        warm_up()
    image = Image.new("RGB", (PROBE_SIDE, PROBE_SIDE), (200, 200, 200))
    for x in range(0, PROBE_SIDE, 16):  # some structure, as a screen has
        image.paste((40, 90, 160), (x, 0, x + 8, PROBE_SIDE))
    messages = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": PROBE_TEXT}]}]
    gen = backend.generate(messages, [image], max_new_tokens=PROBE_NEW_TOKENS)
    return from_generation(gen)


def measure(backend: Any) -> StepEstimate | None:
    """`probe`, with any failure meaning "no estimate" (the run itself reports real problems)."""
    try:
        return probe(backend)
    except Exception:
        return None
