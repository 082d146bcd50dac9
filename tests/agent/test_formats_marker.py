"""The click marker is drawn by one function, for the run export and the eval report alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import agent.click_marker as click_marker
from agent.eval.report import _task_steps
from agent.trajectory import TrajectoryStore


def a_run(root: Path) -> Path:
    folder = root / "20260101-000000-marker"
    folder.mkdir(parents=True)
    Image.new("RGB", (240, 120), (255, 255, 255)).save(folder / "step-000.png")
    (folder / "run.json").write_text(json.dumps({"task": "t", "started": 1.0,
                                                 "status": "success", "steps": 1}))
    step = {"index": 0, "screenshot": "step-000.png", "screenshot_point": [60.0, 30.0],
            "action": {"action": "left_click", "coordinate": [60, 30]}}
    (folder / "steps.jsonl").write_text(json.dumps(step) + "\n")
    return folder


def test_export_and_report_draw_the_same_marker(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = a_run(tmp_path)
    drawn: list[tuple[tuple[int, int], tuple[float, float]]] = []
    real = click_marker.draw_marker

    def spy(image: Image.Image, point: tuple[float, float]) -> None:
        drawn.append((image.size, point))
        real(image, point)

    monkeypatch.setattr(click_marker, "draw_marker", spy)
    TrajectoryStore(tmp_path).export_html(folder.name, tmp_path / "run.html")
    assert "data:image/jpeg" in _task_steps(tmp_path, folder.name, 5)
    assert drawn == [((240, 120), (60.0, 30.0))] * 2


def test_the_marker_is_drawn_at_the_point() -> None:
    image = Image.new("RGB", (240, 120), (255, 255, 255))
    click_marker.draw_marker(image, (60.0, 30.0))
    assert image.getpixel((60, 30)) == click_marker.COLOUR  # the cross-hair's centre
    assert image.getpixel((200, 100)) == (255, 255, 255)


def test_the_report_refuses_an_implausibly_big_screenshot(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = a_run(tmp_path)
    monkeypatch.setattr(click_marker, "MAX_PIXELS", 1000)  # the export always had this limit
    assert "data:image/jpeg" not in _task_steps(tmp_path, folder.name, 5)
    assert click_marker.marked_screenshot(folder / "step-000.png", (1.0, 1.0)) is None
