"""Nano's training-only targets (app/nano/aux.py) and curriculum options: each target says what it
claims about the screen, the heads train, and a later stage starts from an earlier one's weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from agent.inference.chat import find_chat_template
from app.nano.aux import CENTRE_BINS, NO_CENTRE, NONE, AuxHeads, attend_loss, cell_targets
from app.nano.examples import Encoder, aux_targets, collate
from app.nano.model import MICRO, make_folder
from app.nano.screens import WORDS, make_screen
from app.nano.train import main

MICRO_RUN = ["--family", "fara15", "--size", "micro", "--minutes", "10", "--seed", "5",
             "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "2"]


def test_cells_name_the_word_that_covers_them_and_mark_the_target() -> None:
    # Two buttons on a 4x2 grid of 10-px cells: "a" covers cells (0,0),(0,1) fully; "b" a sliver
    # of (1,3) only (under the 20 % share: not read there) but it is the target, so marked.
    boxes = [(0, 0, 20, 10), (38, 18, 40, 20)]
    labels, target = cell_targets(boxes, [7, 9], 1, rows=2, cols=4, unit=10)
    assert labels == [7, 7, NONE, NONE, NONE, NONE, NONE, NONE]
    assert target == [False, False, False, False, False, False, False, True]


@pytest.mark.parametrize("family", ["fara15", "fara"])
def test_targets_line_up_with_the_tokens(family: str, tmp_path: Path) -> None:
    folder = make_folder(family, tmp_path, MICRO)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    encoder = Encoder(family, tokenizer, find_chat_template(folder))
    for i in range(5):
        screen = make_screen("train", i)
        e = encoder.encode(screen)
        images = sum(1 for t in e.ids if t == encoder.prompts.image_token_id)
        assert len(e.read_labels) == len(e.target_cells) == images
        # The pointer position predicts the first digit of the x coordinate.
        first = tokenizer.decode([e.ids[e.pointer_at + 1]])
        assert first.isdigit()
        reply_x = encoder.reply(screen).split("[", 1)[1]
        assert reply_x.startswith(first)
        # Every digit of both coordinates is predicted from a listed position, and only those.
        x, y = reply_x.split("]", 1)[0].split(",")
        predicted = "".join(tokenizer.decode([e.ids[p + 1]]) for p in e.digit_at)
        assert predicted == x.strip() + y.strip() and e.digit_at[0] == e.pointer_at
        # The target's label is read in at least one of the cells it covers.
        word = WORDS.index(screen.target_button.label) + 1
        assert any(t and r == word for t, r in zip(e.target_cells, e.read_labels, strict=True))
        assert sum(e.target_cells) >= 1
        # Exactly the target's cells carry its centre, in bins of the image's width and height.
        cx, cy = screen.target_button.box.centre
        width, height = screen.image.size
        covered = [(x, y) for x, y in zip(e.centre_x, e.centre_y, strict=True) if x != NO_CENTRE]
        assert len(covered) == sum(e.target_cells) and len(e.centre_x) == images
        for x, y in covered:
            assert abs(x - cx * CENTRE_BINS / width) <= 1 and abs(y - cy * CENTRE_BINS / height) <= 1
    batch = [encoder.encode(make_screen("train", i)) for i in range(3)]
    targets = aux_targets(batch)
    inputs = collate(batch, 0, encoder.prompts.image_token_id)
    assert int(inputs["mm_token_type_ids"].sum()) == len(targets["read_labels"])
    grid = batch[0].grids[0]
    assert targets["cell_rows"].max() < grid[1] // encoder.spec.merge
    assert targets["cell_cols"].max() < grid[2] // encoder.spec.merge


def test_buttons_option_sets_how_many_buttons_a_screen_has() -> None:
    assert {len(make_screen("train", i, (1, 1)).buttons) for i in range(20)} == {1}
    assert {len(make_screen("train", i, (2, 3)).buttons) for i in range(40)} <= {2, 3}
    with pytest.raises(ValueError):
        make_screen("train", 0, (3, 2))


def test_auxiliary_heads_train_and_a_next_stage_starts_from_the_weights(tmp_path: Path) -> None:
    first = tmp_path / "stage1"
    assert main([*MICRO_RUN, "--out", str(first), "--max-steps", "3", "--buttons", "1-1",
                 "--aux-read", "1", "--aux-point", "1", "--aux-where", "1",
                 "--aux-attend", "1", "--aux-centre", "1", "--digit-weight", "3"]) == 0
    steps = [json.loads(line) for line in (first / "metrics.jsonl").read_text().splitlines()
             if '"step"' in line and '"loss"' in line and '"kind": "step"' in line]
    parts = ("read", "point", "where", "attend", "centre")
    assert len(steps) == 3 and all(set(parts) <= set(s) for s in steps)
    assert all(torch.isfinite(torch.tensor([s[k] for k in parts])).all() for s in steps)
    trained = torch.load(first / "checkpoint.pt", weights_only=False)
    assert {"aux", "model"} <= set(trained) and trained["buttons"] == (1, 1)

    second = tmp_path / "stage2"
    assert main([*MICRO_RUN, "--out", str(second), "--max-steps", "0", "--buttons", "1-3",
                 "--init-from", str(first)]) == 0
    saved = torch.load(second / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 0
    for name, value in trained["model"].items():  # the weights it starts from are stage 1's
        assert torch.equal(saved["model"][name], value), name
    start = json.loads((second / "metrics.jsonl").read_text().splitlines()[0])
    assert start["init_from"] == str(first) and start["buttons"] == [1, 3]
    assert (second / "model" / "tokenizer.json").read_bytes() == \
        (first / "model" / "tokenizer.json").read_bytes()
    with pytest.raises(SystemExit, match="fara15"):
        main([*MICRO_RUN[:1], "fara", *MICRO_RUN[2:], "--out", str(tmp_path / "wrong"),
              "--max-steps", "1", "--init-from", str(first)])


def test_centre_loss_reads_only_the_covered_tokens_and_learns_their_bins() -> None:
    torch.manual_seed(0)
    heads = AuxHeads(hidden=16, words=3)
    hidden = torch.randn(1, 6, 16)
    states = (hidden, hidden, hidden)  # WHERE_LAYER (-2) is the middle one
    mask = torch.tensor([[False, True, True, True, True, False]])
    cx = torch.tensor([NO_CENTRE, 40, 40, NO_CENTRE])
    cy = torch.tensor([NO_CENTRE, 7, 7, NO_CENTRE])
    start = heads.centre_loss(states, mask, cx, cy).item()
    assert abs(start - float(torch.log(torch.tensor(float(CENTRE_BINS))))) < 1.0  # about chance
    optimizer = torch.optim.Adam(heads.parameters(), lr=0.05)
    for _ in range(50):
        optimizer.zero_grad()
        heads.centre_loss(states, mask, cx, cy).backward()
        optimizer.step()
    assert heads.centre_loss(states, mask, cx, cy).item() < 0.1
    none = torch.full((4,), NO_CENTRE)
    assert heads.centre_loss(states, mask, none, none).item() == 0.0  # the step after a click


def test_attend_loss_is_zero_when_the_head_looks_at_the_target_only() -> None:
    # One example: tokens 0-1 text, 2-5 image (cells 1 and 2 are the target's), 6-7 reply.
    mask = torch.tensor([[False, False, True, True, True, True, False, False]])
    target = torch.tensor([False, True, True, False])
    on_target = torch.zeros(1, 2, 8, 8)
    on_target[0, 0, 6, 3] = on_target[0, 0, 6, 4] = 0.5
    on_target[0, 1, 6, 0] = 1.0  # another head looks elsewhere: not supervised
    assert float(attend_loss(on_target, mask, target, [[6]])) < 1e-4
    uniform = torch.full((1, 2, 8, 8), 1 / 8)
    assert abs(float(attend_loss(uniform, mask, target, [[6]])) - float(torch.log(torch.tensor(4.0)))) < 1e-4


def test_evaluate_uses_the_runs_last_button_range_unless_told(tmp_path: Path, capsys) -> None:
    from app.nano.evaluate import main as evaluate

    run = tmp_path / "run"
    assert main([*MICRO_RUN, "--out", str(run), "--max-steps", "1", "--buttons", "1-1"]) == 0
    capsys.readouterr()
    assert evaluate(["--out", str(run), "--n", "2"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["buttons"] == [1, 1] and record["chance"]["heldout"] == 1.0
    assert evaluate(["--out", str(run), "--n", "2", "--buttons", "3-3"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["buttons"] == [3, 3] and abs(record["chance"]["heldout"] - 1 / 3) < 1e-3


@pytest.mark.parametrize("bad", ["3-2", "0-1", "a-b", ""])
def test_a_bad_button_range_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    from app.nano.evaluate import main as evaluate

    with pytest.raises(SystemExit) as train_exit:
        main([*MICRO_RUN, "--out", str(tmp_path / "x"), "--buttons", bad])
    with pytest.raises(SystemExit) as evaluate_exit:
        evaluate(["--out", str(tmp_path), "--buttons", bad])
    assert train_exit.value.code == evaluate_exit.value.code == 2
    assert not (tmp_path / "x").exists()


def test_reply_loss_is_the_models_own_at_weight_one_and_weights_the_digits() -> None:
    from app.nano.aux import reply_loss
    from app.nano.examples import IGNORE

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 10, generator=g)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 7, 1, 2], [IGNORE, 4, 7, IGNORE, 9, 7]])
    digits = torch.tensor([7, 9])
    own = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 10),
                                            labels[:, 1:].reshape(-1), ignore_index=IGNORE)
    assert torch.allclose(reply_loss(logits, labels, digits, 1.0), own)
    # At weight w a digit token counts w times: the mean over a hand-weighted list.
    per = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 10),
                                            labels[:, 1:].reshape(-1), ignore_index=IGNORE,
                                            reduction="none")
    kept = labels[:, 1:].reshape(-1)
    w = torch.tensor([0.0 if t == IGNORE else (5.0 if t in (7, 9) else 1.0) for t in kept.tolist()])
    assert torch.allclose(reply_loss(logits, labels, digits, 5.0), (per * w).sum() / w.sum())


def test_tied_reading_scores_cells_against_the_models_own_word_embeddings(tmp_path: Path) -> None:
    """--read-tied: a cell's word is scored against the embedding of the word as a task spells
    it; the gradient reaches that embedding (both sides learn); a run keeps its choice."""
    from app.nano.aux import word_table, word_tokens

    make_folder("fara15", tmp_path / "m", MICRO)
    tokenizer = Tokenizer.from_file(str(tmp_path / "m" / "tokenizer.json"))
    ids, mask = word_tokens(tokenizer, WORDS)
    assert ids.shape[0] == len(WORDS) and mask.sum(1).min() >= 1
    ok = WORDS.index("OK")
    spelled = tokenizer.encode(" OK", add_special_tokens=False).ids
    assert ids[ok, : len(spelled)].tolist() == spelled and mask[ok].sum() == len(spelled)

    torch.manual_seed(0)
    embedding = torch.nn.Parameter(torch.randn(tokenizer.get_vocab_size(), 16) * 0.02)
    heads = AuxHeads(hidden=16, words=len(WORDS), tied=True)
    assert not hasattr(heads, "read")  # no classifier of its own
    cells = torch.randn(3, 16)
    labels = torch.tensor([NONE, ok + 1, WORDS.index("Cancel") + 1])
    table = word_table(embedding, ids, mask)
    assert torch.allclose(table[ok], embedding[spelled].mean(0))
    logits = heads.read_logits(cells, table)
    assert logits.shape == (3, len(WORDS) + 1)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert embedding.grad is not None and embedding.grad[spelled].abs().sum() > 0
    with pytest.raises(ValueError, match="word_table"):
        heads.read_logits(cells, None)

    # Trains end to end, and a resume with the other choice is refused, not half-loaded.
    run = tmp_path / "run"
    assert main([*MICRO_RUN, "--out", str(run), "--max-steps", "2", "--buttons", "1-2",
                 "--aux-read", "1", "--read-tied"]) == 0
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"kind": "step"' in line]
    assert len(steps) == 2 and all(torch.isfinite(torch.tensor(s["read"])) for s in steps)
    assert "read_proj.weight" in torch.load(run / "checkpoint.pt", weights_only=False)["aux"]
    with pytest.raises(SystemExit, match="read-tied"):
        main([*MICRO_RUN, "--out", str(run), "--max-steps", "3", "--buttons", "1-2",
              "--aux-read", "1", "--resume"])


@pytest.mark.parametrize("where", ["all", "first"])
def test_attend_at_first_supervises_only_the_first_digits_position(tmp_path: Path, monkeypatch,
                                                                   where: str) -> None:
    """--attend-at first: the attend target only where the first coordinate digit is predicted
    (at later digits the answer's first digits already point at the target)."""
    import app.nano.train as train_module

    seen: list[list[list[int]]] = []
    real = train_module.attend_loss

    def spy(attention, image_mask, target_cells, digit_at, head=0):
        seen.append([list(d) for d in digit_at])
        return real(attention, image_mask, target_cells, digit_at, head)

    monkeypatch.setattr(train_module, "attend_loss", spy)
    run = tmp_path / where
    assert main([*MICRO_RUN, "--out", str(run), "--max-steps", "1", "--buttons", "1-2",
                 "--aux-attend", "1", "--attend-at", where]) == 0
    start = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert start["attend_at"] == where
    clicks = [d for batch in seen for d in batch if d]
    assert clicks  # the batch had clicks to supervise
    if where == "first":
        assert all(len(d) == 1 for d in clicks)
    else:
        assert all(len(d) > 1 for d in clicks)  # x and y: several digits each


def test_balanced_reading_weighs_labelled_cells_as_much_as_all_the_others() -> None:
    """--read-balanced: one labelled cell among many unlabelled ones weighs half the loss."""
    torch.manual_seed(0)
    plain = AuxHeads(hidden=8, words=3)
    balanced = AuxHeads(hidden=8, words=3, balanced=True)
    balanced.load_state_dict(plain.state_dict())
    cells = torch.randn(10, 8)
    labels = torch.tensor([NONE] * 9 + [2])
    each = torch.nn.functional.cross_entropy(plain.read_logits(cells, None), labels,
                                             reduction="none")
    assert torch.allclose(plain.read_loss(cells, labels, None), each.mean())
    assert torch.allclose(balanced.read_loss(cells, labels, None), (each[:9].mean() + each[9]) / 2)
    # Only one kind of cell: its mean (no empty half dividing by zero).
    none = torch.tensor([NONE] * 10)
    assert torch.isfinite(balanced.read_loss(cells, none, None))
