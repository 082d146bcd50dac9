"""Key names a model may emit, mapped onto pyautogui's key names.

Models write keys the way their training harness did: Playwright (`Control`, `ArrowLeft`),
xdotool (`Return`, `Page_Down`) or plain words (`ctrl`, `esc`). Everything is normalised here,
once, so the executor only ever sends names pyautogui knows. An unknown name is a model
mistake and raises `KeyNameError` instead of being silently dropped (pyautogui ignores
names it does not know, which would make a chord press something else).
"""

from __future__ import annotations

import dataclasses
import re
import string
import sys
from collections.abc import Iterable, Sequence


class KeyNameError(ValueError):
    """A key name that no key answers to; the message names it."""


# Modifiers. cmd/command on Linux and Windows: a model that says cmd+c means "copy", which
# is ctrl there; super/win/meta stay the Windows (Super) key. On macOS all of those are cmd.
_MODIFIERS = {
    "ctrl": "ctrl", "control": "ctrl", "ctl": "ctrl",
    "controlleft": "ctrlleft", "controlright": "ctrlright", "controll": "ctrlleft",
    "controlr": "ctrlright", "ctrll": "ctrlleft", "ctrlr": "ctrlright",
    "shift": "shift", "shiftl": "shiftleft", "shiftr": "shiftright",
    "shiftleft": "shiftleft", "shiftright": "shiftright",
    "alt": "alt", "option": "alt", "opt": "alt", "altl": "altleft", "altr": "altright",
    "altleft": "altleft", "altright": "altright", "altgr": "altright",
    "cmd": "@primary", "command": "@primary", "meta": "@super", "super": "@super",
    "win": "@super", "windows": "@super", "superl": "@super", "metal": "@super",
}

_NAMED = {
    "escape": "esc", "esc": "esc",
    "enter": "enter", "return": "enter", "kpenter": "enter",
    "tab": "tab", "backspace": "backspace",
    "delete": "delete", "del": "delete", "insert": "insert", "ins": "insert",
    "home": "home", "end": "end",
    "pageup": "pageup", "pgup": "pageup", "prior": "pageup",
    "pagedown": "pagedown", "pgdn": "pagedown", "pgdown": "pagedown", "next": "pagedown",
    "left": "left", "right": "right", "up": "up", "down": "down",
    "arrowleft": "left", "arrowright": "right", "arrowup": "up", "arrowdown": "down",
    "space": "space", "spacebar": "space",
    "capslock": "capslock", "numlock": "numlock", "scrolllock": "scrolllock",
    "printscreen": "printscreen", "print": "printscreen", "prtsc": "printscreen",
    "pause": "pause", "menu": "apps", "apps": "apps", "contextmenu": "apps",
    "plus": "+", "minus": "-", "comma": ",", "period": ".", "slash": "/", "backslash": "\\",
    "semicolon": ";", "apostrophe": "'", "quote": "'", "grave": "`", "backquote": "`",
    "equal": "=", "equals": "=", "bracketleft": "[", "bracketright": "]",
}
_NAMED.update({f"f{n}": f"f{n}" for n in range(1, 25)})

# Single characters pyautogui can press on every platform (shifted ones press shift itself).
_CHARACTERS = set(string.ascii_lowercase + string.digits + string.punctuation)

MODIFIER_KEYS = frozenset({"ctrl", "ctrlleft", "ctrlright", "shift", "shiftleft", "shiftright",
                           "alt", "altleft", "altright", "command", "win"})


def resolve_key(name: str, platform: str | None = None) -> str:
    """The pyautogui name of one model key name; raises `KeyNameError` if there is none."""
    platform = platform or sys.platform
    if name == " ":
        return "space"
    if not isinstance(name, str) or not name.strip():
        raise KeyNameError("empty key name")
    raw = name.strip()
    if len(raw) == 1:
        if raw.lower() in _CHARACTERS:
            # Letters are lower-cased: in a chord "ctrl+K" means the K key; shift is explicit.
            return raw.lower()
        raise KeyNameError(f"unknown key {raw!r}")
    folded = re.sub(r"[\s_\-]", "", raw.lower())
    if folded.startswith("key") and len(folded) == 4 and folded[3] in _CHARACTERS:
        return folded[3]  # Playwright's KeyA
    if folded.startswith("digit") and len(folded) == 6 and folded[5].isdigit():
        return folded[5]  # Playwright's Digit1
    mapped = _MODIFIERS.get(folded)
    if mapped == "@primary":
        return "command" if platform == "darwin" else "ctrl"
    if mapped == "@super":
        return "command" if platform == "darwin" else "win"
    if mapped is not None:
        return mapped
    if folded in _NAMED:
        return _NAMED[folded]
    raise KeyNameError(f"unknown key {raw[:30]!r}")


def resolve_chord(names: Sequence[str], platform: str | None = None) -> tuple[str, ...]:
    """pyautogui names for a chord, in press order; every name is validated first."""
    if not names:
        raise KeyNameError("no keys given")
    if len(names) > 6:
        raise KeyNameError(f"too many keys in one chord ({len(names)})")
    resolved = tuple(resolve_key(n, platform) for n in names)
    # A repeated key (ctrl+ctrl) cannot be held twice; keep the first.
    return tuple(dict.fromkeys(resolved))


def primary_modifier(platform: str | None = None) -> str:
    """The modifier of app shortcuts such as copy or focus-address-bar (cmd on macOS)."""
    return "command" if (platform or sys.platform) == "darwin" else "ctrl"


# -- chords as the confirmation gate judges them ------------------------------------------------

_SIDES = {"ctrlleft": "ctrl", "ctrlright": "ctrl", "shiftleft": "shift", "shiftright": "shift",
          "altleft": "alt", "altright": "alt"}
MODIFIERS = frozenset({"ctrl", "shift", "alt", "command", "win"})


@dataclasses.dataclass(frozen=True)
class Chord:
    """A key press as the executor will send it: held modifiers and the other keys."""

    modifiers: frozenset[str]
    keys: frozenset[str]
    text: str  # e.g. "ctrl+w", for messages


def chord(names: Iterable[str], platform: str | None = None) -> Chord | None:
    """The chord the executor presses for these model key names, or None if they are invalid."""
    try:
        resolved = resolve_chord(list(names), platform or sys.platform)
    except (KeyNameError, TypeError):
        return None  # the executor refuses it too: nothing is pressed
    names_ = [_SIDES.get(k, k) for k in resolved]
    mods = frozenset(k for k in names_ if k in MODIFIERS)
    return Chord(mods, frozenset(k for k in names_ if k not in MODIFIERS), "+".join(dict.fromkeys(names_)))


def typed_character(c: Chord) -> str:
    """The character a chord types into a field ("" for shortcuts and named keys)."""
    if c.modifiers - {"shift"} or len(c.keys) != 1:
        return ""
    (key,) = c.keys
    return " " if key == "space" else key if len(key) == 1 else ""


def closes_something(c: Chord) -> bool:
    """Chords that close a window or tab, quit an application or end the session."""
    m, k = c.modifiers, c.keys
    return bool(
        (k & {"w", "q"} and m & {"ctrl", "command"})
        or ("f4" in k and m & {"alt", "ctrl", "command"})
        or ("q" in k and "win" in m)
        or ({"ctrl", "alt"} <= m and k & {"delete", "backspace"})
        or ({"command", "alt"} <= m and "esc" in k)
        or ("command" in m and "shift" in m and "q" in k)
    )
