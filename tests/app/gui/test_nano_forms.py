"""Nano's form screens: type a named value into a named Qt text field on a whole screen, scored
as the issue asks (the typing lands inside the right field, with the right text)."""

from __future__ import annotations

import dataclasses

import pytest

from agent.actions import LeftClick, Terminate, TypeText
from agent.geometry import Size
from agent.prompts import get_family
from app.nano import evaluate
from app.nano.desktop import SCREEN_SIZES, nano_model_size
from app.nano.examples import answer, build_prompt, is_hit, target_action
from app.nano.forms import BUTTON_WORDS, FIELDS, HELD_OUT_FIELDS, HELD_OUT_VALUES, VALUES, make_form
from app.nano.screens import make_any

NANO = get_family("fara15", system="You are Deskhand Nano.")


@pytest.fixture(autouse=True)
def _qt(qapp):  # the screens are rendered by Qt (offscreen in tests)
    return qapp


def test_a_form_is_a_function_of_split_and_index_at_a_real_screen_size() -> None:
    a, b = make_form("train", 3), make_form("train", 3)
    assert a.image.tobytes() == b.image.tobytes() and a.task == b.task and a.buttons == b.buttons
    assert make_any("forms", "train", 3).task == a.task
    sizes = {nano_model_size(Size(w, h)) for w, h in SCREEN_SIZES}
    assert all(Size(*make_form("heldout", i).image.size) in sizes for i in range(6))


def test_held_out_labels_and_values_are_never_on_training_screens() -> None:
    for i in range(30):
        s = make_form("train", i)
        assert not {b.label for b in s.buttons} & set(HELD_OUT_FIELDS)
        assert not any(word in s.task for word in (*HELD_OUT_FIELDS, *HELD_OUT_VALUES))
        h = make_form("heldout_words", i)
        assert h.target_button.label in HELD_OUT_FIELDS and h.typed in HELD_OUT_VALUES


def test_the_task_names_field_and_value_and_the_answer_types_it_there() -> None:
    seen_enter = seen_clear = 0
    for i in range(24):
        s = make_form("train", i)
        assert s.target_button.label in s.task and s.typed in s.task
        assert s.press_enter == ("Enter" in s.task and "Enter " + s.typed not in s.task)
        action = target_action(s)
        assert isinstance(action, TypeText) and action.text == s.typed
        assert action.delete_existing_text == s.clear
        seen_enter += s.press_enter
        seen_clear += s.clear
        if s.previous is not None:
            continue
        parsed = NANO.parse(answer(NANO, s), Size(*s.image.size)).action
        assert is_hit(parsed, s)  # the family's own reply round-trips to a hit
        # What is not the task is a miss: a click there, other text, Enter not as asked,
        # typing over text without replacing it, typing into another field.
        assert not is_hit(LeftClick(parsed.coordinate), s)
        assert not is_hit(dataclasses.replace(parsed, text=parsed.text + "x"), s)
        assert not is_hit(dataclasses.replace(parsed, press_enter=not s.press_enter), s)
        if s.clear:
            assert not is_hit(dataclasses.replace(parsed, delete_existing_text=False), s)
        for other, b in enumerate(s.buttons):
            if other != s.target:
                assert not is_hit(dataclasses.replace(parsed, coordinate=b.box.centre), s)
    assert seen_enter and seen_clear


def test_no_word_shown_on_a_form_is_a_held_out_label_or_value() -> None:
    shown = " ".join((*BUTTON_WORDS, *(v for v in VALUES if v not in HELD_OUT_VALUES)))
    assert not any(word in shown for word in HELD_OUT_FIELDS)
    assert not set(BUTTON_WORDS) & set(FIELDS)


def test_the_step_after_shows_the_value_in_the_field_and_is_answered_terminate() -> None:
    import numpy as np

    after = next(s for s in (make_form("train", i) for i in range(40)) if s.previous is not None)
    changed = np.argwhere(np.any(np.asarray(after.image) != np.asarray(after.previous), axis=2))
    box = after.target_button.box
    assert len(changed) and all(box.left - 2 <= x < box.right + 2 and box.top - 2 <= y < box.bottom + 2
                                for y, x in changed)  # (bicubic resizing blurs a pixel across)
    assert NANO.parse(answer(NANO, after), Size(*after.image.size)).action == Terminate("success")
    messages, images = build_prompt(NANO, after)
    assert len(images) == 2 and '"action": "type"' in messages[2]["content"][0]["text"]


def test_evaluation_scores_typing_in_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """The held-out hit rate on forms: 1 for the right answers, 0 for a click at the same place."""
    class Encoder:
        family = NANO

        def action(self, text, size):
            return NANO.parse(text, size).action

        def terminates(self, text, size):
            return NANO.parse(text, size).action == Terminate("success")

    class Model:
        training = False

        def eval(self):
            pass

        def train(self, mode):
            pass

    monkeypatch.setattr(evaluate, "reply_of", lambda model, enc, screen: answer(NANO, screen))
    rates = evaluate.hit_rates(Model(), Encoder(), 10, None, "forms")
    assert rates["heldout"] == rates["heldout_words"] == 1.0

    def click(model, enc, screen):
        reply = answer(NANO, screen)
        if screen.previous is not None:
            return reply
        at = NANO.parse(reply, Size(*screen.image.size)).action.coordinate
        return answer(NANO, dataclasses.replace(screen, typed=None)) if at else reply
    monkeypatch.setattr(evaluate, "reply_of", click)
    rates = evaluate.hit_rates(Model(), Encoder(), 10, None, "forms")
    assert rates["heldout"] == rates["heldout_words"] == 0.0
    assert rates["heldout_parsed"] == 1.0  # a click at the field's centre: parsed, on the field


def test_a_form_encodes_for_training_with_its_pointer_on_the_coordinate(tmp_path) -> None:
    from tokenizers import Tokenizer

    from agent.inference.chat import find_chat_template
    from app.nano.examples import IGNORE
    from app.nano.examples import Encoder as Real
    from app.nano.model import MICRO, make_folder

    folder = make_folder("fara15", tmp_path, MICRO)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    encoder = Real("fara15", tok, find_chat_template(folder))
    s = next(s for s in (make_form("train", i) for i in range(80))
             if s.previous is None and any(c.isdigit() for c in s.typed))  # digits in the text
    e = encoder.encode(s)
    reply = [t for t, label in zip(e.ids, e.labels, strict=True) if label != IGNORE]
    assert tok.decode(reply[:-1], skip_special_tokens=True) == answer(encoder.family, s)
    digits = tok.decode([e.ids[i + 1] for i in e.digit_at])
    point = answer(encoder.family, s).split('"coordinate": [')[1].split("]")[0]
    assert digits == "".join(ch for ch in point if ch.isdigit())  # the typed text's are not
    assert e.pointer_at == e.digit_at[0] and any(e.target_cells)


def test_every_form_answer_fits_the_evaluation_decode_limit() -> None:
    """Nano's tokenizer (stage c's) spells `type` replies in many small tokens: a reply cut
    before its flags would score as a miss even when right."""
    from pathlib import Path

    from tokenizers import Tokenizer

    from app.nano import ship

    tok = Tokenizer.from_file(str(Path(__file__).resolve().parents[3] / "app" / "nano" / "stages"
                                  / "c" / "model" / "tokenizer.json"))
    longest = max(len(tok.encode(answer(NANO, make_form(split, i))).ids)
                  for split in ("train", "heldout", "heldout_words") for i in range(30))
    assert longest + 1 <= min(evaluate.MAX_NEW_TOKENS, ship.MAX_NEW_TOKENS)
