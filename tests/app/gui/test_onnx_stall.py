"""The GUI thread during a run with the real ONNX backend (the tiny exported model, on CPU)."""

from __future__ import annotations

import pytest

from app.controller import RunController
from app.services import default_backend
from app.settings import Settings
from app.window import MainWindow
from tests.app.gui.stall import StallProbe, check_stall, idle_worst, report

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_gui_thread_never_stalls_with_the_tiny_onnx_model(qtbot, services, export_int4):
    pytest.importorskip("onnxruntime")
    services.backend = default_backend  # the app's own path: model process, load, stream
    settings = Settings(model=str(export_int4), provider="cpu", hide_window_during_run=False,
                        max_steps=3)
    controller = RunController(settings, services)
    window = MainWindow(controller)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(300)  # the first paint loads fonts; the bar is about the run, not start-up
    tokens: list[str] = []
    controller.token.connect(tokens.append)
    idle = idle_worst(qtbot, 2.0)
    try:
        with StallProbe() as probe, \
                qtbot.waitSignal(controller.run_finished, timeout=120_000) as blocker:
            window.task.setEditText("find a recipe")
            window.run_button.click()
    finally:
        controller.close_backend()
    result = blocker.args[0]
    idle = max(idle, idle_worst(qtbot, 1.0))
    print(f"\ntiny ONNX model, {result.status.value} after {result.steps} steps, {len(tokens)} "
          "tokens: " + report("run", probe, idle))
    # The random tiny model writes no valid tool call: the run ends as a model error, by design.
    assert tokens, "no tokens were streamed"
    assert window.steps.topLevelItemCount() == result.steps >= 1
    check_stall(probe, idle)
