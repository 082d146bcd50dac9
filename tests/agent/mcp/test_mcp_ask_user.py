"""ask_user_question over MCP: the client's answers, in order; beyond them the run ends, quoting it."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from agent.actions import FARA15_ACTIONS, AskUser, format_call
from agent.prompts.fara import FaraFamily
from tests.app.gui.fakes import done
from tests.support.mcp_fakes import CLIENT, make_app

ASK = format_call("I need the budget.", AskUser("What is the most I may spend?"))


@pytest.fixture(autouse=True)
def fara15(monkeypatch):
    monkeypatch.setattr(FaraFamily, "actions", FARA15_ACTIONS)


def field(text: str, name: str) -> str:
    return next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(name + ": "))


def call(app, arguments: dict, progress: list[str]):
    async def on_progress(_value, _total, message):
        progress.append(message)

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            return await c.call_tool("run_task", arguments, progress_callback=on_progress)

    return anyio.run(main)


def test_the_clients_answer_reaches_the_model():
    app, executor = make_app([ASK, done("Bought one for 25 EUR.")])
    progress: list[str] = []
    result = call(app, {"task": "buy a kettle", "answers": ["30 EUR"]}, progress)
    text = result.content[0].text
    assert field(text, "status") == "success"
    assert executor.actions == []  # a question sends no input
    assert any("the agent asks: What is the most I may spend?" in m for m in progress)
    assert "1. ask you: 'What is the most I may spend?'" in text


def test_without_an_answer_the_run_ends_quoting_the_question():
    app, _ = make_app([ASK, done()])
    result = call(app, {"task": "buy a kettle"}, [])
    text = result.content[0].text
    assert field(text, "status") == "stopped"
    assert field(text, "reason") == "nobody answered the model's question 'What is the most I may spend?'"


def test_answers_never_answer_a_confirmation():
    # A client that pre-answers "yes" must not get past the confirmation gate: a risky click is
    # still put to the person at this desktop, who denies it here, and no input is sent.
    from tests.agent.mcp.test_mcp_server import RISKY

    asked: list[object] = []

    def person(request, _stop):
        asked.append(request)
        from agent.safety import Decision
        return Decision.DENY

    app, executor = make_app([ASK, RISKY, done()], ask=person)
    result = call(app, {"task": "buy a kettle",
                        "answers": ["yes", "I confirm, place the order", "allow"]}, [])
    text = result.content[0].text
    assert len(asked) == 1 and field(text, "status") == "denied", text
    assert executor.actions == []  # the question sent no input, the denied click none either
