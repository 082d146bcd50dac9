"""Nano training: a micro run writes a checkpoint, and a resumed run continues exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.nano.train import main

MICRO = ["--family", "fara15", "--size", "micro", "--minutes", "10", "--seed", "3",
         "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "2"]


def _losses(out: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["kind"] == "step"]


def test_resumed_run_continues_at_step_4_with_the_uninterrupted_losses(tmp_path: Path) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*MICRO, "--out", str(whole), "--max-steps", "5"]) == 0
    assert main([*MICRO, "--out", str(parts), "--max-steps", "3"]) == 0
    assert (parts / "checkpoint.pt").is_file() and (parts / "model" / "config.json").is_file()
    first = _losses(parts)
    assert [s for s, _ in first] == [1, 2, 3]
    assert main([*MICRO, "--out", str(parts), "--max-steps", "5", "--resume"]) == 0
    resumed = _losses(parts)
    assert [s for s, _ in resumed] == [1, 2, 3, 4, 5]  # continued at step 4
    assert resumed == _losses(whole)  # the same loss at every step, to the last bit
    assert (parts / "curve.png").is_file()
    evals = [json.loads(line) for line in (parts / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert evals and {"heldout", "heldout_words", "heldout_parsed"} <= set(evals[-1])


def test_a_finished_folder_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    assert main([*MICRO, "--out", str(tmp_path), "--max-steps", "1"]) == 0
    with pytest.raises(SystemExit):
        main([*MICRO, "--out", str(tmp_path), "--max-steps", "2"])


def test_an_attempt_stopped_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    """Killed before its first checkpoint (the recipe then runs the stage again from
    --init-from): the stage starts afresh instead of failing on its own model folder."""
    first, stage = tmp_path / "first", tmp_path / "stage"
    assert main([*MICRO, "--out", str(first), "--max-steps", "1"]) == 0
    for _ in range(2):
        assert main([*MICRO, "--out", str(stage), "--max-steps", "1", "--init-from",
                     str(first)]) == 0
        (stage / "checkpoint.pt").unlink()  # as if killed before it was written
    assert main([*MICRO, "--out", str(stage), "--max-steps", "1", "--init-from", str(first)]) == 0
    records = [json.loads(line) for line in (stage / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records].count("start") == 1
    assert (stage / "metrics.unsaved.jsonl").is_file() and (stage / "checkpoint.pt").is_file()
    # A model folder that no run wrote is not removed.
    other = tmp_path / "other"
    (other / "model").mkdir(parents=True)
    (other / "model" / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit, match=r"no run of app\.nano\.train"):
        main([*MICRO, "--out", str(other), "--max-steps", "1", "--init-from", str(first)])
    assert (other / "model" / "mine.txt").read_text() == "keep"


def test_a_snapshot_starts_the_next_stage_with_the_same_weights(tmp_path: Path) -> None:
    """A snapshot (fp16 safetensors, no optimizer, no pickle) is a valid --init-from: the next
    stage starts from the run's weights (to fp16 precision), and a broken one is refused."""
    import torch

    from app.nano import snapshot

    run, snap, nxt = tmp_path / "run", tmp_path / "snap", tmp_path / "next"
    assert main([*MICRO, "--out", str(run), "--max-steps", "2"]) == 0
    assert snapshot.main(["--run", str(run), "--out", str(snap)]) == 0
    assert sorted(p.name for p in snap.iterdir()) == ["model", "snapshot.json",
                                                      "weights.safetensors"]
    info, weights, heads = snapshot.read(snap)
    assert info["family"] == "fara15" and info["step"] == 2 and heads
    trained = torch.load(run / "checkpoint.pt", weights_only=False)
    for name, value in trained["model"].items():
        assert torch.allclose(weights[name], value, rtol=1e-3, atol=1e-4), name
    # The next stage starts from it: at step 0 its weights are the snapshot's.
    assert main([*MICRO, "--out", str(nxt), "--max-steps", "1", "--init-from", str(snap),
                 "--lr", "0"]) == 0
    started = torch.load(nxt / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(started[k], weights[k]) for k in weights)
    with pytest.raises(SystemExit, match="trained fara15, not fara"):
        main([*MICRO[:1], "fara", *MICRO[2:], "--out", str(tmp_path / "x"), "--max-steps", "1",
              "--init-from", str(snap)])
    (snap / "weights.safetensors").write_bytes(b"not tensors")
    with pytest.raises(SystemExit, match="not a readable Nano snapshot"):
        main([*MICRO, "--out", str(tmp_path / "y"), "--max-steps", "1", "--init-from", str(snap)])


@pytest.mark.parametrize("family", ["fara15", "fara"])
def test_the_patch_embedding_trains_as_a_product_with_the_same_outputs_and_gradients(
        tmp_path: Path, family: str) -> None:
    import copy

    import torch

    from app.nano.model import MICRO as MICRO_SIZE
    from app.nano.model import build_model, fast_patch_embedding, make_folder

    make_folder(family, tmp_path, MICRO_SIZE)
    slow = build_model(tmp_path)
    # Training that reads attention weights reads the language model's: the vision tower keeps
    # its fast attention.
    reading = build_model(tmp_path, "eager").config
    assert (reading.text_config._attn_implementation, reading.vision_config._attn_implementation) \
        == ("eager", "sdpa")
    fast = copy.deepcopy(slow)
    assert fast_patch_embedding(fast) == 1  # the vision patch embedding, nothing else
    assert fast.state_dict().keys() == slow.state_dict().keys()  # checkpoints unchanged
    conv = next(m for m in slow.modules() if isinstance(m, torch.nn.Conv3d))
    product = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv3d))
    assert type(product) is not torch.nn.Conv3d
    torch.manual_seed(0)
    patches = torch.randn(37, conv.in_channels, *conv.kernel_size)
    a, b = conv(patches), product(patches)
    assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
    (a.square().sum()).backward()
    (b.square().sum()).backward()
    assert torch.allclose(conv.weight.grad, product.weight.grad, rtol=1e-4, atol=1e-4)
    if conv.bias is not None:  # Qwen3.5's has one, Qwen2.5-VL's none
        assert torch.allclose(conv.bias.grad, product.bias.grad, rtol=1e-4, atol=1e-4)
    # The model's own vision forward takes the product, never the convolution.
    convolved = []
    real = torch.nn.Conv3d.forward
    torch.nn.Conv3d.forward = lambda self, x: convolved.append(x.shape) or real(self, x)
    try:
        grid = torch.tensor([[1, 4, 6]])
        pixels = torch.randn(24, conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
                             * conv.kernel_size[2])
        with torch.no_grad():
            fast.model.visual(pixels, grid_thw=grid)
        assert convolved == []
        with torch.no_grad():
            slow.model.visual(pixels, grid_thw=grid)
        assert len(convolved) == 1  # the test sees a convolution where there is one
    finally:
        torch.nn.Conv3d.forward = real
    # Any other input shape goes through the convolution itself.
    wide = torch.randn(2, conv.in_channels, conv.kernel_size[0], 2 * conv.kernel_size[1],
                       conv.kernel_size[2])
    assert torch.allclose(conv(wide), product(wide), atol=1e-5)


@pytest.mark.parametrize(("device", "says"), [("cuda", "sees no CUDA device"),
                                              ("cuda:x", "--device"), ("mps", "cpu or cuda")])
def test_a_device_this_torch_cannot_train_on_is_refused_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str, says: str) -> None:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: nothing to refuse")
    with pytest.raises(SystemExit) as exit_:
        main([*MICRO, "--out", str(tmp_path / "run"), "--max-steps", "1", "--device", device])
    assert exit_.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before the run folder was made
