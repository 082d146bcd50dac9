"""One benchmark measurement, run in its own process: one backend, one agent step.

    python -m models.bench_worker SPEC_JSON RESULT_JSON

The parent (`models.bench`) starts one process per backend and image count, so the peak
resident memory read here at the end (VmHWM) belongs to that backend alone. Generation is
forced to exactly `new_tokens` tokens (end-of-sequence suppressed, no stop text), so every
backend decodes the same amount whatever its random weights prefer to say.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

TASK = "Find a vegetarian lasagna recipe with at least 4 stars and open its page."
# Replies of the shape Fara writes: a few sentences of thoughts, then one tool call.
REPLIES = [
    "The browser shows a search page. I will type the query into the search box and press "
    "enter to see the results.\n<tool_call>\n{\"name\": \"computer_use\", \"arguments\": "
    "{\"action\": \"type\", \"text\": \"vegetarian lasagna recipe\", \"coordinate\": [640, 360], "
    "\"press_enter\": true}}\n</tool_call>",
    "The page shows a list of recipes with ratings. The second one has 4.5 stars, so I will "
    "click its title to open it.\n<tool_call>\n{\"name\": \"computer_use\", \"arguments\": "
    "{\"action\": \"left_click\", \"coordinate\": [412, 530]}}\n</tool_call>",
    "A cookie banner covers the page. I will close it with Escape before going on.\n"
    "<tool_call>\n{\"name\": \"computer_use\", \"arguments\": {\"action\": \"key\", "
    "\"keys\": [\"Escape\"]}}\n</tool_call>",
]
URLS = ["https://www.example.com/search?q=vegetarian+lasagna",
        "https://www.example.com/recipes/lasagna", "https://www.example.com/recipes/lasagna/2"]


def step_inputs(images: int, size: tuple[int, int], seed: int = 0) -> tuple[list, list]:
    """The real Fara prompt of step `images` (one screenshot per step so far) and its images.

    Step N carries the system prompt with the tool schema, the task with the first screenshot,
    and N-1 earlier replies each followed by the next screenshot; screenshots are seeded noise.
    """
    import numpy as np
    from PIL import Image

    from agent.geometry import Size
    from agent.prompts import Turn, get_family

    rng = np.random.default_rng(seed)
    w, h = size
    shots = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
             for _ in range(images)]
    history = [Turn(shots[i], REPLIES[i % len(REPLIES)], URLS[i % len(URLS)])
               for i in range(images - 1)]
    return get_family().build(TASK, history, shots[-1], Size(w, h), url=URLS[0])


def warmup_inputs() -> tuple[list, list]:
    """A short prompt with one 56x56 image: loads kernels and allocators at little cost."""
    from PIL import Image

    return ([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hello"}]}],
            [Image.new("RGB", (56, 56), (200, 120, 40))])


def peak_rss() -> int:
    """This process's peak resident memory in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # macOS reports bytes, Linux KiB


def run_torch(spec: dict[str, Any]) -> dict[str, Any]:
    """transformers generate() on the checkpoint in fp32 or bf16; vision timed by hooks."""
    import torch

    from agent.inference.reference import ReferenceBackend

    t0 = time.perf_counter()
    backend = ReferenceBackend(spec["model_dir"], dtype=spec["dtype"])
    model = backend.model
    load = time.perf_counter() - t0
    vision: list[float] = []
    model.model.visual.register_forward_pre_hook(lambda *_: vision.append(-time.perf_counter()))
    model.model.visual.register_forward_hook(lambda *_: vision.append(time.perf_counter()))
    marks: list[float] = []

    def mark(input_ids, scores, **kwargs):  # a stopping criterion that never stops: a clock
        marks.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    def generate(inputs: dict, n: int) -> None:
        with torch.inference_mode():
            # min_new_tokens suppresses EOS until n tokens exist; no stop strings are given.
            model.generate(**inputs, do_sample=False, max_new_tokens=n, min_new_tokens=n,
                           eos_token_id=backend.eos_ids, pad_token_id=backend.tokenizer.pad_token_id,
                           stopping_criteria=[mark])

    if spec["warmup"]:
        generate(backend.prepare_inputs(*warmup_inputs()), 2)
    messages, shots = step_inputs(spec["images"], tuple(spec["size"]), spec["seed"])
    runs = []
    for _ in range(spec.get("repeat", 1)):
        vision.clear()
        marks.clear()
        t0 = time.perf_counter()
        inputs = backend.prepare_inputs(messages, shots)
        t1 = time.perf_counter()
        generate(inputs, spec["new_tokens"])
        end = time.perf_counter()
        vision_s = sum(vision)
        runs.append({"prompt_tokens": int(inputs["input_ids"].shape[1]), "generated": len(marks),
                     "preprocess_s": t1 - t0, "vision_s": vision_s,
                     "prefill_s": marks[0] - t1 - vision_s, "decode_s": end - marks[0],
                     "total_s": end - t0})
    return median_run(runs) | {"load_s": load, "peak_rss": peak_rss(), "vision_note": ""}


def run_onnx(spec: dict[str, Any]) -> dict[str, Any]:
    """onnxruntime-genai on the export, CPU; vision.onnx timed apart with onnxruntime."""
    from agent.inference.chat import render_prompt
    from agent.inference.onnx import OnnxBackend

    t0 = time.perf_counter()
    backend = OnnxBackend(spec["model_dir"], provider="cpu")
    load = time.perf_counter() - t0
    og = backend._og

    def prepare(messages: list, shots: list):
        prompt = render_prompt(backend.template, messages)
        og_images = og.Images.open_bytes(*[_png(im) for im in shots]) if shots else None
        return backend.processor(prompt, images=og_images)

    def generate(inputs, n: int) -> list[float]:
        prompt = int(inputs["input_ids"].as_numpy().shape[-1])
        params = og.GeneratorParams(backend.model)
        # min_length = max_length: the search never ends at EOS before n new tokens.
        params.set_search_options(do_sample=False, num_beams=1, max_length=prompt + n,
                                  min_length=prompt + n)
        generator = og.Generator(backend.model, params)
        marks = [time.perf_counter()]
        generator.set_inputs(inputs)  # vision, embedding and decoder prefill run from here on
        while len(marks) <= n and not generator.is_done():
            generator.generate_next_token()
            marks.append(time.perf_counter())
        return marks

    if spec["warmup"]:
        generate(prepare(*warmup_inputs()), 2)
    messages, shots = step_inputs(spec["images"], tuple(spec["size"]), spec["seed"])
    runs = []
    for _ in range(spec.get("repeat", 1)):
        t0 = time.perf_counter()
        inputs = prepare(messages, shots)
        marks = generate(inputs, spec["new_tokens"])
        runs.append({"prompt_tokens": int(inputs["input_ids"].as_numpy().shape[-1]),
                     "generated": len(marks) - 1, "preprocess_s": marks[0] - t0,
                     "first_token_s": marks[1] - marks[0], "decode_s": marks[-1] - marks[1],
                     "total_s": marks[-1] - t0})
    rss = peak_rss()  # before the separate vision runs below add their own session
    vision = _time_vision(Path(spec["model_dir"]) / "vision.onnx", inputs, len(runs)) \
        if shots else [0.0] * len(runs)
    for run, vision_s in zip(runs, vision, strict=True):
        run["vision_s"] = vision_s
        run["prefill_s"] = max(run["first_token_s"] - vision_s, 0.0)
    return median_run(runs) | {
        "load_s": load, "peak_rss": rss,
        "vision_note": "vision.onnx run apart with onnxruntime on the same pixels; "
                       "prefill = first-token time minus that"}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field medians over repeated runs, with every run's step total kept."""
    import statistics

    out = {key: statistics.median(run[key] for run in runs) if key.endswith("_s") else value
           for key, value in runs[0].items()}  # counts are the same in every run
    out["repeats"] = len(runs)
    out["total_s_runs"] = [run["total_s"] for run in runs]
    return out


def _time_vision(path: Path, inputs, times: int) -> list[float]:
    """Seconds per run of vision.onnx on the step's pixels, in a plain onnxruntime session."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"pixel_values": inputs["pixel_values"].as_numpy().astype("float32"),
            "image_grid_thw": inputs["image_grid_thw"].as_numpy().astype("int64")}
    seconds = []
    for _ in range(times):
        start = time.perf_counter()
        session.run(None, feed)
        seconds.append(time.perf_counter() - start)
    return seconds


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def main(argv: list[str]) -> int:
    """Run the spec in argv[0], write the result JSON to argv[1]."""
    spec = json.loads(argv[0])
    result = run_onnx(spec) if spec["backend"].startswith("onnx") else run_torch(spec)
    result["decode_per_token_s"] = result["decode_s"] / max(result["generated"] - 1, 1)
    Path(argv[1]).write_text(json.dumps(spec | result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
