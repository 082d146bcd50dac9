"""The exporter: folder layout, configs, error paths before long work, resumable stages, manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime_genai")
pytest.importorskip("transformers")

from models.export import ExportError, checks, export_model, pipeline
from models.manifest import verify_manifest


def test_export_folder_is_a_fara_genai_model(export_fp32: Path, tiny_checkpoint: Path) -> None:
    for name in ("model.onnx", "embedding.onnx", "vision.onnx", "genai_config.json",
                 "processor_config.json", "tokenizer.json", "tokenizer_config.json",
                 "deskhand.json"):
        assert (export_fp32 / name).is_file(), name
    genai = json.loads((export_fp32 / "genai_config.json").read_text())
    source = json.loads((tiny_checkpoint / "config.json").read_text())
    model = genai["model"]
    assert model["type"] == "fara"
    assert model["image_token_id"] == source["image_token_id"]
    assert model["vision_start_token_id"] == source["vision_start_token_id"]
    assert model["vision"]["filename"] == "vision.onnx"
    assert model["vision"]["inputs"] == {"pixel_values": "pixel_values",
                                         "image_grid_thw": "image_grid_thw"}
    assert model["embedding"]["outputs"] == {"inputs_embeds": "inputs_embeds"}
    assert "inputs_embeds" in model["decoder"]["inputs"]
    processor = json.loads((export_fp32 / "processor_config.json").read_text())["processor"]
    assert processor["name"] == "qwen2_5_image_processor"
    assert [t["operation"]["type"] for t in processor["transforms"]] == [
        "DecodeImage", "ConvertRGB", "Resize", "Rescale", "Normalize", "PatchImage"]


def test_manifest_records_source_and_verifies(export_fp32: Path, tmp_path: Path) -> None:
    manifest = json.loads((export_fp32 / "deskhand.json").read_text())
    assert manifest["precision"] == "fp32" and manifest["provider"] == "cpu"
    assert len(manifest["source"]["sha256"]) == 64
    assert {"model.onnx", "vision.onnx", "embedding.onnx"} <= {f["path"] for f in manifest["files"]}
    assert verify_manifest(export_fp32, progress=False).problems() == []
    copy = tmp_path / "copy"
    shutil.copytree(export_fp32, copy)
    with (copy / "vision.onnx.data").open("r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    (copy / "embedding.onnx").unlink()
    assert sorted(verify_manifest(copy, progress=False).problems()) == ["embedding.onnx: missing",
                                             "vision.onnx.data: contents changed"]


def test_rerun_skips_finished_stages(export_fp32: Path, tiny_checkpoint: Path,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "again"
    shutil.copytree(export_fp32, copy)

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    for stage in ("_text_stage", "_embedding_stage", "_vision_stage", "_config_stage"):
        monkeypatch.setattr(pipeline, stage, fail)
    assert export_model(tiny_checkpoint, copy, precision="fp32", progress=False) == copy
    assert verify_manifest(copy, progress=False).problems() == []


def test_rerun_redoes_a_stage_whose_output_is_gone(export_fp32: Path, tiny_checkpoint: Path,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "again"
    shutil.copytree(export_fp32, copy)
    (copy / "vision.onnx").unlink()
    ran = []
    real_vision = pipeline._vision_stage
    monkeypatch.setattr(pipeline, "_text_stage", lambda *a: ran.append("text"))
    monkeypatch.setattr(pipeline, "_vision_stage",
                        lambda *a: (ran.append("vision"), real_vision(*a)))
    export_model(tiny_checkpoint, copy, precision="fp32", progress=False)
    assert ran == ["vision"]
    assert (copy / "vision.onnx").is_file() and verify_manifest(copy, progress=False).problems() == []


def test_builder_failure_is_an_export_error(tiny_checkpoint: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def failing_builder(cmd, stdout, **kwargs):
        stdout.write("Traceback...\nValueError: unsupported architecture\n")
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(pipeline.subprocess, "run", failing_builder)
    with pytest.raises(ExportError, match=r"(?s)text decoder export failed.*unsupported"):
        export_model(tiny_checkpoint, tmp_path / "out", progress=False)


def test_not_a_qwen_checkpoint_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "llama"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "llama",
                                                 "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ExportError, match=r"not a Qwen2\.5-VL checkpoint.*'llama'"):
        export_model(src, tmp_path / "out", progress=False)
    with pytest.raises(ExportError, match=r"config\.json is missing"):
        export_model(tmp_path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_files_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    src = tmp_path / "partial"
    shutil.copytree(tiny_checkpoint, src)
    (src / "tokenizer.json").unlink()
    (src / "model.safetensors").unlink()
    with pytest.raises(ExportError, match=r"missing files: tokenizer\.json, model\.safetensors"):
        export_model(src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_too_little_disk_fails_before_any_work(tiny_checkpoint: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "free_bytes", lambda path: 10 * 1024**2)
    with pytest.raises(ExportError, match=r"not enough disk space .* needs about 0\.\d GB"):
        export_model(tiny_checkpoint, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_too_little_memory_fails_before_any_work(tiny_checkpoint: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "available_ram", lambda: 1024)
    with pytest.raises(ExportError, match="not enough memory"):
        export_model(tiny_checkpoint, tmp_path / "out", progress=False)


def test_bad_options_are_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="precision"):
        export_model(tiny_checkpoint, tmp_path / "o", precision="int3")
    with pytest.raises(ExportError, match="provider"):
        export_model(tiny_checkpoint, tmp_path / "o", provider="tpu")
    with pytest.raises(ExportError, match="vision_quant"):
        export_model(tiny_checkpoint, tmp_path / "o", vision_quant="int2")


def test_size_estimate_scales_with_precision(tiny_checkpoint: Path) -> None:
    ckpt = checks.inspect_checkpoint(tiny_checkpoint)
    sizes = [checks.estimate_output_bytes(ckpt, p, None) for p in ("int4", "fp16", "fp32")]
    assert sizes == sorted(sizes) and sizes[0] < sizes[2]
    assert ckpt.vision_params > 0 and ckpt.embed_params == 640 * 128


def test_a_full_size_fara_export_asks_for_the_memory_it_was_measured_to_use(tmp_path: Path) -> None:
    """Fara-7B's sizes (16.6 GB checkpoint): the export was measured at 8.1 GB private memory
    (its vision stage) and 2.8 GB for the text stage, which quantizes one matrix at a time; the
    check must not ask for the checkpoint's size (it did: 20.7 GB) and must not ask for less
    than was measured."""
    from models.export.checks import Checkpoint, export_ram_bytes
    from models.export.families import family_of

    fara = Checkpoint(tmp_path, {"model_type": "qwen2_5_vl"}, (), text_params=7_070_619_136,
                      vision_params=676_550_144, embed_params=544_997_376,
                      source_bytes=16_584_413_848, family=family_of({"model_type": "qwen2_5_vl"}))
    need = export_ram_bytes(fara)
    assert 8141 * 1024**2 < need <= 10 * 1024**3
    # fp16 int4 exports (CUDA, DirectML) still take the builder's whole-graph quantizer.
    assert export_ram_bytes(fara, "int4", "cuda") >= fara.source_bytes
