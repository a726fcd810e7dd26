//! [`TorrentHandle`]: what front ends hold of a torrent. Its figures and peers, its trackers, and
//! what they do to it: pause and resume (the lifecycle's moves, told as events), dial peers, check
//! the data, wait for completion, stop it.

use super::*;

/// A torrent in a [`crate::Session`]. Cheap to clone.
#[derive(Clone)]
pub struct TorrentHandle(pub(crate) Arc<Torrent>);

impl std::fmt::Debug for TorrentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TorrentHandle({} {})",
            self.0.meta.info.name,
            self.0.info_hash()
        )
    }
}

impl TorrentHandle {
    pub(crate) fn new(
        meta: Metainfo,
        opts: &crate::AddOptions,
        trackers: Vec<String>,
        ctx: Arc<SessionCtx>,
    ) -> Self {
        let (data_dir, paused, super_seed) = (opts.data_dir.clone(), opts.paused, opts.super_seed);
        let files = opts
            .files
            .clone()
            .unwrap_or_else(|| vec![FilePriority::Normal; meta.info.files.len()]);
        let mut picker = Picker::new(Geometry::from_info(&meta.info), ctx.cfg.max_buffer_bytes);
        picker.set_ranks(selection::piece_ranks(&meta.info, &files));
        picker.set_padding(super::super::picker::padding_blocks(&meta.info));
        picker.set_sequential(opts.sequential);
        // Past the last piece (a stale entry): from the first.
        if opts.sequential_from < meta.info.piece_count() as u32 {
            picker.set_sequential_from(opts.sequential_from);
        }
        let geo = Geometry::from_info(&meta.info);
        let storage = Storage::with_cache(
            meta.info.clone(),
            data_dir,
            ctx.files.clone(),
            ctx.rename_partial_files(),
        )
        .with_direct_writes(ctx.cfg.direct_writes);
        if let Some(paths) = &opts.file_paths {
            // Checked by the session's `add`.
            let _ = storage.set_paths(paths.clone());
        }
        let life = ctx.shutdown.child_token();
        let core = Core {
            picker,
            files,
            lifecycle: Lifecycle::new(paused),
            peers: HashMap::new(),
            known: KnownPeers::default(),
            own_addrs: HashSet::new(),
            banned_ips: HashSet::new(),
            banned_ids: HashSet::new(),
            strikes: HashMap::new(),
            departed: VecDeque::new(),
            have_log: Vec::new(),
            next_key: 1,
            run: life.child_token(),
            announcing: false,
            tracker_tasks: HashMap::new(),
            completion_pending: false,
            resume_dirty: false,
            choke_soon: false,
            moving: None,
            clock: Default::default(),
            superseed: crate::superseed::SuperSeed::new(
                geo.piece_count as usize,
                super_seed.or(ctx.cfg.super_seed),
            ),
        };
        let window = Duration::from_secs(3);
        let writer_lane = ctx.writers.assign();
        let upload_marks = crate::disk_check::UploadMarks::new(
            geo.piece_count as usize,
            ctx.cfg.upload_verify_ttl,
        );
        let hot = crate::hot::HotPieces::new(ctx.hot_budget.clone(), geo.piece_length);
        let group = opts
            .group
            .as_deref()
            .map(|n| (n.to_string(), ctx.groups.get_or_make(n)));
        let limits = crate::limits::Limits::new(&opts.limits, group);
        TorrentHandle(Arc::new(Torrent {
            hot,
            geo,
            storage,
            core: Mutex::new(core),
            ctx,
            wake: Notify::new(),
            have_tx: watch::channel(0).0,
            life,
            downloaded: AtomicU64::new(0),
            uploaded: AtomicU64::new(0),
            rates: Mutex::new((Rate::new(window), Rate::new(window))),
            limits,
            tracker_tiers: RwLock::new(crate::announcer::regroup(&meta.tracker_tiers(), &trackers)),
            trackers: RwLock::new(trackers),
            tracker_status: Mutex::new(HashMap::new()),
            announce_asked: Default::default(),
            announced: AtomicU64::new(0),
            leaving: Default::default(),
            writer_lane,
            hashq: Default::default(),
            upload_marks,
            pieces_withdrawn: AtomicU64::new(0),
            pieces_checked: AtomicU64::new(0),
            web_seeds: crate::web_seed::WebSeedView::for_urls(&meta.web_seeds),
            repairing: Default::default(),
            disk_jobs: AtomicUsize::new(0),
            disk_idle: Notify::new(),
            derived_layers: Default::default(),
            done: watch::channel(None).0,
            meta,
        }))
    }

    pub fn info_hash(&self) -> InfoHash {
        self.0.info_hash()
    }

    pub fn name(&self) -> &str {
        &self.0.meta.info.name
    }

    pub fn meta(&self) -> &Metainfo {
        &self.0.meta
    }

    pub fn stats(&self) -> TorrentStats {
        self.0.stats()
    }

    /// Which pieces are verified on disk, one flag per piece.
    pub fn have(&self) -> btorrent_proto::wire::Bitfield {
        self.0.core.lock().picker.have().clone()
    }

    /// The trackers this torrent announces to.
    pub fn trackers(&self) -> Vec<String> {
        self.0.trackers.read().clone()
    }

    /// Bytes of the pieces it wants and lacks that a connected peer has.
    pub fn desired_available(&self) -> u64 {
        self.0.core.lock().picker.desired_available()
    }

    /// Per piece, -1 when it has it, else how many connected peers do.
    pub fn availability(&self) -> Vec<i32> {
        self.0.core.lock().picker.availability_list()
    }

    /// The same trackers in their tiers (BEP 12): as the .torrent groups them, or as
    /// [`TorrentHandle::set_tracker_tiers`] last set them; a tracker added on its own is a tier
    /// of its own.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        self.0.tracker_tiers.read().clone()
    }

    /// Asks every tracker for peers now, or as soon as its `min interval` allows (a paused torrent
    /// announces when it resumes, as always).
    pub fn reannounce(&self) {
        self.0.announce_asked.fetch_add(1, Ordering::Relaxed);
    }

    /// Each tracker it announces to (its own, in [`TorrentHandle::trackers`]' order, then the
    /// session's default trackers a public torrent has besides) with what it last answered.
    pub fn tracker_status(&self) -> Vec<(String, crate::TrackerStatus)> {
        let list = self.0.announce_list();
        let st = self.0.tracker_status.lock();
        list.into_iter()
            .map(|u| {
                let status = st.get(&u).cloned().unwrap_or_default();
                (u, status)
            })
            .collect()
    }

    /// The torrent's HTTP(S) web seeds (BEP 19), in its `url-list` order: each one's rate, bytes,
    /// and whether it sends now, failed or was dropped.
    pub fn web_seeds(&self) -> Vec<crate::WebSeedStatus> {
        self.0.web_seeds.iter().map(|v| v.status()).collect()
    }

    /// The peers connected now.
    pub fn peers(&self) -> Vec<crate::PeerInfo> {
        let c = self.0.core.lock();
        let mut v: Vec<crate::PeerInfo> = c
            .peers
            .values()
            .map(|p| crate::PeerInfo {
                addr: p.addr,
                client: p.client.lock().clone(),
                outgoing: p.outgoing,
                encrypted: p.encrypted,
                utp: p.utp,
                source: p.source,
                downloaded: p.downloaded.load(Ordering::Relaxed),
                uploaded: p.uploaded.load(Ordering::Relaxed),
                down_rate: p.down_rate(),
                up_rate: p.up_rate(),
                seed: p.is_seed(),
                upload_only: p.upload_only.load(Ordering::Relaxed),
                pieces: p.pieces(),
                progress: p.pieces() as f64 / self.0.geo.piece_count.max(1) as f64,
                am_choking: p.am_choking(),
                peer_choking: p.peer_choking.load(Ordering::Relaxed),
                am_interested: p.am_interested.load(Ordering::Relaxed),
                peer_interested: p.peer_interested(),
                optimistic: p.optimistic.load(Ordering::Relaxed),
                requests: p.requests.load(Ordering::Relaxed),
                peer_id: p.peer_id.0,
            })
            .collect();
        v.sort_by_key(|p| p.addr);
        v
    }

    /// Closes every connection and stops dialing and announcing; the data stays checked (a check
    /// under way goes on). A no-op when paused already or failed. During a move of the data the
    /// torrent is paused already; it then stays paused once the move ends.
    ///
    /// A pause that changes something (running, or to resume once a move ends) says so:
    /// [`Event::Paused`]; a move's own short pause says nothing.
    pub fn pause(&self) {
        {
            let mut c = self.0.core.lock();
            if let Some(after) = c.moving.as_mut() {
                let was = std::mem::replace(after, AfterMove::StayPaused);
                drop(c);
                if was == AfterMove::Resume {
                    self.0.emit(self.paused_event());
                }
                return;
            }
        }
        let paused = self.stop_transfers();
        if paused {
            self.0.emit(self.paused_event());
        }
        // The clock stops here: its sums are kept now rather than at the next save. (Not in
        // `stop_transfers`, which a move calls too: the move saves once the files are in place.)
        // The trackers hear `stopped`, as a removal tells them (a move's pause is too short to).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let t = self.0.clone();
            // Taken now, before a resume can start the next run's announces; one already held
            // is a `stopped` still on its way, which says it all.
            let leaving = paused
                .then(|| t.leaving.clone().try_lock_owned().ok())
                .flatten();
            rt.spawn(async move {
                crate::resume::save(&t).await;
                if let Some(_leaving) = leaving {
                    crate::announcer::announce_stopped(&t, t.ctx.cfg.announce_spacing).await;
                    t.announced.store(0, Ordering::Relaxed);
                }
            });
        }
    }

    /// The pause itself: the lifecycle to paused, every connection of the current run closed.
    /// False when it was paused already.
    pub(crate) fn stop_transfers(&self) -> bool {
        let run = {
            let mut c = self.0.core.lock();
            if !c.lifecycle.pause() {
                return false;
            }
            c.announcing = false;
            std::mem::replace(&mut c.run, self.0.life.child_token())
        };
        run.cancel();
        self.0.wake.notify_one();
        true
    }

    /// Undoes [`pause`](Self::pause): back to the phase it was in (checking, if the check has not
    /// ended). A torrent the disk failed ([`EngineError::is_recoverable`]: full, read-only, a
    /// folder in the way, its data gone) is taken up again: it goes on downloading what it lacks,
    /// or seeding (data that was gone and is back is checked first; data still gone is downloaded
    /// again), and fails again if the disk still refuses. A no-op when running, or failed
    /// otherwise. During a move of the data, the torrent resumes once the move ends. A resume that
    /// changes something says so: [`Event::Resumed`].
    pub fn resume(&self) {
        let resumed = {
            let mut c = self.0.core.lock();
            match c.moving.as_mut() {
                Some(after) => std::mem::replace(after, AfterMove::Resume) == AfterMove::StayPaused,
                None => {
                    drop(c);
                    self.restart_transfers() || self.recover()
                }
            }
        };
        if resumed {
            self.0.emit(Event::Resumed {
                info_hash: self.info_hash(),
                name: self.name().to_string(),
            });
        }
    }

    fn paused_event(&self) -> Event {
        Event::Paused {
            info_hash: self.info_hash(),
            name: self.name().to_string(),
        }
    }

    /// Takes up a torrent the disk failed (see [`resume`](Self::resume)), with a fresh `run` (the
    /// failure cancelled the last one), the known peers due and `done` cleared for those who wait:
    ///
    /// - its data gone ([`EngineError::DataMissing`]) and back now (the disk mounted again): its
    ///   data is checked again (`Checking`, resume data trusted where the files are as it says),
    ///   then it goes on as after any check;
    /// - its data still gone: none of its pieces is had any more, and it downloads them all
    ///   again, as asked;
    /// - otherwise (a write refused) it goes on in the phase its pieces say, its completion
    ///   finished again when it has every wanted piece (the failure may have cut it short).
    ///
    /// False when it is not failed, or not by the disk.
    pub(crate) fn recover(&self) -> bool {
        let missing = matches!(
            self.0.core.lock().lifecycle.failure(),
            Some(EngineError::DataMissing { .. })
        );
        // Outside the lock: it looks at the disk.
        let still_gone = missing && self.0.storage.none_present();
        let mut c = self.0.core.lock();
        if !c
            .lifecycle
            .failure()
            .is_some_and(EngineError::is_recoverable)
        {
            return false;
        }
        let mut forgotten = Vec::new();
        if still_gone {
            let had: Vec<u32> = c.picker.have().ones().map(|i| i as u32).collect();
            forgotten.extend(had.into_iter().filter(|&i| c.picker.withdraw(i)));
            c.resume_dirty = true;
        }
        let complete = c.picker.is_done();
        let check = missing && !still_gone;
        let phase = match (check, complete) {
            (true, _) => Phase::Checking,
            (false, true) => Phase::Seeding,
            (false, false) => Phase::Downloading,
        };
        c.lifecycle.recover(phase);
        c.run = self.0.life.child_token();
        c.announcing = false;
        c.completion_pending = !check && complete;
        c.known.all_due();
        // In the same hold of the lock as the lifecycle (see `Torrent::fail`).
        self.0.done.send_replace(None);
        drop(c);
        for &i in &forgotten {
            self.0.upload_marks.clear(i);
            self.0.hot.forget(i);
        }
        tracing::info!(torrent = %self.name(), "taken up again after a disk error");
        if check {
            tokio::spawn(crate::torrent_task::check_again(self.0.clone()));
        } else {
            crate::announcer::start_if_due(&self.0);
        }
        self.0.wake.notify_one();
        true
    }

    /// The resume itself, undoing [`stop_transfers`](Self::stop_transfers): the lifecycle back to
    /// running, the known peers due at once, the announces started. False when it was not paused
    /// (or failed).
    pub(crate) fn restart_transfers(&self) -> bool {
        self.restart_transfers_if(|_| true)
    }

    /// [`restart_transfers`](Self::restart_transfers) when `first` (run on the core under the
    /// same hold of the lock as the resume) says so: the end of a move takes `Core::moving` and
    /// resumes in one hold, so nobody sees the torrent neither moving nor running.
    pub(crate) fn restart_transfers_if(&self, first: impl FnOnce(&mut Core) -> bool) -> bool {
        let mut c = self.0.core.lock();
        if !first(&mut c) || !c.lifecycle.resume() {
            return false;
        }
        c.known.all_due();
        drop(c);
        crate::announcer::start_if_due(&self.0);
        self.0.wake.notify_one();
        true
    }

    /// Addresses the torrent keeps to dial: those tracked in full and those waiting for a place
    /// (bounded by `known::MAX_KNOWN` and `known::MAX_WAITING`).
    pub fn known_peers(&self) -> (usize, usize) {
        let c = self.0.core.lock();
        (c.known.len(), c.known.waiting())
    }

    /// Dials these peers (besides the trackers' ones).
    pub fn add_peers(&self, peers: Vec<SocketAddr>) {
        self.0.add_known(peers, Source::User);
    }

    /// Waits until the check made when the torrent was added has ended; fails if the torrent has
    /// failed or is removed.
    pub(crate) async fn wait_checked(&self) -> Result<()> {
        loop {
            match self.0.core.lock().lifecycle.clone() {
                Lifecycle::Error(e) => return Err(self.failed(e)),
                l if l.phase() == Some(Phase::Checking) => {}
                _ => break,
            }
            if self.is_removed() {
                return Err(self.removed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Hashes every piece on disk (a disk job: a move waits for it) and acts on the result.
    pub(crate) async fn recheck(&self) -> Result<crate::CheckReport> {
        let t = self.0.clone();
        t.disk_job_started();
        let r = tokio::task::spawn_blocking(move || crate::disk_check::recheck(&t)).await;
        self.0.disk_job_finished();
        r.map_err(EngineError::task)
    }

    /// Hashes every piece on disk again, ignoring resume data (files edited behind our back with their
    /// mtime put back, bit rot): pieces we had that fail are withdrawn and downloaded again, good ones
    /// we lacked are taken, files longer than the torrent says are reported. The torrent goes on
    /// transferring meanwhile. Waits for the check made when the torrent was added to end first. A
    /// torrent the disk failed (its data gone, say) is taken up again afterwards, as a
    /// [`resume`](Self::resume) would; fails if it failed otherwise, or is removed.
    pub async fn check(&self) -> Result<crate::CheckReport> {
        let failed = self.wait_checked_or_disk_failed().await?;
        if failed {
            // Its files under the names they have now (its data back, say), not those a download
            // would give them.
            let t = self.0.clone();
            tokio::task::spawn_blocking(move || t.storage.locate())
                .await
                .map_err(EngineError::task)?;
        }
        let report = self.recheck().await?;
        crate::resume::save(&self.0).await;
        if failed {
            self.recover_and_say();
        }
        Ok(report)
    }

    /// [`wait_checked`](Self::wait_checked), letting through a torrent the disk failed
    /// ([`EngineError::is_recoverable`]): Ok(true) for one.
    pub(crate) async fn wait_checked_or_disk_failed(&self) -> Result<bool> {
        match self.wait_checked().await {
            Ok(()) => Ok(false),
            Err(EngineError::TorrentFailed { cause, .. }) if cause.is_recoverable() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// [`recover`](Self::recover), said with [`Event::Resumed`] when it took the torrent up.
    pub(crate) fn recover_and_say(&self) {
        if self.recover() {
            self.0.emit(Event::Resumed {
                info_hash: self.info_hash(),
                name: self.name().to_string(),
            });
        }
    }

    /// Whether the torrent was removed from its session (or the session shut down): the handle's
    /// figures stay as they were last.
    pub fn is_removed(&self) -> bool {
        self.0.life.is_cancelled()
    }

    /// Waits until every piece is verified on disk, or the torrent fails or is removed.
    pub async fn wait_complete(&self) -> Result<()> {
        let mut rx = self.0.done.subscribe();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r.map_err(|e| self.failed(e));
            }
            if self.0.life.is_cancelled() {
                return Err(self.removed());
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Err(self.removed()) },
                _ = self.0.life.cancelled() => {},
            }
        }
    }

    /// The error a call on a failed torrent gets: its name and the first failure.
    fn failed(&self, cause: EngineError) -> EngineError {
        EngineError::TorrentFailed {
            name: self.name().to_string(),
            cause: Box::new(cause),
        }
    }

    fn removed(&self) -> EngineError {
        EngineError::Removed {
            name: self.name().to_string(),
        }
    }

    /// Stops everything and waits (within `grace`) for the disk and a `stopped` announce, which
    /// waits for its turn (`spacing` after the previous one of the session). Its resume data is
    /// saved, as of a torrent `removed` from its session or not ([`crate::resume::save_removed`]).
    pub(crate) async fn stop(&self, grace: Duration, spacing: Duration, removed: bool) {
        let deadline = tokio::time::Instant::now() + grace;
        self.0.life.cancel();
        let _ = tokio::time::timeout_at(deadline, self.0.wait_disk_idle()).await;
        if removed {
            crate::resume::save_removed(&self.0).await;
        } else {
            crate::resume::save(&self.0).await;
        }
        let _ = tokio::time::timeout_at(
            deadline,
            crate::announcer::announce_stopped(&self.0, spacing),
        )
        .await;
        self.0.storage.close_all();
    }
}
