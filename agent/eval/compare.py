"""`deskhand eval compare A B`: what changing one setting did to success rate and cost.

Made for the adaptive-compute options (smaller history screenshots, waits without the model),
which trade model compute for what the model sees: two runs of the same task file, one with
the option, give the success rates side by side with 95 % intervals, the difference with a
Newcombe interval, the paired per-task outcomes (tasks that only one run solved, with the
paired interval of the difference over tasks and the exact McNemar p-value), and the model time
per step and per task.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from agent.eval.report import wilson
from agent.eval.results import EvalResult, read_manifest, read_results

_IGNORED = {"config_hash", "created", "finished", "version"}


def compare(run_a: Path, run_b: Path) -> dict[str, Any]:
    """Both runs' rates, the difference and paired outcomes; raises ValueError if not comparable."""
    manifests = [read_manifest(Path(run_a)), read_manifest(Path(run_b))]
    if manifests[0].get("tasks_sha256") != manifests[1].get("tasks_sha256"):
        raise ValueError("the two runs used different task files; compare runs of the same tasks")
    records = [read_results(Path(run_a)), read_results(Path(run_b))]
    sides = [_side(r) for r in records]
    p = [s["passed"] / s["n"] if s["n"] else 0.0 for s in sides]
    low, high = _newcombe(sides[0]["passed"], sides[0]["n"], sides[1]["passed"], sides[1]["n"])
    outcome = [_by_task(r) for r in records]
    both = sorted(set(outcome[0]) & set(outcome[1]))
    paired = {"tasks": len(both),
              "both": sum(outcome[0][t] and outcome[1][t] for t in both),
              "only_a": [t for t in both if outcome[0][t] and not outcome[1][t]],
              "only_b": [t for t in both if outcome[1][t] and not outcome[0][t]],
              "neither": sum(not outcome[0][t] and not outcome[1][t] for t in both)}
    # The same difference over tasks (a task's verdict: most of its repeats), paired: its
    # interval is narrower than the unpaired one above when the runs mostly agree.
    paired["difference_ci95"] = list(paired_difference(
        paired["both"], len(paired["only_a"]), len(paired["only_b"]), paired["neither"]))
    paired["mcnemar_p"] = mcnemar_p(len(paired["only_a"]), len(paired["only_b"]))
    keys = sorted((set(manifests[0]) | set(manifests[1])) - _IGNORED)
    differs = {k: [manifests[0].get(k), manifests[1].get(k)] for k in keys
               if manifests[0].get(k) != manifests[1].get(k)}
    return {"runs": [str(run_a), str(run_b)], "settings_that_differ": differs,
            "a": sides[0], "b": sides[1], "difference": p[1] - p[0],
            "difference_ci95": [low, high], "paired": paired}


def _side(records: list[EvalResult]) -> dict[str, Any]:
    n = len(records)
    passed = sum(r.passed for r in records)
    steps = sum(r.steps for r in records)
    model = sum(r.timings.get("model", 0.0) for r in records)
    return {"n": n, "passed": passed, "rate": passed / n if n else 0.0, "ci95": list(wilson(passed, n)),
            "model_s_per_step": model / steps if steps else 0.0,
            "model_s_per_task": model / n if n else 0.0,
            "steps_per_task": statistics.fmean(r.steps for r in records) if n else 0.0}


def _by_task(records: list[EvalResult]) -> dict[str, bool]:
    """Per task, whether most of its repeats passed (one repeat: whether it passed)."""
    votes: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        votes[r.task_id].append(r.passed)
    return {t: sum(v) * 2 > len(v) for t, v in votes.items()}


def _newcombe(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    """95 % interval of p2 - p1 from the two Wilson intervals (Newcombe's method 10)."""
    if not n1 or not n2:
        return (0.0, 0.0)
    p1, p2 = c1 / n1, c2 / n2
    l1, u1 = wilson(c1, n1)
    l2, u2 = wilson(c2, n2)
    d = p2 - p1
    return (d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def paired_difference(both: int, only_a: int, only_b: int, neither: int) -> tuple[float, float]:
    """95 % interval of p_b - p_a when A and B were scored on the same items (Newcombe's
    method 10 for paired proportions: the two Wilson intervals joined with the outcomes'
    correlation, which makes it narrower than the unpaired one when the two agree)."""
    n = both + only_a + only_b + neither
    if not n:
        return (0.0, 0.0)
    p1, p2 = (both + only_a) / n, (both + only_b) / n  # A, B
    l1, u1 = wilson(both + only_a, n)
    l2, u2 = wilson(both + only_b, n)
    spread = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(spread) if spread else 0.0
    d = p1 - p2
    below = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    above = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (-(d + above), -(d - below))  # the interval of p1 - p2, turned round for p2 - p1


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: how likely a split of the discordant items at least this
    uneven is when A and B are equally good (a fair coin decides each)."""
    m = only_a + only_b
    if not m:
        return 1.0
    tail = sum(math.comb(m, k) for k in range(min(only_a, only_b) + 1)) / 2 ** m
    return min(1.0, 2 * tail)


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as text."""
    a, b = result["a"], result["b"]
    lines = [f"A: {result['runs'][0]}", f"B: {result['runs'][1]}"]
    differs = result["settings_that_differ"]
    lines.append("settings that differ: " + (", ".join(f"{k} {v[0]!r} -> {v[1]!r}"
                                                        for k, v in differs.items()) or "none"))
    lines.append(f"{'':<22}{'A':>22}{'B':>22}")
    lines.append(f"{'success':<22}{format_rate(a):>22}{format_rate(b):>22}")
    for label, key, fmt in (("model s per step", "model_s_per_step", "{:.2f}"),
                            ("model s per task", "model_s_per_task", "{:.1f}"),
                            ("steps per task", "steps_per_task", "{:.1f}")):
        lines.append(f"{label:<22}{fmt.format(a[key]):>22}{fmt.format(b[key]):>22}")
    low, high = result["difference_ci95"]
    lines.append(f"success B - A: {100 * result['difference']:+.1f} points "
                 f"(95 % interval {100 * low:+.1f} to {100 * high:+.1f})")
    p = result["paired"]
    lines.append(f"paired over {p['tasks']} tasks: both {p['both']}, only A {len(p['only_a'])}, "
                 f"only B {len(p['only_b'])}, neither {p['neither']}; B - A over tasks 95 % "
                 f"interval {100 * p['difference_ci95'][0]:+.1f} to "
                 f"{100 * p['difference_ci95'][1]:+.1f} (paired), exact McNemar p "
                 f"{p['mcnemar_p']:.3f}")
    for name in ("only_a", "only_b"):
        if p[name]:
            lines.append(f"  {name.replace('_', ' ')}: {', '.join(p[name][:20])}"
                         + (" ..." if len(p[name]) > 20 else ""))
    return "\n".join(lines)


def format_rate(side: dict[str, Any]) -> str:
    """"passed/n rate% [low-high]" of a side with `passed`, `n`, `rate` and `ci95`."""
    low, high = side["ci95"]
    return f"{side['passed']}/{side['n']} {100 * side['rate']:.0f}% [{100 * low:.0f}-{100 * high:.0f}]"
