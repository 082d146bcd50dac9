"""`deskhand run` answers the model's question on the terminal: typed line, time-out, Ctrl+C, no tty."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from agent.safety import StopFlag
from app.commands.run import terminal_asker

pytestmark = pytest.mark.skipif(os.name == "nt", reason="a pseudo-terminal is POSIX-only")


@pytest.fixture
def terminal():
    master, slave = os.openpty()
    stream = os.fdopen(slave, "r", encoding="utf-8")
    yield master, stream
    stream.close()
    os.close(master)


def test_the_typed_line_is_the_answer(terminal, capsys) -> None:
    master, stream = terminal
    threading.Timer(0.1, os.write, [master, b"size 42\n"]).start()
    assert terminal_asker(StopFlag(), 5, stream)("Which size?\x1b[2J") == "size 42"
    out = capsys.readouterr().out
    assert "The agent asks you: Which size?\\x1b[2J" in out  # model text made inert


def test_no_answer_in_time_or_an_empty_line_is_none(terminal) -> None:
    master, stream = terminal
    started = time.monotonic()
    assert terminal_asker(StopFlag(), 0.3, stream)("Which size?") is None
    assert time.monotonic() - started < 2
    os.write(master, b"\n")
    assert terminal_asker(StopFlag(), 5, stream)("Which size?") is None


def test_ctrl_c_stops_the_wait(terminal) -> None:
    _, stream = terminal
    stop = StopFlag()
    threading.Timer(0.1, stop.set, ["stopped with Ctrl+C"]).start()
    started = time.monotonic()
    assert terminal_asker(stop, 60, stream)("Which size?") is None
    assert time.monotonic() - started < 2


def test_without_a_terminal_nobody_answers(capsys) -> None:
    assert terminal_asker(StopFlag(), 5, io.StringIO("size 42\n"))("Which size?") is None
    assert "no terminal to answer it" in capsys.readouterr().err
