"""Scripted solvers: a backend for the agent loop that plays a task's plan as Fara tool calls.

The solver proves a task is solvable through the agent's own path: it only *finds* elements
over DevTools (their boxes, and a point of each that is not covered), converts that point
from CSS pixels to MODEL coordinates of the current screenshot and emits Fara text that the
loop parses and the real executor performs as X input. It never clicks, types or navigates
through DevTools. The wrong solver plays the task's wrong plan (or the right plan with the
wrong answer) to prove that every judge can fail. Plans are loaded and validated by
`agent.eval.tasks.load_plans`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterable, Sequence
from typing import Any
from urllib.parse import quote, urljoin

from PIL import Image

from agent.actions import (
    Action,
    HistoryBack,
    KeyPress,
    LeftClick,
    Scroll,
    Terminate,
    TypeText,
    VisitUrl,
    Wait,
    format_call,
)
from agent.eval.cdp import Cdp, CdpError, Rect, Viewport
from agent.eval.tasks import Plan
from agent.geometry import Monitor, Point, ScreenMapping, Size, Space
from agent.inference.base import Message, ScriptedBackend

MAX_SCROLLS = 25  # scroll actions spent bringing one element into view
FIND_TIMEOUT = 8.0  # seconds to wait for an element to appear (pages still loading)
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


class PlanError(ValueError):
    """No usable plan for a task (missing file or task)."""


class PlanSolver:
    """Chooses each next action of a plan, aimed at live element boxes; see `backend()`."""

    def __init__(self, steps: Iterable[dict[str, Any]], *, cdp: Cdp, screen: Size,
                 base_url: str, name: str = "scripted:solver") -> None:
        self.name = name
        self._steps = list(steps)
        self._cdp = cdp
        self._screen = screen
        self._base_url = base_url
        self._model = screen
        self._actions = self._play()

    def backend(self) -> ScriptedBackend:
        """A `ScriptedBackend` whose every reply is computed by `reply` from the model's input."""
        backend = ScriptedBackend([self.reply], repeat_last=True)
        backend.name = self.name
        return backend

    def reply(self, messages: Sequence[Message], images: Sequence[Image.Image]) -> str:
        """The next action as Fara text: thoughts, then one tool call."""
        if images:
            self._model = Size(*images[-1].size)  # this turn's model image: coordinates refer to it
        try:
            thoughts, action = next(self._actions)
        except StopIteration:
            thoughts, action = "The plan is complete.", Terminate("success")
        except (CdpError, _Stuck) as exc:
            self._actions = iter(())
            thoughts, action = f"Scripted solver stuck: {exc}", Terminate("failure")
        return format_call(thoughts, action)

    # -- playing the plan -------------------------------------------------------------

    def _play(self) -> Generator[tuple[str, Action], None, None]:
        for step in self._steps:
            op = step["op"]
            if op == "click":
                point = yield from self._reach(step["selector"])
                yield f"Click {step['selector']}.", LeftClick(point)
            elif op == "type":
                point = yield from self._reach(step["selector"])
                yield (f"Type into {step['selector']}.",
                       TypeText(str(step["text"]), point, bool(step.get("enter", False)),
                                bool(step.get("clear", False))))
            elif op == "select":
                yield from self._select(step["selector"], str(step["option"]))
            elif op == "scroll_to":
                yield from self._reach(step["selector"])
            elif op == "key":
                yield f"Press {'+'.join(step['keys'])}.", KeyPress(tuple(step["keys"]))
            elif op == "visit":
                # Percent-encoded: visit_url treats a string with spaces as a search.
                url = quote(urljoin(self._current_url(), str(step["url"])), safe=_URL_SAFE)
                yield f"Open {url}.", VisitUrl(url)  # the executor types it into the address bar
                self._cdp.ready()
            elif op == "back":
                yield "Go back.", HistoryBack()
                self._cdp.ready()
            elif op == "wait":
                yield "Wait.", Wait(float(step.get("seconds", 1)))
            elif op == "answer":
                yield str(step.get("text", "")), Terminate(step.get("status", "success"))
                return

    def _current_url(self) -> str:
        try:
            return self._cdp.url() or self._base_url
        except Exception:
            return self._base_url

    def _select(self, selector: str, option: str) -> Generator[tuple[str, Action], None, None]:
        """Open a native <select> with a click and pick the option with the keyboard."""
        target = self._option_index(selector, option)
        for attempt in range(2):
            point = yield from self._reach(selector)
            yield f"Open the {selector} list.", LeftClick(point)
            if attempt == 0:
                # Type-ahead on the open pop-up, then Enter: how a person picks from a long list.
                yield f"Choose {option!r}.", TypeText(option, None, True, False)
            else:
                current = int(self._cdp.evaluate(_js_select(selector, "el.selectedIndex")))
                delta = target - current
                for _ in range(abs(delta)):
                    yield "Move through the list.", KeyPress(("Down",) if delta > 0 else ("Up",))
                yield f"Choose {option!r}.", KeyPress(("Enter",))
            now = self._cdp.evaluate(_js_select(selector, "el ? el.selectedIndex : null"))
            if now is None or now == target:
                return  # chosen (or the choice navigated away, as sort menus do)
        raise _Stuck(f"could not choose {option!r} in {selector}")

    def _option_index(self, selector: str, option: str) -> int:
        """The option's index, waiting for pages that fill their lists by script after load."""
        self._wait_for(selector)
        expr = _js_select(selector, "el ? [...el.options].findIndex(o => o.text.trim() === "
                          f"{_js_str(option.strip())} || o.value === {_js_str(option)}) : -1")
        deadline = time.monotonic() + FIND_TIMEOUT
        while True:
            index = self._cdp.evaluate(expr)
            if isinstance(index, int) and index >= 0:
                return index
            if time.monotonic() > deadline:
                raise _Stuck(f"{selector} has no option {option!r}")
            time.sleep(0.1)

    def _wait_for(self, selector: str) -> Rect | None:
        deadline = time.monotonic() + FIND_TIMEOUT
        while True:
            self._cdp.ready(timeout=max(0.1, deadline - time.monotonic()))
            try:
                rect = self._cdp.rect(selector)
            except CdpError:
                rect = None  # the page navigated between calls
            if rect is not None or time.monotonic() > deadline:
                return rect
            time.sleep(0.1)

    def _reach(self, selector: str) -> Generator[tuple[str, Action], None, tuple[int, int]]:
        """Scroll (with Fara scroll actions) until the element's centre is on screen; its point."""
        last: Rect | None = None
        for _ in range(MAX_SCROLLS + 1):
            rect = self._wait_for(selector)
            if rect is None:
                raise _Stuck(f"no visible element matches {selector}")
            view = self._cdp.viewport()
            cx, cy = rect.centre
            if 0 <= cx < view.width and 0 <= cy < view.height:
                # Aim at a point of the element that is on top (sticky headers, overlays).
                hit = self._cdp.hit_point(selector)
                return self._to_model(view, *(hit or (cx, cy)))
            if last is not None and last == rect:
                raise _Stuck(f"scrolling does not move {selector} into view")
            last = rect
            down = cy >= view.height
            hover = self._to_model(view, min(max(cx, 1.0), view.width - 2), view.height / 2)
            yield (f"Scroll {'down' if down else 'up'} towards {selector}.",
                   Scroll(-view.height if down else view.height, hover))
        raise _Stuck(f"{selector} is still off screen after {MAX_SCROLLS} scrolls")

    def _to_model(self, view: Viewport, x: float, y: float) -> tuple[int, int]:
        """A viewport CSS point → MODEL coordinates of this turn's screenshot."""
        sx, sy = view.to_screen(x, y)
        mapping = ScreenMapping(Monitor(1, 0, 0, self._screen.width, self._screen.height),
                                self._screen, self._model)
        p = mapping.convert(Point(sx, sy, Space.SCREENSHOT), Space.MODEL)
        mx, my = p.rounded()
        return (min(max(mx, 0), self._model.width - 1), min(max(my, 0), self._model.height - 1))


class _Stuck(RuntimeError):
    pass


def _js_str(text: str) -> str:
    return json.dumps(text)


def _js_select(selector: str, expression: str) -> str:
    return f"(() => {{ const el = document.querySelector({_js_str(selector)}); return {expression}; }})()"


def solver_backend(kind: str, plan: Plan, *, cdp: Cdp, screen: Size, base_url: str) -> ScriptedBackend:
    """`solver` plays the plan, `wrong` the wrong plan; both through the agent's input path."""
    if kind not in ("solver", "wrong"):
        raise PlanError(f"unknown scripted solver {kind!r} (use scripted:solver or scripted:wrong)")
    steps = plan.steps if kind == "solver" else plan.wrong_plan()
    return PlanSolver(steps, cdp=cdp, screen=screen, base_url=base_url,
                      name=f"scripted:{kind}").backend()
