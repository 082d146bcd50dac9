"""Checkpoint tensors as views of the memory-mapped safetensors files (no copy in RAM).

transformers' loader reads every tensor out of its safetensors file into fresh memory, so the
text export held a private copy of the whole checkpoint (15 GB for Fara-7B in bf16) before the
builder wrote a byte: the first full-size export here was killed by the kernel at 21.8 GB
resident on a 24 GB machine. `safe_open` below hands out tensors that *are* the file's pages
(a private, copy-on-write map): the kernel reads them on first use and can drop them again
under memory pressure, so the export's own memory is what it computes, not what it reads.

It has the part of `safetensors.safe_open`'s interface transformers uses (context manager,
`keys`, `metadata`, `get_slice` with `get_dtype`/`get_shape`, `get_tensor`); transformers'
`slice[...]` and `.to(same dtype)` keep the mapped view. The layout is the documented safetensors
format: an 8-byte little-endian header length, a JSON header with each tensor's dtype, shape
and [begin, end) byte range after the header, then the data.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16,
    "I32": torch.int32, "I64": torch.int64, "F16": torch.float16, "BF16": torch.bfloat16,
    "F32": torch.float32, "F64": torch.float64,
}


class MappedSafetensors:
    """One safetensors file, its tensors as views of a private memory map."""

    def __init__(self, path: str | Path, framework: str = "pt", device: str = "cpu", **_: object) -> None:
        if framework != "pt" or str(device) != "cpu":
            raise ValueError("mapped safetensors serve torch tensors on the CPU only")
        self.path = Path(path)
        size = self.path.stat().st_size
        with self.path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size - 8:
                raise ValueError(f"{self.path}: not a safetensors file (header length {length})")
            header = json.loads(f.read(length))
        self._meta = header.pop("__metadata__", None) or {}
        self._entries = header
        self._start = 8 + length
        # shared=False: a private mapping; nothing written to these tensors reaches the file.
        self._storage = torch.UntypedStorage.from_file(str(self.path), shared=False, nbytes=size)

    def __enter__(self) -> MappedSafetensors:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def keys(self) -> list[str]:
        return list(self._entries)

    def offset_keys(self) -> list[str]:  # the order of the data in the file
        return sorted(self._entries, key=lambda k: self._entries[k]["data_offsets"][0])

    def metadata(self) -> dict[str, str]:
        return dict(self._meta)

    def get_tensor(self, name: str) -> torch.Tensor:
        entry = self._entries[name]
        dtype = DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{self.path}: tensor {name} has unsupported dtype {entry['dtype']}")
        shape = list(entry["shape"])
        begin, end = entry["data_offsets"]
        item = torch.empty((), dtype=dtype).element_size()
        count = 1
        for dim in shape:
            count *= dim
        if end - begin != count * item:
            raise ValueError(f"{self.path}: tensor {name} has {end - begin} bytes for shape {shape}")
        offset = self._start + begin
        if offset % item:  # not aligned to its element size: a view is impossible, copy it
            raw = torch.empty(count * item, dtype=torch.uint8)
            raw.set_(self._storage, offset, (count * item,))
            return raw.clone().view(dtype).reshape(shape)
        tensor = torch.empty(0, dtype=dtype)
        tensor.set_(self._storage, offset // item, shape)
        return tensor

    def get_slice(self, name: str) -> MappedSlice:
        return MappedSlice(self, name)


class MappedSlice:
    """safetensors' lazy slice: dtype and shape without reading, `[...]` gives the mapped view."""

    def __init__(self, file: MappedSafetensors, name: str) -> None:
        self._file, self._name = file, name
        self._entry = file._entries[name]

    def get_dtype(self) -> str:
        return self._entry["dtype"]

    def get_shape(self) -> list[int]:
        return list(self._entry["shape"])

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self._entry["shape"])

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self._entry["dtype"]]

    def __getitem__(self, index) -> torch.Tensor:
        return self._file.get_tensor(self._name)[index]


def safe_open(path: str | Path, framework: str = "pt", device: str = "cpu", **kwargs: object):
    """Drop-in for `safetensors.safe_open` (torch, CPU) returning mapped views."""
    return MappedSafetensors(path, framework, device, **kwargs)
