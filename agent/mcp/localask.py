"""Confirmations for headless MCP runs: a dialog on this desktop, else "no".

The MCP client is never asked. With a display, a question dialog appears on the person's screen:
the app's own (`python -m app.askdialog`, when the composition root passes it), else zenity or
kdialog; an unanswered one is denied after `timeout` seconds, and so is every question when
nobody can be asked (no display, no dialog program).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time

from agent.mcp.desk import describe_request
from agent.options import DEFAULTS
from agent.safety import ConfirmRequest, Decision, StopFlag, read_on_screen

log = logging.getLogger(__name__)


def dialog_command(text: str, timeout: float) -> list[str] | None:
    """The command that asks the person, or None when no display or dialog program exists."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    if shutil.which("zenity"):
        return ["zenity", "--question", "--title=Deskhand: allow this action?", f"--text={text}",
                "--ok-label=Allow once", "--cancel-label=Deny", f"--timeout={int(timeout)}",
                "--no-markup"]
    if shutil.which("kdialog"):
        return ["kdialog", "--title", "Deskhand: allow this action?", "--yesno", text,
                "--yes-label", "Allow once", "--no-label", "Deny"]
    return None


class LocalAsk:
    """The gate's `ask` for headless MCP runs.

    `dialog` is a command that reads {"title", "text", "timeout"} as JSON on stdin and writes
    one Decision value to stdout (app/askdialog.py); it is preferred over zenity and kdialog.
    """

    def __init__(self, timeout: float = DEFAULTS.confirm_timeout,
                 dialog: list[str] | None = None) -> None:
        self.timeout, self.dialog = timeout, dialog

    def __call__(self, request: ConfirmRequest, stop: StopFlag) -> Decision:
        text = f"{describe_request(request)}\n{read_on_screen(request.label)}"
        has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        if has_display and self.dialog:
            question = json.dumps({"title": "Deskhand: allow this action?", "text": text,
                                   "timeout": self.timeout})
            return self._wait(self.dialog, question, stop)
        command = dialog_command(text, self.timeout)
        if command is None:
            log.warning("confirmation needed but nobody can be asked here (no display or no "
                        "dialog program): denied")
            return Decision.DENY
        return self._wait(command, None, stop)

    def _wait(self, command: list[str], question: str | None, stop: StopFlag) -> Decision:
        """Run the dialog until it answers, the time-out, or stop; anything but an answer is no."""
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE if question else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return Decision.DENY
        if question is not None:
            try:
                proc.stdin.write(question)
                proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + self.timeout + 5
        try:
            while proc.poll() is None:
                if stop.is_set() or time.monotonic() > deadline:
                    return Decision.DENY
                time.sleep(0.05)
            if question is None:
                return Decision.ALLOW_ONCE if proc.returncode == 0 else Decision.DENY
            answer = (proc.stdout.read(64) if proc.stdout else "").strip()
            return Decision(answer) if answer in {d.value for d in Decision} else Decision.DENY
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if proc.stdout:
                proc.stdout.close()
