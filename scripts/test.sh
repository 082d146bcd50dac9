#!/usr/bin/env bash
# Set up everything the tests need, then run the whole test suite (extra args go to pytest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh" dev
cd "$root"
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest's 5 means "no tests ran": that is a failure here, never a pass.
[ "$status" -eq 5 ] && echo "test: no tests were collected" >&2
exit "$status"
