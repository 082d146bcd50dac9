"""JSON Lines written and read one way: one JSON value per line, lines end at "\\n" and nowhere else.

Why this module exists: steps.jsonl and results.jsonl are written with `ensure_ascii=False`, and
their readers used `str.splitlines()`, which also splits at U+2028, U+2029, U+0085 (and \\x0b,
\\x0c, \\x1c-\\x1e): one such character in a model's thought hid every later step. The writer here
escapes the three line breaks JSON would leave raw, and the reader splits the bytes at b"\\n" only,
so files written before this fix read correctly too.

The one rule for a bad line, kept by every record reader built on `read_lines` (steps.jsonl in
`agent.step_record`, results.jsonl in `agent.eval.results`): a line that is not a record costs
that line only and is named in the reader's problems; a mistyped field costs that field only
(its default is used, with a note); an unparsable last line without its "\\n" is a write cut
short by a crash and is dropped silently.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MAX_LINE = 16 << 20  # one record; a longer line is skipped (a runaway or hostile file)

# json.dumps escapes every control character below U+0020 but, with ensure_ascii=False, leaves
# these raw inside strings; escaping them keeps each record on one line for every line splitter.
_RAW_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps_line(value: Any, **kwargs: Any) -> str:
    """`value` as one JSON line (UTF-8 text, "\\n" at the end and nowhere else)."""
    return json.dumps(value, ensure_ascii=False, **kwargs).translate(_RAW_BREAKS) + "\n"


@dataclass(frozen=True)
class Line:
    """One parsed line: `value`, or an empty `value` and a `problem` saying what is wrong."""

    number: int
    value: Any = None
    problem: str = ""


def read_lines(path: Path, *, torn_end_ok: bool = True) -> Iterator[Line]:
    """Each non-blank line of `path`, parsed; raises OSError if the file cannot be opened.

    With `torn_end_ok`, an unparsable last line without its "\\n" (a writer killed mid-line) is
    dropped silently; every other bad line comes back with its `problem`.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not hang us
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(0, "not a regular file", str(path))
    with open(fd, "rb") as f:
        number = 0
        while raw := f.readline(MAX_LINE + 1):
            number += 1
            if len(raw) > MAX_LINE:
                while raw and not raw.endswith(b"\n"):
                    raw = f.readline(MAX_LINE)
                yield Line(number, problem=f"longer than {MAX_LINE >> 20} MB")
                continue
            text = raw.decode("utf-8", errors="replace").strip(" \t\r\n\ufeff")  # BOM: Notepad
            if not text:
                continue
            try:
                value = json.loads(text)
            except (ValueError, RecursionError) as exc:
                if torn_end_ok and not raw.endswith(b"\n"):
                    return
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                yield Line(number, problem=f"not valid JSON ({reason})")
                continue
            yield Line(number, value)


def read_records(path: Path, parse: Callable[[Any, str], tuple[T | None, list[str]]],
                 shown: str | None = None) -> tuple[list[T], list[str]]:
    """The records of `path` through `parse(value, where) -> (record | None, notes)`, and the
    problems: the one bad-line rule of this module for every typed JSONL reader. Raises OSError
    if the file cannot be opened; `shown` is how the file is named in the problems."""
    name = shown if shown is not None else str(path)
    records: list[T] = []
    problems: list[str] = []
    for line in read_lines(path):
        where = f"{name}, line {line.number}"
        if line.problem:
            problems.append(f"{where}: {line.problem}; skipped")
            continue
        record, notes = parse(line.value, where)
        problems += notes
        if record is not None:
            records.append(record)
    return records, problems
