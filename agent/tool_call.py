"""The text format of a tool call in model output: its markers, and reading the JSON object inside.

Both Fara families wrap a call as `<tool_call>{json}</tool_call>`; the markers are written here
only. Everything in this module is plain text handling (no actions): `agent.actions` builds typed
actions from what it extracts, and the app shows the thoughts of a streamed reply through
`split_thoughts`. Every pattern runs in linear time on any input: model text may be a hostile
server's.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

_OPEN = re.compile(re.escape(TOOL_CALL_OPEN), re.IGNORECASE)
CLOSE = re.compile(re.escape(TOOL_CALL_CLOSE), re.IGNORECASE)
LEADING_FENCE = re.compile(r"```[a-zA-Z]*")
_LITERAL_MAX = 20_000  # the Python-literal fallback parses; keep it to call-sized text


def split_thoughts(text: str) -> tuple[str, str]:
    """(thoughts, rest) of a model reply, complete or still streaming.

    `rest` starts at the opening marker; the thoughts before a complete marker lose their
    trailing blanks. A reply that ends in the first characters of the marker holds them back in
    `rest`, so a half-streamed tag is never shown as thoughts.
    """
    opened = _OPEN.search(text)
    if opened:
        return text[: opened.start()].rstrip(), text[opened.start():]
    folded = text[-len(TOOL_CALL_OPEN):].lower()
    for n in range(len(TOOL_CALL_OPEN) - 1, 0, -1):
        if folded.endswith(TOOL_CALL_OPEN[:n]):
            return text[:-n], text[-n:]
    return text, ""


def after_open(text: str) -> tuple[str, str] | None:
    """(text before, text after) the first opening marker; None when there is none."""
    opened = _OPEN.search(text)
    if opened is None:
        return None
    return text[: opened.start()], text[opened.end():]


def strip_fence(body: str) -> str:
    # Plain string operations: the regex `\s*```\s*$` took quadratic time on long blank runs.
    body = body.strip()
    fence = LEADING_FENCE.match(body)
    if fence:
        body = body[fence.end():].lstrip()
    if body.endswith("```"):
        body = body[:-3].rstrip()
    return body


def load_object(body: str) -> dict[str, Any] | None:
    """The first JSON (or Python-literal) object in `body`, tolerating fences and lost braces."""
    body = strip_fence(body)
    start = body.find("{")
    if start < 0:
        return None
    body = body[start:]
    candidates = [body]
    end = _matching_brace(body)
    if end is None:
        candidates += [body + "}", body + "}}"]  # a closing brace lost with a truncated output
    elif end + 1 < len(body):
        candidates.insert(0, body[: end + 1])
    for candidate in candidates:
        for loader in (json.loads, _literal):
            try:
                value = loader(candidate)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
    return None


_JSON_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}


class _JsonNames(ast.NodeTransformer):
    """JSON's true/false/null, where the Python parser sees them as names, as constants."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_NAMES:
            return ast.copy_location(ast.Constant(_JSON_NAMES[node.id]), node)
        return node


def _literal(text: str) -> Any:
    """A Python-literal dict (single quotes, True/None) as some models emit them.

    Parsed, not text-replaced: a string is one node of the tree, so 'nullify' in typed text
    never becomes 'Noneify'; only bare names true/false/null are renamed.
    """
    if len(text) > _LITERAL_MAX:
        raise ValueError("too long")
    with warnings.catch_warnings():  # "invalid escape sequence" would echo model text
        warnings.simplefilter("ignore")
        tree = ast.parse(text, mode="eval")
    return ast.literal_eval(_JsonNames().visit(tree))


def _matching_brace(text: str) -> int | None:
    depth, quote, escaped = 0, "", False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return None
