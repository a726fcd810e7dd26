//! The session's metadata fetches ([`crate::Session::fetch_metadata`]): which are under way, for
//! the peers that connect to us for one (handed over as [`Incoming`]) and for front ends
//! ([`Registry::list`], each entry held by its [`Listed`] guard); and the peers the recent ones
//! got their metadata from, for the torrent added next by that info-hash. Each lock is taken
//! alone.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;

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
        Listed { registry: self, id }
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
}

impl Listed<'_> {
    pub fn update(&self, p: &FetchProgress) {
        if let Some(f) = self.registry.listed.lock().get_mut(&self.id) {
            f.progress = *p;
        }
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.registry.listed.lock().remove(&self.id);
    }
}
