"""A recorded run read back for replay: its actions, where they landed, and its parameters.

Everything comes through `agent.step_record` (via `TrajectoryStore.load`), so a damaged or hostile
run folder costs the damaged steps, never a crash, and screenshots are read only from inside the
run folder. Which recorded steps are replayed: those that performed an action without an error
(a refused model reply, a failed input or a "give up" is not something to repeat).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from agent.actions import Action, Terminate, TypeText, WebSearch
from agent.click_marker import MAX_PIXELS
from agent.geometry import MAX_PIXELS as MODEL_MAX_PIXELS
from agent.geometry import Size
from agent.trajectory import RunRecord


class ReplayRefused(ValueError):
    """The run cannot be replayed as asked; the message says why and what would allow it."""


@dataclass(frozen=True)
class RecordedStep:
    """One recorded action and what the screen looked like just before it."""

    index: int                                # the step's number in the recording (0-based)
    action: Action
    thoughts: str
    screenshot: Path | None                   # the screen the action was chosen on
    point: tuple[float, float] | None         # its target in that screenshot's pixels
    model_size: Size | None                   # the model image size of that step
    note: str = ""                            # what replay changed in it (parameters)

    def image(self) -> Image.Image | None:
        """The recorded screenshot, or None when it is missing or not an image we accept."""
        if self.screenshot is None:
            return None
        try:
            with Image.open(self.screenshot) as raw:
                if raw.width * raw.height > MAX_PIXELS:
                    return None
                return raw.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None


@dataclass(frozen=True)
class Recording:
    """A run's task and its replayable steps."""

    run_id: str
    task: str
    status: str
    steps: tuple[RecordedStep, ...]
    problems: tuple[str, ...] = ()
    substitutions: tuple[tuple[str, str], ...] = ()  # --set OLD=NEW applied to task and typing

    @property
    def finished(self) -> bool:
        """The run ended with the model saying it succeeded."""
        last = self.steps[-1].action if self.steps else None
        return self.status == "success" and isinstance(last, Terminate) and last.status == "success"


def from_record(record: RunRecord) -> Recording:
    """A `Recording` from `TrajectoryStore.load(...)`'s record."""
    steps = []
    for s in record.steps:
        action = s.action
        if action is None or s.error or s.retry:
            continue
        if isinstance(action, Terminate) and action.status != "success":
            continue  # giving up is not an action to repeat: the recording just ends there
        size = s.model_size
        if size and size.pixels > MODEL_MAX_PIXELS:
            size = None  # no model image is that big: a forged record (it would be resized to it)
        steps.append(RecordedStep(
            index=s.index, action=action, thoughts=s.thoughts or "",
            screenshot=Path(s.screenshot) if s.screenshot else None,
            point=s.screenshot_point, model_size=size))
    return Recording(record.info.id, record.info.task, record.info.status, tuple(steps),
                     tuple(record.problems))


def check_replayable(recording: Recording, *, allow_unfinished: bool = False) -> None:
    """Raise `ReplayRefused` unless the recording can be replayed."""
    if not recording.steps:
        raise ReplayRefused(f"run {recording.run_id} has no recorded actions to replay")
    if not recording.finished and not allow_unfinished:
        raise ReplayRefused(
            f"run {recording.run_id} did not end successfully (status: {recording.status}); "
            "replaying it repeats actions that never reached the goal. Use --allow-unfinished "
            "to replay it anyway")
    if all(s.screenshot is None for s in recording.steps if s.point is not None) and \
            any(s.point is not None for s in recording.steps):
        raise ReplayRefused(f"run {recording.run_id} was recorded without screenshots: replay "
                            "needs them to check each target on the screen first")


def typed_text(action: Action) -> str | None:
    """The text an action types into the page (None for other actions)."""
    if isinstance(action, TypeText):
        return action.text
    if isinstance(action, WebSearch):
        return action.query
    return None


def task_parameters(recording: Recording) -> list[str]:
    """Recorded typed texts that came from the task: the values `--set OLD=NEW` can change."""
    found: list[str] = []
    for step in recording.steps:
        text = (typed_text(step.action) or "").strip()
        if text and text in recording.task and text not in found:
            found.append(text)
    return found


def parse_sets(values: list[str]) -> list[tuple[str, str]]:
    """`OLD=NEW` pairs from the command line (the first `=` splits)."""
    pairs = []
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old:
            raise ReplayRefused(f"--set {value!r}: write it as OLD=NEW, e.g. --set Oslo=Bergen")
        pairs.append((old, new))
    return pairs


def with_parameters(recording: Recording, pairs: list[tuple[str, str]]) -> Recording:
    """The recording with each OLD replaced by NEW in the task and in the typing that came from it.

    Only typed text is changed, and only where OLD also occurs in the task (that is what marks
    the typing as coming from the task); clicks keep their checks, so a result that now reads
    NEW instead of OLD is not found and goes to the model.
    """
    if not pairs:
        return recording
    task, steps = recording.task, list(recording.steps)
    for old, new in pairs:
        if old not in recording.task:
            raise ReplayRefused(f"{old!r} is not in the recorded task ({recording.task!r}), so "
                                "it is not a parameter of this run")
        hits = [i for i, s in enumerate(steps) if old in (typed_text(s.action) or "")]
        if not hits:
            offered = ", ".join(repr(p) for p in task_parameters(recording)) or "none"
            raise ReplayRefused(f"no recorded typing contains {old!r}; values typed from the "
                                f"task: {offered}")
        task = task.replace(old, new)
        for i in hits:
            s = steps[i]
            if isinstance(s.action, TypeText):
                action: Action = dataclasses.replace(s.action, text=s.action.text.replace(old, new))
            else:
                action = dataclasses.replace(s.action, query=s.action.query.replace(old, new))
            steps[i] = dataclasses.replace(s, action=action,
                                           note=(s.note + "; " if s.note else "")
                                           + f"{old!r} → {new!r} (from the task)")
    return dataclasses.replace(recording, task=task, steps=tuple(steps),
                               substitutions=tuple(pairs))
