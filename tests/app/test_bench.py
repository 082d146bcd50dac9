"""`deskhand bench` end to end on the tiny model: an agent run per backend, table, levers, bounds."""

from __future__ import annotations

import json
from pathlib import Path

from app import bench
from app.bench.report import steady_steps

STEPS = 5


def test_cli_registers_bench() -> None:
    from app.commands import build_parser

    args = build_parser().parse_args(["bench", "--tiny", "--steps", "4", "--new-tokens", "3"])
    assert args.command == "bench" and args.tiny and args.new_tokens == 3 and args.steps == 4
    assert args.backends.split(",") == list(bench.DEFAULT_BACKENDS)


def test_bench_tiny_end_to_end(tiny_checkpoint: Path, export_int4: Path,
                               export_fp32: Path, tmp_path: Path,
                               capsys) -> None:
    out = tmp_path / "bench.json"
    backends = ["onnx-int4", "onnx-fp32", "torch-bf16", "torch-fp32"]
    code = bench.main(["--tiny", "--steps", str(STEPS), "--new-tokens", "3", "--no-warmup",
                       "--bandwidth-mb", "32", "--work-dir", str(tmp_path / "work"),
                       "--checkpoint", str(tiny_checkpoint), "--onnx-int4", str(export_int4),
                       "--onnx-fp32", str(export_fp32), "--backends", ",".join(backends),
                       "--levers", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(out.read_text())
    rows = {r["backend"]: r for r in report["rows"]}
    assert set(rows) == set(backends) | set(bench.LEVER_BACKENDS)
    for row in rows.values():
        steps = row["steps"]
        assert [s["step"] for s in steps] == list(range(1, STEPS + 1))
        assert [s["images"] for s in steps] == [1, 2, 3, 3, 3]  # the newest three are kept
        for s in steps:
            assert s["generated"] == 3  # forced: end-of-sequence cannot cut a step short
            assert s["prompt_tokens"] > 1000  # the real Fara system prompt is in
            for key in ("vision_s", "decode_s", "total_s"):
                assert s[key] > 0, (row["backend"], key)
        assert row["peak_rss"] > 0
    ours = rows["onnx-int4"]["steps"]
    # Every step after the first encodes only its new screenshot and reuses the system prompt.
    assert [s["images_encoded"] for s in ours] == [1, 1, 1, 1, 1]
    assert ours[0]["cached_tokens"] == 0 and all(s["cached_tokens"] > 1000 for s in ours[1:])
    # While the history grows, everything before the new turn is reused.
    assert ours[1]["cached_tokens"] == ours[0]["prompt_tokens"]
    assert all(s["images_encoded"] == s["images"] for s in rows["torch-bf16"]["steps"])
    off = rows["onnx-int4-nocache"]["steps"]
    assert [s["images_encoded"] for s in off] == [1, 2, 3, 3, 3]
    assert all(s["cached_tokens"] == 0 for s in off)
    assert [s["step"] for s in steady_steps(ours)] == [4, 5]
    summary = printed.split("Summary", 1)[1].split("Levers", 1)[0]
    for name in backends:
        assert f"\n{name} " in summary
    levers = printed.split("Levers:", 1)[1].split("Extrapolated", 1)[0]
    assert "prefix reuse" in levers and "vision cache" in levers and "GEMM route" in levers
    assert "Memory bandwidth:" in printed and "of bound" in printed
    assert "Extrapolated to Fara-7B" in printed
    # Given folders are used as they are, never deleted; the block-32 export was built and removed.
    assert (tiny_checkpoint / "config.json").is_file() and (export_int4 / "model.onnx").is_file()
    assert not (tmp_path / "work" / "tiny" / "onnx-int4-b32").exists()
