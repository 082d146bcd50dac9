"""The Qwen3.5 runtime: hybrid decoder state, chunked prefill, snapshots and resuming.

Each resumed or chunked run is compared with a fresh one-call prefill of the same prompt on a
second backend with the prefix cache off: same logits (<= 1e-5) and same greedy tokens.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from agent.inference.base import BackendError, FinishReason
from tests.support.qwen35 import PROMPTS, qwen35_export, text_messages

TOL = 1e-5


@pytest.fixture(scope="module")
def folder():
    return qwen35_export("fp32")


@pytest.fixture(scope="module")
def fresh(folder):
    """The reference: every prompt prefilled in one call from an empty state."""
    from agent.inference.onnx import OnnxBackend

    backend = OnnxBackend(folder, provider="cpu", prefix_cache=False)
    backend.vlm.prefill_chunk = 10_000
    return backend


@pytest.fixture
def cached(folder):
    from agent.inference.onnx import OnnxBackend

    return OnnxBackend(folder, provider="cpu")


def _greedy(vlm, prompt, count: int = 8) -> tuple[np.ndarray, list[int]]:
    logits = first = vlm.prefill(prompt, reserve=count)
    tokens, position = [], prompt.next_position
    while len(tokens) < count:
        tokens.append(int(np.argmax(logits)))
        logits = vlm.step(tokens[-1], position)
        position += 1
    return first, tokens


def _prompt(backend, ids):
    return backend.vlm.tokenize(list(ids), [])


def _ids(backend, text: str) -> list[int]:
    return backend.prompts.encode(text_messages(text), [])


def test_factory_picks_the_runtime_from_the_folder(folder, tmp_path) -> None:
    from agent.inference.factory import onnx_model_class
    from agent.inference.qwen35 import Qwen35Model
    from agent.inference.vlm import VisionLanguageModel

    assert onnx_model_class(folder) is Qwen35Model
    (tmp_path / "genai_config.json").write_text(json.dumps({"model": {"type": "fara"}}))
    assert onnx_model_class(tmp_path) is VisionLanguageModel
    (tmp_path / "genai_config.json").write_text(json.dumps({"model": {"type": "llama"}}))
    with pytest.raises(BackendError, match="'llama'"):
        onnx_model_class(tmp_path)


def test_state_has_kv_for_full_layers_and_recurrent_state_for_linear(fresh) -> None:
    state = fresh.vlm.kv
    assert (state.full, state.linear) == ([3], [0, 1, 2])
    assert state.kv.layers == 1  # keys and values for the one full-attention layer only
    assert [v.shape() for v in state.conv + state.recurrent] == [[1, 128, 3]] * 3 + [[1, 4, 16, 16]] * 3


def test_chunked_prefill_state_equals_one_call(fresh, cached) -> None:
    prompt = _prompt(fresh, _ids(fresh, PROMPTS[2]))
    one = fresh.vlm.prefill(prompt, reserve=1)
    cached.vlm.prefill_chunk = 7
    chunked = cached.vlm.prefill(prompt, reserve=1)
    a, b = fresh.vlm.kv, cached.vlm.kv
    assert b.length == a.length == len(prompt.ids)
    assert np.abs(one - chunked).max() <= TOL
    for x, y in zip(a.conv + a.recurrent, b.conv + b.recurrent, strict=True):
        assert np.abs(x.numpy() - y.numpy()).max() <= TOL
    n = a.length
    for x, y in zip(a.kv.values, b.kv.values, strict=True):
        assert np.abs(x.numpy()[:, :, :n] - y.numpy()[:, :, :n]).max() <= TOL


def test_resume_from_system_prompt_snapshot(fresh, cached) -> None:
    first, second = _ids(cached, PROMPTS[0]), _ids(cached, PROMPTS[1])
    _greedy(cached.vlm, _prompt(cached, first))
    system_end = cached.vlm.snapshot_points(_prompt(cached, first))[0]
    assert cached.vlm.kv.snapshot_lengths == [system_end]
    logits, tokens = _greedy(cached.vlm, _prompt(cached, second))
    assert cached.vlm.stats.cached_tokens == system_end > 0
    ref_logits, ref_tokens = _greedy(fresh.vlm, _prompt(fresh, second))
    assert tokens == ref_tokens
    assert np.abs(logits - ref_logits).max() <= TOL


def test_resume_from_a_screenshot_boundary_not_the_live_state(fresh, cached) -> None:
    """Two prompts share everything up to a <|vision_start|>: the second resumes there."""
    vision_start = cached.vlm.tokenizer.token_to_id("<|vision_start|>")
    head = _ids(cached, PROMPTS[2])[:-3]
    first = [*head, vision_start, *_ids(cached, PROMPTS[0])[-12:]]
    second = [*head, vision_start, *_ids(cached, PROMPTS[1])[-9:]]
    _greedy(cached.vlm, _prompt(cached, first))
    assert len(head) in cached.vlm.kv.snapshot_lengths
    logits, tokens = _greedy(cached.vlm, _prompt(cached, second))
    assert cached.vlm.stats.cached_tokens == len(head)
    ref_logits, ref_tokens = _greedy(fresh.vlm, _prompt(fresh, second))
    assert tokens == ref_tokens
    assert np.abs(logits - ref_logits).max() <= TOL
    # Snapshots beyond the resume point were dropped with the keys/values they relied on.
    assert max(cached.vlm.kv.snapshot_lengths) <= len(head) + 1 + 9


def test_continuation_resumes_from_the_live_state(fresh, cached) -> None:
    """A prompt that extends everything held (the next turn after a reply) computes only its
    tail, from the live state; no snapshot is needed."""
    first = _ids(cached, PROMPTS[0])
    _, generated = _greedy(cached.vlm, _prompt(cached, first), count=6)
    held = [*first, *generated]  # _greedy feeds every token it picks
    assert cached.vlm.kv.length == len(held)
    follow = [*held, *_ids(cached, PROMPTS[1])[5:]]
    logits, tokens = _greedy(cached.vlm, _prompt(cached, follow))
    assert cached.vlm.stats.cached_tokens == len(held)
    ref_logits, ref_tokens = _greedy(fresh.vlm, _prompt(fresh, follow))
    assert tokens == ref_tokens
    assert np.abs(logits - ref_logits).max() <= TOL


def test_cancel_streaming_and_timings(cached) -> None:
    pieces: list[str] = []
    stop = threading.Event()

    def on_token(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            stop.set()

    cached.fixed_length = True
    out = cached.generate(text_messages(PROMPTS[1]), [], max_new_tokens=20, on_token=on_token,
                          cancel=stop)
    assert out.finish_reason is FinishReason.CANCELLED
    assert "".join(pieces) == out.text
    assert 3 <= out.generated_tokens < 20  # some tokens are half characters: no piece yet
    assert {"prefill", "decode", "total"} <= set(out.timings)


def test_snapshots_are_bounded(cached) -> None:
    state = cached.vlm.kv
    vision_start = cached.vlm.tokenizer.token_to_id("<|vision_start|>")
    ids = _ids(cached, PROMPTS[2])
    marked = [*ids[:20], *[t for i in ids[20:] for t in (i, vision_start)]]
    _greedy(cached.vlm, _prompt(cached, marked), count=1)
    lengths = state.snapshot_lengths
    assert len(lengths) == state.max_snapshots
    assert lengths[0] == cached.vlm.snapshot_points(_prompt(cached, marked))[0]  # system kept


def test_new_screenshot_resumes_before_it_with_cached_features(fresh, cached) -> None:
    """Step k+1 keeps screenshot 1 and shows a new screenshot 2: the prefill resumes from the
    snapshot taken before screenshot 2; screenshot 1 is not encoded again (the snapshot holds
    its tokens), only the new one is."""
    from tests.support.model_inputs import agent_messages, noise_images

    one, two, other = noise_images(3, (96, 64), seed=5)
    messages = agent_messages(2)
    cached.generate(messages, [one, two], max_new_tokens=2)
    prompt = cached._prepare(messages, [one, other])
    logits, tokens = _greedy(cached.vlm, prompt)
    assert cached.vlm.stats.cached_tokens == prompt.spans[1][0] - 1  # just before <|vision_start|>
    assert (cached.vlm.stats.images_encoded, cached.vlm.stats.images_cached) == (1, 0)
    ref_logits, ref_tokens = _greedy(fresh.vlm, fresh._prepare(messages, [one, other]))
    assert tokens == ref_tokens
    assert np.abs(logits - ref_logits).max() <= TOL
