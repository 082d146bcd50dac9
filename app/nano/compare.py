"""Two Nano model folders scored on the same held-out screens, screen by screen.

    python -m app.nano.compare A_DIR B_DIR [--n 200] [--screens desktop] [--buttons 1-1]
        [--history-scale 0.5] [--no-second-look | --looks N] [--json]

Made for the question "does training from scratch reproduce the shipped model?" (issue 16's
last criterion) and for "did this change help?": both folders are scored by `app.nano.ship`'s
`score` (the runtime, the family's prompt, the folder's second look, as the agent loop runs
them) on the same screens — every screen is a pure function of its kind, split and index — so
the outcomes are paired. For each held-out split and for both together it gives each model's
rate with its 95 % Wilson interval, how many screens both, only A, only B or neither got
right, the difference B - A with Newcombe's paired 95 % interval, and the exact McNemar
p-value. "Within noise" is said only when the interval holds 0; it says the screens cannot
tell the two apart, not that they are equal (the interval's width says how close that is).
Steps after a click (answered terminate) are compared apart from the clicks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.eval.compare import format_rate, mcnemar_p, paired_difference
from agent.eval.report import wilson

POOLED = "both splits"


def paired(a: list[dict], b: list[dict]) -> dict[str, Any]:
    """The comparison of two `score(..., outcomes=True)` outcome lists of the same screens,
    per split and pooled, clicks and steps-after apart. Raises ValueError when the lists are
    not of the same screens (a paired comparison of different screens would be meaningless)."""
    keys = [[(o["split"], o["i"], o["after"]) for o in side] for side in (a, b)]
    if keys[0] != keys[1]:
        raise ValueError("the two outcome lists are not of the same screens")
    result: dict[str, Any] = {}
    splits = list(dict.fromkeys(o["split"] for o in a))
    for after in (False, True):
        for split in [*splits, POOLED]:
            pairs = [(x["hit"], y["hit"]) for x, y in zip(a, b, strict=True)
                     if x["after"] == after and (split == POOLED or x["split"] == split)]
            if pairs:
                result.setdefault("after" if after else "clicks", {})[split] = _table(pairs)
    return result


def _table(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    n = len(pairs)
    both = sum(x and y for x, y in pairs)
    only_a = sum(x and not y for x, y in pairs)
    only_b = sum(y and not x for x, y in pairs)
    neither = n - both - only_a - only_b
    low, high = paired_difference(both, only_a, only_b, neither)
    return {"n": n,
            "a": _side(both + only_a, n), "b": _side(both + only_b, n),
            "both": both, "only_a": only_a, "only_b": only_b, "neither": neither,
            "difference": round((only_b - only_a) / n, 4),
            "difference_ci95": [round(low, 4), round(high, 4)],
            "mcnemar_p": round(mcnemar_p(only_a, only_b), 4),
            "verdict": ("within noise" if low <= 0 <= high
                        else "B better" if low > 0 else "A better")}


def _side(passed: int, n: int) -> dict[str, Any]:
    low, high = wilson(passed, n)  # the keys `eval compare`'s sides have (format_rate)
    return {"n": n, "passed": passed, "rate": round(passed / n, 4),
            "ci95": [round(low, 4), round(high, 4)]}


def format_paired(result: dict[str, Any], names: tuple[str, str]) -> str:
    """The comparison as text, one block per outcome kind."""
    lines = [f"A: {names[0]}", f"B: {names[1]}"]
    for kind, title in (("clicks", "clicks (inside the target)"),
                        ("after", "steps after a click (terminate(success))")):
        for split, t in result.get(kind, {}).items():
            low, high = t["difference_ci95"]
            lines.append(
                f"{title}, {split}: A {format_rate(t['a'])}  B {format_rate(t['b'])}  "
                f"both {t['both']}, only A {t['only_a']}, only B {t['only_b']}, neither "
                f"{t['neither']}  B - A {100 * t['difference']:+.1f} points (95 % "
                f"{100 * low:+.1f} to {100 * high:+.1f}), McNemar p {t['mcnemar_p']:.3f}: "
                f"{t['verdict']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from app.nano.ship import add_score_options, score, score_options

    p = argparse.ArgumentParser(prog="python -m app.nano.compare",
                                description=__doc__.split("\n")[0])
    p.add_argument("a", type=Path, metavar="A_DIR", help="a model folder (e.g. the shipped one)")
    p.add_argument("b", type=Path, metavar="B_DIR", help="the model folder to compare with it")
    add_score_options(p)  # scored as `ship --score` scores, with its defaults
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = p.parse_args(argv)
    for folder in (args.a, args.b):
        if not folder.is_dir():
            p.error(f"{folder} is not a model folder")
    options = score_options(p, args, [args.a, args.b])
    scored = [score(f, **options, outcomes=True) for f in (args.a, args.b)]
    result = paired(scored[0]["outcomes"], scored[1]["outcomes"])
    if args.json:
        print(json.dumps({"a": str(args.a), "b": str(args.b), **options, **result}))
    else:
        print(format_paired(result, (str(args.a), str(args.b))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
