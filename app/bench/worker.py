"""One benchmark measurement, run in its own process: one backend, one agent run of N steps.

    python -m app.bench.worker SPEC_JSON     (prints the result JSON)

The parent (`app.bench`) starts one process per backend through agent/childproc, so the peak
resident memory read here at the end (VmHWM) belongs to that backend alone; steps are reported
to it as progress events and the result comes back as the child's result. Each step is the real Fara prompt of
that step of a run: the task with the first screenshot, then one reply and one new screenshot
per step, the newest three screenshots kept. Generation is forced to exactly `new_tokens`
tokens (end-of-sequence and the stop text suppressed), so every backend decodes the same
amount whatever its random weights prefer to say.

The replies in the history are fixed Fara-style texts, not what the random model generated,
so the runtime cannot reuse the keys and values of its own reply as it would in a real run:
the prefix cache is measured conservatively.
"""

from __future__ import annotations

import io
import json
import resource
import statistics
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


def parse_size(text: str) -> tuple[int, int]:
    """"WxH" (e.g. 1428x896) as (width, height); ValueError otherwise (an argparse `type`)."""
    width, sep, height = text.lower().partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        raise ValueError(f"expected a size WxH such as 1428x896, not {text!r}") from None
    if not sep or min(size) < 1:
        raise ValueError(f"expected a size WxH such as 1428x896, not {text!r}")
    return size


def screenshots(count: int, size: tuple[int, int], seed: int = 0) -> list:
    """`count` distinct seeded-noise screenshots at model size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(count)]


def step_inputs(step: int, shots: list, size: tuple[int, int],
                history_scale: float = 1.0, family: str = "fara",
                system: str | None = None) -> tuple[list, list]:
    """Messages and images of step `step` (1-based) of a run over `shots`, in `family`'s prompt
    (with `system` as the system prompt when the model folder declares one, as the loop does)."""
    from agent.geometry import Size
    from agent.prompts import Turn, get_family

    history = [Turn(shots[i], REPLIES[i % len(REPLIES)], URLS[i % len(URLS)])
               for i in range(step - 1)]
    return get_family(family, system=system).build(TASK, history, shots[step - 1], Size(*size),
                              url=URLS[(step - 1) % len(URLS)], history_scale=history_scale)


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


def run_steps(spec: dict[str, Any], one_step) -> list[list[dict[str, Any]]]:
    """`repeat` runs of `steps` steps; one_step(step, messages, images) -> that step's record."""
    from agent.childproc import report_progress
    size = tuple(spec["size"])
    shots = screenshots(spec["steps"], size, spec["seed"])
    system = spec.get("system")  # the checkpoint's declared system prompt, read by the parent
    runs = []
    for _ in range(spec["repeat"]):
        records = []
        for step in range(1, spec["steps"] + 1):
            messages, images = step_inputs(step, shots, size, spec.get("history_scale", 1.0),
                                           spec.get("family", "fara"), system)
            record = one_step(step, messages, images)
            record.update(step=step, images=len(images))
            report_progress(f"run {len(runs) + 1}/{spec['repeat']} step", step, spec["steps"])
            records.append(record)
        runs.append(records)
    return runs


def run_torch(spec: dict[str, Any]) -> dict[str, Any]:
    """transformers generate() on the checkpoint in fp32 or bf16; vision timed by hooks."""
    import torch

    from agent.inference.factory import ModelKind, ModelSpec, RuntimeOptions, build_backend

    torch.set_num_threads(spec["threads"])
    t0 = time.perf_counter()
    backend: Any = build_backend(ModelSpec(ModelKind.REFERENCE, spec["model_dir"]),
                                 options=RuntimeOptions(dtype=spec["dtype"]))
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

    def one_step(step: int, messages: list, images: list) -> dict[str, Any]:
        vision.clear()
        marks.clear()
        t0 = time.perf_counter()
        inputs = backend.prepare_inputs(messages, images)
        t1 = time.perf_counter()
        generate(inputs, spec["new_tokens"])
        end = time.perf_counter()
        vision_s = sum(vision)
        tokens = int(inputs["input_ids"].shape[1])
        return {"prompt_tokens": tokens, "cached_tokens": 0, "computed_tokens": tokens,
                "images_encoded": len(images), "generated": len(marks), "preprocess_s": t1 - t0,
                "vision_s": vision_s, "prefill_s": marks[0] - t1 - vision_s,
                "decode_s": end - marks[0], "total_s": end - t0}

    runs = run_steps(spec, one_step)
    return {"runs": runs, "load_s": load, "peak_rss": peak_rss()}


def run_onnx(spec: dict[str, Any]) -> dict[str, Any]:
    """Deskhand's own ONNX Runtime loop on the export, CPU, with the spec's cache options."""
    from agent.inference.factory import ModelKind, ModelSpec, RuntimeOptions, build_backend

    t0 = time.perf_counter()
    options = RuntimeOptions(threads=spec["threads"],
                             vision_cache=4 if spec.get("vision_cache", True) else 0,
                             prefix_cache=spec.get("prefix_cache", True), fixed_length=True,
                             kv_shift=spec.get("kv_shift", False))
    backend: Any = build_backend(ModelSpec(ModelKind.ONNX, spec["model_dir"]), provider="cpu",
                                 options=options)
    load = time.perf_counter() - t0
    warm = backend.warm_up() if spec["warmup"] else 0.0
    n = spec["new_tokens"]

    def one_step(step: int, messages: list, images: list) -> dict[str, Any]:
        if step == 1:
            backend.vlm.forget()  # every run starts cold, as a new task does
        t0 = time.perf_counter()
        gen = backend.generate(messages, images, max_new_tokens=n)
        total = time.perf_counter() - t0
        stats = backend.vlm.stats
        t = gen.timings
        return {"prompt_tokens": gen.prompt_tokens, "cached_tokens": gen.cached_tokens,
                "computed_tokens": stats.computed_tokens, "images_encoded": stats.images_encoded,
                "generated": gen.generated_tokens, "preprocess_s": t["preprocess"],
                "vision_s": t["vision"], "prefill_s": t["prefill"], "decode_s": t["decode"],
                "total_s": total, "kv_bytes": backend.vlm.kv.nbytes,
                "shifted_tokens": stats.shifted_tokens}

    runs = run_steps(spec, one_step)
    return {"runs": runs, "load_s": load, "warmup_s": warm, "peak_rss": peak_rss()}


def run_genai(spec: dict[str, Any]) -> dict[str, Any]:
    """onnxruntime-genai's own multimodal pipeline on the export: the naive baseline.

    It runs vision, embedding and prefill inside one call with no hook in between, so vision
    is timed apart on the same pixels with onnxruntime and prefill is the rest.
    """
    import onnxruntime_genai as og

    from agent.inference.chat import find_chat_template, render_prompt

    folder = Path(spec["model_dir"])
    t0 = time.perf_counter()
    config = og.Config(str(folder))
    config.clear_providers()
    model = og.Model(config)
    processor = model.create_multimodal_processor()
    template = find_chat_template(folder)
    load = time.perf_counter() - t0
    vision = _vision_timer(folder / "vision.onnx", spec["threads"])

    def prepare(messages: list, shots: list):
        og_images = og.Images.open_bytes(*[_png(im) for im in shots]) if shots else None
        return processor(render_prompt(template, messages), images=og_images)

    def generate(inputs, n: int) -> list[float]:
        prompt = int(inputs["input_ids"].as_numpy().shape[-1])
        params = og.GeneratorParams(model)
        # min_length = max_length: the search never ends at EOS before n new tokens.
        params.set_search_options(do_sample=False, num_beams=1, max_length=prompt + n,
                                  min_length=prompt + n)
        generator = og.Generator(model, params)
        marks = [time.perf_counter()]
        generator.set_inputs(inputs)  # vision, embedding and decoder prefill run from here on
        while len(marks) <= n and not generator.is_done():
            generator.generate_next_token()
            marks.append(time.perf_counter())
        return marks

    if spec["warmup"]:
        generate(prepare(*warmup_inputs()), 2)

    def one_step(step: int, messages: list, images: list) -> dict[str, Any]:
        t0 = time.perf_counter()
        inputs = prepare(messages, images)
        marks = generate(inputs, spec["new_tokens"])
        tokens = int(inputs["input_ids"].as_numpy().shape[-1])
        vision_s = vision(inputs) if images else 0.0
        return {"prompt_tokens": tokens, "cached_tokens": 0, "computed_tokens": tokens,
                "images_encoded": len(images), "generated": len(marks) - 1,
                "preprocess_s": marks[0] - t0, "vision_s": vision_s,
                "prefill_s": max(marks[1] - marks[0] - vision_s, 0.0),
                "decode_s": marks[-1] - marks[1], "total_s": marks[-1] - t0}

    runs = run_steps(spec, one_step)
    return {"runs": runs, "load_s": load, "peak_rss": peak_rss(),
            "vision_note": "vision.onnx run apart with onnxruntime on the same pixels"}


def _vision_timer(path: Path, threads: int):
    """A function timing vision.onnx on a genai input's pixels (session made on first use)."""
    session = None

    def timed(inputs) -> float:
        nonlocal session
        import onnxruntime as ort

        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"pixel_values": inputs["pixel_values"].as_numpy().astype("float32"),
                "image_grid_thw": inputs["image_grid_thw"].as_numpy().astype("int64")}
        start = time.perf_counter()
        session.run(None, feed)
        return time.perf_counter() - start

    return timed


def summarize(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per step, the median of every timing over the repeated runs (counts from the first)."""
    out = []
    for records in zip(*runs, strict=True):
        first = dict(records[0])
        for key in first:
            if key.endswith("_s"):
                first[key] = statistics.median(r[key] for r in records)
        first["total_s_runs"] = [r["total_s"] for r in records]
        first["decode_per_token_s"] = first["decode_s"] / max(first["generated"] - 1, 1)
        out.append(first)
    return out


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def run_llamacpp(spec: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's server on the GGUF conversion (app/bench/llamacpp.py)."""
    from app.bench.llamacpp import run_llamacpp as run

    return run(spec)


RUNNERS = {"torch": run_torch, "onnx": run_onnx, "genai": run_genai, "llamacpp": run_llamacpp}


def main(argv: list[str]) -> int:
    """Run the spec in argv[0]; the result to the parent (run_child) or printed as JSON."""
    from agent.childproc import in_child, send_result

    spec = json.loads(argv[0])
    result = RUNNERS[spec["runner"]](spec)
    result["steps"] = summarize(result.pop("runs"))
    if in_child():
        send_result(spec | result)
    else:
        print(json.dumps(spec | result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
