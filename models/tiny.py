"""A tiny random Qwen2.5-VL checkpoint with a real tokenizer and processor, for tests.

The sizes are tiny but the vision structure is the real one (patch 14, merge 2, window 112,
full-attention blocks, M-RoPE sections), so exporters and backends meet the same code paths as
with Fara-7B. Built in seconds, deterministic for a given seed.
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


def _train_tokenizer(vocab_size: int):
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
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
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
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

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
    return out


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    print(make_tiny_checkpoint(sys.argv[1] if len(sys.argv) > 1 else "tiny-qwen2_5_vl"))
