"""Folders built by Microsoft's Olive recipe for Fara-7B (microsoft/olive-recipes,
`microsoft-Fara-7B/builtin`) import as they are. The recipe's file set, as its configs write it
(checked in the recipe: cpu_and_mobile/text.json, vision.json, embedding.json, optimize.py):
ModelBuilder's decoder named `text.onnx` (+ `text.onnx.data`), `embedding.onnx` and
`vision.onnx` with external data `embedding.onnx.data` / `vision.onnx.data`, and the
genai_config.json sections and processor_config.json that optimize.py writes. Weights are tiny."""

from __future__ import annotations

import json
from pathlib import Path

from models.importing import import_model
from models.validate import validate_folder
from tests.models.test_registry import fake_onnx, write_tokenizer_files

_IO = {"log_id": "onnxruntime-genai", "provider_options": []}


def olive_folder(path: Path, image_token_id: int) -> Path:
    """The recipe's `cpu_and_mobile/models` folder, file for file, with tiny weights."""
    path.mkdir(parents=True)
    for name in ("text", "embedding", "vision"):
        (path / f"{name}.onnx").write_bytes(fake_onnx(f"{name}.onnx.data"))
        (path / f"{name}.onnx.data").write_bytes(b"\x01" * 1024)
    config = {"model": {
        "type": "qwen2_5_vl", "context_length": 128000,
        "decoder": {"filename": "text.onnx", "session_options": _IO},
        "embedding": {"filename": "embedding.onnx",
                      "inputs": {"input_ids": "input_ids", "image_features": "image_features"},
                      "outputs": {"inputs_embeds": "inputs_embeds"}, "session_options": _IO},
        "vision": {"filename": "vision.onnx", "config_filename": "processor_config.json",
                   "spatial_merge_size": 2, "tokens_per_second": 2.0, "patch_size": 14,
                   "window_size": 56,
                   "inputs": {"pixel_values": "pixel_values", "image_grid_thw": "image_grid_thw"},
                   "outputs": {"image_features": "image_features"}, "session_options": _IO},
        "image_token_id": image_token_id, "video_token_id": 151656,
        "vision_start_token_id": 151652},
        "search": {"max_length": 4096, "top_k": 50, "top_p": 1.0}}
    (path / "genai_config.json").write_text(json.dumps(config))
    op = lambda name, kind, attrs=None: {"operation": {  # noqa: E731
        "name": name, "type": kind, **({"attrs": attrs} if attrs else {})}}
    processor = {"processor": {"name": "qwen2_5_image_processor", "transforms": [
        op("decode_image", "DecodeImage", {"color_space": "RGB"}),
        op("convert_to_rgb", "ConvertRGB"),
        op("resize", "Resize", {"width": 540, "height": 360, "smart_resize": 1,
                                "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14,
                                "merge_size": 2}),
        op("rescale", "Rescale", {"rescale_factor": 0.00392156862745098}),
        op("normalize", "Normalize", {"mean": [0.48145466, 0.4578275, 0.40821073],
                                      "std": [0.26862954, 0.26130258, 0.27577711],
                                      "qwen2_5_vl": 1}),
        op("patch_image", "PatchImage", {"patch_size": 14, "temporal_patch_size": 2,
                                         "merge_size": 2})]}}
    (path / "processor_config.json").write_text(json.dumps(processor, indent=2))
    write_tokenizer_files(path)
    return path


def _image_pad_id(folder: Path) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).token_to_id("<|image_pad|>")


def test_an_olive_recipe_folder_validates_and_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    write_tokenizer_files(probe)
    folder = olive_folder(tmp_path / "models", _image_pad_id(probe))
    report = validate_folder(folder)
    assert report.ok, report.summary()
    assert report.format == "onnx-genai" and report.model_type == "qwen2_5_vl"
    assert {"text.onnx", "text.onnx.data", "vision.onnx.data", "embedding.onnx.data"} <= \
        set(report.files)
    entry = import_model(folder, name="fara-olive")
    assert entry.format == "onnx-genai" and not entry.owned
