#!/usr/bin/python3
"""A minimal python3-libtorrent seeder or leecher on 127.0.0.1 for the interop tests.

usage: /usr/bin/python3 lt_client.py seed|leech <file.torrent or magnet link> <folder> <port> [dht-nodes]
       /usr/bin/python3 lt_client.py node - <folder> <port> <dht-nodes>

With LT_INTERFACE=<ip>[,<ip>...] it listens and dials on those addresses instead; with LT_LSD=1 local service
discovery (BEP 14) is on, announcing every 2 s, READY is printed once the torrent is added, peer
alerts (those of peers it found that way) go to stdout, and a leecher stays after DONE (until the
test ends it or 150 s pass), so an alert that comes after the download is still printed. With
LT_ENC=forced it makes and takes encrypted connections only (message stream encryption, RC4: a
peer that cannot encrypt is never connected). With LT_UTP=only it makes and takes uTP connections
only (BEP 29; TCP off both ways). With LT_DOWN_LIMIT=<bytes/s> it downloads no faster. With LT_PEERS=1 it prints, whenever it changes, how many pieces
it knows each peer has, `PEER <ip>:<port> HAS <k>/<n>`, and `PEER <ip>:<port> GONE` when one
disconnects. With LT_CONNECT=<ip>:<port> it dials that peer once the torrent is added (and again
every 10 s while it is not connected). With LT_FILES=<priorities> (comma-separated, one per file, 0 to skip) a leecher fetches
those files alone, prints FINISHED once it has them (a partial seed) and stays; when the file named
by LT_WANT_ALL appears it wants every file (WANTS ALL), and exits once it seeds. With
LT_SAVE_TORRENT=<path> a leecher writes the torrent as it holds it once it seeds (its resume data
made a .torrent: the info dictionary, and the `piece layers` of a v2 or hybrid torrent when it has
them), before it exits.

Debian's libtorrent module is visible to /usr/bin/python3 only. No LSD (unless LT_LSD), UPnP, NAT-PMP or uTP (unless LT_UTP); no DHT
unless `dht-nodes` (host:port,host:port...) names the nodes of a loopback DHT: libtorrent then uses
them as routers and adds each to its routing table (a router alone is never used for lookups), with
the checks that keep loopback and same-IP nodes out turned off, and announces every 2 s. Mode `node`
is a DHT node alone, with no torrent, for 150 s: other libtorrent nodes store their announces in it
(the mainline crate's nodes ignore libtorrent's queries: they only parse 4-byte transaction ids);
several connections per IP allowed (every peer is 127.0.0.1). A leecher exits 0 once it seeds (124
after 150 s); a seeder re-announces every 2 s so it dials leechers that arrive late, and exits after
150 s. Tracker and error alerts go to stdout. Given a magnet link, it fetches the metadata (BEP 9) from
the link's trackers and x.pe peers first; peer exchange (ut_pex) is on, as libtorrent's default.
"""
import os
import sys
import time

import libtorrent as lt

mode, torrent, folder, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# Another address than 127.0.0.1 (a test's network namespace), and local service discovery on.
ip = os.environ.get("LT_INTERFACE", "127.0.0.1")
lsd = os.environ.get("LT_LSD") == "1"
dht_nodes = [n for n in (sys.argv[5].split(",") if len(sys.argv) > 5 else []) if n]
s = lt.default_settings()
s.update({
    "listen_interfaces": ",".join("%s:%d" % (a, port) for a in ip.split(",")),
    "outgoing_interfaces": ip,
    "enable_dht": False, "enable_lsd": lsd, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True, "min_reconnect_time": 1,
    # Keep dialing a peer that failed (3 by default, then never again): a busy machine's first
    # tries may fail, and a peer behind a NAT is reached only once an introducer is connected.
    "max_failcount": 20,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.tracker_notification,
})
if os.environ.get("LT_ENC") == "forced":
    s.update({
        "out_enc_policy": int(lt.enc_policy.forced), "in_enc_policy": int(lt.enc_policy.forced),
        "allowed_enc_level": int(lt.enc_level.rc4), "prefer_rc4": True,
    })
if os.environ.get("LT_DOWN_LIMIT"):
    s["download_rate_limit"] = int(os.environ["LT_DOWN_LIMIT"])
if os.environ.get("LT_UTP") == "only":
    s.update({
        "enable_incoming_utp": True, "enable_outgoing_utp": True,
        "enable_incoming_tcp": False, "enable_outgoing_tcp": False,
    })
if lsd:
    s["alert_mask"] |= lt.alert.category_t.peer_notification
    s["local_service_announce_interval"] = 2
if dht_nodes:
    s["alert_mask"] |= lt.alert.category_t.dht_notification
    s.update({
        "enable_dht": True, "dht_bootstrap_nodes": ",".join(dht_nodes),
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False, "dht_prefer_verified_node_ids": False,
    })
ses = lt.session(s)
for n in dht_nodes:
    host, _, node_port = n.rpartition(":")
    ses.add_dht_node((host, int(node_port)))
start = time.time()
if mode == "node":
    while time.time() - start < 150:
        for a in ses.pop_alerts():
            print("[%6.2f] %s" % (time.time() - start, a.message()), flush=True)
        time.sleep(0.05)
    sys.exit(0)
if torrent.startswith("magnet:"):
    p = lt.parse_magnet_uri(torrent)
else:
    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(torrent)
p.save_path = folder
files = [int(x) for x in os.environ.get("LT_FILES", "").split(",") if x]
want_all = os.environ.get("LT_WANT_ALL")
if files:
    p.file_priorities = files
h = ses.add_torrent(p)
connect = os.environ.get("LT_CONNECT")
connect = (connect.rpartition(":")[0], int(connect.rpartition(":")[2])) if connect else None
dialed = 0
finished = False
if lsd:
    print("READY", flush=True)
last = 0
done = False
peers = os.environ.get("LT_PEERS") == "1"
peer_has = {}
while time.time() - start < 150:
    for a in ses.pop_alerts():
        print("[%6.2f] %s" % (time.time() - start, a.message()), flush=True)
    if peers:
        now = set()
        for pi in h.get_peer_info():
            addr = "%s:%d" % (pi.ip[0], pi.ip[1])
            now.add(addr)
            has = "%d/%d" % (sum(1 for x in pi.pieces if x), len(pi.pieces))
            if peer_has.get(addr) != has:
                peer_has[addr] = has
                print("PEER %s HAS %s" % (addr, has), flush=True)
        for addr in [a for a in peer_has if a not in now]:
            del peer_has[addr]
            print("PEER %s GONE" % addr, flush=True)
    if connect and time.time() - dialed > 10:
        dialed = time.time()
        if not any(pi.ip == connect for pi in h.get_peer_info()):
            h.connect_peer(connect)
    st = h.status()
    if files and st.is_finished and not st.is_seeding and not finished:
        print("FINISHED", flush=True)
        finished = True
    if files and finished and want_all and os.path.exists(want_all):
        h.prioritize_files([1] * h.torrent_file().num_files())
        print("WANTS ALL", flush=True)
        want_all = None
    if mode == "leech" and st.is_seeding and not done:
        print("DONE", flush=True)
        done = True
        save_to = os.environ.get("LT_SAVE_TORRENT")
        if save_to:
            h.save_resume_data(lt.save_resume_flags_t.save_info_dict)
            saved = None
            while saved is None and time.time() - start < 150:
                for a in ses.pop_alerts():
                    if isinstance(a, lt.save_resume_data_alert):
                        saved = a.params
                time.sleep(0.05)
            with open(save_to, "wb") as f:
                f.write(lt.bencode(lt.write_torrent_file(saved)))
            print("SAVED", flush=True)
        if not lsd:
            sys.exit(0)
    if (mode == "seed" and st.is_seeding or dht_nodes) and not lsd and time.time() - last > 2:
        last = time.time()
        if dht_nodes:
            h.force_dht_announce()
        else:
            h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    time.sleep(0.05)
sys.exit(0 if mode == "seed" or done else 124)
