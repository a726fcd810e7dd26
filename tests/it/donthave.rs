//! `lt_donthave` (BEP 54) both ways over 127.0.0.1, against a peer the test plays itself: a seed
//! whose piece rots on disk tells the peer asking for it that it no longer has it, and keeps the
//! connection (a peer that cannot be told is let go); a downloader told that a peer lost a piece
//! cancels its requests for it there, never asks that peer for it again, and finishes from others.

use std::sync::Arc;
use std::time::Duration;

use btorrent::bencode::Writer;
use btorrent::engine::SessionConfig;
use btorrent::wire::extension::{ExtHandshake, LT_DONTHAVE_ID};
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::wire::{lt_donthave, Bitfield, BlockRef, Geometry, Message, PeerCodec};
use btorrent::{Metainfo, PeerId};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use crate::support::fake_peer::next_message;
use crate::support::*;

const PIECE: u64 = 16 * 1024;
/// The id the test peer gives `lt_donthave` (any but ours, to see it is the one used).
const PEER_DONTHAVE_ID: u8 = 9;

type Conn = Framed<TcpStream, PeerCodec>;

/// The test peer's handshakes on `s` (it dialed when `dial`): BitTorrent (fast and extensions),
/// then the extension handshake offering `lt_donthave`; returns the connection and the other
/// side's extension handshake (messages before it are dropped).
async fn greet(meta: &Metainfo, mut s: TcpStream, dial: bool) -> (Conn, ExtHandshake) {
    let t = Duration::from_secs(5);
    let ours = Handshake::ours(meta.info_hash, PeerId::generate());
    if dial {
        write_handshake(&mut s, &ours, t).await.unwrap();
    }
    let theirs = read_handshake(&mut s, t).await.unwrap();
    if !dial {
        write_handshake(&mut s, &ours, t).await.unwrap();
    }
    assert!(theirs.supports_extensions());
    let geo = Geometry::from_info(&meta.info);
    let mut f = Framed::new(s, PeerCodec::new(geo, theirs.supports_fast()));
    let mut w = Writer::default();
    w.begin_dict();
    w.bytes(b"m").begin_dict();
    w.key_int(b"lt_donthave", PEER_DONTHAVE_ID);
    w.end();
    w.end();
    f.send(Message::Extended {
        id: 0,
        payload: w.buf.into(),
    })
    .await
    .unwrap();
    loop {
        match next_message(&mut f).await {
            Message::Extended { id: 0, payload } => {
                return (f, ExtHandshake::parse(&payload).unwrap());
            }
            _ => continue,
        }
    }
}

fn block_of(data: &[u8], b: BlockRef) -> Message {
    let at = (b.index as u64 * PIECE + b.begin as u64) as usize;
    Message::Piece {
        index: b.index,
        begin: b.begin,
        data: data[at..at + b.length as usize].to_vec().into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_tells_a_peer_of_a_rotten_piece_and_keeps_it() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let good = write_random(&src.path().join("d.bin"), 32 * PIECE as usize, 41);
    let meta = torrent(&src.path().join("d.bin"), PIECE, vec![]);
    let cfg = SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    };
    let (seed, h) = seeder_with(cfg, &meta, src.path()).await;
    rot_byte(&src.path().join("d.bin"), 5 * PIECE + 99);

    let s = TcpStream::connect(seed.listen_addr()).await.unwrap();
    let (mut f, theirs) = greet(&meta, s, true).await;
    assert_eq!(theirs.ids.lt_donthave, Some(LT_DONTHAVE_ID));
    f.send(Message::Interested).await.unwrap();
    while !matches!(next_message(&mut f).await, Message::Unchoke) {}
    let rotten = BlockRef {
        index: 5,
        begin: 0,
        length: PIECE as u32,
    };
    f.send(Message::Request(rotten)).await.unwrap();
    // The seed hashes piece 5 before sending it, withdraws it, rejects the request (fast extension)
    // and says it no longer has it, in our id for the message.
    let (mut rejected, mut told) = (false, false);
    while !(rejected && told) {
        match next_message(&mut f).await {
            Message::Reject(b) => rejected |= b == rotten,
            Message::Extended { id, payload } if id == PEER_DONTHAVE_ID => {
                assert_eq!(lt_donthave::decode(&payload), Some(5));
                told = true;
            }
            Message::Piece { index, .. } => panic!("sent a block of piece {index}"),
            _ => {}
        }
    }
    assert_eq!(h.stats().pieces_withdrawn, 1);
    // The connection stays: the next piece comes on it.
    let fine = BlockRef { index: 6, ..rotten };
    f.send(Message::Request(fine)).await.unwrap();
    loop {
        if let Message::Piece { index: 6, data, .. } = next_message(&mut f).await {
            assert_eq!(&data[..], &good[6 * PIECE as usize..7 * PIECE as usize]);
            break;
        }
    }
    seed.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downloader_drops_a_piece_its_peer_no_longer_has() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let data = Arc::new(write_random(
        &src.path().join("d.bin"),
        48 * PIECE as usize,
        42,
    ));
    let meta = torrent(&src.path().join("d.bin"), PIECE, vec![]);
    // The test peer claims every piece and serves them; the first piece it is asked for, it says
    // it lost instead.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = listener.local_addr().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let (leech, l) = leecher(&meta, dst.path(), vec![peer_addr]).await;
    let (s, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let (mut f, theirs) = greet(&meta, s, false).await;
    let their_id = theirs.ids.lt_donthave.expect("lt_donthave offered");
    f.send(Message::Bitfield(Bitfield::full(meta.info.piece_count())))
        .await
        .unwrap();
    f.send(Message::Unchoke).await.unwrap();
    let lost = loop {
        if let Message::Request(b) = next_message(&mut f).await {
            break b.index;
        }
    };
    let payload = lt_donthave::encode(lost).to_vec();
    f.send(Message::Extended {
        id: their_id,
        payload: payload.into(),
    })
    .await
    .unwrap();
    // Until the downloader cancels the request for the lost piece it still holds, it may ask for
    // it (requests cross the message on the wire); after, never. Every other request is served;
    // once it has cancelled, a seed joins for the lost piece.
    let (seed, _h) = seeder(&meta, src.path()).await;
    let (mut cancelled, mut asked_after) = (false, 0);
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while !(cancelled && l.stats().bytes_left == 0) {
        assert!(tokio::time::Instant::now() < end, "{:?}", l.stats());
        let m = tokio::select! {
            m = f.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
        };
        match m {
            Some(Ok(Message::Cancel(b))) if b.index == lost && !cancelled => {
                cancelled = true;
                l.add_peers(vec![seed.listen_addr()]);
            }
            Some(Ok(Message::Request(b))) if b.index == lost => asked_after += cancelled as usize,
            Some(Ok(Message::Request(b))) => f.send(block_of(&data, b)).await.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("the downloader hung up: {other:?}"),
        }
    }
    assert!(
        cancelled,
        "the request for piece {lost} was never cancelled"
    );
    assert_eq!(
        asked_after, 0,
        "asked for piece {lost} again after it was lost"
    );
    wait_complete(&l, 60).await;
    assert!(std::fs::read(dst.path().join("d.bin")).unwrap() == *data);
    let them = l
        .peers()
        .into_iter()
        .find(|p| p.addr == peer_addr)
        .expect("the test peer is still connected");
    assert_eq!(them.pieces, meta.info.piece_count() as u32 - 1);
    leech.shutdown(Duration::from_secs(2)).await;
    seed.shutdown(Duration::from_secs(2)).await;
}
