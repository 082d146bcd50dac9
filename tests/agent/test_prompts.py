"""The Fara prompt: exact structure, valid schema, the 3-screenshot window, pruning order."""

from __future__ import annotations

import json
import re

from PIL import Image

from agent.actions import ACTION_TYPES, LeftClick, format_call
from agent.geometry import Size
from agent.inference.base import count_images
from agent.prompts import Turn, get_family

SIZE = Size(1428, 896)


def img(shade: int) -> Image.Image:
    return Image.new("RGB", (SIZE.width, SIZE.height), (shade, shade, shade))


def test_system_prompt_has_tools_block_with_valid_schema_and_resolution() -> None:
    prompt = get_family().system_prompt(SIZE)
    match = re.search(r"<tools>\n(.*)\n</tools>", prompt, re.S)
    assert match, prompt
    lines = match.group(1).splitlines()
    assert len(lines) == 1  # one JSON function schema per line
    schema = json.loads(lines[0])
    fn = schema["function"]
    assert fn["name"] == "computer_use"
    assert "The screen's resolution is 1428x896." in fn["description"]
    assert set(fn["parameters"]["properties"]["action"]["enum"]) == set(ACTION_TYPES)
    assert fn["parameters"]["required"] == ["action"]
    assert "<tool_call>" in prompt and "</tool_call>" in prompt
    assert "critical point" in prompt.lower()


def test_first_turn_is_screenshot_then_task() -> None:
    messages, images = get_family().build("Find a flight", [], img(0), SIZE)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == [{"type": "image"}, {"type": "text", "text": "Find a flight"}]
    assert len(images) == 1 and count_images(messages) == 1


def _history(n: int) -> list[Turn]:
    return [Turn(img(i + 1), format_call(f"step {i}", LeftClick((i, i))), url=f"http://site/{i}")
            for i in range(n)]


def test_window_keeps_three_newest_screenshots_and_the_task() -> None:
    family = get_family()
    history = _history(5)
    current = img(200)
    messages, images = family.build("Find a flight", history, current, SIZE, url="http://site/now")
    assert len(images) == 3 and count_images(messages) == 3
    assert images == [history[3].image, history[4].image, current]
    # task text kept, its image dropped
    assert messages[1] == {"role": "user", "content": [{"type": "text", "text": "Find a flight"}]}
    roles = [m["role"] for m in messages]
    # every assistant turn stays; only the last 3 user observation turns remain (with images)
    assert roles.count("assistant") == 5
    assert roles == ["system", "user", "assistant", "assistant", "assistant", "user",
                     "assistant", "user", "assistant", "user"]
    last = messages[-1]["content"]
    assert last[0] == {"type": "image"}
    assert last[1]["text"].startswith("Current URL: http://site/now")


def test_url_line_is_cut_to_100_chars_and_omitted_when_unknown() -> None:
    family = get_family()
    long_url = "http://x/" + "a" * 200
    messages, _ = family.build("t", _history(1), img(9), SIZE, url=long_url)
    text = messages[-1]["content"][1]["text"]
    assert ("Current URL: " + long_url[:100] + "\n") in text
    messages, _ = family.build("t", _history(1), img(9), SIZE, url=None)
    assert "URL" not in messages[-1]["content"][1]["text"]


def test_two_steps_keep_all_images() -> None:
    messages, images = get_family().build("t", _history(2), img(9), SIZE)
    assert len(images) == 3
    assert messages[1]["content"][0] == {"type": "image"}
