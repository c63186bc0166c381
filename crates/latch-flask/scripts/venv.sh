#!/usr/bin/env bash
# Create (or reuse) the virtualenv with the pinned Flask stack the latch-flask
# tests run against, and print its python. Idempotent: the requirements are
# installed again only when requirements.txt changed.
#
#   export LATCH_FLASK_PYTHON="$(bash crates/latch-flask/scripts/venv.sh [PATH])"
#
# PATH defaults to target/flask-venv under the workspace root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${1:-$root/target/flask-venv}"
req="$here/../tests/python/requirements.txt"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" >&2
fi
stamp="$venv/.latch-requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
