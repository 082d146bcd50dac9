"""Verified trajectories: the offline sites' scripted solver as Deskhand Nano's multi-step data.

    deskhand eval run --model scripted:solver --sites-only shop,flights,... --out EVAL_DIR
    python -m app.nano.solved --eval EVAL_DIR [--eval EVAL_DIR ...] --out DATA_DIR
    python -m app.nano.train ... --solved DATA_DIR --solved-share 0.25

The solver plays each task through the agent loop with real input, and the harness records every
step (its screenshot and action); then the site's judge scores the attempt. Only attempts the
judge passed are kept: the verifier of Fara's own recipe, in miniature. Nothing from the held-out
sites (`HELD_OUT_SITES`: the harness scores Nano on them) is ever kept, whichever run it comes
from.

Each kept step becomes one example, prompted as the loop would prompt Nano at that step: the
task, the earlier steps' screenshots and replies, the current URL line, the screenshot at Nano's
model size. The answer is the recorded action moved to that size and written by the family
(Qwen3.5's display grid). The solver's thoughts name CSS selectors (its own bookkeeping, not
something a model could see), so replies carry none, except the final terminate's: that text is
the run's answer.

DATA_DIR holds `solved.json` (provenance and what was dropped, and why), `trajectories.jsonl`
(one kept attempt per line; actions in MODEL pixels of each step's image, so any family can
write them) and the images (PNG, Nano's model size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from agent.action_types import FARA15_ACTIONS, AskUser, ReadPage
from agent.actions import Action, HScroll, Terminate, action_from_dict
from agent.geometry import Monitor, Point, ScreenMapping, Size, Space
from agent.paths import read_small_file
from agent.prompts import PromptFamily
from agent.prompts.fara import Turn

# The sites the harness scores Nano on: never trained on (issue 16: hold out whole sites).
HELD_OUT_SITES = frozenset({"recipes", "news"})
INFO = "solved.json"
TRAJECTORIES = "trajectories.jsonl"
FORMAT = 1
FAMILY = "fara15"  # the image grid the data is resized to (Nano's)
MAX_SCREEN_PIXELS = 16_000_000  # a recorded screenshot larger than any screen is refused
_IMAGE_NAME = re.compile(r"t\d{4}-s\d{2}\.png")
GRID = 32  # Qwen3.5's image grid (patch 16, merge 2): every Nano image size is a multiple
# What a Nano reply may be: Fara1.5's actions but the two whose answer comes from outside the
# screen (the person's reply, the page's text), which the record does not hold.
_ACTIONS = frozenset(cls for cls in FARA15_ACTIONS.values() if cls not in (AskUser, ReadPage))


@dataclass(frozen=True)
class SolvedStep:
    image: str                 # file name in the data folder (Nano's model size)
    size: Size                 # that image's size
    action: Action             # in MODEL pixels of `size`
    thoughts: str              # kept for terminate only (the answer)
    url: str | None = None


@dataclass(frozen=True)
class Trajectory:
    task: str
    task_id: str
    site: str
    steps: tuple[SolvedStep, ...]


@dataclass(frozen=True)
class SolvedSet:
    """A data folder read back: its trajectories and the (trajectory, step) index of each example."""

    folder: Path
    info: dict[str, Any]
    trajectories: tuple[Trajectory, ...]

    @property
    def examples(self) -> list[tuple[int, int]]:
        return [(t, s) for t, traj in enumerate(self.trajectories) for s in range(len(traj.steps))]

    def image(self, step: SolvedStep) -> Image.Image:
        with Image.open(self.folder / step.image) as raw:
            return raw.convert("RGB")

    def prompt(self, family: PromptFamily, index: tuple[int, int], history_scale: float = 1.0,
               ) -> tuple[list, list[Image.Image], str]:
        """(messages, images, reply) of example `index`: the family's prompt at that step, and the
        reply it should give."""
        from app.nano.examples import reply_for

        traj = self.trajectories[index[0]]
        steps = traj.steps[: index[1] + 1]
        history = [Turn(self.image(s), reply_for(family, s.action, s.size, s.thoughts), s.url)
                   for s in steps[:-1]]
        now = steps[-1]
        messages, images = family.build(traj.task, history, self.image(now), now.size, now.url,
                                        history_scale=history_scale)
        return messages, images, reply_for(family, now.action, now.size, now.thoughts)


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


def _digest(folder: Path, lines: list[dict[str, Any]]) -> str:
    """sha256 over trajectories.jsonl and every image in order: what a training run records, so
    a rebuilt or edited folder cannot silently change a resumed run's batches."""
    h = hashlib.sha256((folder / TRAJECTORIES).read_bytes())
    for line in lines:
        for step in line["steps"]:
            h.update((folder / step["image"]).read_bytes())
    return h.hexdigest()


def _to_json(t: Trajectory) -> dict[str, Any]:
    return {"task": t.task, "task_id": t.task_id, "site": t.site,
            "steps": [{"image": s.image, "size": [s.size.width, s.size.height],
                       "action": s.action.arguments(), "thoughts": s.thoughts, "url": s.url}
                      for s in t.steps]}


def load(folder: Path) -> SolvedSet:
    """A data folder written by `build`; ValueError naming what is wrong."""
    folder = Path(folder)
    try:
        info = json.loads(read_small_file(folder / INFO, 1 << 22))
        raw = read_small_file(folder / TRAJECTORIES, 1 << 28).decode("utf-8").split("\n")
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{folder} is not a solved-trajectory folder: {exc}") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("family") != FAMILY:
        raise ValueError(f"{folder / INFO}: not format {FORMAT} data for {FAMILY}")
    trajectories, lines = [], []
    for n, line in enumerate(raw, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            trajectories.append(_trajectory(folder, obj))
            lines.append(obj)
        except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
            raise ValueError(f"{folder / TRAJECTORIES} line {n}: {exc}") from exc
    if not trajectories:
        raise ValueError(f"{folder} holds no trajectories")
    if not info.get("digest"):
        raise ValueError(f"{folder} has no digest (built by an older Deskhand): rebuild it")
    if info.get("digest") != _digest(folder, lines):
        raise ValueError(f"{folder} changed since it was built (its digest differs): rebuild it")
    return SolvedSet(folder, info, tuple(trajectories))


def _trajectory(folder: Path, obj: dict[str, Any]) -> Trajectory:
    from agent.records import inside
    from app.nano.desktop import MAX_PIXELS

    site = str(obj["site"])
    if site in HELD_OUT_SITES or not str(obj["task_id"]).startswith(f"{site}--"):
        raise ValueError(f"a trajectory of a held-out or unnamed site ({obj['task_id']!r})")
    steps = []
    for s in obj["steps"]:
        action = action_from_dict(s["action"])
        if action is None or type(action) not in _ACTIONS:
            raise ValueError(f"unknown action {s['action']!r}")
        size = Size(int(s["size"][0]), int(s["size"][1]))
        if size.width % GRID or size.height % GRID or not 0 < size.pixels <= MAX_PIXELS:
            raise ValueError(f"{size} is not a Nano image size")
        for f in fields(action):
            point = getattr(action, f.name)
            if f.name.endswith("coordinate") and isinstance(point, tuple) and not (
                    0 <= point[0] < size.width and 0 <= point[1] < size.height):
                raise ValueError(f"{action.name} at {point} is outside the {size} image")
        image = str(s["image"])
        path = inside(folder, image)
        if path is None:
            raise ValueError(f"image {image!r} is missing or outside the folder")
        try:
            with Image.open(path) as raw:
                shape = raw.size
        except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ValueError(f"image {image!r} is not readable ({exc})") from exc
        if shape != (size.width, size.height):
            raise ValueError(f"image {image!r} is {shape}, not {size}")
        url = s.get("url")
        steps.append(SolvedStep(image, size, action, str(s.get("thoughts", "")),
                                url if isinstance(url, str) else None))
    if not steps:
        raise ValueError("a trajectory without steps")
    if any(isinstance(st.action, Terminate) for st in steps[:-1]) or \
            steps[-1].action != Terminate("success"):
        raise ValueError("a trajectory must end with its one terminate(success)")
    return Trajectory(str(obj["task"]), str(obj["task_id"]), site, tuple(steps))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.nano.solved",
                                description=__doc__.split("\n")[0])
    p.add_argument("--eval", type=Path, action="append", required=True, metavar="EVAL_DIR",
                   help="a `deskhand eval run` folder (repeat for several)")
    p.add_argument("--out", type=Path, required=True, help="the data folder to write (replaced)")
    args = p.parse_args(argv)
    try:
        info = build(args.eval, args.out)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {info['trajectories']} trajectories, {info['steps']} steps "
          f"from {', '.join(info['sites']) or 'no site'}; dropped: "
          f"{', '.join(f'{v} {k}' for k, v in sorted(info['dropped'].items())) or 'none'}")
    for note in info["notes"]:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
