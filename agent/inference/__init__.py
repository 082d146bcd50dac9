"""Inference backends: one base class, several implementations (ONNX, transformers, local server)."""

from agent.inference.base import Backend, BackendError, FinishReason, Generation, ScriptedBackend

__all__ = ["Backend", "BackendError", "FinishReason", "Generation", "ScriptedBackend"]
