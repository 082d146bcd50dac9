#!/usr/bin/env bash
# Build Deskhand's installers into dist/ (packaging/README.md says what each one holds).
#   scripts/build-package.sh linux [--gpu]   .deb and AppImage; --gpu: CUDA
#   scripts/build-package.sh windows          on Windows (Git Bash): folder + Inno Setup installer (DirectML)
#   scripts/build-package.sh macos            on macOS: Deskhand.app + .dmg
# A private build venv (build/package/<target>) holds only the app's own extras, so torch and
# the other export/eval extras can never end up in the bundle. Safe to re-run.
set -euo pipefail
target="${1:-}"
gpu="${2:-}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

case "$target" in
  linux) extras="gui onnx package"; name=deskhand
    if [ "$gpu" = --gpu ]; then extras="gui cuda package"; name=deskhand-cuda; fi ;;
  windows) extras="gui directml package"; name=deskhand ;;
  macos) extras="gui onnx package"; name=deskhand ;;
  *) echo "usage: scripts/build-package.sh linux [--gpu] | windows | macos" >&2; exit 2 ;;
esac
[ -z "$gpu" ] || [ "$gpu:$target" = "--gpu:linux" ] || { echo "build-package: --gpu is for linux" >&2; exit 2; }

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3 python py; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python="$candidate"; break
    fi
  done
fi
[ -n "$python" ] || { echo "build-package: Python 3.11 or newer is required" >&2; exit 1; }

work="build/package/$name-$target"
mkdir -p "$work" dist
venv="$work/venv"
vpy="$venv/bin/python"; [ "$target" = windows ] && vpy="$venv/Scripts/python.exe"
"$python" packaging/build_support.py requirements $extras > "$work/requirements.txt"
stamp="$venv/.deskhand-$(cat pyproject.toml "$work/requirements.txt" | "$python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
if [ ! -f "$stamp" ]; then
  echo "build-package: build venv with: $(tr '\n' ' ' < "$work/requirements.txt")"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$vpy" -m pip install -q --upgrade pip
  "$vpy" -m pip install -q -r "$work/requirements.txt"
  touch "$stamp"
fi

if [ "$target" = linux ] && ! command -v dpkg-deb >/dev/null; then
  echo "build-package: dpkg-deb is missing (apt-get install dpkg-dev)" >&2; exit 1
fi
if [ "$target" = linux ]; then
  # The AppImage: our own runtime (packaging/linux/appimage-runtime), static against Debian's
  # squashfuse, FUSE 3 and decompressors, and the AppDir as squashfs (mksquashfs).
  appimage_deps=(gcc libsquashfuse-dev libfuse3-dev zlib1g-dev libzstd-dev liblzma-dev liblz4-dev
    liblzo2-dev squashfs-tools)
  missing=(); for p in "${appimage_deps[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "build-package: sudo apt-get install ${missing[*]}" >&2; exit 1; }
    echo "build-package: installing ${missing[*]} for the AppImage"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  fi
  if [ -z "${APPIMAGE_RUNTIME:-}" ]; then
    packaging/linux/appimage-runtime/build.sh "$work/appimage-runtime" "$name"
    export APPIMAGE_RUNTIME="$root/$work/appimage-runtime"
  fi
fi

QT_QPA_PLATFORM=offscreen "$vpy" packaging/icons.py "$work/icons"
echo "build-package: bundling with PyInstaller"
DESKHAND_BUILD_DIR="$work" "$vpy" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$work/dist" --workpath "$work/pyinstaller" packaging/deskhand.spec

case "$target" in
  linux) "$vpy" packaging/linux/make_packages.py "$work/dist/deskhand" "$work" dist --name "$name" ;;
  windows) packaging/windows/build-installer.sh "$work/dist/deskhand" dist ;;
  macos) packaging/macos/make-dmg.sh "$work/dist/Deskhand.app" dist ;;
esac
echo "build-package: bundle $(du -sh "$work/dist" | cut -f1) in $work/dist; installers in dist/"
