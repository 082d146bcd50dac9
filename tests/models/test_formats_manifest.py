"""deskhand.json: one shape written by import, download and export alike; old shapes still read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from agent.hashing import sha256_file
from models.export.manifest import write_manifest as write_export_manifest
from models.importing import import_model
from models.manifest import (
    MANIFEST,
    Entry,
    load_manifest,
    manifest_files,
    verify_manifest,
    write_manifest,
)
from models.registry import ModelError, Registry
from models.validate import validate_folder
from tests.models.test_registry import make_genai_folder


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_and_import_write_the_same_shape(tmp_path: Path) -> None:
    a, b = make_genai_folder(tmp_path / "a"), make_genai_folder(tmp_path / "b")
    write_manifest(a, source="import:x")
    write_export_manifest(b, {"source": {"path": "x"}, "precision": "int4"})
    shapes = [json.loads((f / MANIFEST).read_text()) for f in (a, b)]
    for shape in shapes:
        assert shape["deskhand_manifest"] == 1 and isinstance(shape["files"], list)
        assert {"path", "size", "sha256"} == set(shape["files"][0])
    assert [f["path"] for f in shapes[0]["files"]] == [f["path"] for f in shapes[1]["files"]]
    assert shapes[1]["precision"] == "int4" and shapes[1]["exporter_version"].startswith("1.0+")
    assert verify_manifest(b, progress=False).ok


def old_export_folder(root: Path) -> Path:
    """A folder as the exporter wrote it before there was one manifest writer (files as a dict)."""
    folder = make_genai_folder(root)
    files = {p.name: {"bytes": p.stat().st_size, "sha256": digest(p)}
             for p in sorted(folder.iterdir()) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps({"exporter_version": "1.0+abc", "files": files,
                                               "total_bytes": 1}, indent=2))
    return folder


def test_an_old_export_manifest_still_reads_verifies_and_imports(tmp_path: Path) -> None:
    folder = old_export_folder(tmp_path / "old")
    entries = manifest_files(load_manifest(folder) or {})
    onnx = folder / "vision.onnx.data"
    assert entries["vision.onnx.data"] == Entry(onnx.stat().st_size, digest(onnx))
    assert verify_manifest(folder, progress=False).ok and validate_folder(folder).ok
    registry = Registry(tmp_path / "models")
    assert import_model(folder, name="old", registry=registry).name == "old"
    onnx.write_bytes(b"\x02" + onnx.read_bytes()[1:])  # same size, other contents
    result = verify_manifest(folder, progress=False)
    assert result.mismatched == ("vision.onnx.data",)
    assert result.problems() == ["vision.onnx.data: contents changed"]
    with pytest.raises(ModelError, match=r"changed: vision\.onnx\.data"):
        import_model(folder, name="again", registry=registry)
    onnx.write_bytes(onnx.read_bytes() + b"x")  # the old "bytes" field is the size checked
    assert any("vision.onnx.data' has 513 bytes" in e for e in validate_folder(folder).errors)


def test_a_plain_path_to_hash_manifest_reads(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "plain")
    (folder / MANIFEST).write_text(json.dumps(
        {"files": {"genai_config.json": digest(folder / "genai_config.json").upper()}}))
    assert manifest_files(load_manifest(folder) or {}) == {
        "genai_config.json": Entry(None, digest(folder / "genai_config.json"))}
    assert verify_manifest(folder, progress=False).ok


def test_an_export_manifest_is_written_atomically_not_through_a_link(tmp_path: Path) -> None:
    folder = make_genai_folder(tmp_path / "m")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (folder / MANIFEST).symlink_to(outside)
    write_export_manifest(folder, {"source": "test"})
    assert outside.read_text() == "keep me" and not (folder / MANIFEST).is_symlink()
    assert verify_manifest(folder, progress=False).ok
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_one_sha256_helper(tmp_path: Path) -> None:
    data = bytes(range(256)) * 50_000  # several read blocks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
