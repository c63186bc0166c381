#!/usr/bin/env bash
# Create (or reuse) the virtualenv with the pinned Flask stack the latch-flask
# tests run against, and print its python. Idempotent: the requirements are
# installed again only when requirements.txt changed. The tests run this
# themselves when LATCH_FLASK_PYTHON is unset; to pick the interpreter yourself:
#
#   export LATCH_FLASK_PYTHON="$(bash crates/latch-flask/scripts/venv.sh [PATH])"
#
# PATH defaults to target/flask-venv under the workspace root; PYTHON (default
# python3) is the interpreter that creates it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${1:-$root/target/flask-venv}"
req="$here/../tests/python/requirements.txt"
python="${PYTHON:-python3}"

# Callers at the same time (test binaries, two cargo runs sharing target/) wait
# for each other instead of building the same virtualenv at once. Without the
# flock command (macOS) there is no lock.
mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null; then
  exec 9>"$venv.lock"
  flock 9
fi

# pip, not python: a venv whose ensurepip failed has python alone, and making
# it again over the top repairs it.
if [ ! -x "$venv/bin/pip" ]; then
  "$python" -m venv "$venv" >&2
fi
stamp="$venv/.latch-requirements"
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  cp "$req" "$stamp"
fi
echo "$venv/bin/python"
