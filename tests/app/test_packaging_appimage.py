"""The BUILT AppImage (dist/Deskhand-<version>-x86_64.AppImage) and its runtime.

Our own type-2 runtime (packaging/linux/appimage-runtime): its format (magic, offset = ELF
size, squashfs after it), the app started from the image (FUSE mount where the machine allows
it, else extraction), extract-and-run with and without the cache, and crafted images whose
names or symlinks try to leave the extraction folder. Marked `packaging`: `.ci/run` builds
first (scripts/build-package.sh linux). The runtime under test is the head of the built image.
"""

from __future__ import annotations

import os
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.app.test_packaging_bundle import ICON_DARK, ROOT, VERSION, bundle_env, grab, run, share
from tests.support.packaging_tray import BACKGROUND, tray_host

pytestmark = [pytest.mark.packaging, pytest.mark.xvfb]
IMAGE = ROOT / os.environ.get("DESKHAND_APPIMAGE", f"dist/Deskhand-{VERSION}-x86_64.AppImage")


def elf_size(head: bytes) -> int:
    """e_shoff + e_shnum * e_shentsize of a 64-bit little-endian ELF header."""
    (shoff,) = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
    return shoff + shnum * shentsize


@pytest.fixture(scope="module")
def runtime() -> bytes:
    assert IMAGE.is_file(), f"no AppImage at {IMAGE}: run scripts/build-package.sh linux"
    with open(IMAGE, "rb") as f:
        head = f.read(64)
        f.seek(0)
        return f.read(elf_size(head))


def make_image(runtime: bytes, appdir: Path, out: Path, patch: dict[bytes, bytes] | None = None) -> Path:
    """runtime + squashfs(appdir); uncompressed tables when names are to be patched in."""
    squash = out.with_suffix(".sqfs")
    flags = ["-noI", "-noD", "-noF", "-noX", "-no-xattrs"] if patch else ["-comp", "zstd"]
    subprocess.run(["mksquashfs", appdir, squash, "-root-owned", "-noappend", "-quiet",
                    "-no-progress", *flags], check=True, stdout=subprocess.DEVNULL)
    data = squash.read_bytes()
    for old, new in (patch or {}).items():
        assert len(old) == len(new) and data.count(old) == 1, old
        data = data.replace(old, new)
    out.write_bytes(runtime + data)
    out.chmod(0o755)
    return out


def test_the_image_is_a_type2_appimage(tmp_path) -> None:
    data = IMAGE.read_bytes()
    print(f"AppImage: {len(data) / (1 << 20):.0f} MiB")
    assert data[:4] == b"\x7fELF" and data[8:11] == b"AI\x02"
    offset = run([IMAGE, "--appimage-offset"], bundle_env(None, tmp_path))
    assert offset.returncode == 0 and int(offset.stdout) == elf_size(data[:64])
    assert data[elf_size(data[:64]):][:4] == b"hsqs"  # the squashfs superblock follows the ELF


def timed(argv: list, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    out = run(argv, env)
    return time.monotonic() - start, out


def test_version_from_the_appimage_mounted_extracted_and_cached(tmp_path) -> None:
    env = bundle_env(None, tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"), TMPDIR=str(tmp_path))
    default_s, default = timed([IMAGE, "--version"], env)  # FUSE where it can, else extraction
    assert default.returncode == 0 and default.stdout.strip() == f"deskhand {VERSION}", default.stderr
    first_s, first = timed([IMAGE, "--appimage-extract-and-run", "--version"], env)
    second_s, second = timed([IMAGE, "--appimage-extract-and-run", "--version"], env)
    env["APPIMAGE_EXTRACT_NO_CACHE"] = env["APPIMAGE_EXTRACT_AND_RUN"] = "1"
    private_s, private = timed([IMAGE, "--version"], env)
    print(f"--version: default {default_s:.2f} s ({default.stderr.strip() or 'mounted'}), "
          f"extract-and-run first {first_s:.2f} s, cached {second_s:.2f} s, no cache {private_s:.2f} s")
    for out in (first, second, private):
        assert out.returncode == 0 and out.stdout.strip() == f"deskhand {VERSION}", out.stderr
    assert "extracting to" in first.stderr and "extracting" not in second.stderr
    entries = [p for p in (tmp_path / "xdg" / "deskhand" / "appimage").iterdir() if p.is_dir()]
    assert len(entries) == 1 and (entries[0] / "AppRun").is_file()
    # the private folder and the mount point are gone
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".mount_", ".deskhand-run"))]


def test_without_fuse_the_image_says_so_and_extracts(tmp_path) -> None:
    # A private mount namespace with an empty /dev: no /dev/fuse, as in a container (needs root).
    assert os.geteuid() == 0, "unshare -m needs root (CI runs as root)"
    env = bundle_env(None, tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    argv = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /dev && exec "$0" --version', IMAGE]
    first_s, first = timed(argv, env)
    second_s, second = timed(argv, env)
    print(f"--version without FUSE: first start {first_s:.2f} s, second {second_s:.2f} s")
    for out in (first, second):
        assert out.returncode == 0 and out.stdout.strip() == f"deskhand {VERSION}", out.stderr
        assert "FUSE is not available" in out.stderr
    assert "extracting to" in first.stderr and "extracting to" not in second.stderr


def test_the_app_shows_its_window_and_tray_icon_from_the_appimage(xvfb_factory, tmp_path) -> None:
    with xvfb_factory(1440, 900) as display, tray_host(display) as tray:
        env = bundle_env(display, tmp_path, QT_QPA_PLATFORM="xcb", XDG_CACHE_HOME=str(tmp_path / "xdg"))
        app = subprocess.Popen([str(IMAGE), "app", "--no-hotkeys"], env=env, cwd="/",
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            found = run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "^Deskhand$"], env, 90)
            assert found.returncode == 0, "the main window never became visible"
            deadline = time.monotonic() + 20
            while not tray.docked and time.monotonic() < deadline:
                time.sleep(0.1)
            assert tray.docked, "the app never docked a tray icon"
            time.sleep(1.5)  # let both paint
            shot = grab(display)
        finally:
            app.terminate()
            app.wait(15)
    icon_box = (tray.x, tray.y, tray.x + tray.size, tray.y + tray.size)
    assert share(shot, icon_box, BACKGROUND) < 0.6, "the tray slot shows only the tray's background"
    assert share(shot, icon_box, ICON_DARK) > 0.1, "the tray slot does not show the Deskhand icon"


def test_modes_symlinks_environment_and_exit_status_are_kept(runtime, tmp_path) -> None:
    appdir = tmp_path / "AppDir"
    (appdir / "ro").mkdir(parents=True)
    (appdir / "AppRun").write_text('#!/bin/sh\necho "$APPDIR|$APPIMAGE|$ARGV0|$*"\n'
                                   'stat -c %a "$APPDIR/ro/data" "$APPDIR/ro"\nreadlink "$APPDIR/link"\n'
                                   'exit 7\n')
    (appdir / "AppRun").chmod(0o755)
    (appdir / "ro" / "data").write_text("x")
    (appdir / "ro" / "data").chmod(0o444)
    (appdir / "ro").chmod(0o555)
    (appdir / "link").symlink_to("ro/data")
    image = make_image(runtime, appdir, tmp_path / "Small.AppImage")
    env = bundle_env(None, tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    for argv in ([image, "a b", "c"], [image, "--appimage-extract-and-run", "a b", "c"]):
        out = run(argv, env)
        lines = out.stdout.splitlines()
        assert out.returncode == 7, out.stderr
        appdir_seen, image_seen, argv0, args = lines[0].split("|")
        assert (image_seen, argv0, args) == (str(image.resolve()), str(image), "a b c")
        assert lines[1:] == ["444", "555", "ro/data"]
        assert appdir_seen not in Path("/proc/mounts").read_text()  # unmounted after the exit


def test_a_new_version_replaces_the_cached_one_no_running_app_holds(runtime, tmp_path) -> None:
    env = bundle_env(None, tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"), APPIMAGE_EXTRACT_AND_RUN="1")
    cache = tmp_path / "xdg" / "deskhand" / "appimage"
    images = []
    for version in ("1", "2", "3"):
        appdir = tmp_path / f"AppDir{version}"
        appdir.mkdir()
        (appdir / "AppRun").write_text(f"#!/bin/sh\n# version {version}\nexec ${{HOLD:-true}} 60\n")
        (appdir / "AppRun").chmod(0o755)
        images.append(make_image(runtime, appdir, tmp_path / f"V{version}.AppImage"))
    held = subprocess.Popen([images[0]], env={**env, "HOLD": "sleep"})  # version 1 keeps running
    try:
        time.sleep(1)
        for image in images[1:]:
            assert run([image], env).returncode == 0
    finally:
        held.kill()
        held.wait()
    # version 1 was in use when version 2 came, version 2 was not when version 3 came
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


CRAFTED = {
    # a name that climbs out of the folder ("../../pwned" patched in after mksquashfs)
    "dotdot-name": ({"dotdotpwned": "x"}, {b"dotdotpwned": b"../../pwned"}),
    # a symlink to an outside folder, with a same-named folder holding a file behind it
    "symlink-out": ({"evil/pwned": "x", "evik": None}, {b"evik": b"evil"}),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_image_cannot_write_outside_its_folder(runtime, tmp_path, case) -> None:
    files, patch = CRAFTED[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    appdir = tmp_path / "in"
    for name, text in files.items():
        path = appdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text) if text is not None else path.symlink_to(outside)
    image = make_image(runtime, appdir, tmp_path / "Crafted.AppImage", patch)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    env = bundle_env(None, tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    for argv in ([image, "--appimage-extract"], [image, "--appimage-extract-and-run"]):
        out = subprocess.run([str(a) for a in argv], cwd=work, env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode != 0 and "refusing to extract" in out.stderr, out.stderr
    assert list(outside.iterdir()) == [] and list(work.iterdir()) == []
    assert [p for p in tmp_path.rglob("pwned") if appdir not in p.parents] == []
