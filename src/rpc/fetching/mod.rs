//! Magnet links added over the RPC whose metadata is still being fetched. `torrent-add` answers at
//! once, as Transmission does, with the torrent's id; until the metadata is in, the torrent is
//! listed here: `torrent-get` shows it (no size yet, `metadataPercentComplete` rising, the link's
//! name, trackers and web seeds), `torrent-stop`, `-start` and `-remove` pause, resume and
//! drop the fetch, `torrent-reannounce` asks its trackers again, `torrent-set-location` picks its folder, and what `torrent-set` asks (labels, seeding goals, limits...) is kept and
//! applied once the torrent runs. Once the metadata has arrived and matched the info-hash, its .torrent is kept in
//! `torrents_dir` and the torrent is added as any other (the rest of `torrent-add`, with the
//! request's own options) under the same id.
//!
//! Each entry is recorded as `<torrents_dir>/adding/<info-hash>.json` (the link, the request,
//! the time): a daemon that restarts goes on fetching, and the file goes once the torrent is added
//! or removed.
//!
//! A fetch that finds no metadata within [`ROUND`] tries again after [`RETRY`], for as long as the
//! entry lives. Metadata that cannot be used (a link's `so` naming no file of it, a `files-wanted`
//! index past its last file) keeps nothing and stops the entry with the reason as its `errorString`; a `torrent-start`
//! tries again.
//!
//! `entry.rs` holds an entry and what `torrent-get` shows of it; `record.rs` what is kept of it.
//!
//! Invariants: an entry's `fetch` is `Some` exactly while a task fetches for it, and its `adding`
//! holds an uncancelled token exactly while that task adds the torrent from the fetched metadata;
//! only [`Fetching`]'s methods change them, under the `entries` lock, which is never held across an
//! `.await`. A request that names an entry being added ([`select`]) waits until the torrent runs
//! (or the add fails), so a `torrent-stop`, `-remove` or `-set` sent as the metadata arrives acts
//! on the torrent instead of on an entry about to go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio_util::sync::{CancellationToken, DropGuard};

mod entry;
mod record;

pub use record::ADDING_DIR;

use entry::{shown_name, Entry};
use record::{record_file, Record};

use super::fields::{unix_now, Which};
use super::torrents::{added, download_dir, labels_arg};
use super::{Outcome, Rpc};
use crate::engine::metadata::FetchProgress;
use crate::types::InfoHash;
use btorrent_proto::magnet::Magnet;

/// How long one fetch looks for the metadata before it starts again (with the peers found since).
pub const ROUND: Duration = Duration::from_secs(300);

/// The pause between two fetches.
pub const RETRY: Duration = Duration::from_secs(30);

/// How long a request waits for an entry's torrent to be added before it gives up.
pub const SETTLE: Duration = Duration::from_secs(60);

/// The magnets being fetched, by info-hash.
pub struct Fetching {
    entries: Mutex<HashMap<InfoHash, Entry>>,
    /// Cancelled when the RPC server stops: every fetch ends (the records stay for the next start).
    closed: CancellationToken,
}

/// `torrent-add` of a magnet link: recorded, listed and (unless `paused`) fetched; the reply names
/// the id the torrent keeps once it runs. `follow`: the mutable link `link` came from, recorded
/// with the torrent once it is added so that it follows the link's next versions.
pub async fn add(
    rpc: &Arc<Rpc>,
    link: &str,
    args: &Map<String, Value>,
    follow: Option<crate::config::Following>,
) -> Outcome {
    let magnet = Magnet::parse(link).map_err(|e| format!("torrent-add: {e}"))?;
    let ih = magnet.info_hash;
    let name = shown_name(&magnet);
    let session = rpc
        .peer
        .get_or_start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    if let Some(h) = session.get(&ih) {
        let id = rpc.ids.id_for(&ih);
        return Ok(added("torrent-duplicate", id, h.name(), &ih.to_hex()));
    }
    if let Some(id) = rpc.fetching.id_of(&ih) {
        return Ok(added("torrent-duplicate", id, &name, &ih.to_hex()));
    }
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let data_dir = download_dir(args, &cfg)?;
    let mut request = args.clone();
    request.remove("filename");
    // Started or not as the session says now, whatever it says once the metadata is in.
    let paused = super::torrents::paused_arg(args, &cfg.settings)?;
    request.insert("paused".into(), json!(paused));
    request.insert("download-dir".into(), json!(data_dir.display().to_string()));
    let record = Record {
        link: link.to_string(),
        request,
        added: unix_now(),
        set: Map::new(),
        follow,
    };
    let file = record_file(&cfg.torrents_dir(), &ih);
    record
        .save(&file)
        .map_err(|e| format!("torrent-add: {e:#}"))?;
    match rpc.fetching.insert(rpc, magnet, record, file) {
        Ok(id) => Ok(added("torrent-added", id, &name, &ih.to_hex())),
        // The same link added at the same moment.
        Err(id) => Ok(added("torrent-duplicate", id, &name, &ih.to_hex())),
    }
}

/// The entries an `ids` argument names ([`Which`]; each counts as recently active), in id order,
/// once none of them is being added (up to [`SETTLE`]): call it before selecting the running
/// torrents, which then include those just added. An entry whose torrent runs by now is left out.
pub async fn select(
    rpc: &Arc<Rpc>,
    args: &Map<String, Value>,
) -> Result<Vec<(i64, InfoHash)>, String> {
    let which = Which::of(args)?;
    rpc.fetching.settled(&which, SETTLE).await?;
    let session = rpc.peer.get().await;
    let running = |ih: &InfoHash| session.as_ref().is_some_and(|s| s.get(ih).is_some());
    Ok(rpc.fetching.named(&which, running))
}

/// Takes up the entries a previous run recorded in `torrents_dir`: each is listed again, and
/// fetched unless it was paused; one whose torrent is managed by now is dropped. Call within the
/// tokio runtime.
pub fn resume(rpc: &Arc<Rpc>, torrents_dir: &Path) {
    let dir = torrents_dir.join(ADDING_DIR);
    let Ok(list) = std::fs::read_dir(&dir) else {
        return;
    };
    let managed = rpc.peer.torrents().config().ok();
    for file in list.flatten().map(|e| e.path()) {
        if file.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let read = std::fs::read(&file)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice::<Record>(&b)?))
            .and_then(|r| Ok((Magnet::parse(&r.link)?, r)));
        let (magnet, record) = match read {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("{}: not a magnet being added: {e:#}", file.display());
                continue;
            }
        };
        let ih = magnet.info_hash;
        if managed.as_ref().is_some_and(|c| c.find(&ih).is_some()) {
            // Added before the last run ended, its record not yet gone.
            let _ = std::fs::remove_file(&file);
            continue;
        }
        tracing::info!("magnet {ih}: listed again, waiting for its metadata");
        let _ = rpc.fetching.insert(rpc, magnet, record, file);
    }
}

impl Fetching {
    /// No entries; `closed` ends every fetch.
    pub fn new(closed: CancellationToken) -> Fetching {
        Fetching {
            entries: Mutex::new(HashMap::new()),
            closed,
        }
    }

    /// The id of the entry of `ih`, if there is one.
    pub fn id_of(&self, ih: &InfoHash) -> Option<i64> {
        self.entries.lock().get(ih).map(|e| e.id)
    }

    /// Lists a new entry and starts its fetch unless its request says `paused`; its id (`Err`:
    /// the id of the entry already listed for the same info-hash, left as it is).
    fn insert(
        &self,
        rpc: &Arc<Rpc>,
        magnet: Magnet,
        record: Record,
        file: PathBuf,
    ) -> Result<i64, i64> {
        let ih = magnet.info_hash;
        let id = rpc.ids.id_for(&ih);
        let paused = record.paused();
        match self.entries.lock().entry(ih) {
            std::collections::hash_map::Entry::Occupied(_) => return Err(id),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Entry {
                id,
                magnet,
                record,
                file,
                progress: Arc::default(),
                fetch: None,
                error: None,
                adding: None,
            }),
        };
        if !paused {
            self.start(rpc, &ih);
        }
        Ok(id)
    }

    /// The entries `which` names but those `running` as torrents, in id order.
    fn named(&self, which: &Which, running: impl Fn(&InfoHash) -> bool) -> Vec<(i64, InfoHash)> {
        let mut out: Vec<(i64, InfoHash)> = self
            .entries
            .lock()
            .iter()
            .filter(|(ih, e)| !running(ih) && which.names(e.id, ih, || true))
            .map(|(ih, e)| (e.id, *ih))
            .collect();
        out.sort();
        out
    }

    /// Fetches the metadata of `ih` (again), unless a fetch runs; recorded as not paused.
    pub fn start(&self, rpc: &Arc<Rpc>, ih: &InfoHash) {
        let mut entries = self.entries.lock();
        let Some(e) = entries.get_mut(ih) else {
            return;
        };
        if e.fetch.is_some() {
            return;
        }
        let cancel = self.closed.child_token();
        e.fetch = Some(cancel.clone());
        e.error = None;
        e.set_paused(false);
        let task = fetch(
            rpc.clone(),
            e.magnet.clone(),
            e.progress.clone(),
            cancel.clone(),
        );
        tokio::spawn(task);
    }

    /// Stops the fetch of `ih`; recorded as paused.
    pub fn stop(&self, ih: &InfoHash) {
        if let Some(e) = self.entries.lock().get_mut(ih) {
            if let Some(fetch) = e.fetch.take() {
                fetch.cancel();
            }
            e.set_paused(true);
        }
    }

    /// Drops the entry of `ih`: its fetch ends and its record goes.
    pub fn remove(&self, rpc: &Rpc, ih: &InfoHash) {
        let Some(e) = self.entries.lock().remove(ih) else {
            return;
        };
        if let Some(fetch) = e.fetch {
            fetch.cancel();
        }
        let _ = std::fs::remove_file(&e.file);
        rpc.ids.removed(e.id);
    }

    /// The torrent of `ih` is added from a .torrent given since: its entry goes without a trace, its
    /// fetch ends; unless the entry's own torrent is being added, whose task ends it (`finish`).
    pub fn added(&self, ih: &InfoHash) {
        let mut entries = self.entries.lock();
        if entries.get(ih).is_some_and(|e| e.adding().is_none()) {
            Self::drop_entry(entries.remove(ih));
        }
    }

    /// The torrent of `ih` claimed with [`Self::claim`] is added: its entry goes without a trace,
    /// and what `torrent-set` asked of it (until now) is handed on.
    fn finish(&self, ih: &InfoHash) -> Map<String, Value> {
        let e = self.entries.lock().remove(ih);
        let set = e.as_ref().map(|e| e.record.set.clone()).unwrap_or_default();
        Self::drop_entry(e);
        set
    }

    /// Ends the fetch of a removed entry and deletes its record.
    fn drop_entry(e: Option<Entry>) {
        if let Some(e) = e {
            if let Some(fetch) = e.fetch {
                fetch.cancel();
            }
            let _ = std::fs::remove_file(&e.file);
        }
    }

    /// Waits (up to `limit`) until no entry `which` names is being added.
    async fn settled(&self, which: &Which, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let busy: Vec<(String, CancellationToken)> = self
                .entries
                .lock()
                .iter()
                .filter(|(ih, e)| which.names(e.id, ih, || true))
                .filter_map(|(_, e)| Some((shown_name(&e.magnet), e.adding()?.clone())))
                .collect();
            let Some((name, token)) = busy.into_iter().next() else {
                return Ok(());
            };
            if tokio::time::timeout_at(deadline, token.cancelled())
                .await
                .is_err()
            {
                return Err(format!(
                    "{name}: its metadata came and the torrent is still being added; try again"
                ));
            }
        }
    }

    /// The fetch of `ih` ended for `why`: the entry stays, stopped, with `why` as its error.
    fn failed(&self, ih: &InfoHash, why: String) {
        tracing::warn!("magnet {ih}: {why}");
        if let Some(e) = self.entries.lock().get_mut(ih) {
            e.fetch = None;
            e.error = Some(why);
            e.adding = None;
        }
    }

    /// Claims `ih`'s entry for adding its torrent, while it is still wanted: its link and record,
    /// and a guard that ends the claim when dropped (requests naming the entry wait till then).
    fn claim(&self, ih: &InfoHash) -> Option<(Magnet, Record, DropGuard)> {
        let mut entries = self.entries.lock();
        let e = entries.get_mut(ih)?;
        e.fetch.as_ref().filter(|c| !c.is_cancelled())?;
        let token = CancellationToken::new();
        e.adding = Some(token.clone());
        Some((e.magnet.clone(), e.record.clone(), token.drop_guard()))
    }

    /// Keeps `torrent-set`'s `args` (checked, but `ids`) for the entry of `ih`, to apply once its
    /// torrent runs; `labels` show at once.
    pub fn set_later(&self, ih: &InfoHash, args: &Map<String, Value>) -> Result<(), String> {
        let mut entries = self.entries.lock();
        let Some(e) = entries.get_mut(ih) else {
            return Ok(());
        };
        let keys = args.iter().filter(|(k, _)| *k != "ids");
        e.record
            .set
            .extend(keys.map(|(k, v)| (k.clone(), v.clone())));
        e.record
            .save(&e.file)
            .map_err(|e| format!("torrent-set: {e:#}"))
    }

    /// The entry of `ih` will download into `folder`.
    pub fn set_folder(&self, ih: &InfoHash, folder: &Path) -> Result<(), String> {
        let mut entries = self.entries.lock();
        let Some(e) = entries.get_mut(ih) else {
            return Ok(());
        };
        let folder = json!(folder.display().to_string());
        e.record.request.insert("download-dir".into(), folder);
        e.record
            .save(&e.file)
            .map_err(|e| format!("torrent-set-location: {e:#}"))
    }

    /// The trackers of the link of `ih`'s entry.
    pub fn trackers(&self, ih: &InfoHash) -> Vec<String> {
        let entries = self.entries.lock();
        entries
            .get(ih)
            .map(|e| e.magnet.trackers.clone())
            .unwrap_or_default()
    }

    /// How many entries fetch, and how many are stopped.
    pub fn counts(&self) -> (usize, usize) {
        let entries = self.entries.lock();
        let fetching = entries.values().filter(|e| e.fetch.is_some()).count();
        (fetching, entries.len() - fetching)
    }

    /// `torrent-get`'s fields of the entry `ih` (`None`: gone, or a field that has no value).
    pub fn field(&self, ih: &InfoHash, f: &str, queue_position: i64) -> Option<Value> {
        let entries = self.entries.lock();
        let e = entries.get(ih)?;
        e.field(f, queue_position)
    }
}

/// Fetches the metadata of `magnet` round after round until it comes or `cancel` ends it; then
/// adds the torrent with the entry's request.
async fn fetch(
    rpc: Arc<Rpc>,
    magnet: Magnet,
    progress: Arc<Mutex<FetchProgress>>,
    cancel: CancellationToken,
) {
    let ih = magnet.info_hash;
    let meta = loop {
        let session = match rpc.peer.get_or_start().await {
            Ok(s) => s,
            Err(e) => return rpc.fetching.failed(&ih, format!("{e:#}")),
        };
        let extra = session.dht_seek(ih);
        let seen = progress.clone();
        let fetched = session
            .fetch_metadata(
                &magnet,
                extra,
                Some(ROUND),
                move |p| *seen.lock() = *p,
                cancel.clone(),
            )
            .await;
        match fetched {
            Ok(meta) => break meta,
            Err(_) if cancel.is_cancelled() => return,
            Err(e) => {
                tracing::info!("magnet {ih}: {e:#}; trying again in {RETRY:?}");
                *progress.lock() = FetchProgress::default();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    };
    // Stopped or removed while the last piece came in: nothing is added. From here on, requests
    // naming it wait until `_claim` drops.
    let Some((magnet, record, _claim)) = rpc.fetching.claim(&ih) else {
        return;
    };
    if let Err(why) = add_fetched(&rpc, &magnet, meta, &record).await {
        return rpc.fetching.failed(&ih, why);
    }
    let mut set = rpc.fetching.finish(&ih);
    if !set.is_empty() {
        // What was set meanwhile, now on the torrent (its values were checked when they came); the
        // entry is gone, so this does not wait for the claim.
        set.insert("ids".into(), json!(ih.to_hex()));
        if let Err(e) = super::torrents::set(&rpc, &super::earlier_spellings(&set)).await {
            tracing::warn!("magnet {ih}: what torrent-set asked before its metadata came: {e}");
        }
    }
}

/// Keeps the fetched metadata's .torrent and adds the torrent as the entry's request asks.
async fn add_fetched(
    rpc: &Arc<Rpc>,
    magnet: &Magnet,
    meta: crate::metainfo::Metainfo,
    record: &Record,
) -> Result<(), String> {
    let request = &record.request;
    let so = crate::source::magnet_files(magnet, &meta).map_err(|e| format!("{e:#}"))?;
    // Checked before anything is kept.
    let files = super::torrents::file_choice(&meta, so, request)?;
    let labels = labels_arg(request)?;
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let file = crate::source::save(&cfg.torrents_dir(), &meta).map_err(|e| format!("{e:#}"))?;
    let request = super::earlier_spellings(request);
    let added = super::torrents::Added {
        src: Some(&file),
        files,
        labels,
        follow: record.follow.clone(),
    };
    super::torrents::add_torrent(rpc, meta, added, &request)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(fetching: &Fetching, id: i64, hex_digit: char) -> InfoHash {
        let hex: String = std::iter::repeat_n(hex_digit, 40).collect();
        let magnet = Magnet::parse(&format!("magnet:?xt=urn:btih:{hex}&dn=m{id}")).unwrap();
        let ih = magnet.info_hash;
        let mut set = Map::new();
        set.insert("labels".into(), json!(["tv"]));
        let record = Record {
            link: String::new(),
            request: Map::new(),
            added: 0,
            set,
            follow: None,
        };
        fetching.entries.lock().insert(
            ih,
            Entry {
                id,
                magnet,
                record,
                file: std::env::temp_dir().join("btorrent-no-such-record.json"),
                progress: Arc::default(),
                fetch: Some(CancellationToken::new()),
                error: None,
                adding: None,
            },
        );
        ih
    }

    #[tokio::test]
    async fn a_request_naming_a_magnet_being_added_waits_for_its_torrent() {
        let fetching = Arc::new(Fetching::new(CancellationToken::new()));
        let ih = listed(&fetching, 1, 'a');
        let other = listed(&fetching, 2, 'b');
        let these = |id: i64| Which::These(vec![json!(id)]);
        let (_, _, claim) = fetching.claim(&ih).expect("a wanted entry is claimed");

        // Nothing ends the claim, so the wait runs out, with the reason.
        let err = fetching
            .settled(&these(1), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.contains("m1") && err.contains("being added"), "{err}");
        // Another entry does not wait; a .torrent of the same hash leaves the claimed entry to
        // its task.
        fetching.settled(&these(2), SETTLE).await.unwrap();
        fetching.added(&ih);
        assert_eq!(fetching.id_of(&ih), Some(1));

        let waiting = {
            let fetching = fetching.clone();
            tokio::spawn(async move { fetching.settled(&Which::All, SETTLE).await })
        };
        let set = fetching.finish(&ih);
        assert_eq!(set.get("labels"), Some(&json!(["tv"])));
        assert_eq!(fetching.id_of(&ih), None);
        drop(claim);
        tokio::time::timeout(SETTLE, waiting)
            .await
            .expect("the wait ends with the claim")
            .unwrap()
            .unwrap();

        // A failed add ends the claim too, and the entry stays with its error.
        let (_, _, claim) = fetching.claim(&other).unwrap();
        fetching.failed(&other, "no file chosen".into());
        fetching.settled(&these(2), SETTLE).await.unwrap();
        drop(claim);
        let entries = fetching.entries.lock();
        let e = &entries[&other];
        assert!(e.fetch.is_none() && e.adding().is_none());
        assert_eq!(e.error.as_deref(), Some("no file chosen"));
        // A stopped entry is not claimed.
        drop(entries);
        assert!(fetching.claim(&other).is_none());
    }
}
