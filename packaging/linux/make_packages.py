"""The Linux installers from the PyInstaller bundle: a .deb and an AppImage (AppDir, then image).

Run by `scripts/build-package.sh linux` with the build venv's Python (it renders the icons with
Qt): python packaging/linux/make_packages.py BUNDLE_DIR WORK_DIR OUT_DIR [--name deskhand]

The .deb puts the bundle in /opt/<name>, `deskhand` in /usr/bin, the menu entry and the icons
at every size. The AppImage is our own type-2 runtime (packaging/linux/appimage-runtime, built by
build-package.sh, path in $APPIMAGE_RUNTIME) followed by the AppDir as squashfs; without
$APPIMAGE_RUNTIME the AppDir is built and the image is skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "packaging"))

import build_support  # noqa: E402
import icons as icon_files  # noqa: E402

from app.autostart import desktop_entry  # noqa: E402

# Libraries the bundle leaves to the host (packaging/deskhand.spec); t64 names for Ubuntu 24.04+.
DEPENDS = ("libc6 (>= 2.31), libx11-6, libx11-xcb1, libxcb1, libxkbcommon0, libfontconfig1, "
           "libfreetype6, libdbus-1-3, libglib2.0-0 | libglib2.0-0t64, libegl1, libgl1, libstdc++6")
RECOMMENDS = "xdotool, xclip, tesseract-ocr, tesseract-ocr-eng"


def install_share(root: Path, icons: dict[int, Path], argv: list[str]) -> None:
    """usr/share: the menu entry and the icons at every size (plus the SVG)."""
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    (apps / "deskhand.desktop").write_text(desktop_entry(argv), encoding="utf-8")
    hicolor = root / "usr" / "share" / "icons" / "hicolor"
    for size, png in icons.items():
        if size > 512:  # hicolor stops at 512
            continue
        target = hicolor / f"{size}x{size}" / "apps"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target / "deskhand.png")
    (hicolor / "scalable" / "apps").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(icon_files.SVG, hicolor / "scalable" / "apps" / "deskhand.svg")


def tree_size_kib(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*")) // 1024 + 1


def build_deb(bundle: Path, work: Path, out: Path, icons: dict[int, Path], name: str) -> Path:
    """<out>/<name>_<version>_amd64.deb: /opt/<name>, /usr/bin/<name>, menu entry, icons."""
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(bundle, root / "opt" / name, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "deskhand").symlink_to(f"../../opt/{name}/deskhand")
    install_share(root, icons, ["deskhand"])
    version = build_support.version()
    control = root / "DEBIAN" / "control"
    control.parent.mkdir()
    gpu = name.endswith("-cuda")
    control.write_text("\n".join([
        f"Package: {name}", f"Version: {version}", "Architecture: amd64", "Section: utils",
        "Priority: optional", "Maintainer: Deskhand developers <deskhand@localhost>",
        f"Installed-Size: {tree_size_kib(root)}", f"Depends: {DEPENDS}", f"Recommends: {RECOMMENDS}",
        *(["Conflicts: deskhand", "Replaces: deskhand", "Provides: deskhand"] if gpu else []),
        "Description: on-device computer-use agent" + (" (CUDA runtime)" if gpu else ""),
        " A local vision-language model looks at the screen and clicks and types for you.",
        " Models and runs stay in ~/.local/share/deskhand; removing the package keeps them.", ""]),
        encoding="utf-8")
    deb = out / f"{name}_{version}_amd64.deb"
    # gzip: every dpkg reads it, and xz took minutes on two cores for a few MB less.
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(root),
                    str(deb)], check=True, stdout=subprocess.DEVNULL)
    return deb


def build_appdir(bundle: Path, work: Path, icons: dict[int, Path], name: str) -> Path:
    """The AppDir: AppRun, the top-level desktop entry and icon, the bundle in usr/lib/<name>."""
    appdir = work / "AppDir"
    shutil.rmtree(appdir, ignore_errors=True)
    shutil.copytree(bundle, appdir / "usr" / "lib" / name, symlinks=True)
    install_share(appdir, icons, ["deskhand"])
    shutil.copyfile(appdir / "usr/share/applications/deskhand.desktop", appdir / "deskhand.desktop")
    shutil.copyfile(icons[256], appdir / "deskhand.png")
    (appdir / ".DirIcon").symlink_to("deskhand.png")
    apprun = appdir / "AppRun"
    apprun.write_text('#!/bin/sh\n# The AppImage entry point: the bundled deskhand, arguments passed on.\n'
                      'here="$(dirname "$(readlink -f "$0")")"\n'
                      f'exec "$here/usr/lib/{name}/deskhand" "$@"\n', encoding="utf-8")
    apprun.chmod(0o755)
    return appdir


def build_appimage(appdir: Path, work: Path, out: Path, runtime: Path, name: str) -> Path:
    """runtime + squashfs(AppDir): the type-2 AppImage layout."""
    image = work / "AppDir.squashfs"
    image.unlink(missing_ok=True)
    # zstd level 6, not mksquashfs' 15: 4 s instead of 2 min on two cores, for 8% more (108 MB).
    subprocess.run(["mksquashfs", str(appdir), str(image), "-root-owned", "-noappend", "-comp",
                    "zstd", "-Xcompression-level", "6", "-quiet", "-no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    target = out / f"{name.capitalize()}-{build_support.version()}-x86_64.AppImage"
    with open(target, "wb") as f:
        f.write(runtime.read_bytes())
        with open(image, "rb") as sq:
            shutil.copyfileobj(sq, f)
    target.chmod(0o755)
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--name", default="deskhand", help="package name (deskhand-cuda: GPU)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    icons = icon_files.render_pngs(args.work / "icons")
    print(f"package: {build_deb(args.bundle, args.work, args.out, icons, args.name)}")
    appdir = build_appdir(args.bundle, args.work, icons, args.name)
    runtime = os.environ.get("APPIMAGE_RUNTIME", "")
    if not runtime:
        print(f"package: AppImage skipped: set APPIMAGE_RUNTIME to the AppImage runtime "
              f"(packaging/linux/appimage-runtime/build.sh); the AppDir is {appdir}")
    elif shutil.which("mksquashfs") is None:
        print("package: AppImage skipped: mksquashfs is missing (apt-get install squashfs-tools)")
    else:
        print(f"package: {build_appimage(appdir, args.work, args.out, Path(runtime), args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
