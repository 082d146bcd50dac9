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
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from PIL import Image

from agent.actions import Action, HScroll, Terminate, action_from_dict
from agent.geometry import Monitor, Point, ScreenMapping, Size, Space
from agent.prompts import PromptFamily
from agent.prompts.fara import Turn

# The sites the harness scores Nano on: never trained on (issue 16: hold out whole sites).
HELD_OUT_SITES = frozenset({"recipes", "news"})
INFO = "solved.json"
TRAJECTORIES = "trajectories.jsonl"
FORMAT = 1
FAMILY = "fara15"  # the image grid the data is resized to (Nano's)
MAX_SCREEN_PIXELS = 16_000_000  # a recorded screenshot larger than any screen is refused


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


def _inside(base: Path, name: str, what: str) -> Path:
    """`base / name`, refused when it leaves `base` (a forged record must not read elsewhere)."""
    path = (base / name).resolve()
    if not path.is_relative_to(base.resolve()):
        raise Dropped(f"{what} {name!r} is outside {base}")
    return path


def _attempt(run_dir: Path, folder: str, nano_size) -> list[tuple[Image.Image, SolvedStep]]:
    """The steps of one passed attempt as (model-size image, step); Dropped when unusable."""
    from agent.records import read_meta
    from agent.step_record import read_steps

    path = _inside(run_dir, folder, "attempt folder")
    meta, problems = read_meta(path)
    if meta is None:
        raise Dropped(f"{folder}: {problems[0] if problems else 'no run.json'}")
    steps, problems = read_steps(path)
    if problems:
        raise Dropped(f"{folder}: {problems[0]}")
    if not steps:
        raise Dropped(f"{folder}: no steps")
    out = []
    for s in steps:
        if s.action is None or s.error or s.retry:
            raise Dropped(f"{folder}: step {s.index} has no performed action")
        if s.screenshot is None or s.model_size is None:
            raise Dropped(f"{folder}: step {s.index} has no screenshot")
        shot = _inside(path, s.screenshot, "screenshot")
        try:
            with Image.open(shot) as raw:
                if raw.width * raw.height > MAX_SCREEN_PIXELS:
                    raise Dropped(f"{folder}: {s.screenshot} is larger than any screen")
                image = raw.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise Dropped(f"{folder}: {s.screenshot} is not a readable image ({exc})") from exc
        size = nano_size(Size(*image.size))
        image = image.resize((size.width, size.height), Image.Resampling.BICUBIC)  # as the loop
        action = rescaled(s.action, s.model_size, size)
        thoughts = (s.thoughts or "").strip() if isinstance(action, Terminate) else ""
        out.append((image, SolvedStep("", size, action, thoughts, s.url)))
    if not (isinstance(out[-1][1].action, Terminate) and out[-1][1].action.status == "success"):
        raise Dropped(f"{folder}: does not end with terminate(success)")
    return out


def build(eval_dirs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Write the data folder `out` from harness run folders (replacing it only once complete;
    nothing is left behind on an error); returns its solved.json."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        info = _fill(eval_dirs, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return info


def _fill(eval_dirs: Sequence[Path], staging: Path) -> dict[str, Any]:
    from agent.eval.results import check_results, read_manifest
    from app.nano.desktop import nano_model_size

    dropped: dict[str, int] = {}
    notes: list[str] = []
    sources = []
    lines = []
    steps = 0
    for run_dir in map(Path, eval_dirs):
        try:
            manifest = read_manifest(run_dir)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{run_dir} is not a harness run folder (no readable manifest.json: "
                             f"{exc})") from exc
        results, problems = check_results(run_dir)
        notes += [f"{run_dir}: {p}" for p in problems]
        sources.append({"eval": str(run_dir), "model": manifest.get("model"),
                        "config_hash": manifest.get("config_hash"), "results": len(results)})
        for r in results:
            if r.site in HELD_OUT_SITES:
                reason = "held-out site"
            elif not r.passed:
                reason = "judge failed it"
            else:
                try:
                    recorded = _attempt(run_dir, r.dir, nano_model_size)
                except Dropped as exc:
                    reason = "unusable record"
                    notes.append(f"{run_dir}: {exc}")
                else:
                    reason = ""
            if reason:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
            kept = []
            for k, (image, step) in enumerate(recorded):
                name = f"t{len(lines):04d}-s{k:02d}.png"
                image.save(staging / name, format="PNG")
                kept.append(replace(step, image=name))
            lines.append(_to_json(Trajectory(r.question, r.task_id, r.site, tuple(kept))))
            steps += len(kept)
    (staging / TRAJECTORIES).write_text("".join(json.dumps(x) + "\n" for x in lines),
                                        encoding="utf-8")
    info = {"format": FORMAT, "family": FAMILY, "held_out_sites": sorted(HELD_OUT_SITES),
            "sources": sources, "trajectories": len(lines), "steps": steps,
            "sites": sorted({x["site"] for x in lines}), "dropped": dropped, "notes": notes}
    (staging / INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _to_json(t: Trajectory) -> dict[str, Any]:
    return {"task": t.task, "task_id": t.task_id, "site": t.site,
            "steps": [{"image": s.image, "size": [s.size.width, s.size.height],
                       "action": s.action.arguments(), "thoughts": s.thoughts, "url": s.url}
                      for s in t.steps]}


def load(folder: Path) -> SolvedSet:
    """A data folder written by `build`; ValueError naming what is wrong."""
    folder = Path(folder)
    try:
        info = json.loads((folder / INFO).read_text(encoding="utf-8"))
        raw = (folder / TRAJECTORIES).read_text(encoding="utf-8").split("\n")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder} is not a solved-trajectory folder: {exc}") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("family") != FAMILY:
        raise ValueError(f"{folder / INFO}: not format {FORMAT} data for {FAMILY}")
    trajectories = []
    for n, line in enumerate(raw, 1):
        if not line.strip():
            continue
        try:
            trajectories.append(_trajectory(folder, json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{folder / TRAJECTORIES} line {n}: {exc}") from exc
    if not trajectories:
        raise ValueError(f"{folder} holds no trajectories")
    return SolvedSet(folder, info, tuple(trajectories))


def _trajectory(folder: Path, obj: dict[str, Any]) -> Trajectory:
    site = str(obj["site"])
    if site in HELD_OUT_SITES:
        raise ValueError(f"a trajectory of the held-out site {site!r}")
    steps = []
    for s in obj["steps"]:
        action = action_from_dict(s["action"])
        if action is None:
            raise ValueError(f"unknown action {s['action']!r}")
        size = Size(int(s["size"][0]), int(s["size"][1]))
        image = str(s["image"])
        path = (folder / image).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            raise ValueError(f"image {image!r} is missing or outside the folder")
        url = s.get("url")
        steps.append(SolvedStep(image, size, action, str(s.get("thoughts", "")),
                                url if isinstance(url, str) else None))
    if not steps:
        raise ValueError("a trajectory without steps")
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
    except ValueError as exc:
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
