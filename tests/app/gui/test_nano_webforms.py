"""Nano's web form screens: type a named value into a named text field of a generated page drawn
by Chromium, scored as the forms kind is (the typing lands inside the right field, with the right
text); the step after shows the value in the field."""

from __future__ import annotations

import hashlib
import json
import random
import shutil

import pytest
from PIL import ImageChops

from agent.actions import Terminate, TypeText
from agent.geometry import Size
from agent.prompts import get_family
from app.nano import web
from app.nano.desktop import SCREEN_SIZES, nano_model_size
from app.nano.examples import answer, is_hit
from app.nano.forms import HELD_OUT_FIELDS, HELD_OUT_VALUES, TRAIN_FIELDS, TRAIN_VALUES
from app.nano.screens import make_any
from app.nano.webforms import FORMS_VERSION

NANO = get_family("fara15", system="You are Deskhand Nano.")
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("Xvfb") is None,
                                    reason="no chromium or Xvfb (scripts/setup.sh dev)")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DESKHAND_NANO_WEB", str(tmp_path))
    yield tmp_path / FORMS_VERSION
    web._close_renderer()


def test_the_form_pages_are_the_version_they_claim() -> None:
    """A change to the form pages must bump FORMS_VERSION (the cache is per version)."""
    fields = (("City", "a hint", None), ("Email", None, "old"))
    digest = hashlib.sha256("".join(web.page(random.Random(i), "OK", ("No",), fields[: 1 + i % 2])
                                    for i in range(5)).encode()).hexdigest()[:16]
    assert (FORMS_VERSION, digest) == ("forms-v3.1", FORM_PAGES)


FORM_PAGES = "f392f552b1c0e35e"


def test_a_form_page_has_its_labelled_fields_escaped_then_its_buttons() -> None:
    fields = (("it's <b>", "<i>hint</i>", None), ("City", None, "x' onfocus='alert(1)"))
    for i in range(20):
        markup = web.page(random.Random(i), "Send", ("Clear",), fields)
        assert all(markup.count(f"id='{web.FIELD.format(j)}'") == 1 for j in range(2))
        assert "<b>" not in markup and "<i>" not in markup and "onfocus='" not in markup
        assert "it&#x27;s &lt;b&gt;" in markup and "x&#x27; onfocus=&#x27;alert(1)" in markup
        form = markup[markup.index("<form"):]
        # The fields first, in order, then the submit row(s); no random field rows on a form page.
        assert form.index(web.FIELD.format(0)) < form.index(web.FIELD.format(1)) < form.index("dh-target")
        assert form.count("<input type='text'") == 2 and "<select" not in form
        assert "<textarea" not in form and "checkbox" not in form


@needs_chromium
def test_web_form_screens_type_the_named_value_into_the_named_field(cache) -> None:
    sizes = {nano_model_size(Size(w, h)) for w, h in SCREEN_SIZES}
    seen_after = seen_clear = False
    for i in range(15):
        s = make_any("webforms", "train", i)
        assert Size(*s.image.size) in sizes
        assert {b.label for b in s.buttons} <= set(TRAIN_FIELDS) and s.typed in TRAIN_VALUES
        assert s.target_button.label in s.task and s.typed in s.task
        shown = s.image if s.previous is None else s.previous
        box = s.target_button.box
        assert 0 <= box.left < box.right <= shown.width and 0 <= box.top < box.bottom <= shown.height
        if s.previous is None:
            action = NANO.parse(answer(NANO, s), Size(*s.image.size)).action
            assert isinstance(action, TypeText) and is_hit(action, s)
            assert action.press_enter == ("press Enter" in s.task or "hit Enter" in s.task)
            seen_clear |= s.clear
        else:  # the value now in the field, nothing else changed much; the answer ends the task
            assert NANO.parse(answer(NANO, s), Size(*s.image.size)).action == Terminate("success")
            # Where the two differ by more than a repaint's level or so (Chromium may redraw a
            # pixel of the tab strip a level apart).
            diff = ImageChops.difference(s.image, s.previous).convert("L").point(
                lambda v: 255 if v > 24 else 0).getbbox()
            assert diff is not None
            grow = 3  # the focus ring drawn just outside the field
            assert (box.left - grow <= diff[0] and box.top - grow <= diff[1]
                    and diff[2] <= box.right + grow and diff[3] <= box.bottom + grow), (diff, box)
            seen_after = True
        if seen_after and seen_clear:
            break
    assert seen_after and seen_clear
    held = [make_any("webforms", "heldout_words", i) for i in range(3)]
    assert all(h.target_button.label in HELD_OUT_FIELDS and h.typed in HELD_OUT_VALUES for h in held)


@needs_chromium
def test_a_damaged_form_entry_is_drawn_again(cache) -> None:
    first = make_any("webforms", "heldout", 2)
    meta = json.loads((cache / "heldout-2.json").read_text())
    # Well-formed but wrong, one field at a time: the check of the entry's own fields finds it.
    for key, bad in (("fields", [["City", [1, 2, 3]]]), ("target", 7), ("enter", "yes")):
        (cache / "heldout-2.json").write_text(json.dumps({**meta, key: bad}))
        again = make_any("webforms", "heldout", 2)
        assert again.task == first.task and again.buttons == first.buttons
        assert json.loads((cache / "heldout-2.json").read_text()) == meta  # drawn again
