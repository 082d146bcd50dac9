"""Which model the app runs: the registry's default is the one source of truth.

`deskhand models default NAME` (and the registry's "only model" rule) decides the model for the
command line; the app reads the same default and writes it when the user picks a model in the
model box or the first-run dialog, so both always agree. `Settings.model` is kept only as an
explicit override for a model *folder* that is not registered (typed in the Settings dialog);
empty means "the registry's default".

Old settings files stored the app's choice as a registered name in `Settings.model`.
`adopt_settings_model` moves such a name into the registry once: it becomes the registry's
default when none was chosen; when the command line already chose one, that explicit choice
wins. Either way the field is cleared, so the app and `deskhand run` agree from then on.
No Qt here.
"""

from __future__ import annotations

from app.settings import Settings


def _registry():
    from models.registry import Registry

    return Registry()


def registry_default() -> str:
    """The registry's default model name ('' when none): the one `deskhand run` uses too (the
    chosen one, else the only registered one, else the built-in Nano)."""
    try:
        return _registry().effective_default() or ""
    except Exception:  # no registry in this build, or an unreadable one: no model yet
        return ""


def is_builtin(name: str) -> bool:
    """Whether `name` is the built-in model (Deskhand Nano, models/builtin.py)."""
    try:
        return _registry().is_builtin(name)
    except Exception:
        return False


def model_name(settings: Settings) -> str:
    """The model the app runs: the settings' explicit override, else the registry's default."""
    return settings.model.strip() or registry_default()


def choose_model(settings: Settings, name: str) -> None:
    """The user picked `name`: a registered model becomes the registry's default (for the app
    and the command line alike); anything else (a folder) is kept as the app's override."""
    try:
        registry = _registry()
        registered = name in registry
        if registered:
            registry.set_default(name)
    except Exception:  # no registry: the name can only be an override
        registered = False
    settings.model = "" if registered else name


def adopt_settings_model(settings: Settings) -> bool:
    """Move a registered name from an old settings file into the registry; True if changed."""
    name = settings.model.strip()
    if not name:
        return False
    try:
        registry = _registry()
        if name not in registry:
            return False  # a folder: it stays the app's explicit override
        if not registry.default:
            registry.set_default(name)
    except Exception:
        return False
    settings.model = ""
    return True
