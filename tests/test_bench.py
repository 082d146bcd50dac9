"""`deskhand bench` end to end on the tiny model: workers in subprocesses, table, bandwidth."""

from __future__ import annotations

import json
from pathlib import Path

from models import bench
from tests.conftest_models import export_fp32, export_int4, tiny_checkpoint  # noqa: F401


def test_cli_registers_bench() -> None:
    from agent.cli import build_parser

    args = build_parser().parse_args(["bench", "--tiny", "--images", "1", "--new-tokens", "3"])
    assert args.command == "bench" and args.tiny and args.new_tokens == 3
    assert args.backends.split(",") == list(bench.BACKENDS)


def test_bench_tiny_end_to_end(tiny_checkpoint: Path, export_int4: Path,  # noqa: F811
                               export_fp32: Path, tmp_path: Path,  # noqa: F811
                               capsys) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(["--tiny", "--images", "1", "--new-tokens", "3", "--no-warmup",
                       "--bandwidth-mb", "32", "--work-dir", str(tmp_path / "work"),
                       "--checkpoint", str(tiny_checkpoint), "--onnx-int4", str(export_int4),
                       "--onnx-fp32", str(export_fp32), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(out.read_text())
    rows = {r["backend"]: r for r in report["rows"]}
    assert set(rows) == set(bench.BACKENDS)
    for row in rows.values():
        assert row["generated"] == 3  # forced: end-of-sequence cannot cut the step short
        assert row["prompt_tokens"] > 1000  # the real Fara system prompt is in
        for key in ("vision_s", "decode_s", "total_s", "peak_rss"):
            assert row[key] > 0, (row["backend"], key)
    assert report["bandwidth"]["read_gbs"] > 0
    table = printed.split("Measured", 1)[1].split("Extrapolated", 1)[0]
    for name in bench.BACKENDS:
        assert f"\n{name} " in table
    assert "Memory bandwidth:" in printed and "GB/s" in printed
    assert "Extrapolated to Fara-7B" in printed
    # Given folders are used as they are, never deleted.
    assert (tiny_checkpoint / "config.json").is_file() and (export_int4 / "model.onnx").is_file()
