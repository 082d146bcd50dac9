"""Text from a model, a page or a server made safe to show: every control character visible.

Model output, URLs, window titles and server messages are written by someone else. On a
terminal an ESC (or a C1 CSI, or a carriage return) in them can erase and rewrite the line the
user is reading, set the clipboard (OSC 52) or plant a hidden link (OSC 8); bidi overrides make
`https://bank.test/\\u202egpj.exe` read as something else. Each dangerous character is replaced by
its own visible escape (`\\x1b`, `\\u202e`), one character at a time, so the result is the same
whether a text is escaped whole or token by token as it streams in: a sequence split across
tokens never reaches the terminal, because no piece of it does.
"""

from __future__ import annotations

import json
from typing import Any

# Bidi embeddings/overrides/isolates (the "Trojan Source" set) and the Unicode line breaks that
# terminals or readers may honour: shown, never obeyed.
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_BREAKS = [0x2028, 0x2029]
_SURROGATES = range(0xD800, 0xE000)  # lone surrogates (JSON allows them) make print() raise


def _escape_of(code: int) -> str:
    named = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
    return named.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


_DANGEROUS = [*range(0x00, 0x20), *range(0x7F, 0xA0), *_BIDI, *_BREAKS, *_SURROGATES]
_ALL = {code: _escape_of(code) for code in _DANGEROUS}
_MULTILINE = {code: text for code, text in _ALL.items() if code not in (0x0A, 0x09)}
# Inside JSON strings the same characters as JSON escapes, so the line stays valid JSON.
# (json.dumps already escapes C0 controls; C1, bidi and line breaks pass through raw.)
_JSON = {code: f"\\u{code:04x}" for code in _DANGEROUS}


def visible(text: str, *, multiline: bool = True) -> str:
    """`text` with every control, bidi and line-break character replaced by a visible escape.

    `multiline` keeps newline and tab (thoughts, answers); without it they are escaped too
    (a URL, a one-line status, a confirmation question).
    """
    return str(text).translate(_MULTILINE if multiline else _ALL)


def visible_json(value: Any) -> str:
    """`value` as one line of JSON that a terminal prints without obeying anything in it."""
    return json.dumps(value, ensure_ascii=False).translate(_JSON)
