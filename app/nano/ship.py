"""Turn a Nano training run into a Deskhand model folder, and score it through the runtime.

    python -m app.nano.ship --run DIR_OR_SNAPSHOT --out MODEL_DIR [--precision int4|fp32]
    python -m app.nano.ship --score MODEL_DIR [--n 200] [--buttons 1-1] [--screens desktop]
        [--history-scale 0.5] [--no-second-look | --looks N]

`--run` writes the run's trained weights as a Hugging Face checkpoint (config, tokenizer and
chat template from the run, `deskhand_prompt.json` declaring Nano's compact system prompt) and
exports it with the project's exporter — the same pipeline as every model. `--score` runs a
model folder the way the agent loop does — the backend the factory builds for the folder, the
family's prompt with the folder's declared system prompt, greedy generation, the family's
parser — on held-out screens, and prints the hit rate: the figure that says what quantization
costs (int4 against fp32 on the same screens).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from agent.geometry import Size
from agent.prompts import SECOND_LOOK_REGIONS, declared_second_look
from app.nano.screens import COMBINED, KINDS

MAX_NEW_TOKENS = 96  # a form's `type` reply is up to ~64 tokens (a click's ~34); cut, it is a miss


def checkpoint_of(run: Path, out: Path) -> Path:
    """The weights of a training run or of a snapshot (`app.nano.snapshot`, such as the stages
    kept in app/nano/stages) as a Hugging Face checkpoint folder `out` (created)."""

    from app.nano import snapshot
    from app.nano.model import build_model, declare

    weights = snapshot.weights_of(run)["model"]  # checked first; a snapshot's widened to fp32
    model = build_model(run / "model")
    model.load_state_dict(weights)
    model.save_pretrained(out)
    for f in (run / "model").iterdir():
        if f.is_file() and not (out / f.name).exists():
            shutil.copy2(f, out / f.name)
    declare(out)
    return out


def ship(run: Path, out: Path, precision: str = "int4") -> Path:
    from models.export.pipeline import export_model

    with tempfile.TemporaryDirectory() as tmp:
        hf = checkpoint_of(run, Path(tmp) / "hf")
        return export_model(hf, out, precision=precision, progress=False)


def score(folder: Path, n: int, buttons: tuple[int, int] | None, kind: str = "buttons",
          history_scale: float = 1.0, second_look: bool = True, looks: int | None = None,
          outcomes: bool = False) -> dict:
    """Hit rates on the held-out splits through the factory's backend and the family's prompt
    (and, on desktop screens, the share of steps after a click answered terminate(success)).

    On whole screens the folder's declared second look is taken as the loop takes it
    (agent.second_look, from the screen at its own size), unless `second_look` is False, with
    `looks` regions instead of the declared number when given; `first_<split>` is then the hit
    rate of the first point alone, on the same replies. With `outcomes`, the result also lists
    every screen's outcome ({"split", "i", "after", "hit"}: for a step after a click, "hit" is
    whether it answered terminate(success)) — what a paired comparison of two models needs
    (app.nano.compare)."""
    import time

    from agent.actions import Parsed, Terminate
    from agent.inference.factory import build_backend, parse_model_spec
    from agent.prompts import family_for
    from app.nano.evaluate import CHANCE_KINDS, HELD_OUT, chance_of
    from app.nano.examples import build_prompt, is_hit
    from app.nano.screens import make_any

    backend = build_backend(parse_model_spec(str(folder)), provider="cpu")
    family = family_for(backend)  # what the agent loop prompts this backend with
    look = backend.second_look if second_look else None
    if looks is not None:
        if look is None:
            raise ValueError(f"{folder} declares no second look to take with {looks} regions")
        look = replace(look, looks=looks)
    result: dict = {"model": str(folder), "n": n, "screens": kind, "buttons": buttons,
                    "history_scale": history_scale,
                    "second_look": None if look is None else look.declared(),
                    "chance": None if kind not in CHANCE_KINDS else {}}
    seconds: list[float] = []
    screens: list[dict] = []
    for split in HELD_OUT:
        hits = first = clicks = done = after = 0
        made = []  # for the chance: only where it is counted (a desktop screen holds ~4 MB)
        for i in range(n):
            screen = make_any(kind, split, i, buttons)
            if result["chance"] is not None:
                made.append(screen)
            size = Size(*screen.image.size)
            if family.model_size(size) != size:
                raise RuntimeError(f"{folder} would see a {size} screen at {family.model_size(size)}")
            messages, images = build_prompt(family, screen, history_scale)
            started = time.perf_counter()
            text = backend.generate(messages, images, max_new_tokens=MAX_NEW_TOKENS).text
            seconds.append(time.perf_counter() - started)
            parsed = family.parse(text, size)
            action = parsed.action if isinstance(parsed, Parsed) else None
            if screen.previous is not None:
                after += 1
                ok = action == Terminate("success")
                done += ok
                screens.append({"split": split, "i": i, "after": True, "hit": ok})
                continue
            clicks += 1
            first += is_hit(action, screen)
            if look is not None and screen.captured is not None and action is not None:
                started = time.perf_counter()
                action = _look_again(backend, family, screen, action, look)
                seconds[-1] += time.perf_counter() - started
            ok = is_hit(action, screen)
            hits += ok
            screens.append({"split": split, "i": i, "after": False, "hit": ok})
        if result["chance"] is not None:  # from the screens just scored: built once
            result["chance"][split] = chance_of(made)
        result[split] = round(hits / max(1, clicks), 4)
        if look is not None:
            result["first_" + split] = round(first / max(1, clicks), 4)
        result[split + "_clicks"] = clicks
        if after:
            result[split + "_done"] = round(done / after, 4)
            result[split + "_after"] = after
    seconds.sort()
    result["median_step_s"] = round(seconds[len(seconds) // 2], 3) if seconds else None
    if outcomes:
        result["outcomes"] = screens
    return result


def _look_again(backend, family, screen, action, look):
    """The screen's action after the second look the agent loop takes (agent.second_look), on
    the screen at its own size as if it were one whole monitor."""
    from agent.geometry import Monitor, ScreenMapping
    from agent.second_look import look_again

    captured = Size(*screen.captured.size)
    mapping = ScreenMapping(Monitor(1, 0, 0, captured.width, captured.height), captured,
                            Size(*screen.image.size))
    return look_again(backend, family, screen.task, screen.captured, mapping, action, look,
                      max_new_tokens=MAX_NEW_TOKENS).action


def add_score_options(p: argparse.ArgumentParser) -> None:
    """The options that say how a folder is scored: `ship --score`'s and `app.nano.compare`'s."""
    from app.nano.screens import button_range

    p.add_argument("--n", type=int, default=200, help="screens per held-out split")
    p.add_argument("--buttons", type=button_range, default=None, metavar="LO-HI")
    # Not "mixed"/"ladder": one hit rate over two kinds would hide the one that matters (score each).
    p.add_argument("--screens", choices=[k for k in KINDS if k not in COMBINED], default="buttons")
    p.add_argument("--history-scale", type=float, default=1.0,
                   help="earlier screenshots at this fraction of their sides (as `deskhand run`)")
    p.add_argument("--no-second-look", action="store_true",
                   help="score the first point only, even where the folder declares a second look")
    p.add_argument("--looks", type=int, choices=range(1, SECOND_LOOK_REGIONS + 1), metavar="N",
                   help="take the folder's second look with N regions instead of the number it "
                   f"declares (1-{SECOND_LOOK_REGIONS}; agent.second_look)")


def score_options(p: argparse.ArgumentParser, args: argparse.Namespace,
                  folders: list[Path]) -> dict:
    """`score`'s keyword arguments from the options (p.error on a combination that cannot be
    scored on every one of `folders`)."""
    if args.looks is not None and args.no_second_look:
        p.error("--looks sets the second look's regions; not with --no-second-look")
    for folder in folders:
        if args.looks is not None and declared_second_look(folder) is None:
            p.error(f"{folder} declares no second look to take with {args.looks} regions")
    return {"n": args.n, "buttons": args.buttons, "kind": args.screens,
            "history_scale": args.history_scale, "second_look": not args.no_second_look,
            "looks": args.looks}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.nano.ship", description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path,
                   help="an app.nano.train output folder, or a snapshot (app/nano/stages/...)")
    p.add_argument("--out", type=Path, help="the model folder to write")
    p.add_argument("--precision", choices=("int4", "fp32"), default="int4")
    p.add_argument("--score", type=Path, metavar="MODEL_DIR", help="score a model folder")
    add_score_options(p)
    args = p.parse_args(argv)
    if args.score and (args.run or args.out):
        p.error("--score scores a model folder; give it alone, not with --run/--out")
    if args.score:
        print(json.dumps(score(args.score, **score_options(p, args, [args.score]))))
        return 0
    if args.looks is not None or args.no_second_look:
        score_options(p, args, [])  # the same usage errors as with --score
    if not (args.run and args.out):
        p.error("give --run DIR --out MODEL_DIR, or --score MODEL_DIR")
    from app.nano.snapshot import check_weights

    try:
        check_weights(args.run)  # before the export: its own errors are not usage errors
    except ValueError as exc:
        p.error(str(exc))
    print(ship(args.run, args.out, args.precision))
    return 0


if __name__ == "__main__":
    sys.exit(main())
