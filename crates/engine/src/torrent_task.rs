//! The torrent task: finish the data check (and record its outcome), then loop: dial known peers, run
//! the choker, keep rates, finish a completed download, save resume data, announce to trackers.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::choker::{self, Candidate};
use super::known::KnownPeer;
use super::picker::PeerKey;
use super::torrent::Torrent;
use super::Event;

const CHOKE_INTERVAL: Duration = Duration::from_secs(10);
const OPTIMISTIC_INTERVAL: Duration = Duration::from_secs(30);
/// Most dials in progress at once per torrent.
pub const MAX_HALF_OPEN: usize = 256;
/// Dials in progress per free connection slot.
const HALF_OPEN_PER_SLOT: usize = 8;

/// Delay before re-dialing an address after `failures` failures in a row.
/// Spread by up to a quarter so two peers that failed together do not retry in lock step.
pub(crate) fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs((2u64 << failures.min(6)).min(120));
    base.mul_f64(1.0 + rand::random::<f64>() / 4.0)
}

pub(crate) async fn run_swarm(t: Arc<Torrent>) {
    // Once a second in the session's phase (see `SessionCtx::next_tick`); the first pass is at once.
    let second = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(t.ctx.next_tick(second), second);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut first = true;
    let mut last_choke = Instant::now() - CHOKE_INTERVAL;
    let mut last_optimistic = Instant::now();
    let mut optimistic: Option<PeerKey> = None;
    let mut last_save = Instant::now();
    // Spread, so 1,000 torrents started together do not all save their clocks at one moment.
    let keep_every = super::clock::KEEP_EVERY.mul_f64(1.0 + rand::random::<f64>() / 2.0);
    super::announcer::start_if_due(&t);
    loop {
        tokio::select! {
            _ = t.life.cancelled() => return,
            _ = t.wake.notified() => {}
            _ = tick.tick() => {
                update_rates(&t);
                count_time(&t);
            }
            _ = std::future::ready(()), if first => {}
        }
        first = false;
        let (pending, transfers, error, choke_soon, dirty) = {
            let mut c = t.core.lock();
            let pending = std::mem::take(&mut c.completion_pending);
            let soon = std::mem::take(&mut c.choke_soon);
            (
                pending,
                c.lifecycle.transfers(),
                c.lifecycle.is_failed(),
                soon,
                c.resume_dirty,
            )
        };
        if pending {
            finish_download(&t).await;
            last_save = Instant::now();
        }
        if error {
            continue;
        }
        if transfers {
            connect_peers(&t);
            let now = Instant::now();
            if choke_soon || now.duration_since(last_choke) >= CHOKE_INTERVAL {
                let rotate = now.duration_since(last_optimistic) >= OPTIMISTIC_INTERVAL;
                if rotate {
                    last_optimistic = now;
                }
                optimistic = run_choker(&t, optimistic, rotate);
                last_choke = now;
            }
        }
        let keep_clock = transfers && last_save.elapsed() >= keep_every;
        if (dirty && last_save.elapsed() >= t.ctx.cfg.resume_interval) || keep_clock {
            super::resume::save(&t).await;
            last_save = Instant::now();
        }
    }
}

fn update_rates(t: &Torrent) {
    let now = Instant::now();
    let mut r = t.rates.lock();
    r.0.update(t.downloaded.load(Ordering::Relaxed), now);
    r.1.update(t.uploaded.load(Ordering::Relaxed), now);
}

/// Ticks the torrent's clock ([`super::clock`]) with what it does now.
fn count_time(t: &Torrent) {
    use super::clock::Doing;
    use super::lifecycle::{Lifecycle, Phase};
    let moved = t.downloaded.load(Ordering::Relaxed) + t.uploaded.load(Ordering::Relaxed);
    let mut c = t.core.lock();
    let doing = match c.lifecycle {
        Lifecycle::Running(Phase::Downloading) => Doing::Downloading,
        Lifecycle::Running(Phase::Seeding) => Doing::Seeding,
        _ => Doing::Nothing,
    };
    c.clock
        .tick(Instant::now(), super::clock::unix_now(), doing, moved);
}

fn create_files_failed(t: &Torrent, e: std::io::Error) -> crate::EngineError {
    crate::EngineError::CreateFiles {
        dir: t.storage.data_dir(),
        error: Arc::new(e),
    }
}

async fn finish_download(t: &Arc<Torrent>) {
    {
        let mut c = t.core.lock();
        if c.picker.is_done() && !t.repairing.load(Ordering::Relaxed) {
            c.clock.completed(super::clock::unix_now());
        }
    }
    let t2 = t.clone();
    let files =
        tokio::task::spawn_blocking(move || super::selection::create_wanted_empty_files(&t2)).await;
    if let Ok(Err(e)) | Err(e) = files.map_err(std::io::Error::other) {
        return t.fail(create_files_failed(t, e));
    }
    super::resume::save(t).await;
    if !t.core.lock().picker.is_done() {
        // A file was wanted again meanwhile: the torrent downloads again, and completes later.
        return;
    }
    let name = t.meta.info.name.clone();
    if t.repairing.swap(false, Ordering::Relaxed) {
        tracing::info!(torrent = %name, "withdrawn pieces fetched again: complete");
    } else {
        tracing::info!(torrent = %name, "download complete");
        t.emit(Event::Completed {
            info_hash: t.info_hash(),
            name: name.clone(),
            data_dir: t.storage.data_dir(),
        });
    }
    t.emit(Event::Seeding {
        info_hash: t.info_hash(),
        name,
        data_dir: t.storage.data_dir(),
    });
    t.note_complete();
}

/// Dials known addresses while there is room for more connections: up to [`MAX_HALF_OPEN`] dials at
/// once (fewer when few slots are left), in the known list's dial order, each with a socket of the
/// session's budget ([`crate::fd_budget`]; none left, no dial).
fn connect_peers(t: &Arc<Torrent>) {
    let now = Instant::now();
    let sockets = t.ctx.connections.available();
    if sockets == 0 {
        return;
    }
    let filter = t.ctx.ip_filter.read().clone();
    let mut ranker = t.ctx.ranker();
    let mut c = t.core.lock();
    let complete = c.picker.is_done();
    let wants = c.picker.wants_generation();
    let max = t.limits.max_peers(&t.ctx);
    let connecting = c.known.connecting();
    let mut room = max.saturating_sub(c.peers.len());
    let core = &mut *c;
    let banned = &core.banned_ips;
    let usable = |addr: &SocketAddr, k: &KnownPeer| {
        k.of_use(complete, wants) && !banned.contains(&addr.ip()) && !filter.blocks(addr.ip())
    };
    if room == 0 {
        // Full: a peer that only holds its slot gives it up for an address not tried yet.
        if connecting > 0
            || !core.known.any_dialable(now, usable)
            || !super::peer::evict_idle(&mut core.peers, t.ctx.cfg.idle_peer_grace)
        {
            return;
        }
        room = 1;
    }
    // Most dials fail when the list is full of junk: several per free slot, within the bound.
    let half_open = room.saturating_mul(HALF_OPEN_PER_SLOT).min(MAX_HALF_OPEN);
    let picks = core.known.picks(
        half_open.saturating_sub(connecting).min(sockets),
        now,
        usable,
        |a| ranker.rank(*a),
    );
    let run = c.run.clone();
    drop(c);
    for addr in picks {
        match t.ctx.connections.try_take() {
            Ok(socket) => {
                tokio::spawn(super::peer::dial(t.clone(), addr, run.clone(), socket));
            }
            // Taken meanwhile by other torrents or incoming connections.
            Err(_) => t.core.lock().known.not_dialed(addr),
        }
    }
}

fn run_choker(t: &Torrent, optimistic: Option<PeerKey>, rotate: bool) -> Option<PeerKey> {
    let c = t.core.lock();
    let seeding = c.picker.is_done();
    let peers: Vec<_> = c.peers.values().cloned().collect();
    drop(c);
    let piece_length = t.geo.piece_length.max(1);
    let cands: Vec<Candidate> = peers
        .iter()
        .map(|p| {
            // What it told us, or what we sent it if that is more (a peer that hides its pieces
            // does not stay furthest behind).
            let sent = p.uploaded.load(Ordering::Relaxed) / piece_length;
            Candidate {
                key: p.key,
                interested: p.peer_interested(),
                rate: if seeding { p.up_rate() } else { p.down_rate() },
                pieces: p.pieces().max(sent.min(u32::MAX as u64) as u32),
                unchoked: !p.am_choking(),
            }
        })
        .collect();
    // Caught up: within a twentieth of the torrent of the peer furthest behind.
    let catch_up = (t.geo.piece_count / 20).max(1);
    let (unchoke, optimistic) =
        choker::choose(&cands, t.ctx.cfg.upload_slots, optimistic, rotate, catch_up);
    for p in &peers {
        p.set_choking(!unchoke.contains(&p.key));
        p.optimistic
            .store(optimistic == Some(p.key), Ordering::Relaxed);
    }
    optimistic
}

/// Records the outcome of the data check: the pieces we have, and the phase that follows (paused or
/// not). `changed`: the resume file does not say this yet (it is saved before the torrent goes on).
/// Nothing follows for a torrent that failed meanwhile.
pub(crate) fn apply_check(t: &Torrent, have: &btorrent_proto::wire::Bitfield, changed: bool) {
    let complete = {
        let mut c = t.core.lock();
        for i in have.ones() {
            c.picker.mark_have(i as u32);
        }
        let complete = c.picker.is_done();
        if !c.lifecycle.checked(complete) {
            return;
        }
        let dated = complete && c.clock.found_complete(super::clock::unix_now());
        c.resume_dirty = changed || dated;
        complete
    };
    super::partial_files::name_all(t);
    if complete {
        if let Err(e) = super::selection::create_wanted_empty_files(t) {
            return t.fail(create_files_failed(t, e));
        }
        t.note_complete();
        t.emit(Event::Seeding {
            info_hash: t.info_hash(),
            name: t.meta.info.name.clone(),
            data_dir: t.storage.data_dir(),
        });
    }
}

/// The check of a torrent whose data came back after it failed for want of it
/// (`TorrentHandle::recover`, in `Checking`): what the resume file vouches for where the files are
/// as it says, the rest hashed, pieces had that are not there withdrawn; then it goes on as after
/// the check made when it was added (seeding or downloading, paused if paused meanwhile).
pub(crate) async fn check_again(t: Arc<Torrent>) {
    let turn = tokio::select! {
        p = t.ctx.checks.acquire() => p,
        _ = t.life.cancelled() => return,
    };
    let Ok(_turn) = turn else { return };
    let t2 = t.clone();
    t.disk_job_started();
    let checked = tokio::task::spawn_blocking(move || {
        // Back under the names it had (its own, say), not those given for a download meanwhile.
        t2.storage.locate();
        let survey = super::resume::survey_again(&t2);
        super::disk_check::recheck_with(&t2, survey)
    })
    .await;
    t.disk_job_finished();
    if let Err(e) = checked {
        return t.fail(crate::EngineError::CheckFailed(e.to_string()));
    }
    let have = t.core.lock().picker.have().clone();
    apply_check(&t, &have, true);
    super::resume::save(&t).await;
    super::announcer::start_if_due(&t);
    t.wake.notify_one();
}

/// What `Session::add` left of the check, for the torrent task.
pub(crate) enum Unchecked {
    /// These pieces are still to hash.
    Check(super::resume::Survey),
    /// Files it lacks are to be placed from this machine ([`super::local_data`]), then the data
    /// checked.
    Place(super::local_data::Plan),
}

/// The torrent task: finish checking the data (placing the files found on this machine first),
/// then run the swarm until the torrent is removed. `None`: the check is applied already.
pub(crate) async fn run(t: Arc<Torrent>, unchecked: Option<Unchecked>) {
    if let Some(unchecked) = unchecked {
        let t2 = t.clone();
        let checked = {
            let turn = tokio::select! {
                p = t.ctx.checks.acquire() => p,
                _ = t.life.cancelled() => return,
            };
            let Ok(_turn) = turn else { return };
            tokio::task::spawn_blocking(move || {
                let survey = match unchecked {
                    Unchecked::Check(survey) => survey,
                    Unchecked::Place(found) => {
                        let placed = super::local_data::place(&t2, found);
                        if !placed.is_empty() {
                            t2.emit(Event::FoundLocally {
                                info_hash: t2.info_hash(),
                                name: t2.meta.info.name.clone(),
                                data_dir: t2.storage.data_dir(),
                                message: placed.describe(),
                            });
                        }
                        super::resume::survey(&t2)
                    }
                };
                super::resume::hash_check(&t2, survey)
            })
            .await
        };
        match checked {
            Ok(have) => apply_check(&t, &have, true),
            Err(e) => return t.fail(crate::EngineError::CheckFailed(e.to_string())),
        }
        // A torrent that failed at the end of its check (its empty files) goes on into its loop,
        // which idles until a resume takes it up again (see `TorrentHandle::resume`).
    }
    // A start whose resume file vouched for everything, unchanged, has nothing to save.
    if t.core.lock().resume_dirty {
        super::resume::save(&t).await;
    }
    if super::derived_layers::lacking(&t.meta) {
        tokio::spawn(super::derived_layers::derive_when_complete(t.clone()));
    }
    run_swarm(t).await;
}
