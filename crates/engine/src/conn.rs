//! The reader task of one connection: it owns the protocol state (what the peer has, our requests to
//! it, the request window) and speaks the protocol; the sender task (`sender.rs`) sends.
//!
//! Limits enforced here, on top of the codec's (which checks every bitfield's length and spare bits):
//! a bitfield that comes late or twice (aria2 does both) is merged with what we knew, never trusted to
//! take pieces away; a `piece` we did not request (and did not just cancel) ends the connection; at most our
//! `reqq` requests queued from the peer; requests for pieces we lack or while we choke are refused,
//! but for the pieces of the peer's allowed-fast set we sent it (BEP 6, [`ALLOWED_FAST`] at most),
//! served choked or not.
//!
//! BEP 52's hash requests are answered for a v2 torrent from its piece layers (a peer that came by
//! a magnet link has only the info dictionary), refused otherwise and while the peer leaves
//! [`MAX_QUEUED_CONTROL`] bytes unread.
//!
//! The request window: it starts at [`START_WINDOW`] and grows by one per block received (slow start,
//! doubling per round trip) until the rate stops growing; then it follows the rate (about
//! [`WINDOW_SECONDS`] of data in flight), always within `MIN_WINDOW..=min(reqq, MAX_WINDOW)`, and
//! under a download limit within what the limit lets in over `WINDOW_SECONDS`. Over the limit, the
//! socket is left unread for a while (the peer's TCP window closes); nothing else waits.
//!
//! A peer that goes silent on our requests is *snubbed* (`snub_after`): its requests are cancelled and
//! given back, the other connections are woken to take them, and until it sends a block again it is
//! asked for one block at a time, after a rest of [`SNUB_REST`], and never for a suspect piece (which
//! only one peer may fill, and endgame does not duplicate).
//!
//! A connection neither side needs is closed (`close_if_redundant`): both done with what they
//! want, or the peer wanting nothing (BEP 21 `upload_only`) and holding nothing we want.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use super::peer::PeerShared;
use super::picker::BlockResult;
use super::rate::Rate;
use super::sender::OutQueue;
use super::torrent::Torrent;
use btorrent_proto::metainfo::v2::HashRange;
use btorrent_proto::wire::allowed_fast::allowed_fast_set;
use btorrent_proto::wire::extension::{
    parse_upload_only, upload_only_payload, LT_DONTHAVE_ID, OUR_REQQ, UPLOAD_ONLY_ID,
};
use btorrent_proto::wire::handshake::Handshake;
use btorrent_proto::wire::lt_donthave;
use btorrent_proto::wire::{Bitfield, BlockRef, ExtHandshake, Message, PeerCodec, BLOCK_SIZE};

use super::ext::PeerExt;
use super::superseed::Offers;

pub const MAX_WINDOW: usize = 500;
pub const MIN_WINDOW: usize = 2;
pub const START_WINDOW: usize = 16;
pub const WINDOW_SECONDS: f64 = 2.0;
/// The longest a peer may go without delivering a block while we wait on requests, whatever its
/// history (see `Conn::snub_after`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The shortest: a peer is never snubbed sooner than this.
pub const SNUB_FLOOR: Duration = Duration::from_secs(3);
/// A snubbed peer is asked for nothing this long, while the others take back its blocks.
pub const SNUB_REST: Duration = Duration::from_secs(1);
/// Before the first block, nothing is known of a peer's pace: this long.
pub const SNUB_UNKNOWN: Duration = Duration::from_secs(8);
/// Pieces of its allowed-fast set a peer is told it may request while choked (libtorrent's
/// default): enough for a newcomer's first trade, too few to live on.
pub const ALLOWED_FAST: usize = 5;
/// Control bytes waiting to go out to a peer beyond which its hash requests (BEP 52) are refused
/// instead of answered (each answer is up to about 16 KiB).
pub const MAX_QUEUED_CONTROL: usize = 256 * 1024;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
pub const KEEPALIVE: Duration = Duration::from_secs(60);
const READ_BUFFER: usize = 256 * 1024;

/// How [`Conn::drop_requests`] lets dropped requests go.
#[derive(Clone, Copy)]
struct LetGo {
    /// Tell the peer (`cancel`). Not after a choke without the fast extension, which dropped
    /// them at its end already.
    cancel: bool,
    /// Give the blocks back to the picker for others to take. Not when the picker took them back
    /// itself (its `cancels`).
    release: bool,
}

impl LetGo {
    const CANCEL_AND_RELEASE: LetGo = LetGo {
        cancel: true,
        release: true,
    };
}

pub(crate) struct Conn {
    t: Arc<Torrent>,
    sh: Arc<PeerShared>,
    codec: PeerCodec,
    out: Arc<OutQueue>,
    ext: bool,
    /// The extended messages after the handshake (`ut_metadata`, `ut_pex`).
    ext_state: PeerExt,
    fast: bool,
    /// What the peer has.
    pub(crate) has: Bitfield,
    /// It told us what it has (a bitfield, `have all`, `have none` or a `have`): until then an
    /// empty `has` says nothing.
    has_known: bool,
    /// It wants nothing more (BEP 21 `upload_only`, in its extension handshake or libtorrent's
    /// message since): a seed, or a partial seed.
    pub(crate) peer_upload_only: bool,
    /// What we last told it of ourselves as `upload_only` (in our handshake or a message since):
    /// we want nothing more and do not super-seed it.
    told_upload_only: bool,
    /// Pieces it sent us blocks of: it is told of them once they verify even though it has them (a
    /// super-seeding peer learns from that `have` that its piece arrived).
    sent_us: Bitfield,
    /// Our pieces when we registered; later ones arrive through the have log from `cursor`.
    ours_at_start: Bitfield,
    cursor: usize,
    peer_choking: bool,
    am_interested: bool,
    sent_choking: bool,
    reqq: usize,
    pub(crate) requests: VecDeque<(BlockRef, Instant)>,
    /// Requests we cancelled or gave up on; a late copy is accepted, not an error.
    cancelled: VecDeque<BlockRef>,
    allowed_fast: Vec<u32>,
    /// The pieces we told the peer it may request while we choke it (BEP 6 allowed fast).
    our_allowed_fast: Vec<u32>,
    window: usize,
    slow_start: bool,
    last_rate: u64,
    /// The time one block takes from this peer at its current rate (zero until it has sent some):
    /// with it the picker knows when a request is late (see `picker`'s endgame).
    pace: Duration,
    last_block_at: Instant,
    /// It went silent on our requests (see `snub_after`) and has sent nothing since: it gets one
    /// request at a time, never a suspect piece, and none at all until `rest_until` (the others,
    /// woken, take back its blocks first).
    snubbed: bool,
    rest_until: Instant,
    /// How long its requests take to be answered (queueing at the peer included): a smoothed mean
    /// and mean deviation, as TCP estimates its round trip. `None` until the first block.
    answer_time: Option<(Duration, Duration)>,
    last_recv: Instant,
    down_rate: Rate,
    up_rate: Rate,
    pub(crate) listen_addr: Option<SocketAddr>,
    pub(crate) got_piece: bool,
    picked: Vec<BlockRef>,
    /// Our DHT node, when this torrent may use it and the peer set the DHT bit (BEP 5 `port`).
    dht: Option<Arc<super::dht::DhtNode>>,
    /// Super-seeding this peer ([`super::superseed`]): the pieces it was offered. `None` = it was
    /// sent our pieces as usual.
    ss: Option<Offers>,
}

impl Conn {
    pub(crate) fn new(
        t: Arc<Torrent>,
        sh: Arc<PeerShared>,
        hs: Handshake,
        ours: Bitfield,
        cursor: usize,
        super_seed: bool,
    ) -> Self {
        let fast = hs.supports_fast();
        let dht = t
            .ctx
            .dht
            .clone()
            .filter(|d| hs.supports_dht() && !t.meta.info.private && d.is_on());
        let n = t.geo.piece_count as usize;
        let window = Duration::from_secs(3);
        Conn {
            codec: PeerCodec::new(t.geo, fast),
            out: Arc::new(OutQueue::new(fast)),
            ext: hs.supports_extensions(),
            ext_state: PeerExt::new(),
            fast,
            has: Bitfield::new(n),
            has_known: false,
            peer_upload_only: false,
            told_upload_only: false,
            sent_us: Bitfield::new(n),
            ours_at_start: ours,
            cursor,
            peer_choking: true,
            am_interested: false,
            sent_choking: true,
            reqq: btorrent_proto::wire::extension::DEFAULT_REQQ as usize,
            requests: VecDeque::new(),
            cancelled: VecDeque::new(),
            allowed_fast: Vec::new(),
            our_allowed_fast: Vec::new(),
            window: START_WINDOW,
            slow_start: true,
            last_rate: 0,
            pace: Duration::ZERO,
            last_block_at: Instant::now(),
            snubbed: false,
            rest_until: Instant::now(),
            answer_time: None,
            last_recv: Instant::now(),
            down_rate: Rate::new(window),
            up_rate: Rate::new(window),
            listen_addr: None,
            got_piece: false,
            picked: Vec::new(),
            dht,
            ss: super_seed.then(|| Offers::new(n)),
            t,
            sh,
        }
    }

    pub(crate) async fn run(
        &mut self,
        stream: super::peer_stream::PeerStream,
        conn: CancellationToken,
    ) -> anyhow::Result<()> {
        let (mut rd, wr) = stream.into_split();
        let sender = tokio::spawn(super::sender::run(
            self.t.clone(),
            self.sh.clone(),
            self.out.clone(),
            wr,
            conn.clone(),
        ));
        let r = self.event_loop(&mut rd, &conn).await;
        conn.cancel();
        let _ = sender.await;
        r
    }

    async fn event_loop(
        &mut self,
        rd: &mut super::peer_stream::PeerReader,
        conn: &CancellationToken,
    ) -> anyhow::Result<()> {
        self.send_initial();
        let mut have_rx = self.t.have_tx.subscribe();
        let mut rbuf = BytesMut::with_capacity(READ_BUFFER);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let sh = self.sh.clone();
        // Under the session's or the torrent's download limit, the socket is not read until this
        // turn comes (TCP then slows the peer); everything else goes on meanwhile.
        let mut read_turn: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
            None;
        loop {
            tokio::select! {
                _ = conn.cancelled() => return Ok(()),
                r = rd.read_buf(&mut rbuf), if read_turn.is_none() => {
                    let n = r?;
                    if n == 0 {
                        anyhow::bail!("peer closed the connection");
                    }
                    self.last_recv = Instant::now();
                    if self.t.limits.download_limited(&self.t.ctx) {
                        let t = self.t.clone();
                        read_turn = Some(Box::pin(async move {
                            t.limits.download_turn(&t.ctx, n as u64).await
                        }));
                    }
                    while let Some(msg) = self.codec.decode(&mut rbuf)? {
                        self.on_message(msg)?;
                    }
                    self.super_seed_step();
                }
                _ = async { read_turn.as_mut().expect("guarded").await }, if read_turn.is_some() =>
                    read_turn = None,
                _ = sh.notify.notified() => self.on_commands()?,
                r = have_rx.changed() => if r.is_ok() {
                    self.send_haves()?;
                    self.super_seed_step();
                },
                _ = tick.tick() => {
                    self.on_tick()?;
                    self.super_seed_step();
                }
            }
            self.fill_requests();
            self.out.flush();
            self.sh
                .requests
                .store(self.requests.len() as u32, Ordering::Relaxed);
        }
    }

    fn send_initial(&mut self) {
        let ours = &self.ours_at_start;
        if self.ss.is_some() {
            // Super-seeding: pieces are offered one by one once the peer's own are known.
            if self.fast {
                self.out.push(&Message::HaveNone);
            }
        } else if self.fast && ours.is_full() {
            self.out.push(&Message::HaveAll);
        } else if self.fast && ours.none() {
            self.out.push(&Message::HaveNone);
        } else if !ours.none() {
            self.out.push(&Message::Bitfield(ours.clone()));
        }
        self.send_allowed_fast();
        if let Some(d) = &self.dht {
            self.out.push(&Message::Port(d.port()));
        }
        if self.ext {
            self.told_upload_only = self.ss.is_none() && self.t.core.lock().picker.is_done();
            let payload =
                super::ext::our_handshake(&self.t, self.told_upload_only, self.sh.addr.ip());
            self.out.push(&Message::Extended {
                id: 0,
                payload: payload.into(),
            });
        }
        self.out.flush();
    }

    /// Tells a peer with the fast extension which of our pieces it may request while we choke it
    /// (BEP 6): those we have among the first [`ALLOWED_FAST`] of its canonical allowed-fast set
    /// (IPv4 peers: the set is defined for them only). Not while super-seeding, which shows a peer
    /// only the pieces it offers.
    fn send_allowed_fast(&mut self) {
        let std::net::IpAddr::V4(ip) = self.sh.addr.ip().to_canonical() else {
            return;
        };
        if !self.fast || self.ss.is_some() || self.ours_at_start.none() {
            return;
        }
        let set = allowed_fast_set(ip, &self.t.info_hash(), self.has.len() as u32, ALLOWED_FAST);
        for i in set {
            if self.ours_at_start.get(i as usize) {
                self.our_allowed_fast.push(i);
                self.out.push(&Message::AllowedFast(i));
            }
        }
    }

    fn on_message(&mut self, msg: Message) -> anyhow::Result<()> {
        match msg {
            Message::KeepAlive => {}
            Message::Extended { id, payload } => {
                if id == 0 {
                    let h = ExtHandshake::parse(&payload)
                        .map_err(|e| anyhow::anyhow!("bad extension handshake: {e}"))?;
                    self.reqq = h.effective_reqq() as usize;
                    *self.sh.client.lock() = h.client.clone();
                    if let Some(p) = h.port {
                        self.note_listen_port(p);
                    }
                    if let Some(ip) = h.your_ip {
                        self.t.ctx.seen_as.report(self.sh.addr.ip(), ip);
                    }
                    // One that says it prefers encryption, or that came in insisting on RC4 (we
                    // select plain when offered it), is dialed encrypted first next time.
                    if h.prefers_encryption || (self.sh.encrypted && !self.sh.outgoing) {
                        if let Some(a) = self.listen_addr {
                            self.t.encrypt_first(a);
                        }
                    }
                    self.ext_state.on_handshake(&self.t, &h);
                    self.sh
                        .holepunch
                        .store(h.ids.ut_holepunch.is_some(), Ordering::Relaxed);
                    // Not a second seed for super-seeding: a partial seed says it too.
                    self.set_peer_upload_only(h.upload_only);
                } else if id == LT_DONTHAVE_ID {
                    self.on_donthave(&payload)?;
                } else if id == UPLOAD_ONLY_ID {
                    let upload_only = parse_upload_only(&payload)
                        .map_err(|e| anyhow::anyhow!("bad upload_only message: {e}"))?;
                    self.set_peer_upload_only(upload_only);
                } else {
                    self.ext_state
                        .on_message(&self.t, &self.sh, &self.out, id, &payload)?;
                }
            }
            Message::Bitfield(bf) => self.set_has(bf),
            Message::HaveAll => self.set_has(Bitfield::full(self.has.len())),
            Message::HaveNone => {
                self.has_known = true;
                self.after_has_changed();
            }
            Message::Have(i) => {
                self.has_known = true;
                if self.has.set(i as usize) {
                    let wake = {
                        let mut c = self.t.core.lock();
                        c.picker.add_have(i);
                        self.note_seen(&mut c, i as usize)
                    };
                    if wake {
                        self.t.have_tx.send_modify(|_| {});
                    }
                    self.after_has_changed();
                }
            }
            Message::Choke => {
                self.peer_choking = true;
                self.sh.peer_choking.store(true, Ordering::Relaxed);
                // Without the fast extension a choke drops every request: they go to other peers
                // now. With it (BEP 6) a choke cancels nothing: the peer still sends the blocks it
                // has in hand and rejects the rest, so each request stays ours until its block or
                // its reject comes (or the peer is snubbed); asking someone else now would bring
                // the blocks in hand twice.
                if !self.fast {
                    let how = LetGo {
                        cancel: false,
                        release: true,
                    };
                    self.drop_requests(|_| true, how);
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.sh.peer_choking.store(false, Ordering::Relaxed);
            }
            Message::Interested => {
                self.sh.peer_interested.store(true, Ordering::Relaxed);
                self.t.core.lock().choke_soon = true;
                self.t.wake.notify_one();
            }
            Message::NotInterested => {
                self.sh.peer_interested.store(false, Ordering::Relaxed);
                self.sh.set_choking(true);
                self.t.core.lock().choke_soon = true;
                self.t.wake.notify_one();
            }
            Message::Request(b) => self.on_request(b),
            Message::Cancel(b) => {
                self.out.inner.lock().uploads.retain(|x| *x != b);
            }
            Message::Reject(b) => {
                if let Some(pos) = self.requests.iter().position(|(x, _)| *x == b) {
                    self.requests.remove(pos);
                    self.t.core.lock().picker.release(self.sh.key, b);
                }
            }
            Message::AllowedFast(i) => {
                if self.allowed_fast.len() < 64 && !self.allowed_fast.contains(&i) {
                    self.allowed_fast.push(i);
                }
            }
            Message::Piece { index, begin, data } => self.on_piece(index, begin, &data)?,
            Message::Port(p) => {
                if let Some(d) = &self.dht {
                    d.heard(SocketAddr::new(self.sh.addr.ip(), p));
                }
            }
            Message::Suggest(_) => {}
            Message::HashRequest(r) => self.on_hash_request(r),
            // We ask for no hashes while a torrent runs: a v2 torrent came with its piece layers.
            Message::Hashes { .. } | Message::HashReject(_) => {}
        }
        Ok(())
    }

    /// BEP 52: a v2 torrent's piece layers (or the layers above them) for a peer that has only the
    /// info dictionary (it came from a magnet link); a hybrid's too, when its layers came with it or
    /// were derived from its data.
    /// Refused for a v1 torrent, for what the layers cannot answer
    /// ([`V2::hashes`](btorrent_proto::metainfo::v2::V2::hashes)), and while [`MAX_QUEUED_CONTROL`]
    /// bytes wait to go out to this peer (one that asks without reading).
    fn on_hash_request(&mut self, r: HashRange) {
        let backlog = self.out.inner.lock().ctrl.len() > MAX_QUEUED_CONTROL;
        let answer = self
            .t
            .merkle()
            .filter(|_| !backlog)
            .and_then(|v2| v2.hashes(&r, self.t.meta.info.piece_length));
        self.out.push(&match answer {
            Some(h) => Message::Hashes {
                range: r,
                hashes: h.concat().into(),
            },
            None => Message::HashReject(r),
        });
        self.out.flush();
    }

    fn note_listen_port(&mut self, port: u16) {
        let a = SocketAddr::new(self.sh.addr.ip(), port);
        if self.listen_addr.is_some() || a == self.t.ctx.listen_addr() {
            return;
        }
        self.listen_addr = Some(a);
        *self.sh.listen.lock() = Some(a);
        let mut c = self.t.core.lock();
        if c.banned_ips.contains(&a.ip()) {
            return;
        }
        c.known.note_connected(a);
    }

    /// Takes the peer's bitfield, merged with what it told us before.
    fn set_has(&mut self, mut bf: Bitfield) {
        for i in self.has.ones() {
            bf.set(i);
        }
        let mut c = self.t.core.lock();
        c.picker.remove_availability(&self.has);
        c.picker.add_availability(&bf);
        let mut wake = false;
        for i in bf.ones() {
            if !self.has.get(i) {
                wake |= self.note_seen(&mut c, i);
            }
        }
        drop(c);
        if wake {
            self.t.have_tx.send_modify(|_| {});
        }
        self.has = bf;
        self.has_known = true;
        self.after_has_changed();
    }

    /// Updates interest and seed status after the peer's pieces changed.
    fn after_has_changed(&mut self) {
        let full = self.has.is_full();
        self.sh
            .pieces
            .store(self.has.count() as u32, Ordering::Relaxed);
        self.sh.seed.store(full, Ordering::Relaxed);
        let (interesting, we_done) = {
            let mut c = self.t.core.lock();
            if full {
                c.superseed.note_seed();
            }
            (c.picker.interesting(&self.has), c.picker.is_done())
        };
        self.close_if_redundant(we_done, interesting);
        self.set_interest(interesting);
    }

    /// The peer said (again) whether it wants anything more. Also tells it what changed of ours
    /// since our handshake, now that its ids are known.
    fn set_peer_upload_only(&mut self, upload_only: bool) {
        self.peer_upload_only = upload_only;
        self.sh.upload_only.store(upload_only, Ordering::Relaxed);
        let (we_done, interesting) = {
            let c = self.t.core.lock();
            (c.picker.is_done(), c.picker.interesting(&self.has))
        };
        self.tell_upload_only(we_done);
        self.close_if_redundant(we_done, interesting);
    }

    /// Closes the connection once neither side wants anything of the other (as libtorrent's
    /// `close_redundant_connections`, on by default, does):
    ///
    /// - we have every piece we want (`we_done`) and the peer has every piece or says it wants
    ///   nothing more (BEP 21); its address is then not dialed again while we want nothing;
    /// - or we still want pieces, but none it has (not `interesting`), and it says it wants
    ///   nothing more: a partial seed we have taken all we want of. Not dialed again until we want
    ///   more than we did (see `peer::serve` and [`KnownPeer::of_use`]).
    ///
    /// [`KnownPeer::of_use`]: crate::known::KnownPeer::of_use
    fn close_if_redundant(&self, we_done: bool, interesting: bool) {
        if we_done {
            if self.has.is_full() {
                self.sh.close("both sides have every piece");
            } else if self.peer_upload_only {
                self.sh
                    .close("neither side wants anything more (upload only)");
            }
        } else if self.peer_upload_only && self.has_known && !interesting {
            self.sh
                .close("it wants nothing more and has nothing we want (upload only)");
        }
    }

    /// Tells the peer when we come to want nothing more, or want pieces again (a file chosen
    /// again): libtorrent's `upload_only` message, when it speaks it. Never while super-seeding it,
    /// as in our handshake (see [`super::ext::our_handshake`]).
    fn tell_upload_only(&mut self, we_done: bool) {
        let now = we_done && self.ss.is_none();
        // Before its extension handshake its id is not known: told once it is.
        let Some(id) = self.ext_state.ids().upload_only else {
            return;
        };
        if now != self.told_upload_only {
            self.told_upload_only = now;
            self.out.push(&Message::Extended {
                id,
                payload: upload_only_payload(now).to_vec().into(),
            });
        }
    }

    fn set_interest(&mut self, want: bool) {
        if want != self.am_interested {
            self.am_interested = want;
            self.sh.am_interested.store(want, Ordering::Relaxed);
            self.out.push(if want {
                &Message::Interested
            } else {
                &Message::NotInterested
            });
        }
    }

    fn on_request(&mut self, b: BlockRef) {
        let refuse = (self.sent_choking && !self.our_allowed_fast.contains(&b.index))
            || self
                .ss
                .as_ref()
                .is_some_and(|o| !o.offered.get(b.index as usize))
            || !self.t.core.lock().picker.have().get(b.index as usize)
            || self.out.inner.lock().uploads.len() >= OUR_REQQ as usize;
        if refuse {
            if self.fast {
                self.out.push(&Message::Reject(b));
            }
            return;
        }
        self.out.inner.lock().uploads.push_back(b);
    }

    fn on_piece(&mut self, index: u32, begin: u32, data: &[u8]) -> anyhow::Result<()> {
        let b = BlockRef {
            index,
            begin,
            length: data.len() as u32,
        };
        let pos = if self.requests.front().is_some_and(|(x, _)| *x == b) {
            Some(0)
        } else {
            self.requests.iter().position(|(x, _)| *x == b)
        };
        match pos {
            Some(p) => {
                if let Some((_, asked)) = self.requests.remove(p) {
                    self.note_answer_time(asked.elapsed());
                }
            }
            None => match self.cancelled.iter().position(|x| *x == b) {
                Some(p) => {
                    self.cancelled.remove(p);
                }
                None => anyhow::bail!("sent a block we never requested ({index}:{begin})"),
            },
        }
        self.sent_us.set(index as usize);
        let n = data.len() as u64;
        self.sh.downloaded.fetch_add(n, Ordering::Relaxed);
        self.t.downloaded.fetch_add(n, Ordering::Relaxed);
        self.last_block_at = Instant::now();
        self.snubbed = false;
        self.got_piece = true;
        if self.slow_start && self.window < self.max_window() {
            self.window += 1;
        }
        let mut c = self.t.core.lock();
        let (cancel, complete) = match c.picker.on_block(self.sh.key, b, data) {
            BlockResult::Stored { cancel } => (cancel, None),
            BlockResult::Complete {
                index,
                buf,
                contributors,
                cancel,
            } => (cancel, Some((index, buf, contributors))),
            BlockResult::NotNeeded => (Vec::new(), None),
        };
        for k in cancel {
            if let Some(p) = c.peers.get(&k) {
                p.cancel(b);
            }
        }
        drop(c);
        if let Some((index, buf, contributors)) = complete {
            super::verify::spawn(self.t.clone(), index, buf, contributors);
        }
        Ok(())
    }

    /// Drops the requests `which` picks, as `how` says. Each is remembered as cancelled (a block
    /// already on its way is taken, not counted as unasked), within the last `2 * MAX_WINDOW`.
    fn drop_requests(&mut self, mut which: impl FnMut(&BlockRef) -> bool, how: LetGo) {
        let mut gone = Vec::new();
        self.requests.retain(|(b, _)| {
            let drop = which(b);
            if drop {
                gone.push(*b);
            }
            !drop
        });
        if gone.is_empty() {
            return;
        }
        if how.release {
            let mut c = self.t.core.lock();
            for &b in &gone {
                c.picker.release(self.sh.key, b);
            }
        }
        for b in gone {
            if how.cancel {
                self.out.push(&Message::Cancel(b));
            }
            self.cancelled.push_back(b);
        }
        while self.cancelled.len() > 2 * MAX_WINDOW {
            self.cancelled.pop_front();
        }
    }

    /// `lt_donthave` (BEP 54): the peer lost a piece it announced. It leaves the peer's pieces (and
    /// the availability); our requests for it are cancelled and go back to the picker, like those
    /// of a choke without the fast extension (a block already on its way is still taken).
    fn on_donthave(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let Some(i) = lt_donthave::decode(payload) else {
            anyhow::bail!("lt_donthave of {} bytes (4 expected)", payload.len());
        };
        if i as usize >= self.has.len() {
            anyhow::bail!("lt_donthave for piece {i} of {}", self.has.len());
        }
        if !self.has.clear(i as usize) {
            return Ok(());
        }
        self.t.core.lock().picker.remove_have(i);
        self.drop_requests(|b| b.index == i, LetGo::CANCEL_AND_RELEASE);
        self.after_has_changed();
        Ok(())
    }

    fn on_commands(&mut self) -> anyhow::Result<()> {
        let (cancels, close, withdrawn, holepunch) = {
            let mut cmds = self.sh.cmds.lock();
            let w = std::mem::take(&mut cmds.withdrawn);
            let h = std::mem::take(&mut cmds.holepunch);
            (std::mem::take(&mut cmds.cancels), cmds.close.take(), w, h)
        };
        if let Some(why) = close {
            anyhow::bail!("{why}");
        }
        super::holepunch::send_queued(&self.out, self.ext_state.ids().ut_holepunch, holepunch);
        self.on_withdrawn(&withdrawn)?;
        if !cancels.is_empty() {
            // The picker gave these blocks to others already (endgame's duplicates, which
            // arrived elsewhere).
            let how = LetGo {
                cancel: true,
                release: false,
            };
            self.drop_requests(|b| cancels.contains(b), how);
        }
        let choke = self.sh.am_choking();
        if choke != self.sent_choking {
            self.sent_choking = choke;
            if choke {
                self.out.push(&Message::Choke);
                // Requests for allowed-fast pieces stay: they are served while choked.
                let dropped: VecDeque<BlockRef> = {
                    let mut q = self.out.inner.lock();
                    let (gone, kept) = q
                        .uploads
                        .drain(..)
                        .partition(|b| !self.our_allowed_fast.contains(&b.index));
                    q.uploads = kept;
                    gone
                };
                if self.fast {
                    for b in dropped {
                        self.out.push(&Message::Reject(b));
                    }
                }
            } else {
                self.out.push(&Message::Unchoke);
            }
        }
        Ok(())
    }

    /// Pieces we withdrew (see `disk_check`): queued requests for them are dropped (rejected to a peer
    /// with the fast extension). A peer that speaks `lt_donthave` (BEP 54) is told we no longer have
    /// them, and stays. Any other that lacks one and may ask for it (it wants our pieces, or it
    /// cannot be sent a reject) is let go: a fast peer told `reject` asks again at once, forever, and
    /// any other would wait on its request; it gets our current bitfield when it comes back. We may
    /// want the pieces from the peers that stay.
    fn on_withdrawn(&mut self, pieces: &[u32]) -> anyhow::Result<()> {
        if pieces.is_empty() {
            return Ok(());
        }
        let dropped: VecDeque<BlockRef> = {
            let mut q = self.out.inner.lock();
            let (gone, kept) = q.uploads.drain(..).partition(|b| pieces.contains(&b.index));
            q.uploads = kept;
            gone
        };
        if self.fast {
            for b in dropped {
                self.out.push(&Message::Reject(b));
            }
        }
        if let Some(id) = self.ext_state.ids().lt_donthave {
            for &i in pieces {
                let payload = lt_donthave::encode(i).to_vec();
                self.out.push(&Message::Extended {
                    id,
                    payload: payload.into(),
                });
            }
            self.after_has_changed();
            return Ok(());
        }
        let may_ask = !self.fast || self.sh.peer_interested();
        if let Some(i) = pieces
            .iter()
            .find(|&&i| may_ask && !self.has.get(i as usize))
        {
            anyhow::bail!(
                "we withdrew piece {i}: the peer learns our pieces anew when it reconnects"
            );
        }
        self.after_has_changed();
        Ok(())
    }

    /// Counts piece `i` as seen at a peer for super-seeding; true when super-seeding connections should
    /// look at their offers again (it is on).
    fn note_seen(&self, c: &mut super::torrent::Core, i: usize) -> bool {
        c.superseed.note_have(i);
        c.superseed.active(c.picker.is_complete())
    }

    /// Super-seeding this peer: renews its offers, or ends super-seeding for it (it is a seed, or
    /// super-seeding is over: see [`super::superseed`]) by announcing every piece it was not offered.
    fn super_seed_step(&mut self) {
        let Some(offers) = self.ss.as_mut() else {
            return;
        };
        let declined = offers.declined(&self.has, self.sh.peer_interested(), Instant::now());
        let mut g = self.t.core.lock();
        let c = &mut *g;
        if declined || self.has.is_full() || !c.superseed.active(c.picker.is_complete()) {
            if declined {
                tracing::debug!(peer = %self.sh.addr, "declines its super-seeding offers: shown every piece");
            }
            let ours = c.picker.have().clone();
            let done = c.picker.is_done();
            drop(g);
            let offered = std::mem::replace(&mut offers.offered, Bitfield::new(0));
            self.ss = None;
            for i in ours.ones() {
                if !self.has.get(i) && !offered.get(i) {
                    self.out.push(&Message::Have(i as u32));
                }
            }
            self.tell_upload_only(done);
            return;
        }
        let leechers = c.peers.values().filter(|p| !p.is_seed()).count();
        let limit = super::superseed::offer_limit(
            leechers,
            self.t.geo.piece_length,
            self.t.geo.piece_count as usize,
        );
        let new = offers.refill(&self.has, limit, &mut c.superseed, &c.picker);
        drop(g);
        for p in new {
            self.out.push(&Message::Have(p));
        }
    }

    /// Announces the pieces we completed since the last call, the moment they verify: to a peer that
    /// lacks them, and to one that sent us blocks of them (a super-seeding peer,
    /// [`super::superseed`], learns from it that its offer arrived). A peer that has a piece and did
    /// not send it to us is not told: it will never ask us for it, and in a swarm that is most of the
    /// `have`s, each a packet of its own.
    fn send_haves(&mut self) -> anyhow::Result<()> {
        let (new, interesting, complete) = {
            let c = self.t.core.lock();
            let new: Vec<u32> = c.have_log[self.cursor.min(c.have_log.len())..].to_vec();
            self.cursor = c.have_log.len();
            (new, c.picker.interesting(&self.has), c.picker.is_done())
        };
        for i in new {
            if !self.has.get(i as usize) || self.sent_us.get(i as usize) {
                self.out.push(&Message::Have(i));
            }
        }
        self.set_interest(interesting);
        self.tell_upload_only(complete);
        self.close_if_redundant(complete, interesting);
        Ok(())
    }

    /// The most requests this peer may have outstanding: its `reqq`, and under a download limit (the
    /// session's or the torrent's, as they are now) no more than that limit lets in in
    /// [`WINDOW_SECONDS`].
    fn max_window(&self) -> usize {
        let max = self.reqq.clamp(MIN_WINDOW, MAX_WINDOW);
        match self.t.limits.download_rate(&self.t.ctx) {
            Some(limit) => {
                let blocks = (limit as f64 * WINDOW_SECONDS / BLOCK_SIZE as f64) as usize;
                max.min(blocks).max(MIN_WINDOW)
            }
            None => max,
        }
    }

    fn on_tick(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let rate = self
            .down_rate
            .update(self.sh.downloaded.load(Ordering::Relaxed), now);
        let up = self
            .up_rate
            .update(self.sh.uploaded.load(Ordering::Relaxed), now);
        self.sh.down_rate.store(rate, Ordering::Relaxed);
        self.sh.up_rate.store(up, Ordering::Relaxed);
        let target = (rate as f64 * WINDOW_SECONDS / BLOCK_SIZE as f64) as usize;
        if self.slow_start {
            if self.got_piece && rate > 0 && (rate as f64) < self.last_rate as f64 * 1.1 {
                self.slow_start = false;
                self.window = self.window.max(target);
            }
        } else {
            self.window = target;
        }
        self.window = self.window.clamp(MIN_WINDOW, self.max_window());
        self.last_rate = rate;
        self.pace = if rate > 0 {
            Duration::from_secs_f64(BLOCK_SIZE as f64 / rate as f64)
        } else {
            Duration::ZERO
        };

        if !self.requests.is_empty() && now.duration_since(self.last_block_at) > self.snub_after() {
            // Snubbed: hand its requests to others and ask it for little from now on.
            tracing::debug!(peer = %self.sh.addr, requests = self.requests.len(),
                "snubbed: nothing delivered for {:?}", now.duration_since(self.last_block_at));
            self.drop_requests(|_| true, LetGo::CANCEL_AND_RELEASE);
            self.slow_start = false;
            self.window = MIN_WINDOW;
            self.last_block_at = now;
            self.snubbed = true;
            self.rest_until = now + SNUB_REST;
            // The other connections pick again now, not at their next tick.
            self.t.have_tx.send_modify(|_| {});
        }
        if now.duration_since(self.last_recv) > IDLE_TIMEOUT {
            anyhow::bail!("idle for {} s", IDLE_TIMEOUT.as_secs());
        }
        self.ext_state.on_tick(&self.t, &self.sh, &self.out);
        let last_write = self.out.inner.lock().last_write;
        if now.duration_since(last_write) > KEEPALIVE {
            self.out.push(&Message::KeepAlive);
        }
        Ok(())
    }

    /// Records how long a request took to be answered.
    fn note_answer_time(&mut self, took: Duration) {
        self.answer_time = Some(match self.answer_time {
            None => (took, took / 2),
            Some((mean, dev)) => {
                let diff = mean.abs_diff(took);
                (
                    mean.mul_f64(0.875) + took.mul_f64(0.125),
                    dev.mul_f64(0.75) + diff.mul_f64(0.25),
                )
            }
        });
    }

    /// How long the peer may go without delivering while requests wait: far longer than its requests
    /// usually take to be answered (mean + 4 deviations, which covers its queue at its rate), within
    /// [`SNUB_FLOOR`]`..=`[`REQUEST_TIMEOUT`]; [`SNUB_UNKNOWN`] before its first block.
    fn snub_after(&self) -> Duration {
        match self.answer_time {
            None => SNUB_UNKNOWN,
            Some((mean, dev)) => (mean + dev * 4).clamp(SNUB_FLOOR, REQUEST_TIMEOUT),
        }
    }

    fn fill_requests(&mut self) {
        if !self.am_interested {
            return;
        }
        // Choked, only the peer's allowed-fast pieces may be asked for; not in sequential mode,
        // where they would come far ahead of the pieces being played.
        if self.peer_choking
            && (self.allowed_fast.is_empty() || self.t.core.lock().picker.sequential())
        {
            return;
        }
        if self.snubbed && Instant::now() < self.rest_until {
            return;
        }
        let window = if self.snubbed {
            1
        } else {
            self.window.min(self.max_window())
        };
        let free = window.saturating_sub(self.requests.len());
        if free == 0 || (free < (window / 8).max(1) && !self.requests.is_empty()) {
            return;
        }
        let restricted;
        let has = if self.peer_choking {
            let mut bf = Bitfield::new(self.has.len());
            for &i in &self.allowed_fast {
                if self.has.get(i as usize) {
                    bf.set(i as usize);
                }
            }
            restricted = bf;
            &restricted
        } else {
            &self.has
        };
        let mut picked = std::mem::take(&mut self.picked);
        picked.clear();
        let n = self.t.core.lock().picker.pick_paced(
            self.sh.key,
            has,
            self.requests.len(),
            free,
            self.pace,
            !self.snubbed,
            &mut picked,
        );
        if n > 0 {
            if self.requests.is_empty() {
                self.last_block_at = Instant::now();
            }
            let now = Instant::now();
            let mut q = self.out.inner.lock();
            for b in &picked {
                btorrent_proto::wire::message::encode(&Message::Request(*b), &mut q.ctrl);
                self.requests.push_back((*b, now));
            }
        }
        self.picked = picked;
    }
}
