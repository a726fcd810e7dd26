//! What a user names a torrent by, turned into a parsed .torrent: a path to a .torrent file, an
//! `http://` or `https://` URL of one (fetched within [`MAX_TORRENT_DOWNLOAD`] bytes and
//! [`TORRENT_DOWNLOAD_TIMEOUT`]), or a magnet link (BEP 9) whose metadata is fetched from peers first
//! ([`btorrent_engine::metadata`]: the link's `x.pe` peers, its trackers, the peers given besides,
//! and any other source such as a DHT lookup).
//!
//! Every front end takes torrents through [`open`]: `start`/`seed` and `load`/`info` (so `b-start`,
//! `b-info`), the watch folder and remote control. A magnet's metadata, once checked against its
//! info-hash, is saved as `<name>.torrent` in `torrents_dir` when asked ([`Open::save_to`]), so the
//! torrent is then managed like any other; the file is what [`Opened::path`] gives. A URL's
//! .torrent is saved the same way. A link's `so`
//! (BEP 53) becomes [`Opened::files`]: the files it names wanted, the others skipped, which each
//! front end applies as it would its own file choice (an explicit one wins).
//!
//! A mutable link (BEP 46, `magnet:?xs=urn:btpk:<key>`) is first resolved in the DHT to the torrent
//! its key points at now ([`resolve_mutable`]), then opened as that torrent's magnet link.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::engine::metadata::FetchProgress;
use crate::engine::{FilePriority, Session};
use crate::metainfo::{Metainfo, MetainfoError};
use btorrent_proto::magnet::{is_magnet, Magnet};
use btorrent_proto::mutable_link::MutableLink;

/// How long a magnet's metadata is looked for before giving up.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(300);

/// A source opened.
#[derive(Debug, Clone)]
pub struct Opened {
    pub meta: Metainfo,
    /// The .torrent file: the one named, or the one saved for a magnet (`None`: a magnet not saved).
    pub path: Option<PathBuf>,
    /// It came from a magnet link.
    pub from_magnet: bool,
    /// The files a magnet link's `so` selects (wanted) and the others (skipped); `None`: no `so`.
    pub files: Option<Vec<FilePriority>>,
    /// It came from a mutable link (BEP 46): the link, and the publication it pointed at.
    pub mutable: Option<crate::config::Following>,
}

/// How to open a magnet (a path needs none of it).
pub struct Open<'a> {
    pub session: &'a Session,
    /// Save the fetched metadata as `<name>.torrent` in this folder.
    pub save_to: Option<PathBuf>,
    /// Peers to ask besides the link's own.
    pub peers: Vec<SocketAddr>,
    /// Other addresses as they are found; `None`: the session's DHT lookup, if it runs a DHT node.
    pub extra: Option<tokio::sync::mpsc::Receiver<SocketAddr>>,
    pub timeout: Duration,
    pub cancel: CancellationToken,
}

/// Whether `source` is a magnet link rather than a path.
pub fn is_magnet_link(source: &str) -> bool {
    is_magnet(source)
}

/// Largest .torrent fetched from a URL.
pub const MAX_TORRENT_DOWNLOAD: usize = 16 << 20;

/// How long the fetch of a .torrent from a URL may take.
pub const TORRENT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `source` is an `http://` or `https://` URL (of a .torrent) rather than a path.
pub fn is_url(source: &str) -> bool {
    let s = source.trim();
    ["http://", "https://"].iter().any(|scheme| {
        s.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    })
}

/// Fetches the .torrent at `url` and parses it; with `save_to`, saves it there as
/// `<name>.torrent` ([`save`]), which [`Opened::path`] then names.
pub async fn fetch_url(url: &str, save_to: Option<&Path>) -> anyhow::Result<Opened> {
    let url = url.trim();
    let body = crate::http_fetch::get(url, MAX_TORRENT_DOWNLOAD, TORRENT_DOWNLOAD_TIMEOUT).await?;
    let meta = Metainfo::from_bytes(&body).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let path = match save_to {
        Some(dir) => Some(save(dir, &meta)?),
        None => None,
    };
    Ok(Opened {
        meta,
        path,
        from_magnet: false,
        files: None,
        mutable: None,
    })
}

/// Reads a .torrent file, with the path in the error.
pub fn load_file(path: &Path) -> anyhow::Result<Metainfo> {
    Metainfo::load(path).map_err(|e| match e {
        e @ MetainfoError::Io { .. } => anyhow::anyhow!("{e}"),
        e => anyhow::anyhow!("{}: {e}", path.display()),
    })
}

/// Opens `source`: a .torrent path is read; a URL's .torrent is fetched ([`fetch_url`], saved
/// with `how`'s `save_to`); a magnet link's metadata is fetched (`how` says from where; `progress`
/// hears "fetching metadata from N peers"), checked and, with `save_to`, saved.
pub async fn open(
    source: &str,
    how: Option<Open<'_>>,
    progress: impl Fn(&FetchProgress) + Send,
) -> anyhow::Result<Opened> {
    if is_url(source) {
        let save_to = how.as_ref().and_then(|h| h.save_to.as_deref());
        return fetch_url(source, save_to).await;
    }
    if !is_magnet(source) {
        return Ok(Opened {
            meta: load_file(Path::new(source))?,
            path: Some(PathBuf::from(source)),
            from_magnet: false,
            files: None,
            mutable: None,
        });
    }
    let how = how.context("a magnet link needs the peer running to fetch its metadata")?;
    let resolved = resolve_mutable(how.session, source).await?;
    let mut magnet = Magnet::parse(resolved.as_ref().map_or(source, |r| r.magnet.as_str()))?;
    for p in &how.peers {
        let p = p.to_string();
        if !magnet.peers.contains(&p) {
            magnet.peers.push(p);
        }
    }
    // Without another source given, the session's DHT node looks the info-hash up (when it runs
    // one), again and again while the fetch lasts.
    let extra = how.extra.or_else(|| how.session.dht_seek(magnet.info_hash));
    let meta = how
        .session
        .fetch_metadata(&magnet, extra, Some(how.timeout), progress, how.cancel)
        .await
        .with_context(|| format!("magnet {}", magnet.info_hash))?;
    let files = magnet_files(&magnet, &meta)?;
    let path = match how.save_to {
        Some(dir) => Some(save(&dir, &meta)?),
        None => None,
    };
    Ok(Opened {
        meta,
        path,
        from_magnet: true,
        files,
        mutable: resolved.map(|r| crate::config::Following {
            link: source.trim().to_string(),
            seq: r.seq,
        }),
    })
}

/// A mutable link resolved: the magnet link of the torrent it points at now, with the link's own
/// parameters (`dn`, trackers, peers), and the publication's sequence number.
pub struct Resolution {
    pub magnet: String,
    pub info_hash: crate::types::InfoHash,
    pub seq: i64,
}

/// What the mutable link (BEP 46) `source` points at now; `None` when `source` is not a mutable
/// link.
pub async fn resolve_mutable(
    session: &Session,
    source: &str,
) -> anyhow::Result<Option<Resolution>> {
    let Some(link) = MutableLink::parse(source)? else {
        return Ok(None);
    };
    let key = hex::encode(link.public_key);
    let found = session
        .resolve_mutable(&link)
        .await
        .with_context(|| format!("mutable link {key}"))?;
    let Some(r) = found else {
        anyhow::bail!("mutable link {key}: no torrent published under this key found in the DHT");
    };
    tracing::info!(key, info_hash = %r.info_hash, seq = r.seq, "mutable link resolved");
    Ok(Some(Resolution {
        magnet: MutableLink::magnet_for(source, &r.info_hash),
        info_hash: r.info_hash,
        seq: r.seq,
    }))
}

/// The file choice a magnet link's `so` makes for its torrent `meta`: the files it names wanted,
/// the others skipped (`None`: no `so`, every file).
pub fn magnet_files(magnet: &Magnet, meta: &Metainfo) -> anyhow::Result<Option<Vec<FilePriority>>> {
    let picked = magnet
        .selected(meta.info.files.len())
        .with_context(|| format!("magnet {}", magnet.info_hash))?;
    let wanted = |&p: &bool| {
        if p {
            FilePriority::Normal
        } else {
            FilePriority::Skip
        }
    };
    Ok(picked.map(|picked| picked.iter().map(wanted).collect()))
}

/// Saves fetched metadata as `<name>.torrent` in `dir` (`<name>-<hash prefix>.torrent` when a
/// different torrent already has that name) and returns the file.
pub fn save(dir: &Path, meta: &Metainfo) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // A safe file name: the info dictionary's parser refuses separators, `..` and control characters.
    let name = &meta.info.name;
    let mut file = dir.join(format!("{name}.torrent"));
    if Metainfo::load(&file).is_ok_and(|m| m.info_hash != meta.info_hash) {
        let short = &meta.info_hash.to_hex()[..8];
        file = dir.join(format!("{name}-{short}.torrent"));
    }
    crate::fsutil::write_atomic(&file, meta.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}
