"""A Nano run becomes a model folder through the project's exporter, declares its compact system
prompt, and is scored through the backend the factory builds for it — the runtime path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.geometry import Size
from agent.prompts import declared_second_look, declared_system_prompt
from app.nano.examples import SYSTEM
from app.nano.model import SECOND_LOOK
from app.nano.ship import main as ship
from app.nano.train import main as train


def test_a_run_ships_as_a_model_folder_that_the_runtime_drives(tmp_path: Path, capsys,
                                                               monkeypatch) -> None:
    run, model = tmp_path / "run", tmp_path / "model"
    assert train(["--family", "fara15", "--size", "micro", "--minutes", "5", "--seed", "1",
                  "--batch", "2", "--eval-every", "1000", "--eval-n", "1", "--warmup", "1",
                  "--out", str(run), "--max-steps", "1"]) == 0
    assert ship(["--run", str(run), "--out", str(model), "--precision", "int4"]) == 0
    assert (model / "genai_config.json").is_file() and (model / "deskhand.json").is_file()
    assert declared_system_prompt(model) == SYSTEM
    assert declared_second_look(model) == SECOND_LOOK  # the exporter carried it along
    manifest = json.loads((model / "deskhand.json").read_text())
    assert manifest["family"] == "fara15" and manifest["precision"] == "int4"
    capsys.readouterr()
    from agent.inference.onnx import OnnxBackend

    systems: list[str] = []
    real = OnnxBackend._generate

    def spy(self, request):
        systems.append(request.messages[0]["content"][0]["text"])
        return real(self, request)

    monkeypatch.setattr(OnnxBackend, "_generate", spy)
    assert ship(["--score", str(model), "--n", "2", "--buttons", "1-3"]) == 0
    # Scored the way the loop runs it: the ONNX backend, prompted with the declared prompt.
    assert systems == [SYSTEM] * 4  # 2 screens x 2 held-out sets
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(record) >= {"heldout", "heldout_words", "chance"}
    # Chance counted on the screens scored is the one definition's (evaluate.chance).
    from app.nano.evaluate import chance

    assert 0.0 <= record["heldout"] <= 1.0 and record["chance"] == chance(2, (1, 3))
    # Pinned: the first two held-out screens of each split have two buttons and one.
    assert record["chance"] == {"heldout": 0.75, "heldout_words": 0.75}
    # The image budget it was trained with travels to the runtime's processor config.
    from agent.prompts import declared_max_pixels
    from app.nano.desktop import MAX_PIXELS

    assert declared_max_pixels(model) == MAX_PIXELS


def test_desktop_screens_are_scored_with_the_step_after_the_click(tmp_path: Path, capsys) -> None:
    run, model = tmp_path / "run", tmp_path / "model"
    assert train(["--family", "fara15", "--size", "micro", "--minutes", "5", "--batch", "2",
                  "--eval-every", "1000", "--eval-n", "1", "--warmup", "1", "--screens",
                  "desktop", "--out", str(run), "--max-steps", "1"]) == 0
    assert ship(["--run", str(run), "--out", str(model), "--precision", "int4"]) == 0
    capsys.readouterr()
    assert ship(["--score", str(model), "--n", "6", "--screens", "desktop",
                 "--history-scale", "0.5"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["screens"] == "desktop" and record["history_scale"] == 0.5
    assert record["heldout_clicks"] + record.get("heldout_after", 0) == 6
    assert record["median_step_s"] > 0
    # The folder's second look is scored as the loop takes it; the first point's rate beside it.
    assert record["second_look"] == SECOND_LOOK.declared() and "first_heldout" in record
    assert ship(["--score", str(model), "--n", "2", "--screens", "desktop", "--no-second-look"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["second_look"] is None and "first_heldout" not in record
    # --looks scores the declared region with another number of regions.
    assert ship(["--score", str(model), "--n", "2", "--screens", "desktop", "--looks", "1"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["second_look"] == [SECOND_LOOK.region.width, SECOND_LOOK.region.height]


def test_ship_needs_a_run_and_a_destination_and_scores_alone() -> None:
    for argv in (["--run", "x"], ["--score", "m", "--run", "x"],
                 ["--score", "m", "--looks", "3", "--no-second-look"], ["--score", "m", "--looks", "10"],
                 ["--score", "m", "--looks", "3"]):  # "m" declares no second look
        with pytest.raises(SystemExit) as exit_:
            ship(argv)
        assert exit_.value.code == 2


def test_the_score_takes_the_second_look_from_the_screen_at_its_own_size() -> None:
    """`ship --score`'s second look is the loop's (agent.second_look) on `Screen.captured`: a
    first point off the button is moved onto it by a model that points at what it is shown."""
    from PIL import Image, ImageDraw

    from agent.actions import LeftClick, format_call
    from agent.inference.base import ScriptedBackend
    from agent.prompts import get_family
    from app.nano.desktop import MAX_PIXELS
    from app.nano.examples import is_hit
    from app.nano.screens import Box, Button, Screen
    from app.nano.ship import _look_again

    family = get_family("fara15", system=SYSTEM, max_pixels=MAX_PIXELS)  # as a Nano folder declares
    full = Image.new("RGB", (1280, 800), (40, 40, 40))
    ImageDraw.Draw(full).rectangle((760, 408, 839, 429), fill=(230, 20, 20))  # an 80x22 button
    image = full.resize((512, 320), Image.Resampling.BICUBIC)
    screen = Screen(image, (Button("OK", Box(304, 163, 336, 172)),), 0, captured=full)

    def points_at_red(messages, images):
        shown = images[-1]
        red = [(x, y) for y in range(shown.height) for x in range(shown.width)
               if shown.getpixel((x, y))[0] > 150 and shown.getpixel((x, y))[1] < 110]
        x = (min(p[0] for p in red) + max(p[0] for p in red)) // 2
        y = (min(p[1] for p in red) + max(p[1] for p in red)) // 2
        size = Size(*shown.size)
        return format_call("", family.from_model(LeftClick((x, y)), size))

    first = LeftClick((320, 158))  # above the button, as the shipped model's first point was
    assert not is_hit(first, screen)
    backend = ScriptedBackend([points_at_red] * SECOND_LOOK.looks)
    second = _look_again(backend, family, screen, first, SECOND_LOOK)
    assert len(backend.calls) == SECOND_LOOK.looks  # one call per region, each at 512x320
    assert {Size(*call[1][0].size) for call in backend.calls} == {Size(512, 320)}
    assert is_hit(second, screen), second


def test_a_kept_stage_snapshot_ships_like_its_run(tmp_path: Path, capsys) -> None:
    """`--run` takes a snapshot too (the stages kept in app/nano/stages): the same weights as
    the run it came from, to fp16 rounding; a folder that is neither is refused by name."""
    import torch
    from safetensors.torch import load_file

    from app.nano import snapshot
    from app.nano.ship import checkpoint_of

    run = tmp_path / "run"
    assert train(["--family", "fara15", "--size", "micro", "--seed", "2", "--batch", "2",
                  "--eval-every", "1000", "--eval-n", "1", "--warmup", "1",
                  "--out", str(run), "--max-steps", "1"]) == 0
    kept = snapshot.write(run, tmp_path / "kept")
    from_run, from_kept = (load_file(str(checkpoint_of(src, tmp_path / name / "hf")
                                         / "model.safetensors"))
                           for src, name in ((run, "a"), (kept, "b")))
    assert from_run.keys() == from_kept.keys()
    for key, value in from_run.items():
        assert torch.equal(value.to(torch.float16).to(value.dtype), from_kept[key]), key
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        ship(["--run", str(tmp_path), "--out", str(tmp_path / "m")])
    assert exit_.value.code == 2
    assert "neither a training run (checkpoint.pt) nor a snapshot" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
