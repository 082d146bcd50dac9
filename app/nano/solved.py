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

Building the folder (reading the untrusted run folders) is app/nano/solved_build.py; this
module owns the folder's format and reads it back for training.

DATA_DIR holds `solved.json` (provenance and what was dropped, and why), `trajectories.jsonl`
(one kept attempt per line; actions in MODEL pixels of each step's image, so any family can
write them) and the images (PNG, Nano's model size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from PIL import Image

from agent.action_types import FARA15_ACTIONS, AskUser, ReadPage
from agent.actions import Action, Terminate, action_from_dict
from agent.geometry import Size
from agent.paths import read_small_file
from agent.prompts import PromptFamily
from agent.prompts.fara import Turn

# The sites the harness scores Nano on: never trained on (issue 16: hold out whole sites).
HELD_OUT_SITES = frozenset({"recipes", "news"})
INFO = "solved.json"
TRAJECTORIES = "trajectories.jsonl"
FORMAT = 1
FAMILY = "fara15"  # the image grid the data is resized to (Nano's)
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
    from app.nano.solved_build import build

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
