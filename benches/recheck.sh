#!/usr/bin/env bash
# The data check when a torrent is added without resume data: every piece of a 1 GiB file is read and
# hash-checked (`benches/helpers/recheck_bench.rs` adds it to a fresh session and waits until it seeds).
#
# usage: benches/recheck.sh [size_MiB]
# env:   BENCH_DIR (default /tmp/btorrent-recheck-bench; the random file is kept there and reused),
#        RUNS (hyperfine runs, default 5)
# needs: hyperfine, python3
#
# The file is read from a warm page cache, so this measures hashing and copying, not the disk. Wall
# times move with the machine's load (printed with the result); CPU times barely do.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

SIZE_MIB=${1:-1024}
DIR=${BENCH_DIR:-/tmp/btorrent-recheck-bench}
RUNS=${RUNS:-5}
need benches/recheck.sh hyperfine python3

cargo build --release --quiet --bin btorrent --example recheck_bench
BT=$PWD/target/release/btorrent
HELPER=$PWD/target/release/examples/recheck_bench

DATA=$DIR/data/random-${SIZE_MIB}MiB.bin
SIZE=$((SIZE_MIB << 20))
random_file "$DATA" "$SIZE"
# The torrent is made again whenever the data is newer.
[ "$DIR/t.torrent" -nt "$DATA" ] ||
    "$BT" --config "$DIR/torrents.toml" create "$DATA" http://127.0.0.1:1/announce -o "$DIR/t.torrent" >/dev/null

echo "warming the page cache"
cat "$DATA" > /dev/null
cat "$DATA" > /dev/null

hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$DIR/recheck.json" \
    -n "btorrent check" "$HELPER $DIR/t.torrent $DIR/data"

python3 - "$DIR/recheck.json" "$SIZE" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[1]))["results"][0]
size = int(sys.argv[2])
print()
print(f"file        {size / 2**20:.0f} MiB, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
print(f"wall        mean {r['mean']:.3f} s +- {r['stddev']:.3f}, min {r['min']:.3f} s, "
      f"{size / r['mean'] / 1e6:.0f} MB/s (mean)")
print(f"CPU         user {r['user']:.3f} s + sys {r['system']:.3f} s = {r['user'] + r['system']:.3f} s "
      f"(mean per run)")
PY
