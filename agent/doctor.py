"""`deskhand doctor`'s machine checks: can this desktop be seen, driven and run a model?

Each check returns one `Check` (ok / warn / fail, what was found, and the exact fix). The checks
that need the model registry (the default model, RAM and disk against its size) are in
`app/doctor.py`, which also runs them all; these need only `agent`. No Qt here.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from PIL import Image


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of the report: `fix` says exactly what to do (empty when nothing is needed)."""

    name: str
    level: Level
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {**asdict(self), "level": self.level.value}


WAYLAND_ONLY_X11 = ("a Wayland session: Deskhand sees and drives only X11 apps (those running "
                    "through XWayland); native Wayland windows (most GNOME/KDE apps, Firefox, "
                    "Chromium by default) are not in its screenshots and ignore its clicks")
X11_SESSION_FIX = ("log out and choose an X11 session at the login screen (GNOME: the gear "
                   "button, \"GNOME on Xorg\"; KDE: \"Plasma (X11)\"), or start the apps to be "
                   "driven as X11 apps (GDK_BACKEND=x11, QT_QPA_PLATFORM=xcb, "
                   "chromium --ozone-platform=x11)")


def display_server(env: Mapping[str, str] | None = None) -> Check:
    """X11 works; a Wayland session is explained (what can be seen and driven, what to do)."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return Check("display", Level.OK, f"{platform.system()}'s own display")
    wayland = env.get("XDG_SESSION_TYPE", "").lower() == "wayland" or bool(env.get("WAYLAND_DISPLAY"))
    display = env.get("DISPLAY", "")
    if wayland and not display:
        return Check("display", Level.FAIL, "a Wayland session without XWayland (DISPLAY is not "
                     "set): Deskhand can neither see nor drive any window", X11_SESSION_FIX)
    if not display:
        return Check("display", Level.FAIL, "no display: DISPLAY is not set",
                     "run Deskhand inside a desktop session, or `export DISPLAY=:0` first")
    problem = _x_connect(display)
    if problem:
        return Check("display", Level.FAIL, f"cannot open the X display {display} ({problem})",
                     "check that the desktop session is running and DISPLAY is right; from "
                     "another user's session run `xhost +si:localuser:$USER` there")
    if wayland:
        return Check("display", Level.WARN, f"{WAYLAND_ONLY_X11} (XWayland on {display})",
                     X11_SESSION_FIX)
    return Check("display", Level.OK, f"X11 display {display}")


def _x_connect(display: str) -> str:
    """'' when the X display opens, else why not."""
    try:
        from Xlib import display as xdisplay

        xdisplay.Display(display).close()
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return ""


def screen_capture(display: str | None = None) -> Check:
    """A screenshot with real pixels: a test square drawn on screen must come back in it."""
    from agent.screen import Screen, ScreenError

    screen = Screen(display)
    try:
        monitor = screen.monitor(1)
        if not sys.platform.startswith("linux"):  # no X server to draw the square with
            return _not_black(screen.capture(1).image)
        with _probe_square(display, monitor.left, monitor.top):
            shot = screen.capture(1)
    except ScreenError as exc:
        return Check("capture", Level.FAIL, str(exc), "fix the display line above first")
    except Exception as exc:  # no X connection for the square (checked by the display line)
        return Check("capture", Level.FAIL, f"cannot draw the test square ({exc})",
                     "fix the display line above first")
    size = f"{shot.image.width}x{shot.image.height}"
    seen = shot.image.convert("RGB").getpixel((PROBE // 2, PROBE // 2))
    if max(abs(a - b) for a, b in zip(seen, PROBE_RGB, strict=True)) > 24:
        black = " (all black)" if is_black(shot.image) else ""
        return Check("capture", Level.FAIL, f"the {size} screenshot{black} does not show what is "
                     "on screen: the desktop hides its pixels from X11 clients (a Wayland "
                     "compositor, or a locked screen)", X11_SESSION_FIX)
    return Check("capture", Level.OK, f"{size} screenshot with real pixels (a test square drawn "
                 "on screen came back in it)")


def _not_black(image: Image.Image) -> Check:
    size = f"{image.width}x{image.height}"
    if is_black(image):
        return Check("capture", Level.FAIL, f"the {size} screenshot is all black",
                     "allow screen recording for Deskhand (macOS: System Settings, Privacy & "
                     "Security, Screen Recording)")
    return Check("capture", Level.OK, f"{size} screenshot with real pixels")


PROBE = 32  # pixels; the square flashes in the monitor's top-left corner for a moment
PROBE_RGB = (0x3C, 0x8D, 0x2F)


@contextlib.contextmanager
def _probe_square(display: str | None, left: int, top: int) -> Iterator[None]:
    """An override-redirect X window of a known colour, shown while the block runs."""
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    try:
        screen = d.screen()
        r, g, b = (c * 257 for c in PROBE_RGB)
        pixel = screen.default_colormap.alloc_color(r, g, b).pixel
        window = screen.root.create_window(left, top, PROBE, PROBE, 0, screen.root_depth,
                                           X.InputOutput, X.CopyFromParent,
                                           background_pixel=pixel, override_redirect=True)
        window.map()
        d.sync()
        time.sleep(0.2)  # a compositor draws it on its next frame
        try:
            yield
        finally:
            window.destroy()
            d.sync()
    finally:
        d.close()


def is_black(image: Image.Image) -> bool:
    """True when every pixel is (almost) black."""
    return all(high <= 8 for _low, high in image.convert("RGB").getextrema())


def input_injection(display: str | None = None) -> Check:
    """The XTest extension, which every click and key press goes through on X11."""
    if not sys.platform.startswith("linux"):
        return Check("input", Level.OK, f"{platform.system()}'s input API")
    try:
        from Xlib import display as xdisplay

        d = xdisplay.Display(display)
        try:
            present = d.has_extension("XTEST")
        finally:
            d.close()
    except Exception as exc:
        return Check("input", Level.FAIL, f"cannot reach the X server ({exc})",
                     "fix the display line above first")
    if not present:
        return Check("input", Level.FAIL, "the X server has no XTEST extension: clicks and "
                     "key presses cannot be sent", "enable XTEST (Xvfb/Xorg have it unless "
                     "started with -extension XTEST)")
    return Check("input", Level.OK, "XTEST available (clicks and keys can be sent)")


# The instruction sets onnxruntime's CPU kernels use for int4/int8 matrix products, best first.
CPU_FEATURES = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"),
                ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> Check:
    """AVX2 at least (else int4 steps are several times slower); AVX-512 / VNNI / AMX noted."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Check("cpu", Level.OK, f"{platform.machine()} (CPU flags not readable here)")
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.partition(":")[2].split())
    found = [name for flag, name in CPU_FEATURES if flag in flags]
    cores = os.cpu_count() or 1
    if platform.machine() in ("aarch64", "arm64"):
        return Check("cpu", Level.OK, f"ARM64, {cores} cores (NEON kernels)")
    if "AVX2" not in found:
        return Check("cpu", Level.WARN, f"{cores} cores without AVX2: the int4 model runs on "
                     "slow fallback kernels (expect several minutes per step)",
                     "use a machine with AVX2, or a GPU (--provider cuda) or a local server "
                     "(--server URL)")
    return Check("cpu", Level.OK, f"{cores} cores; {', '.join(found)}")


def memory_and_disk(need_ram: int, need_disk: int, folder: Path, what: str) -> list[Check]:
    """Available RAM and free disk at `folder` against what `what` needs (bytes)."""
    gib = 1 << 30
    ram = available_ram()
    checks = []
    if ram is None:
        checks.append(Check("memory", Level.WARN, "available memory unknown"))
    elif ram < need_ram:
        checks.append(Check("memory", Level.WARN if ram > need_ram * 0.7 else Level.FAIL,
                            f"{ram / gib:.1f} GiB available, {what} needs about "
                            f"{need_ram / gib:.1f} GiB", "close other programs, or use a "
                            "smaller (int4) model"))
    else:
        checks.append(Check("memory", Level.OK, f"{ram / gib:.1f} GiB available ({what} needs "
                            f"about {need_ram / gib:.1f} GiB)"))
    place = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    free = shutil.disk_usage(place).free
    level = Level.OK if free >= need_disk else Level.FAIL
    checks.append(Check("disk", level, f"{free / gib:.1f} GiB free at {place} ({what} needs "
                        f"{need_disk / gib:.1f} GiB)",
                        "" if level is Level.OK else f"free space at {place}, or set another "
                        "data folder (DESKHAND_DATA_DIR or the app's Settings)"))
    return checks


def available_ram() -> int | None:
    """MemAvailable in bytes (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def providers() -> Check:
    """The onnxruntime execution providers that import here (CUDA / DirectML / CPU)."""
    try:
        import onnxruntime
    except ImportError as exc:
        return Check("providers", Level.FAIL, f"onnxruntime does not import ({exc})",
                     "pip install 'deskhand[onnx]' (scripts/setup.sh app does it)")
    found = list(onnxruntime.get_available_providers())
    names = {"CUDAExecutionProvider": "CUDA", "DmlExecutionProvider": "DirectML",
             "CPUExecutionProvider": "CPU"}
    shown = ", ".join(names.get(p, p) for p in found)
    if "CPUExecutionProvider" not in found:
        return Check("providers", Level.FAIL, f"onnxruntime without its CPU provider ({shown})",
                     "reinstall onnxruntime: pip install --force-reinstall onnxruntime")
    return Check("providers", Level.OK, f"onnxruntime {onnxruntime.__version__}: {shown}")


_SELF_TEST = """
import socket, sys
from agent.offline import OfflineGuard, OfflineViolation
if not OfflineGuard.active():
    sys.exit(3)
try:
    socket.create_connection(("192.0.2.1", 443), timeout=2)
except OfflineViolation:
    sys.exit(0)
except OSError:
    sys.exit(4)
sys.exit(5)
"""


def offline_guard() -> Check:
    """A child started as the model process is (strict offline mode) tries to connect out."""
    from agent.offline_boot import child_environment

    env = {**os.environ, **child_environment(strict=True)}
    try:
        code = subprocess.run([sys.executable, "-c", _SELF_TEST], env=env, timeout=60,
                              capture_output=True).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, why = -1, str(exc)
    else:
        why = {3: "the guard did not start in the child", 4: "the connection failed, but not "
               "because the guard refused it", 5: "the connection went out"}.get(code, f"exit {code}")
    if code == 0:
        return Check("offline", Level.OK, "a child process's attempt to connect out was refused")
    return Check("offline", Level.FAIL, f"offline self-test failed: {why}",
                 "reinstall Deskhand (agent/_offline_boot must be on the child's path); report "
                 "it if it persists")


def chromium() -> Check:
    """The browser the evaluation harness drives (only `deskhand eval` needs it)."""
    from agent.eval.browser import EnvironmentFailure, chromium_path

    try:
        path = chromium_path()
    except EnvironmentFailure as exc:
        return Check("chromium", Level.WARN, f"{exc} (needed only by `deskhand eval`)",
                     "sudo apt-get install chromium, or set DESKHAND_CHROMIUM=/path/to/chromium")
    return Check("chromium", Level.OK, f"{path} (for `deskhand eval`)")
