"""The model families the exporter knows, keyed by the checkpoint's `model_type`.

One pipeline (`models.export.pipeline`) exports every family; what differs is here: which
architecture the onnxruntime-genai builder is given, which module writes vision.onnx, and the
`type` the finished genai_config.json carries (the runtime picks its decoder state from it, see
`agent.inference.factory.onnx_model_class`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """How one family's checkpoint becomes an export folder."""

    name: str              # what users read ("Qwen2.5-VL")
    architecture: str      # config.json "architectures"[0]
    genai_type: str        # genai_config.json model.type
    vision_module: str     # module with build_vision(weights, vision_config, out_path, tick)
    examples: str          # models a user may know of this family
    prompt_family: str     # deskhand.json "family": how the runtime prompts it (agent.prompts)


FAMILIES: dict[str, Family] = {
    "qwen2_5_vl": Family("Qwen2.5-VL", "Qwen2_5_VLForConditionalGeneration", "fara",
                         "models.export.vision", "Fara-7B", "fara"),
    # The builder's Qwen35TextModel emits the hybrid decoder: GroupQueryAttention with KV for
    # the full-attention layers, CausalConvWithState + LinearAttention (gated delta rule) with
    # conv and recurrent state for the others. Both have CPU kernels in onnxruntime 1.32.
    "qwen3_5": Family("Qwen3.5", "Qwen3_5ForConditionalGeneration", "fara15",
                      "models.export.qwen35_vision", "Fara1.5-4B, -9B, -27B", "fara15"),
}


def family_of(config: dict) -> Family | None:
    """The family of a checkpoint's config.json, or None when the exporter does not know it."""
    family = FAMILIES.get(config.get("model_type", ""))
    if family is None or family.architecture not in (config.get("architectures") or []):
        return None
    return family
