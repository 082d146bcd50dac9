#!/usr/bin/env bash
# Windows (Git Bash): the Inno Setup installer from the PyInstaller folder.
#   packaging/windows/build-installer.sh BUNDLE_DIR OUT_DIR    (scripts/build-package.sh windows)
# Needs Inno Setup 6 (winget install JRSoftware.InnoSetup); ISCC may also be given in $ISCC.
set -euo pipefail
bundle="$1"; out="$2"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
iscc="${ISCC:-}"
if [ -z "$iscc" ]; then
  for candidate in iscc ISCC.exe "/c/Program Files (x86)/Inno Setup 6/ISCC.exe" \
                   "$LOCALAPPDATA/Programs/Inno Setup 6/ISCC.exe"; do
    if command -v "$candidate" >/dev/null 2>&1; then iscc="$candidate"; break; fi
  done
fi
[ -n "$iscc" ] || { echo "build-installer: Inno Setup's ISCC is missing (winget install JRSoftware.InnoSetup)" >&2; exit 1; }
version="$(python "$root/packaging/build_support.py" version)"
mkdir -p "$out"
"$iscc" /Qp "/DAppVersion=$version" "/DSourceDir=$(cygpath -w "$root/$bundle" 2>/dev/null || echo "$bundle")" \
  "/DOutputDir=$(cygpath -w "$root/$out" 2>/dev/null || echo "$out")" "$(cygpath -w "$here/deskhand.iss" 2>/dev/null || echo "$here/deskhand.iss")"
echo "build-installer: $out/Deskhand-$version-setup.exe"
