#!/usr/bin/python3
"""What python3-libtorrent (Debian's, hence /usr/bin/python3) sees in a .torrent, printed as one JSON object.

    lt_probe.py show <file.torrent>
    lt_probe.py check <file.torrent> <save_path> [timeout_s]
    lt_probe.py create <path> <out.torrent> <piece_length> <json options>

`check` hash-checks the data under save_path with a libtorrent session that talks to nobody (no trackers,
web seeds, DHT, LSD, UPnP or NAT-PMP; listening on 127.0.0.1 only) and reports which pieces are valid.
`create` makes a torrent with libtorrent's own creator; options: trackers (list of tiers), comment,
private, web_seeds, source (added to the info dict), v1_only, v2_only, symlinks (links inside the folder
recorded as links, BEP 47). Each file's `symlink` is its link target (null for other files).

`info_hash` is the v1 info-hash, or for a v2-only torrent (BEP 52) the SHA-256 one cut to 20 bytes (the
swarm's id); `info_hash_v2` is the whole SHA-256 one (null for v1 torrents)."""
import json
import os
import sys
import time

import libtorrent as lt


def swarm_hash(ti):
    hashes = ti.info_hashes()
    return str(hashes.v1) if hashes.has_v1() else str(hashes.v2)[:40]


def describe(ti):
    fs = ti.files()
    info = lt.bdecode(ti.info_section())
    source = info.get(b"source")
    hashes = ti.info_hashes()
    return {
        "info_hash": swarm_hash(ti),
        "info_hash_v2": str(hashes.v2) if hashes.has_v2() and not hashes.has_v1() else None,
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": ti.total_size(),
        "private": ti.priv(),
        "comment": ti.comment(),
        "creator": ti.creator(),
        "trackers": [[t.tier, t.url] for t in ti.trackers()],
        "web_seeds": [w["url"] for w in ti.web_seeds()],
        "source": source.decode() if source is not None else None,
        "info_keys": sorted(k.decode() for k in info.keys()),
        "files": [
            {
                "path": fs.file_path(i),
                "size": fs.file_size(i),
                "offset": fs.file_offset(i),
                "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
                "executable": bool(fs.file_flags(i) & lt.file_storage.flag_executable),
                "symlink": fs.symlink(i) if fs.file_flags(i) & lt.file_storage.flag_symlink else None,
            }
            for i in range(fs.num_files())
        ],
    }


def check(path, save_path, timeout):
    with open(path, "rb") as f:
        whole = lt.bdecode(f.read())
    full = lt.torrent_info(path)
    # Only the info dict (and a v2 torrent's piece layers): same info-hash, no trackers or web seeds
    # to contact.
    kept = {b"info": lt.bdecode(full.info_section())}
    if b"piece layers" in whole:
        kept[b"piece layers"] = whole[b"piece layers"]
    ti = lt.torrent_info(lt.bencode(kept))
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": 0,
    })
    h = ses.add_torrent({"ti": ti, "save_path": save_path})
    deadline = time.time() + timeout
    done = (lt.torrent_status.seeding, lt.torrent_status.finished, lt.torrent_status.downloading)
    while True:
        st = h.status()
        if st.state in done and not st.errc.value():
            break
        if st.errc.value():
            return {"error": st.errc.message()}
        if time.time() > deadline:
            return {"error": f"timed out in state {st.state}"}
        time.sleep(0.05)
    pieces = list(st.pieces)
    return {
        "info_hash": swarm_hash(ti),
        "num_pieces": ti.num_pieces(),
        "valid": sum(1 for p in pieces if p),
        "invalid": [i for i, p in enumerate(pieces) if not p],
        "seeding": st.state == lt.torrent_status.seeding or st.is_seeding,
    }


def create(src, out, piece_length, opts):
    fs = lt.file_storage()
    links = lt.create_torrent.symlinks if opts.get("symlinks") else 0
    lt.add_files(fs, os.path.abspath(src), flags=links)
    flags = lt.create_torrent.v1_only if opts.get("v1_only") else 0
    if opts.get("v2_only"):
        flags = lt.create_torrent.v2_only
    flags |= links
    if opts.get("mtime"):
        flags |= lt.create_torrent.modification_time
    ct = lt.create_torrent(fs, piece_length, flags=flags)
    for tier, urls in enumerate(opts.get("trackers", [])):
        for url in urls:
            ct.add_tracker(url, tier)
    for url in opts.get("web_seeds", []):
        ct.add_url_seed(url)
    if "comment" in opts:
        ct.set_comment(opts["comment"])
    ct.set_priv(bool(opts.get("private")))
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(src)))
    entry = ct.generate()
    if "source" in opts:
        entry[b"info"][b"source"] = opts["source"].encode()
    with open(out, "wb") as f:
        f.write(lt.bencode(entry))
    return describe(lt.torrent_info(out))


def main():
    cmd = sys.argv[1]
    if cmd == "show":
        out = describe(lt.torrent_info(sys.argv[2]))
    elif cmd == "check":
        timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60
        out = check(sys.argv[2], sys.argv[3], timeout)
    elif cmd == "create":
        out = create(sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5]))
    else:
        sys.exit(f"unknown command {cmd}")
    print(json.dumps(out))


main()
