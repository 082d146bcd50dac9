"""agent/childproc.py: typed progress in order, cancel that kills, typed failures, no forging."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent import childproc
from agent.childproc import (
    ChildCancelled,
    ChildCrashed,
    ChildFailed,
    ChildProtocolError,
    Progress,
    report_progress,
    run_child,
    send_result,
)

ME = "tests.agent.test_childproc"
FORGED = json.dumps({"event": "progress", "stage": "forged", "done": 1, "total": 1, "eta_s": None})


# --- child targets (run in the child interpreter) --------------------------------------------
def count(args: list[str]) -> int:
    n = int(args[0])
    for i in range(1, n + 1):
        report_progress("count", i, n)
    send_result({"n": n, "token_left": os.environ.get(childproc.TOKEN_VAR)})
    return 0


def stubborn(args: list[str]) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    report_progress(f"pid {grandchild.pid}", 1, 1)
    while True:
        time.sleep(1)


def crash(args: list[str]) -> int:
    if args[0] == "exit":
        os._exit(3)
    if args[0] == "signal":
        os.kill(os.getpid(), signal.SIGKILL)
    if args[0] == "raise":
        raise ValueError("the checkpoint has no config.json")
    print("error: not a checkpoint", file=sys.stderr)
    return 2


def junk(args: list[str]) -> int:
    print(FORGED, flush=True)
    os.write(1, FORGED.encode() + b"\n")
    os.write(1, b"\xff\xfe not utf-8 {\"event\":\n")
    subprocess.run([sys.executable, "-c", f"print({FORGED!r})"], check=True)
    sys.stdout.write("x" * 100_000 + "\n")
    report_progress("real", 1, 1)
    return 0


def broken(args: list[str]) -> int:
    childproc._CHANNEL.send({"event": "progress", "stage": "s", "done": True, "total": 1,
                             "eta_s": None})
    time.sleep(60)
    return 0


def sleeper(args: list[str]) -> int:
    report_progress(f"pid {os.getpid()}", 1, 1)
    time.sleep(120)
    return 0


def guard_state(args: list[str]) -> int:
    from agent.offline import OfflineGuard

    send_result({"active": OfflineGuard.active(), "strict": OfflineGuard._strict})
    return 0


# --- tests -----------------------------------------------------------------------------------
def test_progress_events_arrive_in_order_and_typed() -> None:
    events: list[Progress] = []
    result = run_child(f"{ME}:count", ["5"], on_event=events.append)
    assert [(e.stage, e.done, e.total) for e in events] == [("count", i, 5) for i in range(1, 6)]
    assert all(type(e) is Progress for e in events)
    assert events[0].eta_s is None and all(isinstance(e.eta_s, float) for e in events[1:])
    assert events[-1].eta_s == 0.0
    # The result came back; the event token was gone before the target ran.
    assert result.value == {"n": 5, "token_left": None}


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_cancel_kills_a_child_that_ignores_sigterm_and_its_children() -> None:
    cancel = threading.Event()
    seen: list[Progress] = []

    def on_event(event: Progress) -> None:
        seen.append(event)
        cancel.set()

    started = time.monotonic()
    with pytest.raises(ChildCancelled) as caught:
        run_child(f"{ME}:stubborn", on_event=on_event, cancel=cancel, grace_s=1.0)
    assert time.monotonic() - started < 10
    assert caught.value.exit_code == -signal.SIGKILL  # SIGTERM was ignored; the kill came
    grandchild = int(seen[0].stage.split()[1])
    deadline = time.monotonic() + 5
    while not _dead(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(grandchild), "the child's own child survived the cancel"


@pytest.mark.parametrize(("how", "error", "code", "text"), [
    ("exit", ChildCrashed, 3, "ended unexpectedly (exit code 3)"),
    ("signal", ChildCrashed, -9, "(out of memory?)"),
    ("raise", ChildFailed, 1, "ValueError: the checkpoint has no config.json"),
    ("return", ChildFailed, 2, "exit code 2: error: not a checkpoint"),
])
def test_a_crash_or_failure_is_a_typed_error_with_the_exit_code(how, error, code, text) -> None:
    with pytest.raises(childproc.ChildError) as caught:
        run_child(f"{ME}:crash", [how])
    assert type(caught.value) is error
    assert caught.value.exit_code == code and text in str(caught.value)


def test_junk_on_stdout_is_output_and_cannot_forge_an_event() -> None:
    events: list[Progress] = []
    result = run_child(f"{ME}:junk", on_event=events.append)
    assert [e.stage for e in events] == ["real"]
    assert result.output.count('"forged"') == 3  # print, os.write(1) and a grandchild's print


def test_a_child_that_breaks_the_protocol_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(ChildProtocolError):
        run_child(f"{ME}:broken", grace_s=1.0)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("record", [
    {"event": "progress", "stage": "s", "done": 1, "total": 1},  # a field missing
    {"event": "progress", "stage": "s", "done": 1, "total": 1, "eta_s": None, "x": 1},
    {"event": "progress", "stage": 3, "done": 1, "total": 1, "eta_s": None},
    {"event": "progress", "stage": "s", "done": "1", "total": 1, "eta_s": None},
    {"event": "progress", "stage": "s", "done": 1, "total": 1, "eta_s": "soon"},
    {"event": "exit", "code": False}, {"event": "error", "message": 5}, {"event": "log"},
    ["progress"], "progress",
])
def test_the_parser_refuses_every_other_shape(record) -> None:
    with pytest.raises(ValueError):
        childproc._parse(json.dumps(record).encode() + b"\n")
    for raw in (b"NaN\n", b'{"event": "progress", "stage": "s", "done": NaN, "total": 1, '
                          b'"eta_s": null}\n', b"\xff\n", b'{"event": "exit", "code": 0}'):
        with pytest.raises(ValueError):
            childproc._parse(raw)


def test_the_offline_guard_is_active_in_the_child() -> None:
    from agent.offline import OfflineGuard
    from agent.offline_boot import child_environment

    with OfflineGuard():  # a guarded parent: its children inherit the start-up hook
        assert run_child(f"{ME}:guard_state").value == {"active": True, "strict": False}
    assert run_child(f"{ME}:guard_state", env=child_environment(strict=True)).value == {
        "active": True, "strict": True}
    assert run_child(f"{ME}:guard_state").value["active"] is False


EXIT_PROBE = """
import threading, time
from agent.childproc import run_child
seen = []
threading.Thread(target=run_child, args=("tests.agent.test_childproc:sleeper",),
                 kwargs={"on_event": seen.append}, daemon=True).start()
while not seen:
    time.sleep(0.05)
print(seen[0].stage.split()[1])
"""  # and the interpreter exits, its worker thread (a daemon, as the app's) still waiting


def test_a_running_child_is_stopped_when_its_parent_exits() -> None:
    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", EXIT_PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    pid = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 5
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(pid), "the child outlived the process that started it"
