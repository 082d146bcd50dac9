"""The stage kept in the repository (app/nano/stages/c) is the trained model it says it is: it
loads as a snapshot and clicks held-out drawn buttons far above chance."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer

from agent.inference.chat import find_chat_template
from app.nano import snapshot
from app.nano.evaluate import hit_rates
from app.nano.examples import Encoder
from app.nano.model import build_model

STAGE = Path(__file__).resolve().parents[2] / "app" / "nano" / "stages" / "c"


def test_stage_c_clicks_held_out_drawn_buttons() -> None:
    info, weights, heads = snapshot.read(STAGE)
    assert info["family"] == "fara15" and info["step"] == 321 and heads
    torch.manual_seed(0)
    model = build_model(STAGE / "model")
    model.load_state_dict(weights)
    encoder = Encoder(info["family"], Tokenizer.from_file(str(STAGE / "model" / "tokenizer.json")),
                      find_chat_template(STAGE / "model"))
    rates = hit_rates(model, encoder, 12, (1, 1), "buttons")
    # Measured at n=100: 63 % / 72 % (an untrained model of this size: 0 %). A stage whose
    # weights were damaged, or a change to the prompt or encoding it was trained with, fails.
    assert rates["heldout"] >= 0.33 and rates["heldout_words"] >= 0.33, rates
