#!/usr/bin/env bash
# Tracker benchmark: btorrent's tracker against opentracker on this machine, in one run.
#
# 1. Throughput: wrk drives /announce (random peers in one swarm, 50 compact peers per reply) for
#    DURATION seconds against each tracker, ROUNDS times alternating; prints requests/s and the ratio.
# 2. UDP (BEP 15): aquatic_udp_load_test drives connects, announces and scrapes (UDP_TORRENTS torrents,
#    UDP_PEERS peers, 30 peers asked per announce) at each tracker's UDP side, which listens on its HTTP
#    port, for UDP_DURATION seconds (at least 5, the generator reports every 5 s), ROUNDS times
#    alternating; prints announce responses/s. Each tracker runs pinned to the same cores
#    (TRACKER_CPUS), the generator to others (LOAD_CPUS). Debian builds opentracker whitelist-only, so
#    a short run against a stand-in (udp-hashes.py) first records the generator's info-hashes for its
#    whitelist. The generator is installed with `cargo install --locked` into BENCH_TOOLS when missing.
# 3. Memory: a fresh tracker is filled with SWARMS x PEERS peers (default 10,000 x 10 = 100,000) and
#    its peak RSS (VmHWM) is read from /proc; opentracker gets the same load for comparison.
# At the end the HTTP and UDP figures are printed side by side.
#
# Usage: benches/tracker.sh    env: DURATION (10) ROUNDS (2) THREADS (2) CONNS (50) SWARMS PEERS
#        UDP (1; 0 skips the UDP part) UDP_DURATION (20) UDP_WORKERS (1) UDP_TORRENTS (10000)
#        UDP_PEERS (100000) TRACKER_CPUS (0) LOAD_CPUS (1..) BENCH_TOOLS (target/bench-tools)
# Needs: wrk, opentracker, python3, curl, taskset (UDP: cargo). Everything listens on 127.0.0.1 only;
# every process started here is stopped by its PID on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-50}"
SWARMS="${SWARMS:-10000}"
PEERS="${PEERS:-10}"
UDP="${UDP:-1}"
UDP_DURATION="${UDP_DURATION:-20}"
UDP_WORKERS="${UDP_WORKERS:-1}"
UDP_TORRENTS="${UDP_TORRENTS:-10000}"
UDP_PEERS="${UDP_PEERS:-100000}"
BENCH_TOOLS="${BENCH_TOOLS:-$ROOT/target/bench-tools}"
NCPU=$(nproc)
TRACKER_CPUS="${TRACKER_CPUS:-0}"
LOAD_CPUS="${LOAD_CPUS:-$([ "$NCPU" -gt 1 ] && echo "1-$((NCPU - 1))" || echo 0)}"
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

# Set to (taskset -c CPUS) to pin the trackers started next.
PIN=()

# Starts btorrent's tracker (HTTP and UDP on one port); sets OURS_PID and OURS_URL.
start_ours() {
  local port; port=$(free_port)
  ${PIN[@]+"${PIN[@]}"} "$BIN" tracker --bind "127.0.0.1:$port" 2>"$WORK/ours.log" &
  OURS_PID=$!; PIDS+=("$OURS_PID"); OURS_URL="http://127.0.0.1:$port"
  wait_http "$OURS_URL/stats"
}

# Starts opentracker (whitelist-only in Debian) allowing the hashes in $1; sets OT_PID and OT_URL.
start_opentracker() {
  local dir="$WORK/ot.$RANDOM" port; port=$(free_port)
  mkdir -p "$dir"; chmod 755 "$dir"   # it chroots here and drops to nobody when run as root
  cp "$1" "$dir/whitelist.txt"; chmod 644 "$dir/whitelist.txt"
  printf 'access.whitelist /whitelist.txt\naccess.stats 127.0.0.1\n' >"$dir/opentracker.conf"
 ${PIN[@]+"${PIN[@]}"} opentracker -f "$dir/opentracker.conf" -i 127.0.0.1 -p "$port" -P "$port" -d "$dir" >"$dir/log" 2>&1 &
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

udp_best_ours=""; udp_best_ot=""
if [ "$UDP" = 1 ]; then
  LOADGEN=$(command -v aquatic_udp_load_test || echo "$BENCH_TOOLS/bin/aquatic_udp_load_test")
  if [ ! -x "$LOADGEN" ]; then
    echo "installing aquatic_udp_load_test into $BENCH_TOOLS"
    cargo install --locked --quiet aquatic_udp_load_test --root "$BENCH_TOOLS"
  fi
  command -v taskset >/dev/null || { echo "missing taskset" >&2; exit 2; }
  "$LOADGEN" -p >"$WORK/udp-default.toml"
  # udp_config PORT SECS -> a load-test config file: the generator's defaults with ours on top.
  udp_config() {
    python3 - "$WORK/udp-default.toml" "$1" "$2" "$UDP_WORKERS" "$UDP_TORRENTS" "$UDP_PEERS" <<'PY'
import re, sys
text, port, secs, workers, torrents, peers = open(sys.argv[1]).read(), *sys.argv[2:]
want = {
    ("", "server_address"): '"127.0.0.1:%s"' % port, ("", "workers"): workers,
    ("", "duration"): secs, ("", "summarize_last"): "0",
    ("requests", "number_of_torrents"): torrents, ("requests", "number_of_peers"): peers,
    ("requests", "announce_peers_wanted"): "30",
}
section, out = "", []
for line in text.splitlines():
    m = re.match(r"\s*\[([^\]]+)\]", line)
    if m:
        section = m.group(1)
    m = re.match(r"(\s*)([A-Za-z_]+)\s*=", line)
    if m and (section, m.group(2)) in want:
        line = "%s%s = %s" % (m.group(1), m.group(2), want[(section, m.group(2))])
    out.append(line)
print("\n".join(out))
PY
  }
  # udp_rate PORT -> "announces/s errors/s" of one load-test run against 127.0.0.1:PORT
  udp_rate() {
    udp_config "$1" "$UDP_DURATION" >"$WORK/udp.toml"
    taskset -c "$LOAD_CPUS" "$LOADGEN" -c "$WORK/udp.toml" >"$WORK/udp.out" 2>&1
    python3 - "$WORK/udp.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
report = text.split("# aquatic load test report")[-1]
get = lambda what: float(re.search(r"%s responses:\s*([0-9.]+)" % what, report).group(1))
print("%.0f %.0f" % (get("Announce"), get("Error")))
PY
  }
  echo "== UDP announce throughput: aquatic_udp_load_test, $UDP_WORKERS worker(s) on CPUs $LOAD_CPUS, trackers on CPUs $TRACKER_CPUS, ${UDP_DURATION}s, $ROUNDS rounds"
  # The generator's info-hashes, for opentracker's whitelist.
  rec_port=$(free_port)
  python3 "$HERE/udp-hashes.py" "$rec_port" 8 "$WORK/udp-hashes.txt" >"$WORK/udp-hashes.out" &
  REC_PID=$!; PIDS+=("$REC_PID")
  udp_config "$rec_port" 5 >"$WORK/udp-rec.toml"
  taskset -c "$LOAD_CPUS" "$LOADGEN" -c "$WORK/udp-rec.toml" >/dev/null 2>&1 || true
  wait "$REC_PID" || true
  echo "         (opentracker whitelists the $(wc -l <"$WORK/udp-hashes.txt") info-hashes the generator announced in 5 s)"
  PIN=(taskset -c "$TRACKER_CPUS")
  start_ours
  start_opentracker "$WORK/udp-hashes.txt"
  PIN=()
  udp_best_ours=0; udp_best_ot=0
  for r in $(seq "$ROUNDS"); do
    read -r o oe <<<"$(udp_rate "${OURS_URL##*:}")"
    read -r t te <<<"$(udp_rate "${OT_URL##*:}")"
    printf 'round %d: btorrent %10.0f announces/s (%s errors/s)   opentracker %10.0f announces/s (%s errors/s)\n' \
      "$r" "$o" "$oe" "$t" "$te"
    udp_best_ours=$(python3 -c "print('%.0f' % max($udp_best_ours, $o))"); udp_best_ot=$(python3 -c "print('%.0f' % max($udp_best_ot, $t))")
  done
  udp_stats=$(curl -s "$OURS_URL/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["udp_announces"], s["udp_dropped"], s["peers"])')
  stop "$OURS_PID"; stop "$OT_PID"
  printf 'best:    btorrent %10.0f announces/s   opentracker %10.0f announces/s   ratio %.2fx (target >= 1x)\n' \
    "$udp_best_ours" "$udp_best_ot" "$(python3 -c "print($udp_best_ours / max($udp_best_ot, 1))")"
  read -r ua ud up <<<"$udp_stats"
  echo "         (btorrent counted $ua UDP announces, dropped $ud packets, ended holding $up peers)"
fi

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

echo "== side by side (announces per second, best round)"
printf '%-12s %14s %14s\n' "" "HTTP (wrk)" "UDP (aquatic)"
printf '%-12s %14.0f %14s\n' btorrent "$best_ours" "${udp_best_ours:-skipped}"
printf '%-12s %14.0f %14s\n' opentracker "$best_ot" "${udp_best_ot:-skipped}"
