"""The tiny random Qwen3.5 export through the agent loop, as `deskhand run --model DIR` loads it.

The model folder names its family (deskhand.json), so the loop prompts it with Fara1.5's
prompt and sizes screenshots on its grid (factor 32, 1440x900 -> 1440x896). Every step first
gets the random model's own reply — whatever it is, the loop feeds the mistake back — and then,
on the retry, the real model runs on the real prompt again but a scripted click stands in for
its answer, so that the history grows and the run goes on to its step limit.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

from agent.actions import LeftClick, format_call
from agent.inference.base import Backend, Generation
from agent.loop import RunConfig, RunStatus, run_task
from agent.prompts import Fara15Family
from agent.safety import Gate, Limits
from tests.support.fakes import FakeScreen, RecordingExecutor
from tests.support.qwen35 import qwen35_export

pytestmark = pytest.mark.slow

CLICKS = 3  # the third screen's prompt fills the window: three screenshots
STEPS = 2 * CLICKS  # a refused reply is a step of its own
CLICK = format_call("Click the middle.", LeftClick((500, 500)))  # display grid: 0-1000


class EveryOtherReplyScripted(Backend):
    """The real model on every call; its own text on odd calls, a click on even ones."""

    def __init__(self, model: Backend) -> None:
        self.model, self.name, self.family = model, "tiny-qwen35", model.family
        self.calls: list[tuple[list, list, Generation]] = []

    def _generate(self, request) -> Generation:
        real = self.model.generate(request.messages, request.images, max_new_tokens=32)
        self.calls.append((list(request.messages), list(request.images), real))
        if len(self.calls) % 2:
            return real
        return Generation(CLICK, real.prompt_tokens, real.generated_tokens, real.timings)


@pytest.fixture(scope="module")
def tiny_backend():
    from agent.inference.factory import ModelKind, ModelSpec, build_backend

    return build_backend(ModelSpec(ModelKind.FOLDER, str(qwen35_export("fp32"))), provider="cpu")


def test_the_loop_runs_the_tiny_qwen35_model_with_fara15_prompts(tiny_backend) -> None:
    assert tiny_backend.family == "fara15"
    backend = EveryOtherReplyScripted(tiny_backend)
    executor = RecordingExecutor()
    steps = []
    result = run_task("Find the opening hours.", backend=backend, screen=FakeScreen(1440, 900),
                      executor=executor, gate=Gate("never"), on_step=steps.append,
                      config=RunConfig(limits=Limits(max_steps=STEPS)))
    assert result.status is RunStatus.MAX_STEPS, result.reason
    assert len(executor.actions) == CLICKS and len(backend.calls) == STEPS
    family = Fara15Family.load()
    for messages, images, real in backend.calls:
        assert messages[0]["content"][0]["text"] == family.system_prompt()
        assert all(im.width % 32 == 0 and im.height % 32 == 0 for im in images)
        assert images[-1].size == (1440, 896)
        assert 1 <= len(images) <= family.max_images and real.generated_tokens >= 1
    assert [len(images) for _, images, _ in backend.calls] == [1, 1, 2, 2, 3, 3]
    for i in range(0, STEPS, 2):  # each random reply was refused and fed back
        retry = backend.calls[i + 1][0]
        assert retry[-2] == {"role": "assistant", "content": [
            {"type": "text", "text": backend.calls[i][2].text}]}
        feedback = family.data["parse_error_feedback"].split("{error}")[0]
        assert retry[-1]["content"][0]["text"].startswith(feedback)
    # The hybrid state's snapshots let later prompts resume instead of prefilling all again.
    assert all(real.cached_tokens > 0 for _, _, real in backend.calls[1:])
