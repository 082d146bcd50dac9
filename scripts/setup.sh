#!/usr/bin/env bash
# Set up Deskhand in ./.venv on a Debian/Ubuntu machine: system packages, a virtual environment
# and the Python extras asked for. Safe to re-run: finished work is skipped.
#   scripts/setup.sh app     what the desktop app needs (GUI + on-device model runtime)
#   scripts/setup.sh dev     everything, including test tools, model export, the eval harness and MiniWoB++
set -euo pipefail
profile="${1:-app}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "setup: need root (or sudo) to install system packages: $*" >&2; exit 1; fi; }

# System packages: X libraries Qt and pyautogui load, Xvfb/xdotool/xclip for tests and typing,
# Chromium for the evaluation harness; tesseract (with its English, German, French and Spanish
# models) reads the label under a click for the confirmation gate.
apt_packages=(python3-venv python3-dev xvfb xdotool xclip x11-utils x11-xserver-utils libxkbcommon-x11-0 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-image0
  libxcb-render-util0 libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa)
# dev: also a D-Bus session, the AT-SPI bus and a GTK window (system PyGObject) for the
# screen-label reader's accessibility tests.
if [ "$profile" = dev ]; then apt_packages+=(chromium chromium-driver dbus at-spi2-core python3-gi
  gir1.2-gtk-3.0); fi
if command -v apt-get >/dev/null; then
  missing=()
  for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not a Debian/Ubuntu system; install Xvfb, xdotool and xclip yourself" >&2
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      python="$candidate"; break
    fi
  done
fi
[ -n "$python" ] || { echo "setup: Python 3.11 or newer is required" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv

case "$profile" in
  app) extras="gui,onnx" ;;
  dev) extras="dev" ;;
  *) echo "setup: unknown profile '$profile' (app or dev)" >&2; exit 2 ;;
esac
stamp=".venv/.deskhand-$profile-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages (deskhand[$extras])"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first and pinned, so nothing later pulls a newer multi-gigabyte build.
  if [ "$profile" = dev ]; then .venv/bin/python -m pip install -q "torch==2.13.0"; fi
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
# python-xlib refuses to connect to an X server without an authority file, even an empty one.
[ -f "$HOME/.Xauthority" ] || touch "$HOME/.Xauthority"
