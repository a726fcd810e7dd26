//! Adding a torrent: the .torrent kept in `torrents_dir`, the entry registered in torrents.toml and
//! the torrent added to the session; the hand-off of a one-shot command to the process that owns
//! torrents.toml; and the torrent a user names loaded (a file, a URL or a magnet link).

use super::*;

/// Keeps the .torrent with the managed ones: a copy in `torrents_dir` unless it is already there
/// (`src`, where it came from, if any, is used when the copy cannot be made).
pub fn keep_torrent_file(cfg: &Config, src: Option<&Path>, meta: &Metainfo) -> Result<PathBuf> {
    let dir = cfg.torrents_dir();
    let dest = dir.join(format!("{}.torrent", meta.info.name));
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if src.is_some_and(|s| same(s, &dest)) {
        return Ok(dest);
    }
    let fallback = |e: anyhow::Error| src.map(Path::to_path_buf).ok_or(e);
    match Metainfo::load(&dest) {
        Ok(existing) if existing.info_hash == meta.info_hash => Ok(dest),
        Ok(_) if src.is_some() => Ok(src.expect("checked").to_path_buf()),
        Ok(_) => {
            let other = dir.join(format!("{}.torrent", meta.info_hash.to_hex()));
            match crate::fsutil::write_atomic(&other, meta.as_bytes()) {
                Ok(()) => Ok(other),
                Err(e) => fallback(anyhow!("cannot write {}: {e}", other.display())),
            }
        }
        Err(_) => {
            let copied = std::fs::create_dir_all(&dir)
                .and_then(|_| crate::fsutil::write_atomic(&dest, meta.as_bytes()));
            match copied {
                Ok(()) => Ok(dest),
                Err(e) => fallback(anyhow!("cannot write {}: {e}", dest.display())),
            }
        }
    }
}

/// A torrent a one-shot command hands to the shell or daemon that owns torrents.toml (the control
/// socket's `add`), so that one process runs it. Paths are absolute.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    /// The .torrent file.
    pub torrent: PathBuf,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub seeding: bool,
    #[serde(default)]
    pub peers: Vec<std::net::SocketAddr>,
    #[serde(default)]
    pub trackers: Option<Vec<String>>,
    /// Each file's priority (`None`: every file wanted).
    #[serde(default)]
    pub files: Option<Vec<FilePriority>>,
    #[serde(default)]
    pub sequential: bool,
    /// The mutable link it was started from, to follow.
    #[serde(default)]
    pub follow: Option<crate::config::Following>,
}

impl Handoff {
    /// Registers and adds the torrent in `session` (the owner's side of the hand-off).
    pub async fn add_in(self, torrents: &Torrents, session: &Session) -> Result<TorrentHandle> {
        let meta = crate::source::load_file(&self.torrent)?;
        let adding = Adding {
            meta,
            src: Some(&self.torrent),
            data_dir: self.data_dir.clone(),
            paused: self.paused,
            seeding: self.seeding,
            register: true,
            peers: self.peers.clone(),
            trackers: self.trackers.clone(),
            files: self.files.clone(),
            sequential: self.sequential,
            sequential_from: 0,
            labels: None,
            complete_dir: None,
            follow: self.follow.clone(),
            watch: None,
            local_files: Vec::new(),
        };
        add(torrents, session, adding).await
    }
}

/// How [`add()`] adds a torrent.
pub struct Adding<'a> {
    pub meta: Metainfo,
    /// The .torrent file it came from, if it came from one.
    pub src: Option<&'a Path>,
    pub data_dir: PathBuf,
    pub paused: bool,
    /// Recorded as `seeding` rather than `downloading` (the data is said to be there).
    pub seeding: bool,
    /// Written in torrents.toml (a probe or a test may run a torrent without managing it).
    pub register: bool,
    pub peers: Vec<std::net::SocketAddr>,
    pub trackers: Option<Vec<String>>,
    /// Each file's priority (`None`: every file wanted); recorded in torrents.toml.
    pub files: Option<Vec<FilePriority>>,
    /// Fetch pieces in order, from piece `sequential_from` (see
    /// [`crate::engine::TorrentHandle::set_sequential_from`]); recorded in torrents.toml.
    pub sequential: bool,
    pub sequential_from: u32,
    /// Its labels (checked), recorded with the entry before the torrent is added, so whoever sees
    /// it added (a program run for it, a handler) sees them; `None` keeps those it had.
    pub labels: Option<Vec<String>>,
    /// Where the data moves once complete, when `data_dir` is the incomplete folder
    /// ([`crate::incomplete::placement`]).
    pub complete_dir: Option<PathBuf>,
    /// The mutable link (BEP 46) it was started from, recorded to be followed
    /// ([`crate::following`]); `None` keeps what the entry had.
    pub follow: Option<crate::config::Following>,
    /// The watch-folder entry it stands for (taken over from the version before it, when a
    /// followed link moves); `None` keeps what the entry had.
    pub watch: Option<crate::config::WatchSource>,
    /// Files on this machine its missing files may be taken from, besides the other torrents'
    /// (the previous version's of a followed link; see [`crate::engine::local_data`]).
    pub local_files: Vec<crate::engine::LocalFile>,
}

/// Registers the torrent (unless `register` is off) and adds it to `session`; a torrent the
/// session already runs is returned as it is. Both happen under the membership lock, so a sync of
/// the session with torrents.toml cannot start it in between (without this add's options).
pub async fn add(torrents: &Torrents, session: &Session, a: Adding<'_>) -> Result<TorrentHandle> {
    let _set = torrents.membership().await;
    if let Some(h) = session.get(&a.meta.info_hash) {
        return Ok(h);
    }
    // A torrent managed before keeps its own speed limits.
    let mut limits = crate::engine::TorrentLimits::default();
    let mut group = None;
    let mut file_paths = None;
    // While this process keeps a queue that may apply, a torrent waits its turn there (checked,
    // no peer contacted); the queue starts it at once if it has a place. A download may turn out
    // complete once checked, so while either queue is kept it waits for the check: the queue then
    // starts it, or holds it in the seeding queue, before it has told anyone of itself.
    let queued = a.register && !a.paused && {
        let settings = &torrents.config()?.settings;
        torrents.queue().holds_new(settings, !a.seeding)
    };
    if a.register {
        let cfg = torrents.config()?;
        let file = keep_torrent_file(&cfg, a.src, &a.meta)?;
        let state = if a.paused {
            "paused"
        } else if queued {
            QUEUED
        } else if a.seeding {
            "seeding"
        } else {
            "downloading"
        };
        let (meta, data_dir) = (&a.meta, &a.data_dir);
        let mut files = FileChoice {
            sequential: a.sequential,
            sequential_from: a.sequential_from,
            ..Default::default()
        };
        if let Some(p) = &a.files {
            files.record(p);
        }
        torrents.update(|cfg| {
            let origin = cfg
                .find(&meta.info_hash)
                .map_or(Origin::Added, |t| t.origin);
            cfg.upsert(ManagedTorrent {
                files: files.clone(),
                complete_dir: a.complete_dir.clone(),
                ..ManagedTorrent::new(
                    meta.info.name.clone(),
                    &meta.info_hash,
                    file.clone(),
                    data_dir.clone(),
                    state,
                    origin,
                )
            });
            if let Some(t) = cfg.find_mut(&meta.info_hash) {
                if let Some(l) = &a.labels {
                    t.labels = l.clone();
                }
                if let Some(f) = &a.follow {
                    t.follow = Some(f.clone());
                }
                if let Some(w) = &a.watch {
                    t.origin = Origin::Watch;
                    t.watch = Some(w.clone());
                }
                limits = t.limits.engine();
                group = t.group.clone();
                file_paths = t.files.paths(&meta.info);
            }
            Ok(())
        })?;
    }
    let opts = AddOptions {
        data_dir: a.data_dir,
        paused: a.paused || queued,
        peers: a.peers,
        trackers: a.trackers,
        super_seed: None,
        files: a.files,
        sequential: a.sequential,
        sequential_from: a.sequential_from,
        limits,
        group,
        file_paths,
        local_files: a.local_files,
    };
    Ok(session.add(a.meta, opts).await?)
}

/// How long a remote `torrent-add` of a magnet link waits for its metadata.
pub const REMOTE_METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The torrent a user names: a .torrent path, an `http(s)://` URL of one, or a magnet link whose
/// metadata `session` fetches (from the link's peers and trackers and the DHT) and saves in
/// `torrents_dir`. Returns the .torrent file too when there is one.
pub async fn load_source(
    source: &str,
    session: &Session,
    torrents_dir: PathBuf,
) -> Result<crate::source::Opened> {
    let s = source.trim();
    if crate::source::is_magnet_link(s) {
        let how = crate::source::Open {
            session,
            save_to: Some(torrents_dir),
            peers: Vec::new(),
            extra: None,
            timeout: REMOTE_METADATA_TIMEOUT,
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        return crate::source::open(s, Some(how), |_| {}).await;
    }
    // A URL's .torrent is kept as one sent in `metainfo` is (the caller keeps it).
    crate::source::open(s, None, |_| {}).await
}
