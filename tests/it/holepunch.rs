//! Two machines behind NATs meet through a peer they both reach (BEP 55, `ut_holepunch`): five
//! network namespaces, made and removed by the test ([`NattedPair`]): host A and host B, each
//! behind a home router that masquerades it and lets nothing in unasked, and a relay on the open
//! network between the routers. Neither host can dial the other; both dial the relay.
//! Skipped, saying why, where the namespaces or nftables are not to be had. And the relay's
//! answers on loopback, to peers made by hand.

use std::net::SocketAddr;
use std::time::Duration;

use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::wire::extension::{ExtHandshake, UT_HOLEPUNCH_ID, UT_PEX_ID};
use btorrent::wire::handshake::{initiate, Handshake};
use btorrent::wire::ut_holepunch::{HolepunchError, HolepunchMsg};
use btorrent::wire::ut_pex::{PexMsg, FLAG_HOLEPUNCH};
use btorrent::{Metainfo, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::netns::{Family, NattedPair, Relay};
use crate::support::*;

/// B seeds, A downloads, and a btorrent relay (which downloads a trickle) is the only peer each was
/// given: it introduces them, and A downloads from B over uTP through both routers
/// ([`NattedPair::a_is_introduced_to_b`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_behind_nats_are_introduced_by_a_peer_both_reach() {
    introduced_through_routers(Family::V4).await;
}

/// The same over IPv6: no translation, global addresses on both LANs, and the routers' firewalls
/// letting nothing in unasked, as most home routers do for IPv6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_behind_ipv6_firewalls_are_introduced_by_a_peer_both_reach() {
    introduced_through_routers(Family::V6).await;
}

async fn introduced_through_routers(family: Family) {
    let Some(hosts) = NattedPair::make_or_skip() else {
        return;
    };
    hosts.a_is_introduced_to_b(Relay::Btorrent, family).await;
}

/// The relay's side on loopback, with bare peers that speak the protocol by hand: a peer that
/// offers `ut_holepunch` is flagged so in the relay's peer exchange (0x08); a rendezvous between two
/// such peers sends each a `connect` naming the other by its listen address (both came over TCP);
/// and the errors: a target the relay is not connected to, one that does not speak the extension,
/// the relay itself, the asker itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_introduces_two_of_its_peers_and_says_why_when_it_cannot() {
    engine::init_logs();
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("d.bin"), 1 << 20, 7);
    let meta = create_torrent(
        &dir.path().join("d.bin"),
        &CreateOptions::default(),
        &|_, _| {},
    )
    .unwrap();
    let (relay, h) = engine::seeder(&meta, dir.path()).await;
    let at = relay.listen_addr();
    let on = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let client_of = |port: u16| format!("bare {port}");
    let listed = |port: u16| {
        let name = client_of(port);
        let h = &h;
        move || h.peers().iter().any(|p| p.client.as_deref() == Some(&name))
    };
    // Y speaks holepunch, Z does not; both are the relay's peers before X comes.
    let mut y = BarePeer::connect(at, &meta, 40_001, true).await;
    let _z = BarePeer::connect(at, &meta, 40_002, false).await;
    for port in [40_001, 40_002] {
        wait_until(
            "the relay to take Y and Z",
            Duration::from_secs(10),
            listed(port),
        )
        .await;
    }
    let mut x = BarePeer::connect(at, &meta, 40_003, true).await;
    let pex = x.next(UT_PEX_ID, Duration::from_secs(20)).await;
    let pex = PexMsg::parse(&pex).unwrap();
    let flags = |port: u16| {
        pex.added
            .iter()
            .find(|(a, _)| *a == on(port))
            .map(|(_, f)| *f)
    };
    assert_eq!(
        flags(40_001).map(|f| f & FLAG_HOLEPUNCH),
        Some(FLAG_HOLEPUNCH)
    );
    assert_eq!(flags(40_002).map(|f| f & FLAG_HOLEPUNCH), Some(0));

    x.send_holepunch(HolepunchMsg::rendezvous(on(40_001))).await;
    assert_eq!(x.next_holepunch().await, HolepunchMsg::connect(on(40_001)));
    assert_eq!(y.next_holepunch().await, HolepunchMsg::connect(on(40_003)));
    for (target, why) in [
        (on(40_999), HolepunchError::NotConnected),
        (on(40_002), HolepunchError::NoSupport),
        (at, HolepunchError::NoSelf),
        (on(40_003), HolepunchError::NoSuchPeer),
    ] {
        x.send_holepunch(HolepunchMsg::rendezvous(target)).await;
        assert_eq!(x.next_holepunch().await, HolepunchMsg::error(target, why));
    }
    drop(relay);
}

/// A peer of the test's own making, over TCP: the handshakes, then messages by hand.
struct BarePeer {
    s: TcpStream,
    /// The relay's id for `ut_holepunch`.
    their_holepunch: Option<u8>,
}

impl BarePeer {
    /// Connects to `at` for `meta`, telling it `listen_port`, and offering `ut_pex` and (when
    /// `holepunch`) `ut_holepunch`; named `bare <listen_port>` in its extension handshake.
    async fn connect(at: SocketAddr, meta: &Metainfo, listen_port: u16, holepunch: bool) -> Self {
        let mut s = TcpStream::connect(at).await.unwrap();
        let ours = Handshake::ours(meta.info_hash, PeerId::generate());
        initiate(&mut s, &ours, Duration::from_secs(5))
            .await
            .unwrap();
        let mut w = btorrent::bencode::Writer::default();
        w.begin_dict();
        w.bytes(b"m").begin_dict();
        if holepunch {
            w.key_int(b"ut_holepunch", UT_HOLEPUNCH_ID);
        }
        w.key_int(b"ut_pex", UT_PEX_ID);
        w.end();
        w.bytes(b"p").int(listen_port);
        w.bytes(b"v")
            .bytes(format!("bare {listen_port}").as_bytes());
        w.end();
        let mut peer = BarePeer {
            s,
            their_holepunch: None,
        };
        peer.send_ext(0, &w.buf).await;
        let theirs = peer.next(0, Duration::from_secs(10)).await;
        peer.their_holepunch = ExtHandshake::parse(&theirs).unwrap().ids.ut_holepunch;
        peer
    }

    async fn send_ext(&mut self, id: u8, payload: &[u8]) {
        let mut b = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(&[20, id]);
        b.extend_from_slice(payload);
        self.s.write_all(&b).await.unwrap();
    }

    async fn send_holepunch(&mut self, m: HolepunchMsg) {
        let id = self.their_holepunch.expect("the relay offers ut_holepunch");
        self.send_ext(id, &m.encode()).await;
    }

    /// The payload of the next extended message of our id `id`, within `limit`.
    async fn next(&mut self, id: u8, limit: Duration) -> Vec<u8> {
        let read = async {
            loop {
                let n = self.s.read_u32().await.unwrap() as usize;
                let mut f = vec![0; n];
                self.s.read_exact(&mut f).await.unwrap();
                if f.len() >= 2 && f[0] == 20 && f[1] == id {
                    return f[2..].to_vec();
                }
            }
        };
        tokio::time::timeout(limit, read)
            .await
            .unwrap_or_else(|_| panic!("no extended message {id} within {limit:?}"))
    }

    async fn next_holepunch(&mut self) -> HolepunchMsg {
        let m = self.next(UT_HOLEPUNCH_ID, Duration::from_secs(10)).await;
        HolepunchMsg::parse(&m).unwrap()
    }
}
