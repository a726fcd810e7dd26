#!/usr/bin/env bash
# Chaos run on loopback: 10 btorrent peers (one starts as the only seed), a libtorrent and an aria2c
# leecher, a liar (answers every request with garbage), a squatter (60 idle connections to every
# btorrent peer) and a rotting disk (one byte of the seed's file flipped, its mtime restored), while
# btorrent peers are killed with SIGKILL and restarted at random for CHAOS_SECS seconds. Then the chaos
# stops and every copy must become complete and identical to the source, and no btorrent process may
# have died on its own. Prints what happened; exits non-zero if any of that fails.
#
#   benches/chaos.sh [SIZE_MB]     env: CHAOS_SECS (default 300), BENCH_DIR (default /tmp/btorrent-chaos)
# Needs: python3-libtorrent, aria2. Not a test: it takes minutes. Every process it starts is killed
# by PID on exit; each peer listens on its own 127.0.0.x address.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/benches/lib.sh"
need chaos.sh aria2c /usr/bin/python3 python3 sha1sum
SIZE_MB="${1:-64}"
SECS="${CHAOS_SECS:-300}"
WORK="${BENCH_DIR:-/tmp/btorrent-chaos}"
PEERS=10
TPORT=$((20000 + RANDOM % 20000))
PBASE=$((TPORT + 100))
URL="http://127.0.0.1:$TPORT/announce"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "building btorrent (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin btorrent)
BT="$ROOT/target/release/btorrent"

random_file "$WORK/src/chaos-$SIZE_MB.bin" $((SIZE_MB << 20))
rm -rf "$WORK/run"
mkdir -p "$WORK/run"
DATA="$WORK/run/chaos.bin"
cp "$WORK/src/chaos-$SIZE_MB.bin" "$DATA"
REF=$(sha1sum < "$DATA" | cut -d' ' -f1)
TOR="$WORK/run/chaos.torrent"

"$BT" tracker --bind "127.0.0.1:$TPORT" > "$WORK/run/tracker.log" 2>&1 &
PIDS+=($!)

# Peer i: its own folder, torrents.toml and loopback address.
for i in $(seq 0 $((PEERS - 1))); do
    mkdir -p "$WORK/run/p$i/out"
    cat > "$WORK/run/p$i/torrents.toml" <<EOF
[settings]
tracker_url = "$URL"
listen_ip = "127.0.0.$((10 + i))"
listen_port = $((PBASE + i))
output_dir = "out"
EOF
done
"$BT" -c "$WORK/run/p0/torrents.toml" create "$DATA" "$URL" -o "$TOR" > /dev/null
mv "$DATA" "$WORK/run/p0/out/chaos.bin"

declare -A PID_OF
start_peer() {
    local i=$1 cfg="$WORK/run/p$1/torrents.toml"
    if [ "$i" = 0 ]; then
        "$BT" -c "$cfg" seed "$TOR" -d "$WORK/run/p0/out" >> "$WORK/run/p0/log" 2>&1 &
    else
        "$BT" -c "$cfg" start "$TOR" -o "$WORK/run/p$i/out" --seed >> "$WORK/run/p$i/log" 2>&1 &
    fi
    PID_OF[$i]=$!
    PIDS+=($!)
}
for i in $(seq 0 $((PEERS - 1))); do start_peer "$i"; done

/usr/bin/python3 "$ROOT/benches/fleet_lt.py" leech "$TOR" "$WORK/run/lt" --port $((PBASE + 50)) \
    --ip 127.0.0.30 --timeout $((SECS + 600)) > "$WORK/run/lt.log" 2>&1 &
LT=$!
PIDS+=($LT)
aria2c --dir="$WORK/run/aria2" --seed-time=0 --listen-port=$((PBASE + 51)) --enable-dht=false \
    --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none \
    --disable-ipv6=true --interface=127.0.0.31 --summary-interval=0 --console-log-level=warn \
    --bt-tracker-connect-timeout=5 --bt-tracker-timeout=5 --bt-stop-timeout=$((SECS + 600)) \
    "$TOR" > "$WORK/run/aria2.log" 2>&1 &
ARIA=$!
PIDS+=($ARIA)
python3 "$ROOT/benches/chaos_peers.py" liar "$TOR" "$URL" 127.0.0.40 $((PBASE + 60)) $((SECS + 600)) \
    > "$WORK/run/liar.log" 2>&1 &
PIDS+=($!)
TARGETS=()
for i in $(seq 0 $((PEERS - 1))); do TARGETS+=("127.0.0.$((10 + i)):$((PBASE + i))"); done
python3 "$ROOT/benches/chaos_peers.py" squat "$TOR" 127.0.0.41 "$SECS" "${TARGETS[@]}" \
    > "$WORK/run/squat.log" 2>&1 &
PIDS+=($!)

# died_on_its_own: restarts any btorrent peer that exited without being killed here, and counts it.
DIED=0
died_on_its_own() {
    local i
    for i in $(seq 0 $((PEERS - 1))); do
        if ! kill -0 "${PID_OF[$i]}" 2>/dev/null; then
            wait "${PID_OF[$i]}" 2>/dev/null && rc=0 || rc=$?
            echo "peer $i exited on its own (status $rc); last lines of its log:"
            tail -n 5 "$WORK/run/p$i/log"
            DIED=$((DIED + 1))
            start_peer "$i"
        fi
    done
}

echo "chaos for $SECS s: $PEERS btorrent peers, libtorrent, aria2c, a liar, a squatter, a rotting disk"
START=$SECONDS
KILLS=0
ROTTED=0
while [ $((SECONDS - START)) -lt "$SECS" ]; do
    sleep $((3 + RANDOM % 8))
    died_on_its_own
    i=$((1 + RANDOM % (PEERS - 1)))
    kill -9 "${PID_OF[$i]}" 2>/dev/null || true
    wait "${PID_OF[$i]}" 2>/dev/null || true
    KILLS=$((KILLS + 1))
    sleep $((RANDOM % 3))
    start_peer "$i"
    if [ "$ROTTED" = 0 ] && [ $((SECONDS - START)) -ge $((SECS / 3)) ]; then
        # The seed's disk rots: one byte flipped, the file's times kept.
        f="$WORK/run/p0/out/chaos.bin"
        at=$(( (RANDOM * 32768 + RANDOM) % (SIZE_MB << 20) ))
        python3 - "$f" "$at" <<'PY'
import os, sys
path, at = sys.argv[1], int(sys.argv[2])
st = os.stat(path)
with open(path, "r+b") as fh:
    fh.seek(at); b = fh.read(1); fh.seek(at); fh.write(bytes([b[0] ^ 0xFF]))
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
        echo "rotted one byte of the seed's copy at offset $at"
        ROTTED=1
    fi
done
died_on_its_own

echo "chaos over after $KILLS kills; waiting (at most 300 s) for every copy to be complete"
copies=()
for i in $(seq 1 $((PEERS - 1))); do copies+=("$WORK/run/p$i/out/chaos.bin"); done
copies+=("$WORK/run/lt/chaos.bin" "$WORK/run/aria2/chaos.bin")
END=$((SECONDS + 300))
declare -A DONE_AT=()
while [ $SECONDS -lt $END ] && [ ${#DONE_AT[@]} -lt ${#copies[@]} ]; do
    for c in "${copies[@]}"; do
        [ -n "${DONE_AT[$c]:-}" ] && continue
        if [ -f "$c" ] && [ "$(sha1sum < "$c" | cut -d' ' -f1)" = "$REF" ]; then
            DONE_AT[$c]=$((SECONDS - START))
        fi
    done
    died_on_its_own
    sleep 5
done

FAIL=0
printf '%-40s %s\n' copy "identical to the source"
for c in "${copies[@]}"; do
    if [ -n "${DONE_AT[$c]:-}" ]; then
        printf '%-40s yes (at %s s)\n' "${c#"$WORK/run/"}" "${DONE_AT[$c]}"
    else
        printf '%-40s NO\n' "${c#"$WORK/run/"}"
        FAIL=1
    fi
done
seed_ok=no
[ "$(sha1sum < "$WORK/run/p0/out/chaos.bin" | cut -d' ' -f1)" = "$REF" ] && seed_ok=yes
echo "the seed's rotted copy repaired: $seed_ok"
echo "kills: $KILLS; btorrent processes that died on their own: $DIED"
echo "bans of the liar (127.0.0.40) in the btorrent logs: $(cat "$WORK/run"/p*/log | grep -c '127.0.0.40' || true)"
[ "$DIED" = 0 ] || FAIL=1
exit $FAIL
