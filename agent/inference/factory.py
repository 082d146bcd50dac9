"""The one way to build a backend: a typed `ModelSpec` in, a `Backend` out.

Used by the `deskhand` command line (`app.commands.backends`), the app
(`app.services.default_backend`), the bench (`app.bench.prepare`) and the eval harness:

    parse_model_spec(text: str, *, allow_lan: bool = False) -> ModelSpec
        "server:URL"        a local OpenAI-compatible server (loopback unless allow_lan)
        "scripted:FILE"     a JSON list of replies played back (tests, demos)
        "onnx:DIR"          an exported onnxruntime-genai folder, run in-process
        "reference:DIR"     a Hugging Face checkpoint run with transformers
        anything else       a model folder or a registered model name; which runtime is
                            decided by the folder's files (genai_config.json / config.json)

    build_backend(spec: ModelSpec, *, provider: str = Provider.AUTO,
                  options: RuntimeOptions = RuntimeOptions(),
                  resolve: Callable[[str], Path] | None = None,
                  host: Callable[[str, str], Backend] | None = None) -> Backend
        `options` tunes the in-process runtimes (threads, caches, fixed-length decoding for the
        bench, the reference dtype); the defaults are what a run uses.
        `resolve` turns a registered model name into its folder (the model registry lives
        outside `agent`, so callers pass it); without one the text must be a folder.
        `host(folder, provider)` runs an ONNX folder somewhere else (the app's model process);
        without one it runs in this process.

Every failure is a `BackendError` whose message is for users. Heavy runtimes are imported only
when their kind is built, and a missing one names the pip extra to install.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from agent.inference.base import Backend, BackendError
from agent.options import Provider
from agent.prompts import (
    declared_max_pixels,
    declared_second_look,
    declared_system_prompt,
    family_of_folder,
)

__all__ = ["ModelKind", "ModelSpec", "RuntimeOptions", "build_backend", "onnx_model_class",
           "parse_model_spec"]

_ONNX_EXTRA = "Install the model runtime: pip install 'deskhand[onnx]'"


class ModelKind(StrEnum):
    """Where the model's answers come from."""

    FOLDER = "folder"        # a folder or registered name; ONNX or reference by its files
    ONNX = "onnx"            # an exported onnxruntime-genai folder
    REFERENCE = "reference"  # a Hugging Face checkpoint (transformers)
    SERVER = "server"        # a local OpenAI-compatible server
    SCRIPTED = "scripted"    # replies from a JSON file (or given directly)


@dataclass(frozen=True)
class ModelSpec:
    """What model to run; `target` is a folder, registered name, server URL or script file."""

    kind: ModelKind
    target: str = ""
    server_model: str | None = None  # SERVER: the name to ask for (else the first listed)
    allow_lan: bool = False          # SERVER: let screenshots go to another machine
    replies: tuple[str, ...] = ()    # SCRIPTED: the replies themselves, instead of a file

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ModelKind(self.kind))
        if self.kind is not ModelKind.SCRIPTED and not self.target.strip():
            raise BackendError(f"a {self.kind} model needs a {_TARGET_WORD[self.kind]}")


@dataclass(frozen=True)
class RuntimeOptions:
    """How an in-process model runs; the defaults are a normal run's."""

    threads: int | None = None  # ONNX: intra-op threads (None: one per physical core)
    vision_cache: int = 4       # ONNX: screenshots whose features are kept (0: off)
    prefix_cache: bool = True   # ONNX: reuse the previous call's keys and values
    fixed_length: bool = False  # ONNX: decode exactly max_new_tokens (the bench)
    kv_shift: bool = False      # ONNX (Qwen2.5-VL family): shifted reuse, agent/inference/kv_shift.py
    dtype: str = "float32"      # REFERENCE: float32 or bfloat16


_TARGET_WORD = {ModelKind.FOLDER: "folder or model name", ModelKind.ONNX: "folder",
                ModelKind.REFERENCE: "folder", ModelKind.SERVER: "server URL",
                ModelKind.SCRIPTED: "script file"}


def parse_model_spec(text: str, *, allow_lan: bool = False) -> ModelSpec:
    """The spec for a `--model`-style string (see the module docstring for the forms)."""
    text = text.strip()
    if not text:
        raise BackendError("no model given: pass a model name, a folder or server:URL")
    prefix, sep, rest = text.partition(":")
    # "C:\\models\\fara" and "http://..." are not prefixed forms: only the known kinds are.
    if sep and prefix in {ModelKind.SERVER, ModelKind.SCRIPTED, ModelKind.ONNX,
                          ModelKind.REFERENCE}:
        return ModelSpec(ModelKind(prefix), rest.strip(), allow_lan=allow_lan)
    return ModelSpec(ModelKind.FOLDER, text, allow_lan=allow_lan)


def build_backend(spec: ModelSpec, *, provider: str = Provider.AUTO,
                  options: RuntimeOptions = RuntimeOptions(),
                  resolve: Callable[[str], Path] | None = None,
                  host: Callable[[str, str], Backend] | None = None) -> Backend:
    """The backend `spec` asks for (BackendError with a user-facing message if it cannot run)."""
    try:
        return _build(spec, provider, options, resolve, host)
    except ImportError as exc:
        raise BackendError(f"{exc}. {_ONNX_EXTRA}") from exc


def _build(spec: ModelSpec, provider: str, options: RuntimeOptions,
           resolve: Callable[[str], Path] | None,
           host: Callable[[str, str], Backend] | None) -> Backend:
    if spec.kind is ModelKind.SCRIPTED:
        from agent.inference.base import ScriptedBackend

        return ScriptedBackend(spec.replies or _read_script(Path(spec.target)))
    if spec.kind is ModelKind.SERVER:
        from agent.inference.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(spec.target, spec.server_model, allow_lan=spec.allow_lan)
    folder = model_folder(spec.target, resolve)
    backend = _from_folder(folder, spec, provider, options, host)
    backend.family = family_of_folder(folder)  # which prompt the loop builds for it
    backend.max_pixels = declared_max_pixels(folder)
    try:
        backend.system_prompt = declared_system_prompt(folder)
        backend.second_look = declared_second_look(folder)
    except ValueError as exc:
        raise BackendError(f"cannot load the model in {folder}: {exc}") from exc
    return backend


def _from_folder(folder: Path, spec: ModelSpec, provider: str, options: RuntimeOptions,
                 host: Callable[[str, str], Backend] | None) -> Backend:
    kind = spec.kind if spec.kind is not ModelKind.FOLDER else _runtime_of(folder)
    if kind is ModelKind.ONNX:
        if host is not None:
            return host(str(folder), provider)
        from agent.inference.onnx import OnnxBackend

        return OnnxBackend(folder, provider=provider, threads=options.threads,
                           vision_cache=options.vision_cache, prefix_cache=options.prefix_cache,
                           fixed_length=options.fixed_length, kv_shift=options.kv_shift)
    from agent.inference.reference import ReferenceBackend

    return ReferenceBackend(folder, dtype=options.dtype)


def model_folder(target: str, resolve: Callable[[str], Path] | None = None) -> Path:
    """The folder `target` names: through the registry when given one, else as a path."""
    if resolve is not None:
        return Path(resolve(target))
    folder = Path(target).expanduser()
    if not folder.is_dir():
        raise BackendError(f"{folder} is not a model folder (no such directory)")
    return folder


def _runtime_of(folder: Path) -> ModelKind:
    """ONNX for an exported folder, REFERENCE for a Hugging Face checkpoint."""
    if (folder / "genai_config.json").exists():
        return ModelKind.ONNX
    if (folder / "config.json").exists():
        return ModelKind.REFERENCE
    raise BackendError(f"{folder} is neither an onnxruntime-genai model folder "
                       "(genai_config.json) nor a Hugging Face checkpoint (config.json)")


# genai_config.json model.type -> the module and class that run that family's graphs in-process.
_ONNX_MODELS = {"fara": ("agent.inference.vlm", "VisionLanguageModel"),
                "qwen2_5_vl": ("agent.inference.vlm", "VisionLanguageModel"),
                "fara15": ("agent.inference.qwen35", "Qwen35Model")}


def onnx_model_class(folder: Path) -> type:
    """The in-process runtime of an exported folder, by its genai_config.json model.type."""
    from importlib import import_module

    try:
        genai = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
        kind = genai["model"].get("type", "fara")
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise BackendError(f"cannot read {folder / 'genai_config.json'}: {exc}") from exc
    if kind not in _ONNX_MODELS:
        raise BackendError(f"{folder} holds a {kind!r} model; Deskhand runs "
                           + ", ".join(sorted(_ONNX_MODELS)) + " exports")
    module, name = _ONNX_MODELS[kind]
    return getattr(import_module(module), name)


def _read_script(path: Path) -> list[str]:
    """The replies in a JSON script file: a list of strings."""
    try:
        replies = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot read --script {path}: {exc}") from exc
    if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
        raise BackendError("--script must hold a JSON list of strings")
    return replies
