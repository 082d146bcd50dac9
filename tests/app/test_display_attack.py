"""Model, page and server text on a terminal: shown, never obeyed.

A hostile model (or a page it reads, or a `--server`) writes escape sequences into thoughts,
URLs and answers: `\\x1b[2K\\r` erases the confirmation line the user is reading and writes a
new one; OSC 52 sets the clipboard; OSC 8 plants a link; bidi overrides reorder a URL.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.actions import Terminate, TypeText, VisitUrl, format_call
from agent.errors import UserError
from agent.inference.base import Generation, ScriptedBackend
from agent.safety import ConfirmRequest
from agent.termtext import visible, visible_json
from app import commands as cli
from app.commands import run as run_command
from tests.support.fakes import FakeScreen

BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
REWRITE = "\x1b[2K\rThe agent wants to: scroll down"  # erase the line, write another
OSC8 = "\x1b]8;;https://evil.test/\x1b\\bank.test\x1b]8;;\x1b\\"  # hidden hyperlink
OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"  # writes "rm -rf ~" into the clipboard
CSI8 = "\x9b2K"  # the 8-bit (C1) form of CSI
ATTACKS = [REWRITE, OSC8, OSC52, CSI8, "https://bank.test/\u202egpj.exe",
           "line\u2028break\u2029para\x85nel", "\x7f\x00\x07\x08\x0b\x0c\ud800"]


def dangerous(ch: str, *, multiline: bool) -> bool:
    """A character a terminal may obey: controls (C0, DEL, C1), lone surrogates, bidi, breaks."""
    if multiline and ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in BIDI


def assert_inert(text: str, *, multiline: bool = True) -> None:
    bad = sorted({f"U+{ord(c):04X}" for c in text if dangerous(c, multiline=multiline)})
    assert not bad, f"terminal control characters reach the terminal: {bad}"


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_is_shown_not_obeyed(attack: str) -> None:
    for multiline in (True, False):
        out = visible(attack, multiline=multiline)
        assert_inert(out, multiline=multiline)
    assert visible("Zürich — 東京 ok\n\tnext") == "Zürich — 東京 ok\n\tnext"  # text stays text
    assert visible("a\nb\tc", multiline=False) == "a\\nb\\tc"
    assert "\\x1b[2K\\r" in visible(REWRITE)  # the user can see what was attempted


@settings(max_examples=500, deadline=None)
@given(st.text(), st.lists(st.integers(0, 60), max_size=8))
def test_escaping_token_by_token_equals_escaping_whole(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    streamed = "".join(visible(p) for p in pieces)
    assert streamed == visible(text)
    assert_inert(streamed)
    assert_inert(visible(text, multiline=False), multiline=False)


@pytest.mark.parametrize("attack", ATTACKS)
def test_json_lines_stay_valid_and_inert(attack: str) -> None:
    value = {"thoughts": attack, "nested": [attack, {"url": attack}]}
    line = visible_json(value)
    assert_inert(line, multiline=False)
    assert json.loads(line) == value


class TtyOut(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_confirmation_question_cannot_be_rewritten(monkeypatch) -> None:
    out = TtyOut()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stdin", TtyOut())
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    request = ConfirmRequest(VisitUrl("https://shop.test/pay" + REWRITE + OSC52),
                             thoughts="", reasons=(f"it said {CSI8}pay\u202e",))
    run_command.ask_in_terminal(request)
    assert_inert(out.getvalue())
    assert "shop.test/pay\\x1b[2K\\r" in out.getvalue()


class CliScreen:
    """The `Screen` interface `deskhand run` uses, over the shared fake monitor."""

    def __init__(self) -> None:
        self.fake = FakeScreen()

    def monitor(self, index: int = 1) -> Any:
        return self.fake.monitor

    def capture(self, index: int = 1) -> Any:
        return self.fake.capture(index)

    def wait_settled(self, index: int = 1, **kwargs: Any) -> Any:
        return self.fake.wait_settled(index, **kwargs)


class PieceBackend(ScriptedBackend):
    """Streams each reply in the given pieces: escape sequences split across tokens."""

    def __init__(self, replies: list[list[str]]) -> None:
        super().__init__(["".join(r) for r in replies])
        self.replies = replies

    def _generate(self, request):
        pieces = self.replies[min(len(self.calls), len(self.replies) - 1)]
        self.calls.append((list(request.messages), list(request.images)))
        for piece in pieces:
            request.emit(piece)
        return Generation("".join(pieces), 10, len(pieces), {"decode": 0.0}, "stop")


def split_call(thoughts: list[str], action: Any) -> list[str]:
    call = format_call("", action)
    return [*thoughts, call[: len(call) // 2], call[len(call) // 2:]]


REPLIES = [
    # CSI split over four tokens, then OSC 52 and OSC 8 whole, in thoughts and in typed text
    split_call(["Typing \x1b", "[2", "K", "\rnow ", OSC52, OSC8], TypeText("x" + OSC52, (5, 5))),
    split_call(["Done \u202e", CSI8, "."], VisitUrl("https://x.test/" + REWRITE)),
    [format_call("All done " + OSC8, Terminate("success"))],
]


def run_cli(monkeypatch, argv: list[str]) -> str:
    out = TtyOut()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr("agent.screen.Screen", CliScreen)
    monkeypatch.setattr(run_command, "load_backend", lambda args: PieceBackend(REPLIES))
    code = cli.main(argv)
    assert code in (0, 1)
    return out.getvalue()


def test_streamed_tokens_steps_and_answer_are_inert(monkeypatch) -> None:
    text = run_cli(monkeypatch, ["run", "task " + REWRITE, "--dry-run", "--confirm", "never",
                                 "--allow-network", "--no-screenshots"])
    assert "Typing \\x1b[2K\\rnow" in text  # streamed, escaped piece by piece
    assert_inert(text)
    shown = run_cli(monkeypatch, ["runs", "show", "last"])
    assert "Typing" in shown
    assert_inert(shown)
    listed = run_cli(monkeypatch, ["runs", "list"])
    assert len(listed.splitlines()) == 1  # one run, one line: the task cannot add lines
    assert_inert(listed)


def test_json_steps_are_inert_and_decode_to_the_model_text(monkeypatch) -> None:
    text = run_cli(monkeypatch, ["run", "task", "--json", "--dry-run", "--confirm", "never",
                                 "--allow-network", "--no-screenshots"])
    steps = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert_inert(text)
    assert steps and "\x1b[2K\rnow" in steps[0]["thoughts"]  # the record keeps the real text


def test_user_errors_quoting_a_server_are_inert(monkeypatch, capsys) -> None:
    def refuse(args: argparse.Namespace) -> Any:
        raise UserError("the server said: " + OSC52 + REWRITE)

    monkeypatch.setattr(run_command, "load_backend", refuse)
    monkeypatch.setattr("agent.screen.Screen", CliScreen)
    assert cli.main(["run", "x", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "the server said" in err
    assert_inert(err)


def test_download_listing_cannot_rewrite_the_question(monkeypatch, capsys) -> None:
    import models.download
    from models import cli as models_cli

    class Plan:
        total_bytes = 10

        def describe(self) -> str:
            return f"evil/repo\n    model.onnx{REWRITE}: 1 kB\n    {OSC52}x: 1 kB"

    def download_model(repo_id: str, *, confirm, **kwargs: Any) -> None:
        confirm(Plan())

    monkeypatch.setattr(models.download, "download_model", download_model)
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    args = argparse.Namespace(models_command="download", repo_id="evil/repo", revision=None,
                              subfolder=None, name=None, yes=False)
    models_cli.run(args)
    assert_inert(capsys.readouterr().out)
