"""Shifted reuse (agent/inference/kv_shift.py): the span arithmetic, the key rotation, and on the
tiny export: the first layer's shifted keys equal recomputed ones, and steady steps reuse the
screenshots still in the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.inference.kv_shift import plan_shift, rope_of, rotate_keys, rotation
from agent.inference.vl_inputs import VisionSpec, mrope_positions

PAD, VS, VE = 9, 7, 8  # image pad, vision start, vision end in the synthetic prompts below
SPEC = VisionSpec()
GRID = (1, 4, 8)  # 2 x 4 merged tokens = 8 pads


def _rope(k: np.ndarray, pos: np.ndarray, theta: float, rd: int) -> np.ndarray:
    """Reference rotate-half RoPE of keys [n, hd] at positions [n]."""
    inv = 1.0 / (theta ** (np.arange(0, rd, 2) / rd))
    ang = pos[:, None] * inv[None]
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
    x = k[:, :rd]
    half = rd // 2
    turned = np.concatenate([-x[:, half:], x[:, :half]], 1)
    return np.concatenate([x * cos + turned * sin, k[:, rd:]], 1)


@pytest.mark.parametrize("rd", [16, 12])
def test_turning_a_rotated_key_equals_rotating_it_at_the_new_position(rd: int) -> None:
    rng = np.random.default_rng(0)
    k = rng.standard_normal((20, 16))
    pos = rng.integers(100, 5000, 20).astype(np.float64)
    delta = 913
    cos, sin = rotation(delta, 16, 1e6, rd)
    turned = rotate_keys(_rope(k, pos, 1e6, rd).astype(np.float32), cos, sin, rd)
    assert np.abs(turned - _rope(k, pos - delta, 1e6, rd)).max() < 1e-4
    if rd < 16:  # dimensions past the rotary part are left as they are
        assert np.array_equal(turned[:, rd:], k[:, rd:].astype(np.float32))


def _image(digest: str) -> list:
    return [VS, *[PAD] * 8, VE, ("img", digest)]


def _prompt(*parts) -> tuple[np.ndarray, np.ndarray, tuple]:
    """ids, positions, spans of a prompt made of token lists and ("img", digest) markers."""
    ids, digests = [], []
    for part in parts:
        for t in part:
            if isinstance(t, tuple):
                digests.append(t[1])
            else:
                ids.append(t)
    ids = np.asarray(ids, np.int64)
    positions, _ = mrope_positions(ids, PAD, [GRID] * len(digests), SPEC)
    runs = np.flatnonzero(np.diff(np.concatenate([[0], ids == PAD, [0]]).astype(int)))
    spans = tuple((int(a), int(b), d) for a, b, d in zip(runs[0::2], runs[1::2], digests,
                                                          strict=True))
    return ids, positions, spans


SYSTEM = list(range(100, 140))
TASK = [200, 201, 202, 203]


def _turn(k: int) -> list:
    return [300 + k, 301, 302, 303, 304, 305]  # an assistant reply


def _url(k: int) -> list:
    return [400 + k, 401, 402]


def _plan(old, new, keep: int):
    (oi, op, os_), (ni, np_, ns) = old, new
    return plan_shift(oi, op, os_, ni, np_, ns, keep, min_kept=4)


def _keep(old, new) -> int:
    from agent.inference.kv_cache import Held, common_prefix

    return common_prefix(Held(old[0], old[2]), new[0], new[2])


def _check_positions(old, new, shift) -> None:
    moved = old[1][:, shift.src:shift.src + shift.length] - shift.delta
    assert np.array_equal(moved, new[1][:, shift.keep:shift.keep + shift.length])


def test_the_oldest_screenshot_leaves_and_the_first_task_message_stays() -> None:
    old = _prompt(SYSTEM, _image("a"), TASK, _turn(0), _image("b"), _url(1), _turn(1),
                  _image("c"), _url(2), [500, 501])
    new = _prompt(SYSTEM, TASK, _turn(0), _image("b"), _url(1), _turn(1), _image("c"), _url(2),
                  _turn(2), _image("d"), _url(3))
    keep = _keep(old, new)
    assert keep == len(SYSTEM)  # plain prefix reuse stops at the removed image
    shift = _plan(old, new, keep)
    assert shift is not None and shift.src == keep + 10  # past <vs> 8 pads <ve>
    # Everything the old prompt held after the image, up to its generated tail.
    assert shift.length == len(TASK) + 6 + 10 + 3 + 6 + 10 + 3
    # <vs>, the image (its larger merged side, 4) and <ve> are gone from before them.
    assert shift.delta == old[1][0, shift.src] - new[1][0, keep] == 1 + 4 + 1
    _check_positions(old, new, shift)


def test_a_whole_turn_leaving_is_a_removed_span_too() -> None:
    old = _prompt(SYSTEM, TASK, _turn(0), [600], _image("b"), [601], _turn(1), _image("c"),
                  _url(2))
    new = _prompt(SYSTEM, TASK, _turn(0), _turn(1), _image("c"), _url(2), _turn(2))
    shift = _plan(old, new, _keep(old, new))
    assert shift is not None and shift.keep == len(SYSTEM) + len(TASK) + 6
    assert shift.length == 6 + 10 + 3
    _check_positions(old, new, shift)


def test_another_picture_at_the_same_place_is_not_reused() -> None:
    old = _prompt(SYSTEM, _image("a"), TASK, _turn(0), _image("b"), _url(1), _turn(1))
    new = _prompt(SYSTEM, TASK, _turn(0), _image("X"), _url(1), _turn(1), [700])
    shift = _plan(old, new, _keep(old, new))
    # Kept: the task and the reply, up to the <vs> of the changed picture; not its pads.
    assert shift is not None and shift.length == len(TASK) + 6 + 1


def test_a_kept_range_never_ends_inside_an_image_of_the_new_prompt() -> None:
    from agent.inference.kv_shift import _cut_split_image

    spans = ((10, 18, "a"), (30, 38, "b"))
    assert _cut_split_image(spans, 5, 20) == 20  # ends at 25, between the images: as it is
    assert _cut_split_image(spans, 5, 10) == 5  # would end at 15, inside "a": cut at its start
    assert _cut_split_image(spans, 5, 13) == 13  # ends at 18, right after "a"


def test_no_shift_when_nothing_was_removed_or_too_little_is_kept() -> None:
    old = _prompt(SYSTEM, TASK, _image("a"), _url(0))
    grown = _prompt(SYSTEM, TASK, _image("a"), _url(0), _turn(0), _image("b"), _url(1))
    assert _plan(old, grown, _keep(old, grown)) is None  # plain prefix reuse covers it
    (oi, op, os_), (ni, np_, ns) = _prompt(SYSTEM, _image("a"), TASK), _prompt(SYSTEM, TASK, [1])
    assert plan_shift(oi, op, os_, ni, np_, ns, len(SYSTEM)) is None  # under MIN_KEPT


def test_the_cache_moves_keys_turned_and_values_as_they_are() -> None:
    from agent.inference.kv_cache import KVCache

    class FakeOrt:
        class OrtValue:
            @staticmethod
            def ortvalue_from_numpy(a):
                return a

    cache = KVCache(FakeOrt, layers=2, kv_heads=1, head_dim=4, dtype=np.float32)
    cache.reserve(20, 0)
    ids = np.arange(12)
    cache.extend(ids, ((2, 4, "a"), (8, 10, "b")), np.tile(np.arange(12), (3, 1)))
    for i, a in enumerate(cache._arrays):
        a[0, 0, :12] = np.arange(12)[:, None] + 100 * i
    cache.move(2, 5, 6, 3, lambda keys: -keys)
    assert list(cache.held.ids) == [0, 1, 5, 6, 7, 8, 9, 10]
    assert cache.held.images == ((5, 7, "b"),)  # the run at 2..4 was removed, 8..10 moved
    assert np.array_equal(cache.held.positions[0], [0, 1, 2, 3, 4, 5, 6, 7])
    assert np.array_equal(cache._arrays[0][0, 0, 2:8, 0], -np.arange(5, 11))  # keys turned
    assert np.array_equal(cache._arrays[1][0, 0, 2:8, 0], np.arange(5, 11) + 100)  # values


def test_rope_settings_come_from_the_manifest_or_shifting_is_off(tmp_path: Path) -> None:
    assert rope_of(tmp_path) is None
    (tmp_path / "deskhand.json").write_text('{"rope": {"theta": 1000000.0, "rotary_dim": 128}}')
    assert rope_of(tmp_path) == (1e6, 128)
    (tmp_path / "deskhand.json").write_text('{"rope": {"theta": "x"}}')
    assert rope_of(tmp_path) is None


# --- on the tiny export --------------------------------------------------------------------

@pytest.fixture(scope="module")
def shifted_pair(export_fp32: Path):
    pytest.importorskip("onnxruntime")
    from agent.inference.onnx import OnnxBackend

    shifted = OnnxBackend(export_fp32, provider="cpu", kv_shift=True)
    fresh = OnnxBackend(export_fp32, provider="cpu", vision_cache=0, prefix_cache=False)
    return shifted, fresh


def _steps(n: int):
    from tests.agent.inference.test_vlm_runtime import _run_prompts

    return _run_prompts(n)


def test_the_export_records_its_rope_settings(export_fp32: Path) -> None:
    theta, dims = rope_of(export_fp32)
    assert theta > 0 and dims > 0


def test_steady_steps_reuse_the_kept_screenshots_and_layer_0_is_exact(shifted_pair) -> None:
    shifted, fresh = shifted_pair
    shifted.vlm.forget()
    seen = []
    for messages, images in _steps(5):
        logits = shifted.first_logits(messages, images)
        stats = shifted.vlm.stats
        seen.append((stats.cached_tokens, stats.shifted_tokens, stats.computed_tokens))
        assert np.isfinite(logits).all()
        n = shifted.vlm.kv.length
        fresh.first_logits(messages, images)
        assert fresh.vlm.kv.length == n
        # Layer 0's keys and values do not depend on what came before: after a move they
        # must equal the ones computed from scratch. Values exactly; keys to 1e-4 of their
        # size (the graph's own float32 rotation at positions in the thousands rounds the
        # angle by ~1e-4 rad: measured 3e-5 here).
        for j in (0, 1):
            got = shifted.vlm.kv._arrays[j][0, :, :n]
            want = fresh.vlm.kv._arrays[j][0, :, :n]
            assert float(np.abs(got - want).max()) <= 1e-4 * float(np.abs(want).max())
    assert [s[1] for s in seen[:3]] == [0, 0, 0]  # nothing left the window yet
    assert all(s[1] > 0 for s in seen[3:])  # from step 4 the kept screenshots are moved
    # A steady step computes about the new tail only: fewer tokens than one screenshot's
    # worth more than the tail of step 3 (plain reuse recomputes two screenshots there).
    assert seen[3][2] < seen[2][2] + 100 and seen[4][2] < seen[2][2] + 100
