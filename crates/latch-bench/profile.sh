#!/usr/bin/env bash
# Instruction counts per request under valgrind's callgrind: N requests through
# each configuration's router in-process (`latch-bench inproc`: no sockets, no
# HTTP parsing, current-thread runtime), measured as the difference between a
# run of N2 and a run of N1 requests so that start-up cost cancels out.
# Writes a Markdown table to stdout and the top functions of each N2 run to
# $OUT/callgrind-CONFIG-MODE.txt.
#
# usage: crates/latch-bench/profile.sh [OUT_DIR]   (after cargo build --release -p latch-bench)
set -euo pipefail
BIN="${CARGO_TARGET_DIR:-target}/release/latch-bench"
OUT="${1:-docs/benchmarks}"
N1=2000
N2=12000
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
CASES="${CASES:-bare:rw bare:none bare-layer:none latch-signed:none latch-memory:rw latch-memory:ro latch-memory:new latch-memory:none latch-signed:rw latch-encrypted:rw latch-encrypted-gcm:rw latch-sqlite:rw latch-redis:rw latch-redis:ro latch-redis-cached:ro ts-memory:rw ts-memory:new ts-redis:rw ts-redis:ro extra-signed:rw floor-signed:rw latch-signed:new extra-signed:new floor-signed:new latch-encrypted:new extra-private:new floor-encrypted:new latch-encrypted-gcm:new floor-encrypted-gcm:new ts-memory:ro latch-signed:ro extra-signed:ro floor-signed:ro latch-encrypted:ro extra-private:ro floor-encrypted:ro floor-memory:rw floor-memory:ro floor-memory:new floor-redis:ro latch-sqlite:ro floor-sqlite:ro latch-redis:new floor-redis:new latch-redis-cached:rw256 floor-redis:rw256}"

total_ir() {
    # The "summary:" line of a callgrind output file is the total instruction count.
    awk '/^summary:/ {print $2}' "$1"
}

echo "| configuration | mode | instructions per request | ratio to bare |"
echo "|---|---|---:|---:|"
bare=""
for case in $CASES; do
    config="${case%%:*}"
    mode="${case##*:}"
    for n in $N1 $N2; do
        valgrind --tool=callgrind --callgrind-out-file="$TMP/$config-$mode-$n.out" \
            "$BIN" inproc --config "$config" --mode "$mode" --requests "$n" >/dev/null 2>&1
    done
    a=$(total_ir "$TMP/$config-$mode-$N1.out")
    b=$(total_ir "$TMP/$config-$mode-$N2.out")
    per=$(( (b - a) / (N2 - N1) ))
    if [ "$config" = bare ]; then bare=$per; fi
    ratio=$(awk -v p="$per" -v b="$bare" 'BEGIN { printf "%.2f", p / b }')
    echo "| $config | $mode | $per | $ratio |"
    callgrind_annotate --inclusive=no "$TMP/$config-$mode-$N2.out" 2>/dev/null \
        | sed -n '1,60p' > "$OUT/callgrind-$config-$mode.txt"
done
