"""The key-name map: every name a model may write, and clear errors for the rest."""

from __future__ import annotations

import pytest

from agent.keys import KeyNameError, primary_modifier, resolve_chord, resolve_key


@pytest.mark.parametrize(("name", "expected"), [
    ("ctrl", "ctrl"), ("Control", "ctrl"), ("CTRL", "ctrl"), ("control_l", "ctrlleft"),
    ("shift", "shift"), ("Shift", "shift"), ("alt", "alt"), ("option", "alt"), ("Alt_R", "altright"),
    ("Escape", "esc"), ("esc", "esc"), ("Enter", "enter"), ("Return", "enter"), ("KP_Enter", "enter"),
    ("Tab", "tab"), ("BackSpace", "backspace"), ("Delete", "delete"), ("del", "delete"),
    ("Home", "home"), ("End", "end"), ("PageUp", "pageup"), ("Page_Down", "pagedown"),
    ("pgdn", "pagedown"), ("Prior", "pageup"),
    ("Left", "left"), ("ArrowRight", "right"), ("arrow_up", "up"), ("Down", "down"),
    ("F1", "f1"), ("f12", "f12"), ("F24", "f24"), ("space", "space"), (" ", "space"),
    ("a", "a"), ("K", "k"), ("7", "7"), ("/", "/"), ("+", "+"), ("[", "["), ("KeyA", "a"),
    ("Digit5", "5"), ("plus", "+"), ("minus", "-"), ("Insert", "insert"), ("Menu", "apps"),
])
def test_known_names(name: str, expected: str) -> None:
    assert resolve_key(name, "linux") == expected


@pytest.mark.parametrize("name", ["cmd", "command", "Cmd"])
def test_cmd_is_ctrl_off_macos_and_command_on_macos(name: str) -> None:
    assert resolve_key(name, "linux") == "ctrl"
    assert resolve_key(name, "win32") == "ctrl"
    assert resolve_key(name, "darwin") == "command"


@pytest.mark.parametrize("name", ["super", "win", "meta", "Super_L", "Windows"])
def test_super_family(name: str) -> None:
    assert resolve_key(name, "linux") == "win"
    assert resolve_key(name, "darwin") == "command"


@pytest.mark.parametrize("name", ["F25", "hyperdrive", "ctrl+c", "", "  ", "é", "ctrlshift", "\x00"])
def test_unknown_names_raise_a_short_error(name: str) -> None:
    with pytest.raises(KeyNameError) as info:
        resolve_key(name, "linux")
    assert len(str(info.value)) < 60


def test_chord_keeps_order_and_drops_duplicates() -> None:
    assert resolve_chord(["Control", "Shift", "K"], "linux") == ("ctrl", "shift", "k")
    assert resolve_chord(["ctrl", "control", "c"], "linux") == ("ctrl", "c")


def test_chord_validates_every_name_and_length() -> None:
    with pytest.raises(KeyNameError, match="blorp"):
        resolve_chord(["ctrl", "blorp"], "linux")
    with pytest.raises(KeyNameError):
        resolve_chord([], "linux")
    with pytest.raises(KeyNameError, match="too many"):
        resolve_chord(["a"] * 7, "linux")


def test_primary_modifier() -> None:
    assert primary_modifier("linux") == "ctrl"
    assert primary_modifier("darwin") == "command"


def test_every_resolved_name_is_a_pyautogui_key() -> None:
    # pyautogui's name list without importing pyautogui (which needs a display on X11).
    import ast
    import importlib.util
    from pathlib import Path

    source = Path(importlib.util.find_spec("pyautogui").origin).read_text()
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "KEY_NAMES" for t in node.targets):
            names = set(ast.literal_eval(node.value))
    assert names, "pyautogui.KEY_NAMES not found"
    from agent import keys

    every = [*keys._MODIFIERS, *keys._NAMED, *keys._CHARACTERS]
    for platform in ("linux", "darwin", "win32"):
        for name in every:
            assert resolve_key(name, platform) in names, name
