#!/usr/bin/env bash
# Web seed benchmark (BEP 19): one file of SIZE_MB (default 512) served by nginx on loopback, a torrent
# made by `btorrent create --web-seed` with no tracker, and each client downloading it from the web
# server alone, one after the other: btorrent, libtorrent (python3-libtorrent) and aria2c. Prints wall
# time, MB/s, the client's CPU seconds and peak RSS, and nginx's CPU seconds during the download.
#
#   benches/web_seed.sh [SIZE_MB]        env: BENCH_DIR (default /tmp/btorrent-bench),
#                                             CLIENTS (default "btorrent libtorrent aria2"),
#                                             BT_BIN (another btorrent binary, e.g. an older build)
# Needs: nginx (nginx-light), aria2, python3-libtorrent, bc, GNU time. Not a test: figures depend on
# the machine. nginx runs with a configuration of its own in BENCH_DIR; every process it starts is
# killed by PID on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/benches/lib.sh"
export BTORRENT_LSD=off
need "benches/web_seed.sh" nginx aria2c /usr/bin/python3 /usr/bin/time bc curl
WORK="${BENCH_DIR:-/tmp/btorrent-bench}/web-seed"
SIZE_MB="${1:-512}"
CLIENTS="${CLIENTS:-btorrent libtorrent aria2}"
PORT=$((20000 + RANDOM % 20000))
mkdir -p "$WORK/www" "$WORK/logs" "$WORK/nginx"

kill_on_exit
build_btorrent

DATA="$WORK/www/web-$SIZE_MB.bin"
random_file "$DATA" $((SIZE_MB * 1048576))
BYTES=$(stat -c %s "$DATA")
cat "$DATA" > /dev/null

cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/logs/nginx-error.log;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $WORK/nginx;
    server { listen 127.0.0.1:$PORT; root $WORK/www; }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" > "$WORK/logs/nginx.log" 2>&1 &
NGINX=$!
PIDS+=("$NGINX")
URL="http://127.0.0.1:$PORT/"
for _ in $(seq 100); do curl -s -m 1 -o /dev/null "$URL" && break; sleep 0.1; done

mkdir -p "$WORK/make"
printf '[settings]\n' > "$WORK/make/torrents.toml"
TOR="$WORK/make/torrents/web-$SIZE_MB.bin.torrent"
rm -f "$TOR"
(cd "$WORK/make" && "$BT" create "$DATA" --no-tracker --web-seed "$URL" --piece-length 1M > /dev/null)

TICKS=$(getconf CLK_TCK)
RESULTS=()

run_client() { # name
  local out="$WORK/out-$1"; rm -rf "$out"; mkdir -p "$out"
  local t0 t1 c0 c1 rc=0 ok=FAIL cpu rss
  c0=$(tree_ticks "$NGINX")
  t0=$(date +%s.%N)
  case "$1" in
    btorrent)
      mkdir -p "$WORK/bt"; printf '[settings]\nlisten_ip = "127.0.0.1"\nlisten_port = 0\n' > "$WORK/bt/torrents.toml"
      BTORRENT_CONFIG="$WORK/bt/torrents.toml" /usr/bin/time -v -o "$WORK/logs/$1.time" \
        timeout 600 "$BT" start "$TOR" --output "$out" > "$WORK/logs/$1.log" 2>&1 || rc=$? ;;
    libtorrent)
      /usr/bin/time -v -o "$WORK/logs/$1.time" timeout 600 /usr/bin/python3 "$ROOT/benches/fleet_lt.py" \
        leech "$TOR" "$out" --ip 127.0.0.1 --port $((PORT + 1)) --timeout 600 > "$WORK/logs/$1.log" 2>&1 || rc=$? ;;
    aria2)
      /usr/bin/time -v -o "$WORK/logs/$1.time" timeout 600 aria2c --dir="$out" --seed-time=0 \
        --listen-port=$((PORT + 2)) --interface=127.0.0.1 --enable-dht=false --enable-dht6=false \
        --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none --disable-ipv6=true \
        --summary-interval=0 --console-log-level=notice "$TOR" > "$WORK/logs/$1.log" 2>&1 || rc=$? ;;
  esac
  t1=$(date +%s.%N)
  c1=$(tree_ticks "$NGINX")
  [ "$rc" = 0 ] && cmp -s "$DATA" "$out/$(basename "$DATA")" && ok=OK
  read -r cpu rss < <(time_fields "$WORK/logs/$1.time")
  RESULTS+=("$(awk -v n="$1" -v w="$(echo "$t1 - $t0" | bc)" -v b="$BYTES" -v c="$cpu" -v r="$rss" \
    -v s=$((c1 - c0)) -v hz="$TICKS" -v ok="$ok" \
    'BEGIN{printf "%-12s %8.2f %9.1f %10.2f %10.1f %10.2f  %s", n, w, b/w/1e6, c, r, s/hz, ok}')")
  rm -rf "$out"
}

for c in $CLIENTS; do run_client "$c"; done
echo
echo "web seed (nginx on loopback) -> one client, $SIZE_MB MiB, 1 MiB pieces, no peers"
printf '%-12s %8s %9s %10s %10s %10s  %s\n' client wall_s MB/s cpu_s rss_MB nginx_cpu ok
for r in "${RESULTS[@]}"; do echo "$r"; done
