"""Run options: what one run may do and for how long, each default written here and only here.

Every front end builds a `RunOptions` through a small adapter: the app's `Settings.run_options`,
the command lines' `add_flags` + `from_args` (`deskhand run`, `runs replay`, `mcp`, `eval`), the
harness's `EvalSettings.run_options`. `agent.loop.RunConfig` and `agent.safety.Limits` take
their defaults from `DEFAULTS`, so a run built without options behaves like one built with them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class ConfirmPolicy(StrEnum):
    """When the gate asks the person before an action (str-valued: settings files and flags).

    Declared from the laxest to the strictest: `POLICIES` keeps that order.
    """

    NEVER = "never"
    RISKY = "risky"    # paying, sending, deleting, closing windows, deny-listed windows
    ALWAYS = "always"


class Provider(StrEnum):
    """The ONNX Runtime execution provider (auto: CUDA if usable, DirectML on Windows, else CPU)."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    DML = "dml"


class Mode(StrEnum):
    """What the agent operates: a browser page, or the whole desktop (the family's prompt variant).

    A family with one prompt (Fara-7B) uses it in both modes; browser is the default because that
    is the prompt every run got before there was a choice.
    """

    BROWSER = "browser"
    DESKTOP = "desktop"


POLICIES: tuple[str, ...] = tuple(p.value for p in ConfirmPolicy)
MODES: tuple[str, ...] = tuple(m.value for m in Mode)
PROVIDERS: tuple[str, ...] = tuple(p.value for p in Provider)
# What a model export is built for: a concrete provider, never "auto".
EXPORT_PROVIDERS: tuple[str, ...] = tuple(p for p in PROVIDERS if p != Provider.AUTO)
# The app asks before acting in these windows unless the person changes the list; the command
# line starts from none (each --deny-title adds one).
APP_DENY_TITLES: tuple[str, ...] = ("password", "bank", "keychain")
# The search page template of releases before 2026-12: a port nothing serves. Settings files
# saved by them carry it; it is read as "no search page" (see `search_url` below).
RETIRED_SEARCH_URL = "http://127.0.0.1:8765/search?q={query}"
# The longest reply asked of the model per step (a Fara reply is thoughts plus one tool call).
MAX_NEW_TOKENS = 512


@dataclass(frozen=True)
class RunOptions:
    """The person's choices for a run; the engine's fixed tunables stay in RunConfig/Limits."""

    max_steps: int = 30
    max_minutes: float = 30.0
    settle_timeout: float = 3.0       # longest wait for the screen to settle after an action
    policy: ConfirmPolicy = ConfirmPolicy.RISKY
    provider: Provider = Provider.AUTO
    monitor: int = 1                  # 1..n, or 0 for all monitors together
    deny_titles: tuple[str, ...] = ()
    confirm_timeout: float = 60.0     # an unanswered confirmation is denied after this
    # URL template with {query} for web_search (and visit_url given words). Empty: none is
    # configured, and web_search tells the model so instead of opening a page (nothing serves a
    # search page outside the evaluation harness, and a public engine would break offline mode).
    search_url: str = ""
    history_scale: float = 1.0        # earlier screenshots sent at this fraction of their sides
    idle_waits: int = 0               # extra waits on an unchanged screen before asking the model
    kv_shift: bool = False            # reuse kept screenshots' keys/values after one leaves (approx.)
    second_look: bool = True          # the model folder's declared second look before a click
    keep_screenshots: bool = True
    offline: bool = True              # refuse every non-loopback connection from this process
    mode: Mode = Mode.BROWSER         # which prompt variant the model family uses

    def __post_init__(self) -> None:
        # Strings from settings files and flags become the enums; anything else is a ValueError.
        object.__setattr__(self, "policy", ConfirmPolicy(self.policy))
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "provider", Provider(self.provider))
        object.__setattr__(self, "deny_titles", tuple(self.deny_titles))
        if self.search_url and "{query}" not in self.search_url:
            raise ValueError("search_url must contain '{query}'")

    @property
    def max_seconds(self) -> float:
        return self.max_minutes * 60.0

    def with_changes(self, **changes: Any) -> RunOptions:
        """A copy with `changes` applied (validated like a new one)."""
        return replace(self, **changes)


DEFAULTS = RunOptions()


def fraction(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 (exclusive) and 1")
    return value


@dataclass(frozen=True)
class _Flag:
    """How one option appears on a command line: flag, argparse keywords, and back to the field."""

    flag: str
    dest: str
    keywords: dict[str, Any]
    to_field: Any = None  # converts the parsed value to the field's (None: as parsed)


_D = DEFAULTS
FLAGS: dict[str, _Flag] = {
    "monitor": _Flag("--monitor", "monitor", dict(
        type=int, default=_D.monitor,
        help=f"monitor to watch and act on: 1..n, or 0 for all together (default {_D.monitor})")),
    "provider": _Flag("--provider", "provider", dict(
        choices=PROVIDERS, default=_D.provider.value,
        help=f"ONNX Runtime execution provider (default {_D.provider.value}: CUDA if usable, "
        "DirectML on Windows, else CPU)")),
    "max_steps": _Flag("--max-steps", "max_steps", dict(
        type=int, default=_D.max_steps, help=f"stop after this many steps ({_D.max_steps})")),
    "max_minutes": _Flag("--max-minutes", "max_minutes", dict(
        type=float, default=_D.max_minutes,
        help=f"stop after this many minutes ({_D.max_minutes:g})")),
    "policy": _Flag("--confirm", "confirm", dict(
        choices=POLICIES, default=_D.policy.value,
        help="when to ask before acting: never, risky actions (pay, send, delete, closing "
        f"windows, deny-listed windows), or always (default {_D.policy.value})")),
    "deny_titles": _Flag("--deny-title", "deny_title", dict(
        action="append", default=[], metavar="TEXT",
        help="ask before any action while the focused window's title contains TEXT "
        "(repeatable)")),
    "settle_timeout": _Flag("--settle-timeout", "settle_timeout", dict(
        type=float, default=_D.settle_timeout,
        help="longest wait for the screen to stop changing after an action "
        f"({_D.settle_timeout:g} s)")),
    "confirm_timeout": _Flag("--confirm-timeout", "confirm_timeout", dict(
        type=float, default=_D.confirm_timeout,
        help=f"an unanswered confirmation is denied after this many seconds "
        f"({_D.confirm_timeout:g})")),
    "search_url": _Flag("--search-url", "search_url", dict(
        metavar="TEMPLATE", default=_D.search_url,
        help="URL template for web_search, with {query}, e.g. a local search page (default: "
        "none; web_search then tells the model that no search page is configured)")),
    "keep_screenshots": _Flag("--no-screenshots", "no_screenshots", dict(
        action="store_true", help="record steps without saving screenshots"),
        to_field=lambda v: not v),
    "offline": _Flag("--allow-network", "allow_network", dict(
        action="store_true", help="turn off verified offline mode for this run"),
        to_field=lambda v: not v),
    "history_scale": _Flag("--history-scale", "history_scale", dict(
        type=fraction, default=_D.history_scale, metavar="F",
        help="send earlier screenshots at this fraction of their size, e.g. 0.5 (fewer image "
        "tokens per step, faster; the model was trained on full size, so accuracy may drop; "
        f"default {_D.history_scale:g}, off)")),
    "idle_waits": _Flag("--idle-waits", "idle_waits", dict(
        type=int, default=_D.idle_waits, metavar="N",
        help="after a wait that left the screen unchanged, wait again up to N times before "
        f"asking the model (saves model steps; default {_D.idle_waits}, off)")),
    "kv_shift": _Flag("--kv-shift", "kv_shift", dict(
        action="store_true",
        help="in-process ONNX models of the Fara-7B family: when the oldest screenshot leaves "
        "the history, keep the cached keys/values of the later ones (moved and re-rotated) "
        "instead of computing them again; faster steady steps, an approximation (off by "
        "default)")),
    "second_look": _Flag("--no-second-look", "no_second_look", dict(
        action="store_true",
        help="ask the model once per click even when its folder declares a second look (Deskhand "
        "Nano looks again at up to five regions around its first point and clicks the answer "
        "nearest the others: up to five more model calls per click)"),
        to_field=lambda v: not v),
    "mode": _Flag("--mode", "mode", dict(
        choices=MODES, default=_D.mode.value,
        help="what the agent operates: a browser page or the whole desktop; picks the model "
        f"family's prompt variant where it has one (Fara1.5; Fara-7B has one prompt) "
        f"(default {_D.mode.value})")),
}


def add_flags(parser: argparse.ArgumentParser, *names: str, **changes: dict[str, Any]) -> None:
    """Add the flags of the options `names` to `parser`, defaults and help from this module.

    `changes` maps an option name to argparse keywords that differ for this command (e.g. the
    harness's `max_steps={"default": None, "help": ...}`).
    """
    for name in names:
        spec = FLAGS[name]
        parser.add_argument(spec.flag, dest=spec.dest, **{**spec.keywords, **changes.get(name, {})})


def from_args(args: argparse.Namespace, base: RunOptions = DEFAULTS, **changes: Any) -> RunOptions:
    """The options parsed into `args` (flags the command has not got keep `base`'s values)."""
    values: dict[str, Any] = {}
    for name, spec in FLAGS.items():
        if not hasattr(args, spec.dest):
            continue
        value = getattr(args, spec.dest)
        if value is None:
            continue  # an optional flag left out: the base's value
        values[name] = spec.to_field(value) if spec.to_field else value
    if "idle_waits" in values:
        values["idle_waits"] = max(0, values["idle_waits"])
    return replace(base, **{**values, **changes})
