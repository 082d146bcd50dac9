"""Model folder validation, manifests, the registry, and the `deskhand models` commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agent.paths import models_dir
from models import cli
from models.importing import import_model
from models.manifest import verify_manifest, write_manifest
from models.registry import ModelError, Registry, resolve_model
from models.validate import (
    external_data_locations,
    validate_folder,
    validate_model_folder,
)


def fake_onnx(external: str | None = None) -> bytes:
    """Bytes standing in for an ONNX graph; with `external`, a tensor's external-data entry."""
    body = b"\x08\x07fake-onnx-graph"
    if external:
        name = external.encode()
        body += b"\x0a\x08location\x12" + bytes([len(name)]) + name + b"\x0a\x06offset"
    return body


# The smallest tokenizer and chat template that build a Qwen-style prompt with an image: model
# folders are validated by loading these, so fakes must hold real ones.
_STRUCTURE = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>"]
TOKENIZER_JSON = json.dumps({
    "version": "1.0",
    "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True}
                     for i, c in enumerate(_STRUCTURE, start=1)],
    "model": {"type": "WordLevel", "unk_token": "[UNK]",
              "vocab": {"[UNK]": 0, **{c: i for i, c in enumerate(_STRUCTURE, start=1)}}}})
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{% for p in m.content %}"
    "{% if p.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ p.text }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def write_tokenizer_files(path: Path) -> Path:
    """tokenizer.json and tokenizer_config.json (with the chat template) that really load."""
    (path / "tokenizer.json").write_text(TOKENIZER_JSON)
    (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    return path


def make_genai_folder(path: Path, *, model_type: str = "fara", data_bytes: int = 4096) -> Path:
    """A tiny folder shaped like a published Fara-7B onnxruntime-genai export."""
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "model": {
            "type": model_type,
            "context_length": 128000,
            "decoder": {"filename": "model.onnx", "session_options": {}},
            "embedding": {"filename": "embedding.onnx"},
            "vision": {"filename": "vision.onnx"},
        },
        "search": {"max_length": 4096},
    }
    (path / "genai_config.json").write_text(json.dumps(config))
    (path / "model.onnx").write_bytes(fake_onnx("model.onnx.data"))
    (path / "model.onnx.data").write_bytes(bytes(range(256)) * (data_bytes // 256))
    (path / "embedding.onnx").write_bytes(fake_onnx())
    (path / "vision.onnx").write_bytes(fake_onnx("vision.onnx.data"))
    (path / "vision.onnx.data").write_bytes(b"\x01" * 512)
    write_tokenizer_files(path)
    (path / "processor_config.json").write_text(
        '{"processor": {"name": "qwen2_5_image_processor", "transforms": []}}')
    return path


# --- validation ---------------------------------------------------------------------------

def test_valid_folder(tmp_path: Path) -> None:
    report = validate_model_folder(make_genai_folder(tmp_path / "m"))
    assert report.ok, report.summary()
    assert report.model_type == "fara"
    assert {"model.onnx", "model.onnx.data", "vision.onnx.data"} <= set(report.files)


def test_external_data_scan(tmp_path: Path) -> None:
    (tmp_path / "a.onnx").write_bytes(fake_onnx("weights.bin") + fake_onnx("other.data"))
    assert external_data_locations(tmp_path / "a.onnx") == {"weights.bin", "other.data"}


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda p: (p / "vision.onnx").unlink(),
         "genai_config.json names vision file 'vision.onnx' which is missing"),
        (lambda p: (p / "model.onnx.data").unlink(),
         "model.onnx needs its external data file 'model.onnx.data' which is missing"),
        (lambda p: (p / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda p: (p / "processor_config.json").unlink(), "processor_config.json is missing"),
        (lambda p: (p / "genai_config.json").write_text("{oops"),
         "genai_config.json is not readable JSON"),
        (lambda p: (p / "genai_config.json").unlink(), "genai_config.json is missing"),
    ],
)
def test_broken_folders_name_the_problem(tmp_path: Path, breakage, message: str) -> None:
    folder = make_genai_folder(tmp_path / "m")
    breakage(folder)
    report = validate_model_folder(folder)
    assert not report.ok
    assert any(message in e for e in report.errors), report.errors


def test_unsupported_type_and_text_only(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "m", model_type="phi3")
    config = json.loads((folder / "genai_config.json").read_text())
    del config["model"]["vision"]
    (folder / "genai_config.json").write_text(json.dumps(config))
    errors = validate_model_folder(folder).errors
    assert any("model.type is 'phi3'" in e and "'fara'" in e for e in errors)
    assert any("no model.vision section" in e for e in errors)


def test_manifest_verify_detects_corruption(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "m")
    manifest = write_manifest(folder, source="test")
    assert {f["path"] for f in manifest["files"]} >= {"model.onnx.data", "genai_config.json"}
    assert validate_model_folder(folder).manifest is not None
    assert verify_manifest(folder, progress=False).ok
    data = folder / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[10] ^= 0xFF  # same size, different content: only the hash can tell
    data.write_bytes(bytes(raw))
    result = verify_manifest(folder, progress=False)
    assert not result.ok and result.mismatched == ("model.onnx.data",)
    data.write_bytes(bytes(raw[:-1]))  # truncated: the cheap size check already catches it
    assert any("model.onnx.data" in e and "bytes" in e for e in validate_model_folder(folder).errors)


def test_hf_checkpoint_detected(tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    (folder / "model.safetensors").write_bytes(b"x")
    write_tokenizer_files(folder)
    (folder / "preprocessor_config.json").write_text("{}")
    report = validate_folder(folder)
    assert report.ok and report.format == "hf"
    assert "convert it with `deskhand models export`" in validate_model_folder(folder).errors[-1]


# --- registry -----------------------------------------------------------------------------

def test_import_in_place_and_remove_keeps_files(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "Fara 7B int4")
    entry = import_model(folder)
    assert entry.name == "Fara-7B-int4" and not entry.owned and entry.format == "onnx-genai"
    assert entry.size_bytes > 4096 and entry.added.endswith("+00:00")
    assert resolve_model("Fara-7B-int4") == folder.resolve()
    with pytest.raises(ModelError, match="already registered"):
        import_model(folder, name="Fara-7B-int4")
    removed, deleted = Registry().remove("Fara-7B-int4")
    assert removed.name == "Fara-7B-int4" and not deleted
    assert (folder / "model.onnx.data").exists()  # the user's folder is never deleted
    assert Registry().entries() == []


def test_import_copy_is_owned_and_removable(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "src")
    entry = import_model(folder, name="copy1", copy=True)
    assert entry.owned and entry.folder == models_dir().resolve() / "copy1"
    _, deleted = Registry().remove("copy1")
    assert deleted and not entry.folder.exists() and folder.exists()


def test_import_rejects_invalid_folder(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "m")
    (folder / "vision.onnx").unlink()
    with pytest.raises(ModelError, match=r"vision file 'vision\.onnx' which is missing"):
        import_model(folder)
    with pytest.raises(ModelError, match="invalid model name"):
        import_model(make_genai_folder(tmp_path / "ok"), name="../evil")


def test_resolve_model(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "direct")
    assert resolve_model(str(folder)) == folder.resolve()
    import_model(folder, name="fara-int4")
    with pytest.raises(ModelError, match="Did you mean fara-int4"):
        resolve_model("fara-in4")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"tokenizer\.json is missing"):
        resolve_model(str(folder))
    with pytest.raises(ModelError, match="neither a registered model nor an existing folder"):
        resolve_model(str(tmp_path / "nowhere"))


def test_owned_flag_alone_never_deletes_outside(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "outside")
    registry = Registry()
    registry.add(folder, name="tricky", source="test", owned=True)  # e.g. a hand-edited index
    _, deleted = registry.remove("tricky")
    assert not deleted and folder.exists()


# --- CLI ----------------------------------------------------------------------------------

def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="deskhand")
    cli.register(parser.add_subparsers(dest="command"))
    return cli.run(parser.parse_args(["models", *argv]))


def test_cli_import_list_verify_remove(tmp_path: Path, capsys, monkeypatch) -> None:
    folder = make_genai_folder(tmp_path / "m")
    write_manifest(folder)
    assert run_cli("import", str(folder), "--name", "fara") == 0
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    assert "fara" in out and "onnx-genai" in out and "in place" in out
    assert run_cli("verify", "fara") == 0
    assert "all" in capsys.readouterr().out
    (folder / "embedding.onnx").write_bytes(fake_onnx() + b"!")
    assert run_cli("verify", "fara") == 1
    assert "embedding.onnx" in capsys.readouterr().out
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    assert run_cli("remove", "fara") == 1
    assert "fara" in Registry()
    assert run_cli("remove", "fara", "--yes") == 0
    assert "fara" not in Registry() and folder.exists()
    assert run_cli("verify", "nope") == 2
    assert "no model named 'nope'" in capsys.readouterr().err


def test_cli_export_registers_result(tmp_path: Path, monkeypatch, capsys) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    calls = []

    def fake_export(hf_dir, out_dir, *, precision, provider, vision_quant, block_size, progress,
                    on_progress=None):
        calls.append((Path(hf_dir), precision, provider, vision_quant, block_size, progress))
        make_genai_folder(Path(out_dir))
        return Path(out_dir)

    import types

    monkeypatch.setitem(__import__("sys").modules, "models.export",
                        types.SimpleNamespace(export_model=fake_export))
    assert run_cli("export", str(hf), "--name", "mine", "--precision", "fp32",
                   "--vision-quant", "int8") == 0
    assert calls == [(hf, "fp32", "cpu", "int8", 128, True)]
    # The default for an int4 decoder: int8 vision and embedding; block size as asked.
    assert run_cli("export", str(hf), "--name", "mine4", "--block-size", "32") == 0
    assert calls[-1] == (hf, "int4", "cpu", "int8", 32, True)
    entry = Registry().get("mine")
    assert entry.owned and entry.source.startswith("export:")
    assert entry.manifest is not None  # written after export, so `verify` works
    assert run_cli("verify", "mine") == 0


def test_default_model(tmp_path: Path, capsys) -> None:
    with pytest.raises(ModelError, match="no model is registered"):
        resolve_model(None)
    a = make_genai_folder(tmp_path / "a")
    import_model(a, name="a")
    assert resolve_model(None) == a.resolve()  # the only one
    b = make_genai_folder(tmp_path / "b")
    import_model(b, name="b")
    with pytest.raises(ModelError, match=r"several models are registered \(a, b\)"):
        resolve_model(None)
    assert run_cli("default", "b") == 0
    assert resolve_model(None) == b.resolve()
    capsys.readouterr()
    assert run_cli("list") == 0
    assert "b *" in capsys.readouterr().out
    assert run_cli("remove", "b", "--yes") == 0
    assert Registry().default is None and resolve_model(None) == a.resolve()
    assert isinstance(ModelError("x"), ValueError)  # app/commands/backends.py catches ValueError


def test_external_data_scan_on_a_real_onnx_file(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")  # the export extra; the scan itself needs no onnx
    import numpy as np
    from onnx import helper, numpy_helper

    weights = [numpy_helper.from_array(np.ones((64, 64), np.float32), name=f"w{i}")
               for i in range(2)]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w0"], ["h"]),
         helper.make_node("MatMul", ["h", "w1"], ["y"])],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])], initializer=weights)
    path = tmp_path / "decoder" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(helper.make_model(graph), str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    assert external_data_locations(path) == {"model.onnx.data"}
    folder = make_genai_folder(tmp_path / "m")
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"]["filename"] = "decoder/model.onnx"
    (folder / "genai_config.json").write_text(json.dumps(config))
    (folder / "decoder").mkdir()
    (folder / "decoder" / "model.onnx").write_bytes(path.read_bytes())
    errors = validate_model_folder(folder).errors
    assert errors == ["decoder/model.onnx needs its external data file "
                      "'decoder/model.onnx.data' which is missing"]


def test_cli_export_failure_is_clean(tmp_path: Path, monkeypatch, capsys) -> None:
    import sys
    import types

    def failing_export(hf_dir, out_dir, **kwargs):
        (Path(out_dir) / "half-written.onnx").write_bytes(b"x")
        raise ValueError("config.json model_type is 'llama', not a Qwen2.5-VL checkpoint")

    monkeypatch.setitem(sys.modules, "models.export",
                        types.SimpleNamespace(export_model=failing_export))
    (tmp_path / "hf").mkdir()
    assert run_cli("export", str(tmp_path / "hf"), "--name", "x") == 2
    err = capsys.readouterr().err
    assert "export of" in err and "run the same command again" in err and "x" not in Registry()
    # Finished stages stay in the hidden staging folder for the re-run; nothing is registered.
    assert (models_dir() / ".export-x" / "half-written.onnx").exists()
    assert not (models_dir() / "x").exists()
