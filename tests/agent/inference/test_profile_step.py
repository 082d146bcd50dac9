"""scripts/profile_step.py: the steady-step profile (issue 18) on the tiny int4 export.

It must profile the step it says it does: the last step of a run whose window has slid, where
plain prefix reuse recomputes the kept screenshots and shifted reuse does not; and the operator
and Python tables must hold that step's work (not empty, not the whole run's)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from agent.inference.vlm import PREFILL_CHUNK

ROOT = Path(__file__).resolve().parents[3]


def _script():
    spec = importlib.util.spec_from_file_location("profile_step", ROOT / "scripts/profile_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profile_of_a_steady_step_before_and_after_shifted_reuse(export_int4: Path,
                                                                  tmp_path: Path, capsys) -> None:
    out = tmp_path / "profile.json"
    assert _script().main([str(export_int4), "--steps", "5", "--new-tokens", "4",
                           "--size", "112x84", "--threads", "1", "--json", str(out)]) == 0
    plain, shifted = json.loads(out.read_text())
    assert (plain["kv_shift"], shifted["kv_shift"]) == (False, True)
    for r in (plain, shifted):
        assert r["step"] == 5 and r["images_encoded"] == 1  # only the new screenshot is encoded
        assert r["computed_tokens"] + r["cached_tokens"] == r["prompt_tokens"]
        assert r["decoder_ops_ms"] and r["python"]
        assert r["vision_ops_ms"]  # the new screenshot's encoding, on the vision session's clock
        assert set(r["stages_s"]) >= {"preprocess", "vision", "prefill", "decode", "total"}
    # Step 5 drops the oldest screenshot: plain reuse stops at that point, shifted keeps the rest.
    assert plain["shifted_tokens"] == 0 and shifted["shifted_tokens"] > 0
    assert shifted["computed_tokens"] < plain["computed_tokens"]
    # The tables hold one step's decoder work, not the warm-up's or earlier steps': the prefill's
    # chunks and three decode calls (the prefill yields the first of the 4 tokens).
    for r in (plain, shifted):
        assert r["decoder_runs"] == -(-r["computed_tokens"] // PREFILL_CHUNK) + 3
    assert "with --kv-shift" in capsys.readouterr().out
