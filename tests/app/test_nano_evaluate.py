"""The held-out hit rate: greedy replies read by the family's parser, hits inside the named
button only (a stub model stands in for the trained one)."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer

from agent.inference.chat import find_chat_template
from app.nano.evaluate import chance, hit_rates
from app.nano.examples import Encoder
from app.nano.model import MICRO, make_folder
from app.nano.screens import Screen, make_screen


class Stub:
    """Answers every prompt with `answer(screen)`'s reply tokens, as generate would return them."""

    training = False

    def __init__(self, encoder: Encoder, answer) -> None:
        self.encoder, self.answer, self.screens = encoder, answer, {}

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def generate(self, input_ids, pixel_values, **_kwargs):
        # Prompts of two screens naming the same word differ only in their pixels.
        screen = self.screens[tuple(input_ids[0].tolist()), pixel_values.numpy().tobytes()]
        reply = self.encoder.tokenizer.encode(self.answer(screen), add_special_tokens=False).ids
        return torch.cat([input_ids, torch.tensor([[*reply, self.encoder.im_end]])], dim=1)


@pytest.fixture(scope="module", params=("fara15", "fara"))
def encoder(request, tmp_path_factory) -> Encoder:
    folder = make_folder(request.param, tmp_path_factory.mktemp(request.param), MICRO)
    return Encoder(request.param, Tokenizer.from_file(str(folder / "tokenizer.json")),
                   find_chat_template(folder))


def _stub(encoder: Encoder, answer, n: int) -> Stub:
    stub = Stub(encoder, answer)
    for split in ("heldout", "heldout_words"):
        for i in range(n):
            screen = make_screen(split, i)
            ids, pixels, _grid = encoder.prompt(screen)
            stub.screens[tuple(ids), pixels.tobytes()] = screen
    return stub


def _other(screen: Screen) -> Screen:
    """The same screen asking for another button (its reply clicks the wrong one)."""
    return Screen(screen.image, screen.buttons, (screen.target + 1) % len(screen.buttons))


def test_right_clicks_hit_and_wrong_buttons_do_not(encoder: Encoder) -> None:
    right = hit_rates(_stub(encoder, encoder.reply, 6), encoder, 6)
    assert right["heldout"] == right["heldout_words"] == 1.0
    # Qwen2.5-VL's pixels are exact; Qwen3.5's 1000-unit grid rounds by up to a pixel per axis.
    assert right["heldout_dist"] <= (0.0 if encoder.family.name == "fara" else 1.5)
    wrong = hit_rates(_stub(encoder, lambda s: encoder.reply(_other(s)), 6), encoder, 6)
    assert wrong["heldout"] == wrong["heldout_words"] == 0.0
    assert wrong["heldout_on_button"] == wrong["heldout_parsed"] == 1.0


def test_unparsable_replies_count_as_misses(encoder: Encoder) -> None:
    rates = hit_rates(_stub(encoder, lambda s: "I would click " + s.target_button.label, 4),
                      encoder, 4)
    assert rates["heldout"] == rates["heldout_parsed"] == 0.0
    assert rates["heldout_dist"] is None


def test_chance_is_one_over_the_number_of_buttons() -> None:
    n = 10
    expected = sum(1 / len(make_screen("heldout", i).buttons) for i in range(n)) / n
    assert chance(n)["heldout"] == round(expected, 4)
    assert 1 / 8 <= chance(n)["heldout_words"] <= 1 / 3
