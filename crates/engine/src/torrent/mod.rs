//! One torrent: its shared state (`Torrent`, `Core`, in this file), the handle front ends hold
//! ([`TorrentHandle`], in `handle`), and its background task (check the data, then keep the swarm going: dial
//! peers, run the choker, save resume data, announce).
//!
//! # The lifecycle
//!
//! `Core::lifecycle` (`Lifecycle`) is the torrent's one state: `Running(phase)`, `Paused(phase)`
//! (the phase a resume goes back to) or `Error(message)`, the phase being `Checking`, `Downloading`
//! or `Seeding`. Nothing else says whether a torrent is paused, checking or failed; front ends see
//! `Lifecycle::report`. It is read and moved only under the core lock, and only through
//! `Lifecycle`'s methods, which refuse (return `false`, change nothing) any move not listed here:
//!
//! | move | by whom |
//! | --- | --- |
//! | `Running(p)` ⇄ `Paused(p)` | [`TorrentHandle::pause`] / [`TorrentHandle::resume`] (a front end, `move_to`) |
//! | `Checking` → `Downloading` or `Seeding`, paused or not | `torrent_task::apply_check`: `Session::add` (nothing to hash) or the torrent task (the hashing ended) |
//! | `Downloading` → `Seeding`, paused or not | a disk job (the last wanted piece verified), `set_file_priorities` (the rest unwanted) |
//! | `Seeding` → `Downloading`, paused or not | a disk job (a piece withdrawn), `set_file_priorities` (a lacking file wanted) |
//! | any → `Error` (once: the first message stays) | `Torrent::fail`: a disk job (a write failed, the data gone when read for upload), the torrent task (empty files), `Session::add` (the data gone) |
//! | `Error` (of the disk) → `Running(phase)` | [`TorrentHandle::resume`] or `relocate` (`recover`: `Checking` for data that is back after it was gone, then the check moves it on; else whether every wanted piece is there decides) |
//!
//! So a pause during the check lets the check end (`Paused(Checking)` → `Paused(Downloading)`), and a
//! resume before it ends goes back to checking; an error while paused stays an error (a pause is a
//! no-op on it); a resume takes up a torrent the disk failed and leaves any other failure as it is.
//! The torrent task outlives a failure (its loop idles while failed), so a recovered torrent goes
//! on where it was; the pieces in flight when it failed went back to `Missing` (a write refused) or
//! were had (a write that got through). Only `Running(Downloading | Seeding)`
//! (`Lifecycle::transfers`) takes connections, dials and announces. The announce tasks of the
//! current `run` are started once: `announcer::start_if_due` checks `transfers()` and sets
//! `Core::announcing` in one hold of the lock, `pause` clears it as it replaces `run`, so the torrent
//! loop starting and a `resume()` at the same moment start them once, and a pause between the two
//! leaves the first set with a cancelled `run`. Each tracker's task has a token of its own in
//! `Core::tracker_tasks` (a child of `run`), made together with the reading of the tracker list in
//! that same hold of the lock; `set_trackers` changes the list and the tokens in one hold too, so a
//! tracker gets one task per run, and one taken off the list has its task cancelled.
//!
//! A move of the data (`move_to`), a rename of its files (`rename_path`) or pointing it at another
//! folder (`relocate`) pauses the torrent and sets `Core::moving` to what it does after;
//! while that is set, `pause` and `resume` change only it (the torrent stays paused until the files
//! are in place), and the move's end takes it and resumes if it says so.
//!
//! Who changes the rest: `Core::peers` by peer tasks registering and leaving; `Core::known` by the
//! torrent task (dialing), peer tasks (a peer's listen port) and `add_peers`; the picker by peer tasks
//! (blocks) and disk jobs (hash results). `run` is replaced on every pause: cancelling it closes
//! every connection of the current run.

mod handle;

pub use handle::TorrentHandle;

use super::placement::AfterMove;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::known::{KnownPeers, Source};
pub(crate) use super::lifecycle::{Lifecycle, Phase};
use super::peer::PeerShared;
use super::picker::{PeerKey, Picker};
use super::rate::Rate;
use super::selection::{self, FilePriority};
use super::session::SessionCtx;
use super::storage::Storage;
use super::{EngineError, Event, Result, TorrentStats};
use btorrent_proto::metainfo::Metainfo;
use btorrent_proto::types::{InfoHash, PeerId};
use btorrent_proto::wire::Geometry;

/// The state behind the torrent's lock. See the module docs of [`super`] for the lock order.
pub(crate) struct Core {
    pub picker: Picker,
    /// The torrent's one state (see the module docs for its moves).
    pub lifecycle: Lifecycle,
    pub peers: HashMap<PeerKey, Arc<PeerShared>>,
    pub known: KnownPeers,
    /// Addresses found to be ourselves (dialing them reached our own listener).
    pub own_addrs: HashSet<SocketAddr>,
    /// Banned: every connection from these addresses is refused, whatever its port or peer id.
    pub banned_ips: HashSet<IpAddr>,
    pub banned_ids: HashSet<PeerId>,
    /// Bad pieces counted against each address (they outlive its connections).
    pub strikes: HashMap<IpAddr, u32>,
    /// The last peers that left, so a bad piece hashed after its sender left still counts against
    /// its address (at most [`super::peer::DEPARTED`]).
    pub departed: VecDeque<(PeerKey, SocketAddr)>,
    /// Pieces completed in this session, in order; peer tasks announce them from their own cursor.
    pub have_log: Vec<u32>,
    pub next_key: PeerKey,
    /// Cancelled on pause/stop: every connection of the current run ends.
    pub run: CancellationToken,
    /// The announce tasks of the current `run` are started (set and read only under the lock, so a
    /// `resume()` racing the torrent loop's start cannot start them twice).
    pub announcing: bool,
    /// The announce task of each tracker in the current run, by URL (children of `run`): a tracker
    /// taken off the list has its task cancelled.
    pub tracker_tasks: HashMap<String, CancellationToken>,
    /// The download reached 100% in this session and the completion has not been handled yet.
    pub completion_pending: bool,
    pub resume_dirty: bool,
    /// Times the choker should run again at once (a peer became interested, one left).
    pub choke_soon: bool,
    /// Super-seeding's state (see [`super::superseed`]).
    pub superseed: super::superseed::SuperSeed,
    /// Each file's priority ([`super::selection`]); the picker holds the pieces' ranks made from it.
    pub files: Vec<FilePriority>,
    /// A move of the data is under way ([`TorrentHandle::move_to`]; one at a time): the torrent is
    /// paused for it, and this is what it does once the move ends. A pause or resume asked during
    /// the move changes this, not the lifecycle: the connections stay closed until the files are in
    /// their new place, and the move does not undo what was asked meanwhile.
    pub moving: Option<AfterMove>,
    /// When it started, moved data, completed; how long it downloaded and seeded ([`super::clock`]).
    pub clock: super::clock::Clock,
}

pub(crate) struct Torrent {
    pub meta: Metainfo,
    pub geo: Geometry,
    pub storage: Storage,
    pub core: Mutex<Core>,
    pub ctx: Arc<SessionCtx>,
    /// Wakes the torrent task (new peers, completion, interest changes).
    pub wake: Notify,
    /// Length of `Core::have_log`, for peer tasks to wait on.
    pub have_tx: watch::Sender<usize>,
    /// The torrent's whole life: cancelled by remove/shutdown.
    pub life: CancellationToken,
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub rates: Mutex<(Rate, Rate)>,
    /// The torrent's own speed limits (see [`super::limits`]).
    pub limits: super::limits::Limits,
    /// The trackers it announces to ([`TorrentHandle::set_trackers`] changes them). Taken after the
    /// core lock when both are held.
    pub trackers: RwLock<Vec<String>>,
    /// The same trackers in their tiers (BEP 12), as front ends show them; changed with `trackers`,
    /// after it.
    pub tracker_tiers: RwLock<Vec<Vec<String>>>,
    /// Each tracker's last answer, by URL (read by front ends; written by the announce tasks).
    pub tracker_status: Mutex<HashMap<String, super::TrackerStatus>>,
    /// Counts the announces front ends asked for (each tracker's task announces when it has not
    /// served the latest, as soon as the tracker's `min interval` allows).
    pub announce_asked: AtomicU64,
    /// Successful announces so far (a `stopped` is only sent after one); back to 0 once a pause's
    /// `stopped` went out, so a removal that follows does not say it again.
    pub announced: AtomicU64,
    /// Held while a pause tells the trackers the torrent left (`stopped`); a new run's first
    /// announce (`started`) waits for it, so a quick resume never reaches a tracker before it.
    pub leaving: Arc<tokio::sync::Mutex<()>>,
    /// The session's disk writer that writes this torrent's verified pieces (see [`super::verify`]).
    pub writer_lane: usize,
    /// Received pieces waiting to be hashed.
    pub hashq: super::verify::HashQueue,
    /// Pieces hashed from disk lately, so uploads need not hash them again (see [`super::disk_check`]).
    pub upload_marks: super::disk_check::UploadMarks,
    /// Copies of the pieces verified last, which serve uploads from memory (see [`super::hot`]).
    pub hot: super::hot::HotPieces,
    /// Pieces taken back because their data on disk failed the hash, in this session.
    pub pieces_withdrawn: AtomicU64,
    /// Pieces hashed from disk by data checks, in this session.
    pub pieces_checked: AtomicU64,
    /// The torrent's HTTP(S) web seeds and what each is doing ([`super::web_seed`]).
    pub web_seeds: Vec<Arc<super::web_seed::WebSeedView>>,
    /// A seeding torrent withdrew a piece: its next completion is a repair, not a download (no
    /// `Completed` event).
    pub repairing: std::sync::atomic::AtomicBool,
    /// A hybrid's piece layers derived from its data once complete, when they did not come with
    /// it ([`super::derived_layers`]); set once.
    pub derived_layers: std::sync::OnceLock<btorrent_proto::metainfo::v2::V2>,
    disk_jobs: AtomicUsize,
    disk_idle: Notify,
    done: watch::Sender<Option<std::result::Result<(), EngineError>>>,
}

impl Torrent {
    /// Records a step of the announce to `url` in its [`super::TrackerStatus`].
    pub fn note_tracker(&self, url: &str, f: impl FnOnce(&mut super::TrackerStatus)) {
        f(self
            .tracker_status
            .lock()
            .entry(url.to_string())
            .or_default());
    }

    pub fn info_hash(&self) -> InfoHash {
        self.meta.info_hash
    }

    /// Its v2 hashes, which hash requests are answered from: those that came with it, or those
    /// derived from its data ([`super::derived_layers`]).
    pub fn merkle(&self) -> Option<&btorrent_proto::metainfo::v2::V2> {
        self.meta
            .info
            .merkle()
            .or_else(|| self.derived_layers.get())
    }

    /// Resolves once the torrent is complete, at once if it is (a failed torrent never is).
    pub async fn complete(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| matches!(d, Some(Ok(())))).await;
    }

    /// The `stopped` announces a stop would send: one per tracker, once one announce succeeded.
    pub fn stopped_announces(&self) -> usize {
        if self.announced.load(Ordering::Relaxed) == 0 {
            0
        } else {
            self.trackers.read().len()
        }
    }

    pub fn emit(&self, e: Event) {
        self.ctx.events.publish(e);
    }

    pub fn disk_job_started(&self) {
        self.disk_jobs.fetch_add(1, Ordering::AcqRel);
    }

    pub fn disk_job_finished(&self) {
        if self.disk_jobs.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.disk_idle.notify_waiters();
        }
    }

    pub(crate) async fn wait_disk_idle(&self) {
        loop {
            let n = self.disk_idle.notified();
            if self.disk_jobs.load(Ordering::Acquire) == 0 {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), n).await;
        }
    }

    /// Puts the torrent in the error state (a disk error): it stops transferring.
    pub fn fail(&self, cause: EngineError) {
        let message = cause.to_string();
        let run = {
            let mut c = self.core.lock();
            // The first failure is the one reported: pieces already on their way to a full disk fail
            // too, and would each log, publish and replace the reason.
            if !c.lifecycle.fail(cause.clone()) {
                return;
            }
            // In the same hold of the lock: whoever sees the state `Error` and then waits sees
            // the failure too.
            self.done.send_replace(Some(Err(cause.clone())));
            c.run.clone()
        };
        run.cancel();
        // Reported by whoever shows the event or waits on the torrent (the shell's event line, the
        // daemon's log, a command's error); a log line as well would say it twice.
        tracing::info!(torrent = %self.meta.info.name, "{message}");
        self.emit(Event::Error {
            info_hash: self.info_hash(),
            name: self.meta.info.name.clone(),
            message,
        });
    }

    /// Resolves to `Some(Ok)` once every piece is on disk, `Some(Err)` (the first failure) if the
    /// torrent failed.
    pub(crate) fn done_rx(&self) -> watch::Receiver<Option<std::result::Result<(), EngineError>>> {
        self.done.subscribe()
    }

    /// Records completion from a disk job: the torrent task finishes it (events, files, announce).
    pub fn note_complete(&self) {
        self.done.send_replace(Some(Ok(())));
    }

    /// A piece was withdrawn: the download is not complete any more (unless the torrent failed).
    pub fn not_complete(&self) {
        self.done.send_if_modified(|d| {
            let was = matches!(d, Some(Ok(())));
            if was {
                *d = None;
            }
            was
        });
    }

    /// Adds dial candidates from `source`.
    pub fn add_known(&self, addrs: impl IntoIterator<Item = SocketAddr>, source: Source) {
        let mut c = self.core.lock();
        for a in addrs {
            if self.worth_knowing(&c, &a) {
                c.known.add(a, source);
            }
        }
        drop(c);
        self.wake.notify_one();
    }

    /// [`Torrent::add_known`] for addresses heard of in swarm `ih`, one of the torrent's
    /// [`Metainfo::swarm_ids`]: an address new to the torrent from its second swarm (a hybrid's v2
    /// one) is dialed by that swarm's info-hash ([`KnownPeer::second_swarm`]); one heard of in the
    /// first swarm is dialed there.
    ///
    /// [`KnownPeer::second_swarm`]: super::known::KnownPeer::second_swarm
    pub(crate) fn add_known_in(
        &self,
        ih: InfoHash,
        addrs: impl IntoIterator<Item = SocketAddr>,
        source: Source,
    ) {
        let second = ih != self.meta.info_hash;
        let mut c = self.core.lock();
        for a in addrs {
            if !self.worth_knowing(&c, &a) {
                continue;
            }
            let fresh = c.known.get_mut(&a).is_none();
            c.known.add(a, source);
            // Heard of in the first swarm too: dialed there.
            if let Some(k) = c.known.get_mut(&a).filter(|_| fresh || !second) {
                k.second_swarm = second;
            }
        }
        drop(c);
        self.wake.notify_one();
    }

    /// Not ourselves, not port 0, not an address nobody listens at (unspecified, multicast,
    /// broadcast: [`is_dialable`](btorrent_proto::addr::is_dialable)), not banned.
    pub(crate) fn worth_knowing(&self, c: &Core, a: &SocketAddr) -> bool {
        *a != self.ctx.listen_addr()
            && a.port() != 0
            && btorrent_proto::addr::is_dialable(a.ip())
            && !c.own_addrs.contains(a)
            && !c.banned_ips.contains(&a.ip())
    }

    /// Marks a known address to be dialed with the encrypted handshake first.
    pub(crate) fn encrypt_first(&self, addr: SocketAddr) {
        if let Some(k) = self.core.lock().known.get_mut(&addr) {
            k.encrypt_first = true;
        }
    }

    /// Adds the addresses a peer's exchange (BEP 11) named, with what their flags say, under one
    /// lock so that no dial comes between: one flagged as preferring encryption is dialed with the
    /// encrypted handshake first; one flagged as a seed or upload only, and never heard from
    /// ourselves, is taken to want nothing ([`KnownPeer::of_use`](super::known::KnownPeer::of_use): not dialed while we want
    /// nothing either); one flagged as speaking `ut_holepunch` has `introducer` (the peer that
    /// sent the exchange, when it speaks it too) to ask for an introduction if it cannot be
    /// dialed ([`super::holepunch`]).
    pub(crate) fn add_exchanged(
        &self,
        added: &[(SocketAddr, u8)],
        introducer: Option<super::picker::PeerKey>,
    ) {
        use btorrent_proto::wire::ut_pex::{FLAG_ENCRYPTION, FLAG_HOLEPUNCH, FLAG_SEED};
        let mut c = self.core.lock();
        for &(a, flags) in added {
            if !self.worth_knowing(&c, &a) {
                continue;
            }
            c.known.add(a, Source::Pex);
            if let Some(k) = c.known.get_mut(&a) {
                k.encrypt_first |= flags & FLAG_ENCRYPTION != 0;
                if flags & FLAG_HOLEPUNCH != 0 && introducer.is_some() {
                    k.introducer = introducer;
                }
                if !k.answered {
                    k.wants_nothing = flags & FLAG_SEED != 0;
                }
            }
        }
        drop(c);
        self.wake.notify_one();
    }

    pub fn stats(&self) -> TorrentStats {
        let limits = self.limits.get();
        let c = self.core.lock();
        let have = c.picker.have();
        let bytes_verified = if have.is_full() {
            self.geo.total_length
        } else {
            have.ones().map(|i| self.geo.piece_len(i as u32)).sum()
        };
        let seeds = c.peers.values().filter(|p| p.is_seed()).count();
        let (bytes_wanted, bytes_left) = c.picker.wanted_bytes();
        let (down, up) = {
            let r = self.rates.lock();
            (r.0.get(), r.1.get())
        };
        TorrentStats {
            name: self.meta.info.name.clone(),
            files: super::selection::file_list(
                &self.meta.info,
                self.storage.paths(),
                &c.files,
                have,
            ),
            limits,
            state: c.lifecycle.report(),
            checked: c.lifecycle.phase() != Some(crate::lifecycle::Phase::Checking),
            pieces_have: have.count(),
            pieces_total: have.len(),
            bytes_verified,
            bytes_total: self.geo.total_length,
            downloaded: self.downloaded.load(Ordering::Relaxed),
            uploaded: self.uploaded.load(Ordering::Relaxed),
            down_rate: down,
            up_rate: up,
            peers: c.peers.len(),
            seeds,
            data_dir: self.storage.data_dir(),
            pieces_withdrawn: self.pieces_withdrawn.load(Ordering::Relaxed),
            pieces_checked: self.pieces_checked.load(Ordering::Relaxed),
            super_seeding: c.superseed.active(have.is_full()),
            bytes_wanted,
            bytes_left,
            sequential: c.picker.sequential(),
            sequential_from: c.picker.sequential_from(),
            moving: c.moving.is_some(),
            web_seeds_sending: self.web_seeds.iter().filter(|v| v.is_sending()).count(),
            times: c.clock.times(),
        }
    }
}
