//! One magnet link being fetched, as [`super::Fetching`] keeps it: its record, its fetch's
//! progress and state, and what `torrent-get` shows of it until the metadata is in (no size,
//! `metadataPercentComplete` rising, the link's name, trackers and web seeds).

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::record::Record;
use crate::engine::metadata::FetchProgress;
use crate::rpc::torrents::labels_arg;
use btorrent_proto::magnet::Magnet;

/// One magnet link added and waiting for its metadata.
pub(super) struct Entry {
    pub(super) id: i64,
    pub(super) magnet: Magnet,
    pub(super) record: Record,
    /// Where `record` is kept.
    pub(super) file: PathBuf,
    /// The current fetch's progress, as the fetch reports it.
    pub(super) progress: Arc<Mutex<FetchProgress>>,
    /// The running fetch (`None`: stopped).
    pub(super) fetch: Option<CancellationToken>,
    /// Why it stopped by itself.
    pub(super) error: Option<String>,
    /// Cancelled once the torrent fetched for it is added or fails to be (`None`: not begun).
    pub(super) adding: Option<CancellationToken>,
}

impl Entry {
    /// The token of the add under way, if one is.
    pub(super) fn adding(&self) -> Option<&CancellationToken> {
        self.adding.as_ref().filter(|t| !t.is_cancelled())
    }
}

/// The name a magnet is shown by until its metadata names it: its `dn`, else its info-hash.
pub(super) fn shown_name(magnet: &Magnet) -> String {
    magnet
        .name
        .clone()
        .unwrap_or_else(|| magnet.info_hash.to_hex())
}

impl Entry {
    /// Records whether the user paused it (kept for the next run; a failure to write is logged:
    /// the running daemon already acts on it).
    pub(super) fn set_paused(&mut self, paused: bool) {
        if self.record.paused() == paused {
            return;
        }
        self.record.request.insert("paused".into(), json!(paused));
        if let Err(e) = self.record.save(&self.file) {
            tracing::warn!("magnet {}: {e:#}", self.magnet.info_hash);
        }
    }

    /// Transmission's status: 4 (downloading) while fetching, 0 (stopped) otherwise.
    pub(super) fn status(&self) -> i64 {
        if self.fetch.is_some() {
            4
        } else {
            0
        }
    }

    pub(super) fn field(&self, f: &str, queue_position: i64) -> Option<Value> {
        let p = *self.progress.lock();
        let fetching = self.fetch.is_some();
        let request = &self.record.request;
        // A field asked by an earlier spelling is read as its name now (and answered as asked).
        let f = crate::rpc::spelled_now(f);
        let v = match f {
            "id" => json!(self.id),
            "hashString" => json!(self.magnet.info_hash.to_hex()),
            "name" => json!(shown_name(&self.magnet)),
            "status" => json!(self.status()),
            "metadataPercentComplete" => json!(if p.pieces_total == 0 {
                0.0
            } else {
                p.pieces_have as f64 / p.pieces_total as f64
            }),
            // Nothing of the data is known: no size, nothing left that can be counted.
            "totalSize"
            | "sizeWhenDone"
            | "leftUntilDone"
            | "desiredAvailable"
            | "haveValid"
            | "haveUnchecked"
            | "corruptEver"
            | "rateDownload"
            | "rateUpload"
            | "downloadedEver"
            | "uploadedEver"
            | "webseedsSendingToUs"
            | "pieceCount"
            | "pieceSize"
            | "peersGettingFromUs"
            | "doneDate"
            | "activityDate"
            | "startDate"
            | "editDate"
            | "manualAnnounceTime"
            | "secondsDownloading"
            | "secondsSeeding"
            | "dateCreated"
            | "downloadLimit"
            | "uploadLimit" => json!(0),
            "percentDone" | "recheckProgress" | "percentComplete" => json!(0.0),
            "file-count" | "fileCount" => json!(0),
            "primary-mime-type" => json!(""),
            // As set since, else as added (the session's default is applied when it is added).
            "sequential_download" | "sequential_download_from_piece" => {
                let on = f == "sequential_download";
                let key = if on {
                    crate::rpc::torrents::SEQUENTIAL
                } else {
                    crate::rpc::torrents::SEQUENTIAL_FROM
                };
                let asked = |m: &serde_json::Map<String, Value>| {
                    crate::rpc::earlier_spellings(m)
                        .get(key)
                        .filter(|v| !v.is_null())
                        .cloned()
                };
                asked(&self.record.set)
                    .or_else(|| asked(&self.record.request))
                    .unwrap_or_else(|| if on { json!(false) } else { json!(0) })
            }
            "uploadRatio" => json!(-1.0),
            // Transmission's "not available".
            "eta" | "etaIdle" => json!(-1),
            "error" => json!(if self.error.is_some() { 3 } else { 0 }),
            "errorString" => json!(self.error.clone().unwrap_or_default()),
            "isStalled" => json!(fetching && p.peers == 0),
            "isPrivate" | "isFinished" | "downloadLimited" | "uploadLimited" => json!(false),
            "honorsSessionLimits" => json!(true),
            "peersConnected" | "peersSendingToUs" => json!(if fetching { p.peers } else { 0 }),
            "peer-limit" | "maxConnectedPeers" => {
                json!(crate::engine::SessionConfig::default().max_peers_per_torrent)
            }
            "peersFrom" => crate::rpc::fields::peers_from(&[]),
            "peers" | "files" | "fileStats" | "wanted" | "priorities" | "trackerStats" => {
                json!([])
            }
            "pieces" | "comment" | "creator" | "torrentFile" => json!(""),
            "trackerList" => {
                let tiers: Vec<Vec<String>> = self
                    .magnet
                    .trackers
                    .iter()
                    .map(|u| vec![u.clone()])
                    .collect();
                json!(crate::rpc::trackers::list_text(&tiers))
            }
            "trackers" => Value::Array(
                self.magnet
                    .trackers
                    .iter()
                    .enumerate()
                    .map(|(i, u)| {
                        let site = super::super::fields::sitename(u);
                        json!({"announce": u, "id": i, "tier": i, "scrape": "", "sitename": site})
                    })
                    .collect(),
            ),
            "webseeds" => json!(self.magnet.web_seeds),
            // None asked yet: no metadata, nothing to ask for.
            "webseeds_ex" => Value::Array(
                self.magnet
                    .web_seeds
                    .iter()
                    .map(|u| super::super::fields::webseed_ex(u, false, 0))
                    .collect(),
            ),
            "magnetLink" => json!(self.record.link),
            "downloadDir" => request.get("download-dir").cloned().unwrap_or(json!("")),
            "addedDate" => json!(self.record.added),
            "queuePosition" => json!(queue_position),
            crate::rpc::BANDWIDTH_PRIORITY => {
                let set = crate::rpc::priority_arg(&self.record.set).ok().flatten();
                let asked = set.or_else(|| crate::rpc::priority_arg(request).ok().flatten());
                json!(crate::rpc::priority_number(asked.unwrap_or_default()))
            }
            crate::rpc::groups::GROUP => {
                let set = crate::rpc::groups::torrent_arg(&self.record.set)
                    .ok()
                    .flatten();
                json!(set.flatten().unwrap_or_default())
            }
            "labels" => {
                let set = labels_arg(&self.record.set).ok().flatten();
                json!(set
                    .or_else(|| labels_arg(request).ok().flatten())
                    .unwrap_or_default())
            }
            "seedRatioLimit" | "seedRatioMode" | "seedIdleLimit" | "seedIdleMode" => {
                let goals = crate::rpc::goals::torrent_set(&self.record.set, Default::default());
                crate::rpc::goals::goals_field(f, goals.unwrap_or_default(), !fetching)?
            }
            _ => return None,
        };
        Some(v)
    }
}
