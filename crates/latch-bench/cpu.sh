#!/usr/bin/env bash
# In-process CPU time per request of one configuration, on the real CPU (SHA
# and AES instructions included, unlike callgrind), from `perf stat`'s
# task-clock: runs of 550,000 and 50,000 requests, their difference over
# 500,000 so start-up cancels out, best of REPS (3) runs.
#
#   CARGO_TARGET_DIR=... bash crates/latch-bench/cpu.sh CONFIG MODE [REPS]
#   e.g. bash crates/latch-bench/cpu.sh latch-encrypted new
#
# Needs `perf` (Debian: linux-perf) and a release build of latch-bench.
set -euo pipefail
config=$1 mode=$2 reps=${3:-3}
bin=${CARGO_TARGET_DIR:-target}/release/latch-bench
[ -x "$bin" ] || { echo "build first: cargo build --release -p latch-bench" >&2; exit 1; }
msec() {
  perf stat -x, -e task-clock "$bin" inproc --config "$config" --mode "$mode" \
    --requests "$1" 2>&1 >/dev/null | tail -1 | cut -d, -f1
}
best=
for _ in $(seq "$reps"); do
  small=$(msec 50000)
  large=$(msec 550000)
  us=$(awk -v a="$small" -v b="$large" 'BEGIN { printf "%.2f", (b - a) / 500 }')
  if [ -z "$best" ] || awk -v x="$us" -v y="$best" 'BEGIN { exit !(x < y) }'; then best=$us; fi
done
printf '%s %s: %s µs of CPU per request\n' "$config" "$mode" "$best"
