"""Deterministic safety in front of the executor: confirmation gate, stop flag, stall and limits.

The model cannot be relied on to stop at critical points, so the gate decides from the action
itself, the model's thoughts and the focused window, independently of the model.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from agent.actions import Action, KeyPress, MemorizeFact, Terminate, TypeText, Wait

RISKY_WORDS = (
    "pay", "payment", "purchase", "buy", "order", "checkout", "check out", "send", "delete",
    "remove", "submit", "book", "booking", "reserve", "install", "uninstall", "transfer",
    "wire", "sign up", "subscribe", "confirm", "post", "publish", "call", "email",
)
_RISKY_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in RISKY_WORDS) + r")(s|es|ed|ing)?\b",
                       re.IGNORECASE)
# Chords that close windows or quit applications.
_CLOSING_CHORDS = {
    frozenset({"alt", "f4"}), frozenset({"ctrl", "w"}), frozenset({"ctrl", "q"}),
    frozenset({"cmd", "w"}), frozenset({"cmd", "q"}), frozenset({"ctrl", "shift", "w"}),
    frozenset({"ctrl", "shift", "q"}), frozenset({"super", "q"}),
}
_KEY_ALIASES = {"control": "ctrl", "command": "cmd", "meta": "cmd", "win": "super", "option": "alt"}


class Policy(str, Enum):
    NEVER = "never"
    RISKY = "risky"
    ALWAYS = "always"


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


def normalise_key(name: str) -> str:
    key = name.strip().lower()
    return _KEY_ALIASES.get(key, key)


class Gate:
    """Decides before every action whether it may run, asking the user when the policy says so."""

    def __init__(self, policy: Policy | str = Policy.RISKY, *, ask: AskUser = deny_all,
                 deny_titles: Iterable[str] = (),
                 window_title: Callable[[], str] = lambda: "") -> None:
        self.policy = Policy(policy)
        self._ask = ask
        self._deny_titles = tuple(t.lower() for t in deny_titles if t.strip())
        self._window_title = window_title
        self._allowed_for_run = False

    def reasons(self, action: Action, thoughts: str, title: str) -> tuple[str, ...]:
        """Why an action is risky (empty when it is not)."""
        found: list[str] = []
        words = {m.group(1).lower() for m in _RISKY_RE.finditer(thoughts)}
        if isinstance(action, TypeText):
            words |= {m.group(1).lower() for m in _RISKY_RE.finditer(action.text)}
        if words:
            found.append("mentions " + ", ".join(sorted(words)))
        if isinstance(action, KeyPress) and frozenset(map(normalise_key, action.keys)) in _CLOSING_CHORDS:
            found.append("closes a window or quits an application")
        lowered = title.lower()
        for pattern in self._deny_titles:
            if pattern in lowered:
                found.append(f"the focused window {title!r} is on the deny list")
        return tuple(found)

    def check(self, action: Action, thoughts: str) -> GateVerdict:
        """Allow, or ask the user; a denial never raises."""
        if self.policy is Policy.NEVER or self._allowed_for_run:
            return GateVerdict(True)
        if isinstance(action, (Terminate, MemorizeFact, Wait)):
            return GateVerdict(True)  # these send no input
        try:
            title = self._window_title() or ""
        except Exception:
            title = ""  # a window that vanished has no title; other checks still apply
        reasons = self.reasons(action, thoughts, title)
        if self.policy is Policy.RISKY and not reasons:
            return GateVerdict(True)
        request = ConfirmRequest(action, thoughts, reasons or ("confirmation policy is 'always'",),
                                 title)
        decision = self._ask(request)
        if decision is Decision.ALLOW_RUN:
            self._allowed_for_run = True
        return GateVerdict(decision is not Decision.DENY, True, request.reasons, decision)


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
    max_steps: int = 30
    max_seconds: float = 30 * 60.0
    stall_repeats: int = 3
    parse_retries: int = 1


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
