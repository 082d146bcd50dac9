"""With the app running, MCP tasks run in the app: seen in the window or pill, stopped from the pill."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from agent.mcp.desk import WAITING
from agent.paths import runs_dir
from agent.safety import Decision
from app.main import DeskhandApp
from app.settings import Settings
from tests.agent.mcp.test_mcp_server import RISKY, field
from tests.app.gui.fakes import click, done
from tests.support.mcp_fakes import CLIENT

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.gui


@pytest.fixture
def desk(qtbot, services, tmp_path):
    app = DeskhandApp(Settings(model="fake-model", hide_window_during_run=True), services,
                      hotkeys=False, open_exports=False)
    qtbot.addWidget(app.window)
    assert app.start_mcp_handoff(tmp_path / "rt" / "app.sock")
    app.mcp_env = dict(os.environ)
    yield app
    app.controller.stop()
    app.controller.wait()
    app.mcp.close()
    app.tray.close()
    app.quick.close()
    app.controller.pill.close()


def mcp_for(desk) -> StdioServerParameters:
    """`deskhand mcp` as a child process, as an MCP host starts it, finding this app's socket.

    A child process, not a thread: the app's run turns offline mode on in the app's process,
    and the MCP server is always another process.
    """
    # The environment from before any run: during one, offline mode puts its start-up hook on
    # PYTHONPATH for the app's children, and an MCP host is no child of the app.
    env = {**desk.mcp_env, "DESKHAND_RUNTIME_DIR": str(desk.mcp.path.parent)}
    env.pop("DISPLAY", None)  # the headless desk could not run there: every task must go to the app
    return StdioServerParameters(command=sys.executable, args=["-m", "app.commands", "mcp"], env=env,
                                 cwd=str(ROOT))


class Call(threading.Thread):
    """One MCP run_task from its own thread and event loop, while Qt runs on this one."""

    def __init__(self, server: StdioServerParameters, task: str) -> None:
        super().__init__(daemon=True)
        self.server, self.task = server, task
        self.progress: list[str] = []
        self.result = None
        self.waiting = threading.Event()

    def run(self) -> None:
        async def on_progress(_v, _t, message):
            self.progress.append(message)
            if WAITING in message:
                self.waiting.set()

        async def main():
            async with Client(self.server, client_info=CLIENT) as c:
                self.result = await c.call_tool("run_task", {"task": self.task},
                                                progress_callback=on_progress)

        anyio.run(main)


def test_the_socket_is_private(desk):
    path = desk.mcp.path
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_mcp_task_runs_in_the_app_and_the_pill_stops_it(qtbot, desk, services):
    services.extra["responses"] = [click(10, 10)] * 200
    services.extra["token_delay"] = 0.01
    started: list[str] = []
    desk.controller.run_started.connect(started.append)
    call = Call(mcp_for(desk), "click around for a while")
    call.start()
    qtbot.waitUntil(lambda: desk.controller.running and desk.controller._steps >= 2, timeout=30_000)
    assert started == ["click around for a while"]
    pill = desk.controller.pill
    assert pill.isVisible() and not desk.window.isVisible()
    assert desk.mcp.status()["state"] == "running"
    second = Call(mcp_for(desk), "another task")
    second.start()
    qtbot.waitUntil(lambda: not second.is_alive(), timeout=30_000)  # Qt answers meanwhile
    busy = second.result.content[0].text
    assert second.result.is_error and busy.startswith("busy:"), busy
    pill.stop.click()
    qtbot.waitUntil(lambda: not call.is_alive(), timeout=30_000)
    text = call.result.content[0].text
    assert field(text, "status") == "stopped"
    assert "status pill" in field(text, "reason")
    assert any("runs in the Deskhand app" in m for m in call.progress)
    meta = json.loads((runs_dir() / field(text, "run id") / "run.json").read_text(encoding="utf-8"))
    assert meta["settings"]["mcp"]["client"] == "test-host 9.1"
    assert [c["tool"] for c in meta["settings"]["mcp"]["calls"]][:1] == ["run_task"]


def test_the_app_dialog_asks_the_person_and_the_client_waits(qtbot, desk, services):
    services.extra["responses"] = [RISKY, done()]
    call = Call(mcp_for(desk), "buy the kettle")
    call.start()
    qtbot.waitUntil(lambda: desk.controller.dialog is not None, timeout=30_000)
    assert call.waiting.wait(5)
    assert desk.mcp.status()["state"] == "waiting"
    assert call.result is None
    desk.controller.dialog.finish(Decision.DENY)
    qtbot.waitUntil(lambda: not call.is_alive(), timeout=30_000)
    assert field(call.result.content[0].text, "status") == "denied"


def test_a_vanished_client_stops_its_run(qtbot, desk, services):
    from agent.mcp.handoff import Connection

    services.extra["responses"] = [click(10, 10)] * 200
    services.extra["token_delay"] = 0.01
    conn = Connection.open(desk.mcp.path)
    conn.send({"op": "run", "task": "long task", "caller": {"client": "x"}})
    qtbot.waitUntil(lambda: desk.controller.running, timeout=30_000)
    conn.close()
    with qtbot.waitSignal(desk.controller.run_finished, timeout=30_000) as blocker:
        pass
    assert "went away" in blocker.args[0].reason


def test_the_app_shows_while_a_server_shares_screenshots(qtbot, desk):
    from agent.mcp.handoff import SharingNotice

    label = desk.sharing_label
    assert label.isHidden() and desk.mcp.status()["screenshots_shared"] is False
    notice = SharingNotice(desk.mcp.path, interval=0.2).start()
    try:
        qtbot.waitUntil(lambda: not label.isHidden(), timeout=10_000)
        assert "Screenshots are shared" in label.text()
        assert desk.mcp.status()["screenshots_shared"] is True
        qtbot.wait(800)  # held, not flickering: no reconnects while the app is there
        assert not label.isHidden() and len(desk.mcp.sharing) == 1
    finally:
        notice.close()
    qtbot.waitUntil(label.isHidden, timeout=10_000)


def test_an_mcp_cancel_stops_the_apps_run_quickly(qtbot, desk, services, recorder_executor):
    from tests.app.gui.fakes import typing

    services.extra["responses"] = [typing("lorem-ipsum," * 300), done()]
    recorder_executor.char_delay = 0.004
    go, marks = threading.Event(), {}
    call = Call(mcp_for(desk), "type a long text")

    async def cancelled_main():
        async with Client(call.server, client_info=CLIENT) as c:
            with anyio.CancelScope() as scope:
                async def cancel_on_signal():
                    await anyio.to_thread.run_sync(go.wait, 60)
                    marks["cancel"] = time.monotonic()
                    scope.cancel()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_on_signal)
                    await c.call_tool("run_task", {"task": call.task})

    thread = threading.Thread(target=lambda: anyio.run(cancelled_main), daemon=True)
    thread.start()
    qtbot.waitUntil(lambda: len(recorder_executor.events) >= 50, timeout=30_000)
    with qtbot.waitSignal(desk.controller.run_finished, timeout=10_000) as blocker:
        go.set()
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10_000)
    latency = recorder_executor.events[-1] - marks["cancel"]
    print(f"\napp hand-off: MCP cancel -> last input event {latency * 1000:.1f} ms "
          f"({len(recorder_executor.events)} of 3600 characters typed)")
    assert blocker.args[0].status.value == "stopped"
    assert latency <= 0.3
