"""The action types: a closed set of frozen classes, one per action a Fara model can call.

Fara-7B's set is `FARA7B_ACTIONS`; Fara1.5 adds more clicks, a drag, a horizontal scroll and
two actions that send no input (`ask_user_question`, `read_page_answer_question`), listed in
`FARA15_ACTIONS`. The parser (`agent.actions`) accepts a family's set only; a recorded step of
either family reads back through `ALL_ACTIONS`.

Fara1.5's argument names were checked against the public agent (microsoft/fara at 8904727,
src/fara/agents/fara/fara15_agent.py, read 2026-12-02): `coordinate` for every click, the drag and
the move; `pixels` for scroll/hscroll; `question` for both question actions; the drag goes from the
pointer to `coordinate`. What that file leaves to its environment is marked "UNVERIFIED" so the
first person with the weights fixes it here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal


@dataclass(frozen=True)
class Action:
    """Base of all actions; `name` is the Fara action name."""

    name: ClassVar[str] = ""

    def arguments(self) -> dict[str, Any]:
        """The tool-call arguments that describe this action (inverse of parsing)."""
        args: dict[str, Any] = {"action": self.name}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            args[f.name] = list(value) if isinstance(value, tuple) else value
        return args

    @property
    def target(self) -> tuple[int, int] | None:
        """The model-space point this action acts on, if any."""
        return getattr(self, "coordinate", None)


@dataclass(frozen=True)
class LeftClick(Action):
    name: ClassVar[str] = "left_click"
    coordinate: tuple[int, int]


@dataclass(frozen=True)
class DoubleClick(Action):
    name: ClassVar[str] = "double_click"
    coordinate: tuple[int, int]


@dataclass(frozen=True)
class TripleClick(Action):
    name: ClassVar[str] = "triple_click"
    coordinate: tuple[int, int]


@dataclass(frozen=True)
class RightClick(Action):
    name: ClassVar[str] = "right_click"
    coordinate: tuple[int, int]


@dataclass(frozen=True)
class Drag(Action):
    """Press at `start_coordinate` (or where the pointer is), move to `coordinate`, release.

    `coordinate` is the drop point, so the gate reads the label where the drag lands.
    """

    name: ClassVar[str] = "left_click_drag"
    coordinate: tuple[int, int]
    # Fara1.5 drags from the pointer to `coordinate` (verified, fara15_agent.py); an explicit
    # start (`start_coordinate`, Anthropic-style tools) is accepted too.
    start_coordinate: tuple[int, int] | None = None


@dataclass(frozen=True)
class MouseMove(Action):
    name: ClassVar[str] = "mouse_move"
    coordinate: tuple[int, int]


@dataclass(frozen=True)
class TypeText(Action):
    name: ClassVar[str] = "type"
    text: str
    coordinate: tuple[int, int] | None = None
    press_enter: bool = True
    delete_existing_text: bool = False


@dataclass(frozen=True)
class KeyPress(Action):
    name: ClassVar[str] = "key"
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Scroll(Action):
    name: ClassVar[str] = "scroll"
    pixels: float  # positive scrolls up (Fara-7B's schema)
    coordinate: tuple[int, int] | None = None


@dataclass(frozen=True)
class HScroll(Action):
    name: ClassVar[str] = "hscroll"
    # Scaled by viewport width / display size (verified); the sign is the environment's:
    # UNVERIFIED that positive scrolls right (as pyautogui.hscroll).
    pixels: float
    coordinate: tuple[int, int] | None = None


@dataclass(frozen=True)
class VisitUrl(Action):
    name: ClassVar[str] = "visit_url"
    url: str


@dataclass(frozen=True)
class WebSearch(Action):
    name: ClassVar[str] = "web_search"
    query: str


@dataclass(frozen=True)
class HistoryBack(Action):
    name: ClassVar[str] = "history_back"


@dataclass(frozen=True)
class MemorizeFact(Action):
    name: ClassVar[str] = "pause_and_memorize_fact"
    fact: str


@dataclass(frozen=True)
class Wait(Action):
    name: ClassVar[str] = "wait"
    time: float = 1.0


@dataclass(frozen=True)
class AskUser(Action):
    """The run pauses; the person's answer becomes the next user message."""

    name: ClassVar[str] = "ask_user_question"
    question: str


@dataclass(frozen=True)
class ReadPage(Action):
    """A text observation (at most ~1000 characters) before the next screenshot.

    Fara1.5's own harness answers the question with a second model call over the page's
    markdown ("I read the page to answer: Q\nAnswer: A"); Deskhand feeds the page text itself,
    cut to the limit, and lets the model read it (no second model call on this machine).
    """

    name: ClassVar[str] = "read_page_answer_question"
    question: str


@dataclass(frozen=True)
class Terminate(Action):
    name: ClassVar[str] = "terminate"
    status: Literal["success", "failure"] = "success"


def _table(*classes: type[Action]) -> dict[str, type[Action]]:
    return {cls.name: cls for cls in classes}


FARA7B_ACTIONS = _table(LeftClick, MouseMove, TypeText, KeyPress, Scroll, VisitUrl, WebSearch,
                        HistoryBack, MemorizeFact, Wait, Terminate)
FARA15_ACTIONS = _table(LeftClick, DoubleClick, RightClick, TripleClick, Drag, MouseMove, TypeText,
                        KeyPress, Scroll, HScroll, VisitUrl, WebSearch, HistoryBack, Wait,
                        MemorizeFact, AskUser, ReadPage, Terminate)
ALL_ACTIONS = {**FARA7B_ACTIONS, **FARA15_ACTIONS}
# Clicks the gate judges alike by the label under them (a drag by the label where it drops).
CLICKS: tuple[type[Action], ...] = (LeftClick, DoubleClick, TripleClick, RightClick)
# Actions that send no input: the gate lets them through, the executor never sees the last two.
NO_INPUT: tuple[type[Action], ...] = (Terminate, MemorizeFact, Wait, AskUser, ReadPage)


def describe(action: Action) -> str:
    """A short human-readable description of an action."""
    a = action
    simple = _DESCRIBE.get(type(a))
    if simple is not None:
        return simple(a)
    if isinstance(a, TypeText):
        where = f" at {a.coordinate}" if a.coordinate else ""
        enter = " + Enter" if a.press_enter else ""
        return f"type {a.text!r}{where}{enter}"
    if isinstance(a, Drag):
        start = f" from {a.start_coordinate}" if a.start_coordinate else ""
        return f"drag{start} to {a.coordinate}"
    if isinstance(a, Scroll):
        return f"scroll {'up' if a.pixels > 0 else 'down'}"
    if isinstance(a, HScroll):
        return f"scroll {'right' if a.pixels > 0 else 'left'}"
    return a.name


_DESCRIBE: dict[type, Any] = {
    LeftClick: lambda a: f"click at {a.coordinate}",
    DoubleClick: lambda a: f"double-click at {a.coordinate}",
    TripleClick: lambda a: f"triple-click at {a.coordinate}",
    RightClick: lambda a: f"right-click at {a.coordinate}",
    MouseMove: lambda a: f"move mouse to {a.coordinate}",
    KeyPress: lambda a: "press " + "+".join(a.keys),
    VisitUrl: lambda a: f"open {a.url}",
    WebSearch: lambda a: f"search for {a.query!r}",
    HistoryBack: lambda a: "go back",
    MemorizeFact: lambda a: f"remember {a.fact!r}",
    Wait: lambda a: f"wait {a.time:g} s",
    AskUser: lambda a: f"ask you: {a.question!r}",
    ReadPage: lambda a: f"read the page to answer {a.question!r}",
    Terminate: lambda a: f"finish ({a.status})",
}
