"""Qwen3.5 vision.onnx against transformers' Qwen3_5VisionModel (random tiny weights).

The cases change the grid (smaller and larger than the learned position table, so the
interpolation both shrinks and stretches it), the number of screenshots (1-3), and the
resolution between screenshots in one call; transformers' own image processor makes the
pixels for both sides.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

TOLERANCE = 1e-4
SIZES = [(256, 192), (128, 96)]  # (width, height): grids 16x12 and 8x6 against an 8x8 table
MIXED = [(256, 192), (128, 96), (160, 224)]
CASES = [(n, size) for size in SIZES for n in (1, 2, 3)] + [(3, "mixed")]
VISION = {
    "depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4,
    "in_channels": 3, "hidden_act": "gelu_pytorch_tanh", "patch_size": 16,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 96,
    "num_position_embeddings": 64,
}


@pytest.fixture(scope="module")
def tower(tmp_path_factory):
    """(transformers model, onnxruntime session) with the same random weights."""
    import onnxruntime as ort
    import torch
    from transformers import Qwen3_5VisionConfig, Qwen3_5VisionModel

    from models.export.qwen35_vision import build_vision
    from models.export.weights import Weights

    torch.manual_seed(0)
    config = Qwen3_5VisionConfig(**VISION)
    model = Qwen3_5VisionModel(config).eval()
    with torch.no_grad():  # default init leaves norms at 1/0 and biases at 0: perturb them all
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    folder = tmp_path_factory.mktemp("qwen35_vision")
    model.save_pretrained(folder)
    onnx_path = build_vision(Weights(folder), config.to_dict(), folder / "vision.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return model, session


def _images(count: int, size, seed: int) -> list:
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = MIXED if size == "mixed" else [size] * count
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def _processor():
    from transformers import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(patch_size=16, temporal_patch_size=2, merge_size=2,
                                 image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                 size={"shortest_edge": 3136, "longest_edge": 12845056})


@pytest.mark.parametrize(("count", "size"), CASES, ids=[f"{n}x{s}" for n, s in CASES])
def test_vision_features_match_transformers(count, size, tower) -> None:
    import torch

    model, session = tower
    inputs = _processor()(images=_images(count, size, seed=count), return_tensors="pt")
    with torch.no_grad():
        expected = model(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
    got = session.run(None, {"pixel_values": inputs["pixel_values"].numpy(),
                             "image_grid_thw": inputs["image_grid_thw"].numpy()})[0]
    assert got.shape == tuple(expected.shape)
    diff = float(np.abs(got - expected.numpy()).max())
    print(f"qwen3.5 vision {count} image(s) {size}: max-abs-diff {diff:.2e}")
    assert diff <= TOLERANCE


def test_position_table_interpolation_matters(tower) -> None:
    """The learned table really feeds the features: zeroing it moves them (guards a no-op)."""
    import torch

    model, session = tower
    inputs = _processor()(images=_images(1, SIZES[0], seed=9), return_tensors="pt")
    got = session.run(None, {"pixel_values": inputs["pixel_values"].numpy(),
                             "image_grid_thw": inputs["image_grid_thw"].numpy()})[0]
    saved = model.pos_embed.weight.detach().clone()
    try:
        with torch.no_grad():
            model.pos_embed.weight.zero_()
            without = model(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
    finally:
        with torch.no_grad():
            model.pos_embed.weight.copy_(saved)
    assert float(np.abs(got - without.numpy()).max()) > 100 * TOLERANCE


@pytest.fixture(scope="module")
def checkpoint_tower(tmp_path_factory):
    """The tiny Qwen3.5 checkpoint's tower in transformers, and its exported vision.onnx files."""
    import torch
    from transformers import AutoImageProcessor, Qwen3_5ForConditionalGeneration

    from models.export import pipeline
    from models.export.checks import inspect_checkpoint
    from tests.support.qwen35 import tiny_qwen35

    ckpt = inspect_checkpoint(tiny_qwen35())
    graphs = {}
    for quant in (None, "int8"):
        out = tmp_path_factory.mktemp(f"qwen35_vision_{quant}")
        pipeline._vision_stage(ckpt, out, quant, 128, lambda: None)
        graphs[quant] = out / "vision.onnx"
    model = Qwen3_5ForConditionalGeneration.from_pretrained(ckpt.path, dtype=torch.float32)
    return model.model.visual.eval(), AutoImageProcessor.from_pretrained(ckpt.path), graphs


def _checkpoint_features(checkpoint_tower, quant) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort
    import torch

    visual, processor, graphs = checkpoint_tower
    inputs = processor(images=_images(3, "mixed", seed=5), return_tensors="pt")
    with torch.no_grad():
        expected = visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output
    session = ort.InferenceSession(str(graphs[quant]), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixel_values": inputs["pixel_values"].numpy(),
                             "image_grid_thw": inputs["image_grid_thw"].numpy()})[0]
    return got, expected.numpy()


def test_checkpoint_export_matches_transformers(checkpoint_tower) -> None:
    """The export pipeline's vision stage on a full Qwen3.5 checkpoint (model.visual.* names)."""
    got, expected = _checkpoint_features(checkpoint_tower, None)
    diff = float(np.abs(got - expected).max())
    print(f"qwen3.5 checkpoint vision, 3 mixed screenshots: max-abs-diff {diff:.2e}")
    assert got.shape == expected.shape and diff <= TOLERANCE


def test_int8_checkpoint_export_keeps_the_features(checkpoint_tower) -> None:
    """int8 vision (the int4 export's default): same bounds as the Qwen2.5-VL tower's test."""
    got, expected = _checkpoint_features(checkpoint_tower, "int8")
    cosine = float((got * expected).sum() / np.linalg.norm(got) / np.linalg.norm(expected))
    error = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    print(f"qwen3.5 int8 vision: cosine {cosine:.5f}, relative error {error:.3%}")
    assert cosine >= 0.999 and error <= 0.05 and error > 1e-6
