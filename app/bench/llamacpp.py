"""The llama.cpp bench row: what LM Studio / Ollama users run Fara with, on the same checkpoint.

A bench option, never needed by tests: `deskhand bench --llama-cpp DIR --backends ...,llamacpp-q4km`
where DIR is a llama.cpp source tree built with `llama-server` and `llama-quantize` (for example
the one `pip download --no-binary :all: llama-cpp-python` vendors; `cmake -B build
-DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build build --target llama-server llama-quantize`),
and the converter's own requirements in this Python (sentencepiece, from its
requirements/requirements-convert_hf_to_gguf.txt).

The checkpoint is converted with llama.cpp's own `convert_hf_to_gguf.py` (text at f16, then
Q4_K_M with `llama-quantize`; the vision tower as an f16 `--mmproj` projector) and served by
`llama-server` on loopback with its prompt cache on; the agent run's messages go to its
OpenAI-compatible endpoint with the screenshots as PNG data URLs, exactly as `--server` does.
The server's own timings split each step into cached / computed prompt tokens, prompt time
(image encoding included) and decode time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GGUF_KEY = "gguf-q4km"
QUANT = "Q4_K_M"
# Two things the converter cannot know about the bench's checkpoint, told to it here:
# - its tokenizer is trained by the bench (app/bench/checkpoints.py), so the converter cannot
#   recognise it by the hash of its output; its pre-tokenizer is Qwen2's regex;
# - its vision tower has fewer blocks (2) than the merger MLP's last index (mlp.2), and the
#   converter only maps block-indexed names below the block count.
_CONVERT = """
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {root!r} + "/gguf-py")
import gguf
_names = gguf.get_tensor_name_map
gguf.get_tensor_name_map = lambda arch, n_blocks: _names(arch, max(n_blocks, 64))
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
sys.argv = ["convert_hf_to_gguf.py", *{args!r}]
import runpy
runpy.run_path({root!r} + "/convert_hf_to_gguf.py", run_name="__main__")
"""


def tools(llama_dir: Path) -> dict[str, Path]:
    """The llama.cpp files the row needs; FileNotFoundError naming the first one missing."""
    found = {"convert": llama_dir / "convert_hf_to_gguf.py",
             "server": llama_dir / "build" / "bin" / "llama-server",
             "quantize": llama_dir / "build" / "bin" / "llama-quantize"}
    for path in found.values():
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: build llama.cpp in {llama_dir} first "
                                    "(see app/bench/llamacpp.py)")
    return found


def convert(hf: Path, out: Path, llama_dir: Path) -> Path:
    """`out` with model.gguf (Q4_K_M) and mmproj.gguf (f16) made from the checkpoint `hf`."""
    paths = tools(llama_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, mmproj = out / "model.gguf", out / "mmproj.gguf"
    if model.is_file() and mmproj.is_file():
        return out
    f16 = out / "model-f16.gguf"
    _convert(llama_dir, [str(hf), "--outtype", "f16", "--outfile", str(f16)])
    _convert(llama_dir, [str(hf), "--mmproj", "--outtype", "f16", "--outfile", str(mmproj)])
    subprocess.run([str(paths["quantize"]), str(f16), str(model), QUANT], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    f16.unlink()
    _write_sizes(llama_dir, model, out / SIZES)
    return out


SIZES = "tensor-bytes.json"  # what a decode step reads, for the bench's cost model
_SIZES = """
import json, sys
sys.path.insert(0, {root!r} + "/gguf-py")
from gguf import GGUFReader
found = {{"layers": 0, "linear": 0, "lm_head": 0}}
for t in GGUFReader({model!r}).tensors:
    if t.name.startswith("blk."):
        found["layers"] += int(t.n_bytes)
    elif t.name == "output.weight":
        found["lm_head"] += int(t.n_bytes)
    elif t.name == "token_embd.weight":
        found["embedding"] = int(t.n_bytes)
if not found["lm_head"]:  # tied: the head multiplies by the embedding matrix
    found["lm_head"] = found.get("embedding", 0)
found.pop("embedding", None)
open({out!r}, "w").write(json.dumps(found))
"""


def _write_sizes(llama_dir: Path, model: Path, out: Path) -> None:
    code = _SIZES.format(root=str(llama_dir), model=str(model), out=str(out))
    subprocess.run([sys.executable, "-c", code], check=True)


def bytes_per_token(folder: Path) -> dict[str, int]:
    """Weight bytes a decode step reads (decoder layers, LM head), as converted."""
    return json.loads((Path(folder) / SIZES).read_text())


def weight_bytes(folder: Path) -> int:
    """Bytes of the GGUF files the server loads."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.gguf"))


def _convert(llama_dir: Path, args: list[str]) -> None:
    code = _CONVERT.format(root=str(llama_dir), args=args)
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict[str, Any], timeout: float = 3600.0) -> dict[str, Any]:
    from agent.inference.localhttp import open_request, read_capped

    data = json.dumps(body).encode()
    with open_request(url, "POST", body=data, timeout=timeout,
                      headers={"Content-Type": "application/json"}) as ex:
        raw = read_capped(ex.response, 64 << 20)
        if ex.response.status != 200:
            raise RuntimeError(f"llama-server answered {ex.response.status}: {raw[:300]!r}")
    return json.loads(raw)


def _wait_ready(base: str, server: subprocess.Popen, timeout: float = 600.0) -> None:
    from agent.inference.localhttp import open_request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"llama-server exited with {server.returncode}")
        try:
            with open_request(base + "/health", timeout=5) as ex:
                if ex.response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("llama-server did not become ready")


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_llamacpp(spec: dict[str, Any]) -> dict[str, Any]:
    """The agent run through llama-server (started here, stopped at the end)."""
    from agent.inference.openai_messages import to_openai_messages
    from app.bench.worker import run_steps, warmup_inputs

    folder, llama_dir = Path(spec["model_dir"]), Path(spec["llama_cpp"])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(tools(llama_dir)["server"]), "-m", str(folder / "model.gguf"),
           "--mmproj", str(folder / "mmproj.gguf"), "--host", "127.0.0.1", "--port", str(port),
           "-t", str(spec["threads"]), "-c", "32768", "-np", "1", "--no-ui",
           # The CPU weight repacking crashed llama-server at load on this machine (SIGSEGV
           # after the thread pool starts, llama.cpp 0.5.0-dev via llama-cpp-python 0.3.36, a
           # 2-core EPYC with AVX-512): off, at some cost to its matrix products.
           "--no-repack"]
    t0 = time.perf_counter()
    log_path = folder / "llama-server.log"
    log = log_path.open("w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, LLAMA_ARG_HOST="127.0.0.1"))
    try:
        try:
            _wait_ready(base, server)
        except RuntimeError as exc:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{exc}: " + " | ".join(tail)) from exc
        load = time.perf_counter() - t0

        def ask(messages: list, images: list, n: int) -> tuple[dict[str, Any], float]:
            start = time.perf_counter()
            answer = _post(base + "/v1/chat/completions", {
                "messages": to_openai_messages(messages, images), "max_tokens": n,
                "temperature": 0.0, "ignore_eos": True, "cache_prompt": True, "stream": False})
            return answer, time.perf_counter() - start

        if spec["warmup"]:
            ask(*warmup_inputs(), 2)

        def one_step(step: int, messages: list, images: list) -> dict[str, Any]:
            if step == 1:  # every run starts cold, as a new task does
                try:
                    _post(base + "/slots/0?action=erase", {})
                except (OSError, RuntimeError):
                    pass  # older servers: the first step then shares only the system prompt
            answer, total = ask(messages, images, spec["new_tokens"])
            t = answer.get("timings", {})
            cached, computed = int(t.get("cache_n", 0)), int(t.get("prompt_n", 0))
            prefill, decode = t.get("prompt_ms", 0.0) / 1000, t.get("predicted_ms", 0.0) / 1000
            return {"prompt_tokens": cached + computed, "cached_tokens": cached,
                    "computed_tokens": computed, "images_encoded": len(images),
                    "generated": int(t.get("predicted_n", 0)), "preprocess_s": 0.0,
                    "vision_s": 0.0, "prefill_s": prefill, "decode_s": decode,
                    "total_s": total}

        runs = run_steps(spec, one_step)
        rss = _peak_rss(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return {"runs": runs, "load_s": load, "peak_rss": rss,
            "vision_note": "llama-server's prompt time includes encoding the screenshots"}
