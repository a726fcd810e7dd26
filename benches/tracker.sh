#!/usr/bin/env bash
# Tracker benchmark: btorrent's tracker against opentracker on this machine, in one run.
#
# 1. Throughput: wrk drives /announce (random peers in one swarm, 50 compact peers per reply) for
#    DURATION seconds against each tracker, ROUNDS times alternating; prints requests/s and the ratio.
# 2. Memory: a fresh tracker is filled with SWARMS x PEERS peers (default 10,000 x 10 = 100,000) and
#    its peak RSS (VmHWM) is read from /proc; opentracker gets the same load for comparison.
#
# Usage: benches/tracker.sh    env: DURATION (10) ROUNDS (2) THREADS (2) CONNS (50) SWARMS PEERS
# Needs: wrk, opentracker, python3, curl. Everything listens on 127.0.0.1 only; every process started
# here is stopped by its PID on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-50}"
SWARMS="${SWARMS:-10000}"
PEERS="${PEERS:-10}"
for tool in wrk opentracker python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

WORK="$(mktemp -d /tmp/btorrent-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release --quiet --bin btorrent)
BIN="$ROOT/target/release/btorrent"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null -m 1 "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }
peak_rss_kib() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }

# Starts btorrent's tracker; sets OURS_PID and OURS_URL.
start_ours() {
  local port; port=$(free_port)
  "$BIN" tracker --bind "127.0.0.1:$port" 2>"$WORK/ours.log" &
  OURS_PID=$!; PIDS+=("$OURS_PID"); OURS_URL="http://127.0.0.1:$port"
  wait_http "$OURS_URL/stats"
}

# Starts opentracker (whitelist-only in Debian) allowing the hashes in $1; sets OT_PID and OT_URL.
start_opentracker() {
  local dir="$WORK/ot.$RANDOM" port; port=$(free_port)
  mkdir -p "$dir"; chmod 755 "$dir"   # it chroots here and drops to nobody when run as root
  cp "$1" "$dir/whitelist.txt"; chmod 644 "$dir/whitelist.txt"
  printf 'access.whitelist /whitelist.txt\naccess.stats 127.0.0.1\n' >"$dir/opentracker.conf"
  opentracker -f "$dir/opentracker.conf" -i 127.0.0.1 -p "$port" -P "$port" -d "$dir" >"$dir/log" 2>&1 &
  OT_PID=$!; PIDS+=("$OT_PID"); OT_URL="http://127.0.0.1:$port"
  wait_http "$OT_URL/stats"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

rps() { # url -> requests/s of one wrk run
  IH="$IH" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$HERE/wrk-announce.lua" "$1" >"$WORK/wrk.out"
  awk '/Requests\/sec/{print $2}' "$WORK/wrk.out"
}

echo "== announce throughput: wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds (load: $(cut -d' ' -f1-3 /proc/loadavg))"
IH_HEX=0102030405060708090a0b0c0d0e0f1011121314
IH=$(python3 -c "import sys; print(''.join('%%%02X' % b for b in bytes.fromhex(sys.argv[1])))" "$IH_HEX")
echo "$IH_HEX" >"$WORK/one.txt"
start_ours
start_opentracker "$WORK/one.txt"
best_ours=0; best_ot=0
for r in $(seq "$ROUNDS"); do
  o=$(rps "$OURS_URL"); t=$(rps "$OT_URL")
  printf 'round %d: btorrent %10.0f req/s   opentracker %10.0f req/s\n' "$r" "$o" "$t"
  best_ours=$(python3 -c "print(max($best_ours, $o))"); best_ot=$(python3 -c "print(max($best_ot, $t))")
done
ours_peers=$(curl -s "$OURS_URL/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"])')
ours_rss=$(peak_rss_kib "$OURS_PID"); ot_rss=$(peak_rss_kib "$OT_PID")
stop "$OURS_PID"; stop "$OT_PID"
printf 'best:    btorrent %10.0f req/s   opentracker %10.0f req/s   ratio %.2fx (target >= 2x)\n' \
  "$best_ours" "$best_ot" "$(python3 -c "print($best_ours / $best_ot)")"
echo "         (btorrent ended holding $ours_peers peers in the swarm; peak RSS btorrent $((ours_rss / 1024)) MiB, opentracker $((ot_rss / 1024)) MiB)"

echo "== memory: $((SWARMS * PEERS)) peers in $SWARMS swarms"
python3 -c "
for n in range($SWARMS): print('ab' * 16 + '%08x' % n)" >"$WORK/fill.txt"
fill() { # url -> runs wrk until every peer has announced at least once
  SWARMS="$SWARMS" PEERS="$PEERS" wrk -t1 -c20 -d"$1" -s "$HERE/wrk-fill.lua" "$2" >"$WORK/fill.out"
  awk '/requests in/{print $1}' "$WORK/fill.out"
}
start_ours
for secs in 5 10 20; do
  sent=$(fill "${secs}s" "$OURS_URL")
  held=$(curl -s "$OURS_URL/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["peers"], s["swarms"])')
  [ "$held" = "$((SWARMS * PEERS)) $SWARMS" ] && break
done
ours_rss=$(peak_rss_kib "$OURS_PID")
printf 'btorrent:    %s peers in %s swarms after %s announces, peak RSS %.1f MiB (target < 100 MiB)\n' \
  ${held} "$sent" "$(python3 -c "print($ours_rss / 1024)")"
stop "$OURS_PID"
start_opentracker "$WORK/fill.txt"
for secs in 10 20 30; do
  sent=$(fill "${secs}s" "$OT_URL")
  ot_held=$(curl -s "$OT_URL/stats?mode=peer" | head -1)
  [ "$ot_held" = "$((SWARMS * PEERS))" ] && break
done
ot_rss=$(peak_rss_kib "$OT_PID")
printf 'opentracker: %s peers after %s announces, peak RSS %.1f MiB\n' "$ot_held" "$sent" "$(python3 -c "print($ot_rss / 1024)")"
stop "$OT_PID"
