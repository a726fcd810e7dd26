#!/usr/bin/python3
"""A libtorrent seeder or leecher for the benches (fleet.sh, transfer.sh, chaos.sh), bound to one address.
Usage: fleet_lt.py seed|leech <file.torrent> <dir> --ip IP [--port P] [--timeout S] [--encrypt] [--utp]
  seed : checks <dir>/<name>, then seeds until killed or the timeout.
  leech: downloads into <dir>; exits 0 once every piece is verified, printing
         "FLEET downloaded=<payload bytes received> redundant=<duplicates + failed bytes>".
libtorrent's default settings, with DHT, LSD, UPnP, NAT-PMP and uTP off (plain TCP, tracker only);
--encrypt: encrypted connections only (message stream encryption, RC4), made and taken;
--utp: uTP connections only (BEP 29; TCP off both ways)."""
import argparse, sys, time
import libtorrent as lt

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["seed", "leech"]); ap.add_argument("torrent"); ap.add_argument("dir")
ap.add_argument("--ip", required=True); ap.add_argument("--port", type=int, default=6881)
ap.add_argument("--timeout", type=float, default=600)
ap.add_argument("--encrypt", action="store_true")
ap.add_argument("--utp", action="store_true")
a = ap.parse_args()
s = lt.default_settings()
s.update({
    "listen_interfaces": f"{a.ip}:{a.port}",
    "outgoing_interfaces": a.ip,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": lt.alert.category_t.error_notification,
})
if a.encrypt:
    s.update({
        "out_enc_policy": int(lt.enc_policy.forced), "in_enc_policy": int(lt.enc_policy.forced),
        "allowed_enc_level": int(lt.enc_level.rc4), "prefer_rc4": True,
    })
if a.utp:
    s.update({
        "enable_incoming_utp": True, "enable_outgoing_utp": True,
        "enable_incoming_tcp": False, "enable_outgoing_tcp": False,
    })
ses = lt.session(s)
p = lt.add_torrent_params()
p.ti = lt.torrent_info(a.torrent)
p.save_path = a.dir
h = ses.add_torrent(p)
t0 = time.time()
while time.time() - t0 < a.timeout:
    for al in ses.pop_alerts():
        print(f"[{time.time() - t0:7.2f}] {al.message()}", flush=True)
    st = h.status()
    if a.mode == "leech" and st.is_seeding:
        print(f"FLEET downloaded={st.total_payload_download} "
              f"redundant={st.total_redundant_bytes + st.total_failed_bytes} seconds={time.time() - t0:.2f}",
              flush=True)
        sys.exit(0)
    time.sleep(0.05)
sys.exit(0 if a.mode == "seed" else 124)
