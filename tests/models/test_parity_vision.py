"""vision.onnx against transformers' vision tower, for 1-3 screenshots at two resolutions.

A traced export would pass for the traced grid only; these cases change the grid, the number
of images, and mix sizes in one call, using transformers' own processor output as the input of
both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from tests.support.model_inputs import SIZES, case_id, noise_images

TOLERANCE = 1e-4
CASES = [(n, size) for size in SIZES for n in (1, 2, 3)] + [(3, "mixed")]


@pytest.fixture(scope="module")
def vision_session(export_fp32: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(export_fp32 / "vision.onnx"),
                                providers=["CPUExecutionProvider"])


def _both(session, reference, images) -> tuple[np.ndarray, np.ndarray]:
    """(vision.onnx features, transformers' fp32 tower features) on transformers' own pixels."""
    import torch

    vision = reference.image_processor(images=images, return_tensors="pt")
    with torch.no_grad():
        expected = reference.model.model.visual(
            vision["pixel_values"], grid_thw=vision["image_grid_thw"]).pooler_output.numpy()
    got = session.run(None, {"pixel_values": vision["pixel_values"].numpy(),
                             "image_grid_thw": vision["image_grid_thw"].numpy()})[0]
    return got, expected


@pytest.mark.parametrize(("count", "size"), CASES,
                         ids=[case_id(n, s) for n, s in CASES])
def test_vision_features_match_transformers(count, size, vision_session,
                                            reference_backend) -> None:
    seed = 1000 * count + (0 if size == "mixed" else size[0])
    if size == "mixed":
        images = [noise_images(1, s, seed + i)[0] for i, s in enumerate([SIZES[0], SIZES[1],
                                                                         (308, 196)])]
    else:
        images = noise_images(count, size, seed)
    got, expected = _both(vision_session, reference_backend, images)
    assert got.shape == expected.shape
    diff = float(np.abs(got - expected).max())
    print(f"vision {count} image(s) {size}: max-abs-diff {diff:.2e}")
    assert diff <= TOLERANCE


def test_int8_vision_keeps_the_features(export_int4: Path, reference_backend) -> None:
    """The int8 vision graph (the int4 export's default) against transformers' fp32 tower.

    Block-wise int8 weights (block 128) round each weight by at most half a step of
    max|w|/127: about 0.5 % noise per weight, 2 % on the features of the Fara-shaped tower
    (README, bench); a broken graph is near 0 cosine. Bounds: cosine >= 0.999, error <= 5 %.
    """
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(export_int4 / "vision.onnx"), load_external_data=False).graph
    assert any(n.op_type == "MatMulNBits" for n in graph.node)
    session = ort.InferenceSession(str(export_int4 / "vision.onnx"),
                                   providers=["CPUExecutionProvider"])
    got, expected = _both(session, reference_backend, noise_images(2, SIZES[1], seed=77))
    cosine = float((got * expected).sum() / np.linalg.norm(got) / np.linalg.norm(expected))
    error = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    print(f"int8 vision: cosine {cosine:.5f}, relative error {error:.3%}")
    assert cosine >= 0.999 and error <= 0.05
    assert error > 1e-6  # the quantized weights are in use
