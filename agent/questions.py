"""Fara1.5's two actions that send no input: asking the person, and reading the page as text.

The loop takes both as collaborators (`AskPerson`, `PageReader`), so it knows nothing of how the
person answers (an inline panel in the app, the terminal for `deskhand run`, an MCP client, a
scripted answer in the harness) or where page text comes from (DevTools in the harness, OCR of
the screenshot on the desktop: `OcrPageReader`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from PIL import Image

from agent.action_types import Action, AskUser, ReadPage
from agent.termtext import visible

# Fara1.5's observation is "at most ~1000 characters" (issue 13; the exact limit is UNVERIFIED).
OBSERVATION_MAX = 1000
OCR_DEADLINE_S = 10.0
_PSM_AUTO = 3  # tesseract: fully automatic page segmentation (a whole screen, many blocks)

CONVERSE = (AskUser, ReadPage)  # the actions `respond` serves (the loop hands them no executor)
# The question's text; returns the answer, or None when nobody answered in time.
AskPerson = Callable[[str], "str | None"]


class PageReader(Protocol):
    """Text of the page on screen for a `read_page_answer_question` observation."""

    source: str  # "devtools", "ocr", ... (recorded in the step's note)

    def read(self, question: str, screenshot: Image.Image) -> str: ...


def observation(text: str, limit: int = OBSERVATION_MAX) -> str:
    """Page text as the model may see it: blanks folded, controls made visible, cut to `limit`.

    Page text is someone else's: folding runs of blanks keeps the most words within the limit,
    and `termtext.visible` keeps it from steering a terminal when the step is printed.
    """
    folded = visible(" ".join(str(text).split()), multiline=False)
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def respond(action: Action, ask_person: AskPerson, reader: PageReader,
            image: Image.Image) -> tuple[str | None, str]:
    """The next user message for a `CONVERSE` action and the step's note.

    None when nobody answered; the note then says so (the run's end reason).
    """
    if isinstance(action, AskUser):
        answer = ask_person(action.question)
        if answer is None:
            return None, f"nobody answered the model's question {action.question[:200]!r}"
        return answer, f"you answered: {answer}"
    if not isinstance(action, ReadPage):
        raise TypeError(f"not a question: {action.name}")
    try:
        text = observation(reader.read(action.question, image))
    except Exception as exc:  # a lost DevTools page, an OCR failure: the model is told, no crash
        text = observation(f"(the page text could not be read: {type(exc).__name__}: {exc})")
    return text, f"read the page ({getattr(reader, 'source', 'page')}): {text}"


def turn_fields(action: Action, text: str) -> dict[str, str]:
    """Where `respond`'s text goes in the step's `Turn`: a page observation (`observation`,
    dropped with its screenshot) or the person's answer (`user_reply`, kept)."""
    return {"observation": text} if isinstance(action, ReadPage) else {"user_reply": text}


def no_answer(_question: str) -> None:
    """The asker where nobody can answer (no window, no terminal): the run ends clearly."""
    return None


class ScriptedAnswers:
    """An `AskPerson` from answers given up front (a task file, an MCP client): in order, then none."""

    def __init__(self, replies: Iterable[str]) -> None:
        self._replies = list(replies)
        self.asked: list[str] = []

    def __call__(self, question: str) -> str | None:
        self.asked.append(question)
        return self._replies.pop(0) if self._replies else None


class OcrPageReader:
    """The desktop's page text: OCR (tesseract) of the whole screenshot, in reading order.

    The accessibility readers in `agent.screen_label_a11y` answer for one point only, so a
    whole page is read by OCR, which works for any application.
    """

    source = "ocr"

    def __init__(self, engine_factory: Callable[[], object] | None = None) -> None:
        self._engine_factory = engine_factory

    def read(self, question: str, screenshot: Image.Image) -> str:
        from agent.tesseract import OcrUnavailable

        try:
            engine = self._engine()
        except OcrUnavailable as exc:
            return f"(the page text could not be read: {exc})"
        words = engine.words(screenshot.convert("L"), _PSM_AUTO, time.monotonic() + OCR_DEADLINE_S)
        if words is None:
            return "(reading the page text took too long)"
        return " ".join(w.text for w in words if w.text.strip())

    def _engine(self):
        if self._engine_factory is not None:
            return self._engine_factory()
        from agent.screen_label_ocr import shared_engine
        from agent.tesseract import DEFAULT_LANGUAGES

        return shared_engine(DEFAULT_LANGUAGES)
