"""What the exporter adds to deskhand.json: its own fingerprint and the source checkpoint's hash.

The manifest itself (shape, writing, verifying) belongs to `models.manifest`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.hashing import sha256_file
from models import manifest

EXPORTER_VERSION = "1.0"


def exporter_fingerprint() -> str:
    """EXPORTER_VERSION plus a hash of the exporter's code: a re-run after a code change redoes
    the stages instead of keeping outputs an older exporter wrote."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return f"{EXPORTER_VERSION}+{digest.hexdigest()[:10]}"


def source_hash(files: Iterable[Path]) -> str:
    """One sha256 over the source checkpoint's files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def write_manifest(out_dir: Path, info: dict[str, Any]) -> Path:
    """Write the export folder's deskhand.json: `info`, the exporter's fingerprint, every file."""
    manifest.write_manifest(out_dir, exporter_version=exporter_fingerprint(), **info)
    return out_dir / manifest.MANIFEST
