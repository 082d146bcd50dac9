"""Deterministic safety in front of the executor: confirmation gate, stop flag, stall and limits.

The model cannot be relied on to stop at critical points, so the gate decides from the action
itself, what is written on screen where it lands (read by a `LabelReader`), the model's words and
the focused window, independently of the model. What counts as critical is in `agent.gate_rules`.
Model text can only add reasons to ask: no text turns a reason found elsewhere off.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from agent import gate_rules
from agent.actions import (
    CLICKS,
    NO_INPUT,
    Action,
    Drag,
    HistoryBack,
    KeyPress,
    TypeText,
    VisitUrl,
    WebSearch,
)
from agent.keys import chord, typed_character
from agent.options import DEFAULTS, ConfirmPolicy, RunOptions
from agent.textnorm import LINE_BREAKS

if TYPE_CHECKING:
    from PIL import Image

    from agent.gate_rules import Label
    from agent.geometry import Monitor
    from agent.screen_label import LabelReader

log = logging.getLogger(__name__)

Policy = ConfirmPolicy  # the gate's name for the confirmation policy (owned by agent.options)


class Decision(str, Enum):
    ALLOW_ONCE = "allow_once"
    ALLOW_RUN = "allow_run"
    DENY = "deny"


@dataclass(frozen=True)
class ConfirmRequest:
    """What the user is asked to confirm."""

    action: Action
    thoughts: str
    reasons: tuple[str, ...]
    window_title: str = ""
    label: Label | None = None  # what was read on screen at the target (text, role, source)


_SOURCES = {"atspi": "accessibility", "ocr": "text recognition"}


def read_on_screen(label: Label | None) -> str:
    """One line for people: the label read at the target, its role and how it was read."""
    text = " ".join((getattr(label, "text", "") or "").split())[:200] if label is not None else ""
    if not text:
        return "Read on screen at the target: nothing (judged from the action and the model's words)"
    role = getattr(label, "role", "") or ""
    source = getattr(label, "source", "") or "?"
    what = f"{role}, " if role else ""
    return f"Read on screen at the target: “{text}” ({what}via {_SOURCES.get(source, source)})"


@dataclass(frozen=True)
class GateVerdict:
    allowed: bool
    asked: bool = False
    reasons: tuple[str, ...] = ()
    decision: Decision | None = None


AskUser = Callable[[ConfirmRequest], Decision]


def deny_all(_request: ConfirmRequest) -> Decision:
    """The answer when nobody can be asked (headless runs)."""
    return Decision.DENY


class Gate:
    """Decides before every action whether it may run, asking the user when the policy says so.

    `reader` reads the label at the action's target from the screenshot (AT-SPI, then OCR); None
    takes `agent.screen_label.default_reader()`. The gate remembers where the last click or
    typing landed and what was typed since the last Enter, so that a later bare Enter is judged
    by what it submits.
    """

    def __init__(self, policy: Policy | str = Policy.RISKY, *, ask: AskUser = deny_all,
                 deny_titles: Iterable[str] = (),
                 window_title: Callable[[], str] = lambda: "",
                 reader: LabelReader | None = None, rules: gate_rules.Rules | None = None,
                 platform: str | None = None) -> None:
        self.policy = Policy(policy)
        self._ask = ask
        self._deny_titles = tuple(t for t in deny_titles if t.strip())
        self._window_title = window_title
        self._reader = reader
        self._rules = rules
        self._platform = platform or sys.platform
        self._allowed_for_run = False
        self._focus: tuple[int, int] | None = None  # screenshot pixels of the last click/typing
        self._pending = ""  # typed since the last submit
        self._default_readers: dict[Monitor | None, LabelReader] = {}

    @property
    def rules(self) -> gate_rules.Rules:
        if self._rules is None:
            self._rules = gate_rules.default_rules()
        return self._rules

    def reasons(self, action: Action, thoughts: str, title: str, *, label: Label | None = None,
                model_text: str = "") -> tuple[str, ...]:
        """Why an action is risky (empty when it is not)."""
        facts = gate_rules.Facts(action, thoughts, model_text, title, label, self._pending,
                                 self._platform)
        found = gate_rules.assess(facts, self.rules)
        listed = gate_rules.deny_listed(title, self._deny_titles, self.rules)
        if listed:
            found.append(f"the focused window {title!r} is on the deny list ({listed!r})")
        return tuple(found)

    def check(self, action: Action, thoughts: str, *, screenshot: Image.Image | None = None,
              target: tuple[int, int] | None = None, model_text: str = "",
              monitor: Monitor | None = None) -> GateVerdict:
        """Allow, or ask the user; a denial never raises.

        `screenshot` is the image the model acted on (of `monitor`) and `target` the action's
        point in its pixels; `model_text` is the whole model reply (what follows the tool call
        counts too).
        """
        if self.policy is Policy.NEVER or self._allowed_for_run:
            self._remember(action, target)
            return GateVerdict(True)
        if isinstance(action, NO_INPUT):
            return GateVerdict(True)  # these send no input
        try:
            title = self._window_title() or ""
        except Exception:
            title = ""  # a window that vanished has no title; other checks still apply
        label = self._read(action, screenshot, target, monitor)
        reasons = self.reasons(action, thoughts, title, label=label, model_text=model_text)
        self._remember(action, target)
        if self.policy is Policy.RISKY and not reasons:
            return GateVerdict(True)
        request = ConfirmRequest(action, thoughts, reasons or ("confirmation policy is 'always'",),
                                 title, label)
        decision = self._ask(request)
        if decision is Decision.ALLOW_RUN:
            self._allowed_for_run = True
        return GateVerdict(decision is not Decision.DENY, True, request.reasons, decision)

    def _read(self, action: Action, image: Image.Image | None, target: tuple[int, int] | None,
              monitor: Monitor | None) -> Label | None:
        """The label where the action lands: its own target, or the last place clicked."""
        if image is None or not isinstance(action, (*CLICKS, Drag, TypeText, KeyPress)):
            return None
        if isinstance(action, KeyPress):
            c = chord(action.keys, self._platform)
            if c is None or not c.keys & {"enter", "delete", "space", "backspace"}:
                return None  # a shortcut: what has focus does not change what it does
        point = target if target is not None else self._focus
        if point is None:
            return None
        reader = self._reader
        if reader is None:  # the platform reader, placed on this monitor for accessibility lookups
            if monitor not in self._default_readers:
                self._default_readers[monitor] = _default_reader(monitor)
            reader = self._default_readers[monitor]
        try:
            return reader.read(image, int(point[0]), int(point[1]))
        except Exception as exc:  # a reader bug must not let the action through unjudged
            log.warning("reading the screen at %s failed: %s", point, exc)
            return None

    def _remember(self, action: Action, target: tuple[int, int] | None) -> None:
        if isinstance(action, (*CLICKS, Drag)):
            self._focus, self._pending = target, ""
        elif isinstance(action, TypeText):
            if action.delete_existing_text or (target is not None and target != self._focus):
                self._pending = ""  # another field, or the field emptied first
            if target is not None:
                self._focus = target
            typed = self._pending + action.text
            last_break = max(typed.rfind(b) for b in LINE_BREAKS)
            self._pending = "" if action.press_enter else typed[last_break + 1:]
            if "\t" in action.text:
                self._focus, self._pending = None, ""  # Tab moved the focus somewhere unseen
        elif isinstance(action, KeyPress):
            c = chord(action.keys, self._platform)
            if c is not None and "tab" in c.keys:
                self._focus, self._pending = None, ""  # the focus moved somewhere unseen
            elif c is not None and "enter" in c.keys:
                self._pending = ""
            elif c is not None:
                self._pending += typed_character(c)  # a field typed key by key
        elif isinstance(action, (VisitUrl, WebSearch, HistoryBack)):
            self._focus, self._pending = None, ""
        self._pending = self._pending[-gate_rules.MAX_SCAN:]


def _default_reader(monitor: Monitor | None) -> LabelReader:
    """The platform's screen-label reader (accessibility, then OCR); lazy: it imports a lot."""
    from agent.screen_label import default_reader

    return default_reader(monitor)


class StopFlag:
    """One flag that every phase boundary and every generated token checks."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self.set_at: float | None = None

    def set(self, reason: str = "stopped by the user") -> None:
        if not self._event.is_set():
            self.reason = reason
            self.set_at = time.monotonic()
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early when the flag is set."""
        return self._event.wait(timeout)


@dataclass
class StallDetector:
    """Notices the same action at the same place with an unchanged screen, `limit` times running."""

    limit: int = 3
    _last: tuple[object, ...] | None = None
    _count: int = 0

    def observe(self, action: Action, screen_digest: str) -> bool:
        """Record one step; True when the run is stalled."""
        key = (type(action), action.arguments().__repr__(), screen_digest)
        if key == self._last:
            self._count += 1
        else:
            self._last, self._count = key, 1
        return self._count >= self.limit


@dataclass(frozen=True)
class Limits:
    max_steps: int = DEFAULTS.max_steps
    max_seconds: float = DEFAULTS.max_seconds
    stall_repeats: int = 3
    parse_retries: int = 1

    @classmethod
    def from_options(cls, options: RunOptions) -> Limits:
        """The step and time limits `options` ask for (the engine's own tunables as default)."""
        return cls(max_steps=options.max_steps, max_seconds=options.max_seconds)


@dataclass
class Budget:
    """Tracks steps and wall time against `Limits`."""

    limits: Limits
    started: float = field(default_factory=time.monotonic)
    steps: int = 0

    def exceeded(self) -> str | None:
        if self.steps >= self.limits.max_steps:
            return f"reached the step limit ({self.limits.max_steps})"
        if time.monotonic() - self.started > self.limits.max_seconds:
            return f"reached the time limit ({self.limits.max_seconds:.0f} s)"
        return None
