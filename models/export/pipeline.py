"""export_model: a Hugging Face checkpoint (Qwen2.5-VL, Qwen3.5) -> an onnxruntime-genai folder.

Stages (each skipped on a re-run when its outputs exist and its inputs did not change):
text decoder (onnxruntime-genai builder) -> embedding.onnx -> vision.onnx -> configs and
tokenizer -> manifest. Every check that can fail runs before the first long stage. The family
(`models.export.families`, from config.json's model_type) picks the vision exporter and the
genai type; the stages are the same for all.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agent.atomic import write_json_atomic
from agent.options import EXPORT_PROVIDERS
from models.export.checks import Checkpoint, ExportError, check_resources, inspect_checkpoint
from models.export.manifest import exporter_fingerprint, source_hash, write_manifest

# on_progress(stage, done, total): after each unit of a stage (the app's export shows it).
ProgressCallback = Callable[[str, int, int], None]

PRECISIONS = ("int4", "fp16", "fp32")
PROVIDERS = EXPORT_PROVIDERS
VISION_QUANT = (None, "int8", "int4")
BLOCK_SIZES = (32, 64, 128, 256)
# Weight-quantization block size. On AVX-512 VNNI CPUs the int4 kernel with int8 activations
# multiplies prompt-sized batches 1.5x faster with blocks of 128 than with the builder's default
# 32 (786 vs 515 GFLOP/s, one MatMulNBits of 2048x3584x4736 on 2 cores); 128 is also the usual
# GPTQ/AWQ group size.
DEFAULT_BLOCK_SIZE = 128
STATE = ".export-state.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.json",
                   "chat_template.jinja", "vocab.json", "merges.txt", "special_tokens_map.json",
                   "added_tokens.json", "generation_config.json", "preprocessor_config.json",
                   "deskhand_prompt.json")  # a model's declared system prompt (agent.prompts)


def export_model(hf_dir: str | Path, out_dir: str | Path, *, precision: str = "int4",
                 provider: str = "cpu", vision_quant: str | None = None,
                 block_size: int = DEFAULT_BLOCK_SIZE, progress: bool = True,
                 on_progress: ProgressCallback | None = None) -> Path:
    """Export a Qwen2.5-VL or Qwen3.5 checkpoint to an onnxruntime-genai folder; return the folder.

    `precision` is the text decoder's (builder) precision; `vision_quant` ("int8" / "int4")
    quantizes the weights of vision.onnx and embedding.onnx block-wise (None keeps fp32);
    `block_size` is the quantization block of both (values per scale). `progress` shows
    terminal bars; `on_progress` is called as each stage starts and after each of its units.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if provider not in PROVIDERS:
        raise ExportError(f"provider must be one of {', '.join(PROVIDERS)}, not {provider!r}")
    if vision_quant not in VISION_QUANT:
        raise ExportError(f"vision_quant must be None, 'int8' or 'int4', not {vision_quant!r}")
    if block_size not in BLOCK_SIZES:
        raise ExportError(f"block_size must be one of {', '.join(map(str, BLOCK_SIZES))}, "
                          f"not {block_size!r}")
    src, out = Path(hf_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if out == src:
        raise ExportError("choose an output folder outside the checkpoint folder")
    ckpt = inspect_checkpoint(src)
    estimate = check_resources(ckpt, out, precision, vision_quant, provider)
    state = _load_state(out)
    source = state.get("source")
    files = [*ckpt.weight_files, src / "config.json"]
    if source is None or state.get("source_files") != _file_stamps(files):
        source = _with_bar("hash source", 1, progress, on_progress,
                           lambda tick: (source_hash(files), tick())[0])
    key = {"source": source, "precision": precision, "provider": provider,
           "vision_quant": vision_quant, "block_size": block_size,
           "exporter": exporter_fingerprint()}
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v for k, v in state.items() if k in ("stages",)} | {
        "source": source, "source_files": _file_stamps(files)}
    stages: list[tuple[str, list[str], Callable]] = [
        ("text", ["model.onnx", "genai_config.json"],
         lambda tick: _text_stage(ckpt, out, precision, provider, block_size, tick)),
        ("embedding", ["embedding.onnx"], lambda tick: _embedding_stage(ckpt, out, vision_quant, tick)),
        ("vision", ["vision.onnx"],
         lambda tick: _vision_stage(ckpt, out, vision_quant, block_size, tick)),
        ("configs", ["processor_config.json", "tokenizer.json"],
         lambda tick: _config_stage(ckpt, out, tick)),
    ]
    sizes = {"text": 1, "embedding": 1, "vision": int(ckpt.config["vision_config"]["depth"]) + 2,
             "configs": 1}
    done = state.setdefault("stages", {})
    for name, outputs, run in stages:
        stage_key = _digest(key | {"stage": name})
        if done.get(name) == stage_key and all((out / f).exists() for f in outputs):
            continue
        done.pop(name, None)
        _save_state(out, state)
        _with_bar(name, sizes[name], progress, on_progress, run)
        done[name] = stage_key
        _save_state(out, state)
    write_manifest(out, {
        "source": {"path": str(src), "sha256": source, "bytes": ckpt.source_bytes},
        "precision": precision, "provider": provider, "vision_quant": vision_quant,
        "block_size": block_size, "model_type": ckpt.family.genai_type,
        "family": ckpt.family.prompt_family, "estimated_bytes": estimate,
        "params": {"text": ckpt.text_params, "vision": ckpt.vision_params,
                   "embedding": ckpt.embed_params},
        "versions": _versions(),
    } | ({"rope": rope} if (rope := rope_settings(ckpt)) else {}))
    return out


def rope_settings(ckpt: Checkpoint) -> dict[str, float] | None:
    """The text decoder's rotary settings, for the runtime's shifted reuse (agent/inference/
    kv_shift.py, which turns cached keys by a position change): Qwen2.5-VL family only (a
    linear-attention layer's state cannot be shifted). The builder bakes them into the graph's
    cos/sin tables, so the manifest is where the runtime can read them without onnx."""
    if ckpt.family.prompt_family != "fara":
        return None
    config = ckpt.config
    text = config.get("text_config") or config
    params = text.get("rope_parameters") or text.get("rope_scaling") or {}
    theta = params.get("rope_theta") or text.get("rope_theta") or config.get("rope_theta")
    heads = text.get("num_attention_heads") or config.get("num_attention_heads")
    hidden = text.get("hidden_size") or config.get("hidden_size")
    head_dim = text.get("head_dim") or (hidden // heads if hidden and heads else None)
    if not theta or not head_dim:
        return None
    partial = float(params.get("partial_rotary_factor") or text.get("partial_rotary_factor") or 1.0)
    return {"theta": float(theta), "rotary_dim": int(head_dim * partial)}


def _text_stage(ckpt: Checkpoint, out: Path, precision: str, provider: str, block_size: int,
                tick: Callable[[], None]) -> None:
    cache = out / ".cache"
    log = out / "export-text.log"
    # The builder, quantizing one matrix at a time as it writes (models/export/text_builder.py).
    cmd = [sys.executable, "-m", "models.export.text_builder", "-i", str(ckpt.path),
           "-o", str(out), "-p", precision, "-e", provider, "-c", str(cache),
           "--extra_options", "exclude_embeds=true", "prune_lm_head=true",
           f"block_size={block_size}"]
    with log.open("w") as f:
        result = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False)
    shutil.rmtree(cache, ignore_errors=True)
    if result.returncode != 0 or not (out / "model.onnx").is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise ExportError("the text decoder export failed (onnxruntime-genai builder); "
                          f"see {log}:\n" + "\n".join(tail))
    tick()


def _embedding_stage(ckpt: Checkpoint, out: Path, quant: str | None,
                     tick: Callable[[], None]) -> None:
    from models.export.embedding import build_embedding
    from models.export.weights import Weights

    build_embedding(Weights(ckpt.path), int(ckpt.config["image_token_id"]),
                    out / "embedding.onnx", quant)
    tick()


def _vision_stage(ckpt: Checkpoint, out: Path, vision_quant: str | None, block_size: int,
                  tick: Callable[[], None]) -> None:
    from importlib import import_module

    from models.export.weights import Weights

    build_vision = import_module(ckpt.family.vision_module).build_vision
    build_vision(Weights(ckpt.path), ckpt.config["vision_config"], out / "vision.onnx", tick)
    if vision_quant is not None:
        from models.export.quantize import quantize_matmuls

        quantize_matmuls(out / "vision.onnx", 8 if vision_quant == "int8" else 4, block_size)
    tick()


def _config_stage(ckpt: Checkpoint, out: Path, tick: Callable[[], None]) -> None:
    from models.export.genai import finish_genai_config

    pre_path = ckpt.path / "preprocessor_config.json"
    pre = json.loads(pre_path.read_text()) if pre_path.is_file() else {}
    # The builder writes its own tokenizer files; the checkpoint's originals (with the chat
    # template) are what both backends render prompts with, so they win.
    for name in TOKENIZER_FILES:
        if (ckpt.path / name).is_file():
            shutil.copy2(ckpt.path / name, out / name)
    finish_genai_config(out, ckpt.config, pre, ckpt.family.genai_type)
    tick()


def _with_bar(name: str, total: int, progress: bool, on_progress: ProgressCallback | None,
              run: Callable):
    from tqdm import tqdm

    done = 0

    def tick() -> None:  # tqdm counts nothing when disabled, so the count is kept here
        nonlocal done
        done = min(done + 1, total)
        bar.update(1)
        if on_progress is not None:
            on_progress(name, done, total)

    with tqdm(total=total, desc=name, disable=not progress, leave=True) as bar:
        if on_progress is not None:
            on_progress(name, 0, total)
        return run(tick)


def _file_stamps(files: list[Path]) -> dict:
    return {p.name: [p.stat().st_size, int(p.stat().st_mtime)] for p in files}


def _digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _load_state(out: Path) -> dict:
    try:
        return json.loads((out / STATE).read_text())
    except (OSError, ValueError):
        return {}


def _save_state(out: Path, state: dict) -> None:
    write_json_atomic(out / STATE, state)  # a crash mid-write must not forget finished stages


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in ("onnxruntime-genai", "onnxruntime", "onnx", "transformers", "torch"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return found
