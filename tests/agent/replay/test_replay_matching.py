"""Template matching for replay: accuracy, ambiguity, scale, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from agent.replay import matching

FONT = ImageFont.load_default(size=20)


def page(buttons: list[tuple[str, int, int]], size=(1428, 896), tint: int = 0) -> Image.Image:
    img = Image.new("RGB", size, (240 - tint, 241 - tint, 245 - tint))
    d = ImageDraw.Draw(img)
    for text, x, y in buttons:
        d.rectangle((x, y, x + 200, y + 44), fill=(200, 220, 250), outline=(80, 80, 100), width=2)
        d.text((x + 12, y + 10), text, fill=(10, 10, 20), font=FONT)
    return img


def find(recorded: Image.Image, point, current: Image.Image, **kw) -> matching.Match:
    return matching.locate(matching.grey(recorded), point, matching.grey(current), **kw)


BUTTONS = [("Search", 100, 100), ("Add to cart", 400, 300), ("Checkout", 900, 600),
           ("Help", 1100, 80)]


@pytest.mark.parametrize("dx,dy", [(0, 0), (0, 64), (-77, 9), (213, -41)])
def test_moved_target_is_found_to_the_pixel(dx: int, dy: int) -> None:
    recorded = page(BUTTONS)
    current = page([(t, x + dx, y + dy) for t, x, y in BUTTONS])
    m = find(recorded, (500, 322), current)
    assert m.verified and m.score > 0.99
    assert m.point == pytest.approx((500 + dx, 322 + dy), abs=0.5)


def test_brightness_change_does_not_hide_the_target() -> None:
    m = find(page(BUTTONS), (500, 322), page(BUTTONS, tint=30))
    assert m.verified and m.point == pytest.approx((500, 322), abs=0.5)


def test_changed_label_is_not_found() -> None:
    current = page([("Search", 100, 100), ("Remove item", 400, 300), ("Checkout", 900, 600)])
    m = find(page(BUTTONS), (500, 322), current)
    assert not m.found and m.score < matching.ACCEPT


def test_identical_controls_are_ambiguous() -> None:
    twins = [("Add to cart", 400, 300), ("Add to cart", 400, 600)]
    m = find(page(twins), (500, 322), page(twins))
    assert m.found and m.ambiguous and not m.verified
    assert m.runner_up > 0.95


def test_context_tells_repeated_controls_apart() -> None:
    # Two "Add to cart" buttons, each under a different product name: the small neighbourhood
    # is ambiguous, a larger one that includes the name is not.
    layout = [("Add to cart", 400, 300), ("Add to cart", 400, 600)]
    recorded, current = page(layout), page(layout)
    for img in (recorded, current):
        d = ImageDraw.Draw(img)
        d.text((410, 240), "Red kettle", fill=(0, 0, 0), font=FONT)
        d.text((410, 540), "Blue teapot", fill=(0, 0, 0), font=FONT)
    m = find(recorded, (500, 622), current)
    assert m.verified and m.point == pytest.approx((500, 622), abs=0.5)
    assert m.patch[1] > 2 * matching.NEIGHBOURHOODS[0][1]  # decided by a larger neighbourhood


def test_other_scale_is_tried_when_nothing_matches() -> None:
    recorded = page(BUTTONS)
    big = recorded.resize((round(1428 * 1.25), round(896 * 1.25)), Image.Resampling.BICUBIC)
    m = find(recorded, (500, 322), big)
    assert m.verified and m.scale == 1.25
    assert m.point == pytest.approx((625, 402.5), abs=2)
    assert not find(recorded, (500, 322), big, other_scales=()).found


def test_blank_neighbourhood_is_not_a_match() -> None:
    blank = Image.new("RGB", (800, 600), (250, 250, 250))
    m = find(blank, (400, 300), blank)
    assert not m.found and m.point is None


def test_target_at_the_edge() -> None:
    recorded = page([("Close", 1428 - 200, 0)])
    m = find(recorded, (1420, 10), recorded)
    assert m.verified and m.point == pytest.approx((1420, 10), abs=0.5)


def test_zncc_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((40, 50)).astype(np.float32) * 255
    template = image[10:18, 20:31].copy()
    fast = matching.zncc_map(image, template)
    y, x = 5, 7
    window = image[y:y + 8, x:x + 11].astype(np.float64)
    a, b = window - window.mean(), template - template.mean()
    direct = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    assert fast[y, x] == pytest.approx(direct, abs=1e-4)
    assert fast[10, 20] == pytest.approx(1.0, abs=1e-5)


def test_a_full_screen_search_is_fast() -> None:
    recorded = page(BUTTONS)
    current = page([(t, x + 30, y + 50) for t, x, y in BUTTONS])
    start = time.perf_counter()
    m = find(recorded, (500, 322), current)
    assert m.verified
    assert time.perf_counter() - start < 1.5  # ~0.1 s here; generous for a loaded CI machine


def test_screen_similarity_tolerates_a_shift_but_not_another_screen() -> None:
    a = page(BUTTONS)
    shifted = page([(t, x + 40, y + 64) for t, x, y in BUTTONS])
    other = page([("Inbox", 300, 200), ("Compose", 700, 500), ("Trash", 200, 700)])
    assert matching.similarity(a, a) == pytest.approx(1.0, abs=1e-4)
    assert matching.similarity(a, shifted) > 0.9
    assert matching.similarity(a, other) < 0.8  # weak: same widgets, other places
    blank = Image.new("RGB", a.size, (255, 255, 255))
    assert matching.similarity(blank, blank) == 1.0 and matching.similarity(blank, a) == 0.0


def test_colour_shift_tells_the_same_words_on_another_element_apart() -> None:
    from agent.replay.backend import COLOUR_TOLERANCE

    recorded = page(BUTTONS)
    title = Image.new("RGB", recorded.size, (240, 241, 245))  # the words again, on a white box
    d = ImageDraw.Draw(title)
    d.rectangle((400, 300, 600, 344), fill=(255, 255, 255), outline=(80, 80, 100), width=2)
    d.text((412, 310), "Add to cart", fill=(10, 10, 20), font=FONT)
    m = find(recorded, (480, 322), title)
    assert m.verified  # ZNCC alone takes it for the button...
    size = matching.NEIGHBOURHOODS[0]
    assert matching.colour_shift(recorded, (480, 322), title, m.point, size) > COLOUR_TOLERANCE
    tinted = Image.eval(recorded, lambda v: max(0, v - 30))  # the same button, screen darker: fine
    m = find(recorded, (480, 322), tinted)
    assert matching.colour_shift(recorded, (480, 322), tinted, m.point, size) < 5
