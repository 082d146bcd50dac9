"""Tiny from-scratch models for the Nano probe: one config per family at matched sizes.

Configs start from the repository's tiny test checkpoints (`app.bench.checkpoints._config` for
Qwen2.5-VL, `app.bench.checkpoints_qwen35.tiny_qwen35_config` for Qwen3.5) and widen them to
the sizes below, so every structural trait of each family stays: Qwen2.5-VL's windowed vision
attention with 2-D rotary positions only; Qwen3.5's learned absolute position grid
(interpolated to the image), full vision attention, and its 3:1 linear/full decoder. Widths are
the same for both, so the probe compares architectures, not sizes. The tokenizer is trained on
the repository's tiny corpus plus the probe's prompt and every label word (byte-level BPE, digits
split one per token by Qwen's pre-tokenizer). Weights keep transformers' initialisation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from agent import geometry
from agent.prompts import SecondLook
from app.bench import checkpoints as qwen25
from app.bench import checkpoints_qwen35 as qwen35
from app.nano.examples import SYSTEM
from app.nano.screens import WORDS

# Nano's second look (agent.second_look): the region, in screenshot pixels, is the smallest of
# the ladder's near rungs (app.nano.desktop.NEAR_SIZES), seen at 0.8 of its size (measured
# against 800x500, 960x600 and a third look); five regions vote (measured against one, nine and
# other spreads: README, "Deskhand Nano").
SECOND_LOOK = SecondLook(geometry.Size(640, 400), looks=5)


@dataclass(frozen=True)
class Size:
    """The widths shared by both families (`MICRO` is for tests)."""

    text_hidden: int = 256
    text_layers: int = 4
    text_mlp: int = 768
    vision_hidden: int = 128
    vision_blocks: int = 4
    vision_mlp: int = 512
    vocab: int = 1024


PROBE = Size()
MICRO = Size(text_hidden=64, text_layers=4, text_mlp=128, vision_hidden=32, vision_blocks=2,
             vision_mlp=64, vocab=768)
SIZES = {"probe": PROBE, "micro": MICRO}  # the --size choices of training


def corpus() -> list[str]:
    tasks = [f"Click the {w} button." for w in WORDS]
    return [*qwen25._CORPUS, SYSTEM, *tasks, " ".join(WORDS), "0123456789 [0, 0] [999, 999]"]


def make_folder(family: str, out: Path, size: Size = PROBE) -> Path:
    """Write config, tokenizer, chat template and processor config for `family` to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    tok = qwen25._train_tokenizer(size.vocab - 16, corpus())
    if family == "fara":
        cfg = _qwen25_config(tok, size)
        qwen25._write_tokenizer_files(out, tok, cfg)
    elif family == "fara15":
        tok.add_tokens(qwen35.THINK_TOKENS)
        cfg = _qwen35_config(tok, size)
        qwen35._write_tokenizer_files(out, tok, cfg)
    else:
        raise ValueError(f"unknown family {family!r} (fara or fara15)")
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return out


def declare(folder: Path) -> None:
    """Write what a Nano model folder declares about itself: its compact system prompt and
    second look (PROMPT_FILE) and the image budget it was trained with as smart_resize's limit (the exporter
    carries it to processor_config.json; the runtime caps every screenshot there)."""
    from agent.prompts import PROMPT_FILE
    from app.nano.desktop import MAX_PIXELS

    (folder / PROMPT_FILE).write_text(json.dumps({"system": SYSTEM, "second_look": SECOND_LOOK.declared()},
                                                 indent=2), encoding="utf-8")
    pre_path = folder / "preprocessor_config.json"
    pre = json.loads(pre_path.read_text(encoding="utf-8")) if pre_path.is_file() else {}
    pre["max_pixels"] = MAX_PIXELS
    if isinstance(pre.get("size"), dict):
        pre["size"]["longest_edge"] = MAX_PIXELS
    pre_path.write_text(json.dumps(pre, indent=2), encoding="utf-8")


def random_checkpoint(out: Path, size: Size = PROBE, seed: int = 0) -> Path:
    """A Nano-shaped Hugging Face checkpoint with random weights (Fara1.5 family), declared like
    a shipped one: what `deskhand bench --families nano` times (speed does not depend on what
    the weights learned)."""
    import torch

    make_folder("fara15", out, size)
    torch.manual_seed(seed)
    build_model(out).save_pretrained(out)
    declare(out)
    return out


def build_model(folder: Path, attention: str | None = None):
    """The random model for the config in `folder` (transformers' init); `attention="eager"`
    when training reads the language model's attention weights (the same weights and outputs).
    The vision tower keeps SDPA either way: its weights are never read, and eager attention
    there made a training step 1.095x slower (9.05 s vs 8.27 s, medians of four alternating
    steps, desktop screens, batch 16, probe size, one thread; the same first loss to 1e-7)."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(folder)
    extra = ({"attn_implementation": {"text_config": attention, "vision_config": "sdpa"}}
             if attention else {})
    return AutoModelForImageTextToText.from_config(config, **extra)


class _PatchConv3d(torch.nn.Conv3d):
    """A Conv3d applied to inputs of exactly one kernel each, as one matrix product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != tuple(self.kernel_size):
            return super().forward(x)
        out = torch.nn.functional.linear(x.reshape(x.shape[0], -1),
                                         self.weight.reshape(self.out_channels, -1), self.bias)
        return out.view(x.shape[0], self.out_channels, 1, 1, 1)


def fast_patch_embedding(model: torch.nn.Module) -> int:
    """Train the vision patch embedding as the matrix product it is: both families embed each
    patch with a Conv3d whose kernel is the whole patch (stride = kernel), which CPU convolution
    kernels run far slower than the equal product (profiled: 13 % of a training step's CPU time
    in that convolution and its gradient; measured: a step takes 9.71 s with it and 8.87 s
    without, 1.095x, medians of four alternating steps, desktop screens, batch 16, probe size,
    one thread). The module keeps its class's parameters and names (checkpoints and exports are
    unchanged); only its forward differs, and with it the float summation order (as a thread
    count does: runs agree within noise, not to the bit, with runs made before). Returns the
    number of modules changed."""
    changed = 0
    for module in model.modules():
        if (type(module) is torch.nn.Conv3d and module.stride == module.kernel_size
                and module.padding == (0, 0, 0) and module.dilation == (1, 1, 1)
                and module.groups == 1):
            module.__class__ = _PatchConv3d
            changed += 1
    return changed


def _qwen25_config(tok, s: Size) -> dict:
    cfg = qwen25._config(tok)
    head_dim = 64
    half = head_dim // 2  # M-RoPE sections (t, h, w) fill the rotary half of a head
    section = [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": section}
    cfg["text_config"].update(vocab_size=s.vocab, hidden_size=s.text_hidden,
                              intermediate_size=s.text_mlp, num_hidden_layers=s.text_layers,
                              max_window_layers=s.text_layers,
                              num_attention_heads=s.text_hidden // head_dim,
                              num_key_value_heads=max(1, s.text_hidden // head_dim // 2),
                              head_dim=head_dim, rope_parameters=rope,
                              rope_scaling={"type": "mrope", **rope})
    full = [i for i in (1, 3) if i < s.vision_blocks] or [s.vision_blocks - 1]
    cfg["vision_config"].update(hidden_size=s.vision_hidden, depth=s.vision_blocks,
                                intermediate_size=s.vision_mlp, out_hidden_size=s.text_hidden,
                                num_heads=max(1, s.vision_hidden // 32), fullatt_block_indexes=full)
    return cfg


def _qwen35_config(tok, s: Size) -> dict:
    ids = {t: tok.token_to_id(t) for t in ("<|endoftext|>", "<|im_end|>", "<|image_pad|>",
                                           "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    cfg = qwen35.tiny_qwen35_config(ids, s.text_layers)
    head_dim = 64  # partial rotary 0.25 -> 16 dims -> 8 frequencies = mrope 3 + 3 + 2
    heads = max(1, s.text_hidden // head_dim)
    cfg["text_config"].update(vocab_size=s.vocab, hidden_size=s.text_hidden,
                              intermediate_size=s.text_mlp, num_attention_heads=heads,
                              num_key_value_heads=max(1, heads // 2), head_dim=head_dim,
                              linear_key_head_dim=32, linear_value_head_dim=32,
                              linear_num_key_heads=heads, linear_num_value_heads=2 * heads)
    cfg["vision_config"].update(hidden_size=s.vision_hidden, depth=s.vision_blocks,
                                intermediate_size=s.vision_mlp, out_hidden_size=s.text_hidden,
                                num_heads=max(1, s.vision_hidden // 32),
                                num_position_embeddings=256)  # a 16x16 grid, interpolated
    return cfg
