"""Export a Hugging Face Qwen2.5-VL / Fara checkpoint to an onnxruntime-genai model folder."""

from models.export.checks import ExportError
from models.export.pipeline import export_model

__all__ = ["ExportError", "export_model"]
