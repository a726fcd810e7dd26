//! What a running session changes, each at once for every torrent: the IP filter, the connection
//! limits, peer exchange, partial file names, the DHT, local discovery and port forwarding
//! switches, speed limits, encryption, uTP and the default trackers.

use super::*;

impl Session {
    /// Puts `filter` in force for every torrent (an empty one blocks nothing): from now on no
    /// connection is made to or taken from an address it blocks, and the connected peers it blocks
    /// are let go. Returns how many were.
    pub fn set_ip_filter(&self, filter: crate::ip_filter::IpFilter) -> usize {
        let filter = Arc::new(filter);
        *self.0.ctx.ip_filter.write() = filter.clone();
        let mut closed = 0;
        for t in self.torrents() {
            let c = t.0.core.lock();
            for p in c.peers.values().filter(|p| filter.blocks(p.addr.ip())) {
                p.close("blocked by the IP filter");
                closed += 1;
            }
        }
        closed
    }

    /// The IP filter in force.
    pub fn ip_filter(&self) -> Arc<crate::ip_filter::IpFilter> {
        self.0.ctx.ip_filter.read().clone()
    }

    /// Most peer sockets the session keeps at once ([`SessionConfig::max_connections`], or the
    /// budget the open-file limit gave).
    pub fn max_connections(&self) -> usize {
        self.0.ctx.connections.max()
    }

    /// Changes the socket budget while the session runs (at least one): a lower one cuts no
    /// connection, but none is made or taken until the session is under it.
    pub fn set_max_connections(&self, n: usize) {
        self.0.ctx.connections.resize(n);
    }

    /// Peer sockets open now: dials under way, incoming connections being handshaken, peers.
    pub fn connections(&self) -> usize {
        self.0.ctx.connections.in_use()
    }

    /// Most peers per torrent in force.
    pub fn max_peers_per_torrent(&self) -> usize {
        self.0.ctx.max_peers_per_torrent()
    }

    /// Changes the most peers per torrent (at least one) while the session runs: a torrent over it
    /// keeps its peers, and dials or takes none until it is under it.
    pub fn set_max_peers_per_torrent(&self, n: usize) {
        self.0
            .ctx
            .max_peers_per_torrent
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether peer exchange (BEP 11) is in force.
    pub fn pex(&self) -> bool {
        self.0.ctx.pex()
    }

    /// Switches peer exchange while the session runs: off, no peer list is sent or taken on any
    /// connection (and new ones do not offer it); on, connections made from now on offer it.
    pub fn set_pex(&self, on: bool) {
        self.0
            .ctx
            .pex
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether files not complete yet are named `<name>.part` ([`crate::partial_files`]).
    pub fn rename_partial_files(&self) -> bool {
        self.0.ctx.rename_partial_files()
    }

    /// Switches partial naming while the session runs: files created from now on follow it, and
    /// switched off, the files under their partial names take their own at once (on the blocking
    /// pool; this returns when it is done; a torrent still checking its data, when its check ends).
    /// Switched on, no file on disk is renamed.
    pub async fn set_rename_partial_files(&self, on: bool) {
        self.0
            .ctx
            .rename_partial_files
            .store(on, std::sync::atomic::Ordering::Relaxed);
        let torrents = self.torrents();
        let job = tokio::task::spawn_blocking(move || {
            for t in torrents {
                t.0.storage.set_partial_naming(on);
                let checking =
                    t.0.core.lock().lifecycle.phase() == Some(crate::lifecycle::Phase::Checking);
                if !checking {
                    crate::partial_files::name_all(&t.0);
                }
            }
        });
        if let Err(e) = job.await {
            tracing::warn!("renaming files for their state failed: {e}");
        }
    }

    /// Files the session's torrents hold open now (at most [`SessionConfig::max_open_files`]).
    pub fn open_files(&self) -> usize {
        self.0.ctx.files.len()
    }

    /// Whether the session's DHT node runs.
    pub fn dht_on(&self) -> bool {
        self.0.ctx.running_dht().is_some()
    }

    /// Switches the DHT node off (its routing table saved; the torrents' announces and lookups
    /// wait) or on again (they announce and look up at once). `Ok(false)`: the session started
    /// without a node, so there is none to switch (switching off is then already done).
    pub async fn set_dht(&self, on: bool) -> Result<bool> {
        let Some(d) = &self.0.ctx.dht else {
            return Ok(!on);
        };
        if on {
            d.switch_on().await?;
        } else if d.is_on() {
            d.switch_off().await;
            tracing::info!("DHT node switched off");
        }
        Ok(true)
    }

    /// Whether local service discovery runs (a node, switched on).
    pub fn lsd_on(&self) -> bool {
        self.0.ctx.lsd.as_ref().is_some_and(|l| l.is_on())
    }

    /// Whether the session has a local service discovery node to switch (it started with `lsd`
    /// on a listen address that is not loopback).
    pub fn has_lsd(&self) -> bool {
        self.0.ctx.lsd.is_some()
    }

    /// Switches local service discovery off or on again ([`crate::lsd::LsdNode::switch`]). False
    /// when asked to switch it on in a session that started without a node (`lsd` off, or a
    /// loopback listen address), which has none to switch.
    pub fn set_lsd(&self, on: bool) -> bool {
        match &self.0.ctx.lsd {
            Some(l) => {
                l.switch(on);
                true
            }
            None => !on,
        }
    }

    /// Port forwarding as it stands (off for a session that listens on loopback), with where the
    /// session listens and the addresses peers report seeing it at.
    pub fn port_forwarding(&self) -> crate::PortForwarding {
        let mut status = self
            .0
            .ctx
            .portmap
            .as_ref()
            .map_or_else(crate::PortForwarding::off, |m| m.status());
        status.listen = Some(self.listen_addr());
        status.seen_as = self.0.ctx.seen_as.tally();
        status
    }

    /// Whether port forwarding is switched on.
    pub fn port_forwarding_on(&self) -> bool {
        self.0.ctx.portmap.as_ref().is_some_and(|m| m.is_on())
    }

    /// Switches port forwarding on (the ports are mapped at once) or off (the mappings are
    /// deleted). False when asked to switch it on in a session that listens on loopback.
    pub fn set_port_forwarding(&self, on: bool) -> bool {
        match &self.0.ctx.portmap {
            Some(m) => {
                m.switch(on);
                true
            }
            None => !on,
        }
    }

    /// The session's (upload, download) limits in bytes per second; `None` = unlimited.
    pub fn limits(&self) -> (Option<u64>, Option<u64>) {
        let get = |l: &Option<crate::bandwidth::SharedLimiter>| l.as_ref().and_then(|l| l.rate());
        (
            get(&self.0.ctx.upload_limit),
            get(&self.0.ctx.download_limit),
        )
    }

    /// Changes the session's limits (`None` = unlimited) while it runs.
    pub fn set_limits(&self, upload: Option<u64>, download: Option<u64>) {
        if let Some(l) = &self.0.ctx.upload_limit {
            l.set_rate(upload);
        }
        if let Some(l) = &self.0.ctx.download_limit {
            l.set_rate(download);
        }
    }

    /// The encryption policy of new connections ([`crate::peer_stream`]).
    pub fn encryption(&self) -> crate::Encryption {
        self.0.ctx.encryption()
    }

    /// Changes the encryption policy while the session runs: connections made or taken from now
    /// on follow it; those open stay as they are.
    pub fn set_encryption(&self, e: crate::Encryption) {
        *self.0.ctx.encryption.lock() = e;
    }

    /// The uTP policy of new connections ([`crate::transport`]).
    pub fn utp(&self) -> crate::Utp {
        self.0.ctx.utp()
    }

    /// Changes the uTP policy while the session runs (connections open stay as they are).
    pub fn set_utp(&self, u: crate::Utp) {
        *self.0.ctx.utp.lock() = u;
    }

    /// The UDP port uTP connections are taken on, if it could be bound (the listen port's number).
    pub fn utp_port(&self) -> Option<u16> {
        self.0
            .ctx
            .listening
            .utp()
            .map(|_| self.0.ctx.listen_addr().port())
    }

    /// The trackers every public torrent announces to besides its own, in tiers: running
    /// torrents follow at once (a new one is announced to, `started`; one taken off is no longer).
    /// Refused, changing nothing, when one is not shaped like a tracker URL.
    pub fn set_default_trackers(&self, tiers: Vec<Vec<String>>) -> Result<()> {
        let mut kept: Vec<Vec<String>> = Vec::with_capacity(tiers.len());
        let mut seen: Vec<String> = Vec::new();
        for tier in tiers {
            let mut urls = Vec::with_capacity(tier.len());
            for u in tier {
                let u = u.trim().to_string();
                btorrent_proto::metainfo::check_tracker_url(&u).map_err(|e| {
                    EngineError::BadTracker {
                        name: "the default trackers".into(),
                        why: e.to_string(),
                    }
                })?;
                if !seen.contains(&u) {
                    seen.push(u.clone());
                    urls.push(u);
                }
            }
            if !urls.is_empty() {
                kept.push(urls);
            }
        }
        *self.0.ctx.default_trackers.write() = kept;
        let torrents: Vec<TorrentHandle> = self.0.torrents.lock().values().cloned().collect();
        for h in torrents {
            h.follow_default_trackers();
        }
        Ok(())
    }

    /// The trackers every public torrent announces to besides its own, in tiers.
    pub fn default_trackers(&self) -> Vec<Vec<String>> {
        self.0.ctx.default_trackers.read().clone()
    }
}
