"""Random Qwen2.5-VL checkpoints with a real tokenizer and processor: tiny, or Fara-7B-shaped.

Not test-only: `deskhand bench` builds its checkpoints here (`make_fara_shaped_checkpoint` for
a real run, `make_tiny_checkpoint` for `--tiny`), and the tests build the tiny model with it
(`tests/conftest.py`). The sizes are tiny but the vision structure is the real one
(patch 14, merge 2, window 112, full-attention blocks, M-RoPE sections), so exporters and
backends meet the same code paths as with Fara-7B. Built in seconds, deterministic for a given
seed.
"""

from __future__ import annotations

import json
from pathlib import Path

# Model-facing words the tokenizer should know, so the tiny model's token counts stay realistic.
_CORPUS = [
    "You are a helpful assistant.",
    "You are a web automation agent that performs actions on a computer to fulfill the user's "
    "request.",
    "The screen's resolution is 1428x896. Stop at critical points such as checkout or booking.",
    '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
    '"coordinate": [640, 360]}}\n</tool_call>',
    '{"name": "computer_use", "arguments": {"action": "type", "text": "hello world", "press_enter": true, '
    '"delete_existing_text": false, "coordinate": [100, 200]}}',
    '{"action": "key", "keys": ["ctrl", "l"]} {"action": "scroll", "pixels": -500}',
    '{"action": "visit_url", "url": "https://www.example.com/search?q=cheap+flights"}',
    '{"action": "web_search", "query": "weather tomorrow"} {"action": "history_back"}',
    '{"action": "pause_and_memorize_fact", "fact": "the price is $42.99"}',
    '{"action": "wait", "time": 2} {"action": "terminate", "status": "success"} "failure"',
    '{"action": "mouse_move", "coordinate": [12, 34]} Escape Enter Tab Backspace alt cmd shift',
    "Current URL: http://localhost:8000/index.html. What is the next action?",
    "I will click the search box, type the query and press enter to see the results.",
    "The page shows a list of products with prices, ratings and an add to cart button.",
    "0123456789 ,.;:!?()[]{}<>/\\|@#$%^&*-_=+~`'\" \n\t",
    "The quick brown fox jumps over the lazy dog. Find a recipe, book a table, open settings.",
]

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
]

# Qwen2.5-VL's ChatML template, written for this project (image parts become vision placeholders).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenizer split rule (digits one by one, words with a leading space, punctuation).
_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Sizes: vision qkv width 3*64=192 and merger width 4*64=256 must differ from the vocab size,
# or the ONNX builder mistakes a vision layer for the LM head.
TEXT_HIDDEN = 128
VISION_HIDDEN = 64
VOCAB_SIZE = 640


def _train_tokenizer(vocab_size: int, corpus: list[str] | None = None):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((corpus or _CORPUS) * 4, trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS[:7])
    tok.add_tokens(SPECIAL_TOKENS[7:])  # tool-call tags are ordinary added tokens in Qwen
    return tok


def _config(tok) -> dict:
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    head_dim = TEXT_HIDDEN // 4
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "text_config": {
            "model_type": "qwen2_5_vl_text",
            "vocab_size": VOCAB_SIZE,
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0,
                                "mrope_section": [4, 6, 6]},
            "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [4, 6, 6]},
            "rope_theta": 1000000.0,
            "use_sliding_window": False,
            "sliding_window": 32768,
            "max_window_layers": 2,
            "attention_dropout": 0.0,
            "tie_word_embeddings": False,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
        },
        "vision_config": {
            "model_type": "qwen2_5_vl_vision",
            "depth": 4,
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": 128,
            "num_heads": 2,
            "out_hidden_size": TEXT_HIDDEN,
            "hidden_act": "silu",
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1, 3],
            "tokens_per_second": 2,
        },
    }


PREPROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
    "do_resize": True,
    "do_rescale": True,
    "do_normalize": True,
    "do_convert_rgb": True,
    "rescale_factor": 1 / 255,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
}


def make_tiny_checkpoint(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random Qwen2.5-VL checkpoint (weights, tokenizer, processor) to `out_dir`."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer(VOCAB_SIZE - 16)
    cfg_dict = _config(tok)
    config = Qwen2_5_VLConfig(**cfg_dict)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    # Random init with std 0.02 gives near-flat logits; wider weights make greedy choices decisive,
    # so token-identity tests detect real numerical differences rather than ties.
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / p.shape[-1] ** 0.5)
                        if p.dim() == 2 else torch.randn(p.shape, generator=gen) * 0.05)
            elif "norm" not in name and "ln_q" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    model.save_pretrained(out, safe_serialization=True)
    # save_pretrained writes the normalized config; keep ours for tools reading the raw json.
    (out / "config.json").write_text(json.dumps(cfg_dict, indent=2))

    _write_tokenizer_files(out, tok, cfg_dict)
    return out


def _write_tokenizer_files(out: Path, tok, cfg_dict: dict) -> None:
    """Tokenizer, chat template, processor and generation configs next to the weights."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:7],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    tcfg_path = out / "tokenizer_config.json"
    tcfg = json.loads(tcfg_path.read_text())
    tcfg["tokenizer_class"] = "Qwen2Tokenizer"
    tcfg["chat_template"] = CHAT_TEMPLATE
    tcfg["model_max_length"] = 32768
    tcfg_path.write_text(json.dumps(tcfg, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    (out / "generation_config.json").write_text(json.dumps({
        "do_sample": False,
        "eos_token_id": [cfg_dict["eos_token_id"], cfg_dict["pad_token_id"]],
        "pad_token_id": cfg_dict["pad_token_id"],
    }, indent=2))


# Qwen2.5-VL-7B (and so Fara-7B): the real widths; layer counts are chosen per call.
FARA_TEXT = {"hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
             "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 152064}
FARA_VISION = {"hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
               "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
               "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]}
FARA_MROPE = [16, 24, 24]
FARA_LAYERS = {"text": 28, "vision": 32}


def fara_config(tok, text_layers: int, vision_blocks: int) -> dict:
    """Qwen2.5-VL-7B's config with `text_layers` decoder layers and `vision_blocks` vision blocks.

    Among the reduced vision blocks at least one stays full-attention, so both kinds are measured.
    """
    cfg = _config(tok)
    full = [i for i in FARA_VISION["fullatt_block_indexes"] if i < vision_blocks] or [vision_blocks - 1]
    rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": FARA_MROPE}
    cfg["text_config"].update(FARA_TEXT, num_hidden_layers=text_layers,
                              max_window_layers=text_layers, max_position_embeddings=128000,
                              rope_parameters=rope,
                              rope_scaling={"type": "mrope", **rope})
    cfg["vision_config"].update(FARA_VISION, depth=vision_blocks, fullatt_block_indexes=full)
    cfg["torch_dtype"] = "bfloat16"
    return cfg


def _fara_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes as Qwen2.5-VL checkpoints store them."""
    t, v = cfg["text_config"], cfg["vision_config"]
    d, ff, vocab = t["hidden_size"], t["intermediate_size"], t["vocab_size"]
    q, kv = t["num_attention_heads"] * t["head_dim"], t["num_key_value_heads"] * t["head_dim"]
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, d),
                                          "lm_head.weight": (vocab, d), "model.norm.weight": (d,)}
    for i in range(t["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        shapes |= {pre + "input_layernorm.weight": (d,), pre + "post_attention_layernorm.weight": (d,),
                   pre + "self_attn.q_proj.weight": (q, d), pre + "self_attn.q_proj.bias": (q,),
                   pre + "self_attn.k_proj.weight": (kv, d), pre + "self_attn.k_proj.bias": (kv,),
                   pre + "self_attn.v_proj.weight": (kv, d), pre + "self_attn.v_proj.bias": (kv,),
                   pre + "self_attn.o_proj.weight": (d, q), pre + "mlp.gate_proj.weight": (ff, d),
                   pre + "mlp.up_proj.weight": (ff, d), pre + "mlp.down_proj.weight": (d, ff)}
    vd, vff, patch = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    merged = vd * v["spatial_merge_size"] ** 2
    shapes["visual.patch_embed.proj.weight"] = (vd, 3, 2, patch, patch)
    for i in range(v["depth"]):
        pre = f"visual.blocks.{i}."
        shapes |= {pre + "norm1.weight": (vd,), pre + "norm2.weight": (vd,),
                   pre + "attn.qkv.weight": (3 * vd, vd), pre + "attn.qkv.bias": (3 * vd,),
                   pre + "attn.proj.weight": (vd, vd), pre + "attn.proj.bias": (vd,),
                   pre + "mlp.gate_proj.weight": (vff, vd), pre + "mlp.gate_proj.bias": (vff,),
                   pre + "mlp.up_proj.weight": (vff, vd), pre + "mlp.up_proj.bias": (vff,),
                   pre + "mlp.down_proj.weight": (vd, vff), pre + "mlp.down_proj.bias": (vd,)}
    shapes |= {"visual.merger.ln_q.weight": (vd,), "visual.merger.mlp.0.weight": (merged, merged),
               "visual.merger.mlp.0.bias": (merged,),
               "visual.merger.mlp.2.weight": (v["out_hidden_size"], merged),
               "visual.merger.mlp.2.bias": (v["out_hidden_size"],)}
    return shapes


def _fara_corpus(name: str = "fara") -> list[str]:
    """The tiny corpus plus every model-facing string of a Fara prompt family (`name`).

    Trained on these, the tokenizer splits the prompt about where Qwen's 152k-token vocabulary
    does (whole words), so the system prompt stays near its real size (~900 tokens).
    """
    from PIL import Image

    from agent.geometry import Size
    from agent.prompts import get_family

    family = get_family(name)
    texts: list[str] = []

    def walk(obj) -> None:
        if isinstance(obj, str):
            texts.append(obj)
        elif isinstance(obj, dict):
            texts.extend(obj)
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    walk(family.data)
    # The system prompt as the family renders it: the first message of a first step.
    system = family.build("task", [], Image.new("RGB", (28, 28)), Size(1428, 896))[0][0]
    content = system["content"]
    return _CORPUS + texts + [content if isinstance(content, str) else
                              "".join(part.get("text", "") for part in content)]


def make_fara_shaped_checkpoint(out_dir: str | Path, *, text_layers: int = 2,
                                vision_blocks: int = 2, seed: int = 0) -> Path:
    """Write a Fara-7B-shaped checkpoint (real widths, fewer layers, random bf16 weights).

    Weights are drawn tensor by tensor and written in shards of about 2 GB, so memory stays near
    one shard. The tokenizer is small; the config's vocab_size keeps Fara's 152064 rows for the
    embedding and LM head (ids past the tokenizer are never produced by it).
    """
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer(8192, _fara_corpus())
    cfg = fara_config(tok, text_layers, vision_blocks)
    gen = torch.Generator().manual_seed(seed)
    shard: dict[str, torch.Tensor] = {}
    shard_bytes, shards, weight_map = 0, [], {}

    def flush() -> None:
        nonlocal shard, shard_bytes
        name = f"model-{len(shards) + 1:05d}.safetensors"
        save_file(shard, str(out / name), metadata={"format": "pt"})
        shards.append(name)
        weight_map.update(dict.fromkeys(shard, name))
        shard, shard_bytes = {}, 0

    for name, shape in _fara_shapes(cfg).items():
        if len(shape) == 1:
            # Norm scales 1, biases small: activations keep a sane range through the layers.
            fill = torch.ones(shape) if "norm" in name or "ln_q" in name else \
                torch.randn(shape, generator=gen) * 0.02
            shard[name] = fill.to(torch.bfloat16)
        else:
            tensor = torch.empty(shape, dtype=torch.bfloat16)
            flat = tensor.view(-1)
            step = 1 << 24  # fp32 scratch of 64 MB at a time, never a whole fp32 copy
            for start in range(0, flat.numel(), step):
                stop = min(start + step, flat.numel())
                flat[start:stop] = torch.randn(stop - start, generator=gen) * 0.02
            shard[name] = tensor
        shard_bytes += shard[name].numel() * 2
        if shard_bytes >= 2 * 1024**3:
            flush()
    if shard:
        flush()
    total = sum((out / s).stat().st_size for s in shards)
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    _write_tokenizer_files(out, tok, cfg)
    return out


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    print(make_tiny_checkpoint(sys.argv[1] if len(sys.argv) > 1 else "tiny-qwen2_5_vl"))
