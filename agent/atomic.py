"""The one way Deskhand replaces a file whole: run.json, settings, registry, manifests, results.

A random temporary name (O_EXCL) in the same folder, fsync, then `os.replace`: a crash leaves
the old file whole, and a link planted at the target or at a predictable temporary name is
replaced, never written through.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8); raises OSError with the old file untouched."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`; raises OSError with the old file untouched."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, data: Any, *, ascii_only: bool = False) -> None:
    """Replace `path` with `data` as indented JSON and a final newline."""
    write_text_atomic(path, json.dumps(data, ensure_ascii=ascii_only, indent=1) + "\n")
