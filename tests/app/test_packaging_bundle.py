"""The BUILT Linux installers, not the source tree: run `scripts/build-package.sh linux` first.

Marked `packaging` and left out of the default run (pyproject's addopts); .ci/run builds the
bundle and runs `pytest -m packaging`. Missing artifacts fail, never skip. DESKHAND_BUNDLE and
DESKHAND_DEB point at other builds (e.g. the GPU variant).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from agent.actions import Terminate, format_call
from tests.support.packaging_start import time_to_window
from tests.support.packaging_tray import BACKGROUND, tray_host

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
import build_support  # noqa: E402

pytestmark = [pytest.mark.packaging, pytest.mark.xvfb]
VERSION = build_support.version()
BUNDLE = ROOT / os.environ.get("DESKHAND_BUNDLE", "build/package/deskhand-linux/dist/deskhand")
DEB = ROOT / os.environ.get("DESKHAND_DEB", f"dist/deskhand_{VERSION}_amd64.deb")
BINARY = BUNDLE / "deskhand"
MAX_BUNDLE_MB = 300
ICON_DARK = (0x1F, 0x2A, 0x44)  # the frame colour of every Deskhand icon


def bundle_env(display: str | None, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no source tree on the path, private data and config folders."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(DESKHAND_DATA_DIR=str(tmp_path / "data"), DESKHAND_CONFIG_DIR=str(tmp_path / "config"),
               DESKHAND_CACHE_DIR=str(tmp_path / "cache"), **extra)
    if display:
        env["DISPLAY"] = display
    return env


def run(argv: list, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], env=env, cwd="/", capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def share(image: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> float:
    region = image.crop(box).convert("RGB")
    return Counter(region.get_flattened_data())[colour] / (region.width * region.height)


def grab(display: str) -> Image.Image:
    import mss

    os.environ["DISPLAY"] = display
    with mss.MSS() as sct:
        shot = sct.grab(sct.monitors[1])
    return Image.frombytes("RGB", shot.size, shot.rgb)


def test_the_bundle_is_built_small_and_holds_no_torch() -> None:
    assert BINARY.is_file(), f"no bundle at {BUNDLE}: run scripts/build-package.sh linux"
    size_mb = sum(p.lstat().st_size for p in BUNDLE.rglob("*")) / (1 << 20)
    print(f"bundle: {size_mb:.0f} MiB; .deb: {DEB.stat().st_size / (1 << 20):.0f} MiB")
    assert size_mb <= MAX_BUNDLE_MB
    internal = {p.name for p in (BUNDLE / "_internal").iterdir()}
    assert {"onnxruntime", "PySide6", "assets"} <= internal
    assert internal.isdisjoint({"torch", "transformers", "onnxruntime_genai", "ray", "mcp"})


def test_version(tmp_path) -> None:
    out = run([BINARY, "--version"], bundle_env(None, tmp_path))
    assert out.returncode == 0 and out.stdout.strip() == f"deskhand {VERSION}"


def test_dry_run_with_the_tiny_model(xvfb_display, tmp_path, export_int4) -> None:
    out = run([BINARY, "run", "open the settings", "--model", export_int4, "--provider", "cpu",
               "--dry-run", "--confirm", "never", "--max-steps", "1"], bundle_env(xvfb_display, tmp_path))
    # A random tiny model cannot act: the run ends as a model error, after a real generation.
    assert "(dry run)" in out.stdout and "tokens" in out.stdout and "generate" in out.stdout, out.stderr
    assert "result: model_error" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert len(list((tmp_path / "data" / "runs").iterdir())) == 1


def test_doctor_from_the_bundle(xvfb_display, tmp_path) -> None:
    # The installed app's own checks: the display, capture and input of this Xvfb, the runtime it
    # carries, and the offline self-test, whose child process is the frozen binary itself.
    out = run([BINARY, "doctor", "--json"], bundle_env(xvfb_display, tmp_path))
    assert out.stdout.startswith("{"), out.stderr[-3000:]
    report = json.loads(out.stdout)
    levels = {c["name"]: c["level"] for c in report["checks"]}
    for name in ("display", "capture", "input", "providers", "offline"):
        assert levels.get(name) == "ok", (name, report)
    # No model is set up in this fresh data dir: that is a failed line with a fix, and exit 1.
    assert out.returncode == 1 and not report["ok"]


def test_the_model_process_starts_from_the_bundle_and_is_sealed_off(tmp_path, export_int4) -> None:
    # The app's model runs in a spawn child of the frozen binary; offline mode must hold there.
    code = ("from app.procbackend import ProcessBackend\n"
            f"b = ProcessBackend({str(export_int4)!r}, 'cpu')\n"
            "print('ISOLATION', b.isolation)\nb.close()\n")
    out = run([BINARY, "-c", code], bundle_env(None, tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Python guard on" in out.stdout, out.stdout


def test_the_app_shows_its_window_and_tray_icon(xvfb_factory, tmp_path) -> None:
    with xvfb_factory(1440, 900) as display, tray_host(display) as tray:
        env = bundle_env(display, tmp_path, QT_QPA_PLATFORM="xcb")
        app = subprocess.Popen([str(BINARY), "app", "--no-hotkeys"], env=env, cwd="/",
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            found = run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "^Deskhand$"], env, 60)
            assert found.returncode == 0, "the main window never became visible"
            geometry = run(["xdotool", "getwindowgeometry", "--shell", found.stdout.split()[0]], env)
            deadline = time.monotonic() + 20
            while not tray.docked and time.monotonic() < deadline:
                time.sleep(0.1)
            assert tray.docked, "the app never docked a tray icon"
            time.sleep(1.5)  # let both paint
            shot = grab(display)
        finally:
            app.terminate()
            app.wait(15)
    shot.save(tmp_path / "app.png")
    g = dict(line.split("=") for line in geometry.stdout.split())
    x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    assert w >= 600 and h >= 400
    window = shot.crop((x, y, x + w, y + h))
    assert len(window.getcolors(1 << 20) or []) > 50, "the window area is blank"
    icon_box = (tray.x, tray.y, tray.x + tray.size, tray.y + tray.size)
    assert share(shot, icon_box, BACKGROUND) < 0.6, "the tray slot shows only the tray's background"
    assert share(shot, icon_box, ICON_DARK) > 0.1, "the tray slot does not show the Deskhand icon"


def test_cold_start_to_a_visible_window(xvfb_display) -> None:
    times = sorted(time_to_window(str(BINARY), xvfb_display) for _ in range(5))
    print(f"start to visible window, median of 5: {times[2]:.2f} s ({times})")
    assert times[2] < 10  # the goal is 3 s; a loaded CI machine gets slack, a hang does not


def test_the_appimage_payload_runs_from_its_appdir(tmp_path) -> None:
    # The image is the AppImage runtime + this folder as squashfs (packaging/README.md).
    appdir = BUNDLE.parents[1] / "AppDir"
    entry = (appdir / "deskhand.desktop").read_text(encoding="utf-8")
    assert "Exec=deskhand\n" in entry and "Icon=deskhand\n" in entry
    assert (appdir / ".DirIcon").resolve() == (appdir / "deskhand.png").resolve()
    assert Image.open(appdir / "deskhand.png").size == (256, 256)
    out = run([appdir / "AppRun", "--version"], bundle_env(None, tmp_path))
    assert out.returncode == 0 and out.stdout.strip() == f"deskhand {VERSION}"


@pytest.fixture
def deb_package():
    """Installs the .deb for one test; removes it after (and fails if one was installed before)."""
    assert DEB.is_file(), f"no .deb at {DEB}: run scripts/build-package.sh linux"
    assert os.geteuid() == 0, "dpkg -i needs root (CI runs as root)"
    before = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "deskhand"], capture_output=True, text=True)
    assert "ok installed" not in before.stdout, "a deskhand package is already installed here"
    subprocess.run(["dpkg", "-i", str(DEB)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["dpkg", "-r", "deskhand"], capture_output=True)


def test_deb_installs_the_command_and_menu_entry_and_removal_keeps_user_data(
        deb_package, xvfb_display, tmp_path) -> None:
    command = Path("/usr/bin/deskhand")
    entry = Path("/usr/share/applications/deskhand.desktop")
    icons = [Path(f"/usr/share/icons/hicolor/{s}x{s}/apps/deskhand.png") for s in (16, 48, 256, 512)]
    assert command.is_symlink() and entry.is_file() and all(i.is_file() for i in icons)
    assert "Exec=deskhand\n" in entry.read_text() and "Icon=deskhand\n" in entry.read_text()
    assert shutil.which("deskhand", path="/usr/bin") == str(command)
    # A user's own data, written by the installed command into the default place.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKHAND_", "XDG_"))}
    env.update(HOME=str(tmp_path), DISPLAY=xvfb_display)
    assert run([command, "--version"], env).stdout.strip() == f"deskhand {VERSION}"
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([format_call("Nothing to do.", Terminate("success"))]))
    out = run([command, "run", "nothing to do", "--script", script, "--dry-run", "--confirm", "never"], env)
    data = tmp_path / ".local" / "share" / "deskhand"
    assert out.returncode == 0 and len(list((data / "runs").iterdir())) == 1, out.stdout + out.stderr
    removed = subprocess.run(["dpkg", "-r", "deskhand"], capture_output=True, text=True)
    assert removed.returncode == 0, removed.stderr
    assert not command.exists() and not entry.exists() and not Path("/opt/deskhand").exists()
    assert not any(i.exists() for i in icons)
    assert len(list((data / "runs").iterdir())) == 1  # the runs are the user's: kept
