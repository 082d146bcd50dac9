"""Download a model from the Hugging Face Hub into the registry — only when asked, resumably.

The listing (file names, sizes, LFS sha256) comes from the Hub API first, so the user sees the
total size and can say no before a byte of the model is fetched. Files download one by one
into `models_dir()/.downloads/<name>/`, each as `<file>.part` until complete and checked
against the Hub's checksum; the folder is moved to `models_dir()/<name>/` and registered only
once everything is there and validates.

Why not `snapshot_download`/`hf_hub_download`: in current huggingface_hub (checked in 2.4) they
write each file to a per-process temporary name and delete it on failure, so a download of a
4.5 GB file stopped at 90 % (Ctrl+C, laptop asleep) starts again from zero. Here the `.part`
file survives and the next run continues with an HTTP Range request (huggingface_hub's
`http_get(resume_size=...)`, which also retries dropped connections within one run).

A listing or a server may be hostile (a mirror given with HF_ENDPOINT, or anyone in the path):
- every listed path must be a plain relative POSIX path that stays inside the staging folder
  (no backslashes, drive letters, UNC or absolute paths, no `.`/`..` parts, control characters,
  Windows device names, over-long names, nor names of our own bookkeeping files), and no
  existing link in the staging folder may lead a write outside it;
- no file is written past its listed size: a server that sends more is cut off at that size
  and the file is deleted; one that sends less leaves a `.part` to resume;
- redirects are followed only when they keep to the same side of the machine's edge (a local
  mirror never sends us elsewhere, a remote server never at this machine or the LAN; the Hub's
  redirects to its CDN stay allowed).
The name and redirect rules live in `models.download_guard`; fetching and checking one file in
`models.download_file`.
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agent.atomic import write_json_atomic
from models.download_file import (
    RemoteFile,
    check_file,
    fetch,
    hf_bars_off,
    hub_errors,
    is_complete,
)
from models.download_guard import PART, install_redirect_policy, unsafe_path
from models.manifest import MANIFEST, load_manifest, manifest_files, write_manifest
from models.registry import ModelEntry, ModelError, Registry, check_name, human_size, name_from
from models.validate import GENAI_CONFIG, validate_folder

STATE = ".deskhand-download.json"
_SKIP = {".gitattributes"}


class DownloadCancelled(ModelError):
    """The caller's cancel flag stopped a download; partial files are kept for resuming."""


@dataclass(frozen=True)
class DownloadPlan:
    """What `download_model` is about to fetch; shown to the user before asking."""

    repo_id: str
    commit: str
    subfolder: str
    name: str
    endpoint: str
    files: tuple[RemoteFile, ...]
    target: Path
    staging: Path
    already: int  # bytes present from an earlier, interrupted run

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def describe(self) -> str:
        """Several lines: repo, revision, file count, total size, destination."""
        where = f"{self.repo_id}" + (f" / {self.subfolder}" if self.subfolder else "")
        lines = [f"{where} @ {self.commit[:12]} ({self.endpoint})",
                 f"  {len(self.files)} files, {human_size(self.total_bytes)} in total"]
        big = sorted(self.files, key=lambda f: -f.size)[:3]
        lines += [f"    {f.rel}: {human_size(f.size)}" for f in big]
        if self.already:
            lines.append(f"  {human_size(self.already)} already downloaded (resuming)")
        lines.append(f"  into {self.target} as model {self.name!r}")
        return "\n".join(lines)


def download_model(repo_id: str, *, confirm: Callable[[DownloadPlan], bool],
                   revision: str | None = None, subfolder: str | None = None,
                   name: str | None = None, endpoint: str | None = None,
                   token: str | bool | None = None, progress: bool = True,
                   on_progress: Callable[[int, int], None] | None = None,
                   cancel: Any = None, registry: Registry | None = None) -> ModelEntry | None:
    """Plan, ask `confirm(plan)`, download, check, register; None when the user declined.

    `progress` draws one terminal bar over all bytes; `on_progress(done, total)` (bytes) is for
    GUIs and is called from this thread after every chunk. `cancel` (anything with `is_set()`,
    e.g. a threading.Event) stops the download between chunks with DownloadCancelled; what
    arrived is kept for the next run.
    """
    registry = registry or Registry()
    plan = plan_download(repo_id, revision=revision, subfolder=subfolder, name=name,
                         endpoint=endpoint, token=token, registry=registry)
    free = shutil.disk_usage(_existing_parent(plan.staging)).free
    if plan.total_bytes - plan.already > free:
        raise ModelError(f"not enough disk space: {human_size(plan.total_bytes - plan.already)}"
                         f" needed, {human_size(free)} free at {registry.root}")
    if not confirm(plan):
        return None
    lock = plan.staging.with_name(plan.name + ".lock")
    with _exclusive(lock), hub_errors(plan.endpoint, repo_id):
        hashes = _fetch_all(plan, token=token, progress=progress, on_progress=on_progress,
                            cancel=cancel)
        entry = _finish(plan, hashes, registry, progress=progress)
    try:
        lock.unlink()
        lock.parent.rmdir()  # only succeeds when no other download is in progress
    except OSError:
        pass
    return entry


def plan_download(repo_id: str, *, revision: str | None = None, subfolder: str | None = None,
                  name: str | None = None, endpoint: str | None = None,
                  token: str | bool | None = None, registry: Registry | None = None
                  ) -> DownloadPlan:
    """Ask the Hub what the repo holds (metadata only) and decide what to fetch where."""
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.hf_api import RepoFile
    except ImportError as exc:
        raise ModelError("downloading needs huggingface_hub: pip install 'deskhand[onnx]'"
                         ) from exc

    registry = registry or Registry()
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or _default_endpoint()).rstrip("/")
    install_redirect_policy()
    api = HfApi(endpoint=endpoint, token=token)
    with hub_errors(endpoint, repo_id):
        commit = api.model_info(repo_id, revision=revision).sha
        listing = [f for f in api.list_repo_tree(repo_id, recursive=True, revision=commit)
                   if isinstance(f, RepoFile)]
    if not commit:
        raise ModelError(f"{endpoint} did not say which commit {repo_id} is at")
    root = _model_root(repo_id, [f.path for f in listing], subfolder)
    prefix = f"{root}/" if root else ""
    files = tuple(
        RemoteFile(f.path, f.path[len(prefix):], int(f.size),
                   f.lfs.sha256 if f.lfs is not None else None, f.blob_id)
        for f in listing
        if f.path.startswith(prefix) and PurePosixPath(f.path).name not in _SKIP
    )
    seen: dict[str, str] = {}
    for f in files:  # a hostile listing must not write outside the staging folder
        why = unsafe_path(f.rel) or ("a negative size" if f.size < 0 else None)
        # One file on Windows and macOS disks, which ignore case (and, APFS, normalization).
        key = unicodedata.normalize("NFC", f.rel).casefold()
        if why is None and key in seen:
            why = f"the same file as {seen[key]!r} on case-insensitive disks"
        if why is not None:
            raise ModelError(f"{repo_id} lists an unsafe file {f.repo_path!r}: {why}")
        seen[key] = f.repo_path
    default = repo_id.split("/")[-1] + (f"-{root.replace('/', '-')}" if root else "")
    name = check_name(name or name_from(default))
    if name in registry:
        raise ModelError(f"a model named {name!r} is already registered; "
                         "choose another with --name or remove it first")
    target = registry.owned_folder(name)
    if target.exists():
        raise ModelError(f"{target} already exists; remove it or choose another --name")
    staging = registry.root / ".downloads" / name
    state = _load_state(staging)
    same = state.get("repo_id") == repo_id and state.get("subfolder") == root
    already = sum(_present_bytes(staging, f) for f in files) if same else 0
    return DownloadPlan(repo_id, commit, root, name, endpoint, files, target, staging, already)


def _destination(staging: Path, rel: str) -> Path:
    """`staging/rel`, checked on disk: no existing link may take the file or its .part outside."""
    dest = staging / rel
    base = staging.resolve()
    for path in (dest, dest.with_name(dest.name + PART)):
        if path.is_symlink() or not path.resolve().is_relative_to(base):
            raise ModelError(f"{path} leads outside {staging} (a link in the download folder?);"
                             f" delete {staging} and start again")
    return dest


def _model_root(repo_id: str, paths: list[str], subfolder: str | None) -> str:
    """The repo folder holding the model: the given subfolder, or the one genai_config.json."""
    if subfolder is not None:
        root = subfolder.strip("/")
        if root and not any(p.startswith(root + "/") for p in paths):
            raise ModelError(f"{repo_id} has no folder {root!r}; model folders there: "
                             + (", ".join(_config_dirs(paths)) or "none"))
        return root
    dirs = _config_dirs(paths)
    if len(dirs) == 1:
        return "" if dirs[0] == "." else dirs[0]
    if len(dirs) > 1:
        raise ModelError(f"{repo_id} holds several model variants; choose one with "
                         f"--subfolder: {', '.join(dirs)}")
    if "config.json" in paths and any(p.endswith(".safetensors") for p in paths):
        return ""  # a Hugging Face checkpoint, for `deskhand models export`
    raise ModelError(f"{repo_id} holds no {GENAI_CONFIG}: it is not an onnxruntime-genai model "
                     "folder (nor a safetensors checkpoint)")


def _config_dirs(paths: list[str]) -> list[str]:
    return sorted({str(PurePosixPath(p).parent) for p in paths
                   if PurePosixPath(p).name == GENAI_CONFIG})


def _fetch_all(plan: DownloadPlan, *, token: str | bool | None, progress: bool,
               on_progress: Callable[[int, int], None] | None = None,
               cancel: Any = None) -> dict[str, str]:
    """Download every file not yet complete; returns {rel: sha256} of all of them."""
    from huggingface_hub.utils import build_hf_headers
    from tqdm import tqdm

    verified = _resume(plan)
    headers = build_hf_headers(token=token)
    total = plan.total_bytes
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=plan.name, disable=not progress,
               mininterval=0.5)
    finished = 0  # bytes of files already complete

    def report(position: int) -> None:
        bar.update(finished + position - bar.n)
        if on_progress is not None:
            on_progress(finished + position, total)
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled(f"download of {plan.name!r} stopped with "
                                    f"{human_size(finished + position)} of "
                                    f"{human_size(total)} kept; start it again to resume")

    # Small files first: config and tokenizer problems show before gigabytes are fetched.
    try:
        with hf_bars_off():
            for remote in sorted(plan.files, key=lambda f: f.size):
                if not is_complete(_destination(plan.staging, remote.rel), remote, verified):
                    bar.set_postfix_str(remote.rel[-40:], refresh=False)
                    _fetch_one(plan, remote, verified, headers, report)
                finished += remote.size
                report(0)
    finally:
        bar.close()
    return {f.rel: verified[f.rel] for f in plan.files}


def _resume(plan: DownloadPlan) -> dict[str, str]:
    """{rel: sha256} of the files an earlier run of this same download finished and checked."""
    state = _load_state(plan.staging)
    if (state.get("repo_id"), state.get("subfolder")) != (plan.repo_id, plan.subfolder):
        shutil.rmtree(plan.staging, ignore_errors=True)  # leftovers of another download
        state = {}
    if state.get("commit") != plan.commit:
        # The repo moved on: partial files may belong to old contents. Complete files are
        # kept but re-checked against the new checksums.
        state = {"verified": {}}
        for part in plan.staging.rglob("*.part"):
            part.unlink()
    return state.get("verified", {})


def _fetch_one(plan: DownloadPlan, remote: RemoteFile, verified: dict[str, str],
               headers: dict[str, str], report: Callable[[int], None]) -> None:
    """Fetch one file into its `.part` (resuming), check it, then give it its real name."""
    from huggingface_hub import hf_hub_url

    _destination(plan.staging, remote.rel).parent.mkdir(parents=True, exist_ok=True)
    dest = _destination(plan.staging, remote.rel)  # checked again, after mkdir
    part = dest.with_name(dest.name + PART)
    have = part.stat().st_size if part.exists() else 0
    if have > remote.size:
        part.unlink()
        have = 0
    url = hf_hub_url(plan.repo_id, remote.repo_path, revision=plan.commit, endpoint=plan.endpoint)
    _save_state(plan, verified)
    report(have)
    fetch(url, part, have, headers, remote, report)
    verified[remote.rel] = check_file(part, remote)
    os.replace(part, dest)
    _save_state(plan, verified)


def _finish(plan: DownloadPlan, hashes: dict[str, str], registry: Registry, *,
            progress: bool) -> ModelEntry:
    (plan.staging / STATE).unlink(missing_ok=True)
    source = f"hf:{plan.repo_id}@{plan.commit}" + (f"/{plan.subfolder}" if plan.subfolder else "")
    if not (plan.staging / MANIFEST).is_file():
        write_manifest(plan.staging, progress=progress, known=hashes, source=source)
    else:  # the repo's own manifest must agree with what arrived (hashes known: no re-read)
        try:
            listed = manifest_files(load_manifest(plan.staging) or {})
        except ValueError:
            listed = {}  # an unreadable manifest: validate_folder below names the problem
        wrong = sorted(rel for rel, entry in listed.items()
                       if rel in hashes and hashes[rel] != entry.sha256)
        if wrong:
            raise ModelError(f"{', '.join(wrong)} differ from the sha256 in the repo's "
                             f"{MANIFEST}; the files are kept in {plan.staging}")
    report = validate_folder(plan.staging)
    if not report.ok:
        raise ModelError(f"the downloaded files are not a usable model:\n{report.summary()}\n"
                         f"(they are in {plan.staging}; delete that folder to reclaim the space)")
    os.replace(plan.staging, plan.target)
    try:
        return registry.add(plan.target, name=plan.name, source=source, owned=True)
    except ModelError:
        os.replace(plan.target, plan.staging)
        raise


def _present_bytes(staging: Path, remote: RemoteFile) -> int:
    dest = staging / remote.rel
    if dest.is_file() and dest.stat().st_size == remote.size:
        return remote.size
    part = dest.with_name(dest.name + ".part")
    return min(part.stat().st_size, remote.size) if part.is_file() else 0


def _load_state(staging: Path) -> dict[str, Any]:
    try:
        return json.loads((staging / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_state(plan: DownloadPlan, verified: dict[str, str]) -> None:
    plan.staging.mkdir(parents=True, exist_ok=True)
    data = {"repo_id": plan.repo_id, "subfolder": plan.subfolder, "commit": plan.commit,
            "verified": verified}
    write_json_atomic(plan.staging / STATE, data, ascii_only=True)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _default_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One download per model name at a time (e.g. the app and the CLI started together).

    An OS file lock, so a crashed process never leaves a stale lock behind.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as f:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ModelError(f"another download of {lock_path.stem!r} is running; wait for it "
                             "or stop it first") from exc
        yield
