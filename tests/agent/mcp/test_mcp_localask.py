"""Headless MCP runs ask the person on this desktop (the app's dialog process), never the client."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from agent.actions import LeftClick
from agent.mcp.localask import LocalAsk
from agent.safety import ConfirmRequest, Decision, StopFlag

DIALOG = [sys.executable, "-m", "app.askdialog"]
REQUEST = ConfirmRequest(LeftClick((10, 10)), "I will click Place order.", ("it names 'order'",))


def xdotool(display: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                          capture_output=True, text=True, timeout=30)


def ask_in_background(ask: LocalAsk, stop: StopFlag) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(ask(REQUEST, stop)), daemon=True)
    thread.start()
    return thread, out


@pytest.mark.xvfb
def test_the_dialog_appears_and_the_persons_answer_counts(xvfb_display, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    thread, out = ask_in_background(LocalAsk(30, DIALOG), StopFlag())
    found = xdotool(xvfb_display, "search", "--sync", "--name", "Deskhand: allow this action")
    window = found.stdout.split()[0]
    time.sleep(0.5)  # mapped and drawn before the key arrives
    xdotool(xvfb_display, "windowfocus", "--sync", window)
    xdotool(xvfb_display, "key", "--window", window, "alt+o")
    thread.join(20)
    assert out == [Decision.ALLOW_ONCE]


@pytest.mark.xvfb
def test_no_answer_is_no_and_stop_is_no(xvfb_display, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    start = time.monotonic()
    assert LocalAsk(1.5, DIALOG)(REQUEST, StopFlag()) is Decision.DENY
    assert time.monotonic() - start < 15
    stop = StopFlag()
    thread, out = ask_in_background(LocalAsk(60, DIALOG), stop)
    xdotool(xvfb_display, "search", "--sync", "--name", "Deskhand: allow this action")
    stop.set("stopped")
    thread.join(5)
    assert out == [Decision.DENY]


def test_without_a_display_nobody_is_asked_and_the_answer_is_no(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    start = time.monotonic()
    assert LocalAsk(60, DIALOG)(REQUEST, StopFlag()) is Decision.DENY
    assert time.monotonic() - start < 1
