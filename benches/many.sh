#!/usr/bin/env bash
# One daemon with many small complete torrents: N files of a few KiB (1,000 by default), each made
# into a torrent by btorrent itself and registered in one torrents.toml whose embedded tracker
# (tracker_bind) they all announce to. `btorrent daemon` is started, stopped (SIGTERM) and started
# again; the script prints for each start the time until the tracker's /stats counts N seeders, the
# peak RSS (VmHWM) and the thread count (Threads) of /proc/PID/status, read once every torrent
# seeds (and 3 s of idle seeding), the most threads seen while they started, and the CPU the idle
# daemon uses (the 5 s after those 3 s, as a share of one core).
#
#   benches/many.sh
#   env: N (1000), FILE_KIB (4), BENCH_DIR (/tmp/btorrent-many), TIMEOUT (60 s per start),
#        BT (a btorrent binary to measure; default: this tree's release build),
#        BASELINE (another btorrent binary, e.g. an older build, measured first in the same run)
#
# Loopback only (127.0.0.1, the tracker on a free port), the DHT off. Not a test: figures depend on the
# machine. The daemons it starts are stopped on exit (trap), and every wait is bounded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/benches/lib.sh"
need "benches/many.sh" curl python3

N="${N:-1000}"
FILE_KIB="${FILE_KIB:-4}"
WORK="${BENCH_DIR:-/tmp/btorrent-many}"
TIMEOUT="${TIMEOUT:-60}"
if [ -z "${BT:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin btorrent)
    BT="$ROOT/target/release/btorrent"
fi
DAEMON=""
cleanup() { [ -z "$DAEMON" ] || kill "$DAEMON" 2>/dev/null || true; }
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# setup DIR BIN: N data files and their torrents, registered in DIR/torrents.toml.
setup() {
    local dir=$1 bin=$2 port
    rm -rf "$dir"
    mkdir -p "$dir/data"
    port=$(free_port)
    cat > "$dir/torrents.toml" <<EOF
[settings]
tracker_bind = "127.0.0.1:$port"
tracker_url = "http://127.0.0.1:$port/announce"
listen_ip = "127.0.0.1"
listen_port = 0
dht = false
EOF
    python3 - "$dir/data" "$N" "$FILE_KIB" <<'PY'
import os, sys
d, n, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    with open(os.path.join(d, f"f{i:05}"), "wb") as f:
        f.write(os.urandom(kib * 1024))
PY
    cat > "$dir/make.rhai" <<'EOF'
// Makes a torrent of every file in the folder args[0] and registers it (seeding from that folder).
let n = parse_int(args[1]);
for i in 0..n {
    let name = `f${if i < 10 { "0000" } else if i < 100 { "000" } else if i < 1000 { "00" } else if i < 10000 { "0" } else { "" }}${i}`;
    let t = create(`${args[0]}/${name}`, settings().tracker_url, #{ output: `${args[0]}/../torrents/${name}.torrent` });
    register(t, #{ origin: "created", state: "seeding" });
}
EOF
    "$bin" -c "$dir/torrents.toml" run "$dir/make.rhai" "$dir/data" "$N" >/dev/null
}

seeders() {
    curl -s --max-time 2 "http://$1/stats" | grep -o '"seeders":[0-9]*' | cut -d: -f2 || true
}

status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# start DIR BIN LABEL: starts the daemon, waits until the tracker counts N seeders, prints a result line
# "LABEL seconds hwm_kib threads max_threads idle_cpu_percent", stops it.
start() {
    local dir=$1 bin=$2 label=$3 addr t0 now secs=timeout n max_threads=0 th hwm threads c0 c1 idle
    addr=$(sed -n 's/^tracker_bind = "\(.*\)"/\1/p' "$dir/torrents.toml")
    t0=$(date +%s.%N)
    "$bin" -c "$dir/torrents.toml" daemon > "$dir/daemon-$label.log" 2>&1 &
    DAEMON=$!
    while :; do
        now=$(date +%s.%N)
        th=$(status_field "$DAEMON" Threads)
        [ -n "$th" ] && [ "$th" -gt "$max_threads" ] && max_threads=$th
        n=$(seeders "$addr")
        if [ "${n:-0}" -ge "$N" ]; then
            secs=$(python3 -c "print(f'{$now - $t0:.2f}')")
            break
        fi
        if python3 -c "import sys; sys.exit(0 if $now - $t0 > $TIMEOUT else 1)"; then
            echo "$label: only ${n:-0} of $N seeders after $TIMEOUT s (log: $dir/daemon-$label.log)" >&2
            break
        fi
        sleep 0.05
    done
    # A moment of idle seeding, so the figures are those of the running daemon, not of its start.
    sleep 3
    c0=$(cpu_ticks "$DAEMON")
    sleep 5
    c1=$(cpu_ticks "$DAEMON")
    idle=$(python3 -c "print(f'{($c1 - $c0) / $(getconf CLK_TCK) / 5 * 100:.1f}')")
    hwm=$(status_field "$DAEMON" VmHWM)
    threads=$(status_field "$DAEMON" Threads)
    [ "$threads" -gt "$max_threads" ] && max_threads=$threads
    kill -TERM "$DAEMON"
    for _ in $(seq 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
    DAEMON=""
    echo "$label $secs $hwm $threads $max_threads $idle"
}

# measure BIN NAME: prints "NAME first restart" result lines.
measure() {
    local bin=$1 name=$2 dir="$WORK/$2"
    echo "making $N torrents of $FILE_KIB KiB with $bin" >&2
    setup "$dir" "$bin"
    start "$dir" "$bin" first
    start "$dir" "$bin" restart
}

RESULTS=()
if [ -n "${BASELINE:-}" ]; then
    mapfile -t lines < <(measure "$BASELINE" before)
    RESULTS+=("before ${lines[*]}")
fi
mapfile -t lines < <(measure "$BT" after)
RESULTS+=("after ${lines[*]}")

echo
echo "$N torrents of $FILE_KIB KiB, one daemon, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| build | all seeding, first start | all seeding, restart | peak RSS (VmHWM), first / restart | threads once seeding (most seen), first / restart | idle CPU, first / restart |"
echo "| --- | --- | --- | --- | --- | --- |"
for r in "${RESULTS[@]}"; do
    # build, then per start: label secs hwm threads max idle
    set -- $r
    printf '| %s | %s s | %s s | %d / %d MiB | %s (%s) / %s (%s) | %s%% / %s%% of a core |\n' \
        "$1" "$3" "$9" $(($4 / 1024)) $((${10} / 1024)) "$5" "$6" "${11}" "${12}" "$7" "${13}"
done
