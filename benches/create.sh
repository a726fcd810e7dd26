#!/usr/bin/env bash
# Creating a .torrent for a 1 GiB file: `btorrent create` next to `mktorrent -t 2` on the same file with
# the same piece length, in one run, with the bound both are measured against: size / (2 x one core's
# SHA-1 speed), the SHA-1 speed measured here and now with the `sha1` crate btorrent hashes with.
#
# usage: benches/create.sh [size_MiB]
# env:   BENCH_DIR (default /tmp/btorrent-create-bench; the random file is kept there and reused),
#        RUNS (hyperfine runs per tool, default 7)
# needs: mktorrent, hyperfine, python3
#
# The file is read from a warm page cache, so this measures hashing and copying, not the disk. Timings
# are wall-clock: run it on an otherwise idle machine (the load average is printed with the result);
# CPU times, which other load barely moves, are printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

SIZE_MIB=${1:-1024}
DIR=${BENCH_DIR:-/tmp/btorrent-create-bench}
RUNS=${RUNS:-7}
URL=http://127.0.0.1:6969/announce
need benches/create.sh mktorrent hyperfine python3

cargo build --release --quiet --bin btorrent --example create_bench
BT=$PWD/target/release/btorrent
HELPER=$PWD/target/release/examples/create_bench

DATA=$DIR/random-${SIZE_MIB}MiB.bin
SIZE=$((SIZE_MIB << 20))
random_file "$DATA" "$SIZE"

# The piece length btorrent picks for this size, given to both tools.
PLEN=$("$HELPER" piece-length "$SIZE")
EXP=$(python3 -c "print(($PLEN).bit_length() - 1)")

echo "warming the page cache"
cat "$DATA" > /dev/null
cat "$DATA" > /dev/null

# The best case for one stream: a cache-resident 128 KiB buffer (the chunk btorrent reads).
SHA1_MBS=$("$HELPER" sha1 2048 128)
LANES_MBS=$("$HELPER" sha1-lanes 2048 128)

rm -f "$DIR/bt.torrent" "$DIR/mk.torrent"
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$DIR/create.json" \
    --prepare "rm -f $DIR/mk.torrent" \
    -n "btorrent create" "$BT --config $DIR/torrents.toml create $DATA $URL --piece-length $PLEN -o $DIR/bt.torrent" \
    -n "mktorrent -t 2" "mktorrent -t 2 -l $EXP -a $URL -o $DIR/mk.torrent $DATA"

python3 - "$DIR/create.json" "$SIZE" "$SHA1_MBS" "$PLEN" "$DIR/bt.torrent" "$DIR/mk.torrent" "$LANES_MBS" <<'PY'
import hashlib, json, os, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
size, sha1_mbs, plen = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
lanes_mbs = float(sys.argv[7])

def info_hash(path):
    d = open(path, "rb").read()
    def skip(i):                         # end of the bencoded value at i
        c = d[i:i + 1]
        if c == b"i":
            return d.index(b"e", i) + 1
        if c in (b"l", b"d"):
            i += 1
            while d[i:i + 1] != b"e":
                i = skip(i)
            return i + 1
        n = d.index(b":", i)
        return n + 1 + int(d[i:n])
    i = 1
    while d[i:i + 1] != b"e":
        k_end = skip(i)
        key = d[d.index(b":", i) + 1:k_end]
        v_end = skip(k_end)
        if key == b"info":
            return hashlib.sha1(d[k_end:v_end]).hexdigest()
        i = v_end

bt, mk = results["btorrent create"], results["mktorrent -t 2"]
bound = size / (2 * sha1_mbs * 1e6)
print()
print(f"file            {size / 2**20:.0f} MiB, pieces of {plen >> 10} KiB, {os.cpu_count()} cores, "
      f"load average {os.getloadavg()[0]:.2f}")
print(f"sha1, one core  {sha1_mbs:.0f} MB/s  ->  bound size / (2 x that) = {bound:.3f} s")
print(f"  (btorrent hashes 4 pieces at once per core: {lanes_mbs:.0f} MB/s per core, "
      f"size / (2 x that) = {size / (2 * lanes_mbs * 1e6):.3f} s)")
for name, r in (("btorrent", bt), ("mktorrent -t 2", mk)):
    print(f"{name:15} mean {r['mean']:.3f} s +- {r['stddev']:.3f}, min {r['min']:.3f} s, "
          f"{size / r['mean'] / 1e6:.0f} MB/s")
cpu = lambda r: r["user"] + r["system"]
print(f"CPU time (user+sys)  btorrent {cpu(bt):.3f} s, mktorrent {cpu(mk):.3f} s; the bound's budget, "
      f"size / one core's SHA-1 speed: {2 * bound:.3f} s (wall >= CPU / cores, whatever the load)")
print(f"mktorrent / btorrent  {mk['mean'] / bt['mean']:.2f}x (mean), {mk['min'] / bt['min']:.2f}x (min)"
      f"   target >= 1.00")
print(f"btorrent / bound      {bt['mean'] / bound:.2f}x (mean), {bt['min'] / bound:.2f}x (min)"
      f"   target <= 1.30")
same = info_hash(sys.argv[5]) == info_hash(sys.argv[6])
print(f"same info-hash from both tools: {'yes' if same else 'NO'} ({info_hash(sys.argv[5])})")
sys.exit(0 if same else 1)
PY
