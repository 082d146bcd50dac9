"""Inference backends: one protocol, several implementations (ONNX, transformers, local server)."""

from agent.inference.base import Backend, BackendError, Generation, ScriptedBackend

__all__ = ["Backend", "BackendError", "Generation", "ScriptedBackend"]
