"""Nano's desktop screens: real Qt windows on whole screens, seen as the loop would give them,
and the step after the click whose answer is terminate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from agent.geometry import Size
from app.nano.desktop import DONE_SHARE, MAX_PIXELS, SCREEN_SIZES, make_desktop, nano_model_size
from app.nano.screens import HELD_OUT_WORDS, TRAIN_WORDS, make_any


@pytest.fixture(autouse=True)
def _qt(qapp):  # the screens are rendered by Qt (offscreen in tests)
    return qapp


def test_a_screen_is_a_function_of_split_and_index() -> None:
    a, b = make_desktop("train", 7), make_desktop("train", 7)
    assert a.image.tobytes() == b.image.tobytes() and a.buttons == b.buttons and a.task == b.task
    assert make_desktop("train", 8).image.tobytes() != a.image.tobytes()


def test_screens_are_real_screen_sizes_seen_at_the_declared_budget() -> None:
    sizes = {nano_model_size(Size(w, h)) for w, h in SCREEN_SIZES}
    for i in range(12):
        screen = make_desktop("heldout", i)
        size = Size(*screen.image.size)
        assert size in sizes and size.pixels <= MAX_PIXELS
        box = screen.target_button.box
        assert 0 <= box.left < box.right <= size.width and 0 <= box.top < box.bottom <= size.height
        # The box holds the button Qt drew (a frame and a label), not empty background.
        crop = np.asarray(screen.image.crop((box.left, box.top, box.right, box.bottom)), float)
        if screen.previous is None:
            assert crop.std() > 8
            # The screen at its own size, for the second look: the model image is it, resized.
            full = screen.captured
            assert full is not None and full.size in SCREEN_SIZES
            assert nano_model_size(Size(*full.size)) == size
            small = np.asarray(full.resize(screen.image.size, Image.Resampling.BICUBIC), float)
            assert np.abs(small - np.asarray(screen.image, float)).max() == 0
        else:
            assert screen.captured is None
    assert nano_model_size(Size(1280, 800)) == Size(512, 320)


def test_held_out_words_never_appear_as_training_targets() -> None:
    assert all(make_desktop("train", i).target_button.label in TRAIN_WORDS for i in range(30))
    assert all(make_desktop("heldout_words", i).target_button.label in HELD_OUT_WORDS
               for i in range(10))


def test_tasks_are_worded_as_people_type_them_and_always_name_the_button() -> None:
    from app.nano.desktop import WORDINGS

    screens = [make_desktop("train", i) for i in range(40)]
    assert len({s.wording for s in screens}) >= 5 and {s.wording for s in screens} <= set(WORDINGS)
    assert all(s.target_button.label in s.task for s in screens)
    assert "click the {} button" in WORDINGS  # how the release test types it (issue 16)


def test_some_screens_are_the_step_after_the_click() -> None:
    screens = [make_desktop("train", i) for i in range(60)]
    after = [s for s in screens if s.previous is not None]
    assert abs(len(after) / len(screens) - DONE_SHARE) < 0.15
    for s in after:
        assert s.previous.size == s.image.size


def test_the_step_after_a_click_is_prompted_with_the_click_and_answered_terminate() -> None:
    from tokenizers import Tokenizer

    from agent.actions import LeftClick, Parsed, Terminate
    from agent.inference.chat import find_chat_template
    from app.nano.aux import attend_loss
    from app.nano.examples import Encoder, aux_targets, collate
    from app.nano.model import MICRO, make_folder

    def folder(tmp):
        return make_folder("fara15", tmp, MICRO)

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = folder(Path(tmp))
        encoder = Encoder("fara15", Tokenizer.from_file(str(model_dir / "tokenizer.json")),
                          find_chat_template(model_dir))
    after = next(make_desktop("train", i) for i in range(50)
                 if make_desktop("train", i).previous is not None)
    click = next(make_desktop("train", i) for i in range(50)
                 if make_desktop("train", i).previous is None)
    messages, images = encoder.build(after)
    assert len(images) == 2 and images[0] is after.previous and images[1] is after.image
    history_reply = messages[2]["content"][0]["text"]
    size = Size(*after.image.size)
    parsed = encoder.family.parse(history_reply, size)
    assert isinstance(parsed, Parsed) and isinstance(parsed.action, LeftClick)
    assert after.target_button.box.contains(*parsed.action.coordinate)  # it clicked the button
    assert encoder.terminates(encoder.reply(after), size)
    assert encoder.family.parse(encoder.reply(after), size).action == Terminate("success")
    e_after, e_click = encoder.encode(after), encoder.encode(click)
    assert len(e_after.grids) == 2 and not e_after.digit_at and e_after.pointer_at is None
    assert not any(e_after.target_cells) and any(e_click.target_cells)
    # The attention target adds nothing for the step after a click, and stays finite.
    batch = [e_after, e_click]
    inputs = collate(batch, 0, encoder.prompts.image_token_id)
    targets = aux_targets(batch)
    length = inputs["input_ids"].shape[1]
    attention = torch.full((2, 1, length, length), 1.0 / length)
    loss = attend_loss(attention, inputs["mm_token_type_ids"].bool(), targets["target_cells"],
                       targets["digit_at"])
    only_click = attend_loss(attention[1:], inputs["mm_token_type_ids"][1:].bool(),
                             targets["target_cells"][int(inputs["mm_token_type_ids"][0].sum()):],
                             targets["digit_at"][1:])
    assert math.isfinite(float(loss)) and float(loss) == pytest.approx(float(only_click))


def test_make_any_names_its_kinds() -> None:
    assert make_any("buttons", "train", 0).image.size == (448, 224)
    with pytest.raises(ValueError, match="desktop"):
        make_any("webpage", "train", 0)


def test_mixed_screens_alternate_desktop_and_drawn_buttons() -> None:
    from app.nano.screens import make_screen

    for i in range(4):
        screen = make_any("mixed", "heldout", i, (1, 1))
        expected = make_desktop("heldout", i) if i % 2 == 0 else make_screen("heldout", i, (1, 1))
        assert screen.image.tobytes() == expected.image.tobytes() and screen.task == expected.task


def test_mixed_evaluation_scores_the_two_kinds_apart(tmp_path) -> None:
    from tokenizers import Tokenizer

    from agent.inference.chat import find_chat_template
    from app.nano.evaluate import hit_rates
    from app.nano.examples import Encoder
    from app.nano.model import MICRO, build_model, make_folder

    folder = make_folder("fara15", tmp_path, MICRO)
    encoder = Encoder("fara15", Tokenizer.from_file(str(folder / "tokenizer.json")),
                      find_chat_template(folder))
    model = build_model(folder)
    rates = hit_rates(model, encoder, 6, None, "mixed")
    # Exactly the two kinds' own scores (greedy decoding: the same screens give the same replies).
    desktop = hit_rates(model, encoder, 6, None, "desktop")
    drawn = hit_rates(model, encoder, 6, (1, 1), "buttons")
    assert rates == {**desktop, **{f"buttons_{k}": v for k, v in drawn.items()}}
    assert "heldout_done" in rates  # six desktop screens hold a step after a click
    assert not any(k.startswith("buttons_") and k.endswith("_done") for k in rates)


def test_ladder_cuts_smaller_screens_around_the_same_window_and_holds_out_real_sizes() -> None:
    """"ladder": about half its training desktop screens are a smaller screen cut around the
    window (seen nearer its size: the button is larger in the model image); held-out screens
    are exactly "mixed"'s (the real sizes), so a ladder run is scored like a mixed one."""
    from app.nano.screens import make_screen

    for i in range(4):
        assert make_any("ladder", "heldout", i, (1, 1)).image.tobytes() == \
            make_any("mixed", "heldout", i, (1, 1)).image.tobytes()
    nearer = 0
    for i in range(0, 40, 2):
        near, real = make_any("ladder", "train", i), make_desktop("train", i)
        assert near.task == real.task and near.target_button.label == real.target_button.label
        assert (near.previous is None) == (real.previous is None)
        box, was = near.target_button.box, real.target_button.box
        assert 0 <= box.left < box.right <= near.image.width
        assert 0 <= box.top < box.bottom <= near.image.height
        if near.image.tobytes() == real.image.tobytes():
            continue
        nearer += 1
        # The same button, larger: the screen it was cut from is seen at a smaller scale.
        assert box.bottom - box.top > was.bottom - was.top
        # It is drawn there: the button's pixels are not the desktop's one colour.
        shown = near.previous if near.previous is not None else near.image
        assert len(shown.crop((box.left, box.top, box.right, box.bottom)).getcolors(1 << 16)) > 4
    assert 5 <= nearer <= 15, nearer
    assert make_any("ladder", "train", 1, (1, 1)).image.tobytes() == \
        make_screen("train", 1, (1, 1)).image.tobytes()


def test_near_crop_keeps_the_window_inside_a_smaller_screen() -> None:
    import random

    from app.nano.desktop import NEAR_SIZES, SCREEN_SIZES, near_crop
    from app.nano.screens import Box

    rng, cut = random.Random(7), 0
    for _ in range(2000):
        width, height = rng.choice(SCREEN_SIZES)
        w, h = rng.randint(200, 900), rng.randint(100, 640)
        if w > width or h > height:
            continue
        x, y = rng.randint(0, width - w), rng.randint(0, height - h)
        crop = near_crop(rng, width, height, Box(x, y, x + w, y + h))
        if crop is None:
            continue
        cut += 1
        assert (crop.right - crop.left, crop.bottom - crop.top) in NEAR_SIZES
        assert crop.left >= 0 and crop.right <= width and crop.top >= 0 and crop.bottom <= height
        assert crop.left <= x and x + w <= crop.right and crop.top <= y and y + h <= crop.bottom
    assert cut > 200
    assert near_crop(rng, 1280, 800, Box(0, 0, 1000, 300)) is None  # wider than every rung


def test_look_shows_the_second_looks_region_around_the_button_and_holds_out_real_sizes() -> None:
    """"look": about half its training desktop screens are what the second look shows (a 640x400
    region near the button, seen at 512x320); the rest are the ladder's; held-out screens are
    exactly "mixed"'s, so a look run is scored like the others."""
    for i in range(4):
        assert make_any("look", "heldout", i, (1, 1)).image.tobytes() == \
            make_any("mixed", "heldout", i, (1, 1)).image.tobytes()
    looked = 0
    for i in range(0, 40, 2):
        shown, ladder = make_any("look", "train", i), make_any("ladder", "train", i)
        assert shown.task == ladder.task and (shown.previous is None) == (ladder.previous is None)
        box = shown.target_button.box
        assert 0 <= box.left < box.right <= shown.image.width
        assert 0 <= box.top < box.bottom <= shown.image.height
        if shown.image.tobytes() == ladder.image.tobytes():
            continue
        looked += 1
        assert shown.image.size == (512, 320)  # 640x400 at 0.8, as the second look shows it
        image = shown.previous if shown.previous is not None else shown.image
        assert len(image.crop((box.left, box.top, box.right, box.bottom)).getcolors(1 << 16)) > 4
    assert 5 <= looked <= 15, looked


def test_look_crop_is_the_declared_region_near_the_button_and_on_the_screen() -> None:
    import random

    from app.nano.desktop import LOOK_OFFSET, LOOK_SIZE, SCREEN_SIZES, look_crop
    from app.nano.model import SECOND_LOOK
    from app.nano.screens import Box

    assert (SECOND_LOOK.region.width, SECOND_LOOK.region.height) == LOOK_SIZE
    rng, cut = random.Random(3), 0
    for _ in range(1000):
        width, height = rng.choice(SCREEN_SIZES)
        x, y = rng.randint(0, width - 120), rng.randint(0, height - 30)
        button = Box(x, y, x + rng.randint(40, 120), y + rng.randint(18, 30))
        crop = look_crop(rng, width, height, button)
        if crop is None:
            continue
        cut += 1
        assert (crop.right - crop.left, crop.bottom - crop.top) == LOOK_SIZE
        assert crop.left >= 0 and crop.right <= width and crop.top >= 0 and crop.bottom <= height
        assert crop.left <= button.left and button.right <= crop.right
        assert crop.top <= button.top and button.bottom <= crop.bottom
        cx, cy = (crop.left + crop.right) / 2, (crop.top + crop.bottom) / 2
        bx, by = (button.left + button.right) / 2, (button.top + button.bottom) / 2
        on_edge = crop.left == 0 or crop.right == width or crop.top == 0 or crop.bottom == height
        assert on_edge or (abs(cx - bx) <= LOOK_OFFSET[0] + 1 and abs(cy - by) <= LOOK_OFFSET[1] + 1)
    assert 350 < cut < 650
