"""Held-out hit rate: greedy decoding with the torch model, read by the family's own parser.

A hit is a parsed left_click whose MODEL-pixel point lies inside the named button. Two held-out
sets: "heldout" (layouts never trained on, training words) and "heldout_words" (new layouts whose
target is a word never seen in training). Chance is the mean of 1/number-of-buttons: what picking
a button at random (and clicking inside it) would score.
"""

from __future__ import annotations

import torch

from agent.geometry import Size
from app.nano.examples import Encoder, is_hit
from app.nano.screens import KINDS, PARTS, Screen, button_range, make_any, make_screen

HELD_OUT = ("heldout", "heldout_words")
MAX_NEW_TOKENS = 96  # a form's `type` reply is up to ~64 tokens (a click's ~34); cut, it is a miss


# Kinds whose screens list every button a click could mean (desktop windows list the target
# alone): their chance is that of a click on one of them at random.
CHANCE_KINDS = ("buttons", "web")


def chance(n: int, buttons: tuple[int, int] | None = None, kind: str = "buttons"
           ) -> dict[str, float] | None:
    """Per held-out split, the hit rate of a click on a random button, over the first `n`
    screens' clicks (steps after a click excluded, as `hit_rates` does); None for kinds whose
    screens do not list every button (CHANCE_KINDS)."""
    if kind not in CHANCE_KINDS:
        return None
    return {split: chance_of([make_screen(split, i, buttons) if kind == "buttons"
                              else make_any(kind, split, i) for i in range(n)])
            for split in HELD_OUT}


def chance_of(screens: list[Screen]) -> float:
    """The hit rate of a click on a random button over `screens`' clicks (steps after a click
    excluded): for callers that have built the screens already (a web page's costs a PNG
    decode), only for kinds in CHANCE_KINDS."""
    clicks = [s for s in screens if s.previous is None]
    return round(sum(1 / len(s.buttons) for s in clicks) / max(1, len(clicks)), 4)


@torch.no_grad()
def reply_of(model, encoder: Encoder, screen) -> str:
    """The model's greedy reply to `screen`'s prompt, decoded."""
    ids, pixels, grids = encoder.prompt(screen)
    device = getattr(model, "device", torch.device("cpu"))  # trained with --device cuda: there
    input_ids = torch.tensor([ids], device=device)
    out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                         mm_token_type_ids=(input_ids == encoder.prompts.image_token_id).long(),
                         pixel_values=torch.from_numpy(pixels).to(device),
                         image_grid_thw=torch.tensor(list(grids), device=device),
                         max_new_tokens=MAX_NEW_TOKENS,
                         do_sample=False, eos_token_id=encoder.im_end,
                         pad_token_id=encoder.im_end)
    return encoder.tokenizer.decode(out[0, len(ids):].tolist(), skip_special_tokens=True)


def hit_rates(model, encoder: Encoder, n: int, buttons: tuple[int, int] | None = None,
              kind: str = "buttons") -> dict[str, float]:
    """Per held-out split: the hit rate (`app.nano.examples.is_hit`: a click inside the target;
    on form screens the asked typing inside the field), and as diagnostics the fraction of
    replies that parse to an action with a point (`_parsed`), that land on any button
    (`_on_button`: found buttons, maybe not the named one) and the mean distance in pixels to
    the target's centre (`_dist`). Of the first `n` screens, those that are the step after the
    action (desktop and form screens) are scored apart: the share answered terminate(success)
    (`_done`). "mixed" scores its two kinds apart: desktop
    screens under the plain keys, drawn buttons under keys starting "buttons_" ("ladder" too: its
    held-out desktop screens are the real sizes; "webladder" adds web pages under "web_")."""
    if kind in PARTS:  # held out: the real screen sizes either way
        first, *others = PARTS[kind]
        rates = hit_rates(model, encoder, n, None, first)
        for part in others:
            sub = hit_rates(model, encoder, n, ((1, 1) if buttons is None else buttons)
                            if part == "buttons" else None, part)
            rates.update({f"{part}_{k}": v for k, v in sub.items()})
        return rates
    was_training = model.training
    model.eval()
    rates: dict[str, float] = {}
    try:
        for split in HELD_OUT:
            hits = parsed = on_button = clicks = after = done = 0
            distance = 0.0
            for i in range(n):
                screen = make_any(kind, split, i, buttons)
                size = Size(*screen.image.size)
                reply = reply_of(model, encoder, screen)
                if screen.previous is not None:
                    after += 1
                    done += encoder.terminates(reply, size)
                    continue
                clicks += 1
                action = encoder.action(reply, size)
                point = getattr(action, "coordinate", None)  # a click's or a typing's point
                if point is None:
                    continue
                parsed += 1
                hits += is_hit(action, screen)
                on_button += any(b.box.contains(*point) for b in screen.buttons)
                cx, cy = screen.target_button.box.centre
                distance += ((point[0] - cx) ** 2 + (point[1] - cy) ** 2) ** 0.5
            rates[split] = round(hits / max(1, clicks), 4)
            rates[split + "_parsed"] = round(parsed / max(1, clicks), 4)
            rates[split + "_on_button"] = round(on_button / max(1, clicks), 4)
            rates[split + "_dist"] = round(distance / parsed, 1) if parsed else None
            if after:
                rates[split + "_done"] = round(done / after, 4)
    finally:
        model.train(was_training)
    return rates


def main(argv: list[str] | None = None) -> int:
    """`python -m app.nano.evaluate --out DIR [--n N]`: a run's checkpoint on N screens per
    held-out split (the same screens as in training's evaluations, then more)."""
    import argparse
    import json
    from pathlib import Path

    from app.nano import snapshot
    from app.nano.model import build_model

    p = argparse.ArgumentParser(prog="python -m app.nano.evaluate")
    p.add_argument("--out", required=True, help="a app.nano.train output folder")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--buttons", type=button_range, default=None, metavar="LO-HI",
                   help="buttons per screen (default: what the run trained on last)")
    p.add_argument("--screens", choices=KINDS, default=None,
                   help="screen kind (default: what the run trained on last)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    saved = snapshot.read_checkpoint(out / "checkpoint.pt")
    model = build_model(out / "model")
    model.load_state_dict(saved["model"])
    encoder = Encoder.of_folder(saved["family"], out / "model")
    buttons = args.buttons or saved.get("buttons")
    buttons = tuple(buttons) if buttons else None
    kind = args.screens or saved.get("screens", "buttons")
    record = {"family": saved["family"], "step": saved["step"],
              "train_cpu_min": round(saved["cpu_seconds"] / 60, 2), "n": args.n,
              "screens": kind, "buttons": buttons,
              "chance": chance(args.n, buttons, kind),
              **hit_rates(model, encoder, args.n, buttons, kind)}
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
