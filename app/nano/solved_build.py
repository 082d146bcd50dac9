"""Building the verified-trajectory data folder (see app/nano/solved.py): read harness run
folders, keep the judge-passed attempts of training sites, move each step to Nano's image.

Split from app/nano/solved.py at the seam between writing the data (here: it reads untrusted
run folders, so every check against a forged one lives here) and reading it back for training.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from agent.actions import Action, HScroll, Terminate
from agent.geometry import Monitor, Point, ScreenMapping, Size, Space
from agent.paths import read_small_file
from app.nano.solved import (
    _ACTIONS,
    FAMILY,
    FORMAT,
    HELD_OUT_SITES,
    INFO,
    TRAJECTORIES,
    SolvedStep,
    Trajectory,
    _digest,
    _to_json,
)

MAX_SCREEN_PIXELS = 16_000_000  # a recorded screenshot larger than any screen is refused
_IMAGE_NAME = re.compile(r"t\d{4}-s\d{2}\.png")  # the data folder's image names


class Dropped(Exception):
    """Why an attempt is not kept (counted by reason in solved.json)."""


def rescaled(action: Action, source: Size, target: Size) -> Action:
    """`action` (MODEL pixels of a `source` image) in MODEL pixels of a `target` image of the same
    screenshot: points through the one conversion module, scroll amounts by the axis they move."""
    monitor = Monitor(0, 0, 0, source.width, source.height)
    was = ScreenMapping(monitor, source, source)
    now = ScreenMapping(monitor, source, target)
    changes: dict[str, Any] = {}
    for f in fields(action):
        value = getattr(action, f.name)
        if f.name.endswith("coordinate") and isinstance(value, tuple):
            shot = was.convert(Point(value[0], value[1], Space.MODEL), Space.SCREENSHOT)
            x, y = now.convert(shot, Space.MODEL).rounded()
            changes[f.name] = (min(max(x, 0), target.width - 1), min(max(y, 0), target.height - 1))
        elif f.name == "pixels":
            horizontal = isinstance(action, HScroll)
            ratio = (target.width / source.width) if horizontal else (target.height / source.height)
            changes[f.name] = round(value * ratio)
    return replace(action, **changes) if changes else action


def _site(task_id: str, site: str) -> str:
    """The attempt's site, from its task id ("shop--3"), checked against the record's `site`: a
    record whose site field is missing or forged cannot pass a held-out site's task as another."""
    named = task_id.partition("--")[0] if "--" in task_id else ""
    if not named or (site and site != named):
        raise Dropped(f"task {task_id!r} does not name its site (record says {site!r})")
    return named


def _attempt(run_dir: Path, folder: str, nano_size) -> tuple[str, list[tuple[Image.Image,
                                                                           SolvedStep]]]:
    """(task, steps as (model-size image, step)) of one passed attempt; Dropped when unusable."""
    from agent.records import inside, read_meta
    from agent.step_record import read_steps

    found = inside(run_dir, f"{folder}/run.json")  # resolved inside the run folder, or None
    if found is None:
        raise Dropped(f"attempt folder {folder!r} is missing or outside {run_dir}")
    path = found.parent
    meta, problems = read_meta(path)
    if meta is None or not isinstance(meta.get("task"), str):
        raise Dropped(f"{folder}: {problems[0] if problems else 'no task in run.json'}")
    steps, problems = read_steps(path)
    if problems:
        raise Dropped(f"{folder}: {problems[0]}")
    if not steps:
        raise Dropped(f"{folder}: no steps")
    out = []
    for k, s in enumerate(steps):
        if s.index != k or s.action is None or s.error or s.retry:
            raise Dropped(f"{folder}: step {s.index} is not the performed step {k}")
        if type(s.action) not in _ACTIONS:
            raise Dropped(f"{folder}: step {k} is {s.action.name}, not one of Nano's actions "
                          "(a question's answer is not in the record)")
        shot = inside(path, s.screenshot) if s.screenshot else None
        if shot is None or s.model_size is None:
            raise Dropped(f"{folder}: step {k} has no screenshot in its folder")
        try:
            with Image.open(shot) as raw:
                if raw.width * raw.height > MAX_SCREEN_PIXELS:
                    raise Dropped(f"{folder}: {s.screenshot} is larger than any screen")
                image = raw.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise Dropped(f"{folder}: {s.screenshot} is not a readable image ({exc})") from exc
        if s.url and urlsplit(s.url).path.strip("/").split("/")[0] in HELD_OUT_SITES:
            raise Dropped(f"{folder}: step {k} is on a held-out site ({s.url})")
        size = nano_size(Size(*image.size))
        image = image.resize((size.width, size.height), Image.Resampling.BICUBIC)  # as the loop
        action = rescaled(s.action, s.model_size, size)
        thoughts = (s.thoughts or "").strip() if isinstance(action, Terminate) else ""
        out.append((image, SolvedStep("", size, action, thoughts, s.url)))
    if any(isinstance(st.action, Terminate) for _, st in out[:-1]) or \
            out[-1][1].action != Terminate("success"):
        raise Dropped(f"{folder}: does not end with its one terminate(success)")
    return meta["task"], out


def _check_out(eval_dirs: Sequence[Path], out: Path) -> None:
    """Refuse an --out that would destroy something that is not an earlier data folder."""
    where = out.resolve()
    for run_dir in eval_dirs:
        run = Path(run_dir).resolve()
        if where == run or where.is_relative_to(run) or run.is_relative_to(where):
            raise ValueError(f"--out {out} overlaps the run folder {run_dir}")
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise ValueError(f"{out} exists and is not a solved-trajectory folder: not replaced")
    names = [f.name for f in out.iterdir()]
    if not names:
        return
    ours = all(n in (INFO, TRAJECTORIES) or _IMAGE_NAME.fullmatch(n) for n in names)
    try:
        info = json.loads(read_small_file(out / INFO, 1 << 22, follow_links=False))
        ours = ours and isinstance(info, dict) and info.get("family") == FAMILY
    except (OSError, ValueError, RecursionError):
        ours = False
    if not ours:
        raise ValueError(f"{out} exists and is not a solved-trajectory folder (or holds other "
                         "files): not replaced")


def build(eval_dirs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Write the data folder `out` from harness run folders (replacing an earlier data folder
    only once the new one is complete; nothing is left behind on an error); returns its
    solved.json. Work folders get fresh unique names next to `out`: nothing else is deleted."""
    out = Path(out)
    _check_out(eval_dirs, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        info = _fill(eval_dirs, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        out.rename(old / out.name)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)
    return info


def _manifest(run_dir: Path) -> dict[str, Any]:
    """The run folder's manifest (a regular file, not a link, small); ValueError otherwise."""
    from agent.eval.results import MANIFEST, RESULTS

    try:
        if (run_dir / MANIFEST).is_symlink() or (run_dir / RESULTS).is_symlink():
            raise OSError(0, "a symbolic link, not followed")
        manifest = json.loads(read_small_file(run_dir / MANIFEST, 1 << 20, follow_links=False))
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{run_dir} is not a harness run folder (manifest.json: {exc})") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{run_dir} is not a harness run folder (manifest.json: not an object)")
    return manifest


def _fill(eval_dirs: Sequence[Path], staging: Path) -> dict[str, Any]:
    from agent.eval.results import check_results
    from agent.eval.worker import attempt_dir
    from app.nano.desktop import nano_model_size

    dropped: dict[str, int] = {}
    notes: list[str] = []
    sources = []
    kept: list[tuple[tuple, Trajectory]] = []
    for order, run_dir in enumerate(map(Path, eval_dirs)):
        manifest = _manifest(run_dir)
        try:
            results, problems = check_results(run_dir)
        except OSError as exc:
            raise ValueError(f"{run_dir}: results.jsonl cannot be read ({exc})") from exc
        notes += [f"{run_dir}: {p}" for p in problems]
        sources.append({"eval": str(run_dir), "model": str(manifest.get("model")),
                        "config_hash": str(manifest.get("config_hash")), "results": len(results)})
        for r in results:
            try:
                site = _site(r.task_id, r.site)
                if site in HELD_OUT_SITES:
                    reason = "held-out site"
                elif not r.passed:
                    reason = "judge failed it"
                elif r.dir != attempt_dir(r.task_id, r.repeat):  # a task id over another's run
                    raise Dropped(f"{r.dir!r} is not the folder of {r.task_id!r}")
                else:
                    task, recorded = _attempt(run_dir, r.dir, nano_model_size)
                    reason = ""
            except Dropped as exc:
                reason = "unusable record"
                notes.append(f"{run_dir}: {exc}")
            if reason:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
            # Sorted by task, not by finishing order (parallel workers): the same runs always
            # give the same examples at the same indices.
            steps = []
            for image, step in recorded:  # saved now (not held in memory), renamed once sorted
                name = f"u{len(kept):05d}-s{len(steps):02d}.png"
                image.save(staging / name, format="PNG")
                steps.append(replace(step, image=name))
            kept.append(((r.task_id, r.repeat, order), Trajectory(task, r.task_id, site,
                                                                  tuple(steps))))
    if not kept:
        raise ValueError("no attempt passed its judge on a training site: nothing to keep "
                         f"(dropped: {dropped or 'none'})")
    lines = []
    for n, (_, traj) in enumerate(sorted(kept, key=lambda k: k[0])):
        steps = []
        for k, step in enumerate(traj.steps):
            name = f"t{n:04d}-s{k:02d}.png"
            (staging / step.image).rename(staging / name)
            steps.append(replace(step, image=name))
        lines.append(_to_json(replace(traj, steps=tuple(steps))))
    (staging / TRAJECTORIES).write_text("".join(json.dumps(x) + "\n" for x in lines),
                                        encoding="utf-8")
    info = {"format": FORMAT, "family": FAMILY, "held_out_sites": sorted(HELD_OUT_SITES),
            "sources": sources, "trajectories": len(lines),
            "steps": sum(len(x["steps"]) for x in lines),
            "sites": sorted({x["site"] for x in lines}), "dropped": dropped, "notes": notes,
            "digest": _digest(staging, lines)}
    (staging / INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
