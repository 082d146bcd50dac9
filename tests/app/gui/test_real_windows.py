"""Real windows on Xvfb (xcb), each scenario in its own process: see tests/app/gui/xvfb_driver.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = [pytest.mark.xvfb, pytest.mark.gui]


def drive(scenario: str, display: str, out: Path) -> dict:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    proc = subprocess.run([sys.executable, "-m", "tests.app.gui.xvfb_driver", scenario, str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    keep = os.environ.get("DESKHAND_SHOT_DIR")  # to look at the screenshots after a run
    if keep:
        shutil.copytree(out, Path(keep) / scenario, dirs_exist_ok=True)
    return json.loads((out / "result.json").read_text())


def share(image: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, ...]) -> float:
    """Fraction of the pixels in `box` that have exactly `colour`."""
    region = image.crop(box)
    counts = Counter(region.get_flattened_data())
    return counts[tuple(colour)] / (region.width * region.height)


def test_main_window_during_a_run_shows_the_fed_screenshot(xvfb_display, tmp_path):
    result = drive("window", xvfb_display, tmp_path)
    assert result["status"] == "success" and result["answer"] == "Found it: 45 minutes."
    shot = Image.open(tmp_path / "window-during-run.png").convert("RGB")
    assert len(shot.getcolors(1 << 20) or []) > 50, "the window grab is blank"
    x, y, w, h = result["live_rect"]
    # The lower part of the live view shows the body colour of one of the fed screenshots.
    body = (x + w // 4, y + h // 2, x + 3 * w // 4, y + h - 12)
    best = max(share(shot, body, c) for c in result["fed_colours"])
    assert best > 0.8, f"the live view does not show the fed screenshot ({best:.2f})"
    # The window itself is there around it: not the fed colour everywhere.
    assert max(share(shot, (0, 0, 1440, 900), c) for c in result["fed_colours"]) < 0.6


def test_status_pill_is_never_in_the_agents_screenshots_nor_takes_the_focus(xvfb_display, tmp_path):
    result = drive("pill", xvfb_display, tmp_path)
    assert result["status"] == "success" and result["captures"] >= 4
    assert result["controls"] >= 1 and result["window_visible_during_run"] is False
    x, y, w, h = result["pill_rect"]
    box = (x, y, x + w, y + h)
    control = Image.open(tmp_path / "pill-control-0.png").convert("RGB")
    assert share(control, box, result["pill_colour"]) > 0.5, "the pill was not on screen"
    # Showing the pill never moved the keyboard focus away from the application being driven.
    assert result["focus"] and all(f == result["target_window"] for f in result["focus"])
    for i in range(result["captures"]):
        seen = Image.open(tmp_path / f"agent-capture-{i}.png").convert("RGB")
        assert share(seen, box, result["pill_colour"]) == 0.0
        assert share(seen, box, result["target_colour"]) > 0.99  # the app underneath, repainted
