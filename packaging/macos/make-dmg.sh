#!/usr/bin/env bash
# macOS: Deskhand.app (from PyInstaller) -> dist/Deskhand-<version>.dmg with an Applications link.
#   packaging/macos/make-dmg.sh APP OUT_DIR      (scripts/build-package.sh macos runs it)
# Unsigned: to notarize, sign first (codesign --deep --options runtime -s "Developer ID ..." APP).
set -euo pipefail
app="$1"; out="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(python3 "$root/packaging/build_support.py" version)"
[ -d "$app" ] || { echo "make-dmg: $app is missing" >&2; exit 1; }
plutil -lint "$app/Contents/Info.plist"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
mkdir -p "$out"
dmg="$out/Deskhand-$version.dmg"
rm -f "$dmg"
hdiutil create -volname "Deskhand $version" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
echo "make-dmg: $dmg"
