"""The harness's side of Fara1.5's no-input actions: page text over DevTools, scripted answers.

`read_page_answer_question` is answered from the page's rendered text (`innerText` of the
document, what a person can read, not hidden markup) through the worker's DevTools connection;
`ask_user_question` from the task's `user_replies`, in order (`agent.questions.ScriptedAnswers`).
"""

from __future__ import annotations

from typing import Any

from agent.questions import OBSERVATION_MAX

# innerText of the whole document; bounded in the page so a huge page is not shipped over CDP.
_PAGE_TEXT_JS = ("(() => { const b = document.body || document.documentElement;"
                 " return b ? String(b.innerText || '').slice(0, %d) : ''; })()")


class DevToolsPageReader:
    """Reads the page's visible text over a `Cdp` connection (`agent.eval.cdp`)."""

    source = "devtools"

    def __init__(self, cdp: Any) -> None:
        self._cdp = cdp

    def read(self, question: str, screenshot: Any) -> str:
        # A few times the observation's size: folding blanks shrinks it before the cut.
        value = self._cdp.evaluate(_PAGE_TEXT_JS % (OBSERVATION_MAX * 4))
        return value if isinstance(value, str) else ""
