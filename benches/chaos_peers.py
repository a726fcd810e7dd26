#!/usr/bin/env python3
"""Hostile peers for benches/chaos.sh, on loopback only.

Usage: chaos_peers.py liar <torrent> <tracker-announce-url> <ip> <port> <secs>
       chaos_peers.py squat <torrent> <ip> <secs> <target-ip:port>...

liar:  listens on ip:port, announces itself to the tracker as a seed, and answers every request with
       garbage (every piece it sends fails its hash check).
squat: opens 60 connections from ip to each target that handshake and then only send keep-alives,
       reopening any that the target closes.
Both stop by themselves after <secs> seconds."""
import hashlib
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request


def bdecode(data, i=0):
    """Returns (value, next index) for the bencoded value at data[i:]."""
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            start = i
            v, i = bdecode(data, i)
            out[k] = v
            if k == b"info":
                out[b"__info_span"] = (start, i)
        return out, i + 1
    j = data.index(b":", i)
    n = int(data[i:j])
    return data[j + 1:j + 1 + n], j + 1 + n


def load(path):
    raw = open(path, "rb").read()
    meta, _ = bdecode(raw)
    a, b = meta[b"__info_span"]
    info = meta[b"info"]
    total = info.get(b"length") or sum(f[b"length"] for f in info[b"files"])
    return hashlib.sha1(raw[a:b]).digest(), info[b"piece length"], total


def peer_id():
    return b"-XX0001-" + bytes(random.randrange(256) for _ in range(12))


def recv_exact(sock, n):
    got = b""
    while len(got) < n:
        chunk = sock.recv(min(65536, n - len(got)))
        if not chunk:
            raise ConnectionError("closed")
        got += chunk
    return got


def handshake(sock, ih):
    sock.sendall(b"\x13BitTorrent protocol" + bytes(8) + ih + peer_id())
    recv_exact(sock, 68)


def read_msg(sock):
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    return recv_exact(sock, n)


def liar(torrent, announce, ip, port, secs):
    ih, plen, total = load(torrent)
    pieces = (total + plen - 1) // plen
    bits = bytearray((pieces + 7) // 8)
    for i in range(pieces):
        bits[i // 8] |= 0x80 >> (i % 8)
    end = time.time() + secs
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(64)
    srv.settimeout(1)

    def serve(conn):
        try:
            conn.settimeout(30)
            handshake(conn, ih)
            conn.sendall(struct.pack(">IB", 1 + len(bits), 5) + bits)
            while time.time() < end:
                msg = read_msg(conn)
                if msg[:1] == b"\x02":  # interested
                    conn.sendall(struct.pack(">IB", 1, 1))  # unchoke
                elif msg[:1] == b"\x06":  # request
                    index, begin, length = struct.unpack(">III", msg[1:13])
                    body = struct.pack(">BII", 7, index, begin) + bytes([0xAB]) * length
                    conn.sendall(struct.pack(">I", len(body)) + body)
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()

    def announce_loop():
        while time.time() < end:
            q = urllib.parse.urlencode({"info_hash": ih, "peer_id": peer_id(), "port": port,
                                        "uploaded": 0, "downloaded": 0, "left": 0,
                                        "compact": 1, "ip": ip})
            try:
                urllib.request.urlopen(f"{announce}?{q}", timeout=5).read()
            except OSError:
                pass
            time.sleep(10)

    threading.Thread(target=announce_loop, daemon=True).start()
    while time.time() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def squat(torrent, ip, secs, targets):
    ih, _, _ = load(torrent)
    end = time.time() + secs

    def hold(target):
        host, port = target.rsplit(":", 1)
        while time.time() < end:
            s = socket.socket()
            try:
                s.bind((ip, 0))
                s.settimeout(10)
                s.connect((host, int(port)))
                handshake(s, ih)
                s.settimeout(1)
                last = time.time()
                while time.time() < end:
                    try:
                        if not s.recv(65536):
                            break
                    except socket.timeout:
                        pass
                    if time.time() - last > 30:
                        s.sendall(bytes(4))  # keep-alive
                        last = time.time()
            except (OSError, ConnectionError):
                time.sleep(1)
            finally:
                s.close()

    threads = [threading.Thread(target=hold, args=(t,), daemon=True) for t in targets for _ in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, end - time.time()) + 5)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "liar":
        liar(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
    elif mode == "squat":
        squat(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5:])
    else:
        sys.exit(__doc__)
