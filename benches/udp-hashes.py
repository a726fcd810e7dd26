#!/usr/bin/env python3
"""A stand-in UDP tracker (BEP 15) that records the info-hashes a load generator uses.

usage: udp-hashes.py PORT SECONDS OUT

Listens on 127.0.0.1:PORT for SECONDS, answers connect, announce (no peers) and scrape (zeros) so
the generator goes on, and writes every info-hash it saw, in hex, one a line, to OUT. benches/tracker.sh
uses the list as opentracker's whitelist (Debian builds opentracker whitelist-only), so that both
trackers get the same load of real announces.
"""
import socket
import struct
import sys
import time

port, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
sock.settimeout(0.2)
seen = set()
end = time.time() + seconds
while time.time() < end:
    try:
        packet, peer = sock.recvfrom(2048)
    except socket.timeout:
        continue
    if len(packet) < 16:
        continue
    action, tid = struct.unpack_from(">II", packet, 8)
    if action == 0 and len(packet) == 16:
        sock.sendto(struct.pack(">IIQ", 0, tid, 0x1234), peer)
    elif action == 1 and len(packet) >= 98:
        seen.add(packet[16:36].hex())
        sock.sendto(struct.pack(">IIIII", 1, tid, 1800, 0, 0), peer)
    elif action == 2 and (len(packet) - 16) % 20 == 0:
        n = (len(packet) - 16) // 20
        for i in range(n):
            seen.add(packet[16 + 20 * i:36 + 20 * i].hex())
        sock.sendto(struct.pack(">II", 2, tid) + b"\0" * 12 * n, peer)
with open(out, "w") as f:
    f.write("".join(h + "\n" for h in sorted(seen)))
print(len(seen))
