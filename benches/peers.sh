#!/usr/bin/env bash
# One torrent, many peers: a btorrent leecher downloads a file from K synthetic peers
# (benches/helpers/synthetic_peers.rs, 200 by default) on loopback addresses of their own
# (127.0.1.1 ...), each holding a random share of the pieces that grows during the run (`have`s),
# JOINERS of them joining late by dialing the leecher and LEAVERS leaving. Prints, per build, the
# wall time, throughput, the leecher's CPU seconds (user/sys), the most peers it was connected to and,
# with perf, the share of the leecher's CPU samples spent in the piece picker
# (btorrent_engine::picker::), the choker (choker::) and the lock slow paths (parking_lot).
#
#   benches/peers.sh
#   env: K (200), JOINERS (20), LEAVERS (20), SIZE_MIB (1024), PIECE_KIB (64),
#        BENCH_DIR (/tmp/btorrent-peers), TIMEOUT (300 s per run), PERF (1; 0 = no perf),
#        KEEP (set: keep the run folder, with the logs and perf data),
#        BT (a btorrent binary to measure; default: this tree's release build),
#        BASELINE (another btorrent binary, e.g. an older build, measured first in the same run)
#
# Loopback only, no tracker (the leecher is given the peers' addresses), the DHT off. Not a test:
# figures depend on the machine. Every process it starts is stopped by PID on exit (trap), every
# wait is bounded, and its folder is removed at the end (the data file is kept for the next run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/benches/lib.sh"
need "benches/peers.sh" python3

K="${K:-200}"
JOINERS="${JOINERS:-20}"
LEAVERS="${LEAVERS:-20}"
SIZE_MIB="${SIZE_MIB:-1024}"
PIECE_KIB="${PIECE_KIB:-64}"
WORK="${BENCH_DIR:-/tmp/btorrent-peers}"
TIMEOUT="${TIMEOUT:-300}"
PERF="${PERF:-1}"
command -v perf >/dev/null || PERF=0
(cd "$ROOT" && cargo build --release --quiet --example synthetic_peers)
SYN="$ROOT/target/release/examples/synthetic_peers"
if [ -z "${BT:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin btorrent)
    BT="$ROOT/target/release/btorrent"
fi

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK/run"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

DATA="$WORK/data/peers.bin"
random_file "$DATA" $((SIZE_MIB << 20))
rm -rf "$WORK/run"
mkdir -p "$WORK/run"
TOR="$WORK/run/peers.torrent"
printf '[settings]\ndht = false\n' > "$WORK/run/create.toml"
"$BT" -c "$WORK/run/create.toml" create "$DATA" --no-tracker --piece-length $((PIECE_KIB << 10)) \
    -o "$TOR" >/dev/null

# share PERF_DATA PATTERN: the share (%) of the samples whose own symbol matches PATTERN.
share() {
    perf report -i "$1" --no-children --sort symbol --stdio 2>/dev/null |
        awk -v pat="$2" '$1 ~ /%$/ && $0 ~ pat { s += $1 } END { printf "%.1f", s + 0 }'
}

# run BIN LABEL: one download; prints "LABEL secs user sys max_peers picker choker lock".
run() {
    local bin=$1 label=$2 dir port syn timer leech="" perfpid="" t0 t1 ok=1 ut=0 st=0 peers
    dir="$WORK/run/$label"
    rm -rf "$dir"
    mkdir -p "$dir/out"
    port=$(free_port)
    printf '[settings]\nlisten_ip = "127.0.0.1"\nlisten_port = %s\ndht = false\nmax_peers = %s\n' \
        "$port" $((K + JOINERS + 10)) > "$dir/torrents.toml"
    "$SYN" --torrent "$TOR" --data "$DATA" --peers "$K" --joiners "$JOINERS" --leavers "$LEAVERS" \
        --target "127.0.0.1:$port" --addrs "$dir/addrs" --seed 7 > "$dir/swarm.log" 2>&1 &
    syn=$!
    PIDS+=("$syn")
    for _ in $(seq 300); do grep -qs READY "$dir/swarm.log" && break; sleep 0.1; done
    grep -qs READY "$dir/swarm.log" || { echo "$label: the synthetic peers did not start" >&2; cat "$dir/swarm.log" >&2; exit 1; }
    mapfile -t addrs < "$dir/addrs"
    t0=$(date +%s.%N)
    # /usr/bin/time reports the leecher's CPU (all its threads) when it ends; perf follows the leecher.
    /usr/bin/time -o "$dir/time" -f "%U %S" \
        "$bin" -c "$dir/torrents.toml" run "$ROOT/benches/peers-leech.rhai" "$TOR" "$dir/out" "${addrs[@]}" \
        > "$dir/leech.log" 2>&1 &
    timer=$!
    PIDS+=("$timer")
    for _ in $(seq 100); do leech=$(pgrep -P "$timer" || true); [ -z "$leech" ] || break; sleep 0.05; done
    PIDS+=("$leech")
    if [ "$PERF" = 1 ]; then
        # Attached once the leecher runs the binary with its runtime's threads started (perf follows
        # the threads there when it attaches).
        for _ in $(seq 100); do
            [ "$(readlink "/proc/$leech/exe" 2>/dev/null)" = "$(readlink -f "$bin")" ] &&
                [ "$(awk '$1 == "Threads:" { print $2 }' "/proc/$leech/status" 2>/dev/null || echo 0)" -gt 2 ] && break
            sleep 0.02
        done
        perf record -q -g -F 2999 -p "$leech" -o "$dir/perf.data" > "$dir/perf.log" 2>&1 &
        perfpid=$!
        PIDS+=("$perfpid")
    fi
    # Bounded: past TIMEOUT the leecher is stopped and the run counts as failed.
    while kill -0 "$timer" 2>/dev/null; do
        if python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 > $TIMEOUT else 1)"; then
            echo "$label: not done after $TIMEOUT s (log: $dir/leech.log)" >&2
            kill "$leech" 2>/dev/null || true
            ok=0
        fi
        sleep 0.2
    done
    wait "$timer" || ok=0
    t1=$(date +%s.%N)
    [ -z "$perfpid" ] || wait "$perfpid" 2>/dev/null || true
    kill "$syn" 2>/dev/null || true
    wait "$syn" 2>/dev/null || true
    peers=$(tail -n 1 "$dir/swarm.log" | grep -o 'max_connected=[0-9]*' | cut -d= -f2)
    cmp -s "$DATA" "$dir/out/$(basename "$DATA")" || { echo "$label: the copy differs" >&2; ok=0; }
    [ "$ok" = 1 ] || { echo "$label: failed (log: $dir/leech.log)" >&2; cat "$dir/leech.log" >&2; }
    local pk=- ch=- lk=-
    if [ -n "$perfpid" ] && [ -s "$dir/perf.data" ]; then
        pk=$(share "$dir/perf.data" 'picker::')
        ch=$(share "$dir/perf.data" 'choker::')
        lk=$(share "$dir/perf.data" 'parking_lot|lock_slow')
    fi
    read -r ut st < <(tail -n 1 "$dir/time" 2>/dev/null || echo "0 0")
    python3 -c "print('$label', f'{$t1 - $t0:.2f}', '$ut', '$st', '${peers:-0}', '$pk', '$ch', '$lk', '$ok')"
}

RESULTS=()
if [ -n "${BASELINE:-}" ]; then
    RESULTS+=("$(run "$BASELINE" before)")
fi
RESULTS+=("$(run "$BT" after)")

echo
echo "$SIZE_MIB MiB in $PIECE_KIB KiB pieces from $K synthetic peers (+$JOINERS joining, $LEAVERS leaving), $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| build | wall time | throughput | leecher CPU user / sys | peers connected (most) | CPU samples in picker / choker / lock slow paths |"
echo "| --- | --- | --- | --- | --- | --- |"
for r in "${RESULTS[@]}"; do
    set -- $r
    [ "$9" = 1 ] || { echo "| $1 | failed | | | | |"; continue; }
    printf '| %s | %s s | %s MiB/s | %s s / %s s | %s | %s%% / %s%% / %s%% |\n' "$1" "$2" \
        "$(python3 -c "print(f'{$SIZE_MIB / $2:.0f}')")" "$3" "$4" "$5" "$6" "$7" "$8"
done
