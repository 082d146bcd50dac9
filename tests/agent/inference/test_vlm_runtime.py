"""Deskhand's ONNX loop: prefix reuse, vision cache and chunked prefill change no numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from agent.geometry import Size
from agent.inference.kv_cache import Held, common_prefix
from agent.inference.ort_session import physical_cores, thread_count
from agent.prompts import Turn, get_family
from tests.support.model_inputs import noise_images

SIZE = (308, 224)
# fp32 sums in another order (a cached prefix, chunks) differ in the last bits only.
TOLERANCE = 1e-4


def _run_prompts(steps: int, seed: int = 3):
    """Messages and images of steps 1..`steps` of a run, the newest three screenshots kept."""
    family = get_family()
    shots = noise_images(steps, SIZE, seed=seed)
    history, prompts = [], []
    for k in range(steps):
        prompts.append(family.build("Find a lasagna recipe", history, shots[k], Size(*SIZE),
                                    url=f"http://localhost/{k}"))
        history.append(Turn(shots[k], f"Step {k}: I click.\n<tool_call>\n{{}}\n</tool_call>",
                            f"http://localhost/{k}"))
    return prompts


@pytest.fixture(scope="module")
def backends(export_fp32: Path):
    from agent.inference.onnx import OnnxBackend

    cached = OnnxBackend(export_fp32, provider="cpu")
    fresh = OnnxBackend(export_fp32, provider="cpu", vision_cache=0, prefix_cache=False)
    return cached, fresh


def test_a_run_with_caches_gives_the_same_logits_and_tokens(backends) -> None:
    cached, fresh = backends
    cached.vlm.forget()
    seen = []
    for step, (messages, images) in enumerate(_run_prompts(5), start=1):
        got = cached.first_logits(messages, images)
        stats = cached.vlm.stats
        seen.append((stats.cached_tokens, stats.images_encoded, stats.images_cached))
        expected = fresh.first_logits(messages, images)
        assert float(np.abs(got - expected).max()) <= TOLERANCE, step
        assert cached.generate(messages, images, max_new_tokens=6).text == \
            fresh.generate(messages, images, max_new_tokens=6).text
    assert fresh.vlm.stats.cached_tokens == 0 and fresh.vlm.stats.images_cached == 0
    # Step 1 computes everything; later steps encode only the new screenshot: in steps 2-3
    # the earlier ones sit in the reused prefix, from step 4 (oldest dropped) they come from
    # the vision cache ...
    assert seen[0] == (0, 1, 0)
    assert [s[1] for s in seen[1:]] == [1, 1, 1, 1]
    assert [s[2] for s in seen[1:]] == [0, 0, 2, 2]
    # ... and reuse at least the system prompt (the whole previous prompt while nothing drops).
    assert all(s[0] > 1000 for s in seen[1:])


def test_a_changed_history_image_is_never_reused(backends) -> None:
    cached, fresh = backends
    cached.vlm.forget()
    _, (m2, i2) = _run_prompts(2)
    cached.first_logits(m2, i2)
    swapped = [noise_images(1, SIZE, seed=99)[0], i2[1]]  # same prompt text, other first image
    got = cached.first_logits(m2, swapped)
    start = cached.vlm.kv.held.images[0][0]
    assert cached.vlm.stats.cached_tokens <= start  # stops before the changed image
    assert float(np.abs(got - fresh.first_logits(m2, swapped)).max()) <= TOLERANCE


def test_chunked_prefill_matches_one_call(export_fp32: Path) -> None:
    from agent.inference.onnx import OnnxBackend

    small = OnnxBackend(export_fp32, provider="cpu", prefix_cache=False)
    small.vlm.prefill_chunk = 100  # image runs and text cut at many places
    whole = OnnxBackend(export_fp32, provider="cpu", prefix_cache=False)
    whole.vlm.prefill_chunk = 1 << 20
    messages, images = _run_prompts(3)[2]
    diff = np.abs(small.first_logits(messages, images) - whole.first_logits(messages, images))
    assert float(diff.max()) <= TOLERANCE


def test_vision_cache_is_bounded(export_fp32: Path) -> None:
    from agent.inference.onnx import OnnxBackend

    backend = OnnxBackend(export_fp32, provider="cpu", vision_cache=2)
    for messages, images in _run_prompts(4):
        backend.first_logits(messages, images)
    assert len(backend.vlm._features) == 2


def test_common_prefix_respects_image_identity() -> None:
    ids = np.array([1, 2, 9, 9, 9, 3, 4])
    held = Held(ids, ((2, 5, "a"),))
    assert common_prefix(held, ids, ((2, 5, "a"),)) == 7
    assert common_prefix(held, ids, ((2, 5, "b"),)) == 2
    assert common_prefix(held, np.array([1, 2, 9, 9, 9, 3, 5]), ((2, 5, "a"),)) == 6
    assert common_prefix(Held(), ids, ()) == 0


def test_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.inference.base import BackendError

    assert physical_cores() >= 1
    monkeypatch.setenv("DESKHAND_THREADS", "3")
    assert thread_count() == 3
    monkeypatch.setenv("DESKHAND_THREADS", "many")
    with pytest.raises(BackendError, match="DESKHAND_THREADS"):
        thread_count()
