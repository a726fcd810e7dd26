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
