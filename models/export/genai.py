"""The onnxruntime-genai configuration files of an export folder."""

from __future__ import annotations

import json
from pathlib import Path

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def finish_genai_config(out_dir: Path, config: dict, preprocessor: dict,
                        genai_type: str = "fara") -> dict:
    """Turn the builder's text-only genai_config.json into a `genai_type` one with vision/embedding."""
    path = out_dir / "genai_config.json"
    genai = json.loads(path.read_text())
    model = genai["model"]
    vision_cfg = config.get("vision_config", {})
    session = model["decoder"].get("session_options", {"log_id": "onnxruntime-genai",
                                                       "provider_options": []})
    model["type"] = genai_type
    model["image_token_id"] = config["image_token_id"]
    model["video_token_id"] = config["video_token_id"]
    model["vision_start_token_id"] = config["vision_start_token_id"]
    model["embedding"] = {
        "filename": "embedding.onnx",
        "inputs": {"input_ids": "input_ids", "image_features": "image_features"},
        "outputs": {"inputs_embeds": "inputs_embeds"},
        "session_options": json.loads(json.dumps(session)),
    }
    model["vision"] = {
        "filename": "vision.onnx",
        "config_filename": "processor_config.json",
        "spatial_merge_size": vision_cfg.get("spatial_merge_size", 2),
        "tokens_per_second": float(vision_cfg.get("tokens_per_second", 2)),
        "inputs": {"pixel_values": "pixel_values", "image_grid_thw": "image_grid_thw"},
        "outputs": {"image_features": "image_features"},
        "session_options": json.loads(json.dumps(session)),
    }
    search = genai.setdefault("search", {})
    search.update({"do_sample": False, "num_beams": 1, "top_k": 1, "top_p": 1.0,
                   "temperature": 1.0, "repetition_penalty": 1.0})
    path.write_text(json.dumps(genai, indent=4))
    write_processor_config(out_dir, preprocessor)
    return genai


def write_processor_config(out_dir: Path, pre: dict) -> Path:
    """processor_config.json in the ort-extensions format, matching the HF image processor.

    The agent hands images already at model size (multiples of 28); smart_resize leaves such an
    image as it is as long as min/max pixels allow it, so the bounds are taken from the checkpoint.
    """
    patch = int(pre.get("patch_size", 14))
    merge = int(pre.get("merge_size", 2))
    size = pre.get("size") or {}
    min_pixels = int(pre.get("min_pixels") or size.get("shortest_edge") or 3136)
    max_pixels = int(pre.get("max_pixels") or size.get("longest_edge") or 12845056)
    transforms = [
        {"operation": {"name": "decode_image", "type": "DecodeImage",
                       "attrs": {"color_space": "RGB"}}},
        {"operation": {"name": "convert_to_rgb", "type": "ConvertRGB"}},
        {"operation": {"name": "resize", "type": "Resize", "attrs": {
            "width": 1428, "height": 896, "smart_resize": 1, "min_pixels": min_pixels,
            "max_pixels": max_pixels, "patch_size": patch, "merge_size": merge}}},
        {"operation": {"name": "rescale", "type": "Rescale",
                       "attrs": {"rescale_factor": float(pre.get("rescale_factor", 1 / 255))}}},
        {"operation": {"name": "normalize", "type": "Normalize", "attrs": {
            "mean": list(pre.get("image_mean", CLIP_MEAN)),
            "std": list(pre.get("image_std", CLIP_STD)), "qwen2_5_vl": 1}}},
        {"operation": {"name": "patch_image", "type": "PatchImage", "attrs": {
            "patch_size": patch, "temporal_patch_size": int(pre.get("temporal_patch_size", 2)),
            "merge_size": merge}}},
    ]
    path = out_dir / "processor_config.json"
    path.write_text(json.dumps({"processor": {"name": "qwen2_5_image_processor",
                                              "transforms": transforms}}, indent=2))
    return path
