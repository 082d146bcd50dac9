"""One folding of text before any safety matching: what a reader sees, not how it is encoded.

A page or a model can spell "Pay" as "ＰＡＹ" (fullwidth), "Рау" (Cyrillic), "p\u200bay" (zero-width
space), "pa\u00ady" (soft hyphen), "pa\u0301y" (combining accent) or "P A Y". `fold` turns all of
these into "pay"; `views` adds the letter-spaced and digit-for-letter readings. The gate's word
lists are folded with the same function when they are loaded, so the two always agree.
"""

from __future__ import annotations

import re
import unicodedata

# Letters that look like Latin ones (Unicode's confusables, restricted to what renders alike in
# common UI fonts). Applied after NFKC and accent stripping, before case folding.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ү": "y", "ɡ": "g", "ь": "b",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W",
    "Һ": "H", "Ӏ": "I", "Ү": "Y", "Ь": "b",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Armenian, Cherokee and Latin letters that pass as plain ones
    "օ": "o", "ս": "u", "հ": "h", "ո": "n", "ց": "g", "ք": "p", "Ꭺ": "A", "Ᏼ": "B", "Ꮯ": "C",
    "Ꭼ": "E", "Ꮋ": "H", "Ꮶ": "K", "Ꮇ": "M", "Ꮲ": "P", "Ꮪ": "S", "Ꭲ": "T", "Ꮃ": "W",
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʏ": "y", "ꓑ": "P", "ꓮ": "A", "ꓬ": "Y",
    # Small capitals (NFKC keeps them)
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s",
    "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
    # Letters whose accent is not a combining mark
    "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "ŧ": "t",
}
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLES)
# Blank-looking letters (category Lo/So) that are not format characters but print as nothing.
_INVISIBLE = dict.fromkeys(map(ord, "\u115f\u1160\u3164\uffa0\u2800\u180e"), None)
# Characters typed as Enter by the typer.
LINE_BREAKS = ("\n", "\r", "\u2028", "\u2029", "\x85")

_LETTER = r"[^\W\d_]"
# "p a y", "p.a.y", "P - A - Y": three or more single letters joined by short separators.
_SPACED = re.compile(rf"(?<!{_LETTER})({_LETTER}(?:[ .\-_*·•|/+~]{{1,3}}{_LETTER}){{2,}})(?!{_LETTER})")
_MIXED_TOKEN = re.compile(r"\b(?=\w*[^\W\d_])(?=\w*\d)\w+\b")
# Digits read as letters ("p4y", "de1ete", "subm1t"): 1 is tried as both i and l.
_LEET = (str.maketrans("013457", "oieast"), str.maketrans("013457", "oleast"))


def fold(text: str, *, invisible: str = "") -> str:
    """Case-folded text without invisible characters, accents and look-alike letters.

    Invisible characters are dropped ("p\u200bay" is "pay"), or replaced by `invisible`.
    """
    if not text:
        return ""
    text = "".join(invisible if unicodedata.category(ch) == "Cf" else ch for ch in text)
    text = text.translate(_INVISIBLE if not invisible else dict.fromkeys(_INVISIBLE, invisible))
    text = unicodedata.normalize("NFKC", text)
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Me"))
    text = text.translate(_CONFUSABLE_TABLE).casefold()
    # Another NFKC pass: case folding can produce sequences that compose again.
    return unicodedata.normalize("NFKC", text)


# Right-to-left overrides and isolates show the following letters reversed ("\u202eyap" reads "pay").
_RTL_RUN = re.compile("[\u202e\u202b\u2067\u200f]([^\u202c\u2069\u202a\u202d\u2066\u2068]*)")


def views(text: str) -> tuple[str, ...]:
    """The folded text plus alternative readings an attacker could rely on a human making."""
    base = fold(text)
    out = [base]
    # An invisible character between two words reads as a space: "Buy\u2060Now" is "buy now".
    spaced = fold(text, invisible=" ")
    if spaced != base:
        out.append(spaced)
    if _RTL_RUN.search(text):
        shown = fold(_RTL_RUN.sub(lambda m: m.group(1)[::-1], text))
        if shown != base:
            out.append(shown)
    joined = _SPACED.sub(lambda m: re.sub(r"[^\w]|_", "", m.group(1)), base)
    if joined != base:
        out.append(joined)
    if _MIXED_TOKEN.search(base):
        for table in _LEET:
            leet = _MIXED_TOKEN.sub(lambda m, t=table: m.group(0).translate(t), base)
            if leet not in out:
                out.append(leet)
    return tuple(out)
