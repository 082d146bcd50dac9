"""`deskhand doctor`: what will happen on this machine, checked before the first task.

One line per check (ok / warn / fail) with the exact fix; the exit code is 1 when any check
fails. The checks themselves are `app/doctor.py`'s (the first-run dialog shows the same ones).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

DESCRIPTION = """\
Check this machine before the first task: the display server (X11 works; a Wayland session is
explained: which apps can be seen and driven, and what to do), that screenshots have real
pixels, that input can be sent (XTest), the CPU's instruction sets for the runtime (AVX2,
AVX-512, VNNI, AMX), memory and free disk against the default model's needs, the onnxruntime
providers (CUDA, DirectML, CPU), the default model's files, the offline guard (a child process
tries to connect out and must be refused) and Chromium for `deskhand eval`.

Each line says ok, warn or fail, and how to fix it. Exit code: 1 when anything fails, else 0."""


def register(sub: Any) -> None:
    """Add the `doctor` subcommand to the `deskhand` parser."""
    doctor = sub.add_parser("doctor", help="check this machine before the first task",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    doctor.add_argument("--json", action="store_true",
                        help='print {"ok": bool, "checks": [{"name", "level", "detail", "fix"}]}')


def cmd_doctor(args: argparse.Namespace) -> int:
    """`deskhand doctor`: every check, printed as it finishes (or one JSON object at the end)."""
    from agent.termtext import visible
    from app.doctor import exit_code, run_all, text_line, to_json

    if args.json:
        # Libraries print on stdout while the checks run (python-xlib's "no xauthority details"
        # warning does): send that to stderr so stdout stays one JSON document.
        with contextlib.redirect_stdout(sys.stderr):
            found = run_all()
        print(to_json(found))
    else:
        found = run_all(lambda check: print(visible(text_line(check)), flush=True))
        failed = sum(c.level.value == "fail" for c in found)
        print(f"\n{failed} check(s) failed" if failed else "\nready: nothing failed",
              file=sys.stderr if failed else sys.stdout)
    return exit_code(found)
