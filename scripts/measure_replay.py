"""Measure verified replay on the offline harness (issue 19).

Records every selected task once with the scripted solver, then replays each successful run
on the unchanged pages, with a notice banner pushed in at the top of every page, and in a
smaller window — each with replay alone and with the scripted oracle as the model fallback.
Prints one table and writes results.json. Usage:

    .venv/bin/python scripts/measure_replay.py [--sites recipes,shop] [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.eval.runner import EvalSettings, Job, safe_name, select_tasks
from agent.eval.server import SiteServer
from agent.geometry import Size
from agent.paths import asset
from agent.replay.harness import ReplayWorker

CONDITIONS = {  # name: (banner px, screen size)
    "unchanged": (0, None),
    "banner": (64, None),
    "window": (0, Size(1280, 800)),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=Path, default=asset("tasks", "offline-webvoyager.jsonl"))
    p.add_argument("--sites", default="", help="comma-separated site names (default all)")
    p.add_argument("--limit", type=int, help="first N tasks only")
    p.add_argument("--conditions", default=",".join(CONDITIONS))
    p.add_argument("--fallbacks", default="none,oracle")
    p.add_argument("--out", type=Path, help="folder for recordings and results (default: temp)")
    p.add_argument("--reuse", action="store_true",
                   help="keep the recordings and replay-alone rows already in --out (rerun the "
                        "model-fallback replays only, e.g. after changing how replay resumes)")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="replay-measure-"))
    settings = EvalSettings(tasks=args.tasks, model="scripted:solver", limit=args.limit,
                            sites_only=tuple(s for s in args.sites.split(",") if s),
                            env_retries=1, out=out)
    tasks = select_tasks(settings)
    worker = ReplayWorker(settings, out / "record")
    if args.reuse:  # recorded visit_url actions name the recording's server port: serve there
        starts = sorted((out / "record" / "tasks").glob("*/r0/run.json"))
        if starts:
            port = urlsplit(json.loads(starts[0].read_text())["start_url"]).port
            worker.server.stop()
            worker.server = SiteServer(port=port)
            worker.base_url = worker.server.start()
    rows: list[dict] = []
    previous = (json.loads((out / "results.json").read_text())["rows"]
                if args.reuse and (out / "results.json").exists() else [])
    try:
        recorded = {}
        for task in tasks:
            worker.run_dir = out / "record"
            kept = out / "record" / "tasks" / safe_name(task.id) / "r0" / "result.json"
            rec = json.loads(kept.read_text()) if args.reuse and kept.exists() \
                else worker.run(Job(task, 0))
            print(f"record {task.id}: {'pass' if rec['passed'] else 'FAIL'} "
                  f"{rec['steps']} steps {rec['wall_s']:.1f} s", flush=True)
            if rec["passed"]:
                recorded[task.id] = (task, rec)
        base_screen = settings.screen
        for cond in args.conditions.split(","):
            banner, screen = CONDITIONS[cond]
            worker.server.perturb(banner=banner)
            worker.settings = dataclasses.replace(settings, screen=screen or base_screen)
            for fb in args.fallbacks.split(","):
                for task_id, (task, rec) in recorded.items():
                    alone = next((r for r in rows if r["task"] == task_id and r["fallback"] == "none"
                                  and r["condition"] == cond), None)
                    kept = next((r for r in previous if r["task"] == task_id and r["fallback"] == fb
                                 and r["condition"] == cond and fb == "none"), None)
                    if kept is not None:  # replay alone never resumes: unchanged by --reuse
                        rows.append(kept)
                        continue
                    if fb != "none" and alone is not None and alone["passed"]:
                        # Replay alone never called the model here; with one it runs identically.
                        rows.append({**alone, "fallback": fb})
                        continue
                    worker.run_dir = out / f"replay-{cond}-{fb}"
                    attempt = out / "record" / rec["dir"]
                    r = worker.replay(Job(task, 0), attempt, fallback=fb)
                    row = {"task": task_id, "condition": cond, "fallback": fb,
                           "passed": r["passed"], "status": r["status"], "reason": r["reason"],
                           "steps": r["steps"], "model_steps": r["model_steps"],
                           "wall_s": r["wall_s"], "record_wall_s": rec["wall_s"],
                           "record_steps": rec["steps"]}
                    rows.append(row)
                    print(f"{cond:9} {fb:6} {task_id:16} {'pass' if r['passed'] else 'FAIL'} "
                          f"model {r['model_steps']} {r['wall_s']:.1f}s (orig {rec['wall_s']:.1f}s)"
                          + ("" if r["passed"] else f" — {r['reason'][:100]}"), flush=True)
    finally:
        worker.close()
    summary = summarise(rows, len(tasks), len(recorded))
    (out / "results.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    print_summary(summary)
    print(f"results: {out / 'results.json'}")
    if args.out is None:
        shutil.rmtree(out / "record", ignore_errors=True)
    return 0


def summarise(rows: list[dict], tasks: int, recorded: int) -> dict:
    groups: dict[str, dict] = {"tasks": tasks, "recorded": recorded}
    for cond in CONDITIONS:
        for fb in ("none", "oracle"):
            sel = [r for r in rows if r["condition"] == cond and r["fallback"] == fb]
            if not sel:
                continue
            wall = sum(r["wall_s"] for r in sel)
            orig = sum(r["record_wall_s"] for r in sel)
            groups[f"{cond}/{fb}"] = {
                "replays": len(sel), "passed": sum(r["passed"] for r in sel),
                "needing_model": sum(r["model_steps"] > 0 for r in sel),
                "model_steps": sum(r["model_steps"] for r in sel),
                "steps": sum(r["steps"] for r in sel),
                "wall_s_per_task": round(wall / len(sel), 2),
                "original_wall_s_per_task": round(orig / len(sel), 2),
            }
    return groups


def print_summary(summary: dict) -> None:
    print(f"\n{summary['recorded']} of {summary['tasks']} tasks recorded successfully")
    print(f"{'condition/fallback':22} {'success':>12} {'tasks w/ model':>15} {'model steps':>12} "
          f"{'s/task':>8} {'orig s/task':>12}")
    for key, g in summary.items():
        if not isinstance(g, dict):
            continue
        print(f"{key:22} {g['passed']:>4}/{g['replays']:<3} ({100 * g['passed'] / g['replays']:3.0f}%)"
              f" {g['needing_model']:>10} {g['model_steps']:>10}/{g['steps']:<4} "
              f"{g['wall_s_per_task']:>8} {g['original_wall_s_per_task']:>12}")


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    print(f"total {time.monotonic() - t0:.0f} s")
    sys.exit(code)
