#!/usr/bin/python3
"""A minimal python3-libtorrent seeder or leecher on 127.0.0.1 for the interop tests.

usage: /usr/bin/python3 lt_client.py seed|leech <file.torrent or magnet link> <folder> <port>

Debian's libtorrent module is visible to /usr/bin/python3 only. No DHT, LSD, UPnP, NAT-PMP or uTP;
several connections per IP allowed (every peer is 127.0.0.1). A leecher exits 0 once it seeds (124
after 150 s); a seeder re-announces every 2 s so it dials leechers that arrive late, and exits after
150 s. Tracker and error alerts go to stdout. Given a magnet link, it fetches the metadata (BEP 9) from
the link's trackers and x.pe peers first; peer exchange (ut_pex) is on, as libtorrent's default.
"""
import sys
import time

import libtorrent as lt

mode, torrent, folder, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = lt.default_settings()
s.update({
    "listen_interfaces": "127.0.0.1:%d" % port, "outgoing_interfaces": "127.0.0.1",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True, "min_reconnect_time": 1,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.tracker_notification,
})
ses = lt.session(s)
if torrent.startswith("magnet:"):
    p = lt.parse_magnet_uri(torrent)
else:
    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(torrent)
p.save_path = folder
h = ses.add_torrent(p)
start = time.time()
last = 0
while time.time() - start < 150:
    for a in ses.pop_alerts():
        print("[%6.2f] %s" % (time.time() - start, a.message()), flush=True)
    st = h.status()
    if mode == "leech" and st.is_seeding:
        print("DONE", flush=True)
        sys.exit(0)
    if mode == "seed" and st.is_seeding and time.time() - last > 2:
        last = time.time()
        h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    time.sleep(0.05)
sys.exit(0 if mode == "seed" else 124)
