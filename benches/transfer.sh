#!/usr/bin/env bash
# Loopback transfer benchmark: one seeder to one leecher of a SIZE_MB file (default 1024 = 1 GiB),
# for btorrent -> btorrent, libtorrent -> libtorrent (python3-libtorrent) and aria2c -> aria2c, in one
# run. Prints wall time, MB/s, leecher CPU seconds, leecher peak RSS and the seeder's CPU seconds during
# the transfer for each (both share the machine's cores).
#
#   benches/transfer.sh [SIZE_MB]        env: BENCH_DIR (default /tmp/btorrent-bench),
#                                             CLIENTS (default "btorrent libtorrent aria2"),
#                                             BT_BIN (another btorrent binary, e.g. an older build),
#                                             ENCRYPT=1 (every client makes and takes encrypted
#                                             connections only: message stream encryption, RC4),
#                                             V2=1 (a BitTorrent v2 torrent, BEP 52, made by
#                                             `btorrent create --v2`: SHA-256 merkle trees;
#                                             aria2c has no v2),
#                                             HYBRID=1 (a hybrid v1 + v2 torrent, made by
#                                             `btorrent create --hybrid`: aria2c reads its v1
#                                             side, libtorrent both),
#                                             UTP=1 (over uTP: btorrent's leecher prefers it,
#                                             libtorrent takes nothing else; aria2c has no uTP),
#                                             BUFFERED=1 (btorrent's leecher writes through the
#                                             page cache: direct_writes = false)
# Needs: mktorrent, aria2, python3-libtorrent, bc, GNU time; everything else is in this repository
# (libtorrent runs through benches/fleet_lt.py; the other clients find each other through btorrent's
# tracker, which only introduces them). Not a test: figures depend on the machine. Every process it
# starts is killed by PID on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/benches/lib.sh"
need "benches/transfer.sh" mktorrent aria2c /usr/bin/python3 /usr/bin/time bc curl
WORK="${BENCH_DIR:-/tmp/btorrent-bench}"
SIZE_MB="${1:-1024}"
CLIENTS="${CLIENTS:-btorrent libtorrent aria2}"
ENCRYPT="${ENCRYPT:-0}"
V2="${V2:-0}"
HYBRID="${HYBRID:-0}"
UTP="${UTP:-0}"
BUFFERED="${BUFFERED:-0}"
BT_ENC="" LT_ENC="" ARIA_ENC="" BT_UTP="" BT_WRITES=""
[ "$BUFFERED" = 1 ] && BT_WRITES='direct_writes = false'
if [ "$ENCRYPT" = 1 ]; then
  BT_ENC='encryption = "require"'
  LT_ENC="--encrypt"
  ARIA_ENC="--bt-require-crypto=true --bt-min-crypto-level=arc4"
fi
if [ "$UTP" = 1 ]; then
  BT_UTP='utp = "prefer"'
  LT_ENC="$LT_ENC --utp"
  CLIENTS="${CLIENTS/aria2/}"
fi
if [ "$V2" = 1 ]; then
  CLIENTS="${CLIENTS/aria2/}"
fi
TPORT=$((20000 + RANDOM % 20000))
mkdir -p "$WORK/src" "$WORK/logs"
TRACKER="http://127.0.0.1:$TPORT"

kill_on_exit
build_btorrent

DATA="$WORK/src/bench-$SIZE_MB.bin"
if [ "$(stat -c %s "$DATA" 2>/dev/null || echo 0)" != $((SIZE_MB * 1048576)) ]; then
  echo "writing $SIZE_MB MiB of random data..." >&2
  head -c $((SIZE_MB * 1048576)) /dev/urandom > "$DATA"
fi
TOR="$WORK/bench-$SIZE_MB.torrent"
rm -f "$TOR"
if [ "$V2" = 1 ] || [ "$HYBRID" = 1 ]; then
  KIND=--v2; [ "$HYBRID" = 1 ] && KIND=--hybrid
  mkdir -p "$WORK/create"; printf '[settings]\n' > "$WORK/create/torrents.toml"
  BTORRENT_CONFIG="$WORK/create/torrents.toml" "$BT" create "$DATA" "$TRACKER/announce" "$KIND" \
    --piece-length 1048576 -o "$TOR" >/dev/null
else
  mktorrent -l 20 -a "$TRACKER/announce" -o "$TOR" "$DATA" >/dev/null
fi
mkdir -p "$WORK/tracker"
printf '[settings]\n' > "$WORK/tracker/torrents.toml"
(cd "$WORK/tracker" && exec "$BT" -c "$WORK/tracker/torrents.toml" tracker --bind "127.0.0.1:$TPORT" \
  > "$WORK/logs/tracker.log" 2>&1) &
PIDS+=("$!")
for _ in $(seq 100); do curl -s -m 1 "$TRACKER/stats" >/dev/null && break; sleep 0.1; done
INFO_HASH_Q=$(info_hash_query "$TOR")
BYTES=$(stat -c %s "$DATA")
# Make sure the source is in the page cache for everyone alike.
cat "$DATA" > /dev/null

TICKS=$(getconf CLK_TCK)
RESULTS=()
record() { # name wall_s time_file ok seeder_ticks
  local cpu rss; read -r cpu rss < <(time_fields "$3")
  RESULTS+=("$(awk -v n="$1" -v w="$2" -v b="$BYTES" -v c="$cpu" -v r="$rss" -v ok="$4" \
    -v s="$5" -v hz="$TICKS" \
    'BEGIN{printf "%-24s %8.2f %9.1f %10.2f %10.1f %11.2f  %s", n, w, b/w/1e6, c, r, s/hz, ok}')")
}

run_btorrent() {
  # `btorrent seed` on a fixed port, `btorrent start --peer` dialing it (no tracker in the way).
  local out="$WORK/out-btorrent"; rm -rf "$out" "$WORK/bt-seed" "$WORK/bt-leech"; mkdir -p "$out" "$WORK/bt-seed" "$WORK/bt-leech"
  local port=$((TPORT + 5))
  printf '[settings]\nlisten_port = %d\nlisten_ip = "127.0.0.1"\n%s\n' "$port" "$BT_ENC" > "$WORK/bt-seed/torrents.toml"
  printf '[settings]\nlisten_port = 0\nlisten_ip = "127.0.0.1"\n%s\n%s\n%s\n' "$BT_ENC" "$BT_UTP" "$BT_WRITES" > "$WORK/bt-leech/torrents.toml"
  BTORRENT_CONFIG="$WORK/bt-seed/torrents.toml" timeout 900 "$BT" seed "$TOR" --data "$WORK/src" \
    > "$WORK/logs/bt-seed.log" 2>&1 &
  local sp=$!; PIDS+=("$sp")
  for _ in $(seq 100); do grep -q "^seeding" "$WORK/logs/bt-seed.log" && break; sleep 0.1; done
  sleep 3 # the seeder hash-checks its data before it accepts peers
  local t0 t1 c0 c1 rc=0 ok=FAIL
  c0=$(tree_ticks "$sp")
  t0=$(date +%s.%N)
  BTORRENT_CONFIG="$WORK/bt-leech/torrents.toml" /usr/bin/time -v -o "$WORK/logs/bt-leech.time" \
    timeout 600 "$BT" start "$TOR" --output "$out" --peer "127.0.0.1:$port" \
    > "$WORK/logs/bt-leech.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  c1=$(tree_ticks "$sp")
  # The check is not timed (as for the other clients, whose harness verifies after the clock stops).
  [ "$rc" = 0 ] && cmp -s "$DATA" "$out/$(basename "$DATA")" && ok=OK
  kill "$sp" 2>/dev/null || true
  record "btorrent->btorrent" "$(echo "$t1 - $t0" | bc)" "$WORK/logs/bt-leech.time" "$ok" $((c1 - c0))
  rm -rf "$out"
}

# wait_seeder PID NAME: until the tracker lists a seeder (the client has checked its data).
wait_seeder() {
  for _ in $(seq 3000); do
    curl -s -m 1 "$TRACKER/scrape?info_hash=$INFO_HASH_Q" | grep -q 'completei[1-9]' && return 0
    kill -0 "$1" 2>/dev/null || { echo "$2: the seeder exited; see $WORK/logs" >&2; return 1; }
    sleep 0.1
  done
  echo "$2: the seeder never reached the tracker" >&2
  return 1
}

# other_seed CLIENT PORT / other_leech CLIENT PORT OUT: the other clients, on 127.0.0.1, DHT, LSD,
# PEX and uTP off, through the tracker.
other_seed() {
  case "$1" in
    libtorrent) exec /usr/bin/python3 "$ROOT/benches/fleet_lt.py" seed "$TOR" "$WORK/src" --ip 127.0.0.1 \
        --port "$2" --timeout 900 $LT_ENC ;;
    aria2) exec aria2c --dir="$WORK/src" --check-integrity=true --bt-hash-check-seed=true --seed-ratio=0.0 \
        --listen-port="$2" --interface=127.0.0.1 --enable-dht=false --enable-dht6=false \
        --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none --bt-max-peers=0 \
        --disable-ipv6=true --summary-interval=0 --console-log-level=notice --allow-overwrite=false $ARIA_ENC "$TOR" ;;
  esac
}
other_leech() {
  case "$1" in
    libtorrent) /usr/bin/python3 "$ROOT/benches/fleet_lt.py" leech "$TOR" "$3" --ip 127.0.0.1 --port "$2" \
        --timeout 600 $LT_ENC ;;
    aria2) aria2c --dir="$3" --seed-time=0 --listen-port="$2" --interface=127.0.0.1 --enable-dht=false \
        --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none \
        --bt-max-peers=0 --disable-ipv6=true --summary-interval=0 --console-log-level=notice \
        --bt-tracker-connect-timeout=5 --bt-tracker-timeout=5 $ARIA_ENC "$TOR" ;;
  esac
}

run_other() { # client seed-port leech-port
  local out="$WORK/out-$1"; rm -rf "$out"; mkdir -p "$out"
  (other_seed "$1" "$2" > "$WORK/logs/$1-seed.log" 2>&1) &
  local sp=$!; PIDS+=("$sp")
  wait_seeder "$sp" "$1" || { RESULTS+=("$(printf '%-24s failed: no seeder' "$1->$1")"); kill "$sp" 2>/dev/null; return; }
  local t0 t1 c0 c1 rc=0 ok=FAIL
  c0=$(tree_ticks "$sp")
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$WORK/logs/$1-leech.time" timeout 600 bash -c "$(declare -f other_leech); \
    ROOT='$ROOT' TOR='$TOR' LT_ENC='$LT_ENC' ARIA_ENC='$ARIA_ENC' other_leech $1 $3 '$out'" > "$WORK/logs/$1-leech.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  c1=$(tree_ticks "$sp")
  [ "$rc" = 0 ] && cmp -s "$DATA" "$out/$(basename "$DATA")" && ok=OK
  kill "$sp" 2>/dev/null || true
  record "$1->$1" "$(echo "$t1 - $t0" | bc)" "$WORK/logs/$1-leech.time" "$ok" $((c1 - c0))
  rm -rf "$out"
}

for c in $CLIENTS; do
  echo "running $c..." >&2
  case "$c" in
    btorrent) run_btorrent ;;
    libtorrent) run_other libtorrent $((TPORT + 1)) $((TPORT + 2)) ;;
    aria2) run_other aria2 $((TPORT + 3)) $((TPORT + 4)) ;;
  esac
done

echo
ENC_NOTE=""; [ "$ENCRYPT" = 1 ] && ENC_NOTE=", encrypted (RC4) connections only"
[ "$UTP" = 1 ] && ENC_NOTE="$ENC_NOTE, over uTP"
[ "$V2" = 1 ] && ENC_NOTE="$ENC_NOTE, a BitTorrent v2 torrent (SHA-256 merkle trees)"
[ "$HYBRID" = 1 ] && ENC_NOTE="$ENC_NOTE, a hybrid v1 + v2 torrent"
[ "$BUFFERED" = 1 ] && ENC_NOTE="$ENC_NOTE, btorrent writing through the page cache"
echo "1 seeder -> 1 leecher over 127.0.0.1, $BYTES bytes ($(nproc) cores)$ENC_NOTE; leecher CPU and RSS, seeder CPU"
printf '%-24s %8s %9s %10s %10s %11s  %s\n' pair wall_s MB/s cpu_s rss_MB seed_cpu_s verified
printf '%s\n' "${RESULTS[@]}"
