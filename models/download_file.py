"""One file of a model download: fetched resumably into `<file>.part`, never past its listed
size, and checked against the Hub's checksum before it counts as complete.

`models.download` plans the download and walks the files; this module fetches and checks one.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.registry import ModelError


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repo: where it is there, where it goes here, and how to check it."""

    repo_path: str
    rel: str  # path inside the model folder (the repo subfolder prefix removed)
    size: int
    sha256: str | None  # LFS files: the Hub knows their sha256
    blob_id: str  # git blob id (sha1 of "blob <size>\0" + content), for small files


def fetch(url: str, part: Path, have: int, headers: dict[str, str], remote: RemoteFile,
          report: Callable[[int], None]) -> None:
    """Append the rest of `remote` (from byte `have`) to `part`; ModelError says how to resume."""
    from huggingface_hub.file_download import http_get

    # Append mode: bytes from an earlier run stay; http_get asks for the rest with Range (and
    # rewinds itself if a server ignores Range and sends the whole file).
    with open(part, "ab") as raw:
        f = _Reporting(raw, report, limit=remote.size)
        try:
            http_get(url, f, resume_size=have, headers=headers, expected_size=remote.size,
                     displayed_filename=remote.rel)
        except _TooLong:
            raw.close()
            part.unlink(missing_ok=True)  # what a misbehaving server sent is not worth keeping
            raise ModelError(f"the server sent more than the {remote.size} bytes listed for "
                             f"{remote.rel}; the download was stopped at that size and the "
                             "file deleted") from None
        except (KeyboardInterrupt, ModelError):
            raise
        except Exception as exc:  # httpx / Hub errors: keep the .part for the next run
            raw.flush()
            raise ModelError(f"downloading {remote.rel} stopped at {raw.tell()} of "
                             f"{remote.size} bytes ({first_line(exc)}); run the same command "
                             "again to resume") from exc
        if raw.tell() != remote.size:  # our own check, whatever http_get's version checks
            raise ModelError(f"the server ended {remote.rel} after {raw.tell()} of "
                             f"{remote.size} bytes; run the same command again to resume")


class _TooLong(Exception):
    """A server sent more bytes than the listing gave the file."""


class _Reporting:
    """A file wrapper that reports its position after each write (progress through public API).

    http_get writes, and after a server ignored Range, seeks back and truncates; reporting the
    absolute position keeps the count right in both cases. No write may take the file past
    `limit` bytes: the listing's size is checked as the bytes arrive, not after the disk filled.
    """

    def __init__(self, f: Any, report: Callable[[int], None], *, limit: int) -> None:
        self._f = f
        self._report = report
        self._limit = limit

    def write(self, data: bytes) -> int:
        if self._f.tell() + len(data) > self._limit:
            raise _TooLong
        written = self._f.write(data)
        self._report(self._f.tell())
        return written

    def __getattr__(self, name: str) -> Any:  # seek, tell, truncate, flush...
        return getattr(self._f, name)


def check_file(part: Path, remote: RemoteFile) -> str:
    """sha256 of the finished file, after comparing with the Hub's checksum."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()
    sha1.update(f"blob {part.stat().st_size}\0".encode())
    with open(part, "rb") as f:
        while chunk := f.read(4 << 20):
            sha256.update(chunk)
            if remote.sha256 is None:
                sha1.update(chunk)
    digest = sha256.hexdigest()
    expected, actual = ((remote.sha256, digest) if remote.sha256 is not None
                        else (remote.blob_id, sha1.hexdigest()))
    if expected and actual != expected.lower():
        part.unlink()
        raise ModelError(f"{remote.rel} arrived corrupted (checksum {actual[:12]}… instead of "
                         f"{expected[:12]}…); it was deleted, run the same command again")
    return digest


def is_complete(dest: Path, remote: RemoteFile, verified: dict[str, str]) -> bool:
    """True when `dest` is already downloaded and checked (re-checking it if needed)."""
    if not dest.is_file() or dest.stat().st_size != remote.size:
        return False
    if remote.rel in verified and (remote.sha256 is None or verified[remote.rel] == remote.sha256):
        return True
    try:
        verified[remote.rel] = check_file(dest, remote)
        return True
    except ModelError:
        return False


def first_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


@contextmanager
def hf_bars_off() -> Iterator[None]:
    """huggingface_hub's per-file bars off (ours covers all bytes), restored afterwards."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_disabled = are_progress_bars_disabled()
    if not was_disabled:
        disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


@contextmanager
def hub_errors(endpoint: str, repo_id: str) -> Iterator[None]:
    """Turn Hub and network exceptions into ModelError messages a user can act on."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except GatedRepoError as exc:
        raise ModelError(f"{repo_id} is gated: accept its terms on the Hub, then log in "
                         "(`hf auth login` or HF_TOKEN)") from exc
    except RepositoryNotFoundError as exc:
        raise ModelError(f"no model repo {repo_id!r} at {endpoint} (or it is private: log in "
                         "with `hf auth login` or set HF_TOKEN)") from exc
    except RevisionNotFoundError as exc:
        raise ModelError(f"{repo_id} has no such revision (branch, tag or commit)") from exc
    except OfflineModeIsEnabled as exc:
        raise ModelError("HF_HUB_OFFLINE is set, so nothing can be downloaded") from exc
    except HfHubHTTPError as exc:
        raise ModelError(f"the Hub at {endpoint} answered with an error: {first_line(exc)}"
                         ) from exc
    except (ConnectionError, TimeoutError, socket.gaierror) as exc:
        raise ModelError(f"cannot reach {endpoint} ({exc}); check the connection — a "
                         "download resumes where it stopped") from exc
    except OSError as exc:  # disk full, permissions: not a network problem
        raise ModelError(f"cannot write the download: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise ModelError(f"cannot reach {endpoint} ({exc}); check the connection — a "
                             "download resumes where it stopped") from exc
        raise
