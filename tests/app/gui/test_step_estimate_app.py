"""After the model's warm-up, the app's status bar says the expected time per step."""

from __future__ import annotations

import pytest

from agent.inference.base import FinishReason, Generation
from app.controller import RunController
from app.settings import Settings

pytestmark = [pytest.mark.gui]


class ProbedBackend:
    """Stands in for the model process: answers the probe with known timings."""

    def __init__(self, _settings) -> None:
        self.probes = 0

    def generate(self, messages, images, *, max_new_tokens):
        self.probes += 1
        return Generation("x", 100, 4, {"vision": 0.5, "prefill": 1.5, "decode": 0.75},
                          FinishReason.LENGTH)


def test_preload_reports_the_expected_time_per_step(qtbot, services, monkeypatch) -> None:
    monkeypatch.setattr("app.controller.default_backend", ProbedBackend)
    services.backend = ProbedBackend
    controller = RunController(Settings(model="any"), services)
    with qtbot.waitSignal(controller.preloaded, timeout=10_000) as blocker:
        assert controller.preload() is not None
    message = blocker.args[0]
    assert message.startswith("Model ready (")
    assert "about 55 s per step on this machine (prompt 50 tok/s, reply 4.0 tok/s" in message
    backend = controller._backend_cache[1]
    assert backend.probes == 1 and controller.step_estimate.step_s == pytest.approx(54.64)
    assert controller._backend_factory(controller.settings)() is backend  # timed once only
    assert backend.probes == 1


def test_the_status_bar_shows_it(qtbot, services, monkeypatch) -> None:
    from app.main import DeskhandApp

    monkeypatch.setattr("app.controller.default_backend", ProbedBackend)
    services.backend = ProbedBackend
    desk = DeskhandApp(Settings(model="any"), services, hotkeys=False)
    try:
        with qtbot.waitSignal(desk.controller.preloaded, timeout=10_000):
            desk.controller.preload()
        qtbot.waitUntil(lambda: "per step" in desk.window.status_phase.text(), timeout=5_000)
        assert "about 55 s per step on this machine" in desk.window.status_phase.text()
    finally:
        desk.shutdown()
