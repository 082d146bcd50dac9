"""The tool-call marker has one owner (agent/tool_call.py): the parser and the app's streamed
thoughts split a reply the same way, including a tag that is still half-streamed."""

from __future__ import annotations

import pytest

from agent.actions import TOOL_CALL_OPEN, LeftClick, Parsed, format_call, parse, split_thoughts


@pytest.mark.parametrize("open_tag", [TOOL_CALL_OPEN, "<TOOL_CALL>", "<Tool_Call>"])
def test_the_app_shows_the_thoughts_the_parser_reads(open_tag: str) -> None:
    from app.thoughts import visible_thoughts

    reply = format_call("Click the blue button.", LeftClick((10, 20))).replace(TOOL_CALL_OPEN, open_tag)
    parsed = parse(reply)
    assert isinstance(parsed, Parsed)
    assert visible_thoughts(reply) == parsed.thoughts == "Click the blue button."


def test_a_half_streamed_tag_is_held_back_whatever_its_case() -> None:
    from app.thoughts import visible_thoughts

    for n in range(1, len(TOOL_CALL_OPEN)):
        assert split_thoughts("Thinking. " + TOOL_CALL_OPEN[:n]) == ("Thinking. ", TOOL_CALL_OPEN[:n])
        assert visible_thoughts("Thinking. " + TOOL_CALL_OPEN[:n].upper()) == "Thinking. "
    assert split_thoughts("a < b") == ("a < b", "")
    assert split_thoughts("") == ("", "")


def test_the_rest_starts_at_the_marker() -> None:
    reply = format_call("Go.", LeftClick((1, 2)))
    thoughts, rest = split_thoughts(reply)
    assert thoughts == "Go." and rest.startswith(TOOL_CALL_OPEN) and reply.endswith(rest)
