#!/usr/bin/env bash
# Fuzz every latch decoder that reads attacker input, each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]        (default 60)
#   FUZZ_TARGETS="session_id cookie_header" scripts/fuzz.sh 30   (a subset)
#
# Installs cargo-fuzz if it is missing, builds every target once (release,
# AddressSanitizer, debug assertions), then runs each target with
# -max_total_time. Corpora grow in fuzz/corpus/<target>/ (only the seed-* files
# there are in git); fuzz/regressions/<target>/ is read as a second corpus. A
# crash input is copied to fuzz/regressions/<target>/, where the
# `fuzz_regressions` test of crates/latch-chaos replays it from then on:
# commit it with the fix. Exits non-zero when any target crashed.
#
# cargo-fuzz needs rustc's -Z flags (sanitizers); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz =="
    cargo install cargo-fuzz --locked
fi

all_targets="$(cargo fuzz list --fuzz-dir fuzz)"
targets="${FUZZ_TARGETS:-$all_targets}"

echo "== building fuzz targets =="
cargo fuzz build --fuzz-dir fuzz

mkdir -p fuzz/logs
failed=()
summary=()
for target in $targets; do
    if ! grep -qx "$target" <<<"$all_targets"; then
        echo "unknown fuzz target: $target (known: $(echo $all_targets))" >&2
        exit 2
    fi
    corpus="fuzz/corpus/$target"
    regressions="fuzz/regressions/$target"
    mkdir -p "$corpus" "$regressions" "fuzz/artifacts/$target"
    log="fuzz/logs/$target.log"
    echo "== fuzzing $target for ${secs}s =="
    status=0
    cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" "$regressions" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    size="$(find "$corpus" -type f | wc -l)"
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        crashes=0
        for artifact in "fuzz/artifacts/$target"/*; do
            [[ -f "$artifact" ]] || continue
            cp "$artifact" "$regressions/"
            echo "  kept $regressions/$(basename "$artifact")"
            crashes=$((crashes + 1))
        done
        tail -40 "$log"
        summary+=("$target: FAILED (exit $status), ${execs:-?} execs, $crashes input(s) kept in $regressions/")
    else
        summary+=("$target: ok, ${execs:-?} execs in ${secs}s, corpus $size files")
    fi
    echo "  ${summary[-1]}"
done

echo
echo "== fuzz summary (${secs}s per target; logs in fuzz/logs/) =="
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "crashed: ${failed[*]}: replay with cargo test -p latch-chaos --test fuzz_regressions" >&2
    exit 1
fi
