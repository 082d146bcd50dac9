"""Clean-up that survives a `kill -9`: a small process that waits for its owner to exit, then
kills every process started with the owner's mark in its environment.

Used by the Ray pool (agent/eval/ray_pool.py): a local cluster's processes carry the driver's
mark, an actor's displays and browsers carry the actor's. Ray alone leaves both behind when
their owner is killed (its agents outlive a killed driver; children started in their own
session outlive a killed actor). Linux only (/proc), like Xvfb.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARK_PREFIX = "DESKHAND_REAP_"  # every mark's variable name starts so; reapers carry none

# Run with -S: no site, so no offline bootstrap either; it opens no socket, it only reads /proc.
# It forks away from its starter at once: Ray kills an exiting worker's children, and the reaper
# must outlive the actor to clean up after it.
_REAPER = r"""
import os, shutil, signal, sys, time
if os.fork():
    os._exit(0)
mark = sys.argv[1].encode()
sys.stdin.buffer.read()  # returns at end of file: the owner has exited, however it ended
for _ in range(3):  # again, for anything started while the first round ran
    for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mark in f.read().split(b"\0"):
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.3)
if len(sys.argv) > 2:
    shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


@dataclass
class Reaper:
    """The pipe ends of a running reaper: closing `stdin` starts its round; `stdout` closes at
    its end."""

    stdin: Any
    stdout: Any


def start_reaper(var: str, token: str, *, remove: Path | None = None) -> Reaper:
    """A process that, once this one has exited (or `stop_reaper`), kills every process
    started with `var=token` in its environment (displays and browsers, or a local cluster),
    then deletes `remove`."""
    # Unmarked, so that no reaper kills another before it has done its round.
    env = {k: v for k, v in os.environ.items() if not k.startswith(MARK_PREFIX)}
    extra = [str(remove)] if remove is not None else []
    proc = subprocess.Popen([sys.executable, "-S", "-c", _REAPER, f"{var}={token}", *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            start_new_session=True, stderr=subprocess.DEVNULL)
    proc.wait()  # the starter half; the reaper itself runs on, orphaned
    return Reaper(proc.stdin, proc.stdout)


def stop_reaper(reaper: Reaper, timeout: float = 10.0) -> None:
    """Let the reaper do its round now and wait (a while) for it to finish."""
    import select

    if not reaper.stdin.closed:
        reaper.stdin.close()
    if not reaper.stdout.closed:
        select.select([reaper.stdout], [], [], timeout)  # readable at end of file
        reaper.stdout.close()
