"""deskhand.json: what an export folder holds, where it came from, and file hashes to verify."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path

MANIFEST = "deskhand.json"
EXPORTER_VERSION = "1.0"


def exporter_fingerprint() -> str:
    """EXPORTER_VERSION plus a hash of the exporter's code: a re-run after a code change redoes
    the stages instead of keeping outputs an older exporter wrote."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return f"{EXPORTER_VERSION}+{digest.hexdigest()[:10]}"
_SKIP = {MANIFEST, ".export-state.json"}


def sha256_file(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_hash(files: Iterable[Path]) -> str:
    """One sha256 over the source checkpoint's files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def output_files(out_dir: Path) -> list[Path]:
    """The files of an export folder that the manifest lists."""
    return sorted(p for p in out_dir.rglob("*")
                  if p.is_file() and p.name not in _SKIP and ".cache" not in p.parts)


def write_manifest(out_dir: Path, info: dict) -> Path:
    """Write deskhand.json with `info` plus size and sha256 of every file."""
    files = {p.relative_to(out_dir).as_posix(): {"bytes": p.stat().st_size,
                                                 "sha256": sha256_file(p)}
             for p in output_files(out_dir)}
    manifest = {"exporter_version": exporter_fingerprint(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **info,
                "total_bytes": sum(f["bytes"] for f in files.values()),
                "files": files}
    path = out_dir / MANIFEST
    path.write_text(json.dumps(manifest, indent=2))
    return path


def verify_manifest(out_dir: str | Path) -> list[str]:
    """Problems found when checking an export folder against its manifest (empty: all good)."""
    folder = Path(out_dir)
    path = folder / MANIFEST
    if not path.is_file():
        return [f"{MANIFEST} is missing"]
    manifest = json.loads(path.read_text())
    problems = []
    for name, meta in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            problems.append(f"{name}: missing")
        elif file.stat().st_size != meta["bytes"] or sha256_file(file) != meta["sha256"]:
            problems.append(f"{name}: contents changed")
    return problems
