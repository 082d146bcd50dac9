"""Random Qwen3.5 (Fara1.5) checkpoints with a real tokenizer: tiny, and Fara1.5-4B's config.

The tiny model keeps every structural trait of the family at toy widths: the 3:1 pattern of
linear-attention (gated delta rule) and full-attention layers, the output-gated full attention
with q/k norms, partial interleaved M-RoPE, and a vision tower with patch 16, merge 2,
learned position embeddings and full attention in every block. Tests and `deskhand bench`
build it the way `app.bench.checkpoints` builds the Qwen2.5-VL ones; the tokenizer is trained
the same way (`_train_tokenizer`) with Qwen3.5's extra special tokens added.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.bench.checkpoints import CHAT_TEMPLATE, VOCAB_SIZE, _train_tokenizer

# Qwen3VLProcessor (transformers `processing_auto`: qwen3_5 -> Qwen3VLProcessor) names its
# tokens <|image_pad|>, <|video_pad|>, <|vision_start|>, <|vision_end|>: verified there.
# <think>/</think> are in Qwen3 tokenizers; that Qwen3.5's has them is UNVERIFIED (no hub access).
THINK_TOKENS = ["<think>", "</think>"]

TEXT_HIDDEN = 128
VISION_HIDDEN = 64  # qkv 192, MLP 128, merger 256: none equals the vocab (builder's LM-head guess)
TINY_LAYERS = 4     # three linear-attention layers, then one full-attention layer

# The tiny model's chat template is the Qwen2.5-VL tiny model's ChatML (`CHAT_TEMPLATE`, imported
# above). Qwen3.5's real template (tool wording, an opened <think> block after the generation
# prompt) is UNVERIFIED here: the exporter and runtimes take the template from the model folder,
# so the real checkpoint brings its own.

# Qwen3-VL-style processor: patch 16 (Qwen3_5VisionConfig default, verified), merge 2, temporal 2.
# Mean/std 0.5 is Qwen3-VL's preprocessor_config (UNVERIFIED for Qwen3.5); pixel bounds are the
# Fara1.5 agent's smart_resize bounds given in issue 13.
PREPROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen3VLProcessor",
    "do_resize": True, "do_rescale": True, "do_normalize": True, "do_convert_rgb": True,
    "rescale_factor": 1 / 255,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
}


def tiny_qwen35_config(ids: dict[str, int], layers: int = TINY_LAYERS) -> dict:
    """A Qwen3_5ForConditionalGeneration config at toy widths; `ids` maps special tokens."""
    head_dim = 64  # partial_rotary_factor 0.25 -> 16 rotary dims -> 8 frequencies = 3 + 3 + 2
    return {
        "architectures": ["Qwen3_5ForConditionalGeneration"],
        "model_type": "qwen3_5",
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "text_config": {
            "model_type": "qwen3_5_text",
            "vocab_size": VOCAB_SIZE,
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 256,
            "num_hidden_layers": layers,
            "layer_types": ["full_attention" if (i + 1) % 4 == 0 else "linear_attention"
                            for i in range(layers)],
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": head_dim,
            "linear_conv_kernel_dim": 4,
            "linear_key_head_dim": 16,
            "linear_value_head_dim": 16,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0,
                                "partial_rotary_factor": 0.25, "mrope_section": [3, 3, 2],
                                "mrope_interleaved": True},
            "attention_bias": False,
            "tie_word_embeddings": False,
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        "vision_config": {
            "model_type": "qwen3_5_vision",
            "depth": 2,
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": 128,
            "num_heads": 4,
            "in_channels": 3,
            "hidden_act": "gelu_pytorch_tanh",
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": TEXT_HIDDEN,
            "num_position_embeddings": 64,  # an 8 x 8 learned grid, interpolated to each image
        },
    }


def fara15_4b_config() -> dict:
    """Fara1.5-4B's text and vision sizes, as far as they could be checked here.

    Sources: [T] = transformers 5.24 `configuration_qwen3_5.py` defaults, which are Qwen3.5's
    shared design (vocab, head sizes of the linear layers, kernel, vision patching, the 1-in-4
    full-attention interval). [C] = confirmed against public config.json files of Qwen3.5-4B
    derivatives (Hugging Face Chat2Find/Chat2Find-CPT, "qwen3.5-4b": hidden 2560, intermediate
    9216, head_dim 256, full_attention_interval 4, 32 layers 3:1, attn_output_gate; the
    qwen3.5-moe-4.7B-d4B model card "from Qwen/Qwen3.5-4B": 32 layers, 16 Q / 4 KV heads,
    vocab 248320; an onnx_tool table of Qwen3.5-4B: tie_word_embeddings, rope_theta 1e7, linear
    heads 16 / 32 of 128). [M] = remembered, NOT verified. Nothing here is from
    microsoft/Fara1.5-4B's own config.json (no hub access); microsoft/fara's
    `fara15_agent.py` holds the agent, not the model config. Correct from that file before quoting.
    """
    return {
        "text": {
            "vocab_size": 248320,             # [T] [C]
            "hidden_size": 2560,              # [C]
            "intermediate_size": 9216,        # [C]
            "num_hidden_layers": 32,          # [C] (8 full-attention layers at 3:1)
            "num_attention_heads": 16,        # [C]
            "num_key_value_heads": 4,         # [T] [C]
            "head_dim": 256,                  # [T] [C]
            "linear_conv_kernel_dim": 4,      # [T] [C]
            "linear_key_head_dim": 128,       # [T] [C]
            "linear_value_head_dim": 128,     # [T] [C]
            "linear_num_key_heads": 16,       # [T] [C]
            "linear_num_value_heads": 32,     # [T] [C]
            "full_attention_interval": 4,     # [T] [C]
            "partial_rotary_factor": 0.25,    # [T] [C]
            "mrope_section": [11, 11, 10],    # [M] UNVERIFIED (64 rotary dims / 2)
            "rope_theta": 10000000.0,         # [C]
            "tie_word_embeddings": True,      # [C] (one third-party table only)
        },
        "vision": {
            "patch_size": 16,                 # [T]
            "spatial_merge_size": 2,          # [T]
            "temporal_patch_size": 2,         # [T]
            "num_position_embeddings": 2304,  # [T] (a 48 x 48 learned grid)
            "depth": 24,                      # [M] UNVERIFIED
            "hidden_size": 1024,              # [M] UNVERIFIED
            "intermediate_size": 4096,        # [M] UNVERIFIED
            "num_heads": 16,                  # [M] UNVERIFIED
            "out_hidden_size": 2560,          # = text hidden_size (issue 13)
        },
    }


def fara15_shaped_config(ids: dict[str, int], layers: int = 4, vision_blocks: int = 2) -> dict:
    """Fara1.5-4B's config (`fara15_4b_config`) at `layers` decoder layers (the 3:1 pattern kept)
    and `vision_blocks` vision blocks, in bf16."""
    real = fara15_4b_config()
    t, v = dict(real["text"]), dict(real["vision"])
    rope = {"rope_type": "default", "rope_theta": t.pop("rope_theta"),
            "partial_rotary_factor": t.pop("partial_rotary_factor"),
            "mrope_section": t.pop("mrope_section"), "mrope_interleaved": True}
    tied = t["tie_word_embeddings"]
    cfg = tiny_qwen35_config(ids, layers)
    cfg.update(tie_word_embeddings=tied, torch_dtype="bfloat16")
    cfg["text_config"].update(t, num_hidden_layers=layers, rope_parameters=rope,
                              layer_types=cfg["text_config"]["layer_types"])
    cfg["vision_config"].update(v, depth=vision_blocks)
    return cfg


def make_fara15_shaped_checkpoint(out_dir: str | Path, *, layers: int = 4, vision_blocks: int = 2,
                                  seed: int = 0) -> Path:
    """Write a Fara1.5-4B-shaped checkpoint: real widths, heads and vocabulary, `layers` decoder
    layers (three linear-attention to one full-attention), random bf16 weights.

    Weights keep transformers' initialisation (normal, std 0.02; the decay parameters at their
    stable init), drawn in bf16. The tokenizer is small and trained on the Fara1.5 prompt's
    strings; the config's vocab_size keeps 248320 rows for the embedding (and tied head).
    """
    import torch
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    from app.bench.checkpoints import _fara_corpus

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer(8192, _fara_corpus("fara15"))
    tok.add_tokens(THINK_TOKENS)
    ids = {t: tok.token_to_id(t) for t in ("<|endoftext|>", "<|im_end|>", "<|image_pad|>",
                                           "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    cfg_dict = fara15_shaped_config(ids, layers, vision_blocks)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # never a whole fp32 copy (~4.5 GB at 4 layers)
    try:
        model = Qwen3_5ForConditionalGeneration(Qwen3_5Config(**cfg_dict)).eval()
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="2GB")
    _write_tokenizer_files(out, tok, cfg_dict)
    return out


def make_tiny_qwen35_checkpoint(out_dir: str | Path, *, seed: int = 0,
                                layers: int = TINY_LAYERS) -> Path:
    """Write a tiny random Qwen3.5 checkpoint (weights, tokenizer, processor) to `out_dir`."""
    import torch
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer(VOCAB_SIZE - 16)
    tok.add_tokens(THINK_TOKENS)
    ids = {t: tok.token_to_id(t) for t in ("<|endoftext|>", "<|im_end|>", "<|image_pad|>",
                                           "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    cfg_dict = tiny_qwen35_config(ids, layers)
    torch.manual_seed(seed)
    model = Qwen3_5ForConditionalGeneration(Qwen3_5Config(**cfg_dict)).eval()
    _widen_weights(model, seed)
    model.save_pretrained(out, safe_serialization=True)
    _write_tokenizer_files(out, tok, cfg_dict)
    return out


def _widen_weights(model, seed: int) -> None:
    """Random weights wide enough that greedy choices are decisive (no near-ties in parity tests).

    Linear-attention parameters keep the layouts their roles need: `A_log` and `dt_bias` set the
    decay, so they stay at transformers' init (a decay above 1 would blow the state up).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("A_log", "dt_bias")) or "norm" in name:
                continue
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
            elif p.dim() > 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


def _write_tokenizer_files(out: Path, tok, cfg_dict: dict) -> None:
    """Tokenizer, chat template, processor and generation configs next to the weights."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    tcfg_path = out / "tokenizer_config.json"
    tcfg = json.loads(tcfg_path.read_text())
    tcfg.update(tokenizer_class="Qwen2Tokenizer", chat_template=CHAT_TEMPLATE,
                model_max_length=32768)
    tcfg_path.write_text(json.dumps(tcfg, indent=2))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    text = cfg_dict["text_config"]
    (out / "generation_config.json").write_text(json.dumps({
        "do_sample": False, "eos_token_id": [text["eos_token_id"], text["pad_token_id"]],
        "pad_token_id": text["pad_token_id"]}, indent=2))
