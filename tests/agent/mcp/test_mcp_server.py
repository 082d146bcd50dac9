"""The MCP server through the SDK's in-memory client, over the real loop with scripted fakes."""

from __future__ import annotations

import json
import socket
import time

import anyio
import pytest
from mcp import Client
from mcp_types import ImageContent, TextContent

from agent.actions import LeftClick, format_call
from agent.jsonl import read_lines
from agent.mcp.desk import WAITING
from agent.paths import runs_dir
from agent.safety import Decision
from tests.app.gui.fakes import click, done, typing
from tests.support.fakes import RecordingExecutor
from tests.support.mcp_fakes import CLIENT, Person, make_app

RISKY = format_call("I will click Place order to pay for the kettle.", LeftClick((300, 140)))


def run(main):
    return anyio.run(main)


def run_json(run_id: str) -> dict:
    return json.loads((runs_dir() / run_id / "run.json").read_text(encoding="utf-8"))


def field(text: str, name: str) -> str:
    return next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(name + ": "))


def test_tools_are_listed_with_schemas():
    app, _ = make_app([done()])

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            return {t.name: t for t in (await c.list_tools()).tools}

    tools = run(main)
    assert set(tools) == {"run_task", "get_run", "list_runs", "stop_run", "status"}
    schema = tools["run_task"].input_schema
    assert schema["required"] == ["task"]
    assert set(schema["properties"]) == {"task", "monitor", "max_steps", "confirm", "answers"}
    # A client may make the gate stricter, never turn it off.
    assert "never" not in json.dumps(schema["properties"]["confirm"])
    assert "risky" in json.dumps(schema["properties"]["confirm"])
    assert "ctx" not in json.dumps(schema)
    assert "busy" in tools["run_task"].description
    assert tools["list_runs"].input_schema["properties"]["limit"]["maximum"] == 200
    for tool in tools.values():
        assert len(tool.description) > 40


def test_run_task_returns_the_answer_and_progress_arrives_in_order():
    app, executor = make_app([click(300, 140), typing("kettle"), done("The cheapest kettle is 19 EUR.")])
    progress: list[tuple[float, str]] = []

    async def on_progress(value, total, message):
        progress.append((value, message))

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            return await c.call_tool("run_task", {"task": "find the cheapest kettle"},
                                     progress_callback=on_progress)

    result = run(main)
    assert not result.is_error
    assert all(isinstance(block, TextContent) for block in result.content)
    text = result.content[0].text
    assert field(text, "status") == "success"
    assert field(text, "answer") == "The cheapest kettle is 19 EUR."
    assert "2. type 'kettle'" in text
    assert [type(a).__name__ for a in executor.actions] == ["LeftClick", "TypeText"]
    values = [v for v, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values)
    phases = [m.split(" · ")[1].split(":")[0] for _, m in progress]
    assert phases == ["loading", "thinking", "acted", "thinking", "acted", "thinking", "acted"]
    assert [m.split(" · ")[0] for _, m in progress][1:] == ["step 1", "step 1", "step 2", "step 2",
                                                            "step 3", "step 3"]
    assert "click at (300, 140)" in progress[2][1]
    tokens = len(text) / 4
    print(f"\nrun_task result: {len(text)} characters, ~{tokens:.0f} tokens (3 steps)")


def test_risky_action_waits_for_the_person_and_a_denial_is_reported():
    person = Person()
    app, executor = make_app([RISKY, done()], ask=person)
    progress: list[str] = []
    seen: dict = {}

    async def on_progress(_value, _total, message):
        progress.append(message)

    async def main():
        async with Client(app.server, client_info=CLIENT) as c, anyio.create_task_group() as tg:
            async def first():
                seen["result"] = await c.call_tool("run_task", {"task": "buy the kettle"},
                                                   progress_callback=on_progress)
            tg.start_soon(first)
            await anyio.to_thread.run_sync(person.asked.wait, 20)
            await anyio.sleep(0.1)  # the waiting notice is polled every 20 ms
            seen["status"] = (await c.call_tool("status", {})).structured_content
            seen["busy"] = await c.call_tool("run_task", {"task": "something else"})
            seen["waiting_seen"] = any(WAITING in m for m in progress)
            person.answer(Decision.DENY)

    run(main)
    assert seen["waiting_seen"], progress
    assert seen["status"]["state"] == "waiting"
    assert seen["status"]["waiting_for"] == "the person's confirmation"
    busy = seen["busy"]
    assert busy.is_error and busy.content[0].text.startswith("busy:")
    assert "nothing was queued" in busy.content[0].text
    text = seen["result"].content[0].text
    assert field(text, "status") == "denied"
    assert "you declined" in field(text, "reason")
    assert executor.actions == []  # nothing was clicked
    assert "place order" in " ".join(person.requests[0].reasons).lower() or person.requests[0].reasons
    assert any("the person denied the action" in m for m in progress)


def test_an_allowed_confirmation_lets_the_run_go_on():
    person = Person()
    person.answer(Decision.ALLOW_ONCE)
    app, executor = make_app([RISKY, done("Ordered.")], ask=person)

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            return await c.call_tool("run_task", {"task": "buy the kettle"})

    text = run(main).content[0].text
    assert field(text, "status") == "success" and person.requests
    assert [type(a).__name__ for a in executor.actions] == ["LeftClick"]


def test_a_client_cannot_turn_confirmations_off():
    app, _ = make_app([RISKY, done()])

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            return await c.call_tool("run_task", {"task": "buy", "confirm": "never"})

    result = run(main)
    assert result.is_error  # rejected by the schema; the default person (nobody) would deny anyway


def test_cancelling_the_request_stops_the_run_like_the_global_stop():
    executor = RecordingExecutor(char_delay=0.004)
    app, _ = make_app([typing("lorem-ipsum," * 300), done()], executor=executor)
    marks: dict = {}

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            with anyio.CancelScope() as scope:
                async def cancel_when_typing():
                    while len(executor.events) < 50:
                        await anyio.sleep(0.005)
                    marks["cancel"] = time.monotonic()
                    scope.cancel()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_when_typing)
                    await c.call_tool("run_task", {"task": "type a long text"})
            await anyio.sleep(0.5)
            return await c.call_tool("get_run", {"run_id": "last"})

    record = run(main).content[0].text
    latency = executor.events[-1] - marks["cancel"]
    print(f"\nMCP cancel -> last input event: {latency * 1000:.1f} ms "
          f"({len(executor.events)} of {len('lorem-ipsum,' * 300)} characters typed)")
    assert latency <= 0.3
    assert len(executor.events) < len("lorem-ipsum," * 300)
    assert "status: stopped" in record
    assert "stopped by the MCP client" in record


def test_stop_run_stops_the_current_run():
    executor = RecordingExecutor(char_delay=0.004)
    app, _ = make_app([typing("x" * 3000), done()], executor=executor)

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            out = {}
            async with anyio.create_task_group() as tg:
                async def first():
                    out["run"] = await c.call_tool("run_task", {"task": "type"})
                tg.start_soon(first)
                while len(executor.events) < 20:
                    await anyio.sleep(0.005)
                out["stop"] = await c.call_tool("stop_run", {})
            out["again"] = await c.call_tool("stop_run", {})
            return out

    out = run(main)
    assert out["stop"].content[0].text.startswith("stopping")
    assert field(out["run"].content[0].text, "status") == "stopped"
    assert out["again"].content[0].text == "no run is in progress"


def test_no_pixels_leave_unless_the_person_turned_sharing_on():
    async def get(app):
        async with Client(app.server, client_info=CLIENT) as c:
            await c.call_tool("run_task", {"task": "look"})
            return await c.call_tool("get_run", {"run_id": "last", "include_screenshots": True})

    private, _ = make_app([click(300, 140), done()])
    result = run(lambda: get(private))
    assert not any(isinstance(b, ImageContent) for b in result.content)
    assert "not included" in result.content[-1].text
    assert "data:image" not in json.dumps(result.model_dump(mode="json"))

    shared, _ = make_app([click(300, 140), done()], share_screenshots=True)
    result = run(lambda: get(shared))
    images = [b for b in result.content if isinstance(b, ImageContent)]
    assert len(images) == 2 and images[0].mime_type == "image/png"
    assert result.content[0].text.startswith("SCREENSHOTS ARE SHARED")


def test_every_call_is_recorded_with_the_client_and_time():
    person = Person()
    app, _ = make_app([RISKY, done()], ask=person)

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            out = {}
            async with anyio.create_task_group() as tg:
                async def first():
                    out["run"] = await c.call_tool("run_task", {"task": "buy"})
                tg.start_soon(first)
                await anyio.to_thread.run_sync(person.asked.wait, 20)
                await c.call_tool("status", {})
                person.answer(Decision.DENY)
            await c.call_tool("list_runs", {"limit": 3})
            return out

    before = time.time()
    out = run(main)
    run_id = field(out["run"].content[0].text, "run id")
    mcp = run_json(run_id)["settings"]["mcp"]
    assert mcp["client"] == "test-host 9.1" and mcp["transport"] == "memory"
    assert before <= mcp["at"] <= time.time()
    assert [c["tool"] for c in mcp["calls"]] == ["run_task", "status"]
    log = [line.value for line in read_lines(runs_dir().parent / "mcp-calls.jsonl")]
    assert [c["tool"] for c in log] == ["run_task", "status", "list_runs"]
    assert all(c["client"] == "test-host 9.1" for c in log)


def test_offline_guard_is_on_during_mcp_runs():
    tried: list[str] = []

    def phone_home(_messages, _images):
        try:
            socket.create_connection(("203.0.113.7", 80), timeout=1).close()
            tried.append("connected")
        except OSError as exc:
            tried.append(type(exc).__name__)
        return done("finished")

    app, _ = make_app([phone_home])

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            return await c.call_tool("run_task", {"task": "t"})

    text = run(main).content[0].text
    assert tried == ["OfflineViolation"]
    attempts = run_json(field(text, "run id"))["offline"]["attempts"]
    assert any("203.0.113.7" in a["destination"] for a in attempts)


def test_runs_are_readable_as_text_resources():
    app, _ = make_app([click(300, 140), done("fine")])

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            text = (await c.call_tool("run_task", {"task": "resource task"})).content[0].text
            run_id = field(text, "run id")
            templates = (await c.list_resource_templates()).resource_templates
            listing = (await c.read_resource("deskhand://runs")).contents[0]
            one = (await c.read_resource(f"deskhand://runs/{run_id}")).contents[0]
            return run_id, templates, listing, one

    run_id, templates, listing, one = run(main)
    assert [t.uri_template for t in templates] == ["deskhand://runs/{run_id}"]
    assert run_id in listing.text and "resource task" in listing.text
    assert one.mime_type == "text/plain" and "[1] click at (300, 140)" in one.text
    assert "thoughts:" in one.text and "timings:" in one.text


@pytest.mark.parametrize("bad", ["", "../../etc", "no-such-run"])
def test_get_run_of_an_unknown_run_is_a_clear_error(bad):
    app, _ = make_app([done()])

    async def main():
        async with Client(app.server, client_info=CLIENT) as c:
            return await c.call_tool("get_run", {"run_id": bad})

    result = run(main)
    assert result.is_error


def test_a_request_built_with_policy_never_still_asks():
    from agent.mcp.desk import TaskRequest
    from agent.safety import StopFlag

    person = Person()
    person.answer(Decision.DENY)
    app, executor = make_app([RISKY, done()], ask=person)
    outcome = app.desk.run(TaskRequest("buy", policy="never"), lambda _p: None, StopFlag())
    assert outcome.status == "denied" and person.requests and executor.actions == []
