#!/usr/bin/env bash
# The fleet benchmark: one seeder and N leechers, each host in its own network namespace with a veth
# pair into one bridge, every link shaped with tc tbf both ways (upload and download), addresses from
# 198.18.0.0/15 (the range set aside for benchmarks), the tracker on the bridge (unshaped). The same
# swarm is run with btorrent, libtorrent (python3-libtorrent) and aria2c in one run, and the script
# prints for each: wall time (start of the leechers to the last one verified), its ratio to the link
# limit (file size / link rate: the time one leecher needs on its own link), payload bytes received
# beyond the file (duplicates and bad pieces, as the client reports them), bytes on the leechers' wires
# per byte of file, packets on them per MiB of file (each costs the kernel a trip through the veths,
# the bridge and tbf), and the CPU seconds all its processes used (with the share spent in the kernel).
# The same swarm's time moves by 10-20% from one run to the next: RUNS=k repeats every case k times
# (the clients taking turns within each round) and ends with each case's and client's median and range.
#
# The `floor` row (cases n12 and n24) is no BitTorrent client: every host runs benches/helpers/tcp_floor.rs, each leecher
# fetching an equal share of the file's size from every other host over plain TCP (no protocol, no
# disk, no hashing), so the links carry what an ideal swarm's would. Its time is what this machine and
# these links allow at best; when it is well above the link limit, the machine (CPU spent in the
# kernel moving packets through the veths, the bridge and tbf) is what bounds every client. The
# `duplex` row (CLIENTS=duplex) is the same with one connection per pair of hosts carrying both
# shares, as a swarm's connections do (the floor's each carry data one way).
#
#   benches/fleet.sh [CASE...]      CASE: n12 n24 mixed late seeder-leaves (default: all five)
#   env: SIZE_MB (100), RATE_MBIT (100), SLOW_MBIT (20), CLIENTS ("btorrent libtorrent aria2 floor"; also duplex),
#        BENCH_DIR (/tmp/btorrent-fleet), LEECH_TIMEOUT (300 s per leecher), LEAVE_AT (1.10),
#        BT_BIN (another btorrent binary to run, e.g. an older build to compare with), RUNS (1),
#        GSO_MAX (60000: the hosts' largest GSO packet, bytes; see below),
#        TIMELINE=1 (btorrent leechers log their peers, pieces and rates twice a second, and each
#        connection's state (`b-show --peers`: who chokes whom, rates, requests waiting), in
#        BENCH_DIR/run/CASE-btorrent[-ROUND]/lI/log, from benches/fleet-timeline.rhai; the seeder's
#        bytes sent so far, twice a second, in BENCH_DIR/run/CASE-CLIENT[-ROUND]/seed/tx),
#        CAPTURE=1 (tcpdump on leecher 1's link for 3 s from half the link limit on; after the table,
#        a line per run on the packets it saw: how large the data packets are, how many segments
#        each pure ACK acknowledges. Each packet costs the kernel the same trip however many
#        segments it carries, so this is where a client's kernel CPU per byte comes from. Needs
#        tcpdump.)
#
# Cases:
#   n12, n24       1 seeder -> N leechers, every link at RATE_MBIT.
#   mixed          N = 12, a quarter of the leechers at SLOW_MBIT.
#   late           N = 12; one more leecher joins after one link limit (about half of the run).
#   seeder-leaves  N = 12; the seeder is stopped once it has sent LEAVE_AT (1.10) times the file on its
#                  wire (headers included, about 4%), so the swarm must finish from what the leechers
#                  hold: a seeder that sent pieces twice before every piece once leaves a swarm that
#                  cannot finish (FAIL at LEECH_TIMEOUT); one that spreads distinct pieces passes.
#                  Leechers that are done stay and seed until the case ends (the same client started
#                  again as a seeder on their copy), as a swarm without its seeder needs.
#
# The hosts' TSO packets: a host's TCP hands its link packets of up to 64 KB (GSO), as it would a
# NIC that segments them in hardware. tbf cannot pass a packet larger than its bucket (64 KB, headers
# of every segment counted) and segments it in software instead, so a full 64 KB GSO packet became
# 45 packets for the bridge, the other tbf and the receiver to handle one by one: a kernel cost per
# byte that no real link has, paid most by clients whose TCP sends the largest packets (before this
# setting, btorrent's data crossed the links 98% in single segments; N = 24 took 18 s, now 12 s).
# GSO_MAX (60000) caps each host's GSO packets below the bucket; GSO_MAX=65536 is the earlier setup.
#
# Needs root (ip netns, tc), iproute2, the tbf qdisc, python3-libtorrent, aria2, mktorrent. Not a test:
# figures depend on the machine. Every namespace and process it makes is removed on exit (trap), and
# every wait is bounded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/benches/lib.sh"
need "benches/fleet.sh" ip tc mktorrent aria2c /usr/bin/python3 bc
[ "${CAPTURE:-0}" = 1 ] && need "benches/fleet.sh CAPTURE=1" tcpdump
[ "$(id -u)" = 0 ] || { echo "benches/fleet.sh needs root (network namespaces and tc)" >&2; exit 1; }

WORK="${BENCH_DIR:-/tmp/btorrent-fleet}"
GSO_MAX="${GSO_MAX:-60000}"
SIZE_MB="${SIZE_MB:-100}"
RATE="${RATE_MBIT:-100}"
SLOW="${SLOW_MBIT:-20}"
CLIENTS="${CLIENTS:-btorrent libtorrent aria2 floor}"
LEECH_TIMEOUT="${LEECH_TIMEOUT:-300}"
LEAVE_AT="${LEAVE_AT:-1.10}"
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(n12 n24 mixed late seeder-leaves)

TAG="bf$$"
HUB="$TAG-hub"
HUB_IP=198.18.0.1
TPORT=6969
PIDS=()
HOSTS=0

host_ns() { echo "$TAG-h$1"; }
host_ip() { echo "198.18.0.$((10 + $1))"; }

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    # (An `if`, not `[ ] &&`: under `set -e` a false test as the loop's last command would end the
    # trap before the namespaces are removed.)
    for f in "$WORK"/run/*/reseed.pids; do
        if [ -f "$f" ]; then kill $(cat "$f") 2>/dev/null || true; fi
    done
    for i in $(seq 0 $((HOSTS - 1))); do ip netns del "$(host_ns "$i")" 2>/dev/null || true; done
    ip netns del "$HUB" 2>/dev/null || true
}
trap cleanup EXIT

# make_hosts COUNT: the hub namespace with the bridge, and COUNT hosts (0 = the seeder) wired into it.
make_hosts() {
    local count=$1 i ns a b
    ip netns add "$HUB"
    ip -n "$HUB" link set lo up
    ip -n "$HUB" link add br0 type bridge
    ip -n "$HUB" addr add "$HUB_IP/16" dev br0
    ip -n "$HUB" link set br0 up
    for i in $(seq 0 $((count - 1))); do
        ns=$(host_ns "$i"); a="${TAG}a$i"; b="${TAG}b$i"
        ip netns add "$ns"
        HOSTS=$((i + 1))
        ip link add "$a" type veth peer name "$b"
        ip link set "$a" netns "$ns"
        ip link set "$b" netns "$HUB"
        ip -n "$ns" link set "$a" name eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$(host_ip "$i")/16" dev eth0
        # The host's largest TSO packet fits tbf's bucket, so it crosses the link whole (see GSO_MAX).
        ip -n "$ns" link set eth0 gso_max_size "$GSO_MAX"
        ip -n "$ns" link set eth0 up
        ip -n "$HUB" link set "$b" master br0
        ip -n "$HUB" link set "$b" up
    done
}

# shape I MBIT: host I's link at MBIT each way (tbf on both ends of its veth pair).
shape() {
    local i=$1 mbit=$2 spec
    spec="rate ${mbit}mbit burst 64kb latency 100ms"
    tc -n "$(host_ns "$i")" qdisc replace dev eth0 root tbf $spec
    tc -n "$HUB" qdisc replace dev "${TAG}b$i" root tbf $spec
}

in_host() { local i=$1; shift; ip netns exec "$(host_ns "$i")" "$@"; }
rx_bytes() { in_host "$1" cat /sys/class/net/eth0/statistics/rx_bytes; }
# Packets both ways on host I's link.
packets() { in_host "$1" cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth0/statistics/tx_packets | paste -sd+ | bc; }
tx_bytes() { in_host "$1" cat /sys/class/net/eth0/statistics/tx_bytes; }

# packet_sizes PCAP IP: what a capture on host IP's link saw. Data packets each way: how many, the
# share that carry a single segment (1448 bytes of TCP payload, the MSS here), their mean payload;
# and the segments of data each pure ACK coming back acknowledges on average (the data sent over
# the pure ACKs received: a sender whose ACKs each free one segment sends one segment at a time).
packet_sizes() {
    tcpdump -r "$1" -nn -q 2>/dev/null | awk -v me="$2." '
        $2 != "IP" { next }
        { len = $NF; out = index($3, me) == 1 }
        len == 0 { if (out) ack_out++; else ack_in++; next }
        len >= 100 {
            if (out) { n_out++; b_out += len; one_out += (len == 1448) }
            else { n_in++; b_in += len; one_in += (len == 1448) }
        }
        END {
            if (!n_out || !n_in) { print "too few data packets captured"; exit }
            printf "data sent: %d packets, %.0f%% of one segment, %.1f KB mean; received: %d, %.0f%%, %.1f KB; segments per pure ACK: %.1f sent, %.1f received\n",
                n_out, 100 * one_out / n_out, b_out / n_out / 1000, n_in, 100 * one_in / n_in, b_in / n_in / 1000,
                (ack_in ? b_out / 1448 / ack_in : 0), (ack_out ? b_in / 1448 / ack_out : 0)
        }'
}

# The data and the torrent: 256 KiB pieces, announcing to the tracker on the bridge.
DATA_DIR="$WORK/src"
DATA="$DATA_DIR/fleet-$SIZE_MB.bin"
random_file "$DATA" $((SIZE_MB * 1048576))
BYTES=$(stat -c %s "$DATA")
TOR="$WORK/fleet-$SIZE_MB.torrent"
rm -f "$TOR"
mktorrent -l 18 -a "http://$HUB_IP:$TPORT/announce" -o "$TOR" "$DATA" >/dev/null

echo "building btorrent (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin btorrent --example tcp_floor)
BT="${BT_BIN:-$ROOT/target/release/btorrent}"
FLOOR="$ROOT/target/release/examples/tcp_floor"

# Leechers run under /usr/bin/time (outside `timeout`, so the timeout's signal reaches the client); the
# seeder's CPU is read from /proc before it is stopped. Summed per client.
# proc_cpu PID: "user system" CPU seconds of a running process (as /usr/bin/time -f "%U %S" writes them).
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.2f %.2f\n", $12 / hz, $13 / hz}' "/proc/$1/stat" 2>/dev/null || true; }
# cpu_sum FILE...: total CPU seconds of "user system" files, and the system (kernel) share.
cpu_sum() { cat "$@" 2>/dev/null | awk 'NF==2 && $1 ~ /^[0-9.]+$/ {u += $1; k += $2} END {printf "%.1f %d%%", u + k, (u + k > 0) ? 100 * k / (u + k) : 0}'; }

# start_tracker DIR: btorrent's tracker in the hub namespace (the same tracker for every client).
start_tracker() {
    local dir=$1
    mkdir -p "$dir"
    printf '[settings]\n' > "$dir/torrents.toml"
    (cd "$dir" && exec ip netns exec "$HUB" "$BT" -c "$dir/torrents.toml" tracker --bind "$HUB_IP:$TPORT" \
        > "$dir/tracker.log" 2>&1) &
    PIDS+=("$!")
    for _ in $(seq 100); do
        ip netns exec "$HUB" bash -c "exec 3<>/dev/tcp/$HUB_IP/$TPORT" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the tracker did not start; see $dir/tracker.log" >&2
    exit 1
}

# bt_config DIR IP: a btorrent host's settings. Peers come from the tracker alone, as for the other
# clients (local service discovery off, as aria2c's --bt-enable-lpd=false).
bt_config() {
    mkdir -p "$1"
    printf '[settings]\nlisten_ip = "%s"\nlisten_port = 6881\noutput_dir = "%s"\nlsd = false\n' "$2" "$1/out" > "$1/torrents.toml"
}

# start_seeder CLIENT I DATA CONF LOG: host I seeds from DATA (the folder holding the file), with its
# settings in CONF (btorrent), logging to LOG; STARTED_PID is the client's own process (the subshell
# execs `ip netns exec`, which execs the client), so a kill reaches it.
start_seeder() {
    local client=$1 i=$2 data=$3 conf=$4 log=$5 ip ns
    ip=$(host_ip "$i"); ns=$(host_ns "$i")
    mkdir -p "$conf"
    case "$client" in
        btorrent)
            [ -f "$conf/torrents.toml" ] || bt_config "$conf" "$ip"
            (cd "$conf" && exec ip netns exec "$ns" "$BT" -c "$conf/torrents.toml" seed "$TOR" --data "$data" > "$log" 2>&1) &
            ;;
        libtorrent)
            (exec ip netns exec "$ns" /usr/bin/python3 "$ROOT/benches/fleet_lt.py" seed "$TOR" "$data" --ip "$ip" > "$log" 2>&1) &
            ;;
        floor|duplex)
            (exec ip netns exec "$ns" "$FLOOR" --listen "$ip:6881" --serve "$FLOOR_HOSTS" > "$log" 2>&1) &
            ;;
        aria2)
            (exec ip netns exec "$ns" aria2c --dir="$data" --check-integrity=true --bt-hash-check-seed=true --seed-ratio=0.0 \
                --listen-port=6881 --interface="$ip" --enable-dht=false --enable-dht6=false \
                --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none \
                --bt-max-peers=0 --disable-ipv6=true --summary-interval=0 --console-log-level=notice \
                --allow-overwrite=false "$TOR" > "$log" 2>&1) &
            ;;
    esac
    STARTED_PID=$!
}

# seed CLIENT DIR: starts host 0 seeding (data in $DATA_DIR) and waits until the tracker lists it.
seed() {
    local client=$1 dir=$2
    start_seeder "$client" 0 "$DATA_DIR" "$dir" "$dir/log"
    SEED_PID=$STARTED_PID
    PIDS+=("$SEED_PID")
    if [ "$client" = floor ] || [ "$client" = duplex ]; then
        for _ in $(seq 100); do
            ip netns exec "$HUB" bash -c "exec 3<>/dev/tcp/$(host_ip 0)/6881" 2>/dev/null && return 0
            sleep 0.1
        done
        echo "$client: the seeder did not listen; see $dir/log" >&2
        return 1
    fi
    # Ready when the tracker lists it as a seeder (it has checked its data).
    for _ in $(seq 600); do
        if ip netns exec "$HUB" curl -s -m 1 "http://$HUB_IP:$TPORT/scrape?info_hash=$INFO_HASH_Q" \
            | grep -q 'completei[1-9]'; then
            return 0
        fi
        sleep 0.1
    done
    echo "$client: the seeder did not reach the tracker; see $dir/log" >&2
    return 1
}

# leech CLIENT I DIR: host I downloads into DIR/out; writes DIR/result "exit_code seconds redundant".
leech() {
    local client=$1 i=$2 dir=$3 ip t0 rc=0 red=-
    ip=$(host_ip "$i")
    mkdir -p "$dir/out"
    t0=$(date +%s.%N)
    case "$client" in
        btorrent)
            bt_config "$dir" "$ip"
            (cd "$dir" && in_host "$i" /usr/bin/time -f "%U %S" -o "$dir/cpu" timeout "$LEECH_TIMEOUT" \
                "$BT" -c "$dir/torrents.toml" run "$LEECH_SCRIPT" "$TOR" "$dir/out") \
                > "$dir/log" 2>&1 || rc=$?
            red=$(sed -n 's/^FLEET downloaded=\([0-9]*\).*/\1/p' "$dir/log")
            [ -n "$red" ] && red=$((red - BYTES)) || red=-
            ;;
        libtorrent)
            in_host "$i" /usr/bin/time -f "%U %S" -o "$dir/cpu" timeout "$LEECH_TIMEOUT" \
                /usr/bin/python3 "$ROOT/benches/fleet_lt.py" leech "$TOR" "$dir/out" --ip "$ip" \
                > "$dir/log" 2>&1 || rc=$?
            red=$(sed -n 's/^FLEET .*redundant=\([0-9]*\).*/\1/p' "$dir/log")
            [ -n "$red" ] || red=-
            ;;
        floor|duplex)
            # One way, every leecher answers the other leechers; duplex, those above it (tcp_floor.rs).
            local from="" k serve=$((FLOOR_HOSTS - 1)) mode=()
            for k in $(seq 0 "$FLOOR_HOSTS"); do [ "$k" = "$i" ] || from="$from$(host_ip "$k"):6881,"; done
            if [ "$client" = duplex ]; then serve=$((FLOOR_HOSTS - i)); mode=(--duplex); fi
            in_host "$i" /usr/bin/time -f "%U %S" -o "$dir/cpu" timeout "$LEECH_TIMEOUT" \
                "$FLOOR" --listen "$ip:6881" --serve "$serve" --get "$BYTES" --from "$from" "${mode[@]}" \
                > "$dir/log" 2>&1 || rc=$?
            ;;
        aria2)
            in_host "$i" /usr/bin/time -f "%U %S" -o "$dir/cpu" timeout "$LEECH_TIMEOUT" \
                aria2c --dir="$dir/out" --seed-time=0 --listen-port=6881 --interface="$ip" \
                --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false \
                --file-allocation=none --bt-max-peers=0 --disable-ipv6=true --summary-interval=0 \
                --console-log-level=notice "$TOR" > "$dir/log" 2>&1 || rc=$?
            ;;
    esac
    # The copy is compared with the file once every leecher is done (verify_copies): a `cmp` of
    # 100 MiB here would take CPU from the leechers still running.
    echo "$rc $(echo "$(date +%s.%N) - $t0" | bc) $red" > "$dir/result"
    # With STAY, a leecher that is done seeds what it has until the case ends (the clients' own
    # leech modes exit when complete, so the same client is started again as a seeder).
    if [ "${STAY:-0}" = 1 ] && [ "$rc" = 0 ]; then
        start_seeder "$client" "$i" "$dir/out" "$dir" "$dir/reseed.log"
        echo "$STARTED_PID" >> "$dir/../reseed.pids"
    fi
}

# verify_copies RUN COUNT: each leecher that reported success must hold a byte-identical copy; one
# that does not gets exit code 99 in its result.
verify_copies() {
    local run=$1 count=$2 i r s d
    for i in $(seq 1 "$count"); do
        read -r r s d < "$run/l$i/result" 2>/dev/null || continue
        if [ "$r" = 0 ] && ! cmp -s "$DATA" "$run/l$i/out/$(basename "$DATA")"; then
            echo "99 $s $d" > "$run/l$i/result"
        fi
    done
}

INFO_HASH_Q=$(info_hash_query "$TOR")

LIMIT=$(echo "scale=3; $BYTES * 8 / ($RATE * 1000000)" | bc)
SLOW_LIMIT=$(echo "scale=3; $BYTES * 8 / ($SLOW * 1000000)" | bc)
ROWS=()

# run_case CASE CLIENT
run_case() {
    local case=$1 client=$2 n=12 late=0 leaves=0 slow=0 i
    case "$case" in
        n12) ;;
        n24) n=24 ;;
        mixed) slow=$((12 / 4)) ;;
        late) late=1 ;;
        seeder-leaves) leaves=1 ;;
        *) echo "unknown case $case" >&2; exit 2 ;;
    esac
    if { [ "$client" = floor ] || [ "$client" = duplex ]; } && { [ "$late" = 1 ] || [ "$leaves" = 1 ] || [ "$slow" -gt 0 ]; }; then
        return  # the floor is an even split among equal hosts present from the start: n12 and n24 only
    fi
    FLOOR_HOSTS=$n
    [[ " ${ORDER[*]} " == *" $case $client "* ]] || ORDER+=("$case $client")
    local run="$WORK/run/$case-$client${ROUND_TAG:-}"
    rm -rf "$run"; mkdir -p "$run"
    for i in $(seq 0 $((n + late))); do
        if [ "$i" -ge 1 ] && [ "$i" -le "$slow" ]; then shape "$i" "$SLOW"; else shape "$i" "$RATE"; fi
    done
    start_tracker "$run/tracker"
    local tracker_pid=${PIDS[-1]}
    if ! seed "$client" "$run/seed"; then
        ROWS+=("$(printf '%-14s %-11s seeder failed to start' "$case" "$client")")
        kill "$SEED_PID" "$tracker_pid" 2>/dev/null || true
        return
    fi
    local rx0=() pk0=() seed_tx0 t0 lp=() stopper=""
    for i in $(seq 1 $((n + late))); do rx0[i]=$(rx_bytes "$i"); pk0[i]=$(packets "$i"); done
    seed_tx0=$(tx_bytes 0)
    t0=$(date +%s.%N)
    for i in $(seq 1 "$n"); do STAY=$leaves leech "$client" "$i" "$run/l$i" & lp+=("$!"); done
    if [ "$late" = 1 ]; then
        (sleep "$LIMIT"; leech "$client" $((n + 1)) "$run/l$((n + 1))") & lp+=("$!")
    fi
    local sampler=""
    if [ "${TIMELINE:-0}" = 1 ]; then
        # The seeder's link, twice a second: seconds since the leechers started, bytes sent so far.
        (while :; do echo "$(echo "$(date +%s.%N) - $t0" | bc) $(( $(tx_bytes 0) - seed_tx0 ))"; sleep 0.5; done \
            > "$run/seed/tx") & sampler=$!
        PIDS+=("$sampler")
    fi
    local capper=""
    if [ "${CAPTURE:-0}" = 1 ]; then
        (sleep "$(echo "$LIMIT / 2" | bc -l)"
         in_host 1 timeout 3 tcpdump -i eth0 -nn -s 96 -w "$run/capture.pcap" 2>/dev/null || true) &
        capper=$!
    fi
    if [ "$leaves" = 1 ]; then
        (
            local leave; leave=$(echo "$BYTES * $LEAVE_AT / 1" | bc)
            while [ $(( $(tx_bytes 0) - seed_tx0 )) -lt "$leave" ]; do sleep 0.1; done
            proc_cpu "$SEED_PID" > "$run/seed/cpu"
            kill "$SEED_PID" 2>/dev/null || true
            echo "$(date +%s.%N) - $t0" | bc > "$run/seeder-left"
        ) & stopper=$!
    fi
    wait "${lp[@]}" || true
    local wall; wall=$(echo "$(date +%s.%N) - $t0" | bc)
    if [ -n "$capper" ]; then
        wait "$capper" || true
        CAPTURES+=("$(printf '%-14s %-11s %s' "$case" "$client${ROUND_TAG:-}" \
            "$(packet_sizes "$run/capture.pcap" "$(host_ip 1)")")")
    fi
    [ -n "$stopper" ] && kill "$stopper" 2>/dev/null || true
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
    [ -f "$run/seeder-left" ] || proc_cpu "$SEED_PID" > "$run/seed/cpu"
    # Leechers that stayed to seed (seeder-leaves): stopped now; their CPU after completion is not counted.
    [ -f "$run/reseed.pids" ] && kill $(cat "$run/reseed.pids") 2>/dev/null || true
    kill "$SEED_PID" "$tracker_pid" 2>/dev/null || true
    wait "$SEED_PID" 2>/dev/null || true

    # (The floor's leechers count bytes and keep no copy.)
    [ "$client" = floor ] || [ "$client" = duplex ] || verify_copies "$run" $((n + late))

    # Per leecher: exit code, seconds, redundant bytes; wire bytes per byte of file.
    local ok=OK red=0 redknown=1 rx=0 pk=0 fast_max=0 slow_max=0 late_s=- r s d
    for i in $(seq 1 $((n + late))); do
        read -r r s d < "$run/l$i/result" || { r=98; s=0; d=-; }
        [ "$r" = 0 ] || ok="FAIL(l$i rc=$r)"
        if [ "$d" = - ]; then redknown=0; else red=$((red + d)); fi
        rx=$((rx + $(rx_bytes "$i") - rx0[i]))
        pk=$((pk + $(packets "$i") - pk0[i]))
        if [ "$late" = 1 ] && [ "$i" = $((n + 1)) ]; then late_s=$s
        elif [ "$i" -le "$slow" ]; then slow_max=$(echo "if ($s > $slow_max) $s else $slow_max" | bc)
        else fast_max=$(echo "if ($s > $fast_max) $s else $fast_max" | bc); fi
    done
    local total=$((BYTES * (n + late))) redp=- note=""
    [ "$redknown" = 1 ] && redp=$(echo "scale=2; 100 * $red / $total" | bc)%
    case "$case" in
        mixed) note="fast leechers $(printf %.1f "$fast_max") s = $(echo "scale=2; $fast_max / $LIMIT" | bc)x; slow $(printf %.1f "$slow_max") s = $(echo "scale=2; $slow_max / $SLOW_LIMIT" | bc)x their limit" ;;
        late) note="late joiner $(printf %.1f "$late_s") s from its start" ;;
        seeder-leaves)
            if [ -f "$run/seeder-left" ]; then note="seeder left at $(printf %.1f "$(cat "$run/seeder-left")") s"
            else note="the swarm finished before the seeder had sent ${LEAVE_AT}x"; fi ;;
    esac
    # Only the logs are kept: N copies of the file per run would fill the disk.
    rm -rf "$run"/l*/out "$run"/l*/.btorrent "$run"/l*/torrents
    local cpu sys
    read -r cpu sys <<< "$(cpu_sum "$run"/seed/cpu "$run"/l*/cpu)"
    ROWS+=("$(printf '%-14s %-11s %7.1f %6.2fx %10s %6.3f %7s %7s %4s  %-6s %s' "$case" "$client" "$wall" \
        "$(echo "scale=3; $wall / $LIMIT" | bc)" "$redp" "$(echo "scale=3; $rx / $total" | bc)" \
        "$((pk * 1048576 / total))" "$cpu" "$sys" "$ok" "$note")")
    # The figure the summary takes: the fast leechers' time (mixed), the late joiner's own, else the wall.
    local figure=$wall
    case "$case" in mixed) figure=$fast_max ;; late) figure=$late_s ;; esac
    if [ "$ok" = OK ]; then WALLS["$case $client"]+="$figure "; fi
}

# summary: each case's and client's median wall time over the rounds, with the range.
summary() {
    local key walls n
    echo
    echo "median of $RUNS rounds (min-max); x = median / link limit; mixed: the fast leechers' time;"
    echo "late: the late joiner's own time"
    for key in "${ORDER[@]}"; do
        walls=$(printf '%s\n' ${WALLS[$key]:-} | sort -n)
        n=$(printf '%s\n' ${WALLS[$key]:-} | grep -c . || true)
        if [ "$n" = 0 ]; then printf '%-26s no run passed\n' "$key"; continue; fi
        local med; med=$(echo "$walls" | sed -n "$(( (n + 1) / 2 ))p")
        printf '%-26s %6.1f s = %5.2fx  (%.1f-%.1f s, %d of %d rounds passed)\n' "$key" "$med" \
            "$(echo "scale=3; $med / $LIMIT" | bc)" "$(echo "$walls" | head -1)" "$(echo "$walls" | tail -1)" "$n" "$RUNS"
    done
}

LEECH_SCRIPT="$ROOT/benches/fleet-leech.rhai"
[ "${TIMELINE:-0}" = 1 ] && LEECH_SCRIPT="$ROOT/benches/fleet-timeline.rhai"
RUNS="${RUNS:-1}"
declare -A WALLS=()
CAPTURES=()
ORDER=()
MAX_HOSTS=26
make_hosts "$MAX_HOSTS"
for case in "${CASES[@]}"; do
    for round in $(seq 1 "$RUNS"); do
        [ "$RUNS" = 1 ] && ROUND_TAG="" || ROUND_TAG="-$round"
        for client in $CLIENTS; do
            echo "running $case with $client${ROUND_TAG:+ (round $round of $RUNS)}..." >&2
            run_case "$case" "$client"
        done
    done
done

echo
echo "1 seeder -> N leechers, $BYTES bytes, links at $RATE Mbit/s each way (tbf), $(nproc) cores;"
echo "link limit = size / link rate = ${LIMIT} s; redundant = payload received beyond the file (client's count);"
echo "wire = bytes on the leechers' links per byte of file (headers included); pkt/MiB = packets on the"
echo "leechers' links (both ways) per MiB of file received; cpu = all the client's processes, sys = its"
echo "share spent in the kernel"
printf '%-14s %-11s %7s %7s %10s %6s %7s %7s %4s  %-6s %s\n' case client wall_s x_limit redundant wire pkt/MiB cpu_s sys ok note
printf '%s\n' "${ROWS[@]}"
[ "$RUNS" = 1 ] || summary
if [ ${#CAPTURES[@]} -gt 0 ]; then
    echo
    echo "leecher 1's link, 3 s from half the link limit on (CAPTURE=1):"
    printf '%s\n' "${CAPTURES[@]}"
fi
