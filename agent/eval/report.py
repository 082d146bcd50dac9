"""summary.json and a self-contained report.html for an evaluation run folder.

Metrics: success rate with 95 % Wilson intervals per site and overall, pass@k and pass^k over
repeats, steps per task, the per-step time split (capture / model / action / settle), tokens,
failure classes and successes per CPU-hour. The HTML has inline CSS and embedded thumbnails
(click markers drawn in), so it opens anywhere without network access.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from agent.click_marker import marked_screenshot
from agent.eval.results import EvalResult, read_manifest, read_results, write_json
from agent.step_record import read_steps

PHASES = ("capture", "model", "action", "settle")
FAILURES = ("environment", "step_budget", "no_answer", "wrong_answer")


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval for a binomial proportion."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased chance that at least one of k runs (drawn from n with c passes) passes."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased chance that all of k runs (drawn from n with c passes) pass."""
    return math.comb(c, k) / math.comb(n, k) if n >= k else 0.0


def _rate(records: list[EvalResult]) -> dict[str, Any]:
    n = len(records)
    ok = sum(r.passed for r in records)
    low, high = wilson(ok, n)
    return {"n": n, "passed": ok, "rate": ok / n if n else 0.0, "ci95": [low, high]}


def summarise(run_dir: Path) -> dict[str, Any]:
    """All metrics of a run folder's results.jsonl."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    records = read_results(run_dir)
    by_site: dict[str, list[EvalResult]] = defaultdict(list)
    by_task: dict[str, list[EvalResult]] = defaultdict(list)
    for r in records:
        by_site[r.site or "?"].append(r)
        by_task[r.task_id].append(r)
    repeat = int(manifest.get("repeat", 1))
    passes: dict[str, Any] = {}
    for k in range(1, repeat + 1):
        counted = [(len(rs), sum(x.passed for x in rs)) for rs in by_task.values()
                   if len(rs) >= k]
        if counted:
            passes[f"pass@{k}"] = statistics.fmean(pass_at_k(n, c, k) for n, c in counted)
            passes[f"pass^{k}"] = statistics.fmean(pass_hat_k(n, c, k) for n, c in counted)
    steps = [r.steps for r in records]
    total_steps = sum(steps)
    phase_totals = {p: sum(r.timings.get(p, 0.0) for r in records) for p in PHASES}
    cpu = sum(r.cpu_s for r in records)
    wall = [r.wall_s for r in records]
    ok = sum(r.passed for r in records)
    failures = {f: sum(r.failure == f for r in records) for f in FAILURES}
    judged = [r for r in records if r.model_judge]
    model_judge = None
    if judged:
        mj_pass = sum(bool((r.model_judge or {}).get("passed")) for r in judged)
        agree = sum(bool((r.model_judge or {}).get("passed")) == r.passed for r in judged)
        model_judge = {"n": len(judged), "passed": mj_pass, "rate": mj_pass / len(judged),
                       "agreement_with_programmatic": agree / len(judged)}
    return {
        "run_dir": str(run_dir),
        "config_hash": manifest.get("config_hash"),
        "model": manifest.get("model"),
        "tasks_file": manifest.get("tasks_file"),
        "repeat": repeat,
        "overall": _rate(records),
        "sites": {site: _rate(rs) for site, rs in sorted(by_site.items())},
        "tasks": len(by_task),
        "pass_k": passes,
        "steps": {"total": total_steps,
                  "mean_per_task": statistics.fmean(steps) if steps else 0.0,
                  "median_per_task": statistics.median(steps) if steps else 0.0,
                  "max": max(steps, default=0)},
        "time_per_step_s": {p: (phase_totals[p] / total_steps if total_steps else 0.0) for p in PHASES},
        "time_split": {p: (phase_totals[p] / s if (s := sum(phase_totals.values())) else 0.0)
                       for p in PHASES},
        "wall_per_task_s": {"mean": statistics.fmean(wall) if wall else 0.0,
                            "max": max(wall, default=0.0), "total": sum(wall)},
        "tokens": {"prompt": sum(r.tokens.get("prompt", 0) for r in records),
                   "generated": sum(r.tokens.get("generated", 0) for r in records)},
        "failures": failures,
        "env_retries": sum(len(r.env_errors) for r in records),
        "cpu_seconds": cpu,
        "successes_per_cpu_hour": ok / (cpu / 3600) if cpu > 0 else 0.0,
        "model_judge": model_judge,
    }


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;background:#fff}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}.pass{color:#176f2c;font-weight:600}.fail{color:#b3261e;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
details{margin:4px 0}summary{cursor:pointer}
.steps{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 12px}
.step{width:300px;background:#fff;border:1px solid #ddd;padding:4px;font-size:12px}
.step img{width:100%;display:block}.step pre{white-space:pre-wrap;margin:4px 0;max-height:120px;
overflow:auto;background:#f6f6f6}
.bar{display:flex;height:14px;width:320px;border:1px solid #ccc}.bar span{display:block;height:100%}
"""
_PHASE_COLOURS = {"capture": "#8ecae6", "model": "#fb8500", "action": "#219ebc", "settle": "#ffb703"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _thumbnail(path: str, point: tuple[float, float] | None, width: int = 300) -> str:
    """A JPEG data URL of a screenshot, scaled down, with the click point marked."""
    image = marked_screenshot(path, point, max_width=1 << 30)  # thumbnail() below scales
    if image is None:
        return ""
    image.thumbnail((int(width * 1.5), int(width * 1.5)))  # a little sharper than shown
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=65)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _task_steps(run_dir: Path, folder_name: str, max_thumbs: int) -> str:
    # The attempt folder and its screenshots are read only from inside the run folder.
    folder = (run_dir / folder_name).resolve()
    if folder == run_dir.resolve() or not folder.is_relative_to(run_dir.resolve()):
        return "<p>(no steps recorded)</p>"
    steps, _problems = read_steps(folder)
    if not steps:
        return "<p>(no steps recorded)</p>"
    cells = []
    for step in steps[-max_thumbs:]:
        img = _thumbnail(step.screenshot, step.screenshot_point) if step.screenshot else ""
        timing = " ".join(f"{k}={v:.2f}s" for k, v in step.timings.items())
        cells.append(
            f"<div class=step><b>step {step.index}</b> — "
            f"{html.escape(step.description or '')}"
            + (f"<img alt='step {step.index}' src='{img}'>" if img else "")
            + f"<pre>{html.escape(step.model_text or '')}</pre>"
            + f"<small>{html.escape(timing)}</small>"
            + "</div>")
    hidden = len(steps) - len(cells)
    note = f"<p>({hidden} earlier steps not shown)</p>" if hidden > 0 else ""
    return note + "<div class=steps>" + "".join(cells) + "</div>"


def render_html(run_dir: Path, summary: dict[str, Any], *, max_thumbs: int = 12) -> str:
    """The report page: tables first, then every task with its steps."""
    records = read_results(run_dir)
    esc = html.escape
    o = summary["overall"]
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>Deskhand eval — "
             f"{esc(str(summary['model']))}</title><style>{_CSS}</style></head><body>",
             f"<h1>Evaluation: {esc(str(summary['model']))} on {esc(str(summary['tasks_file']))}</h1>",
             f"<p>Config {esc(str(summary['config_hash'])[:12])} · {summary['tasks']} tasks × "
             f"{summary['repeat']} · success <b>{_pct(o['rate'])}</b> ({o['passed']}/{o['n']}, "
             f"95 % CI {_pct(o['ci95'][0])}–{_pct(o['ci95'][1])})</p>"]
    rows = "".join(
        f"<tr><td>{esc(site)}</td><td class=num>{s['n']}</td><td class=num>{s['passed']}</td>"
        f"<td class=num>{_pct(s['rate'])}</td><td class=num>{_pct(s['ci95'][0])}–{_pct(s['ci95'][1])}"
        "</td></tr>" for site, s in summary["sites"].items())
    parts.append("<h2>Per site</h2><table><tr><th>site</th><th>runs</th><th>passed</th>"
                 f"<th>rate</th><th>95 % Wilson</th></tr>{rows}</table>")
    if summary["pass_k"]:
        parts.append("<h2>Repeats</h2><table>" + "".join(
            f"<tr><th>{esc(k)}</th><td class=num>{_pct(v)}</td></tr>"
            for k, v in summary["pass_k"].items()) + "</table>")
    split = summary["time_split"]
    bar = "".join(f"<span title='{p} {_pct(split[p])}' style='width:{100 * split[p]:.1f}%;"
                  f"background:{_PHASE_COLOURS[p]}'></span>" for p in PHASES)
    per_step = summary["time_per_step_s"]
    parts.append(
        "<h2>Cost</h2><table>"
        f"<tr><th>steps per task</th><td class=num>{summary['steps']['mean_per_task']:.1f} mean, "
        f"{summary['steps']['median_per_task']:.1f} median, {summary['steps']['max']} max</td></tr>"
        "<tr><th>time per step</th><td>" + ", ".join(
            f"{p} {per_step[p]:.2f} s" for p in PHASES) + f"<div class=bar>{bar}</div></td></tr>"
        f"<tr><th>wall time per task</th><td class=num>{summary['wall_per_task_s']['mean']:.1f} s "
        f"mean</td></tr><tr><th>tokens</th><td class=num>{summary['tokens']['prompt']} prompt, "
        f"{summary['tokens']['generated']} generated</td></tr>"
        f"<tr><th>CPU time</th><td class=num>{summary['cpu_seconds']:.0f} s</td></tr>"
        f"<tr><th>successes per CPU-hour</th><td class=num>"
        f"{summary['successes_per_cpu_hour']:.1f}</td></tr></table>")
    parts.append("<h2>Failures</h2><table>" + "".join(
        f"<tr><th>{esc(k.replace('_', ' '))}</th><td class=num>{v}</td></tr>"
        for k, v in summary["failures"].items())
        + f"<tr><th>environment retries</th><td class=num>{summary['env_retries']}</td></tr></table>")
    if summary.get("model_judge"):
        mj = summary["model_judge"]
        parts.append(f"<h2>Model judge (reported separately)</h2><p>{mj['passed']}/{mj['n']} "
                     f"passed ({_pct(mj['rate'])}); agrees with the programmatic judges on "
                     f"{_pct(mj['agreement_with_programmatic'])}</p>")
    parts.append("<h2>Tasks</h2>")
    for r in sorted(records, key=lambda r: (r.site, _natural(r.task_id), r.repeat)):
        cls, word = ("pass", "PASS") if r.passed else ("fail", r.failure or "FAIL")
        reason = (r.verdict or {}).get("reason", "")
        parts.append(
            f"<details><summary><span class={cls}>{esc(word)}</span> {esc(r.task_id)}"
            f" #{r.repeat} — {r.steps} steps, {r.wall_s:.1f} s</summary>"
            f"<p><b>Task:</b> {esc(r.question)}<br><b>Answer:</b> "
            f"{esc(r.answer)}<br><b>Status:</b> {esc(r.status)} — "
            f"{esc(r.reason)}<br><b>Verdict:</b> {esc(str(reason))}<br>"
            f"<b>Final URL:</b> {esc(r.final_url)}</p>"
            + _task_steps(run_dir, r.dir, max_thumbs) + "</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _natural(text: str) -> list[Any]:
    """Sort key that puts task 2 before task 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def write_report(run_dir: Path, *, max_thumbs: int = 12) -> tuple[Path, Path]:
    """Write summary.json and report.html into the run folder; returns their paths."""
    run_dir = Path(run_dir)
    summary = summarise(run_dir)
    summary_path = run_dir / "summary.json"
    write_json(summary_path, summary)
    report_path = run_dir / "report.html"
    tmp = report_path.with_suffix(".tmp")
    tmp.write_text(render_html(run_dir, summary, max_thumbs=max_thumbs), encoding="utf-8")
    tmp.replace(report_path)
    return summary_path, report_path
