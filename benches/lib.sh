# Shared by the benchmark scripts (sourced, not run).

# Benchmarks run on loopback against clients whose DHT is off: btorrent's is off too (no public
# routers contacted, no UDP traffic in the figures).
export BTORRENT_DHT=off

# need WHO TOOL...: stops with a message naming WHO unless every TOOL is on the PATH.
need() {
    local who=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$who needs $tool" >&2; exit 1; }
    done
}

# random_file PATH BYTES: makes PATH a file of BYTES random bytes, keeping one of that size from an
# earlier run (writing 1 GiB takes a while).
random_file() {
    local path=$1 size=$2
    mkdir -p "$(dirname "$path")"
    if [ "$(stat -c %s "$path" 2>/dev/null || echo 0)" != "$size" ]; then
        echo "writing $((size >> 20)) MiB of random data to $path"
        head -c "$size" /dev/urandom > "$path.tmp" && mv "$path.tmp" "$path"
    fi
}

# info_hash_query TORRENT: the torrent's info-hash, percent-encoded for a tracker query.
info_hash_query() {
    /usr/bin/python3 - "$1" <<'PY'
import hashlib, sys, urllib.parse
raw = open(sys.argv[1], "rb").read()
# The info dict is the value of the top-level "4:info" key; find its bencoded extent.
def end(b, i):
    c = b[i:i+1]
    if c == b"i": return b.index(b"e", i) + 1
    if c in (b"l", b"d"):
        i += 1
        while b[i:i+1] != b"e": i = end(b, i)
        return i + 1
    n = b.index(b":", i); return n + 1 + int(b[i:n])
s = raw.index(b"4:info") + 6
info = raw[s:end(raw, s)]
# A v2-only torrent (BEP 52: `meta version` 2, no `pieces`) is named by its SHA-256 cut to 20 bytes.
v2 = b"12:meta versioni2e" in info and b"6:pieces" not in info
digest = hashlib.sha256(info).digest()[:20] if v2 else hashlib.sha1(info).digest()
print(urllib.parse.quote_from_bytes(digest, safe=""))
PY
}

# time_fields <time -v file>: "cpu_s rss_mb"
time_fields() {
  awk -F': ' '/User time/{u=$2} /System time/{s=$2} /Maximum resident/{r=$2}
              END{printf "%.2f %.1f\n", u+s, r/1024}' "$1"
}
# tree_ticks <pid>: CPU clock ticks (user + system) used so far by pid and its descendants.
tree_ticks() {
  local t c
  t=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}')
  t=${t:-0}
  for c in $(pgrep -P "$1"); do t=$((t + $(tree_ticks "$c"))); done
  echo "$t"
}

# build_btorrent: builds the release binary and sets BT to it (or to BT_BIN, another build).
build_btorrent() {
  echo "building btorrent (release)..." >&2
  (cd "$ROOT" && cargo build --release --quiet --bin btorrent)
  BT="${BT_BIN:-$ROOT/target/release/btorrent}"
}

# kill_on_exit: every PID a script adds to PIDS is killed when it exits, however it ends.
kill_on_exit() {
  PIDS=()
  trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
}
