"""Fara1.5's wider action set: typed, round-tripped, refused as model mistakes, Fara-7B unchanged."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.actions import (
    ACTION_TYPES,
    ALL_ACTIONS,
    FARA7B_ACTIONS,
    FARA15_ACTIONS,
    AskUser,
    DoubleClick,
    Drag,
    HScroll,
    LeftClick,
    Parsed,
    ParseError,
    ReadPage,
    RightClick,
    TripleClick,
    TypeText,
    action_from_dict,
    describe,
    format_call,
    parse,
)
from agent.geometry import Size

SIZE = Size(1428, 896)
F15 = FARA15_ACTIONS


def call(arguments: dict) -> str:
    return "<tool_call>" + json.dumps({"name": "computer_use", "arguments": arguments}) + "</tool_call>"


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_coord = st.tuples(st.integers(0, SIZE.width - 1), st.integers(0, SIZE.height - 1))
_question = _text.filter(lambda t: t.strip())
new_actions = st.one_of(
    st.builds(DoubleClick, _coord), st.builds(TripleClick, _coord), st.builds(RightClick, _coord),
    st.builds(Drag, _coord, st.one_of(st.none(), _coord)),
    st.builds(HScroll, st.integers(-2000, 2000).filter(bool).map(float), st.one_of(st.none(), _coord)),
    st.builds(AskUser, _question), st.builds(ReadPage, _question),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(new_actions, _text.filter(lambda t: "<tool_call>" not in t.lower() and "{" not in t
                                 and "```" not in t))
def test_every_new_action_round_trips(action, thoughts: str) -> None:
    result = parse(format_call(thoughts, action), SIZE, actions=F15)
    assert isinstance(result, Parsed), result
    assert result.action == action
    assert action_from_dict(action.arguments()) == action  # a recorded Fara1.5 step reads back
    assert describe(action)


def test_fara7b_set_is_unchanged_and_refuses_the_new_actions() -> None:
    assert ACTION_TYPES is FARA7B_ACTIONS
    assert list(FARA7B_ACTIONS) == ["left_click", "mouse_move", "type", "key", "scroll", "visit_url",
                                    "web_search", "history_back", "pause_and_memorize_fact", "wait",
                                    "terminate"]
    result = parse(call({"action": "double_click", "coordinate": [5, 5]}), SIZE)
    assert isinstance(result, ParseError) and "unknown action 'double_click'" in result.message


def test_fara15_set_has_every_action_of_the_issue() -> None:
    assert set(F15) == {"left_click", "double_click", "right_click", "triple_click", "left_click_drag",
                        "mouse_move", "type", "key", "scroll", "hscroll", "visit_url", "web_search",
                        "history_back", "wait", "pause_and_memorize_fact", "ask_user_question",
                        "read_page_answer_question", "terminate"}
    assert set(ALL_ACTIONS) == set(F15) | set(FARA7B_ACTIONS)


def test_drag_from_the_pointer_or_from_a_start() -> None:
    from_pointer = parse(call({"action": "left_click_drag", "coordinate": [10, 20]}), SIZE, actions=F15)
    assert isinstance(from_pointer, Parsed) and from_pointer.action == Drag((10, 20))
    both = parse(call({"action": "left_click_drag", "start_coordinate": [1, 2], "coordinate": [3, 4]}),
                 SIZE, actions=F15)
    assert isinstance(both, Parsed) and both.action == Drag((3, 4), (1, 2))
    assert both.action.target == (3, 4)  # the gate reads the label where the drag drops


def test_type_keeps_its_flags() -> None:
    result = parse(call({"action": "type", "text": "x", "coordinate": [5, 6], "press_enter": False,
                         "delete_existing_text": True}), SIZE, actions=F15)
    assert isinstance(result, Parsed)
    assert result.action == TypeText("x", (5, 6), False, True)


@pytest.mark.parametrize("arguments, message", [
    ({"action": "double_click"}, "missing coordinate"),
    ({"action": "triple_click", "coordinate": [1]}, "[x, y]"),
    ({"action": "right_click", "coordinate": [5000, 5]}, "outside the 1428x896 image"),
    ({"action": "left_click_drag"}, "missing coordinate"),
    ({"action": "left_click_drag", "coordinate": [5, 5], "start_coordinate": "nowhere"},
     "start_coordinate must be [x, y]"),
    ({"action": "left_click_drag", "coordinate": [5, 5], "start_coordinate": [-4, 5]}, "outside"),
    ({"action": "hscroll"}, "pixels must be a number"),
    ({"action": "hscroll", "pixels": float("nan")}, "pixels must be a number"),
    ({"action": "hscroll", "pixels": 5, "coordinate": [True, 3]}, "[x, y]"),
    ({"action": "ask_user_question"}, "question must be a string"),
    ({"action": "ask_user_question", "question": "  "}, "question must not be empty"),
    ({"action": "ask_user_question", "question": ["a"]}, "question must be a string"),
    ({"action": "read_page_answer_question", "question": None}, "question must be a string"),
    ({"action": "read_page_answer_question", "question": 3}, "question must be a string"),
])
def test_bad_arguments_are_parse_errors(arguments: dict, message: str) -> None:
    result = parse(call(arguments), SIZE, actions=F15)
    assert isinstance(result, ParseError), result
    assert message in result.message


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(
    st.sampled_from(["action", "coordinate", "start_coordinate", "coordinate2", "pixels", "question",
                     "text", "press_enter", "delete_existing_text"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
              st.sampled_from(list(F15)), st.lists(st.integers(-5, 2000), max_size=3)),
    max_size=5))
def test_nothing_escapes_the_parser_with_the_wider_set(arguments: dict) -> None:
    result = parse(call(arguments), SIZE, actions=F15)
    assert isinstance(result, (Parsed, ParseError))
    if isinstance(result, Parsed):
        assert type(result.action) in F15.values()


def test_new_names_describe_for_people() -> None:
    assert describe(RightClick((3, 4))) == "right-click at (3, 4)"
    assert describe(HScroll(-5.0)) == "scroll left"
    assert describe(Drag((3, 4), (1, 2))) == "drag from (1, 2) to (3, 4)"
    assert describe(AskUser("Which size?")) == "ask you: 'Which size?'"
    assert describe(LeftClick((1, 1))) == "click at (1, 1)"
