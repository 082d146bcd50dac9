"""The model under test: its folder, the fingerprint the manifest files, and its backend.

Backends are built by the one factory (agent/inference/factory.py). A registered model name is
resolved by the model registry, which lives outside `agent` (models/registry.py): the command
line hands a resolver in (`EvalSettings.resolve_model`, a module-level function, so it travels
to worker processes and Ray actors by name). Without one, `--model` is a folder or server:URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from agent.errors import UserError
from agent.inference import factory
from agent.inference.base import Backend, BackendError
from agent.inference.factory import RuntimeOptions, build_backend, parse_model_spec
from agent.options import Provider

Resolver = Callable[[str], Path]


def model_folder(model: str, resolve: Resolver | None = None) -> Path:
    """The folder `model` names (the factory's rule), as a `UserError` for the command line."""
    try:
        return factory.model_folder(model, resolve)
    except BackendError as exc:
        raise UserError(f"{exc} (registered names need the model registry)") from exc


def model_fingerprint(model: str, resolve: Resolver | None = None) -> str:
    """Identifies the model folder's contents cheaply: file names and sizes (else the name)."""
    try:
        folder = model_folder(model, resolve)
    except Exception:
        return model
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            parts.append(f"{path.relative_to(folder)}:{path.stat().st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def folder_gib(model: str, resolve: Resolver | None = None) -> float:
    """The size of the model's folder in GiB (0 when it has none here)."""
    try:
        folder = model_folder(model, resolve)
    except Exception:
        return 0.0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / (1 << 30)


def load_model_backend(model: str, provider: str = Provider.AUTO, *, allow_lan: bool = False,
                       resolve: Resolver | None = None, kv_shift: bool = False) -> Backend:
    """A model backend as `deskhand run --model` builds it (`server:URL` for a server)."""
    try:
        return build_backend(parse_model_spec(model, allow_lan=allow_lan), provider=provider,
                             options=RuntimeOptions(kv_shift=kv_shift), resolve=resolve)
    except BackendError as exc:  # shown to the user without a traceback
        raise UserError(str(exc)) from exc
