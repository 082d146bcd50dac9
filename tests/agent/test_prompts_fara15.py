"""The Fara1.5 prompt family: its data, history policy, modes, parsing, and how a run picks it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from agent.actions import (
    HScroll,
    LeftClick,
    ParseError,
    Scroll,
    Terminate,
    VisitUrl,
    format_call,
)
from agent.geometry import Size
from agent.inference.base import ScriptedBackend
from agent.inference.factory import ModelKind, ModelSpec, build_backend
from agent.loop import RunConfig, RunStatus, run_task
from agent.options import Mode, RunOptions
from agent.paths import asset
from agent.prompts import Fara15Family, FaraFamily, Turn, family_of_folder, get_family
from agent.safety import Gate
from tests.support.fakes import FakeScreen, RecordingExecutor

SIZE = Size(1440, 896)
DATA = json.loads(Path(asset("prompts", "fara15.json")).read_text(encoding="utf-8"))
NEXT = "Here is the next screenshot. Think about what to do next."

# Every guessed string: a change to this list must be deliberate (the weights' owner corrects
# the value in assets/prompts/fara15.json and removes the key there and here).
UNVERIFIED = [
    "display_size", "preamble", "call_instructions", "tools_open", "tools_close",
    "tool.description_lines", "tool.parameter_descriptions", "modes.browser.instructions",
    "modes.browser.actions", "modes.desktop.instructions", "modes.desktop.actions",
    "modes.desktop.url_line",
]


def img(value: int, size: Size = SIZE) -> Image.Image:
    return Image.new("RGB", (size.width, size.height), (value, value, value))


def _at(data: dict, dotted: str):
    for part in dotted.split("."):
        data = data[part]
    return data


def texts(message: dict) -> str:
    return "".join(p.get("text", "") for p in message["content"])


def test_unverified_strings_are_listed_and_exist() -> None:
    assert DATA["unverified"] == UNVERIFIED
    for key in UNVERIFIED:
        assert _at(DATA, key)  # names a real, non-empty value


def test_facts_read_from_the_public_agent() -> None:
    assert DATA["resize"] == {"factor": 32, "min_pixels": 3136, "max_pixels": 12845056}
    assert DATA["viewport"] == {"width": 1440, "height": 900}
    assert DATA["max_images"] == 3 and DATA["url_max_chars"] == 100
    assert DATA["next_turn"] == NEXT
    assert DATA["modes"]["browser"]["url_line"] == "Current URL: {url}"
    family = Fara15Family.load()
    assert family.model_size(Size(1440, 900)) == Size(1440, 896)  # factor 32, not 28


def test_first_message_is_the_screenshot_then_the_task() -> None:
    messages, images = Fara15Family.load().build("Find a flight", [], img(0), SIZE)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == [{"type": "image"}, {"type": "text", "text": "Find a flight"}]
    assert len(images) == 1


def _history(n: int, reply_at: int | None = None) -> list[Turn]:
    return [Turn(img(i + 1), f"reply {i}", f"https://site/{i}",
                 user_reply="Use my work address" if i == reply_at else None) for i in range(n)]


def test_three_screenshots_kept_task_and_user_reply_keep_their_text() -> None:
    family = Fara15Family.load()
    messages, images = family.build("Book it", _history(5, reply_at=0), img(9), SIZE, "https://now")
    assert len(images) == 3 and images[-1].getpixel((0, 0)) == (9, 9, 9)
    users = [m for m in messages if m["role"] == "user"]
    assert texts(users[0]) == "Book it"                  # the task, image pruned
    assert texts(users[1]) == "Use my work address"      # the answer, image pruned, no URL line
    assert texts(users[-1]) == f"Current URL: https://now\n{NEXT}"
    assert len(users) == 2 + 3                            # other pruned turns are gone
    assert [m["content"][0]["type"] for m in users[2:]] == ["image"] * 3
    assert [m for m in messages if m["role"] == "assistant"][-1] == {
        "role": "assistant", "content": [{"type": "text", "text": "reply 4"}]}


def test_a_kept_user_reply_replaces_the_fixed_line_and_urls_are_trimmed() -> None:
    family = Fara15Family.load()
    long_url = "https://example.com/" + "a" * 200
    messages, _ = family.build("t", _history(1, reply_at=0), img(9), SIZE, long_url)
    assert texts(messages[-1]) == f"Current URL: {long_url[:100]}\nUse my work address"


def test_desktop_mode_has_its_own_prompt_and_action_set() -> None:
    browser, desktop = get_family("fara15"), get_family("fara15", mode="desktop")
    assert browser.system_prompt() != desktop.system_prompt()
    assert "visit_url" in browser.actions and "visit_url" not in desktop.actions
    call = format_call("Open it.", VisitUrl("https://example.com"))
    assert isinstance(browser.parse(call, SIZE).action, VisitUrl)
    refused = desktop.parse(call, SIZE)
    assert isinstance(refused, ParseError)


def test_coordinates_and_scrolls_arrive_in_model_pixels() -> None:
    family = Fara15Family.load()
    click = family.parse(format_call("Click.", LeftClick((500, 250))), SIZE).action
    assert click == LeftClick((720, 224))  # 1000-grid -> 1440x896 image
    edge = family.parse(format_call("Click.", LeftClick((999, 999))), SIZE).action
    assert edge.coordinate == (1439, 895)
    scroll = family.parse(format_call("Down.", Scroll(-500)), SIZE).action
    assert scroll.pixels == pytest.approx(-500 * 896 / 1000)
    h = family.parse(format_call("Right.", HScroll(500)), SIZE).action
    assert h.pixels == pytest.approx(500 * 1440 / 1000)


def test_fara7b_is_unchanged() -> None:
    family = get_family("fara", mode="desktop")
    assert isinstance(family, FaraFamily)
    assert family.parse(format_call("Click.", LeftClick((500, 250))), SIZE).action == LeftClick((500, 250))
    assert family.model_size(Size(1440, 900)) == Size(1428, 896)
    assert RunConfig().mode is Mode.BROWSER and RunOptions().mode is Mode.BROWSER
    with pytest.raises(ValueError):
        get_family("fara2")


def _folder(tmp_path: Path, **files: dict) -> Path:
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    return tmp_path


@pytest.mark.parametrize(("files", "family"), [
    ({}, "fara"),
    ({"config": {"model_type": "qwen2_5_vl"}}, "fara"),
    ({"config": {"model_type": "qwen3_5"}}, "fara15"),
    ({"genai_config": {"model": {"type": "fara"}}, "deskhand": {"model_type": "fara"}}, "fara"),
    ({"genai_config": {"model": {"type": "fara"}}, "deskhand": {"family": "fara15"}}, "fara15"),
    ({"deskhand": {"model_type": "qwen3_5"}}, "fara15"),
])
def test_family_is_read_from_the_model_folder(tmp_path: Path, files: dict, family: str) -> None:
    assert family_of_folder(_folder(tmp_path, **files)) == family


def test_the_factory_names_the_family_and_the_loop_prompts_with_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path, config={"model_type": "qwen3_5"}, genai_config={"model": {}})
    seen: list = []

    class Seeing(ScriptedBackend):
        def _generate(self, request):
            seen.append(request.messages)
            return super()._generate(request)

    reply = format_call("Done.", Terminate("success"))
    backend = build_backend(ModelSpec(ModelKind.ONNX, str(folder)),
                            host=lambda _folder, _provider: Seeing([reply]))
    assert backend.family == "fara15"
    executor = RecordingExecutor()
    result = run_task("Do it", backend=backend, screen=FakeScreen(), executor=executor,
                      gate=Gate("never"), config=RunConfig(mode=Mode.DESKTOP))
    assert result.status is RunStatus.SUCCESS
    system = texts(seen[0][0])
    assert system == get_family("fara15", mode="desktop").system_prompt()
    fara_dir = tmp_path / "fara"
    fara_dir.mkdir()
    fara = build_backend(ModelSpec(ModelKind.ONNX, str(_folder(fara_dir, genai_config={}))),
                         host=lambda *_: ScriptedBackend([reply]))
    assert fara.family == "fara"
