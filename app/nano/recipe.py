"""The Nano training recipe as one command: the six stages that give the shipped model.

    python -m app.nano.recipe --out DIR [--size probe|micro] [--scale 1.0] [--max-steps N]
        [--eval-n 40] [--from STAGE [--init-from SNAPSHOT_OR_RUN]] [--until STAGE]
        [--device cpu|cuda] [--workers N] [--threads N] [--eval-every 100]

Stage a learns the format, the pointer and the labels on one-button screens; stage b adds each
image token's own position; stage c supervises one attention head onto the target (the stage
that made the clicks land: README "Deskhand Nano"); the ladder moves to whole screens with real
Qt windows, half of its training screens smaller ones cut around the window (seen nearer their
size), keeping the drawn buttons, and adds the step after the click (terminate); the anneal
continues it at a quarter of the learning rate (the step that took the first points on whole
screens from ~14 % to ~28 %; with the second look, agent.second_look, ~60 %); the second
anneal continues that at half its learning rate again (first points ~28 % -> ~38 %; with the
second look's five regions 73 %/63 % -> 81 %/86 %: the shipped model). (An earlier
stage d, whole screens alone from c, lost the drawn-button clicks and never clicked on whole
screens: README.) Each stage is an
`app.nano.train` run in DIR/a .. DIR/anneal2, started from the previous one's weights (`--init-from`)
with its own seed, so the whole recipe is reproducible from the seeds; a stage that already
reached its budget is skipped and an interrupted one resumes, so running the command again
continues it. Budgets are steps (the same seed and steps give the same weights; a CPU-minute
budget reached 245 steps of stage a here where an earlier machine reached 438). `--scale`
multiplies every stage's steps; `--max-steps` caps each stage (tests).

The recipe is about 7 CPU-hours and the machines here are lent per session, their disks lost
with them, so it also runs in pieces: each finished stage leaves a snapshot
(`app.nano.snapshot`, ~11 MB, no optimizer) in DIR/snapshots/<stage>, and `--from STAGE
--init-from SNAPSHOT` starts at STAGE from such a snapshot (or a run folder) made on another
machine, e.g. the stage snapshots kept in app/nano/stages; `--until STAGE` stops after STAGE.
A stage started from a snapshot starts its optimizer fresh, as every stage does (`--init-from`),
from fp16 weights: what the measured chain did for the anneal (from the ladder's snapshot, as
the recipe's own chain does: FROM_SNAPSHOT); the second anneal started from the anneal's fp32
checkpoint, so from the anneal's snapshot it starts from weights rounded to fp16 (at most
~5e-4 relative for all but ~0.1 % of the tiniest weights).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.nano import snapshot
from app.nano.train import main as train
from app.nano.train_args import check_device

# (folder, steps, arguments): the steps of the measured runs (a-c: budgets of 18, 12 and 27
# CPU-minutes on a 2-core AMD EPYC, one thread; the ladder: 247 CPU-minutes, 2 threads, in three
# --resume'd parts; the anneal: 50 CPU-minutes, one thread, started from the ladder's fp16
# snapshot app/nano/stages/ladder rather than its fp32 checkpoint; the second anneal: 72
# CPU-minutes, one thread, from the anneal's fp32 checkpoint, stopped at step 557 of a planned
# 700 — the learning rate is constant after its warm-up, so that is the same as 557 steps).
# Thread counts change the float summation order, not the recipe.
STAGES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("a", 245, ("--seed", "0", "--aux-read", "0.5", "--aux-point", "1", "--digit-weight", "3")),
    ("b", 155, ("--seed", "1", "--aux-where", "1", "--aux-read", "0.5", "--aux-point", "1",
                 "--digit-weight", "5", "--warmup", "20")),
    ("c", 321, ("--seed", "2", "--aux-attend", "1", "--aux-where", "0.5", "--aux-point", "0.5",
                 "--aux-read", "0.25", "--digit-weight", "5", "--warmup", "20")),
    ("ladder", 1800, ("--seed", "5", "--screens", "ladder", "--aux-attend", "1", "--aux-where",
                      "0.5", "--aux-point", "0.5", "--aux-read", "0.25", "--aux-centre", "1",
                      "--digit-weight", "5", "--warmup", "20")),
    ("anneal", 400, ("--seed", "7", "--screens", "ladder", "--aux-attend", "1", "--aux-where",
                     "0.5", "--aux-point", "0.5", "--aux-read", "0.25", "--aux-centre", "1",
                     "--digit-weight", "5", "--warmup", "20", "--lr", "2.5e-4")),
    ("anneal2", 557, ("--seed", "11", "--screens", "ladder", "--aux-attend", "1", "--aux-where",
                      "0.5", "--aux-point", "0.5", "--aux-read", "0.25", "--aux-centre", "1",
                      "--digit-weight", "5", "--warmup", "20", "--lr", "1.25e-4")),
)
COMMON = ("--family", "fara15", "--buttons", "1-1")


NAMES = tuple(name for name, _, _ in STAGES)


# The measured anneal started from the ladder's fp16 snapshot (app/nano/stages/ladder), not its
# fp32 checkpoint; the recipe starts it the same way, from the snapshot it keeps of the ladder.
FROM_SNAPSHOT = frozenset({"anneal"})


def stage_args(out: Path, index: int, size: str, scale: float, max_steps: int | None,
               eval_n: int = 40, init_from: Path | None = None,
               machine: tuple[str, ...] = ()) -> list[str]:
    """`app.nano.train` arguments of stage `index`: resuming it when it has a checkpoint, else
    started from `init_from` when given, else from the previous stage in `out` (its run, or its
    snapshot for the stages in FROM_SNAPSHOT); `machine`: where and how it runs (device,
    workers, threads, evaluations), which changes no example and no step."""
    name, steps, extra = STAGES[index]
    steps = max(1, round(steps * scale))
    if max_steps is not None:
        steps = min(steps, max_steps)
    argv = [*COMMON, *extra, "--size", size, "--out", str(out / name),
            "--max-steps", str(steps), "--eval-n", str(eval_n), *machine]
    if (out / name / "checkpoint.pt").is_file():
        argv.append("--resume")
    elif init_from is not None:
        argv += ["--init-from", str(init_from)]
    elif index > 0:
        previous = NAMES[index - 1]
        argv += ["--init-from", str(out / "snapshots" / previous if name in FROM_SNAPSHOT
                                    else out / previous)]
    return argv


def finished(folder: Path) -> bool:
    """Whether the run in `folder` ended normally (its last record is the end record)."""
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return False
    lines = path.read_text(encoding="utf-8").splitlines()
    return bool(lines) and json.loads(lines[-1]).get("kind") == "end"


def _check_start(p: argparse.ArgumentParser, args: argparse.Namespace, first: int) -> None:
    """Usage errors for where the run starts: the weights `--from` needs, and what they are."""
    here = args.out / NAMES[first]
    started_here = finished(here) or (here / "checkpoint.pt").is_file()
    if args.init_from is not None:
        if first == 0:
            p.error("--init-from needs --from a later stage than the first (stage a starts "
                    "from random weights)")
        try:
            snapshot.check_weights(args.init_from)
        except ValueError as exc:
            p.error(f"--init-from: {exc}")
        if not snapshot.is_snapshot(args.init_from) and not finished(args.init_from):
            p.error(f"--init-from: the run {args.init_from} has not finished (no end record "
                    f"in its metrics.jsonl); give its snapshot or let it finish")
        if started_here:
            print(f"note: stage {NAMES[first]} was started in {here} before; it goes on from "
                  f"there and --init-from is not used", flush=True)
    elif first > 0 and not started_here and not finished(args.out / NAMES[first - 1]):
        p.error(f"--from {args.first} needs the weights of stage {NAMES[first - 1]}: "
                f"--init-from SNAPSHOT (e.g. app/nano/stages/{NAMES[first - 1]} where kept), "
                f"or a finished run in {args.out / NAMES[first - 1]}")


def _keep_snapshot(out: Path, index: int, trained: bool) -> None:
    """Snapshot stage `index`'s run in out/snapshots (again when it was trained since)."""
    name, run = NAMES[index], out / NAMES[index]
    kept, checkpoint = out / "snapshots" / name, out / NAMES[index] / "checkpoint.pt"
    if not checkpoint.is_file():  # a finished run whose checkpoint was removed by hand
        if snapshot.is_snapshot(kept):
            return
        raise SystemExit(f"stage {name}: {run} has finished but holds no checkpoint.pt to "
                         f"snapshot; remove {run} to train the stage again")
    if (not trained and snapshot.is_snapshot(kept)
            and (kept / snapshot.INFO).stat().st_mtime >= checkpoint.stat().st_mtime):
        return
    snapshot.write(run, kept)
    later = (f"go on elsewhere with --from {NAMES[index + 1]} --init-from {kept}"
             if index + 1 < len(NAMES) else f"python -m app.nano.ship --run {kept} --out DIR")
    print(f"stage {name}: snapshot {kept} ({later})", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.nano.recipe", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", choices=("probe", "micro"), default="probe")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every stage's steps")
    p.add_argument("--max-steps", type=int, default=None, help="cap each stage (for tests)")
    p.add_argument("--eval-n", type=int, default=40, help="held-out screens per evaluation")
    p.add_argument("--from", dest="first", choices=NAMES, default=NAMES[0],
                   help="start at this stage (earlier ones are not run)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="with --from: the previous stage's weights (a snapshot such as "
                        "app/nano/stages/ladder, or a finished run folder)")
    p.add_argument("--until", dest="last", choices=NAMES, default=NAMES[-1],
                   help="stop after this stage")
    p.add_argument("--eval-every", type=int, default=100,
                   help="steps between held-out evaluations (each stage also evaluates at its "
                        "start and end; evaluations change no weight)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:N]")
    p.add_argument("--workers", type=int, default=0,
                   help="processes drawing the next steps' screens (app.nano.train --workers)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    args = p.parse_args(argv)
    if args.scale <= 0:
        p.error("--scale must be positive")
    if args.eval_every < 1 or args.workers < 0 or args.threads < 1:
        p.error("--eval-every and --threads must be 1 or more, --workers 0 or more")
    check_device(p, args.device)
    machine = ("--eval-every", str(args.eval_every), "--device", args.device,
               "--workers", str(args.workers), "--threads", str(args.threads))
    first, last = NAMES.index(args.first), NAMES.index(args.last)
    if last < first:
        p.error(f"--until {args.last} comes before --from {args.first}")
    _check_start(p, args, first)
    args.out.mkdir(parents=True, exist_ok=True)
    for index in range(first, last + 1):
        name = NAMES[index]
        trained = not finished(args.out / name)
        if trained:
            init = args.init_from if index == first else None
            argv = stage_args(args.out, index, args.size, args.scale, args.max_steps,
                              args.eval_n, init, machine)
            print(f"stage {name}: python -m app.nano.train {' '.join(argv)}", flush=True)
            code = train(argv)
            if code:
                return code
        else:
            print(f"stage {name}: done before, skipped", flush=True)
        _keep_snapshot(args.out, index, trained)
    if last < len(NAMES) - 1:
        print(f"stopped after stage {args.last}; go on with --from {NAMES[last + 1]}", flush=True)
        return 0
    print(f"the model: {args.out / NAMES[-1]} (python -m app.nano.ship --run that --out DIR)",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
