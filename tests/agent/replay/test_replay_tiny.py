"""The fallback is a real model backend: the tiny checkpoint gets the replay's task, history and screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.inference.base import Backend
from agent.loop import RunConfig, RunStatus, run_task
from agent.replay import ReplayBackend, from_record
from agent.safety import Gate
from agent.trajectory import TrajectoryStore
from tests.agent.replay.test_replay_loop import record_run
from tests.support.replay_scene import TASK, AppExecutor, AppScreen, FakeApp

pytestmark = pytest.mark.slow


class Counting(Backend):
    def __init__(self, backend) -> None:
        self.backend, self.name, self.calls = backend, "tiny", 0

    def _generate(self, request):
        self.calls += 1
        messages, images = request.messages, request.images
        assert TASK in str(messages[1]) and len(images) >= 2  # task, history and the screen
        return self.backend.generate(messages, images, max_new_tokens=24,
                                     on_token=request.on_token, cancel=request.cancel)


def test_unverifiable_step_reaches_the_real_model(tmp_path: Path, reference_backend) -> None:
    store = TrajectoryStore(tmp_path)
    run_id, _asked = record_run(store)
    app = FakeApp(renamed={"oslo": "Trondheim Fjord Lodge"})
    model = Counting(reference_backend)
    recorder = store.start(TASK)
    result = run_task(TASK, backend=ReplayBackend(from_record(store.load(run_id)), fallback=model),
                      screen=AppScreen(app), executor=AppExecutor(app), gate=Gate("never"),
                      recorder=recorder, config=RunConfig(offline=False))
    assert model.calls >= 1
    steps = [s for s in store.load(recorder.run_id).steps
             if (s.replay or {}).get("verification") != "waiting"]
    checks = [s.replay or {} for s in steps]
    assert checks[0].get("verification") == "verified", checks
    # The renamed hotel is gone: that step went to the model. (Which index it lands on depends
    # on what the random tiny model answers, e.g. a retried unparseable reply.)
    assert any(c.get("model_called") and c.get("verification") == "gone" for c in checks[1:]), checks
    # A random tiny model cannot do the step: the run ends without clicking the missing hotel.
    assert result.status is not RunStatus.SUCCESS and "oslo" not in app.clicks, result
