"""The login item (XDG autostart) and the desktop entry the installers share."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

from app import autostart


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser["Desktop Entry"]


def split_exec(value: str) -> list[str]:
    """The argv of an Exec value, read by the desktop-entry spec (what a desktop does)."""
    text = value.replace("\\\\", "\\").replace("%%", "%")
    args: list[str] = []
    current: list[str] | None = None
    quoted, i = False, 0
    while i < len(text):
        c = text[i]
        if quoted and c == "\\" and i + 1 < len(text):
            current.append(text[i + 1])  # type: ignore[union-attr]
            i += 1
        elif c == '"':
            quoted, current = not quoted, current if current is not None else []
        elif c == " " and not quoted:
            if current is not None:
                args.append("".join(current))
            current = None
        else:
            current = (current or []) + [c]
        i += 1
    if current is not None:
        args.append("".join(current))
    return args


def test_autostart_path_follows_xdg_config_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert autostart.autostart_path() == tmp_path / "cfg" / "autostart" / "deskhand.desktop"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert autostart.autostart_path() == tmp_path / ".config" / "autostart" / "deskhand.desktop"


def test_enabling_writes_a_login_item_that_starts_this_install_in_the_tray(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("APPIMAGE", raising=False)
    autostart.set_autostart(True)
    path = tmp_path / "autostart" / "deskhand.desktop"
    entry = read_entry(path)
    argv = split_exec(entry["Exec"])
    assert argv[-2:] == ["app", "--tray"] and Path(argv[0]).name == "deskhand"
    assert Path(argv[0]).parent == Path(sys.executable).parent  # the venv's own command
    assert entry["Type"] == "Application" and entry["NoDisplay"] == "true"
    assert autostart.autostart_enabled()
    autostart.set_autostart(False)
    assert not path.exists() and not autostart.autostart_enabled()
    autostart.set_autostart(False)  # already off: nothing to do, no error


def test_an_appimage_starts_itself_not_its_temporary_mount(monkeypatch, tmp_path) -> None:
    image = tmp_path / "My Apps" / "Deskhand 100%.AppImage"
    monkeypatch.setenv("APPIMAGE", str(image))
    assert autostart.launch_command() == [str(image)]
    monkeypatch.delenv("APPIMAGE")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert autostart.launch_command() == [sys.executable]


@pytest.mark.parametrize("arg", ["plain", "with space", 'quo"te', "dollar$HOME", "back\\slash",
                                 "per%cent", "tick`x`", "ünï"])
def test_exec_quoting_round_trips(arg) -> None:
    value = autostart.quote_exec(["/opt/x y/deskhand", arg])
    assert split_exec(value) == ["/opt/x y/deskhand", arg]
    assert "%" not in value.replace("%%", "")  # a lone % is a field code to the desktop


def test_menu_entry_has_no_login_keys() -> None:
    text = autostart.desktop_entry(["deskhand"])
    assert "Exec=deskhand\n" in text and "Icon=deskhand\n" in text
    assert "NoDisplay" not in text and "Autostart" not in text
