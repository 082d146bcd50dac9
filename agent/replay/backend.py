"""Replay as a backend: the agent loop asks for the next action, replay answers from the recording.

Because replay sits where the model sits, every replayed action goes through the loop's own
machinery — parse, confirmation gate (a recorded "Place order" asks again), executor, settle,
recorder and `Step` records — with nothing copied. For each recorded action the target's
neighbourhood in the recorded screen is looked for in the current one (`agent.replay.matching`),
in the model image the loop hands over, so the coordinate emitted is already in the MODEL space
the executor converts through `agent.geometry`. A target that is gone or ambiguous hands the
step to the fallback model with the loop's own task and history; replay resumes as soon as a
next recorded step verifies again on a screen like the recorded one, else the run stops with
the reason.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from agent.actions import (
    Action,
    LeftClick,
    MemorizeFact,
    MouseMove,
    Scroll,
    Terminate,
    TypeText,
    Wait,
    format_call,
    parse,
)
from agent.geometry import Monitor, Point, ScreenMapping, Size, Space
from agent.inference.base import Backend, BackendError, FinishReason, Generation, Request
from agent.replay import matching
from agent.replay.recording import RecordedStep, Recording
from agent.safety import StopFlag

LOOKAHEAD = 4            # most recorded steps considered when resuming after the model took over
RESUME_SIMILARITY = 0.6  # whole-screen likeness needed to resume at a step without a target
FINISH_SIMILARITY = 0.9  # ... and to give the recorded answer after the model took over
MAX_MODEL_STEPS = 5      # model steps in a row before replay gives up
COLOUR_TOLERANCE = 16.0  # grey levels a resumed match's surroundings may differ in mean colour
MAX_WAITS, WAIT_SECONDS = 2, 1.0  # a missing target may be a page still loading: wait first
# After a model step, one wait before the model is called again: the model's click often starts
# a page load, and the loop's settle can end on a still frame of the old page (seen under load).
# One only: a model that really left the recorded path pays one second, not one per step.


@dataclass(frozen=True)
class ReplayCheck:
    """How one replayed step was checked against the recording (stored with the step)."""

    recorded_step: int | None   # index of the recorded step played (None: the model's own step)
    verification: str           # verified | not_needed | screen_checked | screen_differs | gone |
    #                             waiting | ambiguous | no_screenshot | scroll_unchecked |
    #                             end_of_recording | parameters
    score: float | None = None  # ZNCC of the best match
    runner_up: float | None = None
    moved: tuple[int, int] | None = None  # model-pixel shift from the recorded position
    model_called: bool = False
    reason: str = ""
    seconds: float = 0.0        # time spent matching

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("score", "runner_up", "seconds"):
            if d[key] is not None:
                d[key] = round(d[key], 4)
        d["moved"] = list(self.moved) if self.moved else None
        return d


class LazyBackend(Backend):
    """A backend built on first use: the model loads only if replay needs it."""

    def __init__(self, build: Callable[[], Backend], name: str = "model") -> None:
        self._build, self._backend, self.name = build, None, name

    def _generate(self, request: Request) -> Generation:
        if self._backend is None:
            self._backend = self._build()
            self.name = getattr(self._backend, "name", self.name)
        return self._backend.generate(request.messages, request.images,
                                      max_new_tokens=request.max_new_tokens,
                                      on_token=request.on_token, cancel=request.cancel)


_CALL_TAG = re.compile(r"<\s*/?\s*tool_call\s*>", re.IGNORECASE)


def _call(thoughts: str, action: Action) -> str:
    """Model-format text for exactly `action`: recorded thoughts can never add another call.

    A run folder is a file anyone could have edited; thoughts holding a `<tool_call>` would
    otherwise be parsed as the action instead of the one replay checked.
    """
    text = format_call(_CALL_TAG.sub("", thoughts), action)
    parsed = parse(text)
    if getattr(parsed, "action", None) != action:
        text = format_call("Replaying a recorded step.", action)
    return text


def _sends_input(action: Action) -> bool:
    return not isinstance(action, (Terminate, Wait, MemorizeFact))


def _targeted(action: Action) -> bool:
    return isinstance(action, (LeftClick, MouseMove, Scroll, TypeText)) and action.target is not None


class ReplayBackend(Backend):
    """A `Backend` that plays a `Recording`, verifying each target; `fallback` is the model."""

    def __init__(self, recording: Recording, *, fallback: Backend | None = None,
                 max_model_steps: int = MAX_MODEL_STEPS) -> None:
        self.recording = recording
        self.fallback = fallback
        self.name = f"replay:{recording.run_id}" + (f"+{fallback.name}" if fallback else "")
        if fallback is not None:  # the model's steps must be prompted as that model
            self.family = getattr(fallback, "family", self.family)
            self.system_prompt = getattr(fallback, "system_prompt", None)
            self.max_pixels = getattr(fallback, "max_pixels", None)
            # No second look (agent.second_look): its extra call would be read as the next
            # recorded step, and the recorded actions already hold the points it chose.
        self.max_model_steps = max_model_steps
        self.cursor = 0            # next recorded step to play
        self.model_steps = 0       # steps the model was called for, in all
        self._model_run = 0        # ... in a row (replay has diverged while > 0)
        self._images: dict[int, Image.Image | None] = {}
        self.pending: RecordedStep | None = None  # the recorded step the model is standing in for
        self._searched: matching.Searched | None = None
        self._anchored = False     # the last played step checked the screen (see `_next`)
        self._waits = 0            # waits for the next step's target to appear
        self._waited_after_model = False  # the one wait after the model's first step is spent

    # -- the Backend protocol -------------------------------------------------------------

    def _generate(self, request: Request) -> Generation:
        messages, images, cancel = request.messages, request.images, request.cancel
        start = time.perf_counter()
        if not images:
            raise BackendError("replay needs the current screenshot")
        current = images[-1]
        self._searched = None  # prepared once per screen, on first use
        check, text = self._next(current)
        seconds = time.perf_counter() - start
        check = dataclasses.replace(check, seconds=seconds)
        if text is not None:
            request.emit(text)
            return Generation(text, timings={"verify": seconds}, replay=check)
        if self.fallback is None or self._model_run >= self.max_model_steps:
            reason = check.reason if self.fallback is None else (
                f"{check.reason}; the model took {self._model_run} steps without the screen "
                "matching the recording again")
            if isinstance(cancel, StopFlag):
                cancel.set(f"replay stopped: {reason}")
                return Generation("", timings={"verify": seconds},
                                  finish_reason=FinishReason.CANCELLED, replay=check)
            raise BackendError(f"replay stopped: {reason}")
        self._model_run += 1
        self.model_steps += 1
        self._waited_after_model = False
        gen = self.fallback.generate(messages, images, max_new_tokens=request.max_new_tokens,
                                     on_token=request.on_token, cancel=cancel)
        return dataclasses.replace(gen, timings={**gen.timings, "verify": seconds},
                                   replay=dataclasses.replace(check, model_called=True))

    # -- choosing the next action -----------------------------------------------------------

    def _next(self, current: Image.Image) -> tuple[ReplayCheck, str | None]:
        steps = self.recording.steps
        if self._model_run:
            check, text = self._resume(current)
            if text is None and self._model_run == 1 and not self._waited_after_model \
                    and check.verification != "end_of_recording":  # nothing left to wait for
                self._waited_after_model = True
                return (dataclasses.replace(check, verification="waiting"),
                        _call("Not back on the recorded path yet; waiting for the page.",
                              Wait(WAIT_SECONDS)))
            return check, text
        if self.cursor >= len(steps):
            self.pending = None
            return ReplayCheck(None, "end_of_recording",
                               reason=f"all {len(steps)} recorded actions were replayed; the "
                               "recording ends without finishing the task"), None
        step = steps[self.cursor]
        check, action = self._verify(step, current)
        if action is not None and check.verification == "not_needed" and not self._anchored \
                and _sends_input(action):
            # Keys or typing with nothing checked before them (the first step, say): at least
            # the screen must look like the recorded one, or they could land in another window.
            check, action = self._screen_check(step, current, action)
        if action is None and check.verification == "gone" and self._waits < MAX_WAITS:
            # Often the page is still loading (settling ends at the first still frame): wait a
            # little, as a person would, before calling the target gone.
            self._waits += 1
            return (dataclasses.replace(check, verification="waiting"),
                    _call(f"The target of recorded step {step.index + 1} is not on the screen "
                          "yet; waiting for the page.", Wait(WAIT_SECONDS)))
        if action is None:
            self.pending = step
            return check, None
        return check, self._play(step, action, check)

    def _screen_check(self, step: RecordedStep, current: Image.Image, action: Action
                      ) -> tuple[ReplayCheck, Action | None]:
        recorded = self._image(step)
        likeness = matching.similarity(recorded, current) if recorded is not None else -1.0
        if likeness >= RESUME_SIMILARITY:
            return ReplayCheck(step.index, "screen_checked", likeness), action
        return ReplayCheck(step.index, "screen_differs", likeness, reason=(
            f"recorded step {step.index + 1} ({_what(step)}) has no target to find and the "
            f"screen does not look like the recorded one (likeness {likeness:.2f})")), None

    def _resume(self, current: Image.Image) -> tuple[ReplayCheck, str | None]:
        """After model steps: the best of the next recorded steps that verifies, if any.

        Each model step can have done at most one recorded step, so after k of them replay looks
        at most k steps past the one the model stood in for: a recorded action is never skipped
        just because a later screen looks alike.
        """
        steps = self.recording.steps
        best: tuple[float, int, ReplayCheck, Action] | None = None
        first: ReplayCheck | None = None
        window = min(LOOKAHEAD, self._model_run + 1)
        for j in range(self.cursor, min(len(steps), self.cursor + window)):
            step = steps[j]
            check, action = self._verify(step, current)
            first = first or check
            recorded = self._image(step)
            if action is None or recorded is None:
                continue
            likeness = matching.similarity(recorded, current)
            if check.verification == "verified" and self._recoloured(step, recorded, current, check):
                continue  # the same words on another element (the next page's title, say)
            if check.verification != "verified":
                # Nothing found to aim at: only a screen like the recorded one will do, and the
                # recorded answer only on a screen very like the one it was read from.
                needed = FINISH_SIMILARITY if isinstance(action, Terminate) else RESUME_SIMILARITY
                if likeness < needed:
                    continue
                check = dataclasses.replace(check, verification="screen_checked", score=likeness)
            if best is None or likeness >= best[0] - 0.01:  # ties go to the later step
                best = (likeness, j, check, action)
        if best is None:
            self.pending = steps[self.cursor] if self.cursor < len(steps) else None
            reason = first.reason if first is not None else "the recording has no more actions"
            return ReplayCheck(self.pending.index if self.pending else None,
                               first.verification if first else "end_of_recording",
                               first.score if first else None,
                               first.runner_up if first else None,
                               reason=f"not back on the recorded path ({reason})"), None
        _likeness, j, check, action = best
        self.cursor = j
        return dataclasses.replace(check, reason=f"resumed at recorded step {steps[j].index + 1}"
                                   + (f"; {check.reason}" if check.reason else "")), \
            self._play(steps[j], action, check)

    def _recoloured(self, step: RecordedStep, recorded: Image.Image, current: Image.Image,
                    check: ReplayCheck) -> bool:
        """A resumed match whose surroundings changed colour: probably not the same element."""
        target = step.action.target
        if target is None or check.moved is None:
            return False
        found = (target[0] + check.moved[0], target[1] + check.moved[1])
        shift = matching.colour_shift(recorded, target, current, found, matching.NEIGHBOURHOODS[0])
        return shift > COLOUR_TOLERANCE

    def _play(self, step: RecordedStep, action: Action, check: ReplayCheck) -> str:
        self.cursor += 1
        self._model_run = 0
        self._waits = 0
        self.pending = None
        # Keys and typing that follow are aimed by this step: the screen was checked just now.
        self._anchored = check.verification in ("verified", "screen_checked") or (
            self._anchored and check.verification == "not_needed")
        if isinstance(action, Terminate):
            if check.verification == "parameters":  # no model to read the answer for new values
                changed = ", ".join(f"{o!r} → {n!r}" for o, n in self.recording.substitutions)
                return _call(f"Replayed the recorded actions with {changed}. The recorded "
                             "answer was about the old values, so it is not repeated.", action)
            return _call(step.thoughts, action)  # the thoughts are the run's answer
        return _call(f"Replaying recorded step {step.index + 1}: {step.thoughts}", action)

    def _verify(self, step: RecordedStep, current: Image.Image) -> tuple[ReplayCheck, Action | None]:
        """The recorded action aimed at where its target is now, or None with the reason."""
        action, n = step.action, step.index
        size = Size(*current.size)
        if isinstance(action, Terminate) and self.recording.substitutions:
            if self.fallback is not None:
                return ReplayCheck(n, "parameters", reason="the recorded answer is about the "
                                   "old values; the model reads the new one"), None
            return ReplayCheck(n, "parameters", reason="the recorded answer is about the old "
                               "values and is not repeated"), action
        if not _targeted(action):
            return ReplayCheck(n, "not_needed"), action
        recorded = self._image(step)
        if recorded is None or step.model_size is None:
            return self._unverified(step, ReplayCheck(
                n, "no_screenshot", reason=f"recorded step {n + 1} has no screenshot to check "
                "its target against"), size)
        target = action.target
        assert target is not None
        if self._searched is None:
            self._searched = matching.Searched(matching.grey(current))
        found = matching.locate(matching.grey(recorded), (float(target[0]), float(target[1])),
                                self._searched)
        if not found.verified or found.point is None:
            what = "matches in more than one place" if found.ambiguous else "is not on the screen"
            return self._unverified(step, ReplayCheck(
                n, "ambiguous" if found.ambiguous else "gone", found.score, found.runner_up,
                reason=f"the target of recorded step {n + 1} ({_what(step)}) {what} "
                f"(best match {found.score:.2f}, next {found.runner_up:.2f})"), size)
        x = min(max(round(found.point[0]), 0), size.width - 1)
        y = min(max(round(found.point[1]), 0), size.height - 1)
        moved = (x - target[0], y - target[1])
        return (ReplayCheck(n, "verified", found.score, found.runner_up, moved),
                dataclasses.replace(action, coordinate=(x, y)))

    def _unverified(self, step: RecordedStep, check: ReplayCheck, size: Size
                    ) -> tuple[ReplayCheck, Action | None]:
        action = step.action
        if isinstance(action, Scroll) and action.target is not None and step.model_size:
            # Scrolling sends no click or text: at the recorded place, scaled to this screen.
            mapping = ScreenMapping(Monitor(0, 0, 0, step.model_size.width, step.model_size.height),
                                    step.model_size, size)
            x, y = mapping.convert(Point(*action.target, Space.SCREENSHOT), Space.MODEL).rounded()
            return (dataclasses.replace(check, verification="scroll_unchecked"),
                    dataclasses.replace(action, coordinate=(x, y)))
        return check, None

    def _image(self, step: RecordedStep) -> Image.Image | None:
        """The recorded screen as the model saw it (resized like the loop does), cached."""
        if step.index not in self._images:
            image = step.image()
            if image is not None and step.model_size is not None:
                image = image.resize((step.model_size.width, step.model_size.height),
                                     Image.Resampling.BICUBIC)
            self._images[step.index] = image
        return self._images[step.index]


def _what(step: RecordedStep) -> str:
    from agent.actions import describe

    return describe(step.action)
