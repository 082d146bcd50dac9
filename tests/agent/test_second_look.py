"""The second look before acting on a point (agent.second_look): what the model is shown, where
its second point lands on the real screen, what it cannot change, and how it fails safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from agent.actions import LeftClick, RightClick, Scroll, Terminate, TypeText, format_call
from agent.geometry import Monitor, Point, ScreenMapping, Size, Space
from agent.inference.base import BackendError, ScriptedBackend
from agent.loop import PHASES, RunConfig, RunStatus, run_task
from agent.prompts import PROMPT_FILE, SecondLook, declared_second_look, get_family
from agent.safety import Gate
from agent.second_look import look_again, region_around
from tests.support.fakes import FakeScreen, RecordingExecutor

TARGET = (1337, 611, 1357, 623)  # a 20x12-pixel red "button" on a 1920x1080 screen
RED = (230, 20, 20)
REGION = Size(640, 400)
LOOK = SecondLook(REGION)  # one look, at the centred region
FAMILY = get_family("fara15")  # answers in the 1000-unit display grid, like Nano


class TargetScreen(FakeScreen):
    """The fake screen with one small red target; `left`/`top` move the monitor."""

    def image(self, n: int | None = None) -> Image.Image:
        img = super().image(n)
        ImageDraw.Draw(img).rectangle((TARGET[0], TARGET[1], TARGET[2] - 1, TARGET[3] - 1), fill=RED)
        return img


def _reply(action, size: Size) -> str:
    """What a Fara1.5-family model writes for `action` (MODEL pixels of a `size` image)."""
    return format_call("", FAMILY.from_model(action, size))


def _red_centre(image: Image.Image) -> tuple[int, int] | None:
    red = [(x, y) for y in range(image.height) for x in range(image.width)
           if _is_red(image.getpixel((x, y)))]
    if not red:
        return None
    xs, ys = [p[0] for p in red], [p[1] for p in red]
    return (min(xs) + max(xs)) // 2, (min(ys) + max(ys)) // 2


def _is_red(pixel) -> bool:
    r, g, b = pixel[:3]
    return r > 150 and g < 110 and b < 110


def _off_target(messages, images) -> str:
    """A coarse first point: 30 screen pixels above the target (a small model's usual miss)."""
    size = Size(*images[-1].size)
    x = (TARGET[0] + TARGET[2]) / 2 * size.width / 1920
    y = (TARGET[1] - 30) * size.height / 1080
    return _reply(LeftClick((round(x), round(y))), size)


def _precise(messages, images) -> str:
    """A precise second point: the centre of the red it is shown."""
    size = Size(*images[-1].size)
    centre = _red_centre(images[-1])
    assert centre is not None, "the region shown does not hold the target"
    return _reply(LeftClick(centre), size)


def _run(replies, *, region: SecondLook | None = LOOK, second_look: bool = True, screen=None):
    backend = ScriptedBackend(replies)
    backend.family, backend.second_look = "fara15", region
    executor, steps = RecordingExecutor(), []
    result = run_task("Click the red button.", backend=backend, screen=screen or TargetScreen(),
                      executor=executor, gate=Gate("never"),
                      config=RunConfig(second_look=second_look), on_step=steps.append)
    return result, steps, executor, backend


def _inside(point) -> bool:
    return TARGET[0] <= point[0] < TARGET[2] and TARGET[1] <= point[1] < TARGET[3]


def test_the_second_point_is_the_one_clicked_on_the_real_screen() -> None:
    done = format_call("Done.", Terminate("success"))
    result, steps, executor, backend = _run([_off_target, _precise, done])
    assert result.status is RunStatus.SUCCESS
    (_, point), = executor.performed
    assert _inside(point), point
    # The model was shown the region around its first point, nearer its size, with no history,
    # the same task and the family's system message.
    first, second = backend.calls[0], backend.calls[1]
    assert len(second[1]) == 1 and second[1][0].size != first[1][0].size
    assert Size(*second[1][0].size) == FAMILY.model_size(REGION)
    assert second[0][0] == first[0][0]
    assert "Click the red button." in json.dumps(second[0])
    # The step says so, and its record's action is in the step's own model space.
    assert "second look" in (steps[0].note or "") and steps[0].action != LeftClick((0, 0))
    assert steps[0].timings["look"] > 0 and set(PHASES) <= set(steps[0].timings)
    assert steps[0].mapping.model_to_input(*steps[0].action.coordinate, logical=False) == point


def test_without_a_declared_region_or_with_it_turned_off_the_model_is_asked_once() -> None:
    done = format_call("Done.", Terminate("success"))
    for kwargs in ({"region": None}, {"second_look": False}):
        result, steps, executor, backend = _run([_off_target, done], **kwargs)
        assert result.status is RunStatus.SUCCESS and len(backend.calls) == 2
        (_, point), = executor.performed
        assert not _inside(point) and "look" not in steps[0].timings
        assert set(PHASES) - {"look"} <= set(steps[0].timings)  # "look" only when one is taken


def test_a_monitor_away_from_the_origin_maps_the_second_point_onto_it() -> None:
    done = format_call("Done.", Terminate("success"))
    screen = TargetScreen(left=1920, top=-200)
    _, _, executor, _ = _run([_off_target, _precise, done], screen=screen)
    (_, (x, y)), = executor.performed
    assert _inside((x - 1920, y + 200)), (x, y)


@pytest.mark.parametrize("second", [
    format_call("", Terminate("success")),                       # not an action with a point
    format_call("", RightClick((10, 10))),                       # another kind of action
    format_call("", TypeText("rm -rf ~", coordinate=(10, 10))),  # ... that would type
    "no tool call at all",
])
def test_the_second_reply_cannot_change_what_is_done(second: str) -> None:
    done = format_call("Done.", Terminate("success"))
    result, steps, executor, _ = _run([_off_target, second, done])
    assert result.status is RunStatus.SUCCESS
    (action, point), = executor.performed
    assert isinstance(action, LeftClick) and not _inside(point)  # the first click, as it was
    assert "kept the first point" in steps[0].note


def test_typing_keeps_its_text_and_options_and_moves_only_its_point() -> None:
    def first(messages, images):
        size = Size(*images[-1].size)
        return _reply(TypeText("Oslo", coordinate=(round(1347 * size.width / 1920),
                                                   round(581 * size.height / 1080)),
                               press_enter=False, delete_existing_text=True), size)

    def second(messages, images):
        size = Size(*images[-1].size)
        return _reply(TypeText("something else", coordinate=_red_centre(images[-1]),
                               press_enter=True), size)

    _, _, executor, _ = _run([first, second, format_call("", Terminate("success"))])
    (action, point), = executor.performed
    assert _inside(point)
    assert action.text == "Oslo" and not action.press_enter and action.delete_existing_text


def test_a_failing_second_look_keeps_the_first_point() -> None:
    class Failing(ScriptedBackend):
        def _generate(self, request):
            if len(self.calls) == 1:
                self.calls.append((list(request.messages), list(request.images)))
                raise BackendError("out of memory")
            return super()._generate(request)

    backend = Failing([_off_target, "", format_call("", Terminate("success"))])
    mapping = ScreenMapping(Monitor(1, 0, 0, 1920, 1080), Size(1920, 1080), Size(512, 288))
    backend.calls.append(([], []))  # the first reply was taken
    look = look_again(backend, FAMILY, "t", TargetScreen().image(), mapping, LeftClick((100, 100)),
                      LOOK, max_new_tokens=64)
    assert look.action == LeftClick((100, 100)) and "out of memory" in look.note


def test_actions_without_a_point_to_choose_are_not_looked_at_again() -> None:
    backend = ScriptedBackend([])
    mapping = ScreenMapping(Monitor(1, 0, 0, 1920, 1080), Size(1920, 1080), Size(512, 288))
    for action in (Scroll(300, (50, 50)), TypeText("x"), Terminate("success")):
        look = look_again(backend, FAMILY, "t", TargetScreen().image(), mapping, action, LOOK,
                          max_new_tokens=64)
        assert look.action == action and look.note is None
    small = ScreenMapping(Monitor(1, 0, 0, 640, 400), Size(640, 400), Size(512, 320))
    look = look_again(backend, FAMILY, "t", Image.new("RGB", (640, 400)), small,
                      LeftClick((5, 5)), LOOK, max_new_tokens=64)  # the region is the screen
    assert look.note is None and not backend.calls


def test_the_region_stays_on_the_screenshot_at_its_corners() -> None:
    mapping = ScreenMapping(Monitor(1, 0, 0, 1366, 768), Size(1366, 768), Size(512, 288))
    assert region_around(mapping, (0, 0), REGION) == (0, 0, REGION)
    assert region_around(mapping, (511, 287), REGION) == (1366 - 640, 768 - 400, REGION)
    tiny = ScreenMapping(Monitor(1, 0, 0, 600, 300), Size(600, 300), Size(512, 256))
    assert region_around(tiny, (256, 128), REGION) == (0, 0, Size(600, 300))


def test_a_region_mapping_covers_the_same_physical_pixels() -> None:
    mapping = ScreenMapping(Monitor(2, 1920, -200, 2560, 1440, 2.0), Size(2560, 1440),
                            Size(1024, 576))
    part = mapping.region(1000, 500, REGION, Size(512, 320))
    corner = part.convert(Point(0, 0, Space.MODEL), Space.PHYSICAL)
    assert (corner.x, corner.y) == (2920, 300)
    end = part.convert(Point(512, 320, Space.MODEL), Space.SCREENSHOT)
    assert (end.x, end.y) == (640, 400)
    # A region point and the same screenshot pixel through the whole mapping agree.
    a = part.convert(Point(256, 160, Space.MODEL), Space.LOGICAL)
    b = mapping.convert(Point(1320, 700, Space.SCREENSHOT), Space.LOGICAL)
    assert (round(a.x, 6), round(a.y, 6)) == (round(b.x, 6), round(b.y, 6))


def test_a_folder_declares_its_region_strictly(tmp_path: Path) -> None:
    assert declared_second_look(tmp_path) is None
    (tmp_path / PROMPT_FILE).write_text(json.dumps({"system": "s"}))
    assert declared_second_look(tmp_path) is None
    (tmp_path / PROMPT_FILE).write_text(json.dumps({"system": "s", "second_look": [640, 400]}))
    assert declared_second_look(tmp_path) == SecondLook(Size(640, 400))
    nine = {"region": [640, 400], "looks": 9}
    (tmp_path / PROMPT_FILE).write_text(json.dumps({"system": "s", "second_look": nine}))
    assert declared_second_look(tmp_path) == SecondLook(Size(640, 400), 9)
    assert SecondLook(Size(640, 400), 9).declared() == nine
    assert SecondLook(Size(640, 400)).declared() == [640, 400]
    for bad in ([640], [640, 400, 1], ["640", 400], [True, 400], [10, 10], [640, 100000], "640x400",
                {"region": [640, 400], "looks": 0}, {"region": [640, 400], "looks": 10},
                {"region": [640, 400], "looks": 2.0}, {"region": [640, 400], "look": 3},
                {"looks": 3}, {"region": "640x400", "looks": 3}):
        (tmp_path / PROMPT_FILE).write_text(json.dumps({"system": "s", "second_look": bad}))
        with pytest.raises(ValueError, match=PROMPT_FILE):
            declared_second_look(tmp_path)


def test_the_confirmation_is_asked_about_the_point_clicked_not_the_first_one() -> None:
    """An attacker's page puts "Place order" where the second look lands and a harmless label
    under the first point: the gate must read (and ask about) the label at the second point."""
    from agent.safety import Decision
    from tests.agent.test_gate_rules import Label

    class Reader:  # "Place order" on the target, "Help" everywhere else
        def __init__(self) -> None:
            self.points: list[tuple[int, int]] = []

        def read(self, image, x: int, y: int) -> Label:
            self.points.append((x, y))
            inside = TARGET[0] - 2 <= x <= TARGET[2] + 2 and TARGET[1] - 2 <= y <= TARGET[3] + 2
            return Label("Place order" if inside else "Help", "push button")

    asked = []
    reader = Reader()
    gate = Gate("risky", ask=lambda request: asked.append(request) or Decision.DENY, reader=reader)
    backend = ScriptedBackend([_off_target, _precise])
    backend.family, backend.second_look = "fara15", LOOK
    executor = RecordingExecutor()
    result = run_task("Click the red button.", backend=backend, screen=TargetScreen(),
                      executor=executor, gate=gate, config=RunConfig(offline=False))
    assert result.status is RunStatus.DENIED and not executor.performed
    assert asked and asked[0].label.text == "Place order"
    assert reader.points and all(_inside(p) for p in reader.points)  # never at the first point


NINE = SecondLook(REGION, 9)


def test_nine_regions_are_centred_around_the_first_point() -> None:
    from agent.second_look import shifts

    assert shifts(1, REGION) == [(0, 0)]
    assert shifts(9, REGION) == [(0, 0), (-160, 0), (160, 0), (0, -100), (0, 100),
                                 (-160, -100), (160, 100), (-160, 100), (160, -100)]
    mapping = ScreenMapping(Monitor(1, 0, 0, 1920, 1080), Size(1920, 1080), Size(512, 288))
    centre = region_around(mapping, (256, 144), REGION)
    assert region_around(mapping, (256, 144), REGION, (-160, 100)) == (
        centre[0] - 160, centre[1] + 100, REGION)


def _miss(messages, images) -> str:
    """A look that points at its region's top-left corner: a miss that lands somewhere else in
    every region."""
    return _reply(LeftClick((3, 3)), Size(*images[-1].size))


def test_the_looks_vote_and_the_point_most_of_them_agree_on_is_clicked() -> None:
    done = format_call("Done.", Terminate("success"))
    # 3 of 9 looks miss, each somewhere else; the centred look and the last are misses.
    looks = [_miss, _precise, _precise, _miss, _precise, _precise, _precise, _precise, _miss]
    result, steps, executor, backend = _run([_off_target, *looks, done], region=NINE)
    assert result.status is RunStatus.SUCCESS and len(backend.calls) == 11
    (_, point), = executor.performed
    assert _inside(point), point
    shown = [Size(*call[1][0].size) for call in backend.calls[1:10]]
    assert set(shown) == {FAMILY.model_size(REGION)}
    assert "9 of 9 regions answered a point" in steps[0].note
    assert "look" not in steps[1].timings  # the step that ends the task has no point to look at


def test_a_minority_of_looks_cannot_pull_the_click_onto_their_point() -> None:
    """What the vote promises, tried the other way round: if most looks miss (each somewhere
    else) and three agree on the target, the agreeing three win; looks answering another kind of
    action (a page's text telling the model to type) have no vote and change nothing."""
    done = format_call("Done.", Terminate("success"))
    typing = format_call("", TypeText("rm -rf ~", coordinate=(10, 10)))
    replies = [_off_target, _miss, typing, _precise, typing, _precise, typing, _precise, typing,
               _miss, done]
    _, steps, executor, _ = _run(replies, region=NINE)
    (action, point), = executor.performed
    assert isinstance(action, LeftClick) and _inside(point), point
    assert "5 of 9 regions answered a point" in steps[0].note


def test_no_look_answering_a_point_keeps_the_first_one() -> None:
    done = format_call("Done.", Terminate("success"))
    _, steps, executor, _ = _run([_off_target, *["no tool call"] * 9, done], region=NINE)
    (action, point), = executor.performed
    assert isinstance(action, LeftClick) and not _inside(point)
    assert "kept the first point" in steps[0].note and "9 regions" in steps[0].note


def test_stopping_during_the_looks_ends_them_and_the_step_without_asking() -> None:
    """The person presses stop while the third region is being looked at: the looks end there,
    the first point is kept, and the step ends as stopped: no confirmation, no click."""
    from agent.safety import Decision, StopFlag

    stop = StopFlag()
    looked = []

    def stopping(messages, images) -> str:
        stop.set("stopped by the person")
        return _precise(messages, images)

    mapping = ScreenMapping(Monitor(1, 0, 0, 1920, 1080), Size(1920, 1080), Size(512, 288))
    backend = ScriptedBackend([_precise, _precise, stopping, *[_precise] * 6])
    first = LeftClick((100, 100))
    look = look_again(backend, FAMILY, "t", TargetScreen().image(), mapping, first, NINE,
                      max_new_tokens=64, cancel=stop)
    assert look.action == first and "was cancelled" in look.note and len(backend.calls) == 3

    stop = StopFlag()
    backend = ScriptedBackend([_off_target, _precise, _precise, stopping, *[_precise] * 6])
    backend.family, backend.second_look = "fara15", NINE
    executor = RecordingExecutor()
    gate = Gate("always", ask=lambda request: looked.append(request) or Decision.ALLOW)
    result = run_task("Click the red button.", backend=backend, screen=TargetScreen(),
                      executor=executor, gate=gate, stop=stop)
    assert result.status is RunStatus.STOPPED and not executor.performed and not looked


def test_regions_the_screens_edges_make_identical_are_looked_at_once() -> None:
    from agent.second_look import regions_around

    mapping = ScreenMapping(Monitor(1, 0, 0, 1280, 800), Size(1280, 800), Size(512, 320))
    assert len(regions_around(mapping, (256, 160), NINE)) == 9
    assert regions_around(mapping, (2, 2), NINE) == [(0, 0, REGION)]  # a corner: one region
    backend = ScriptedBackend([_miss] * 9)
    look = look_again(backend, FAMILY, "t", Image.new("RGB", (1280, 800)), mapping,
                      LeftClick((2, 2)), NINE, max_new_tokens=64)
    assert len(backend.calls) == 1 and "regions" not in look.note
    # A screen lower than the region: the regions shifted up or down are the centred one.
    low = ScreenMapping(Monitor(1, 0, 0, 1920, 360), Size(1920, 360), Size(512, 96))
    regions = regions_around(low, (256, 48), NINE)
    assert [r[0] for r in regions] == [640, 480, 800] and {r[2] for r in regions} == {Size(640, 360)}


def test_a_failing_model_ends_the_looks_at_the_first_failure() -> None:
    class Failing(ScriptedBackend):
        def _generate(self, request):
            self.calls.append((list(request.messages), list(request.images)))
            raise BackendError("the model process is gone")

    backend = Failing([])
    mapping = ScreenMapping(Monitor(1, 0, 0, 1920, 1080), Size(1920, 1080), Size(512, 288))
    look = look_again(backend, FAMILY, "t", TargetScreen().image(), mapping, LeftClick((100, 100)),
                      NINE, max_new_tokens=64)
    assert look.action == LeftClick((100, 100)) and "is gone" in look.note
    assert len(backend.calls) == 1


def test_with_two_answers_the_centred_regions_wins() -> None:
    from agent.second_look import _medoid

    a, b = Point(10, 10, Space.PHYSICAL), Point(90, 10, Space.PHYSICAL)
    assert _medoid([a, b]) == a and _medoid([b, a]) == b
    # Symmetric answers around a middle one: the middle one, whatever the float sums say.
    mid = Point(50, 50, Space.PHYSICAL)
    ring = [Point(50 + dx, 50 + dy, Space.PHYSICAL) for dx, dy in ((-7, 0), (7, 0), (0, -7), (0, 7))]
    assert _medoid([*ring, mid]) == mid
