//! The session's metadata fetches ([`crate::Session::fetch_metadata`]): which are under way, for
//! the peers that connect to us for one (handed over as [`Incoming`]) and for front ends
//! ([`Registry::list`], each entry held by its [`Listed`] guard); and the peers the recent ones
//! got their metadata from, for the torrent added next by that info-hash; and asking a fetch's
//! trackers again ([`Registry::reannounce`]). Each lock is taken alone.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::{FetchProgress, Incoming, MetadataFetch};
use btorrent_proto::magnet::Magnet;
use btorrent_proto::types::InfoHash;

/// Fetches whose peers are kept for the torrent added after them.
const KEPT_FETCHES: usize = 16;

#[derive(Default)]
pub(crate) struct Registry {
    /// By info-hash: where a peer that connects for it goes (the first fetch of it has them).
    incoming: Mutex<HashMap<InfoHash, mpsc::Sender<Incoming>>>,
    /// The fetches as front ends list them, by a number each (two fetches of one info-hash at
    /// once are two entries).
    listed: Mutex<BTreeMap<u64, MetadataFetch>>,
    next: AtomicU64,
    /// The peers recent fetches got their metadata from (the last [`KEPT_FETCHES`]).
    kept: Mutex<VecDeque<(InfoHash, Vec<SocketAddr>)>>,
    /// By the number of a listed fetch: its info-hash, and what asks its trackers again
    /// ([`Registry::reannounce`]; its announce loops watch it).
    asks: Mutex<BTreeMap<u64, (InfoHash, watch::Sender<()>)>>,
}

impl Registry {
    /// The peers that connect for `ih` from now on, until the receiver is dropped; `None` when
    /// another fetch of `ih` has them already.
    pub fn take_incoming(&self, ih: InfoHash) -> Option<mpsc::Receiver<Incoming>> {
        let mut all = self.incoming.lock();
        all.retain(|_, tx| !tx.is_closed());
        (!all.contains_key(&ih)).then(|| {
            let (tx, rx) = mpsc::channel(8);
            all.insert(ih, tx);
            rx
        })
    }

    /// Where a peer that connects for `ih` goes, if a fetch of it is under way.
    pub fn incoming_for(&self, ih: &InfoHash) -> Option<mpsc::Sender<Incoming>> {
        self.incoming.lock().get(ih).cloned()
    }

    /// The info-hashes being fetched (an incoming handshake may name one).
    pub fn info_hashes(&self) -> Vec<InfoHash> {
        self.incoming.lock().keys().copied().collect()
    }

    /// Lists a fetch of `magnet` until the guard drops.
    pub fn listed(&self, magnet: &Magnet) -> Listed<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.listed.lock().insert(
            id,
            MetadataFetch {
                info_hash: magnet.info_hash.to_hex(),
                name: magnet.name.clone(),
                started,
                progress: Default::default(),
            },
        );
        let (ask, asked) = watch::channel(());
        self.asks.lock().insert(id, (magnet.info_hash, ask));
        Listed {
            registry: self,
            id,
            asked,
        }
    }

    /// Asks the trackers of every fetch of `ih` for peers now, or as soon as their
    /// `min interval` allows; whether one is under way.
    pub fn reannounce(&self, ih: &InfoHash) -> bool {
        let asks = self.asks.lock();
        let mut any = false;
        for (_, ask) in asks.values().filter(|(h, _)| h == ih) {
            ask.send_replace(());
            any = true;
        }
        any
    }

    /// The fetches under way, the oldest first.
    pub fn list(&self) -> Vec<MetadataFetch> {
        self.listed.lock().values().cloned().collect()
    }

    /// Keeps the peers a fetch of `ih` got its metadata from.
    pub fn keep_peers(&self, ih: InfoHash, peers: Vec<SocketAddr>) {
        let mut kept = self.kept.lock();
        kept.retain(|(h, _)| *h != ih);
        if kept.len() == KEPT_FETCHES {
            kept.pop_front();
        }
        kept.push_back((ih, peers));
    }

    /// The peers kept for `ih`, taken.
    pub fn take_peers(&self, ih: &InfoHash) -> Option<Vec<SocketAddr>> {
        let mut kept = self.kept.lock();
        let i = kept.iter().position(|(h, _)| h == ih)?;
        kept.remove(i).map(|(_, p)| p)
    }
}

/// A fetch's entry in the list, from its start until it ends however it ends.
pub(crate) struct Listed<'a> {
    registry: &'a Registry,
    id: u64,
    asked: watch::Receiver<()>,
}

impl Listed<'_> {
    /// Changes each time the fetch's trackers are to be asked again.
    pub fn asked(&self) -> watch::Receiver<()> {
        self.asked.clone()
    }

    pub fn update(&self, p: &FetchProgress) {
        if let Some(f) = self.registry.listed.lock().get_mut(&self.id) {
            f.progress = *p;
        }
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.registry.listed.lock().remove(&self.id);
        self.registry.asks.lock().remove(&self.id);
    }
}
