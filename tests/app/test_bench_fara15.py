"""`deskhand bench --families`: the Qwen3.5 (Fara1.5) family next to Fara-7B in one run.

End to end on the tiny models of both families (the 4B shape takes minutes to build), and the
cost model's hybrid-decoder arithmetic on a hand-made shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import bench
from app.bench.model import Shape, extrapolate

STEPS = 4
BACKENDS = ["onnx-int4", "torch-bf16"]


def test_bench_runs_both_families_in_one_report(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "bench.json"
    code = bench.main(["--tiny", "--families", "fara7b,fara15-4b", "--steps", str(STEPS),
                       "--new-tokens", "3", "--no-warmup", "--bandwidth-mb", "16",
                       "--work-dir", str(tmp_path / "work"), "--backends", ",".join(BACKENDS),
                       "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(out.read_text())["families"]
    assert list(report) == ["fara7b", "fara15-4b"]
    assert report["fara7b"]["shape"]["model_type"] == "qwen2_5_vl"
    hybrid = report["fara15-4b"]
    assert hybrid["shape"]["model_type"] == "qwen3_5"
    assert (hybrid["shape"]["layers"], hybrid["shape"]["linear_layers"]) == (4, 3)
    assert hybrid["size"] == [320, 224]  # the factor-32 grid of the family's processor
    for family in report.values():
        rows = {r["backend"]: r for r in family["rows"]}
        assert set(rows) == set(BACKENDS)
        for row in rows.values():
            steps = row["steps"]
            assert [s["images"] for s in steps] == [1, 2, 3, 3]  # three screenshots kept
            assert all(s["generated"] == 3 and s["total_s"] > 0 for s in steps)
            assert row["peak_rss"] > 0
    ours = {r["backend"]: r for r in hybrid["rows"]}["onnx-int4"]["steps"]
    # The hybrid runtime resumes from a state snapshot: each later step computes only its tail.
    assert ours[0]["cached_tokens"] == 0 and all(s["cached_tokens"] > 0 for s in ours[1:])
    assert [s["images_encoded"] for s in ours] == [1, 1, 1, 1]
    # Linear-attention layers are costed apart (zero for the all-attention family).
    ext = hybrid["extrapolated"]["onnx-int4"][-1]
    assert ext["prefill_linear_layer_s"] > 0 and ext["decode_linear_layer_ms"] > 0
    assert report["fara7b"]["extrapolated"]["onnx-int4"][-1]["prefill_linear_layer_s"] == 0
    assert hybrid["bytes_per_token"]["torch-bf16"]["linear"] > 0
    assert "=== Fara-7B-shaped (fara7b) ===" in printed
    assert "=== Fara1.5-4B-shaped (fara15-4b) ===" in printed
    table = printed.split("Families side by side", 1)[1]
    for family in ("fara7b", "fara15-4b"):
        for backend in BACKENDS:
            assert f"\n{family:<11}{backend:<13}" in table
    assert "Fara1.5-4B (32 text layers (24 linear-attention, 8 full-attention), 24 vision " \
           "blocks, all full-attention) [depths partly UNVERIFIED]" in printed


def test_families_option_rejects_unknown_and_mismatched_sizes(tmp_path: Path, capsys) -> None:
    assert bench.main(["--tiny", "--families", "fara9"]) == 2
    assert "unknown famil" in capsys.readouterr().err
    # 308 is a multiple of 28 (Fara-7B's grid) but not of 32 (Fara1.5's).
    assert bench.main(["--tiny", "--families", "fara7b,fara15-4b", "--size", "308x224"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert bench.main(["--tiny", "--families", "fara7b,fara15-4b",
                       "--checkpoint", str(tmp_path)]) == 2
    assert bench.main(["--families", "fara15-4b", "--fara15-layers", "6"]) == 2
    assert "multiple of 4" in capsys.readouterr().err


def _hybrid_shape(layers: int = 4, linear: int = 3) -> Shape:
    return Shape(hidden=256, intermediate=512, q_width=512, kv_width=128, vocab=1000,
                 layers=layers, v_hidden=64, v_intermediate=128, v_out=256, v_blocks=2,
                 v_full_blocks=2, window_patches=64, patch=16, merge=2, model_type="qwen3_5",
                 linear_layers=linear, lin_k_width=256, lin_v_width=512, lin_v_heads=4,
                 lin_state=4 * 64 * 128, conv_kernel=4, attn_gate=True, v_mlp_mats=2)


def test_linear_attention_cost_does_not_grow_with_the_context() -> None:
    shape = _hybrid_shape()
    assert shape.linear_layer_macs(100) == 100 * shape.linear_layer_macs(1)
    assert shape.text_layer_macs(100, past=5000) > shape.text_layer_macs(100, past=0)
    assert shape.state_bytes() == 4 * (4 * 64 * 128 + (2 * 256 + 512) * 3)


def test_hybrid_extrapolation_scales_each_kind_of_layer_to_its_own_count() -> None:
    shape = _hybrid_shape()
    step = {"step": 2, "images_encoded": 1, "computed_tokens": 300, "cached_tokens": 2000,
            "vision_s": 1.0, "prefill_s": 2.0, "decode_per_token_s": 0.1, "generated": 11,
            "preprocess_s": 0.0}
    weights = {"layers": 4000, "linear": 2400, "lm_head": 1000}
    out = extrapolate(step, shape, weights, (320, 224))
    attn, lin = shape.text_layer_macs(300, 2000), shape.linear_layer_macs(300)
    head = shape.hidden * shape.vocab
    per = 2.0 / (attn + 3 * lin + head)
    assert out["prefill_full_s"] == pytest.approx(per * (8 * attn + 24 * lin + head))
    per_lin = 800 + 2 * shape.state_bytes()  # weights of one linear layer, its state twice
    read = 1600 + 3 * per_lin + 1000
    assert out["decode_full_ms"] == pytest.approx(100 * (8 * 1600 + 24 * per_lin + 1000) / read)
    # All 24 Fara1.5 vision blocks attend over the whole image (no windowed blocks).
    assert out["vision_full_s"] == pytest.approx(
        out["vision_block_full_s"] * 24 + (1.0 - 2 * out["vision_block_full_s"]))


def test_fara15_shaped_config_keeps_the_real_widths_at_reduced_depth() -> None:
    torch = pytest.importorskip("torch")
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    from app.bench.checkpoints_qwen35 import fara15_4b_config, fara15_shaped_config

    ids = dict.fromkeys(("<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>",
                         "<|vision_start|>", "<|vision_end|>"), 1)
    cfg = fara15_shaped_config(ids, layers=4, vision_blocks=2)
    text, real = cfg["text_config"], fara15_4b_config()["text"]
    assert text["layer_types"] == ["linear_attention"] * 3 + ["full_attention"]
    for key in ("hidden_size", "intermediate_size", "vocab_size", "num_attention_heads",
                "num_key_value_heads", "head_dim", "linear_num_value_heads"):
        assert text[key] == real[key]
    with torch.device("meta"):
        model = Qwen3_5ForConditionalGeneration(Qwen3_5Config(**cfg))
    layer = model.model.language_model.layers
    assert len(layer) == 4 and hasattr(layer[0], "linear_attn") and hasattr(layer[3], "self_attn")
    assert model.model.language_model.embed_tokens.weight.shape == (248320, 2560)


def test_bench_times_nano_at_its_real_size_with_its_declared_prompt(tmp_path: Path,
                                                                    capsys) -> None:
    """`--families nano`: Nano's own shape (nothing extrapolated), its 512x320 screenshots and
    its folder's one-line system prompt, not Fara1.5's long one."""
    pytest.importorskip("onnxruntime")
    from app.bench.families import FAMILIES
    from app.bench.report import format_families
    from app.bench.worker import screenshots, step_inputs
    from app.nano.examples import SYSTEM
    from app.nano.model import PROBE

    nano = FAMILIES["nano"]
    assert (nano.full.text, nano.full.vision) == (PROBE.text_layers, PROBE.vision_blocks)
    out = tmp_path / "bench.json"
    code = bench.main(["--tiny", "--families", "nano", "--steps", "2", "--new-tokens", "3",
                       "--no-warmup", "--bandwidth-mb", "16", "--work-dir", str(tmp_path / "w"),
                       "--backends", "onnx-int4,torch-fp32", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(out.read_text())["families"]["nano"]
    assert report["shape"]["family"] == "nano" and report["size"] == [512, 320]
    for row in report["rows"]:
        assert [s["generated"] for s in row["steps"]] == [3, 3], row
        # 160 image tokens (512x320 in 32-pixel cells), the task and the one-line system
        # prompt: Fara1.5's own system prompt alone is thousands of tokens in Nano's tokenizer.
        assert row["steps"][0]["prompt_tokens"] < 400, row["steps"][0]
    # --tiny builds it smaller than Nano (MICRO): then it is scaled like the other families.
    assert not report["real_size"] and report["extrapolated"]
    assert "=== Deskhand Nano-shaped (nano) ===" in printed
    assert "Extrapolated to Deskhand Nano (4 text layers (3 linear-attention, 1 full-attention)" \
        in printed
    # At its real size (what a run without --tiny builds) nothing is extrapolated.
    real = format_families({"nano": report | {"real_size": True, "extrapolated": {}}})
    assert "=== Deskhand Nano (nano, its real size, random weights) ===" in real
    assert "Not extrapolated: Deskhand Nano was built at its real size" in real
    assert "Extrapolated to" not in real
    table = real.split("Families side by side", 1)[1]
    assert all(line.rstrip().endswith("-") for line in table.splitlines()
               if line.startswith("nano "))
    # The prompt the worker built is the one the loop builds for the folder.
    shots = screenshots(1, (512, 320))
    messages, _ = step_inputs(1, shots, (512, 320), family="fara15", system=SYSTEM)
    assert messages[0]["content"][0]["text"] == SYSTEM
    plain, _ = step_inputs(1, shots, (512, 320), family="fara15")
    assert len(plain[0]["content"][0]["text"]) > 5 * len(SYSTEM)
