"""Task records and loaders: our offline JSONL, original WebVoyager files, MiniWoB++ names,
and the scripted-solver plans."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from agent.eval.judges import validate_eval
from agent.hashing import sha256_file
from agent.jsonl import read_lines
from agent.paths import asset

OFFLINE_TASKS = asset("tasks", "offline-webvoyager.jsonl")
OFFLINE_SOLUTIONS = asset("tasks", "offline-webvoyager.solutions.jsonl")

_WV_KEYS = {"web_name", "id", "ques", "web"}
_OPTIONAL = {"eval", "max_steps", "viewport", "tags", "user_replies"}
STEP_OPS: dict[str, tuple[str, ...]] = {  # op -> required keys of the solver DSL
    "click": ("selector",), "type": ("selector", "text"), "select": ("selector", "option"),
    "scroll_to": ("selector",), "key": ("keys",), "visit": ("url",), "back": (),
    "wait": ("seconds",), "answer": ("text", "status"),
}


class TaskFileError(ValueError):
    """A malformed task, reference or plan file; the message names the file and line."""


@dataclass(frozen=True)
class Task:
    """One benchmark task; `web` may be relative to the local site server."""

    id: str
    web_name: str
    ques: str
    web: str
    eval: dict[str, Any] | None = None
    max_steps: int | None = None
    viewport: tuple[int, int] | None = None
    tags: tuple[str, ...] = ()
    source: str = "offline"  # offline | webvoyager | miniwob
    reference: dict[str, Any] | None = None  # WebVoyager {"type": golden|possible, "ans": ...}
    reward: str | None = None  # "miniwob": the task page computes its own reward
    # The person's scripted answers to the model's ask_user_question, in order; a question
    # after the last one gets no answer (the run ends STOPPED, as in the app at its time-out).
    user_replies: tuple[str, ...] = ()

    def start_url(self, base_url: str) -> str:
        """Absolute start URL (relative `web` is joined to the site server's base URL)."""
        if "://" in self.web:
            return self.web
        return urljoin(base_url.rstrip("/") + "/", self.web.lstrip("/"))


@dataclass(frozen=True)
class Plan:
    """A scripted solver's plan for one task (correct steps and the deliberately wrong run)."""

    id: str
    steps: list[dict[str, Any]]
    wrong_answer: str
    wrong_does: str = ""
    wrong_steps: list[dict[str, Any]] | None = None
    expect: dict[str, Any] = field(default_factory=dict)
    wrong_expect: dict[str, Any] = field(default_factory=dict)

    def wrong_plan(self) -> list[dict[str, Any]]:
        """Steps of the wrong run: `wrong_steps`, or the correct steps with the wrong answer."""
        if self.wrong_steps is not None:
            return self.wrong_steps
        return [*self.steps[:-1], {"op": "answer", "text": self.wrong_answer, "status": "success"}]


def task_file_hash(path: str | Path) -> str:
    """SHA-256 of a task file's bytes (goes into run manifests)."""
    return sha256_file(Path(path))


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for line in read_lines(path, torn_end_ok=False):  # lines end at "\n" only, not U+2028
        if line.problem:
            raise TaskFileError(f"{path}:{line.number}: {line.problem}")
        if not isinstance(line.value, dict):
            raise TaskFileError(f"{path}:{line.number}: each line must be a JSON object")
        out.append((line.number, line.value))
    return out


def _check_common(path: Path, lineno: int, obj: dict[str, Any], seen: set[str]) -> None:
    where = f"{path}:{lineno}"
    missing = _WV_KEYS - obj.keys()
    if missing:
        raise TaskFileError(f"{where}: missing key(s) {sorted(missing)}")
    for key in _WV_KEYS:
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise TaskFileError(f"{where}: {key!r} must be a non-empty string")
    if not obj["id"].startswith(obj["web_name"] + "--"):
        raise TaskFileError(f"{where}: id {obj['id']!r} must be '<web_name>--<n>'")
    if obj["id"] in seen:
        raise TaskFileError(f"{where}: duplicate id {obj['id']!r}")
    seen.add(obj["id"])


def load_tasks(path: str | Path = OFFLINE_TASKS) -> list[Task]:
    """Load and validate our offline task file (WebVoyager keys plus optional extras)."""
    path = Path(path)
    tasks, seen = [], set()
    for lineno, obj in _jsonl(path):
        _check_common(path, lineno, obj, seen)
        unknown = obj.keys() - _WV_KEYS - _OPTIONAL
        if unknown:
            raise TaskFileError(f"{path}:{lineno}: unknown key(s) {sorted(unknown)}")
        if "eval" in obj:
            try:
                validate_eval(obj["eval"])
            except ValueError as exc:
                raise TaskFileError(f"{path}:{lineno} ({obj['id']}): {exc}") from exc
        vp = obj.get("viewport")
        if vp is not None and not (isinstance(vp, list) and len(vp) == 2):
            raise TaskFileError(f"{path}:{lineno}: viewport must be [width, height]")
        ms = obj.get("max_steps")
        if ms is not None and (not isinstance(ms, int) or ms < 1):
            raise TaskFileError(f"{path}:{lineno}: max_steps must be a positive integer")
        replies = obj.get("user_replies", [])
        if not (isinstance(replies, list) and all(isinstance(r, str) and r.strip() for r in replies)):
            raise TaskFileError(f"{path}:{lineno}: user_replies must be a list of non-empty strings")
        tasks.append(Task(id=obj["id"], web_name=obj["web_name"], ques=obj["ques"],
                          web=obj["web"], eval=obj.get("eval"), max_steps=ms,
                          viewport=tuple(vp) if vp else None, tags=tuple(obj.get("tags", ())),
                          user_replies=tuple(replies)))
    return tasks


def load_reference_answers(path: str | Path) -> dict[str, dict[str, Any]]:
    """WebVoyager's reference-answer JSON ({site: {"answers": [{"id", "type", "ans"}]}}) by task id."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskFileError(f"{path}: not valid JSON ({exc.msg})") from exc
    out: dict[str, dict[str, Any]] = {}
    for site, block in raw.items():
        answers = block.get("answers", []) if isinstance(block, dict) else block
        for item in answers:
            if not isinstance(item, dict) or "id" not in item:
                raise TaskFileError(f"{path}: {site}: every answer needs an 'id'")
            kind = item.get("type", "golden")
            if kind not in ("golden", "possible"):
                raise TaskFileError(f"{path}: {site}--{item['id']}: type must be golden/possible")
            out[f"{site}--{item['id']}"] = {"type": kind, "ans": item.get("ans", "")}
    return out


def load_webvoyager(path: str | Path, reference: str | Path | None = None) -> list[Task]:
    """Load the original WebVoyager JSONL unchanged (absolute URLs; no eval: model judge only)."""
    path = Path(path)
    refs = load_reference_answers(reference) if reference else {}
    tasks, seen = [], set()
    for lineno, obj in _jsonl(path):
        _check_common(path, lineno, obj, seen)
        tasks.append(Task(id=obj["id"], web_name=obj["web_name"], ques=obj["ques"],
                          web=obj["web"], source="webvoyager", reference=refs.get(obj["id"])))
    return tasks


def miniwob_tasks() -> list[Task]:
    """MiniWoB++ HTML tasks from the installed `miniwob` package (each computes its own reward)."""
    import importlib.util

    spec = importlib.util.find_spec("miniwob")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("MiniWoB++ is not installed: pip install 'deskhand[miniwob]' "
                          "(or pip install miniwob)")
    html = Path(next(iter(spec.submodule_search_locations))) / "html" / "miniwob"
    return [Task(id=f"miniwob--{page.stem}", web_name="miniwob",
                 ques="Follow the instruction shown at the top of the page.",
                 web=page.resolve().as_uri(), source="miniwob", reward="miniwob")
            for page in sorted(html.glob("*.html"))]


def load_plans(path: str | Path = OFFLINE_SOLUTIONS) -> dict[str, Plan]:
    """Load the scripted-solver plans, checking every step against the DSL."""
    path = Path(path)
    plans: dict[str, Plan] = {}
    for lineno, obj in _jsonl(path):
        where = f"{path}:{lineno}"
        for key in ("id", "steps", "wrong_answer"):
            if key not in obj:
                raise TaskFileError(f"{where}: missing {key!r}")
        for name in ("steps", "wrong_steps"):
            for i, step in enumerate(obj.get(name) or []):
                op = step.get("op") if isinstance(step, dict) else None
                if op not in STEP_OPS:
                    raise TaskFileError(f"{where}: {name}[{i}]: unknown op {op!r}")
                for key in STEP_OPS[op]:
                    if key not in step:
                        raise TaskFileError(f"{where}: {name}[{i}] ({op}): missing {key!r}")
        if not obj["steps"] or obj["steps"][-1]["op"] != "answer":
            raise TaskFileError(f"{where}: steps must end with an 'answer' step")
        plans[obj["id"]] = Plan(id=obj["id"], steps=obj["steps"], wrong_answer=obj["wrong_answer"],
                                wrong_does=obj.get("wrong_does", ""),
                                wrong_steps=obj.get("wrong_steps"),
                                expect=obj.get("expect", {}), wrong_expect=obj.get("wrong_expect", {}))
    return plans
