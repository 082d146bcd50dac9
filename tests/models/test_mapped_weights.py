"""Mapped checkpoint tensors (models/export/mapped_weights.py): the same values as safetensors'
own reader, no private copy in memory, and transformers' loader really reading through them
(the text export's builder runs with them: models/export/text_builder.py)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open as reference_open
from safetensors.torch import save_file

from models.export.mapped_weights import MappedSafetensors, safe_open

ROOT = Path(__file__).resolve().parents[2]


def test_every_dtype_and_shape_reads_as_safetensors_reads_it(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    tensors = {
        "odd_bf16": torch.randn(3, generator=g).to(torch.bfloat16),  # 6 bytes: the next is unaligned
        "f32": torch.randn(5, 7, generator=g),
        "f16": torch.randn(2, 3, 4, generator=g).half(),
        "i64": torch.arange(9).reshape(3, 3),
        "u8": torch.arange(5, dtype=torch.uint8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "w.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    with reference_open(str(path), framework="pt") as ref, safe_open(path) as mapped:
        assert sorted(mapped.keys()) == sorted(ref.keys())
        assert mapped.metadata() == {"format": "pt"}
        for name in ref.keys():
            got = mapped.get_tensor(name)
            assert got.dtype == tensors[name].dtype and got.shape == tensors[name].shape
            assert torch.equal(got, ref.get_tensor(name))
            piece = mapped.get_slice(name)
            assert piece.get_shape() == list(tensors[name].shape)
            assert piece.get_dtype() == ref.get_slice(name).get_dtype()
            assert torch.equal(piece[...], got)


def test_writing_a_mapped_tensor_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.ones(1024)}, str(path))
    before = path.read_bytes()
    MappedSafetensors(path).get_tensor("a").mul_(3)
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["short", "huge_header", "wrong_size"])
def test_a_broken_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "w.safetensors"
    if damage == "short":
        path.write_bytes(b"\x01\x02")
    elif damage == "huge_header":
        path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    else:
        header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
        path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises((ValueError, struct.error)):
        MappedSafetensors(path).get_tensor("a")


def test_reading_every_tensor_adds_file_pages_not_private_memory(tmp_path: Path) -> None:
    """256 MB of weights read through the map: private (anonymous) memory grows by far less
    than that; transformers' copy would grow it by all of it."""
    path = tmp_path / "big.safetensors"
    save_file({f"w{i}": torch.full((1024, 1024 * 8), float(i)) for i in range(8)}, str(path))
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from models.export.mapped_weights import safe_open

        def anon():
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024

        start = anon()
        with safe_open({str(path)!r}) as f:
            tensors = [f.get_slice(k)[...] for k in f.keys()]
            total = sum(float(t.sum()) for t in tensors)  # every page read
        print(anon() - start, total)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    grown, total = int(out[0]), float(out[1])
    assert total == sum(i * 1024 * 1024 * 8 for i in range(8))
    assert grown < 48 * 1024**2, f"private memory grew by {grown / 1024**2:.0f} MB for 256 MB read"


def test_transformers_loads_the_checkpoint_through_the_map(tiny_checkpoint: Path) -> None:
    """What the export's builder process does: every weight equals the normal load's, and is a
    view of its file (its storage is the whole mapped file), not a copy."""
    from transformers import AutoModelForImageTextToText
    import transformers.modeling_utils as modeling_utils

    from models.export import mapped_weights

    plain = AutoModelForImageTextToText.from_pretrained(tiny_checkpoint).state_dict()
    original = modeling_utils.safe_open
    modeling_utils.safe_open = mapped_weights.safe_open
    try:
        model = AutoModelForImageTextToText.from_pretrained(tiny_checkpoint)
    finally:
        modeling_utils.safe_open = original
    files = {p.stat().st_size for p in tiny_checkpoint.glob("*.safetensors")}
    mapped = dict(model.state_dict())
    assert mapped.keys() == plain.keys()
    for name, tensor in mapped.items():
        assert torch.equal(tensor, plain[name]), name
    viewed = [n for n, p in model.named_parameters() if p.untyped_storage().nbytes() in files]
    assert len(viewed) == len(list(model.named_parameters()))
