"""What makes an action a critical point: word lists, key chords, the screen label, the window.

The confirmation gate (`agent/safety.py`) collects the facts of one action (what it does, the label
read on screen at its target, the model's words, the window title) and `assess` returns the
reasons to ask (typed-text detectors are in `agent/gate_text.py`). Every piece of text is folded
by `agent.textnorm` first. Word lists live in
`assets/safety/*.json`; a user adds words in the same format in `<config dir>/safety/*.json`
(`~/.config/deskhand/safety/` on Linux), which can add entries, never delete built-in ones.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import json
import logging
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from agent.actions import CLICKS, Action, Drag, KeyPress, TypeText, VisitUrl, WebSearch
from agent.gate_text import is_read_only_command, looks_like_card, looks_like_iban, shell_danger
from agent.keys import chord, closes_something, typed_character
from agent.paths import asset, config_dir
from agent.textnorm import LINE_BREAKS, fold, views

log = logging.getLogger(__name__)

_LETTER = r"[^\W\d_]"
_LIST_KEYS = ("risky", "benign", "fields", "affirmative", "deny_titles", "terminals", "file_managers")


class Label(Protocol):
    """What was read on screen at the target (`agent.screen_label.TargetLabel`)."""

    text: str
    role: str
    source: str


@dataclasses.dataclass(frozen=True)
class Rules:
    """Compiled word lists of every language, built-in and the user's."""

    risky: re.Pattern[str]
    benign: re.Pattern[str] | None
    fields: re.Pattern[str]
    affirmative: frozenset[str]
    deny_titles: tuple[str, ...]
    terminals: re.Pattern[str]
    file_managers: re.Pattern[str]


def _pattern(entries: Iterable[str]) -> re.Pattern[str]:
    """One regex for word entries: `stem*` continues with letters; a space matches any separators
    or none."""
    alternatives = []
    for entry in sorted({fold(e).strip() for e in entries if e.strip()}, key=len, reverse=True):
        words = []
        for word in entry.split():
            stem = word.endswith("*")
            word = re.escape(word.rstrip("*")).replace("'", "['\\s]?")
            words.append(word + (f"{_LETTER}*" if stem else ""))
        # Words of a phrase may be run together ("addtocart", "buy\u2060now" shows as "buynow").
        alternatives.append(r"[\W_]*".join(words))
    body = "|".join(alternatives) or r"(?!x)x"
    return re.compile(rf"(?<!{_LETTER})(?:{body})(?!{_LETTER})")


def _read_lists(path: Path, into: dict[str, list[str]]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for key in _LIST_KEYS:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{key!r} must be a list of strings")
        into[key].extend(values)


def user_rules_dir() -> Path:
    """Where a user's extra word lists go (same format as assets/safety/*.json)."""
    return config_dir() / "safety"


@functools.lru_cache(maxsize=4)
def load_rules(user_dir: Path | None = None) -> Rules:
    """Built-in lists plus the user's; a broken user file is skipped (logged), never fatal."""
    lists: dict[str, list[str]] = {k: [] for k in _LIST_KEYS}
    for path in sorted(asset("safety").glob("*.json")):
        _read_lists(path, lists)  # a broken shipped file is our bug: raise
    if user_dir is not None and user_dir.is_dir():
        for path in sorted(user_dir.glob("*.json")):
            extra: dict[str, list[str]] = {k: [] for k in _LIST_KEYS}
            try:
                _read_lists(path, extra)
            except (OSError, ValueError) as exc:
                log.warning("ignoring the safety word list %s: %s", path, exc)
                continue
            for key, values in extra.items():
                lists[key].extend(values)
    return Rules(
        risky=_pattern(lists["risky"]),
        benign=_pattern(lists["benign"]) if lists["benign"] else None,
        fields=_pattern(lists["fields"]),
        affirmative=frozenset(fold(a).strip() for a in lists["affirmative"]),
        deny_titles=tuple(dict.fromkeys(fold(t).strip() for t in lists["deny_titles"] if t.strip())),
        terminals=_pattern(lists["terminals"]),
        file_managers=_pattern(lists["file_managers"]),
    )


def default_rules() -> Rules:
    """The rules in effect: shipped lists plus the user's folder."""
    try:
        user = user_rules_dir()
    except Exception:  # no platformdirs or no home: the built-in lists still apply
        user = None
    return load_rules(user)


def find_words(text: str, pattern: re.Pattern[str], benign: re.Pattern[str] | None = None) -> list[str]:
    """Folded matches of `pattern` in every reading of `text`, minus those inside a benign phrase."""
    found: list[str] = []
    for view in views(text):
        spans = [m.span() for m in benign.finditer(view)] if benign is not None else []
        starts = [s for s, _ in spans]  # benign matches do not overlap: sorted by start and end
        for m in pattern.finditer(view):
            i = bisect.bisect_right(starts, m.start()) - 1
            if i >= 0 and m.end() <= spans[i][1]:
                continue
            word = re.sub(r"[\W_]+", " ", m.group(0)).strip()
            if word not in found:
                found.append(word)
    return found


# -- windows -------------------------------------------------------------------------------

_PROMPT_TITLE = re.compile(r"\b[\w.-]{1,64}@[\w.-]{1,64}:")


def looks_like_terminal(title: str, rules: Rules) -> bool:
    """The window title names a terminal emulator or a shell prompt (user@host:)."""
    return bool(find_words(title, rules.terminals)) or bool(_PROMPT_TITLE.search(fold(title)))


# -- the decision ----------------------------------------------------------------------------

# Roles (AT-SPI names) of controls that commit nothing when clicked or typed into.
_INERT_ROLES = frozenset({"check box", "radio button", "combo box", "list item", "page tab", "entry",
                          "text", "heading", "spin button", "slider", "scroll bar", "label",
                          "table cell", "tree item", "menu"})
_ITEM_ROLES = ("icon", "list item", "table cell", "tree item", "table row", "canvas", "layered pane")
_TOOL_CALL_KEYS = re.compile(r"delete_existing_text|press_enter|computer_use|left_click|mouse_move|"
                             r"visit_url|web_search|history_back|pause_and_memorize_fact")


@dataclasses.dataclass(frozen=True)
class Facts:
    """Everything the gate knows about one action."""

    action: Action
    thoughts: str = ""
    model_text: str = ""        # the whole model reply, also what follows the tool call
    title: str = ""             # the focused window's title
    label: Label | None = None  # what was read on screen where the action lands
    pending: str = ""           # text typed since the last submit (for a later bare Enter)
    platform: str | None = None


def _quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _affirmative(text: str, rules: Rules) -> bool:
    core = re.sub(r"[\W_]+", " ", fold(text)).strip()
    return core in rules.affirmative


def _typed_risks(text: str, rules: Rules, what: str) -> list[str]:
    out: list[str] = []
    words = find_words(text, rules.risky, rules.benign)
    if words:
        out.append(f"{what} mentions {', '.join(words)}")
    if looks_like_card(text):
        out.append(f"{what} looks like a payment card number")
    if looks_like_iban(text):
        out.append(f"{what} looks like a bank account number (IBAN)")
    danger = shell_danger(text)
    if danger:
        out.append(f"{what} is a shell command ({danger})")
    return out


def _label_text(label: Label | None) -> str:
    return (getattr(label, "text", "") or "") if label is not None else ""


def _label_role(label: Label | None) -> str:
    return fold(getattr(label, "role", "") or "") if label is not None else ""


# Longer text is not scanned: it is a reason to ask by itself (and bounds the gate's time).
MAX_SCAN = 10_000


@dataclasses.dataclass(frozen=True)
class _Cut:
    text: str
    role: str
    source: str


def assess(f: Facts, rules: Rules) -> list[str]:
    """The reasons this action is a critical point (empty when it is not)."""
    a = f.action
    pieces = {"the thoughts": f.thoughts, "the model's reply": f.model_text, "the window title": f.title,
              "the label read on screen": _label_text(f.label),
              "the typed text": f.pending + getattr(a, "text", ""),
              "the URL": getattr(a, "url", ""), "the search": getattr(a, "query", "")}
    too_long = [f"{what} is too long to check ({len(text)} characters)"
                for what, text in pieces.items() if isinstance(text, str) and len(text) > MAX_SCAN]
    if too_long:
        cut = {k: getattr(a, k)[:MAX_SCAN] for k in ("text", "url", "query") if hasattr(a, k)}
        label = None if f.label is None else _Cut(_label_text(f.label)[:MAX_SCAN], _label_role(f.label), "")
        f = dataclasses.replace(f, action=dataclasses.replace(a, **cut), thoughts=f.thoughts[:MAX_SCAN],
                                model_text=f.model_text[:MAX_SCAN], title=f.title[:MAX_SCAN], label=label,
                                pending=f.pending[-MAX_SCAN:])
    return too_long + _assess(f, rules)


def _assess(f: Facts, rules: Rules) -> list[str]:
    a = f.action
    out: list[str] = []
    label, role = _label_text(f.label), _label_role(f.label)
    label_words = find_words(label, rules.risky, rules.benign) if label else []
    field_words = find_words(label, rules.fields, rules.benign) if label else []
    terminal = looks_like_terminal(f.title, rules)
    on_label = f"the target on screen reads {_quote(label)}"

    submits = isinstance(a, TypeText) and (a.press_enter or any(b in a.text for b in LINE_BREAKS))
    # The accessibility tree names the exact element that receives a click: when that is a
    # harmless control that cannot commit anything by itself (a check box, a tab, a text field)
    # the click or typing is judged by it, not by what the model says around it.
    inert = (isinstance(a, CLICKS) or (isinstance(a, TypeText) and not submits)) and bool(label) \
        and getattr(f.label, "source", "") == "atspi" and role in _INERT_ROLES and not label_words
    if isinstance(a, (*CLICKS, Drag, TypeText, KeyPress, VisitUrl, WebSearch)) and not inert:
        words = find_words(f.thoughts, rules.risky, rules.benign)
        if words:
            out.append("the thoughts mention " + ", ".join(words))
        extra = _TOOL_CALL_KEYS.sub(" ", f.model_text or "")
        more = [w for w in find_words(extra, rules.risky, rules.benign) if w not in words]
        if more:
            out.append("the model's reply mentions " + ", ".join(more))

    if isinstance(a, (*CLICKS, Drag)) and label_words:  # a drag is judged where it drops
        out.append(f"{on_label} ({', '.join(label_words)})")

    elif isinstance(a, TypeText):
        # Typing continues what was typed before into the same field: "4111 1111" + "1111 1111".
        out += _typed_risks(f.pending + a.text, rules, "the typed text")
        if "password" in role:
            out.append("types into a password field")
        if field_words:
            out.append(f"types into a field labelled {_quote(label)} ({', '.join(field_words)})")
        if submits:
            if label_words:
                out.append(f"presses Enter in a field whose label reads {_quote(label)} "
                           f"({', '.join(label_words)})")
            if "\t" in a.text:
                out.append("presses Tab and then Enter, which submits whatever Tab moved the focus to")
            if _affirmative(a.text, rules):
                out.append(f"answers {_quote(a.text)} and presses Enter, which confirms a prompt")
            if terminal and not is_read_only_command(a.text):
                out.append(f"runs {_quote(a.text)} as a command in a terminal ({_quote(f.title)})")

    elif isinstance(a, KeyPress):
        out += _key_risks(a, f, rules, label, role, label_words, terminal)

    elif isinstance(a, VisitUrl):
        out += _url_risks(a.url, rules)

    elif isinstance(a, WebSearch):
        words = find_words(a.query, rules.risky, rules.benign)
        if words:
            out.append("the search mentions " + ", ".join(words))
    return out


def _key_risks(a: KeyPress, f: Facts, rules: Rules, label: str, role: str,
               label_words: list[str], terminal: bool) -> list[str]:
    c = chord(a.keys, f.platform)
    if c is None:
        return []
    out: list[str] = []
    focus = f"the focused element reads {_quote(label)}" if label else ""
    if closes_something(c):
        out.append(f"closes a window or quits an application ({c.text})")
    if "enter" in c.keys:
        if c.modifiers - {"shift"}:
            out.append(f"{c.text} sends or submits in most applications")
        elif not c.modifiers:
            if label_words:
                out.append(f"presses Enter where {focus} ({', '.join(label_words)})")
            if "password" in role:
                out.append("presses Enter in a password field")
            if f.pending:
                out += _typed_risks(f.pending, rules, "the text it submits")
                if _affirmative(f.pending, rules):
                    out.append(f"presses Enter after typing {_quote(f.pending)}, which confirms a prompt")
            if terminal and not is_read_only_command(f.pending):
                out.append(f"presses Enter in a terminal ({_quote(f.title)}) on the line "
                           f"{_quote(f.pending) if f.pending else '(not known)'}")
            elif not label.strip() and not f.pending:
                out.append("presses Enter, and nothing read on screen shows what it submits")
    if "delete" in c.keys or ("backspace" in c.keys and "command" in c.modifiers):
        if "shift" in c.modifiers:
            out.append(f"{c.text} deletes permanently (past the trash)")
        elif {"ctrl", "shift"} <= c.modifiers or find_words(f.title, rules.file_managers) \
                or any(r in role for r in _ITEM_ROLES) or label_words or "command" in c.modifiers:
            out.append(f"{c.text} deletes the selected item"
                       + (f" in {_quote(f.title)}" if f.title else ""))
    typed = typed_character(c)
    if typed and looks_like_card(f.pending + typed):
        out.append("the keys typed one by one make a payment card number")
    if "space" in c.keys and not c.modifiers and label_words:
        out.append(f"presses Space, which activates the focused element; {focus}")
    return out


def _url_risks(url: str, rules: Rules) -> list[str]:
    out: list[str] = []
    text = url
    for _ in range(3):  # percent-encoding can be nested
        decoded = urllib.parse.unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    folded = fold(text).strip()
    # Browsers drop tabs and line breaks anywhere in a URL ("java\tscript:" runs as javascript:).
    compact = re.sub(r"[\x00-\x20\x7f]", "", folded)
    scheme = compact.split(":", 1)[0] if ":" in compact else ""
    if scheme in ("javascript", "data", "vbscript"):
        out.append(f"opens a {scheme}: URL, which runs what it contains")
    parts = urllib.parse.urlsplit(folded)
    readable = " ".join(re.split(r"[\W_]+", f"{parts.path} {parts.query} {parts.fragment}"))
    words = find_words(readable, rules.risky, rules.benign)
    if words:
        out.append("the URL mentions " + ", ".join(words))
    return out


def deny_listed(title: str, user_titles: Iterable[str], rules: Rules) -> str | None:
    """The deny-list entry the window title contains (user's or built-in), or None."""
    # Spaces are ignored on both sides: "Online\u200bBanking" shows as one word once folded.
    folded = re.sub(r"\s+", "", fold(title))
    for pattern in (*{fold(t).strip() for t in user_titles if t.strip()}, *rules.deny_titles):
        if pattern and re.sub(r"\s+", "", pattern) in folded:
            return pattern
    return None
