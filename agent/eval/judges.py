"""Programmatic judges for offline tasks: answer text, final URL, page state, server state.

A task's `eval` block is `{"checks": [...]}`; every check must pass (AND). Check kinds:

- `{"kind": "answer", "match": "exact", "value": str | "values": [str, ...]}`
- `{"kind": "answer", "match": "must_include", "values": [str | [alternatives...], ...]}`
- `{"kind": "answer", "match": "must_exclude", "values": [str, ...]}`
- `{"kind": "answer", "match": "regex", "pattern": str}` (case-insensitive search)
- `{"kind": "answer", "match": "numeric", "value": float, "tolerance": float = 0.01}`
- `{"kind": "answer", "match": "fuzzy", "value": str, "threshold": float = 0.85}`
- `{"kind": "url", "path": str?, "path_prefix": str?, "query": {key: value}?}`
- `{"kind": "page_js", "expr": str, "equals" | "contains" | "truthy": ...}`
- `{"kind": "state", "path": "site.a.0.b", "equals" | "contains" | "absent" | "length": ...}`
- `{"kind": "status", "equals": "success" | "failure"}`

Unless the block says `"require_terminate": false`, an agent that never terminated fails.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ANSWER_MATCHES = ("exact", "must_include", "must_exclude", "regex", "numeric", "fuzzy")
CHECK_KINDS = ("answer", "url", "page_js", "state", "status")
_MISSING = object()


@dataclass(frozen=True)
class Evidence:
    """What the harness observed at the end of one run."""

    answer: str = ""
    status: str | None = None  # terminate status; None = never terminated
    final_url: str = ""
    page_values: dict[str, Any] = field(default_factory=dict)  # page_js expr -> value
    server_state: dict[str, Any] = field(default_factory=dict)  # GET /__state


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome."""

    kind: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The judge's decision: all checks passed, with reasons."""

    passed: bool
    reason: str
    checks: list[CheckResult]


def normalise(text: str) -> str:
    """Lower-case, strip accents and punctuation, collapse whitespace."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^\w\s.,$%-]|(?<!\d)[.,]|[.,](?!\d)", " ", text)
    return " ".join(text.split())


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def numbers_in(text: str) -> list[float]:
    """Every number written in the text ("1,234.5" counts as 1234.5)."""
    out = []
    for m in _NUMBER.findall(text):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            continue
    return out


def _partial_ratio(needle: str, hay: str) -> float:
    """Best similarity of `needle` against any equally long window of `hay`."""
    if not needle or not hay:
        return 0.0
    if len(hay) <= len(needle):
        return difflib.SequenceMatcher(None, needle, hay).ratio()
    best, n = 0.0, len(needle)
    for start in range(len(hay) - n + 1):
        best = max(best, difflib.SequenceMatcher(None, needle, hay[start:start + n]).ratio())
        if best == 1.0:
            break
    return best


def _check_answer(check: dict[str, Any], ev: Evidence) -> tuple[bool, str]:
    match, answer = check["match"], ev.answer or ""
    norm = normalise(answer)
    if not norm:
        return False, "empty answer"
    if match == "exact":
        wanted = check.get("values") or [check["value"]]
        ok = norm in {normalise(v) for v in wanted}
        return ok, f"answer {'equals' if ok else 'differs from'} {wanted!r}"
    if match in ("must_include", "must_exclude"):
        missing, present = [], []
        for item in check["values"]:
            alts = item if isinstance(item, list) else [item]
            (present if any(normalise(a) in norm for a in alts) else missing).append(alts[0])
        if match == "must_include":
            return not missing, f"missing {missing}" if missing else "all required parts present"
        return not present, f"forbidden {present} present" if present else "no forbidden parts"
    if match == "regex":
        ok = re.search(check["pattern"], answer, re.IGNORECASE) is not None
        return ok, f"pattern {check['pattern']!r} {'found' if ok else 'not found'}"
    if match == "numeric":
        target, tol = float(check["value"]), float(check.get("tolerance", 0.01))
        nums = numbers_in(answer)
        ok = any(abs(x - target) <= tol for x in nums)
        return ok, f"wanted {target}±{tol}, answer has {nums[:8]}"
    if match == "fuzzy":
        threshold = float(check.get("threshold", 0.85))
        score = _partial_ratio(normalise(check["value"]), norm)
        return score >= threshold, f"similarity {score:.2f} (need {threshold})"
    raise ValueError(f"unknown answer match {match!r}")


def _check_url(check: dict[str, Any], ev: Evidence) -> tuple[bool, str]:
    parts = urlsplit(ev.final_url or "")
    path = unquote(parts.path) or "/"
    if "path" in check and path.rstrip("/") != check["path"].rstrip("/"):
        return False, f"path {path!r} != {check['path']!r}"
    if "path_prefix" in check and not path.startswith(check["path_prefix"]):
        return False, f"path {path!r} does not start with {check['path_prefix']!r}"
    query = parse_qs(parts.query)
    for key, want in (check.get("query") or {}).items():
        got = query.get(key, [])
        wants = want if isinstance(want, list) else [want]
        if not all(normalise(str(w)) in {normalise(g) for g in got} for w in wants):
            return False, f"query {key}={got} lacks {wants}"
    return True, f"url {path}?{parts.query} matches"


def _compare(value: Any, check: dict[str, Any], what: str) -> tuple[bool, str]:
    if "equals" in check:
        want = check["equals"]
        ok = value == want or (isinstance(value, str) and isinstance(want, str)
                               and normalise(value) == normalise(want))
        return ok, f"{what} = {value!r} (want {want!r})"
    if "contains" in check:
        want = check["contains"]
        if isinstance(value, str):
            ok = normalise(str(want)) in normalise(value)
        elif isinstance(value, list):
            ok = any(_subset(want, item) for item in value)
        elif isinstance(value, dict):
            ok = _subset(want, value)
        else:
            ok = False
        return ok, f"{what} {'contains' if ok else 'lacks'} {want!r}"
    if "length" in check:
        n = len(value) if isinstance(value, list | dict | str) else None
        return n == check["length"], f"len({what}) = {n} (want {check['length']})"
    if "truthy" in check:
        return bool(value) == bool(check["truthy"]), f"{what} = {value!r}"
    raise ValueError(f"check has no comparison: {check}")


def _subset(want: Any, got: Any) -> bool:
    """True when `want` is contained in `got` (dict keys recursively, strings normalised)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    if isinstance(want, str) and isinstance(got, str):
        return normalise(want) == normalise(got)
    return want == got


def lookup(state: Any, dotted: str) -> Any:
    """Follow a dotted path ("shop.cart.0.sku") through dicts and lists; _MISSING if absent."""
    node = state
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _check_state(check: dict[str, Any], ev: Evidence) -> tuple[bool, str]:
    value = lookup(ev.server_state, check["path"])
    if "absent" in check:
        absent = value is _MISSING or value in (None, [], {}, False, "")
        ok = absent == bool(check["absent"])
        return ok, f"{check['path']} is {'absent' if absent else 'present'}"
    if value is _MISSING:
        return False, f"{check['path']} missing from server state"
    return _compare(value, check, check["path"])


def _check_page(check: dict[str, Any], ev: Evidence) -> tuple[bool, str]:
    if check["expr"] not in ev.page_values:
        return False, f"page value not collected: {check['expr']!r}"
    return _compare(ev.page_values[check["expr"]], check, "page value")


def _check_status(check: dict[str, Any], ev: Evidence) -> tuple[bool, str]:
    return ev.status == check["equals"], f"status {ev.status!r} (want {check['equals']!r})"


_CHECKERS = {"answer": _check_answer, "url": _check_url, "page_js": _check_page,
             "state": _check_state, "status": _check_status}


def page_expressions(task_eval: dict[str, Any] | None) -> list[str]:
    """JavaScript expressions the harness must evaluate in the final page for this task."""
    return [c["expr"] for c in (task_eval or {}).get("checks", []) if c.get("kind") == "page_js"]


def validate_eval(task_eval: Any) -> None:
    """Raise ValueError naming the problem if an eval block is malformed."""
    if not isinstance(task_eval, dict) or not isinstance(task_eval.get("checks"), list):
        raise ValueError("eval must be an object with a 'checks' list")
    if not task_eval["checks"]:
        raise ValueError("eval.checks is empty")
    for i, c in enumerate(task_eval["checks"]):
        if not isinstance(c, dict) or c.get("kind") not in CHECK_KINDS:
            raise ValueError(f"eval.checks[{i}]: kind must be one of {CHECK_KINDS}")
        kind = c["kind"]
        need = {"answer": ("match",), "page_js": ("expr",), "state": ("path",),
                "status": ("equals",), "url": ()}[kind]
        for key in need:
            if key not in c:
                raise ValueError(f"eval.checks[{i}] ({kind}): missing {key!r}")
        if kind == "answer" and c["match"] not in ANSWER_MATCHES:
            raise ValueError(f"eval.checks[{i}]: match must be one of {ANSWER_MATCHES}")
        if kind in ("page_js", "state") and not any(
                k in c for k in ("equals", "contains", "absent", "length", "truthy")):
            raise ValueError(f"eval.checks[{i}] ({kind}): no comparison given")
        if kind == "url" and not any(k in c for k in ("path", "path_prefix", "query")):
            raise ValueError(f"eval.checks[{i}] (url): give path, path_prefix or query")


def judge(task_eval: dict[str, Any], evidence: Evidence) -> Verdict:
    """Run every check of the task's eval block against the evidence (all must pass)."""
    validate_eval(task_eval)
    results: list[CheckResult] = []
    if task_eval.get("require_terminate", True) and evidence.status is None:
        results.append(CheckResult("status", False, "the agent never terminated"))
    for check in task_eval["checks"]:
        ok, detail = _CHECKERS[check["kind"]](check, evidence)
        results.append(CheckResult(check["kind"], ok, detail))
    failed = [r for r in results if not r.passed]
    reason = "all checks passed" if not failed else "; ".join(
        f"{r.kind}: {r.detail}" for r in failed)
    return Verdict(passed=not failed, reason=reason, checks=results)
