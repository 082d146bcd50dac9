#!/usr/bin/env bash
# Set up what the desktop app needs, then open it (extra args go to `deskhand`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh" app
exec "$root/.venv/bin/deskhand" "$@"
