//! The allowed-fast set (BEP 6) over 127.0.0.1: a seed tells a peer with the fast extension the
//! pieces of its canonical set, serves them while it chokes the peer, and rejects the others.

use std::net::Ipv4Addr;
use std::time::Duration;

use btorrent::engine::SessionConfig;
use btorrent::wire::allowed_fast::allowed_fast_set;
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::wire::{BlockRef, Geometry, Message, PeerCodec};
use btorrent::PeerId;
use futures::SinkExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::support::fake_peer::next_message;
use crate::support::*;

const PIECE: u64 = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_choked_peer_gets_its_allowed_fast_pieces_and_no_other() {
    let src = tempfile::tempdir().unwrap();
    let data = write_random(&src.path().join("d.bin"), 64 * PIECE as usize, 51);
    let meta = torrent(&src.path().join("d.bin"), PIECE, vec![]);
    let cfg = SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    };
    let (seed, _h) = seeder_with(cfg, &meta, src.path()).await;

    let mut s = TcpStream::connect(seed.listen_addr()).await.unwrap();
    let t = Duration::from_secs(5);
    let ours = Handshake::ours(meta.info_hash, PeerId::generate());
    write_handshake(&mut s, &ours, t).await.unwrap();
    assert!(read_handshake(&mut s, t).await.unwrap().supports_fast());
    let geo = Geometry::from_info(&meta.info);
    let mut f = Framed::new(s, PeerCodec::new(geo, true));
    // We never say we are interested: the seed keeps us choked.
    let want = allowed_fast_set(Ipv4Addr::LOCALHOST, &meta.info_hash, 64, 5);
    let mut told = Vec::new();
    while told.len() < want.len() {
        match next_message(&mut f).await {
            Message::AllowedFast(i) => told.push(i),
            Message::Unchoke => panic!("unchoked a peer that is not interested"),
            _ => {}
        }
    }
    assert_eq!(told, want);
    let block = |index: u32| BlockRef {
        index,
        begin: 0,
        length: PIECE as u32,
    };
    let other = (0..64).find(|i| !want.contains(i)).unwrap();
    f.send(Message::Request(block(other))).await.unwrap();
    f.send(Message::Request(block(want[0]))).await.unwrap();
    let (mut rejected, mut served) = (false, false);
    while !(rejected && served) {
        match next_message(&mut f).await {
            Message::Reject(b) => {
                assert_eq!(b, block(other));
                rejected = true;
            }
            Message::Piece { index, data: d, .. } => {
                assert_eq!(index, want[0], "a piece outside the set was sent");
                let at = (index as u64 * PIECE) as usize;
                assert_eq!(&d[..], &data[at..at + PIECE as usize]);
                served = true;
            }
            Message::Unchoke => panic!("unchoked a peer that is not interested"),
            _ => {}
        }
    }
    seed.shutdown(Duration::from_secs(2)).await;
}
