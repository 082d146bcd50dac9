"""A private Xvfb display per worker and a fresh, quiet, full-screen Chromium per task.

The agent sees this browser only as X pixels and drives it only with X input; the DevTools
port is opened on loopback for the harness (judges, scripted solvers) and never shown to it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.geometry import Size

CHROMIUM = "/usr/bin/chromium"
DEFAULT_SCREEN = Size(1440, 900)  # Fara's training viewport
# Features that phone home or pop up UI over the page on a fresh profile.
_DISABLED_FEATURES = ",".join((
    "Translate", "MediaRouter", "OptimizationHints", "AutofillServerCommunication",
    "CertificateTransparencyComponentUpdater", "InterestFeedContentSuggestions",
    "PrivacySandboxSettings4", "DialMediaRouteProvider", "HttpsUpgrades", "SafeBrowsing",
))


class EnvironmentFailure(RuntimeError):
    """The evaluation environment (display, browser, DevTools) failed; the task is retried."""


def wait_painted(screen: Any) -> None:
    """Wait until the browser's screen stops changing (three equal captures 0.15 s apart, at
    most 5 s): pages fill in by script after `load`, and a started MiniWoB++ episode is
    painted frames after it starts; the model's screenshot should show what a person sees."""
    screen.wait_settled(1, timeout=5.0, interval=0.15, stable_frames=3)


def chromium_path() -> str:
    """The Chromium binary to run (DESKHAND_CHROMIUM overrides the Debian default)."""
    path = os.environ.get("DESKHAND_CHROMIUM") or CHROMIUM
    if not Path(path).exists() and shutil.which(path) is None:
        raise EnvironmentFailure(f"{path} not found; install Debian's chromium "
                                 "(scripts/setup.sh does it)")
    return path


def _free_display_number(start: int = 120) -> int:
    for n in range(start, start + 500):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise EnvironmentFailure("no free X display number")


def _lock_owner(number: int, wait: float = 2.0) -> int | None:
    """The pid written in an X server's lock file (None if unreadable in time)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return int(Path(f"/tmp/.X{number}-lock").read_text().strip())
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


class XvfbDisplay:
    """A private Xvfb server; `display` is its DISPLAY string once started."""

    def __init__(self, size: Size = DEFAULT_SCREEN, depth: int = 24) -> None:
        self.size = size
        self.depth = depth
        self.display = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start Xvfb on a free display number; returns the DISPLAY string."""
        if shutil.which("Xvfb") is None:
            raise EnvironmentFailure("Xvfb is not installed (apt-get install xvfb)")
        # python-xlib (used by pyautogui) refuses to connect without an Xauthority file.
        xauth = Path.home() / ".Xauthority"
        if not xauth.exists():
            xauth.touch()
        for _ in range(5):  # another process may grab the same number between check and start
            number = _free_display_number()
            display = f":{number}"
            cmd = ["Xvfb", display, "-screen", "0",
                   f"{self.size.width}x{self.size.height}x{self.depth}",
                   "-nolisten", "tcp", "-ac", "+extension", "RANDR"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            sock = Path(f"/tmp/.X11-unix/X{number}")
            deadline = time.monotonic() + timeout
            while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            # Two workers can pick the same free number at once: the display is ours only if
            # the server's lock file names our process (the loser exits, but maybe not yet).
            if sock.exists() and proc.poll() is None and _lock_owner(number) == proc.pid:
                self._proc, self.display = proc, display
                return display
            _terminate(proc)
        raise EnvironmentFailure("Xvfb did not start")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None

    def __enter__(self) -> XvfbDisplay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


MODES = ("window", "kiosk")


@dataclass(frozen=True)
class BrowserOptions:
    size: Size = DEFAULT_SCREEN
    offline: bool = True  # loopback sites only: also keep the browser off every outside host
    # "window": a browser window filling the screen with its tab strip and address bar, as on a
    # desktop; visit_url / web_search work through Ctrl+L. "kiosk": the page fills the whole
    # screen as in Fara's training, but there is no address bar for visit_url to type into.
    mode: str = "window"
    start_timeout: float = 30.0
    # Host names the browser resolves to loopback ports (name, port): the address bar shows the
    # name, not a port that changes from run to run (Nano's web screens, app.nano.web). Only
    # loopback: a name here can never reach another machine, offline or not.
    local_hosts: tuple[tuple[str, int], ...] = ()


def chromium_args(profile: Path, url: str, options: BrowserOptions) -> list[str]:
    """The command line: fresh profile, no background traffic, full screen, loopback DevTools."""
    w, h = options.size.width, options.size.height
    args = [
        chromium_path(),
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",  # Chromium picks a free port, written to DevToolsActivePort
        "--no-first-run", "--no-default-browser-check", "--disable-default-apps",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
        "--disable-breakpad", "--disable-crash-reporter", "--metrics-recording-only",
        "--no-pings", "--disable-extensions", "--disable-popup-blocking",
        f"--disable-features={_DISABLED_FEATURES}",
        "--password-store=basic", "--use-mock-keychain",
        "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-session-crashed-bubble", "--hide-crash-restore-bubble",
        "--force-device-scale-factor=1",
        "--test-type",  # no "unsupported command-line flag" bar over the page (e.g. --no-sandbox)
        "--window-position=0,0", f"--window-size={w},{h}",
    ]
    if options.mode == "kiosk":
        args.append("--kiosk")
    elif options.mode != "window":
        raise ValueError(f"unknown browser mode {options.mode!r} (use {' or '.join(MODES)})")
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    for name, port in options.local_hosts:
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", name) or not 0 < port < 65536:
            raise ValueError(f"local host {name!r}:{port} is not a plain host name and port")
    if options.local_hosts:
        args.append("--host-resolver-rules=" + ", ".join(
            f"MAP {name}:80 127.0.0.1:{port}" for name, port in options.local_hosts))
        # Past the offline proxy below: they resolve to this machine only.
        args.append("--proxy-bypass-list=" + ";".join(name for name, _ in options.local_hosts))
    if options.offline:
        # Every non-loopback request goes to a proxy that is not there and fails at once;
        # loopback (the sites) bypasses proxies. No DNS lookups leave the browser either.
        args.append("--proxy-server=http://127.0.0.1:9")
    args.append(url)
    return args


class Browser:
    """One Chromium process with its own temporary profile on a given X display."""

    def __init__(self, display: str, options: BrowserOptions | None = None) -> None:
        self.display = display
        self.options = options or BrowserOptions()
        self.devtools_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: Path | None = None
        self._log: Path | None = None

    def start(self, url: str = "about:blank") -> int:
        """Launch the browser at `url`; returns the DevTools port once it listens."""
        self._profile = Path(tempfile.mkdtemp(prefix="deskhand-chromium-"))
        self._log = self._profile.parent / (self._profile.name + ".log")
        env = {**os.environ, "DISPLAY": self.display}
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(chromium_args(self._profile, url, self.options), env=env,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.options.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EnvironmentFailure(f"chromium exited at start ({self._proc.returncode}): "
                                         f"{self.log_tail()}")
            try:
                first = port_file.read_text().splitlines()[0]
                self.devtools_port = int(first)
                return self.devtools_port
            except (OSError, IndexError, ValueError):
                time.sleep(0.05)
        self.close()
        raise EnvironmentFailure("chromium did not open its DevTools port in time")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = 600) -> str:
        try:
            return self._log.read_text(errors="replace")[-chars:] if self._log else ""
        except OSError:
            return ""

    def close(self) -> None:
        """Stop the browser and its helpers, and delete the profile."""
        if self._proc is not None:
            # SIGTERM to the browser alone first: it shuts its helpers down and reaps them, so
            # their CPU time reaches our RUSAGE_CHILDREN; then whatever is left of the group.
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            _terminate(self._proc)
            self._proc = None
        for path in (self._profile, self._log):
            if path is not None:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        self._profile = self._log = None

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _terminate(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """Stop a process started in its own session, with everything it spawned."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(grace)
