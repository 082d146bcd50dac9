"""Nano training examples: the reply is what the family's parser reads as a click on the target,
the prompt is tokenized as the runtime tokenizes it, and the tokenizer covers the probe's text."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from agent.actions import LeftClick
from agent.geometry import Size
from agent.inference.chat import PromptTokenizer, find_chat_template
from app.nano.examples import IGNORE, SYSTEM, Encoder, collate
from app.nano.model import MICRO, make_folder
from app.nano.screens import WORDS, make_screen

FAMILIES = ("fara15", "fara")


@pytest.fixture(scope="module", params=FAMILIES)
def encoder(request, tmp_path_factory) -> Encoder:
    folder = make_folder(request.param, tmp_path_factory.mktemp(request.param), MICRO)
    return Encoder(request.param, Tokenizer.from_file(str(folder / "tokenizer.json")),
                   find_chat_template(folder))


def test_reply_parses_to_a_click_at_the_target_centre(encoder: Encoder) -> None:
    for split in ("train", "heldout_words"):
        for i in range(60):
            screen = make_screen(split, i)
            reply = encoder.reply(screen)
            parsed = encoder.family.parse(reply, Size(448, 224))
            assert isinstance(parsed.action, LeftClick), reply
            x, y = encoder.click(reply)
            cx, cy = screen.target_button.box.centre
            # Qwen2.5-VL answers in image pixels (exact); Qwen3.5 on a 1000-unit grid (±1 px).
            tolerance = 0 if encoder.family.name == "fara" else 1
            assert abs(x - cx) <= tolerance and abs(y - cy) <= tolerance, (reply, (cx, cy))
            assert screen.target_button.box.contains(x, y)


def test_fara15_reply_is_on_the_display_grid(encoder: Encoder) -> None:
    screen = make_screen("train", 0)
    cx, cy = screen.target_button.box.centre
    expected = (cx, cy) if encoder.family.name == "fara" else (round(cx * 1000 / 448),
                                                               round(cy * 1000 / 224))
    assert f'"coordinate": [{expected[0]}, {expected[1]}]' in encoder.reply(screen)


def test_labels_cover_exactly_the_reply_and_its_end_token(encoder: Encoder) -> None:
    screen = make_screen("train", 3)
    example = encoder.encode(screen)
    target = [t for t in example.labels if t != IGNORE]
    assert encoder.tokenizer.decode(target[:-1], skip_special_tokens=False) == encoder.reply(screen)
    assert target[-1] == encoder.im_end
    start = len(example.ids) - len(target)
    assert example.labels[:start] == [IGNORE] * start and example.ids[start:] == target


def test_prompt_is_the_runtime_tokenization_of_the_family_messages(encoder: Encoder) -> None:
    """The training sequence is a prefix of what the runtime's PromptTokenizer makes of the same
    chat with the reply as the assistant turn, with one image slot per image token."""
    screen = make_screen("heldout", 5)
    example = encoder.encode(screen)
    (grid,) = example.grids
    tokens = grid[1] * grid[2] // 4
    assert example.ids.count(encoder.prompts.image_token_id) == tokens
    assert tokens == (128 if encoder.family.name == "fara" else 98)
    messages = encoder.messages(screen)
    assert messages[0]["content"][0]["text"] == SYSTEM
    assert messages[1]["content"][1]["text"].endswith("Click the " + screen.target_button.label
                                                      + " button.")
    chat = [*messages, {"role": "assistant", "content": [{"type": "text",
                                                          "text": encoder.reply(screen)}]}]
    runtime = PromptTokenizer(encoder.tokenizer, encoder.prompts.template).encode(chat, [tokens])
    assert runtime[: len(example.ids)] == example.ids


def test_tokenizer_covers_digits_and_every_label(encoder: Encoder) -> None:
    tok = encoder.tokenizer
    for digit in "0123456789":
        assert len(tok.encode(digit, add_special_tokens=False).ids) == 1
    assert len(tok.encode("549", add_special_tokens=False).ids) == 3  # one token per digit
    for word in WORDS:
        text = f"Click the {word} button."
        assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text
    for tag in ("<tool_call>", "</tool_call>"):
        assert len(tok.encode(tag, add_special_tokens=False).ids) == 1


def test_collate_pads_right_and_marks_image_tokens(encoder: Encoder) -> None:
    examples = [encoder.encode(make_screen("train", i)) for i in range(3)]
    batch = collate(examples, 0, encoder.prompts.image_token_id)
    longest = max(len(e.ids) for e in examples)
    assert batch["input_ids"].shape == (3, longest)
    assert batch["attention_mask"].sum().item() == sum(len(e.ids) for e in examples)
    assert (batch["mm_token_type_ids"].sum(1) == batch["pixel_values"].shape[0] // 3 // 4).all()
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()
