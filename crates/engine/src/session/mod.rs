//! The session: the listener, the set of torrents, the event sink. This file holds the session's
//! start, its torrents (add, find, remove) and its shutdown; the rest is in parts:
//!
//! - `ctx`: `SessionCtx`, what every torrent of a session shares (settings in force, the
//!   listener, the DHT and local discovery nodes, limits, budgets of sockets, files and checks);
//! - `settings`: what a running session changes (IP filter, connection limits, peer exchange,
//!   partial names, the DHT, local discovery and port forwarding switches, speed limits,
//!   encryption, uTP, default trackers);
//! - `discovery`: finding what is not added yet (DHT lookups, mutable links, magnet links'
//!   metadata);
//! - `incoming`: incoming connections. The listener task (TCP) and the uTP task (on the UDP port
//!   of the same number, [`super::transport`]) accept, and a short task per connection reads the
//!   handshake, plain or encrypted ([`super::peer_stream`], within a timeout), finds the torrent by
//!   info-hash, answers with our handshake and hands the socket to that torrent. Unknown
//!   info-hashes and torrents that do not transfer (paused, checking, failed) are refused by
//!   closing.

mod ctx;
mod discovery;
mod incoming;
mod settings;

pub(crate) use ctx::{stop_spacing, SessionCtx};
pub(crate) use incoming::admit;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::peer::HANDSHAKE_TIMEOUT;
use super::torrent::TorrentHandle;
use super::transport::RawStream;
use super::{AddOptions, EngineError, Event, Result, SessionConfig};
use btorrent_proto::magnet::Magnet;
use btorrent_proto::metainfo::Metainfo;
use btorrent_proto::types::{InfoHash, PeerId};
use btorrent_proto::wire::handshake::{write_handshake, Handshake};

/// How long a shutdown leaves the uTP socket open after its connections were dropped.
const UTP_LINGER: Duration = Duration::from_millis(200);

/// Has the torrents announce on the DHT again when the port seen from outside changes (the
/// router forwards the peer port from another number, or stops): their next announces are far
/// off. Ends when the session shuts down.
async fn tell_dht_the_public_port(
    ctx: std::sync::Weak<SessionCtx>,
    mut forwarded: tokio::sync::watch::Receiver<Vec<super::portmap::Forwarded>>,
    dht: Arc<super::dht::DhtNode>,
    shutdown: CancellationToken,
) {
    let mut told = ctx.upgrade().map(|c| c.public_port());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = forwarded.changed() => if r.is_err() { return },
        }
        let Some(c) = ctx.upgrade() else { return };
        let now = Some(c.public_port());
        if now != told {
            told = now;
            dht.announce_again();
        }
    }
}

/// Data checks of a session hashing at once.
const CHECKS_AT_ONCE: usize = 2;
/// Resume files of a session being saved at once.
const SAVES_AT_ONCE: usize = 8;

struct Inner {
    ctx: Arc<SessionCtx>,
    torrents: Mutex<HashMap<InfoHash, TorrentHandle>>,
}

/// A running BitTorrent session. Cheap to clone; call [`Session::shutdown`] to stop it.
#[derive(Clone)]
pub struct Session(Arc<Inner>);

impl Session {
    /// What its torrents share.
    pub(crate) fn ctx(&self) -> &SessionCtx {
        &self.0.ctx
    }

    /// Binds the listener and starts accepting peers.
    pub async fn start(cfg: SessionConfig) -> Result<Session> {
        let shutdown = CancellationToken::new();
        let (listening, listener) = super::listen::Listening::bind(cfg.listen, &shutdown).await?;
        let listen_addr = listening.addr();
        let dht = match &cfg.dht {
            Some(d) => Some(
                super::dht::DhtNode::start(d.clone(), listen_addr, cfg.resume_dir.as_deref())
                    .await?,
            ),
            None => None,
        };
        let lsd = if cfg.lsd && !listen_addr.ip().is_loopback() {
            match super::lsd::LsdNode::start(listen_addr) {
                Ok(node) => {
                    tracing::info!(interfaces = ?node.interfaces(), "local service discovery on");
                    Some(node)
                }
                Err(e) => {
                    tracing::info!("local service discovery off: {e}");
                    None
                }
            }
        } else {
            None
        };
        let portmap = (!listen_addr.ip().is_loopback()).then(|| {
            super::portmap::PortMapper::new(
                cfg.port_forwarding,
                cfg.port_forwarding_gateway,
                listen_addr.ip(),
            )
        });
        let max_connections = cfg
            .max_connections
            .unwrap_or_else(|| super::fd_budget::for_this_process(cfg.max_open_files));
        let ctx = Arc::new(SessionCtx {
            peer_id: cfg.peer_id.unwrap_or_else(PeerId::generate),
            listening,
            events: cfg.events.clone(),
            shutdown,
            // Always there, so the limits can be set while the session runs (0 = unlimited).
            upload_limit: Some(super::bandwidth::SharedLimiter::new(
                cfg.upload_limit.unwrap_or(0),
            )),
            download_limit: Some(super::bandwidth::SharedLimiter::new(
                cfg.download_limit.unwrap_or(0),
            )),
            // Announces leave from the address we listen on, when it is a specific one, and over
            // both families when we listen on both.
            tracker: crate::announce::TrackerClient::for_listen(listen_addr.ip()),
            announce_key: rand::random(),
            dht,
            lsd,
            seen_as: Default::default(),
            vantage: Default::default(),
            portmap,
            forward_also: cfg.forward_also.clone(),
            portmap_task: Mutex::new(None),
            writers: Default::default(),
            hot_budget: super::hot::HotBudget::new(cfg.hot_piece_bytes),
            checks: tokio::sync::Semaphore::new(CHECKS_AT_ONCE),
            saves: tokio::sync::Semaphore::new(SAVES_AT_ONCE),
            announce_next: Mutex::new(tokio::time::Instant::now()),
            files: super::storage::FileCache::new(cfg.max_open_files),
            ip_filter: Default::default(),
            connections: super::fd_budget::SocketBudget::new(max_connections),
            max_peers_per_torrent: cfg.max_peers_per_torrent.max(1).into(),
            pex: cfg.pex.into(),
            epoch: tokio::time::Instant::now(),
            fetches: Default::default(),
            encryption: Mutex::new(cfg.encryption),
            utp: Mutex::new(cfg.utp),
            rename_partial_files: std::sync::atomic::AtomicBool::new(cfg.rename_partial_files),
            groups: Default::default(),
            default_trackers: RwLock::new(cfg.default_trackers.clone()),
            cfg,
        });
        for (name, limits) in &ctx.cfg.bandwidth_groups {
            ctx.groups.set(name, limits);
        }
        let session = Session(Arc::new(Inner {
            ctx,
            torrents: Mutex::new(HashMap::new()),
        }));
        session.0.ctx.listening.accept(&session, listener);
        if let Some(d) = &session.0.ctx.dht {
            tokio::spawn(d.clone().save_loop(session.0.ctx.shutdown.clone()));
        }
        if let Some(l) = &session.0.ctx.lsd {
            tokio::spawn(l.clone().run(session.0.ctx.shutdown.clone()));
        }
        if let Some(m) = &session.0.ctx.portmap {
            let ctx = Arc::downgrade(&session.0.ctx);
            let ports = move || ctx.upgrade().map_or_else(Vec::new, |c| c.forwarded_ports());
            let task = tokio::spawn(m.clone().run(ports, session.0.ctx.shutdown.clone()));
            *session.0.ctx.portmap_task.lock() = Some(task);
            if let Some(d) = &session.0.ctx.dht {
                tokio::spawn(tell_dht_the_public_port(
                    Arc::downgrade(&session.0.ctx),
                    m.forwarded(),
                    d.clone(),
                    session.0.ctx.shutdown.clone(),
                ));
            }
        }
        tracing::info!(%listen_addr, "listening for peers");
        Ok(session)
    }

    /// The address really bound (its port changes with [`Session::set_listen_port`]).
    pub fn listen_addr(&self) -> SocketAddr {
        self.0.ctx.listen_addr()
    }

    pub fn peer_id(&self) -> PeerId {
        self.0.ctx.peer_id
    }

    /// Adds a torrent: checks the data in `opts.data_dir`, then downloads what is missing and seeds.
    pub async fn add(&self, meta: Metainfo, opts: AddOptions) -> Result<TorrentHandle> {
        let ih = meta.info_hash;
        if self.0.ctx.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        let trackers = opts.trackers.clone().unwrap_or_else(|| meta.trackers());
        if let Some(files) = &opts.files {
            super::selection::check_len(&meta.info, files)?;
        }
        if let Some(paths) = &opts.file_paths {
            super::storage::check_paths(&meta.info, paths).map_err(|why| EngineError::BadPath {
                name: meta.info.name.clone(),
                why,
            })?;
        }
        let handle = {
            let mut map = self.0.torrents.lock();
            if map.contains_key(&ih) {
                return Err(EngineError::AlreadyAdded {
                    name: meta.info.name.clone(),
                    info_hash: ih,
                });
            }
            let h = TorrentHandle::new(meta, &opts, trackers, self.0.ctx.clone());
            map.insert(ih, h.clone());
            h
        };
        handle.0.add_known(opts.peers, super::known::Source::User);
        if let Some(peers) = self.0.ctx.fetches.take_peers(&ih) {
            handle.0.add_known(peers, super::known::Source::Incoming);
        }
        self.0.ctx.events.publish(Event::Added {
            info_hash: ih,
            name: handle.name().to_string(),
            data_dir: handle.0.storage.data_dir(),
        });
        // The quick part of the check (sizes, mtimes, resume data) happens before `add` returns, so
        // a torrent whose resume data vouches for every piece is already seeding; pieces that need
        // hashing are checked in the background (state `Checking`).
        // Files it lacks that are on this machine already are placed first (in the background:
        // it reads them), then the whole check follows (see `local_data`).
        let offered = opts.local_files;
        let session = self.clone();
        let others = move || {
            let mut all = session.torrents();
            all.retain(|h| h.info_hash() != ih);
            all
        };
        let t = handle.0.clone();
        let (found, survey) = tokio::task::spawn_blocking(move || {
            let found = super::local_data::plan(&t, offered, others);
            let survey = found.is_empty().then(|| super::resume::survey(&t));
            if survey.as_ref().is_some_and(|s| s.gone) {
                // Named as a download's files are, for the download a resume may ask for.
                super::partial_files::name_all(&t);
            }
            (found, survey)
        })
        .await
        .map_err(EngineError::task)?;
        use super::torrent_task::Unchecked;
        let unchecked = match survey {
            None => Some(Unchecked::Place(found)),
            // Its data gone from where it was (a disk not mounted): failed, not downloaded again
            // into the empty place unasked. Its task idles until a resume takes it up.
            Some(survey) if survey.gone => {
                handle.0.fail(EngineError::DataMissing {
                    path: handle.0.storage.top_path(),
                });
                None
            }
            Some(survey) if survey.to_check.is_empty() => {
                super::torrent_task::apply_check(&handle.0, &survey.have, !survey.current);
                None
            }
            Some(survey) => Some(Unchecked::Check(survey)),
        };
        tokio::spawn(super::torrent_task::run(handle.0.clone(), unchecked));
        Ok(handle)
    }

    pub fn get(&self, ih: &InfoHash) -> Option<TorrentHandle> {
        self.0.torrents.lock().get(ih).cloned()
    }

    /// The torrent in the swarm `ih`: the one of that info-hash, or the hybrid whose v2 swarm it is
    /// ([`Metainfo::second_info_hash`]).
    pub fn in_swarm(&self, ih: &InfoHash) -> Option<TorrentHandle> {
        let torrents = self.0.torrents.lock();
        torrents.get(ih).cloned().or_else(|| {
            torrents
                .values()
                .find(|h| h.0.meta.second_info_hash().as_ref() == Some(ih))
                .cloned()
        })
    }

    pub fn torrents(&self) -> Vec<TorrentHandle> {
        let mut v: Vec<_> = self.0.torrents.lock().values().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// A receiver of the session's own event channel ([`crate::EventSink::own`], the default);
    /// `None` when the session publishes into a front end's channel (subscribe to that instead).
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        self.0.ctx.events.subscribe()
    }

    /// Stops a torrent (announcing `stopped`) and forgets it; its data stays on disk, and its resume
    /// data no longer says where (added again, it is not found missing if it went meanwhile).
    pub async fn remove(&self, ih: &InfoHash) -> Result<()> {
        let h = self
            .0
            .torrents
            .lock()
            .remove(ih)
            .ok_or(EngineError::NotFound { info_hash: *ih })?;
        h.stop(
            Duration::from_secs(5),
            self.0.ctx.cfg.announce_spacing,
            true,
        )
        .await;
        self.0.ctx.events.publish(Event::Removed {
            info_hash: *ih,
            name: h.name().to_string(),
        });
        Ok(())
    }

    /// Resolves once [`Session::shutdown`] has stopped the session.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.0.ctx.shutdown.clone().cancelled_owned()
    }

    /// Stops every torrent (saving resume data, announcing `stopped` within `grace`) and the listener.
    /// The `stopped` announces take turns like the start's (`announce_spacing` apart), spread over at
    /// most half the grace.
    pub async fn shutdown(&self, grace: Duration) {
        let all: Vec<TorrentHandle> = self.0.torrents.lock().drain().map(|(_, h)| h).collect();
        let ctx = &self.0.ctx;
        let calls = all.iter().map(|h| h.0.stopped_announces()).sum();
        let spacing = stop_spacing(ctx.cfg.announce_spacing, grace, calls);
        // Turns still booked by announces of the stopping torrents are void: theirs start now.
        *ctx.announce_next.lock() = tokio::time::Instant::now();
        let utp_peers = all.iter().any(|h| h.peers().iter().any(|p| p.utp));
        futures::future::join_all(all.iter().map(|h| h.stop(grace, spacing, false))).await;
        self.0.ctx.shutdown.cancel();
        // Closing the uTP sockets ends their tasks at once: the FINs of the uTP connections just
        // dropped get a moment to leave first (else their peers hold them until a timeout).
        if utp_peers {
            tokio::time::sleep(UTP_LINGER.min(grace)).await;
        }
        ctx.listening.close_utp();
        if let Some(d) = &self.0.ctx.dht {
            d.stop().await;
        }
        // The mappings are deleted by the task as it ends (within its own bound).
        let task = ctx.portmap_task.lock().take();
        if let Some(task) = task {
            let bound = super::portmap::RELEASE_TIMEOUT + Duration::from_secs(1);
            let _ = tokio::time::timeout(bound, task).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_announces_keep_the_spacing_within_half_the_grace() {
        let ms = Duration::from_millis;
        assert_eq!(stop_spacing(ms(2), Duration::from_secs(10), 1000), ms(2));
        assert_eq!(stop_spacing(ms(2), Duration::from_secs(1), 1000), ms(1) / 2);
        assert_eq!(stop_spacing(ms(2), Duration::from_secs(1), 0), ms(2));
    }

    #[tokio::test]
    async fn periodic_timers_fire_in_the_session_s_phase() {
        let s = Session::start(SessionConfig::default()).await.unwrap();
        let ctx = &s.0.ctx;
        let period = Duration::from_millis(300);
        for _ in 0..3 {
            let now = tokio::time::Instant::now();
            let at = ctx.next_tick(period);
            assert!(at > now && at <= now + period, "{:?}", at - now);
            assert_eq!((at - ctx.epoch).as_nanos() % period.as_nanos(), 0);
            tokio::time::sleep(Duration::from_millis(130)).await;
        }
        s.shutdown(Duration::from_secs(1)).await;
    }
}
