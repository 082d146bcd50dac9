"""The collaborators the app builds runs from; tests replace them with fakes.

Heavy and optional modules (model registry, ONNX backend, executor) are imported only when a run
starts, and their failures become one sentence a user can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.safety import StopFlag
from app.settings import Settings


class SetupError(RuntimeError):
    """A run cannot start (no model, broken model folder, missing extra); the message is for users."""


def default_backend(settings: Settings) -> Any:
    """The ONNX backend for the configured model, in its own process (see app/procbackend.py)."""
    from app.model_choice import model_name

    name = model_name(settings)  # the override, else the registry's default
    if not name:
        raise SetupError("No model is set up yet. Import, export or download one first.")
    try:
        from models.registry import ModelError, resolve_model
    except ImportError as exc:
        raise SetupError(f"the model registry is not available ({exc})") from exc
    try:
        folder = resolve_model(name)
    except ModelError as exc:
        raise SetupError(str(exc)) from exc
    import importlib.util

    # Only looked up here: the runtime itself is imported in the model process, never in ours.
    if importlib.util.find_spec("onnxruntime") is None:
        raise SetupError("the ONNX runtime is not installed: pip install 'deskhand[onnx]'")
    from agent.inference.factory import ModelKind, ModelSpec, build_backend
    from app.procbackend import ProcessBackend

    try:  # the app runs ONNX folders only, in the model process
        return build_backend(ModelSpec(ModelKind.ONNX, str(folder)), provider=settings.provider,
                             host=ProcessBackend)
    except Exception as exc:  # a broken folder or provider: the backend's message is for users
        raise SetupError(f"the model in {folder} could not be loaded: {exc}") from exc


def default_executor(settings: Settings, stop: StopFlag) -> Any:
    """Real mouse and keyboard input."""
    try:
        from agent.executor import Executor
    except ImportError as exc:
        raise SetupError(f"input control is not available ({exc})") from exc
    try:
        return Executor(stop=stop, search_url=settings.search_url)
    except Exception as exc:
        raise SetupError(f"input control could not start: {exc}") from exc


def default_screen() -> Any:
    from agent.screen import Screen

    return Screen()


def default_window_title() -> str:
    try:
        from agent.desktop import focused_window_title
    except ImportError:
        return ""
    return focused_window_title()


def default_models() -> list[str]:
    """Names of registered models (empty when the registry is missing or unreadable)."""
    try:
        from models.registry import Registry

        return [e.name for e in Registry().entries()]
    except Exception:
        return []


@dataclass
class Services:
    """Factories for one run's collaborators."""

    backend: Callable[[Settings], Any] = default_backend
    executor: Callable[[Settings, StopFlag], Any] = default_executor
    screen: Callable[[], Any] = default_screen
    window_title: Callable[[], str] = default_window_title
    models: Callable[[], list[str]] = default_models
    offline: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
