#!/usr/bin/env bash
# Runs the README's test command several times in a row while another process keeps one core busy:
# the suite must pass every time on a busy machine. Usage: tests/under-load.sh [runs] (default 3).
# Exits non-zero at the first failing run; the busy loop (started here, ended by its PID) never
# outlives the script.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo test --no-run --quiet
sh -c 'while :; do :; done' &
busy=$!
trap 'kill "$busy" 2>/dev/null || true' EXIT
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    if cargo test --quiet >"target/under-load-$i.log" 2>&1; then
        echo "run $i/$runs: passed in $(($(date +%s) - start)) s (one core busy)"
    else
        echo "run $i/$runs: FAILED after $(($(date +%s) - start)) s; log: target/under-load-$i.log"
        grep -E "panicked|FAILED|failed" "target/under-load-$i.log" | head -20
        exit 1
    fi
done
