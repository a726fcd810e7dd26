//! Two connections with one peer: a seed dials a peer the test plays (on 127.0.0.6), and once that
//! connection is up the peer dials the seed too, under the same peer id, as happens when both
//! learn of each other at once. The seed must keep the connection the other end keeps too:
//! libtorrent's rule (the side with the lower listen port keeps the connection it opened), the
//! lower peer id's dial where the ports are equal. The other connection ends; the kept one serves.

use std::net::SocketAddr;
use std::time::Duration;

use btorrent::engine::SessionConfig;
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::wire::{Geometry, Message, PeerCodec};
use btorrent::{Metainfo, PeerId};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::codec::Framed;

use crate::support::fake_peer::next_message;
use crate::support::*;

type Conn = Framed<TcpStream, PeerCodec>;

const PEER_IP: &str = "127.0.0.6";
/// The peer id libtorrent 2.0.8 gives itself, but for its random part (above every btorrent id).
const LIBTORRENT_LIKE: PeerId = PeerId(*b"-LT2080-k3Jq9xWm2Zp0");
/// Below every btorrent id (`-BT...`).
const LOW_ID: PeerId = PeerId(*b"-AA0100-000000000000");

/// Where the test peer listens, against the seed's port.
#[derive(Clone, Copy, Debug)]
enum PeerPort {
    Below,
    Above,
    Same,
}

/// Which connection the seed kept.
#[derive(Debug, PartialEq)]
enum Kept {
    TheSeeds,
    ThePeers,
}

/// A listener on [`PEER_IP`] at a free port below, above or equal to `seed_port`.
async fn listener(seed_port: u16, at: PeerPort) -> TcpListener {
    let tries: Vec<u16> = match at {
        PeerPort::Below => (1..200).map(|d| seed_port - d).collect(),
        PeerPort::Above => (1..200).filter_map(|d| seed_port.checked_add(d)).collect(),
        PeerPort::Same => vec![seed_port],
    };
    for port in tries {
        if let Ok(l) = TcpListener::bind((PEER_IP, port)).await {
            return l;
        }
    }
    panic!("no free port {at:?} {seed_port} on {PEER_IP}");
}

async fn handshake(meta: &Metainfo, mut s: TcpStream, id: PeerId, dialed: bool) -> Conn {
    let t = Duration::from_secs(10);
    let ours = Handshake::ours(meta.info_hash, id);
    if dialed {
        write_handshake(&mut s, &ours, t).await.unwrap();
    }
    let theirs = read_handshake(&mut s, t).await.unwrap();
    assert_eq!(theirs.info_hash, meta.info_hash);
    if !dialed {
        write_handshake(&mut s, &ours, t).await.unwrap();
    }
    Framed::new(
        s,
        PeerCodec::new(Geometry::from_info(&meta.info), theirs.supports_fast()),
    )
}

/// Reads until the connection ends.
async fn until_closed(c: &mut Conn) {
    while let Some(Ok(_)) = c.next().await {}
}

/// The crossing against a seed of `meta` on 127.0.0.2: which connection it keeps.
async fn cross(meta: &Metainfo, dir: &std::path::Path, at: PeerPort, id: PeerId) -> Kept {
    let cfg = SessionConfig {
        listen: "127.0.0.2:0".parse().unwrap(),
        super_seed: Some(false),
        ..Default::default()
    };
    let (seed, h) = seeder_with(cfg, meta, dir).await;
    let l = listener(seed.listen_addr().port(), at).await;
    h.add_peers(vec![l.local_addr().unwrap()]);
    let (s, _) = tokio::time::timeout(Duration::from_secs(30), l.accept())
        .await
        .expect("the seed never dialed")
        .unwrap();
    let mut seeds = handshake(meta, s, id, false).await;
    // Registered: it says what it has.
    next_message(&mut seeds).await;

    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(PEER_IP.parse().unwrap(), 0))
        .unwrap();
    let s = sock.connect(seed.listen_addr()).await.unwrap();
    let mut peers = handshake(meta, s, id, true).await;

    let (kept, mut conn) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            _ = until_closed(&mut seeds) => (Kept::ThePeers, peers),
            _ = until_closed(&mut peers) => (Kept::TheSeeds, seeds),
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{at:?}: both connections still open after 30 s"));
    // The kept one serves.
    conn.send(Message::Interested).await.unwrap();
    while !matches!(next_message(&mut conn).await, Message::Unchoke) {}
    drop(seed);
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_crossed_connections_both_ends_keep_the_one_the_lower_port_opened() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 256 * 1024, 7);
    let meta = torrent(&src.path().join("d.bin"), 16 * 1024, vec![]);
    let cases = [
        // libtorrent (a higher peer id) on a lower port: the seed gives up its own dial.
        (PeerPort::Below, LIBTORRENT_LIKE, Kept::ThePeers),
        (PeerPort::Above, LIBTORRENT_LIKE, Kept::TheSeeds),
        (PeerPort::Below, LOW_ID, Kept::ThePeers),
        (PeerPort::Above, LOW_ID, Kept::TheSeeds),
        // Equal ports: the lower peer id's dial.
        (PeerPort::Same, LIBTORRENT_LIKE, Kept::TheSeeds),
        (PeerPort::Same, LOW_ID, Kept::ThePeers),
    ];
    for (at, id, expected) in cases {
        let kept = cross(&meta, src.path(), at, id).await;
        assert_eq!(kept, expected, "peer port {at:?}, peer id {id:?}");
    }
}
