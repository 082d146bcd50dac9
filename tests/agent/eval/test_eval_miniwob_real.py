"""MiniWoB++ through the harness with the real `miniwob` package (installed by `setup.sh dev`).

The stand-in page in test_eval_harness.py checks the wiring; these run the package's own pages,
so a change in how the package starts an episode, writes its instruction or grades itself shows
up here rather than as a silent 0 % in a measurement.
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.eval.runner import EvalSettings, run_eval
from agent.eval.tasks import miniwob_tasks

# The single-screen tasks Nano's measurement uses (README "What was measured").
MEASURED = ("click-button", "click-link", "click-checkboxes", "enter-text", "focus-text",
            "click-dialog")


def test_the_measured_tasks_are_in_the_installed_package() -> None:
    ids = {t.id for t in miniwob_tasks()}
    assert len(ids) >= 100  # the package's HTML tasks, not a stand-in
    assert {f"miniwob--{name}" for name in MEASURED} <= ids


def _run(tmp_path: Path, display: str, steps: list[dict], name: str) -> object:
    plans = tmp_path / f"{name}.jsonl"
    plans.write_text(json.dumps({"id": "miniwob--click-test", "wrong_answer": "-",
                                 "steps": steps}) + "\n", encoding="utf-8")
    settings = EvalSettings(tasks=Path("miniwob"), only=("click-test",), model="scripted:solver",
                            out=tmp_path / name, solutions=plans, max_steps=4)
    (record,) = run_eval(settings, displays=[display]).records
    return record


def test_a_real_page_grades_a_real_click(tmp_path: Path, xvfb_display: str) -> None:
    record = _run(tmp_path, xvfb_display, [{"op": "click", "selector": "#subbtn"},
                                           {"op": "answer", "text": "Clicked.", "status": "success"}],
                  "right")
    assert record.passed and record.verdict["reward"] > 0, record
    run_json = json.loads((tmp_path / "right" / record.dir / "run.json").read_text())
    assert run_json["task"] == "Click the button."  # the page's own instruction reached the model


def test_a_real_page_fails_an_answer_without_the_click(tmp_path: Path, xvfb_display: str) -> None:
    # Claiming success is not enough: the page's reward decides, and nothing was clicked.
    record = _run(tmp_path, xvfb_display, [{"op": "answer", "text": "Done.", "status": "success"}],
                  "wrong")
    assert not record.passed and record.verdict["reward"] <= 0, record


def _yellow(png: Path) -> int:
    """Pixels of MiniWoB's yellow instruction box (#query's background) in a screenshot."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    return sum(1 for r, g, b in image.get_flattened_data() if r > 235 and g > 235 and b < 60)


def test_the_first_screenshot_shows_the_started_episode(tmp_path: Path, xvfb_display: str) -> None:
    """The model's first look is at the episode, not at the START cover the page shows before
    it: a measurement once sent every first step a screenshot taken before Chromium had painted
    the started episode (the model then clicked at nothing)."""
    record = _run(tmp_path, xvfb_display, [{"op": "click", "selector": "#subbtn"},
                                           {"op": "answer", "text": "Clicked.", "status": "success"}],
                  "first")
    first = tmp_path / "first" / record.dir / "step-000.png"
    assert _yellow(first) > 2000, "the first screenshot shows no instruction: the START cover?"
