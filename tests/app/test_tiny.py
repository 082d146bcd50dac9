"""The tiny random Qwen2.5-VL checkpoint: real structure, real tokenizer, deterministic."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.bench.checkpoints import SPECIAL_TOKENS, make_tiny_checkpoint

pytest.importorskip("transformers")


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_config_has_the_real_vision_structure(tiny_checkpoint: Path) -> None:
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    vision, text = config["vision_config"], config["text_config"]
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert (vision["patch_size"], vision["spatial_merge_size"], vision["window_size"]) == (14, 2, 112)
    assert vision["fullatt_block_indexes"] == [1, 3] and vision["depth"] == 4
    assert sum(text["rope_parameters"]["mrope_section"]) * 2 == text["head_dim"]
    # The ONNX builder finds the LM head by output width: no vision layer may share it.
    widths = {3 * vision["hidden_size"], 4 * vision["hidden_size"], vision["intermediate_size"]}
    assert text["vocab_size"] not in widths


def test_same_seed_same_weights_other_seed_other_weights(
        tiny_checkpoint: Path, tmp_path: Path) -> None:
    again = make_tiny_checkpoint(tmp_path / "again", seed=0)
    other = make_tiny_checkpoint(tmp_path / "other", seed=1)
    assert _digest(again) == _digest(tiny_checkpoint)
    assert _digest(other) != _digest(tiny_checkpoint)
    assert (again / "tokenizer.json").read_bytes() == (tiny_checkpoint / "tokenizer.json").read_bytes()


def test_tokenizer_knows_the_special_tokens_and_round_trips(tiny_checkpoint: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False).input_ids) == 1, special
    text = ('I will search.\n<tool_call>\n{"name": "computer_use", "arguments": '
            '{"action": "type", "text": "héllo wörld 42"}}\n</tool_call>')
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text
    assert len(ids) < len(text) / 2  # the trained merges actually compress the Fara vocabulary


def test_chat_template_renders_image_placeholders(tiny_checkpoint: Path) -> None:
    from agent.inference.chat import find_chat_template, render_prompt

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Go"}]}]
    prompt = render_prompt(find_chat_template(tiny_checkpoint), messages)
    assert prompt == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                      "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Go<|im_end|>\n"
                      "<|im_start|>assistant\n")


def test_model_and_image_processor_load(tiny_checkpoint: Path) -> None:
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_checkpoint)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    processor = AutoImageProcessor.from_pretrained(tiny_checkpoint)
    out = processor(images=[Image.new("RGB", (1428, 896))], return_tensors="pt")
    assert out["image_grid_thw"].tolist() == [[1, 64, 102]]
    with torch.no_grad():
        feats = model.model.visual(out["pixel_values"], grid_thw=out["image_grid_thw"])
    assert feats.pooler_output.shape == (1632, model.config.text_config.hidden_size)
