"""ask_user_question and read_page_answer_question through the loop: the text is the next user message."""

from __future__ import annotations

import threading

from PIL import Image

from agent.actions import FARA15_ACTIONS, AskUser, LeftClick, ReadPage, Terminate, format_call
from agent.geometry import Size
from agent.inference.base import ScriptedBackend
from agent.loop import RunStatus, run_task
from agent.prompts.fara import FaraFamily, Turn
from agent.questions import OBSERVATION_MAX, OcrPageReader, observation
from agent.safety import Gate, StopFlag
from agent.step_record import StepRecord
from tests.support.fakes import FakeScreen, RecordingExecutor


class Fara15Family(FaraFamily):
    actions = FARA15_ACTIONS


class Page:
    source = "test"

    def __init__(self, text: str) -> None:
        self.text, self.questions = text, []

    def read(self, question, screenshot):
        self.questions.append((question, screenshot.size))
        return self.text


def run(replies, **kw):
    backend = ScriptedBackend(replies)
    steps, executor = [], RecordingExecutor()
    result = run_task("Book a table", backend=backend, screen=FakeScreen(), executor=executor,
                      gate=Gate("never"), family=Fara15Family.load(), on_step=steps.append, **kw)
    return result, steps, backend, executor


def texts(message) -> list[str]:
    return [p["text"] for p in message["content"] if p["type"] == "text"]


def test_the_answer_is_the_next_user_message_before_the_screenshot() -> None:
    asked = []

    def ask(question: str) -> str:
        asked.append(question)
        return "Seven people, at 8 pm"

    result, steps, backend, executor = run(
        [format_call("I need the party size.", AskUser("How many people, and when?")),
         format_call("Done.", Terminate("success"))], ask_person=ask)
    assert result.status is RunStatus.SUCCESS
    assert asked == ["How many people, and when?"]
    assert executor.performed == []  # a question sends no input
    assert steps[0].note == "you answered: Seven people, at 8 pm" and steps[0].error is None
    messages, images = backend.calls[1]
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "user", "user"]
    assert texts(messages[3]) == ["Seven people, at 8 pm"]  # the answer, no image of its own
    assert messages[4]["content"][0]["type"] == "image" and len(images) == 2


def test_no_answer_ends_the_run_clearly() -> None:
    result, steps, backend, _ = run([format_call("Ask.", AskUser("Which card should I use?"))])
    assert result.status is RunStatus.STOPPED
    assert result.reason == "nobody answered the model's question 'Which card should I use?'"
    assert steps[-1].error == result.reason and len(backend.calls) == 1


def test_stop_while_waiting_ends_the_run() -> None:
    stop = StopFlag()
    waiting = threading.Event()

    def ask(question: str) -> str | None:
        waiting.set()
        stop.set("stopped by the user")
        return None

    result, _, _, _ = run([format_call("Ask.", AskUser("Which?"))], ask_person=ask, stop=stop)
    assert waiting.is_set()
    assert result.status is RunStatus.STOPPED and result.reason == "stopped by the user"


def test_the_page_text_is_an_observation_before_the_next_screenshot() -> None:
    page = Page("Total:\x1b[2J   42 EUR\n\n" + "word " * 600)
    result, steps, backend, _ = run(
        [format_call("Read it.", ReadPage("What is the total?")), format_call("42.", Terminate("success"))],
        read_page=page)
    assert result.status is RunStatus.SUCCESS
    assert page.questions[0][0] == "What is the total?"
    fed = texts(backend.calls[1][0][3])[0]
    assert fed.startswith("Total:\\x1b[2J 42 EUR word word") and len(fed) == OBSERVATION_MAX
    assert steps[0].note.startswith("read the page (test): Total:")


def test_a_failing_page_reader_is_told_to_the_model_not_a_crash() -> None:
    class Broken:
        source = "devtools"

        def read(self, question, screenshot):
            raise ConnectionError("page closed")

    result, _, backend, _ = run([format_call("Read.", ReadPage("Total?")), format_call("x", Terminate())],
                                read_page=Broken())
    assert result.status is RunStatus.SUCCESS
    assert "could not be read: ConnectionError: page closed" in texts(backend.calls[1][0][3])[0]


def test_fara7b_family_refuses_the_question_as_a_model_mistake() -> None:
    backend = ScriptedBackend([format_call("Ask.", AskUser("Which?")), format_call("ok", LeftClick((1, 1))),
                               format_call("done", Terminate())])
    result = run_task("t", backend=backend, screen=FakeScreen(), executor=RecordingExecutor(),
                      gate=Gate("never"))
    assert result.status is RunStatus.SUCCESS
    assert "unknown action 'ask_user_question'" in texts(backend.calls[1][0][-1])[0]


def test_user_replies_keep_their_text_when_images_are_pruned() -> None:
    family = Fara15Family.load()
    image = Image.new("RGB", (56, 56))
    history = [Turn(image, "r0", user_reply="the answer"), *[Turn(image, f"r{i}") for i in range(1, 5)]]
    messages, images = family.build("t", history, image, Size(56, 56))
    assert len(images) == family.max_images
    assert ["the answer"] in [texts(m) for m in messages if m["role"] == "user"]


def test_observation_folds_and_cuts() -> None:
    assert observation("a\u202e\tb \n c") == "a\\u202e b c"
    assert len(observation("x" * 5000)) == OBSERVATION_MAX


def test_ocr_page_reader_reads_words_in_order_and_survives_no_ocr() -> None:
    class Word:
        def __init__(self, text):
            self.text = text

    class Engine:
        def words(self, gray, psm, deadline):
            assert gray.mode == "L"
            return [Word("Total"), Word(" "), Word("42")]

    assert OcrPageReader(lambda: Engine()).read("q", Image.new("RGB", (8, 8))) == "Total 42"
    from agent.tesseract import OcrUnavailable

    def missing():
        raise OcrUnavailable("no libtesseract")

    assert "no libtesseract" in OcrPageReader(missing).read("q", Image.new("RGB", (8, 8)))


def test_the_question_and_answer_are_on_the_step_record() -> None:
    _, steps, _, _ = run([format_call("Ask.", AskUser("Which day?")), format_call("ok", Terminate())],
                         ask_person=lambda q: "Friday")
    record = StepRecord.from_step(steps[0], now=0.0)
    assert record.action == AskUser("Which day?") and record.note == "you answered: Friday"
