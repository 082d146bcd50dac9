"""The parser: tolerant of what real models emit, typed errors for everything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.actions import (
    ACTION_TYPES,
    HistoryBack,
    KeyPress,
    LeftClick,
    MemorizeFact,
    MouseMove,
    Parsed,
    ParseError,
    Scroll,
    Terminate,
    TypeText,
    VisitUrl,
    Wait,
    WebSearch,
    action_from_dict,
    format_call,
    parse,
)
from agent.geometry import Size

SIZE = Size(1428, 896)


def call(args: dict) -> str:
    return json.dumps({"name": "computer_use", "arguments": args})


@pytest.mark.parametrize("text, expected", [
    (f"I click it.\n<tool_call>\n{call({'action': 'left_click', 'coordinate': [10, 20]})}\n</tool_call>",
     LeftClick((10, 20))),
    # no newlines around the tags
    (f"Click.<tool_call>{call({'action': 'left_click', 'coordinate': [10, 20]})}</tool_call>",
     LeftClick((10, 20))),
    # python-literal dict with single quotes and True
    ("Type.\n<tool_call>\n{'name': 'computer_use', 'arguments': {'action': 'type', 'text': 'hi', "
     "'coordinate': [5, 6], 'press_enter': False}}\n</tool_call>",
     TypeText("hi", (5, 6), press_enter=False)),
    # code fence inside the call, trailing text after it
    ("Go.\n<tool_call>\n```json\n" + call({"action": "visit_url", "url": "http://x.test"})
     + "\n```\n</tool_call>\nDone thinking.", VisitUrl("http://x.test")),
    # missing closing tag (output cut at the stop sequence)
    ("Back.\n<tool_call>\n" + call({"action": "history_back"}), HistoryBack()),
    # missing final brace as well
    ('Wait.\n<tool_call>\n{"name": "computer_use", "arguments": {"action": "wait", "time": 2}',
     Wait(2.0)),
    ("<tool_call>" + call({"action": "key", "keys": ["ctrl", "l"]}) + "</tool_call>",
     KeyPress(("ctrl", "l"))),
    ("<tool_call>" + call({"action": "key", "keys": "ctrl+shift+k"}) + "</tool_call>",
     KeyPress(("ctrl", "shift", "k"))),
    ("<tool_call>" + call({"action": "scroll", "pixels": -400}) + "</tool_call>", Scroll(-400.0)),
    ("<tool_call>" + call({"action": "web_search", "query": "oslo"}) + "</tool_call>",
     WebSearch("oslo")),
    ("<tool_call>" + call({"action": "pause_and_memorize_fact", "fact": "x"}) + "</tool_call>",
     MemorizeFact("x")),
    ("<tool_call>" + call({"action": "terminate", "status": "failure"}) + "</tool_call>",
     Terminate("failure")),
    ("<tool_call>" + call({"action": "mouse_move", "coordinate": "[3, 4]"}) + "</tool_call>",
     MouseMove((3, 4))),
    # the typed text holds the closing tag itself
    ("Type it.\n<tool_call>\n" + call({"action": "type", "text": "a </tool_call> b"}) + "\n</tool_call>",
     TypeText("a </tool_call> b")),
    # arguments given as a JSON string, as some servers do
    ('<tool_call>{"name": "computer_use", "arguments": "{\\"action\\": \\"history_back\\"}"}</tool_call>',
     HistoryBack()),
])
def test_accepts_what_models_emit(text: str, expected) -> None:
    result = parse(text, SIZE)
    assert isinstance(result, Parsed), result
    assert result.action == expected


def test_thoughts_are_the_text_before_the_call() -> None:
    result = parse("The search box is at the top.\n<tool_call>\n"
                   + call({"action": "left_click", "coordinate": [1, 2]}) + "\n</tool_call>", SIZE)
    assert isinstance(result, Parsed)
    assert result.thoughts == "The search box is at the top."


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   \n", "empty"),
    ("I think I am done.", "no <tool_call>"),
    ("<tool_call>not json at all</tool_call>", "not a JSON object"),
    ("<tool_call>" + call({"action": "fly"}) + "</tool_call>", "unknown action 'fly'"),
    ("<tool_call>" + call({"action": "left_click"}) + "</tool_call>", "missing coordinate"),
    ("<tool_call>" + call({"action": "left_click", "coordinate": [1]}) + "</tool_call>", "[x, y]"),
    ("<tool_call>" + call({"action": "left_click", "coordinate": [2000, 5]}) + "</tool_call>",
     "outside the 1428x896 image"),
    ("<tool_call>" + call({"action": "left_click", "coordinate": [-1, 5]}) + "</tool_call>", "outside"),
    ("<tool_call>" + call({"action": "type", "text": 5}) + "</tool_call>", "text must be a string"),
    ("<tool_call>" + call({"action": "type", "text": "a", "press_enter": "maybe"}) + "</tool_call>",
     "press_enter must be true or false"),
    ("<tool_call>" + call({"action": "key", "keys": []}) + "</tool_call>", "keys must be"),
    ("<tool_call>" + call({"action": "scroll", "pixels": "lots"}) + "</tool_call>", "pixels must be"),
    ("<tool_call>" + call({"action": "terminate", "status": "maybe"}) + "</tool_call>", "status"),
    ("<tool_call>" + call({"action": "wait", "time": -3}) + "</tool_call>", "negative"),
    ('<tool_call>{"name": "computer_use"}</tool_call>', "no arguments"),
    ("<tool_call>" + call({"coordinate": [1, 2]}) + "</tool_call>", "names no action"),
])
def test_refuses_with_a_short_typed_error(text: str, message: str) -> None:
    result = parse(text, SIZE)
    assert isinstance(result, ParseError)
    assert message in result.message
    assert len(result.message) < 120


def test_non_string_input_is_an_error_not_a_crash() -> None:
    assert isinstance(parse(None), ParseError)  # type: ignore[arg-type]


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_coord = st.tuples(st.integers(0, SIZE.width - 1), st.integers(0, SIZE.height - 1))
_key = st.sampled_from(["ctrl", "alt", "shift", "Enter", "Escape", "a", "F5", "PageDown", "cmd"])
actions = st.one_of(
    st.builds(LeftClick, _coord),
    st.builds(MouseMove, _coord),
    st.builds(TypeText, _text, st.one_of(st.none(), _coord), st.booleans(), st.booleans()),
    st.builds(KeyPress, st.lists(_key, min_size=1, max_size=3).map(tuple)),
    st.builds(Scroll, st.integers(-2000, 2000).filter(bool).map(float), st.one_of(st.none(), _coord)),
    st.builds(VisitUrl, _text),
    st.builds(WebSearch, _text),
    st.just(HistoryBack()),
    st.builds(MemorizeFact, _text),
    st.builds(Wait, st.integers(0, 60).map(float)),
    st.builds(Terminate, st.sampled_from(["success", "failure"])),
)
_thoughts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80).filter(
    # Code-fence markers are stripped from thoughts on purpose (models wrap calls in them).
    lambda t: "<tool_call>" not in t.lower() and "{" not in t and "```" not in t)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions, _thoughts)
def test_every_valid_call_round_trips(action, thoughts: str) -> None:
    result = parse(format_call(thoughts, action), SIZE)
    assert isinstance(result, Parsed), result
    assert result.action == action
    assert result.thoughts == thoughts.strip()
    assert action_from_dict(action.arguments()) == action


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=300),
    st.builds(lambda a, b: a + "<tool_call>" + b, st.text(max_size=50), st.text(max_size=200)),
    st.builds(lambda obj: "<tool_call>" + json.dumps(obj) + "</tool_call>",
              st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                           lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.sampled_from(["name", "arguments", "action", "coordinate",
                                                               "text", "keys", "pixels", "status"]),
                                             c, max_size=4), max_leaves=12)),
))
def test_nothing_escapes_the_parser(text: str) -> None:
    result = parse(text, SIZE)
    assert isinstance(result, (Parsed, ParseError))
    if isinstance(result, Parsed):
        assert type(result.action) in ACTION_TYPES.values()
