"""MCP run_task on a real X display: real capture, real XTest input into a real window.

The window (tests/support/xkeylog.py) timestamps every key press it receives, so the tests see what
the agent typed and when the last key arrived after an MCP cancel (the same measurement as the
global-stop tests in tests/app/gui/test_hotkeys.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from agent.actions import LeftClick, Terminate, TypeText, format_call
from agent.executor import Executor
from agent.inference.base import ScriptedBackend
from agent.mcp.desk import LocalDesk
from agent.mcp.server import DeskhandMCP
from agent.options import RunOptions
from agent.safety import Decision
from agent.screen import Screen
from tests.support.mcp_fakes import CLIENT
from tests.support.xkeylog import KeyLogger

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.xvfb


def replies(text: str, answer: str) -> list[str]:
    return [format_call("I will click into the window.", LeftClick((200, 200))),
            format_call("I will type the text.", TypeText(text, None, False)),
            format_call(answer, Terminate("success"))]


def typed(logger: KeyLogger, ignore: set[int] = frozenset()) -> list[tuple[float, int]]:
    return [(t, code) for t, code in logger.presses if code not in ignore]


def desk_app(display: str, responses: list[str]) -> tuple[DeskhandMCP, list]:
    executors: list = []

    def make_executor(stop):
        executors.append(Executor(stop=stop, display=display))
        return executors[-1]

    desk = LocalDesk(backend=lambda: ScriptedBackend(responses), screen=Screen,
                     executor=make_executor, ask=lambda _r, _s: Decision.DENY,
                     options=RunOptions(settle_timeout=0.5))
    return DeskhandMCP(desk, transport="memory"), executors


def test_run_task_drives_the_real_loop_against_a_test_window(xvfb_display):
    logger = KeyLogger(xvfb_display)
    app, _ = desk_app(xvfb_display, replies("hello", "I typed hello."))
    try:
        async def main():
            async with Client(app.server, client_info=CLIENT) as c:
                return await c.call_tool("run_task", {"task": "type hello into the window"})

        result = anyio.run(main)
        time.sleep(0.3)  # let the last events arrive at the logger
        codes = [code for _t, code in typed(logger)]
    finally:
        logger.close()
    text = result.content[0].text
    assert "status: success" in text and "answer: I typed hello." in text
    assert codes == [logger.keycode(k) for k in "hello"]


def test_mcp_cancel_stops_real_input_within_300_ms(xvfb_display):
    logger = KeyLogger(xvfb_display)
    text = "abcdefghij" * 900  # under the gate's 10,000 characters that ask by themselves
    app, _ = desk_app(xvfb_display, [format_call("Typing.", TypeText(text, None, False))])
    marks: dict = {}
    try:
        async def main():
            async with Client(app.server, client_info=CLIENT) as c:
                with anyio.CancelScope() as scope:
                    async def cancel_when_typing():
                        with anyio.fail_after(30):
                            await wait_for_presses()
                        marks["cancel"] = time.monotonic()
                        scope.cancel()

                    async def wait_for_presses():
                        while len(logger.presses) < 100:
                            await anyio.sleep(0.005)
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(cancel_when_typing)
                        await c.call_tool("run_task", {"task": "type a long text"})
                marks["returned"] = time.monotonic()
                await anyio.sleep(0.5)
                return (await c.call_tool("get_run", {"run_id": "last"})).content[0].text

        record = anyio.run(main)
        time.sleep(0.3)
        presses = typed(logger)
    finally:
        logger.close()
    latency = presses[-1][0] - marks["cancel"]
    print(f"\nreal executor, MCP cancel -> last key press: {latency * 1000:.1f} ms; "
          f"{len(presses)} of {len(text)} characters arrived")
    assert latency <= 0.3
    assert len(presses) < len(text)
    assert "status: stopped" in record


def test_a_real_stdio_client_runs_one_task_end_to_end(xvfb_display, tmp_path):
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(replies("mcp", "Typed it over stdio.")), encoding="utf-8")
    logger = KeyLogger(xvfb_display)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.commands", "mcp", "--no-app", "--script", str(script), "--settle-timeout", "0.5"],
        env={**os.environ, "DISPLAY": xvfb_display}, cwd=str(ROOT))
    progress: list[str] = []

    async def on_progress(_v, _t, message):
        progress.append(message)

    try:
        async def main():
            with anyio.fail_after(120):
                return await session()

        async def session():
            async with Client(params, client_info=CLIENT) as c:
                names = [t.name for t in (await c.list_tools()).tools]
                result = await c.call_tool("run_task", {"task": "type mcp"},
                                           progress_callback=on_progress)
                status = (await c.call_tool("status", {})).structured_content
                return names, result, status

        names, result, status = anyio.run(main)
        time.sleep(0.3)
        codes = [code for _t, code in typed(logger)]
    finally:
        logger.close()
    assert "run_task" in names
    text = result.content[0].text
    assert "status: success" in text and "Typed it over stdio." in text
    assert codes == [logger.keycode(k) for k in "mcp"]
    assert [m.split(" · ")[1].split(":")[0] for m in progress].count("acted") == 3
    assert status["state"] == "idle" and status["model_loaded"] is True
    run_id = next(line.split(": ")[1] for line in text.splitlines() if line.startswith("run id"))
    meta = json.loads((Path(os.environ["DESKHAND_DATA_DIR"]) / "runs" / run_id / "run.json")
                      .read_text(encoding="utf-8"))
    assert meta["settings"]["mcp"]["transport"] == "stdio"
    assert meta["settings"]["mcp"]["client"] == "test-host 9.1"
