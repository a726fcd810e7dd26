//! Blocklists, Transmission's way: with `blocklist = true`, every list in the `blocklists/` folder
//! beside torrents.toml (plain text or gzip, in the formats [`crate::engine::ip_filter`] reads) is
//! put in force as the session's IP filter: no peer connection is made to or taken from the
//! addresses they name. `blocklist_url` names a list to download: [`update`] (the RPC's
//! `blocklist-update`, `b-blocklist --update`) fetches it into `blocklists/` and puts the lists in
//! force again. A download that holds no rule is refused and the lists in force stay.
//!
//! The filter is applied when the session starts ([`apply`]), when `blocklist` is switched, and
//! after an update; a list dropped into the folder or removed from it by hand, and a hand edit of
//! the switch, are applied while the shell or daemon runs ([`crate::live_settings`], by [`source`]).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

use crate::config::Config;
use crate::engine::ip_filter::{IpFilter, Parsed};
use crate::engine::Session;

/// The file a downloaded list is kept in, in [`dir`].
pub const DOWNLOADED: &str = "downloaded.txt";
/// Most bytes a list may take, downloaded (compressed) or read (decompressed): the largest public
/// lists are some 10 MiB of text.
pub const MAX_LIST_BYTES: usize = 256 << 20;
/// How long a download may take.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A `blocklist_url` as given: trimmed, `None` when empty; anything but an http:// or https:// URL
/// is refused with the reason.
pub fn checked_url(u: &str) -> Result<Option<String>, String> {
    let u = u.trim();
    if u.is_empty() {
        return Ok(None);
    }
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return Err(format!(
            "a blocklist URL must be http:// or https://, not {u:?}"
        ));
    }
    Ok(Some(u.to_string()))
}

/// The folder of the lists: `blocklists/` beside torrents.toml.
pub fn dir(cfg: &Config) -> PathBuf {
    cfg.resolve(Path::new("blocklists"))
}

/// One list as read.
#[derive(Debug, Clone)]
pub struct List {
    pub file: PathBuf,
    pub parsed: Parsed,
}

/// The list files of `dir` (hidden ones left out), sorted; none when it does not exist.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

/// What the filter the settings ask for is made of, cheaply told apart: off, or on with each list
/// file's name, size and time of change. When it changes, [`load`] would give another filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Off,
    On(Vec<(PathBuf, u64, Option<std::time::SystemTime>)>),
}

/// The [`Source`] of the filter `cfg` asks for now.
pub fn source(cfg: &Config) -> Source {
    if !cfg.settings.blocklist {
        return Source::Off;
    }
    let files = list_files(&dir(cfg)).unwrap_or_default();
    Source::On(
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let len = meta.as_ref().map_or(0, |m| m.len());
                (f, len, meta.and_then(|m| m.modified().ok()))
            })
            .collect(),
    )
}

/// The lists of `dir`, each read; a file that cannot be read is an error naming it.
pub fn read_lists(dir: &Path) -> Result<Vec<List>> {
    list_files(dir)?
        .into_iter()
        .map(|file| {
            let bytes = read_bounded(&file)?;
            let text = text_of(&bytes).with_context(|| format!("{}", file.display()))?;
            Ok(List {
                parsed: IpFilter::parse(&text),
                file,
            })
        })
        .collect()
}

fn read_bounded(file: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_LIST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", file.display()))?;
    if bytes.len() > MAX_LIST_BYTES {
        bail!("{} is larger than {MAX_LIST_BYTES} bytes", file.display());
    }
    Ok(bytes)
}

/// A list's text: gunzipped when it is gzip, at most [`MAX_LIST_BYTES`]; other bytes than UTF-8
/// (names in Latin-1) are replaced, as only the addresses matter.
pub fn text_of(bytes: &[u8]) -> Result<String> {
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_LIST_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .context("not a readable gzip file")?;
        if out.len() > MAX_LIST_BYTES {
            bail!("larger than {MAX_LIST_BYTES} bytes once decompressed");
        }
        out
    } else if bytes.starts_with(b"PK\x03\x04") {
        bail!("a zip archive: give the list itself, or gzip it");
    } else {
        bytes.to_vec()
    };
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// The filter the settings ask for: the lists of [`dir`] together while `blocklist` is on, else
/// an empty one. Lines that are not rules are logged, once per list.
pub fn load(cfg: &Config) -> Result<IpFilter> {
    if !cfg.settings.blocklist {
        return Ok(IpFilter::default());
    }
    let mut filter = IpFilter::default();
    for l in read_lists(&dir(cfg))? {
        if let Some((n, line)) = &l.parsed.first_bad {
            tracing::warn!(
                "{}: {} lines are not address ranges and were skipped (the first, line {n}: {line:?})",
                l.file.display(),
                l.parsed.bad_lines
            );
        }
        filter = filter.union(&l.parsed.filter);
    }
    Ok(filter)
}

/// Puts the filter the settings ask for in force in `session`; returns its size (ranges).
pub fn apply(session: &Session, cfg: &Config) -> Result<usize> {
    let filter = load(cfg)?;
    let size = filter.len();
    let closed = session.set_ip_filter(filter);
    if size > 0 {
        tracing::info!("blocklist: {size} address ranges in force");
    }
    if closed > 0 {
        tracing::info!("blocklist: let go of {closed} connected peers it blocks");
    }
    Ok(size)
}

/// Downloads `blocklist_url` into [`dir`] ([`DOWNLOADED`]) and, while `blocklist` is on, puts the
/// lists in force in `session`; returns the ranges the download holds.
pub async fn update(cfg: &Config, session: Option<&Session>) -> Result<usize> {
    let url = checked_url(cfg.settings.blocklist_url.as_deref().unwrap_or(""))
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| anyhow!("no blocklist_url is set: nothing to download"))?;
    let url = url.as_str();
    let bytes = crate::http_fetch::get(url, MAX_LIST_BYTES, DOWNLOAD_TIMEOUT).await?;
    let text = text_of(&bytes).with_context(|| url.to_string())?;
    let parsed = IpFilter::parse(&text);
    if parsed.rules == 0 {
        bail!(
            "{url} holds no address range ({} lines that are not one): the lists in force stay",
            parsed.bad_lines
        );
    }
    let dir = dir(cfg);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join(DOWNLOADED);
    crate::fsutil::write_atomic(&file, text.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    tracing::info!(
        "blocklist: {} address ranges from {url} in {}",
        parsed.filter.len(),
        file.display()
    );
    if let Some(s) = session {
        apply(s, cfg)?;
    }
    Ok(parsed.filter.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn lists_are_read_plain_or_gzipped_and_bad_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "x:10.0.0.0-10.0.0.255\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"# gz\n192.168.0.0/16\njunk\n").unwrap();
        std::fs::write(dir.path().join("b.p2p.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join(".hidden"), "1.1.1.1\n").unwrap();
        let lists = read_lists(dir.path()).unwrap();
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[1].parsed.rules, 1);
        assert_eq!(lists[1].parsed.bad_lines, 1);
        let all = lists[0].parsed.filter.union(&lists[1].parsed.filter);
        assert!(all.blocks("10.0.0.9".parse().unwrap()));
        assert!(all.blocks("192.168.3.4".parse().unwrap()));
        assert!(!all.blocks("1.1.1.1".parse().unwrap()));
        assert!(read_lists(&dir.path().join("none")).unwrap().is_empty());
        let e = text_of(b"PK\x03\x04rest").unwrap_err();
        assert!(format!("{e}").contains("zip"), "{e}");
        let e = text_of(&[0x1f, 0x8b, 0, 1, 2]).unwrap_err();
        assert!(format!("{e:#}").contains("gzip"), "{e:#}");
    }
}
