"""The one sha256 of a file: streamed in blocks, so a model of many gigabytes is never in memory.

Used by the model manifest (`models.manifest`), the exporter's source hash and the evaluation
harness (task, reference and solution files); `agent` holds it so both layers can import it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

CHUNK = 4 << 20


def sha256_file(path: Path, bar: Any = None) -> str:
    """Hex sha256 of a file's bytes; advances `bar` (a tqdm, optional) by the bytes read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return digest.hexdigest()
