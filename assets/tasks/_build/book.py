"""A tiny builder that turns one task description into a task line and a solution line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SITES = Path(__file__).resolve().parents[2] / "sites"


def data(site: str) -> Any:
    return json.loads((SITES / site / "data.json").read_text(encoding="utf-8"))


# Short constructors for checks and plan steps (the DSL the harness executes).
def include(*values: Any) -> dict:
    return {"kind": "answer", "match": "must_include", "values": list(values)}


def numeric(value: float, tolerance: float = 0.01) -> dict:
    return {"kind": "answer", "match": "numeric", "value": value, "tolerance": tolerance}


def regex(pattern: str) -> dict:
    return {"kind": "answer", "match": "regex", "pattern": pattern}


def fuzzy(value: str, threshold: float = 0.85) -> dict:
    return {"kind": "answer", "match": "fuzzy", "value": value, "threshold": threshold}


def exclude(*values: str) -> dict:
    return {"kind": "answer", "match": "must_exclude", "values": list(values)}


def url(path: str | None = None, query: dict | None = None, prefix: str | None = None) -> dict:
    c: dict[str, Any] = {"kind": "url"}
    if path:
        c["path"] = path
    if prefix:
        c["path_prefix"] = prefix
    if query:
        c["query"] = query
    return c


def state(path: str, **cmp: Any) -> dict:
    return {"kind": "state", "path": path, **cmp}


def page(expr: str, **cmp: Any) -> dict:
    return {"kind": "page_js", "expr": expr, **cmp}


def click(sel: str) -> dict:
    return {"op": "click", "selector": sel}


def type_(sel: str, text: str, enter: bool = False, clear: bool = True) -> dict:
    return {"op": "type", "selector": sel, "text": text, "enter": enter, "clear": clear}


def select(sel: str, option: str) -> dict:
    return {"op": "select", "selector": sel, "option": option}


def visit(u: str) -> dict:
    return {"op": "visit", "url": u}


def scroll_to(sel: str) -> dict:
    return {"op": "scroll_to", "selector": sel}


def back() -> dict:
    return {"op": "back"}


class Book:
    """Collects the tasks of one site; ids are `<site>--<n>` in order of addition."""

    def __init__(self, site: str, start: str) -> None:
        self.site, self.start = site, start
        self.tasks: list[dict] = []
        self.solutions: list[dict] = []

    def add(self, ques: str, checks: list[dict], steps: list[dict], answer: str,
            wrong_answer: str, wrong_does: str, *, tags: tuple[str, ...] = ("lookup",),
            status: str = "success", start: str | None = None, end_url: str | None = None,
            api: list | None = None, page_values: dict | None = None,
            wrong_steps: list[dict] | None = None, wrong_api: list | None = None,
            wrong_url: str | None = None, wrong_page: dict | None = None) -> None:
        n = len(self.tasks) + 1
        tid = f"{self.site}--{n}"
        start = start or self.start
        self.tasks.append({"web_name": self.site, "id": tid, "ques": ques, "web": start,
                           "tags": list(tags), "eval": {"checks": checks}})
        sol: dict[str, Any] = {
            "id": tid, "steps": [*steps, {"op": "answer", "text": answer, "status": status}],
            "wrong_answer": wrong_answer, "wrong_does": wrong_does,
            "expect": {"url": end_url or start, "page": page_values or {}, "api": api or []},
            "wrong_expect": {"url": wrong_url or start, "page": wrong_page or {},
                             "api": wrong_api or []},
        }
        if wrong_steps is not None:
            sol["wrong_steps"] = [*wrong_steps,
                                  {"op": "answer", "text": wrong_answer, "status": "success"}]
        self.solutions.append(sol)
