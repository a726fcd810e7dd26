//! Peer exchange (BEP 11) between sessions on loopback: a leecher that knows only one peer learns
//! the others from it; a private torrent (BEP 27) neither offers, sends nor accepts `ut_pex`; the
//! flags of the addresses it names (encryption, seed) say how and whether to dial them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use btorrent::engine::{Session, SessionConfig};
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::wire::extension::{ExtHandshake, OurExt, UT_PEX_ID};
use btorrent::wire::handshake::{initiate, Handshake};
use btorrent::wire::ut_pex::PexMsg;
use btorrent::{Metainfo, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::data::write_random;
use crate::support::engine::{init_logs, leecher, opts, session_with};
use crate::support::wait::wait_until;

/// A slow seeder (so downloads last while the test looks), of a 4 MiB file.
async fn slow_seed(dir: &std::path::Path, name: &str, private: bool) -> (Session, Metainfo) {
    write_random(&dir.join(name), 4 << 20, name.len() as u64);
    let o = CreateOptions {
        piece_length: Some(65536),
        private,
        ..Default::default()
    };
    let meta = create_torrent(&dir.join(name), &o, &|_, _| {}).unwrap();
    let cfg = SessionConfig {
        upload_limit: Some(150_000),
        ..Default::default()
    };
    let s = session_with(cfg).await;
    let h = s.add(meta.clone(), opts(dir, vec![])).await.unwrap();
    crate::support::engine::wait_complete(&h, 30).await;
    (s, meta)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_that_knows_one_peer_learns_the_others_from_it() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (seed, meta) = slow_seed(dir.path(), "movie.bin", false).await;
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let (l1, h1) = leecher(&meta, d1.path(), vec![seed.listen_addr()]).await;
    wait_until(
        "the first leecher is connected",
        Duration::from_secs(10),
        || !h1.peers().is_empty(),
    )
    .await;
    // The second knows only the seeder; the seeder tells it of the first.
    let (_l2, h2) = leecher(&meta, d2.path(), vec![seed.listen_addr()]).await;
    wait_until(
        "the leechers find each other through the seeder's PEX",
        Duration::from_secs(20),
        || h2.peers().len() >= 2 && h1.peers().len() >= 2,
    )
    .await;
    let _ = l1;
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let n = s.read_u32().await? as usize;
    let mut b = vec![0; n];
    s.read_exact(&mut b).await?;
    Ok(b)
}

async fn send_ext(s: &mut TcpStream, id: u8, payload: &[u8]) {
    let mut b = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(&[20, id]);
    b.extend_from_slice(payload);
    s.write_all(&b).await.unwrap();
}

/// A bare peer of `meta` at `addr` that offers ut_pex; returns whether the torrent offered ut_pex
/// and a flag raised when it sends us a ut_pex message. It tells the torrent of `lure`.
async fn pex_probe(addr: SocketAddr, meta: &Metainfo, lure: SocketAddr) -> (bool, Arc<AtomicBool>) {
    pex_probe_flagged(addr, meta, vec![(lure, 0)]).await
}

/// [`pex_probe`], telling of the addresses in `added` with their flags (`added.f`).
async fn pex_probe_flagged(
    addr: SocketAddr,
    meta: &Metainfo,
    added: Vec<(SocketAddr, u8)>,
) -> (bool, Arc<AtomicBool>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let ours = Handshake::ours(meta.info_hash, PeerId::generate());
    initiate(&mut s, &ours, Duration::from_secs(5))
        .await
        .unwrap();
    let hs = ExtHandshake::ours(OurExt {
        listen_port: 1,
        metadata_size: None,
        pex: true,
        holepunch: false,
        upload_only: false,
        prefers_encryption: false,
        your_ip: None,
    });
    send_ext(&mut s, 0, &hs).await;
    let theirs = loop {
        let f = read_frame(&mut s).await.unwrap();
        if f.len() >= 2 && f[0] == 20 && f[1] == 0 {
            break ExtHandshake::parse(&f[2..]).unwrap();
        }
    };
    // The handshake tells us our address as the session sees it (BEP 10 `yourip`).
    assert_eq!(theirs.your_ip, Some(s.local_addr().unwrap().ip()));
    let pex = PexMsg {
        added,
        dropped: vec![],
    };
    // By the id it gave (a private torrent gives none: we send it under ours, as a hostile peer would).
    send_ext(
        &mut s,
        theirs.ids.ut_pex.unwrap_or(UT_PEX_ID),
        &pex.encode(),
    )
    .await;
    let got = Arc::new(AtomicBool::new(false));
    let flag = got.clone();
    tokio::spawn(async move {
        while let Ok(f) = read_frame(&mut s).await {
            if f.len() >= 2 && f[0] == 20 && f[1] == UT_PEX_ID {
                PexMsg::parse(&f[2..]).unwrap();
                flag.store(true, Ordering::Relaxed);
            }
        }
    });
    (theirs.ids.ut_pex.is_some(), got)
}

/// A listener that raises a flag when anyone connects.
async fn lure() -> (SocketAddr, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hit = Arc::new(AtomicBool::new(false));
    let flag = hit.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            flag.store(true, Ordering::Relaxed);
        }
    });
    (addr, hit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_torrent_neither_offers_sends_nor_takes_pex() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (private_seed, private) = slow_seed(dir.path(), "private.bin", true).await;
    let (public_seed, public) = slow_seed(dir.path(), "public.bin", false).await;
    // A real leecher on each, so each seeder has a peer to tell of.
    let d = tempfile::tempdir().unwrap();
    let (_lp, hp) = leecher(&private, d.path(), vec![private_seed.listen_addr()]).await;
    let (_lq, hq) = leecher(&public, d.path(), vec![public_seed.listen_addr()]).await;
    wait_until("both leechers connected", Duration::from_secs(10), || {
        !hp.peers().is_empty() && !hq.peers().is_empty()
    })
    .await;
    let (private_lure, private_dialed) = lure().await;
    let (public_lure, public_dialed) = lure().await;
    // The private one first: by the time the public one has acted, so would the private one have.
    let (offered, private_sent) =
        pex_probe(private_seed.listen_addr(), &private, private_lure).await;
    assert!(!offered, "a private torrent does not offer ut_pex");
    let (offered, public_sent) = pex_probe(public_seed.listen_addr(), &public, public_lure).await;
    assert!(offered, "a public torrent offers ut_pex");
    wait_until(
        "the public torrent sends PEX and dials the address it was told",
        Duration::from_secs(20),
        || public_sent.load(Ordering::Relaxed) && public_dialed.load(Ordering::Relaxed),
    )
    .await;
    assert!(
        !private_sent.load(Ordering::Relaxed),
        "a private torrent sent PEX"
    );
    assert!(
        !private_dialed.load(Ordering::Relaxed),
        "a private torrent dialed an address from PEX"
    );
}

/// A listener that keeps the first 20 bytes of each connection.
async fn first_bytes_lure() -> (SocketAddr, tokio::sync::mpsc::Receiver<[u8; 20]>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 20];
                if s.read_exact(&mut first).await.is_ok() {
                    let _ = tx.send(first).await;
                }
            });
        }
    });
    (addr, rx)
}

/// An address a peer's PEX flags as preferring encryption (`added.f` 0x01) is dialed with the
/// encrypted handshake first; one without the flag with the plain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_pex_flags_as_encrypting_is_dialed_encrypted_first() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (seed, meta) = slow_seed(dir.path(), "enc.bin", false).await;
    let plain_start = Handshake::ours(meta.info_hash, PeerId::generate()).to_bytes();
    for (flags, encrypted) in [(btorrent::wire::ut_pex::FLAG_ENCRYPTION, true), (0, false)] {
        let (lure, mut first) = first_bytes_lure().await;
        let (offered, _) = pex_probe_flagged(seed.listen_addr(), &meta, vec![(lure, flags)]).await;
        assert!(offered);
        let got = tokio::time::timeout(Duration::from_secs(20), first.recv())
            .await
            .expect("the address PEX named is dialed")
            .unwrap();
        assert_eq!(
            got != plain_start[..20],
            encrypted,
            "flags {flags:#x}: {got:?}"
        );
    }
}

/// A seed does not dial an address a peer's exchange flags as a seed or upload only (`added.f`
/// 0x02): two that want nothing have nothing to trade. One not flagged, named in the same message,
/// is dialed; a torrent still downloading dials the flagged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_does_not_dial_addresses_pex_flags_as_seeds() {
    use btorrent::wire::ut_pex::FLAG_SEED;
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (seed, meta) = slow_seed(dir.path(), "flags.bin", false).await;
    let (seed_lure, seed_dialed) = lure().await;
    let (leech_lure, leech_dialed) = lure().await;
    let told = vec![(seed_lure, FLAG_SEED), (leech_lure, 0)];
    let (offered, _) = pex_probe_flagged(seed.listen_addr(), &meta, told).await;
    assert!(offered);
    wait_until(
        "the seed to dial the address PEX did not flag",
        Duration::from_secs(20),
        || leech_dialed.load(Ordering::Relaxed),
    )
    .await;
    // Both were added under one lock: taken for of use, the flagged one would have been dialed
    // in the same round as the other.
    let end = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < end {
        assert!(
            !seed_dialed.load(Ordering::Relaxed),
            "a seed dialed an address PEX flagged as a seed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = tempfile::tempdir().unwrap();
    let (downloading, _h) = leecher(&meta, d.path(), vec![]).await;
    let (offered, _) = pex_probe_flagged(
        downloading.listen_addr(),
        &meta,
        vec![(seed_lure, FLAG_SEED)],
    )
    .await;
    assert!(offered);
    wait_until(
        "a downloading torrent to dial the seed PEX named",
        Duration::from_secs(20),
        || seed_dialed.load(Ordering::Relaxed),
    )
    .await;
}

/// A peer whose extension handshake says it prefers encryption (`e`) is dialed back at its listen
/// port with the encrypted handshake first; one that does not say so, with the plain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_handshake_prefers_encryption_is_dialed_back_encrypted_first() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (seed, meta) = slow_seed(dir.path(), "e.bin", false).await;
    let plain_start = Handshake::ours(meta.info_hash, PeerId::generate()).to_bytes();
    for (prefers, encrypted) in [(true, true), (false, false)] {
        let (lure, mut first) = first_bytes_lure().await;
        let mut s = TcpStream::connect(seed.listen_addr()).await.unwrap();
        let ours = Handshake::ours(meta.info_hash, PeerId::generate());
        initiate(&mut s, &ours, Duration::from_secs(5))
            .await
            .unwrap();
        let hs = ExtHandshake::ours(OurExt {
            listen_port: lure.port(),
            prefers_encryption: prefers,
            ..Default::default()
        });
        send_ext(&mut s, 0, &hs).await;
        // Leave cleanly (everything sent is read before our end): the seed then dials the port.
        s.shutdown().await.unwrap();
        while read_frame(&mut s).await.is_ok() {}
        let got = tokio::time::timeout(Duration::from_secs(30), first.recv())
            .await
            .expect("the peer's listen port is dialed")
            .unwrap();
        assert_eq!(got != plain_start[..20], encrypted, "e={prefers}: {got:?}");
    }
}

/// Peer exchange switched off while the session runs (`Session::set_pex`, the RPC's `pex-enabled`):
/// a new connection is not offered `ut_pex`, gets no peer list, and the list it sends is not
/// dialed; a session with it on, probed alongside, shows the time it took. Switched on again, the
/// next connection is offered it, told of our peers, and its list is dialed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_exchange_switched_off_offers_sends_and_takes_nothing_until_switched_on() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (quiet_seed, quiet) = slow_seed(dir.path(), "quiet.bin", false).await;
    let (chatty_seed, chatty) = slow_seed(dir.path(), "chatty.bin", false).await;
    quiet_seed.set_pex(false);
    assert!(!quiet_seed.pex() && chatty_seed.pex());
    let d = tempfile::tempdir().unwrap();
    let (_lq, hq) = leecher(&quiet, d.path(), vec![quiet_seed.listen_addr()]).await;
    let (_lc, hc) = leecher(&chatty, d.path(), vec![chatty_seed.listen_addr()]).await;
    wait_until("both leechers connected", Duration::from_secs(10), || {
        !hq.peers().is_empty() && !hc.peers().is_empty()
    })
    .await;
    let (quiet_lure, quiet_dialed) = lure().await;
    let (chatty_lure, chatty_dialed) = lure().await;
    let (offered, quiet_sent) = pex_probe(quiet_seed.listen_addr(), &quiet, quiet_lure).await;
    assert!(!offered, "ut_pex offered while peer exchange is off");
    let (offered, chatty_sent) = pex_probe(chatty_seed.listen_addr(), &chatty, chatty_lure).await;
    assert!(offered);
    wait_until(
        "the session with peer exchange on to send PEX and dial the address it was told",
        Duration::from_secs(20),
        || chatty_sent.load(Ordering::Relaxed) && chatty_dialed.load(Ordering::Relaxed),
    )
    .await;
    assert!(!quiet_sent.load(Ordering::Relaxed), "PEX sent while off");
    assert!(
        !quiet_dialed.load(Ordering::Relaxed),
        "an address from PEX dialed while off"
    );

    quiet_seed.set_pex(true);
    let (again_lure, again_dialed) = lure().await;
    let (offered, again_sent) = pex_probe(quiet_seed.listen_addr(), &quiet, again_lure).await;
    assert!(offered, "ut_pex not offered once switched on");
    wait_until(
        "PEX sent and taken once switched on",
        Duration::from_secs(20),
        || again_sent.load(Ordering::Relaxed) && again_dialed.load(Ordering::Relaxed),
    )
    .await;
}
