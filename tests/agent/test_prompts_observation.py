"""A person's answer and a page observation are different turns in Fara1.5's prompt.

The public agent (fara15_agent.py): an answer replaces the fixed "Here is the next screenshot…"
line and keeps its text when its screenshot leaves the window; an observation goes before the
fixed line and leaves with its screenshot.
"""

from __future__ import annotations

from PIL import Image

from agent.actions import AskUser, ReadPage, Terminate, format_call
from agent.geometry import Size
from agent.inference.base import ScriptedBackend
from agent.loop import RunStatus, run_task
from agent.prompts import Fara15Family, FaraFamily, Turn
from agent.questions import turn_fields
from agent.safety import Gate
from tests.support.fakes import FakeScreen, RecordingExecutor

SIZE = Size(1440, 896)
NEXT = "Here is the next screenshot. Think about what to do next."


def img(n: int) -> Image.Image:
    return Image.new("RGB", (64, 64), (n, n, n))


def users(messages) -> list[str]:
    return ["".join(p.get("text", "") for p in m["content"]) for m in messages if m["role"] == "user"]


def _history(n: int, **at_zero: str) -> list[Turn]:
    return [Turn(img(i + 1), f"reply {i}", f"https://site/{i}", **(at_zero if i == 0 else {}))
            for i in range(n)]


def test_an_observation_goes_before_the_fixed_line() -> None:
    messages, _ = Fara15Family.load().build("t", _history(1, observation="Total: 42 EUR"), img(9),
                                            SIZE, "https://now")
    assert users(messages)[-1] == f"Current URL: https://now\nTotal: 42 EUR\n{NEXT}"


def test_an_answer_replaces_the_fixed_line() -> None:
    messages, _ = Fara15Family.load().build("t", _history(1, user_reply="Seven people"), img(9),
                                            SIZE, "https://now")
    assert users(messages)[-1] == "Current URL: https://now\nSeven people"


def test_a_pruned_observation_is_dropped_and_a_pruned_answer_kept() -> None:
    family = Fara15Family.load()
    observed, _ = family.build("t", _history(5, observation="Total: 42 EUR"), img(9), SIZE)
    assert not any("42 EUR" in text for text in users(observed))
    assert len(users(observed)) == 1 + family.max_images  # the task, then the kept screenshots
    answered, _ = family.build("t", _history(5, user_reply="Seven people"), img(9), SIZE)
    assert users(answered)[:2] == ["t", "Seven people"]


def test_fara7b_sends_either_as_its_own_user_message() -> None:
    family = FaraFamily.load()
    for fields in ({"user_reply": "Seven"}, {"observation": "Seven"}):
        messages, _ = family.build("t", _history(1, **fields), img(9), SIZE)
        assert "Seven" in users(messages)


def test_the_loop_files_answers_and_observations_apart() -> None:
    assert turn_fields(AskUser("How many?"), "7") == {"user_reply": "7"}
    assert turn_fields(ReadPage("Total?"), "42") == {"observation": "42"}

    class Page:
        source = "test"

        def read(self, question, screenshot):
            return "Total: 42 EUR"

    backend = ScriptedBackend([format_call("Ask.", AskUser("How many?")),
                               format_call("Read.", ReadPage("Total?")),
                               format_call("Done.", Terminate("success"))])
    result = run_task("Book", backend=backend, screen=FakeScreen(), executor=RecordingExecutor(),
                      gate=Gate("never"), family=Fara15Family.load(), ask_person=lambda q: "Seven",
                      read_page=Page())
    assert result.status is RunStatus.SUCCESS
    last = users(backend.calls[2][0])
    assert last[1] == "Seven"                       # the answer replaced the fixed line
    assert last[2] == f"Total: 42 EUR\n{NEXT}"      # the observation came before it
