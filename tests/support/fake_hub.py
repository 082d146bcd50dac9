"""A fake Hugging Face Hub on 127.0.0.1 for download tests (never the internet).

`serve(files, monkeypatch)` starts it and points huggingface_hub at it for one test. A file is
bytes, or a Path served from disk (a full-size checkpoint: scripts/walk_first_run.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

REPO = "acme/Fara-7B-onnx"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BIG = "cpu-int4/model.onnx.data"


class FakeHub(ThreadingHTTPServer):
    """The few Hub routes huggingface_hub uses: model info, tree listing, resolve (with Range)."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes | Path]) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.files = files
        self.lfs = {p for p in files if self.size(p) > 1000}  # big files are LFS
        self._digests: dict[str, tuple[str, str]] = {}
        self.faults: dict[str, list[str]] = {}  # path -> actions for its next GETs
        self.gets: list[tuple[str, str | None]] = []  # (path, Range header)
        self.served: dict[str, int] = {}  # body bytes sent per path
        self.corrupt: set[str] = set()
        self.release = threading.Event()  # ends a "hang"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def size(self, path: str) -> int:
        data = self.files[path]
        return data.stat().st_size if isinstance(data, Path) else len(data)

    def chunks(self, path: str, start: int = 0) -> Iterator[bytes]:
        data = self.files[path]
        if not isinstance(data, Path):
            yield data[start:]
            return
        with data.open("rb") as f:
            f.seek(start)
            while chunk := f.read(1 << 20):
                yield chunk

    def digests(self, path: str) -> tuple[str, str]:
        """(git blob sha1, sha256) of a file, computed once."""
        if path not in self._digests:
            blob = hashlib.sha1(b"blob %d\0" % self.size(path))
            sha = hashlib.sha256()
            for chunk in self.chunks(path):
                blob.update(chunk)
                sha.update(chunk)
            self._digests[path] = blob.hexdigest(), sha.hexdigest()
        return self._digests[path]

    def tree(self) -> list[dict[str, Any]]:
        entries = []
        for path in sorted(self.files):
            size, (blob, sha) = self.size(path), self.digests(path)
            entry: dict[str, Any] = {"type": "file", "path": path, "size": size, "oid": blob}
            if path in self.lfs:
                entry["lfs"] = {"oid": sha, "size": size, "pointerSize": 130}
            entries.append(entry)
        dirs = {str(Path(p).parent) for p in self.files} - {"."}
        return entries + [{"type": "directory", "path": d, "oid": "0" * 40} for d in dirs]


class HubHandler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.respond(body=True)

    def do_HEAD(self) -> None:
        self.respond(body=False)

    def respond(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        hub = self.server
        if m := re.fullmatch(rf"/api/models/{REPO}(?:/revision/([^/]+))?", path):
            if m.group(1) not in (None, "main", COMMIT):
                return self.send_json(404, {"error": "Revision Not Found"},
                                      {"X-Error-Code": "RevisionNotFound"})
            siblings = [{"rfilename": p} for p in hub.files]
            return self.send_json(200, {"id": REPO, "modelId": REPO, "sha": COMMIT,
                                        "private": False, "siblings": siblings})
        if re.fullmatch(rf"/api/models/{REPO}/tree/{COMMIT}", path):
            return self.send_json(200, hub.tree())
        if path.startswith("/api/models/"):
            return self.send_json(404, {"error": "Repository not found"},
                                  {"X-Error-Code": "RepoNotFound"})
        m = re.fullmatch(rf"/{REPO}/resolve/{COMMIT}/(.+)", path)
        if not m or m.group(1) not in hub.files:
            return self.send_json(404, {"error": "Entry not found"},
                                  {"X-Error-Code": "EntryNotFound"})
        self.send_file(m.group(1), body)

    def send_file(self, name: str, body: bool) -> None:
        hub = self.server
        if isinstance(hub.files[name], Path):
            return self.send_path(name, body)
        data = hub.files[name]
        if name in hub.corrupt:
            data = bytes(b ^ 1 for b in data)
        rng = self.headers.get("Range")
        if body:
            hub.gets.append((name, rng))
            action = hub.faults.get(name, []).pop(0) if hub.faults.get(name) else None
            if action == "503":
                return self.send_json(503, {"error": "Service Unavailable"})
        else:
            action = None
        start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1)) if rng else 0
        self.send_headers(hashlib.sha256(data).hexdigest(), start, len(data))
        if not body:
            return
        chunk = data[start:]
        if action in ("drop", "hang"):  # send half, then hang up (or stall) mid-file
            chunk = chunk[: len(chunk) // 2]
        self.wfile.write(chunk)
        self.wfile.flush()
        hub.served[name] = hub.served.get(name, 0) + len(chunk)
        if action == "hang":
            hub.release.wait(30)
        if action in ("drop", "hang"):
            self.close_connection = True

    def send_path(self, name: str, body: bool) -> None:
        """A file served from disk in 1 MB pieces (no faults: for measuring, not for attacks)."""
        hub = self.server
        rng = self.headers.get("Range")
        start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1)) if rng else 0
        self.send_headers(hub.digests(name)[1], start, hub.size(name))
        if not body:
            return
        hub.gets.append((name, rng))
        for chunk in hub.chunks(name, start):
            self.wfile.write(chunk)
            hub.served[name] = hub.served.get(name, 0) + len(chunk)
        self.wfile.flush()

    def send_headers(self, sha256: str, start: int, size: int) -> None:
        self.send_response(206 if start else 200)
        self.send_header("ETag", f'"{sha256}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)



# A catalogue entry for the tiny checkpoint on the fake hub (given through $DESKHAND_CATALOGUE_EXTRA;
# never in the product catalogue).
TINY_CATALOGUE_ENTRY = {
    "name": "Tiny-VL", "family": "fara", "parameters": "tiny", "download_bytes": 20_000_000,
    "size_is_estimate": False, "webvoyager": 0.0, "online_mind2web": 0.0, "ready": True,
    "hub_repo": REPO}


@contextlib.contextmanager
def serve(files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    server = FakeHub(files)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    # Real downloads read 10 MB per chunk; small chunks let a tiny file be cut mid-way.
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # a CI may set it
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


# The CLI in a child process, with small read chunks so a half-sent file reaches the disk.
CHILD = """
import argparse, sys
import huggingface_hub.constants
huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE = 16 * 1024
from models import cli
parser = argparse.ArgumentParser()
cli.register(parser.add_subparsers(dest="command"))
sys.exit(cli.run(parser.parse_args(sys.argv[1:])))
"""
