"""The stages kept in the repository (app/nano/stages/) are the trained models they say they
are: each loads as a snapshot and clicks held-out drawn buttons far above chance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from agent.inference.chat import find_chat_template
from app.nano import snapshot
from app.nano.evaluate import hit_rates
from app.nano.examples import Encoder
from app.nano.model import build_model

STAGES = Path(__file__).resolve().parents[2] / "app" / "nano" / "stages"


# (stage, its step); measured at n=100: c 63 % / 72 %, ladder 89 % / 88 %, anneal 99 % / 98 %
# (int4 runtime); an untrained model of this size: 0 %.
@pytest.mark.parametrize(("name", "step"), [("c", 321), ("ladder", 1800), ("anneal", 400)])
def test_a_kept_stage_clicks_held_out_drawn_buttons(name: str, step: int) -> None:
    stage = STAGES / name
    info, weights, heads = snapshot.read(stage)
    assert info["family"] == "fara15" and info["step"] == step and heads
    torch.manual_seed(0)
    model = build_model(stage / "model")
    model.load_state_dict(weights)
    encoder = Encoder(info["family"], Tokenizer.from_file(str(stage / "model" / "tokenizer.json")),
                      find_chat_template(stage / "model"))
    rates = hit_rates(model, encoder, 12, (1, 1), "buttons")
    # A stage whose weights were damaged, or a change to the prompt or encoding it was trained
    # with, fails.
    assert rates["heldout"] >= 0.33 and rates["heldout_words"] >= 0.33, rates
