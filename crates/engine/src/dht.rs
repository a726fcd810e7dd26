//! The session's Mainline DHT node (BEP 5), through the `mainline` crate: starting it (bootstrap
//! routers plus the nodes saved by the last run), saving its routing table beside the resume data,
//! peer lookups for an info-hash (a torrent's or a bare one, for a magnet fetch), and the
//! per-torrent task that announces the torrents we download or seed and feeds lookup results to
//! their dial lists (one per swarm: a hybrid torrent is announced and looked up under both its
//! info-hashes).
//!
//! The crate runs the node on a thread of its own; we only use its async API, so nothing here blocks
//! a tokio worker (building the node resolves the bootstrap host names: that runs on the blocking
//! pool). Private torrents (BEP 27) never reach this module: `spawn_for` refuses them, and the
//! handshake does not offer the DHT on their connections.
//!
//! The BEP 5 `port` message: a peer that sends it tells us where its DHT node listens. The crate has
//! no call to add a node of unknown id to its routing table, so such nodes are kept (bounded) and
//! saved with the routing table: the next start uses them as bootstrap nodes.
//!
//! The crate answers queries only in server mode (it switches itself once it finds it is reachable),
//! and parses only 4-byte KRPC transaction ids: queries from libtorrent and others that send 2 bytes
//! are dropped. Our own queries (lookups, announces) work with every node, since answers echo our ids.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, Id};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::known::Source;
use super::torrent::Torrent;
use super::EngineError;
use btorrent_proto::types::InfoHash;

/// The well-known public routers.
pub const DEFAULT_BOOTSTRAP: [&str; 4] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];
/// The routing table as saved in the resume folder: one `ip:port` a line.
pub const NODES_FILE: &str = "dht.nodes";
/// Most saved nodes read back at start (and written).
const MAX_SAVED: usize = 256;
/// Nodes learnt from `port` messages kept for the next start.
const MAX_HEARD: usize = 64;
/// A lookup gives up after this long even if the crate's query still runs.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(90);
/// Most addresses one lookup hands over.
const MAX_LOOKUP_PEERS: usize = 500;

/// The pause after a seek's first lookup before the next ([`crate::Session::dht_seek`]); doubled
/// after each.
pub const SEEK_FIRST_PAUSE: Duration = Duration::from_secs(5);

/// The longest pause between two lookups of a seek ([`crate::Session::dht_seek`]).
pub const SEEK_MAX_PAUSE: Duration = Duration::from_secs(120);
/// How often the routing table is saved while the session runs.
const SAVE_EVERY: Duration = Duration::from_secs(10 * 60);
/// Most connected peers for which a download still counts as short of peers.
const SHORT_OF_PEERS: usize = 5;

/// DHT settings of a session ([`super::SessionConfig::dht`]; `None` there = no DHT).
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// UDP port of the node; `None` = the number after the peer listen port's (whose UDP port is
    /// uTP's, see [`crate::transport`]), an ephemeral one if that is taken.
    pub port: Option<u16>,
    /// `host:port` of the nodes to join the DHT through (the saved routing table comes on top).
    pub bootstrap: Vec<String>,
    /// Time between two announces of a torrent (each spread by up to a quarter).
    pub announce_interval: Duration,
    /// First wait between lookups while a download is short of peers (or a failed announce waits
    /// before trying again); it doubles each time up to `announce_interval`.
    pub retry: Duration,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            port: None,
            bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
            announce_interval: Duration::from_secs(20 * 60),
            retry: Duration::from_secs(10),
        }
    }
}

/// What `b-dht` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DhtStats {
    /// Good nodes in the routing table.
    pub nodes: usize,
    /// Peer lookups running now.
    pub lookups: usize,
    /// Peer lookups started since the session started.
    pub lookups_started: u64,
    /// The UDP port the node listens on.
    pub port: u16,
}

/// The session's node. `node` is `None` once stopped or switched off; `port` and `generation`
/// change only when it is switched on again.
pub(crate) struct DhtNode {
    node: Mutex<Option<AsyncDht>>,
    port: AtomicU16,
    /// The address it binds to.
    bind: Ipv4Addr,
    pub cfg: DhtConfig,
    lookups: Arc<AtomicUsize>,
    lookups_started: AtomicU64,
    heard: Mutex<Vec<SocketAddrV4>>,
    nodes_file: Option<PathBuf>,
    generation: tokio::sync::watch::Sender<u64>,
}

/// The nodes to join through: the configured routers, then the routing table saved in `file`.
fn bootstrap_of(cfg: &DhtConfig, file: Option<&Path>) -> Vec<String> {
    let mut bootstrap = cfg.bootstrap.clone();
    if let Some(f) = file {
        bootstrap.extend(read_nodes(f).iter().map(|a| a.to_string()));
    }
    bootstrap
}

/// Builds a node on `bind:port` (0: ephemeral), joining through `bootstrap` (resolving its host
/// names, on the blocking pool).
async fn build(bind: Ipv4Addr, port: u16, bootstrap: Vec<String>) -> crate::Result<Dht> {
    let built = tokio::task::spawn_blocking(move || {
        let mut b = Dht::builder();
        b.bind_address(bind).port(port);
        if bootstrap.is_empty() {
            b.no_bootstrap();
        } else {
            b.bootstrap(&bootstrap);
        }
        b.build()
    })
    .await
    .map_err(EngineError::task)?;
    built.map_err(|e| EngineError::DhtStart {
        addr: format!("{bind}:{port}"),
        message: e.to_string(),
    })
}

impl DhtNode {
    /// Starts the node on `listen`'s IP (when it is a specific IPv4 one) and the port after its
    /// port (or `cfg.port`).
    pub async fn start(
        cfg: DhtConfig,
        listen: SocketAddr,
        resume_dir: Option<&Path>,
    ) -> crate::Result<Arc<DhtNode>> {
        let nodes_file = resume_dir.map(|d| d.join(NODES_FILE));
        let bind = match listen.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_unspecified() => ip,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        let want = cfg.port.unwrap_or(match listen.port() {
            0 | u16::MAX => 0,
            p => p + 1,
        });
        let bootstrap = bootstrap_of(&cfg, nodes_file.as_deref());
        let dht = match build(bind, want, bootstrap.clone()).await {
            Ok(d) => d,
            Err(e) if cfg.port.is_none() && want != 0 => {
                tracing::info!("DHT: udp port {want} is taken ({e}); using an ephemeral one");
                build(bind, 0, bootstrap).await?
            }
            Err(e) => return Err(e),
        };
        let node = dht.as_async();
        let port = node.info().await.local_addr().port();
        tracing::info!(port, "DHT node started");
        Ok(Arc::new(DhtNode {
            node: Mutex::new(Some(node)),
            port: AtomicU16::new(port),
            bind,
            cfg,
            lookups: Arc::new(AtomicUsize::new(0)),
            lookups_started: AtomicU64::new(0),
            heard: Mutex::new(Vec::new()),
            nodes_file,
            generation: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// The UDP port the node listens on (its last one while switched off).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// Whether the node runs (it is switched off by [`DhtNode::switch_off`] and at shutdown).
    pub fn is_on(&self) -> bool {
        self.node.lock().is_some()
    }

    /// Changes each time the node is switched on again (or [`DhtNode::announce_again`] asks): the
    /// torrents' DHT tasks announce and look up at once then, rather than when their backed-off
    /// timers say.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Makes the torrents' DHT tasks announce and look up at once (the peer port changed).
    pub fn announce_again(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Saves the routing table and stops the node (see [`DhtNode::stop`]): lookups and announces
    /// fail until [`DhtNode::switch_on`].
    pub async fn switch_off(&self) {
        self.stop().await;
    }

    /// Starts the node again, on its port if that is free by now (a lookup of the old node may
    /// hold it for a while), else an ephemeral one, bootstrapped from the saved routing table.
    pub async fn switch_on(&self) -> crate::Result<()> {
        if self.is_on() {
            return Ok(());
        }
        let bootstrap = bootstrap_of(&self.cfg, self.nodes_file.as_deref());
        let dht = match build(self.bind, self.port(), bootstrap.clone()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::info!("DHT: {e}; using an ephemeral port");
                build(self.bind, 0, bootstrap).await?
            }
        };
        let node = dht.as_async();
        let port = node.info().await.local_addr().port();
        let mut slot = self.node.lock();
        if slot.is_some() {
            // Switched on twice at once: the first one stays.
            return Ok(());
        }
        *slot = Some(node);
        drop(slot);
        self.port.store(port, Ordering::Relaxed);
        self.generation.send_modify(|g| *g += 1);
        tracing::info!(port, "DHT node switched on");
        Ok(())
    }

    pub(crate) fn node(&self) -> Option<AsyncDht> {
        self.node.lock().clone()
    }

    /// Peers for `ih`, as the lookup finds them (each once); the channel closes when it ends. A lookup
    /// on a stopped node ends at once.
    pub fn lookup(&self, ih: InfoHash) -> mpsc::Receiver<SocketAddr> {
        let (tx, rx) = mpsc::channel(64);
        let Some(node) = self.node() else {
            return rx;
        };
        let count = self.lookups.clone();
        count.fetch_add(1, Ordering::Relaxed);
        self.lookups_started.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut found = node.get_peers(Id::from(ih.0));
            let mut seen = HashSet::new();
            let deadline = tokio::time::sleep(LOOKUP_TIMEOUT);
            tokio::pin!(deadline);
            'lookup: loop {
                let batch = tokio::select! {
                    _ = &mut deadline => break,
                    _ = tx.closed() => break,
                    b = found.next() => match b {
                        Some(b) => b,
                        None => break,
                    },
                };
                for a in batch {
                    if seen.len() >= MAX_LOOKUP_PEERS {
                        break 'lookup;
                    }
                    if a.port() != 0 && seen.insert(a) && tx.send(a.into()).await.is_err() {
                        break 'lookup;
                    }
                }
            }
            count.fetch_sub(1, Ordering::Relaxed);
        });
        rx
    }

    /// Peers for `ih`, looked up again and again until the receiver is dropped: at once, then
    /// [`SEEK_FIRST_PAUSE`] after each lookup ends, the pause doubling up to [`SEEK_MAX_PAUSE`].
    /// For a magnet link's metadata: a peer that has it may announce only after the first look
    /// (it was just started, or its announce had not spread yet). An address comes again with each
    /// lookup that finds it.
    pub fn seek(self: &Arc<Self>, ih: InfoHash) -> mpsc::Receiver<SocketAddr> {
        let (tx, rx) = mpsc::channel(64);
        let this = self.clone();
        tokio::spawn(async move {
            let mut pause = SEEK_FIRST_PAUSE;
            loop {
                let mut round = this.lookup(ih);
                loop {
                    let a = tokio::select! {
                        _ = tx.closed() => return,
                        a = round.recv() => a,
                    };
                    match a {
                        Some(a) if tx.send(a).await.is_err() => return,
                        Some(_) => {}
                        None => break,
                    }
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(SEEK_MAX_PAUSE);
            }
        });
        rx
    }

    /// Announces that we serve `ih` on TCP `port`.
    pub async fn announce(&self, ih: InfoHash, port: u16) -> crate::Result<()> {
        let Some(node) = self.node() else {
            return Err(EngineError::DhtStopped);
        };
        node.announce_peer(Id::from(ih.0), Some(port))
            .await
            .map(|_| ())
            .map_err(|e| EngineError::DhtAnnounce(e.to_string()))
    }

    pub async fn stats(&self) -> DhtStats {
        let nodes = match self.node() {
            Some(n) => n.to_bootstrap().await.len(),
            None => 0,
        };
        DhtStats {
            nodes,
            lookups: self.lookups.load(Ordering::Relaxed),
            lookups_started: self.lookups_started.load(Ordering::Relaxed),
            port: self.port(),
        }
    }

    /// A peer's `port` message: its DHT node, kept for the next start (see the module docs).
    pub fn heard(&self, a: SocketAddr) {
        let SocketAddr::V4(a) = a else { return };
        if a.port() == 0 {
            return;
        }
        let mut h = self.heard.lock();
        if !h.contains(&a) {
            if h.len() >= MAX_HEARD {
                h.remove(0);
            }
            h.push(a);
        }
    }

    /// Writes the routing table's good nodes (and the nodes heard of) to the nodes file.
    pub async fn save(&self) {
        let (Some(f), Some(node)) = (&self.nodes_file, self.node()) else {
            return;
        };
        let mut lines: Vec<String> = node.to_bootstrap().await;
        lines.extend(self.heard.lock().iter().map(|a| a.to_string()));
        let mut seen = HashSet::new();
        lines.retain(|l| seen.insert(l.clone()));
        lines.truncate(MAX_SAVED);
        if lines.is_empty() {
            return;
        }
        let (f, text) = (f.clone(), lines.join("\n") + "\n");
        let r = tokio::task::spawn_blocking(move || {
            if let Some(d) = f.parent() {
                std::fs::create_dir_all(d)?;
            }
            let tmp = f.with_extension("tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &f)
        })
        .await;
        if let Ok(Err(e)) = r {
            tracing::warn!("cannot save the DHT nodes: {e}");
        }
    }

    /// Saves the routing table every [`SAVE_EVERY`] until `stop`.
    pub async fn save_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(SAVE_EVERY) => self.save().await,
            }
        }
    }

    /// Saves the routing table and stops the node (its thread ends once the last query returns).
    pub async fn stop(&self) {
        self.save().await;
        self.node.lock().take();
    }
}

/// The saved nodes in `f` (missing or unreadable: none; bad lines are skipped).
pub(crate) fn read_nodes(f: &Path) -> Vec<SocketAddrV4> {
    std::fs::read_to_string(f)
        .map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .take(MAX_SAVED)
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the DHT task of a public torrent's run (none for a private one or without a DHT).
pub(crate) fn spawn_for(t: &Arc<Torrent>, run: CancellationToken) {
    if t.meta.info.private {
        return;
    }
    if let Some(dht) = t.ctx.dht.clone() {
        // A hybrid is announced and looked up in both its swarms.
        for ih in t.meta.swarm_ids() {
            tokio::spawn(torrent_task(t.clone(), ih, dht.clone(), run.clone()));
        }
    }
}

fn short_of_peers(t: &Torrent) -> (bool, bool) {
    let c = t.core.lock();
    let complete = c.picker.is_done();
    let short = if complete {
        c.peers.is_empty()
    } else {
        c.peers.len() < SHORT_OF_PEERS
    };
    (complete, short)
}

fn spread(d: Duration) -> Duration {
    d.mul_f64(1.0 + rand::random::<f64>() / 4.0)
}

/// Announces the torrent in swarm `ih` now and every `announce_interval`; looks up peers while it
/// downloads (at once, then after `retry`, doubling, while short of peers) or when a seed has no
/// peer.
async fn torrent_task(t: Arc<Torrent>, ih: InfoHash, dht: Arc<DhtNode>, run: CancellationToken) {
    let max = dht.cfg.announce_interval;
    let (mut announce_at, mut lookup_at) =
        (tokio::time::Instant::now(), tokio::time::Instant::now());
    let (mut announce_wait, mut lookup_wait) = (dht.cfg.retry, dht.cfg.retry);
    let mut found: Option<mpsc::Receiver<SocketAddr>> = None;
    let mut switched_on = dht.changes();
    loop {
        tokio::select! {
            _ = run.cancelled() => return,
            Ok(()) = switched_on.changed() => {
                // The node is back: announce and look up now, with fresh waits.
                let now = tokio::time::Instant::now();
                (announce_at, lookup_at) = (now, now);
                (announce_wait, lookup_wait) = (dht.cfg.retry, dht.cfg.retry);
            }
            _ = tokio::time::sleep_until(announce_at) => {
                match dht.announce(ih, t.ctx.public_port()).await {
                    Ok(()) => {
                        tracing::debug!(torrent = %t.meta.info.name, "announced on the DHT");
                        announce_wait = dht.cfg.retry;
                        announce_at = tokio::time::Instant::now() + spread(max);
                    }
                    Err(e) => {
                        tracing::debug!(torrent = %t.meta.info.name, "DHT announce failed: {e}");
                        announce_at = tokio::time::Instant::now() + spread(announce_wait);
                        announce_wait = (announce_wait * 2).min(max);
                    }
                }
            }
            _ = tokio::time::sleep_until(lookup_at), if found.is_none() => {
                let (complete, short) = short_of_peers(&t);
                if !complete || short {
                    found = Some(dht.lookup(ih));
                }
                let wait = if short { lookup_wait } else { max };
                lookup_wait = if short { (lookup_wait * 2).min(max) } else { dht.cfg.retry };
                lookup_at = tokio::time::Instant::now() + spread(wait);
            }
            a = recv(&mut found), if found.is_some() => match a {
                Some(a) => t.add_known_in(ih, [a], Source::Dht),
                None => found = None,
            },
        }
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<SocketAddr>>) -> Option<SocketAddr> {
    match rx {
        Some(rx) => rx.recv().await,
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_nodes_skip_bad_lines_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(NODES_FILE);
        assert!(read_nodes(&f).is_empty(), "a missing file is no node");
        let mut text = String::from("1.2.3.4:6881\nnot a node\n[::1]:6881\n  5.6.7.8:51413  \n\n");
        for i in 0..1000 {
            text.push_str(&format!("10.0.{}.{}:6881\n", i / 256, i % 256));
        }
        std::fs::write(&f, text).unwrap();
        let nodes = read_nodes(&f);
        assert_eq!(nodes.len(), MAX_SAVED);
        assert_eq!(nodes[0], "1.2.3.4:6881".parse().unwrap());
        assert_eq!(nodes[1], "5.6.7.8:51413".parse().unwrap());
    }
}
