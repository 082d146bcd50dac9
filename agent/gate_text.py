"""Typed text that is risky whatever the screen says: card numbers, IBANs, shell command lines.

Used by the confirmation gate (`agent/gate_rules.py`); all input is folded by `agent.textnorm`
first, and every pattern is linear in the input (gaps are bounded) so no text can stall a check.
"""

from __future__ import annotations

import re

from agent.textnorm import fold

# A run of digit groups ("4111 1111 1111 1111 12/27" holds the run "4111 1111 1111 1111 12").
_DIGIT_RUN = re.compile(r"\d+(?:[ \t\-.]{1,2}\d+)*")
_IBAN = re.compile(r"\b[a-z]{2}\d{2}(?:[ ]?[a-z0-9]){11,30}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def looks_like_card(text: str) -> bool:
    """13-19 digits that pass the Luhn check: a whole group, or consecutive groups of a run
    (so a card typed with its expiry date or CVV after it still counts)."""
    for m in _DIGIT_RUN.finditer(fold(text)):
        groups = re.findall(r"\d+", m.group(0))
        for i in range(len(groups)):
            digits = ""
            for group in groups[i:]:
                if len(group) < 3 and digits:
                    break  # cards are grouped 4-4-4-4 or 4-6-5, not digit by digit
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and len(set(digits)) > 1 and _luhn(digits):
                    return True
    return False


def looks_like_iban(text: str) -> bool:
    """An IBAN with a valid mod-97 check."""
    for m in _IBAN.finditer(fold(text)):
        raw = m.group(0).replace(" ", "").upper()
        moved = raw[4:] + raw[:4]
        number = "".join(str(int(c, 36)) for c in moved)
        if 15 <= len(raw) <= 34 and int(number) % 97 == 1:
            return True
    return False


# Gaps are bounded ({0,200}) so that no input makes a pattern quadratic.
_SHELL_DANGER = [(name, re.compile(rx)) for name, rx in (
    ("rm -r/-f", r"\brm\b[^\n;&|]{0,200}\s-(?:\w*[rf]|-recursive|-force)|\brmdir\b"),
    ("sudo", r"(?:^|[\s;&|(`])(?:sudo|doas|pkexec|su)\b"),
    ("download piped to a shell",
     r"\b(?:curl|wget|fetch|iwr|invoke-webrequest)\b[^\n]{0,200}\|\s*(?:sudo\s+)?(?:\w*sh|python\d?|perl|ruby|iex)\b"
     r"|\b(?:ba|z)?sh\s+(?:-c\s+)?[\"']?\$?\(?\s*<?\(\s*(?:curl|wget)\b|\binvoke-expression\b|\biex\b"
     r"|\b(?:curl|wget)\b[^\n]{0,200}(?:&&|;)\s*(?:sudo\s+)?(?:\w*sh|python\d?|chmod)\b"),
    ("disk or file-system write",
     r"\bmkfs\b|\bdd\s+[^\n]{0,200}\bof=|\bdd\s+if=|>\s*/dev/(?:sd|nvme|hd|vd|mmcblk)"
     r"|\bshred\b|\bwipefs\b|\bfdisk\b|\bparted\b|\bformat-volume\b|\bformat\s+[a-z]:"),
    ("permission change", r"\bchmod\s+(?:-\w+\s+)*[0-7]*777\b|\bchmod\s+-r\b|\bchown\s+-r\b"),
    ("fork bomb", r":\s*\(\s*\)\s*\{"),
    ("power or service control", r"\b(?:shutdown|reboot|poweroff|halt)\b|\binit\s+[06]\b"
     r"|\bsystemctl\s+(?:stop|disable|mask|poweroff|reboot|kill)\b"),
    ("kill processes", r"\bkill(?:all)?\s+-(?:9|kill)\b|\bpkill\b|\bkillall\b|\btaskkill\b"),
    ("destructive git", r"\bgit\s+push\b[^\n]{0,200}(?:--force|\s-f\b)|\bgit\s+reset\s+--hard\b"
     r"|\bgit\s+clean\s+-\w*f"),
    ("destructive SQL", r"\bdrop\s+(?:table|database|schema)\b|\bdelete\s+from\b|\btruncate\s+table\b"),
    ("Windows delete", r"\bdel\s+/[sqf]|\brd\s+/s\b|\bremove-item\b[^\n]{0,200}-recurse"),
    ("decoded script run",
     r"base64\s+(?:-d|--decode)[^\n]{0,200}\|\s*\w*sh\b|\beval\b|-encodedcommand\b|\s-enc\s"),
    ("shell start-up or system file write", r">\s*~?/?[\w./]*(?:bashrc|profile|zshrc)\b|>\s*/etc/"
     r"|\bcrontab\s+-r\b"),
    ("reverse shell", r"\bnc\b[^\n]{0,200}\s-e\s|/dev/tcp/"),
    ("package removal or publish",
     r"\b(?:apt|apt-get|dnf|yum|pacman|zypper)\s+(?:remove|purge|autoremove|-r)\b"
     r"|\bpip\d?\s+uninstall\b|\bnpm\s+(?:publish|unpublish)\b"),
    ("find that deletes", r"\bfind\b[^\n]{0,200}\s-(?:delete|exec\s+rm)\b|\brsync\b[^\n]{0,200}--delete"),
)]
# Commands that only read; a line that is only one of these (no chaining) runs without asking.
_READ_ONLY = frozenset({
    "ls", "ll", "la", "pwd", "cd", "echo", "cat", "less", "more", "head", "tail", "grep", "rg",
    "find", "which", "whoami", "date", "uname", "df", "du", "free", "ps", "man", "history",
    "clear", "file", "stat", "wc", "tree", "env", "printenv", "id", "hostname", "uptime", "true"
})
_SHELL_META = re.compile(r"[;&|<>`$(){}\\]")


def shell_danger(text: str) -> str | None:
    """The kind of destructive shell command in `text`, or None."""
    folded = fold(text)
    # The shell drops empty quotes and backslashes: r''m -r\f reads as rm -rf.
    unquoted = re.sub(r"''|\"\"|\\(?=\S)", "", folded)
    for name, pattern in _SHELL_DANGER:
        if pattern.search(folded) or pattern.search(unquoted):
            return name
    return None


def is_read_only_command(text: str) -> bool:
    """True for plain read-only commands such as `ls -la`, one per line (no pipes, redirects or
    chaining); an empty line is not known to be harmless."""
    lines = [line.strip() for line in re.split(r"[\n\r\u2028\u2029\x85]", fold(text)) if line.strip()]
    return bool(lines) and all(_read_only_line(line) for line in lines)


def _read_only_line(line: str) -> bool:
    if _SHELL_META.search(line):
        return False
    words = line.split()
    if words[0] == "git" and len(words) > 1:
        return words[1] in ("status", "log", "diff", "show", "branch") and "--force" not in words
    return words[0] in _READ_ONLY and "-delete" not in words and "-exec" not in words
