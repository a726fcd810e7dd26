//! The reader task of one connection: it owns the protocol state (what the peer has, our requests to
//! it, the request window) and speaks the protocol; the sender task (`sender.rs`) sends. This file
//! holds the task's loop and the messages that are neither side's pieces nor our requests; the rest
//! is in two parts:
//!
//! - `requests`: our requests to the peer: the blocks it sends, the request window, snubbing;
//! - `haves`: what each side has and wants: bitfields, `have`s, interest, `upload_only`,
//!   withdrawn pieces, super-seeding offers, and closing a connection neither side needs.
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

mod haves;
mod requests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use self::requests::LetGo;
use crate::peer::PeerShared;
use crate::picker::BlockResult;
use crate::rate::Rate;
use crate::sender::OutQueue;
use crate::torrent::Torrent;
use btorrent_proto::metainfo::v2::HashRange;
use btorrent_proto::wire::allowed_fast::allowed_fast_set;
use btorrent_proto::wire::extension::{
    parse_upload_only, upload_only_payload, LT_DONTHAVE_ID, OUR_REQQ, UPLOAD_ONLY_ID,
};
use btorrent_proto::wire::handshake::Handshake;
use btorrent_proto::wire::lt_donthave;
use btorrent_proto::wire::{Bitfield, BlockRef, ExtHandshake, Message, PeerCodec, BLOCK_SIZE};

use crate::ext::PeerExt;
use crate::superseed::Offers;

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
    dht: Option<Arc<crate::dht::DhtNode>>,
    /// Super-seeding this peer ([`crate::superseed`]): the pieces it was offered. `None` = it was
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
        stream: crate::peer_stream::PeerStream,
        conn: CancellationToken,
    ) -> anyhow::Result<()> {
        let (mut rd, wr) = stream.into_split();
        let sender = tokio::spawn(crate::sender::run(
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
        rd: &mut crate::peer_stream::PeerReader,
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
                crate::ext::our_handshake(&self.t, self.told_upload_only, self.sh.addr.ip());
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
        crate::holepunch::send_queued(&self.out, self.ext_state.ids().ut_holepunch, holepunch);
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
        self.follow_rate(rate, now);
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
}
