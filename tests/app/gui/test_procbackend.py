"""The model in a child process: streaming, cancel at once, errors, and a dead child."""

from __future__ import annotations

import time

import pytest

from agent.inference.base import BackendError
from agent.safety import StopFlag
from app.procbackend import ProcessBackend
from tests.support.model_inputs import agent_messages, noise_images

pytestmark = pytest.mark.slow


def test_streams_cancels_and_survives_a_broken_folder(export_int4, tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(BackendError):
        ProcessBackend(str(tmp_path), "cpu")
    backend = ProcessBackend(str(export_int4), "cpu")
    try:
        pieces: list[str] = []
        gen = backend.generate(agent_messages(1), noise_images(1, (1036, 588), 0),
                               max_new_tokens=20, on_token=pieces.append)
        assert gen.generated_tokens == 20 and "".join(pieces) == gen.text
        assert gen.cached_tokens == 0 and gen.cached_images == 0
        stop = StopFlag()
        stopped_at: list[float] = []

        def stop_now(_piece: str) -> None:  # mid-answer: the child is still generating
            if not stopped_at:
                stopped_at.append(time.monotonic())
                stop.set()

        gen = backend.generate(agent_messages(1), noise_images(1, (1036, 588), 1),
                               max_new_tokens=200, on_token=stop_now, cancel=stop)
        assert gen.finish_reason == "cancelled" and time.monotonic() - stopped_at[0] < 0.5
        # The cancelled request's late output is dropped; the next answer is its own.
        again = backend.generate(agent_messages(1), noise_images(1, (1036, 588), 0),
                                 max_new_tokens=20)
        assert again.text == "".join(pieces)
        # Same screenshot as the first call: its features came from the child's vision cache, the
        # system prompt from its key/value cache (the cancelled request prefilled another image
        # in between), and the counts came back over the pipe.
        assert again.cached_images == 1 and 0 < again.cached_tokens < again.prompt_tokens
        backend._proc.kill()
        backend._proc.join(5)
        with pytest.raises(BackendError, match="ended unexpectedly"):
            backend.generate(agent_messages(1), noise_images(1, (1036, 588), 0), max_new_tokens=5)
    finally:
        backend.close()
