"""The model flags of `run`, `runs replay` and `mcp` (--model, --server, --script) -> a backend.

Built by the one factory, `agent.inference.factory`; this module adds what only the composition
root may know: the model registry (`models.registry`) that turns a registered name into a folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.errors import UserError
from agent.inference.base import Backend, BackendError
from agent.inference.factory import (
    ModelKind,
    ModelSpec,
    RuntimeOptions,
    build_backend,
    parse_model_spec,
)
from agent.options import Provider


def model_spec(*, model: str | None = None, script: Path | None = None, server: str | None = None,
               server_model: str | None = None, allow_lan: bool = False) -> ModelSpec:
    """The model the flags name: --script, else --server, else --model, else the default model."""
    try:
        if script:
            return ModelSpec(ModelKind.SCRIPTED, str(script))
        if server:
            return ModelSpec(ModelKind.SERVER, server, server_model=server_model,
                             allow_lan=allow_lan)
        if model:
            return parse_model_spec(model, allow_lan=allow_lan)
        return ModelSpec(ModelKind.FOLDER, str(resolve_model_folder(None)))
    except BackendError as exc:
        raise UserError(str(exc)) from exc


def open_backend(spec: ModelSpec, *, provider: str = Provider.AUTO,
                 options: RuntimeOptions = RuntimeOptions()) -> Backend:
    """The backend for `spec`, registered names resolved; failures are `UserError`s."""
    try:
        return build_backend(spec, provider=provider, options=options,
                             resolve=resolve_model_folder)
    except BackendError as exc:
        raise UserError(str(exc)) from exc


def load_backend(args: argparse.Namespace) -> Backend:
    """The backend the `deskhand run` arguments ask for."""
    return open_backend(model_spec(model=args.model, script=args.script, server=args.server,
                                   server_model=args.server_model, allow_lan=args.allow_lan),
                        provider=args.provider,
                        options=RuntimeOptions(kv_shift=getattr(args, "kv_shift", False)))


def resolve_model_folder(name_or_dir: str | None) -> Path:
    """The model folder for --model: a registered name, or a folder that validates first."""
    try:
        from models.registry import resolve_model
    except ImportError as exc:
        if name_or_dir and Path(name_or_dir).expanduser().is_dir():
            return Path(name_or_dir).expanduser()  # no validator in this build; the backend checks
        raise UserError("the model registry is not installed; pass --model DIR") from exc
    try:
        return Path(resolve_model(name_or_dir))
    except (KeyError, LookupError, ValueError, FileNotFoundError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise UserError(f"{message}\nImport a model with `deskhand models import DIR`, export one "
                        "with `deskhand models export HF_DIR`, or pass --model DIR.") from exc
