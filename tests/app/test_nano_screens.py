"""The Nano screen generator: deterministic, every button on the screen, labels really drawn."""

from __future__ import annotations

import pytest

from app.nano.screens import (
    HEIGHT,
    HELD_OUT_WORDS,
    MAX_BUTTONS,
    MIN_BUTTONS,
    SPLITS,
    TRAIN_WORDS,
    WIDTH,
    make_screen,
)


@pytest.mark.parametrize("split", SPLITS)
def test_same_split_and_index_give_the_same_screen(split: str) -> None:
    a, b = make_screen(split, 7), make_screen(split, 7)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.buttons == b.buttons and a.target == b.target
    assert make_screen(split, 8).image.tobytes() != a.image.tobytes()


def test_splits_are_different_layouts() -> None:
    images = {make_screen(split, 3).image.tobytes() for split in SPLITS}
    assert len(images) == len(SPLITS)


@pytest.mark.parametrize("split", SPLITS)
def test_buttons_lie_on_the_screen_apart_with_distinct_labels(split: str) -> None:
    for i in range(40):
        screen = make_screen(split, i)
        assert screen.image.size == (WIDTH, HEIGHT)
        assert MIN_BUTTONS <= len(screen.buttons) <= MAX_BUTTONS
        labels = [b.label for b in screen.buttons]
        assert len(set(labels)) == len(labels)
        for j, button in enumerate(screen.buttons):
            box = button.box
            assert 0 <= box.left < box.right <= WIDTH and 0 <= box.top < box.bottom <= HEIGHT
            assert all(not box.overlaps(o.box) for o in screen.buttons[j + 1:])
        assert screen.task == f"Click the {screen.target_button.label} button."


def test_held_out_words_never_appear_on_training_screens() -> None:
    assert not set(HELD_OUT_WORDS) & set(TRAIN_WORDS)
    for i in range(200):
        assert not {b.label for b in make_screen("train", i).buttons} & set(HELD_OUT_WORDS)
    targets = {make_screen("heldout_words", i).target_button.label for i in range(60)}
    assert targets and targets <= set(HELD_OUT_WORDS)


def test_each_label_is_drawn_inside_its_button() -> None:
    """Inside a button, clear of its border and rounded corners (radius <= 8), there are glyph
    pixels: colours far from the button's fill."""
    for i in range(30):
        screen = make_screen("train", i)
        for button in screen.buttons:
            b = button.box
            crop = screen.image.crop((b.left + 8, b.top + 3, b.right - 8, b.bottom - 3))
            colours = crop.getcolors(maxcolors=100_000)
            fill = max(colours)[1]
            ink = sum(n for n, c in colours if sum(abs(x - y) for x, y in zip(c, fill, strict=True)) > 120)
            assert ink >= 8 * len(button.label), (i, button)
