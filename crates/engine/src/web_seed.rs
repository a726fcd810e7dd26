//! Web seeds (BEP 19, a torrent's `url-list`): an HTTP or HTTPS server that holds the torrent's
//! files (nginx serving the folder, say) is a source of pieces, like a peer that has them all.
//!
//! One task per URL (`spawn_for`, started with the torrent's announces and ended with its run token
//! (paused, stopped, removed) or once the torrent has every piece) asks the [`crate::picker`] for
//! blocks as a peer would (its own [`PeerKey`], every piece counted in the availability while it
//! runs), up to [`BATCH_BYTES`] a round, [`IN_FLIGHT`] rounds at once, in runs of adjacent pieces
//! (`Picker::pick_run`: a round starts at the rarest piece and goes on through the pieces after
//! it, so it is one request, not one per piece); fetches each run of adjacent blocks with `Range`
//! requests, one per file the run crosses (padding files are zeros, never asked for); and hands the
//! blocks to
//! the picker, whose complete pieces are hashed and written like any peer's (`verify`). The
//! download limits apply, and each of its connections counts as one of the session's peer sockets
//! ([`crate::fd_budget`]): the first held while the task lives, a second round only when another
//! is free.
//!
//! The file's address: for a single-file torrent the URL itself, unless it ends with `/` (then the
//! file's name is added); for a folder, the URL, `/`, then the torrent's name and the file's path,
//! each part percent-encoded.
//!
//! A server that answers a part of a file with other bytes (the whole file: it takes no `Range`
//! requests; or another range) is dropped at once. One that fails (an error status, an answer of the wrong length or range, no
//! answer within [`REQUEST_TIMEOUT`]) gives that round's blocks back and is asked again after [`RETRY_AFTER`], doubled each
//! time; after [`MAX_FAILURES`] failures in a row, or [`MAX_BAD_PIECES`] pieces that fail their hash
//! check, it is dropped for this run (a warning says why). Blocks it holds go back to the picker
//! whenever the task ends (`Asked` does it on drop).
//!
//! What each seed is doing (sending, its rate, its last failure, dropped) is kept in
//! `web_seed/status.rs` and shown as a [`WebSeedStatus`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use super::picker::{BlockResult, PeerKey, PieceState};
use super::torrent::Torrent;
use btorrent_proto::metainfo::FileEntry;
use btorrent_proto::wire::{Bitfield, BlockRef};
use status::{brief, Sending};

mod status;
pub use status::WebSeedStatus;
pub(crate) use status::WebSeedView;

/// Bytes asked for in one round.
pub const BATCH_BYTES: usize = 4 << 20;
/// Rounds in flight at once per server: the next one's request goes out while the last one's
/// bytes come in, so a server far away is not idle for a round trip between rounds.
pub const IN_FLIGHT: usize = 2;
/// The longest a request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The first wait after a failure (doubled each time).
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Failures in a row before the server is dropped.
pub const MAX_FAILURES: u32 = 5;
/// Pieces from it that failed their hash check before the server is dropped.
pub const MAX_BAD_PIECES: u32 = 3;
/// How often a task with nothing to ask looks again: soon while the torrent downloads (the picker
/// hands out nothing while its piece buffers wait to be hashed and written, a matter of
/// milliseconds), seldom when it has nothing to download.
const BUSY_LOOK: Duration = Duration::from_millis(20);
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// Starts a task for each HTTP(S) web seed of `t` (its [`WebSeedView`]s), until `run` is
/// cancelled.
pub(crate) fn spawn_for(t: &Arc<Torrent>, run: CancellationToken) {
    for view in &t.web_seeds {
        tokio::spawn(run_seed(t.clone(), view.clone(), run.clone()));
    }
}

/// The web seed's place in the picker: its key, its availability and the blocks it was given;
/// given back when dropped, however the task ends.
struct Asked {
    t: Arc<Torrent>,
    key: PeerKey,
    all: Bitfield,
    blocks: Vec<BlockRef>,
}

impl Asked {
    fn new(t: &Arc<Torrent>) -> Asked {
        let all = Bitfield::full(t.meta.info.piece_count());
        let mut c = t.core.lock();
        let key = c.next_key;
        c.next_key += 1;
        c.picker.add_availability(&all);
        drop(c);
        Asked {
            t: t.clone(),
            key,
            all,
            blocks: Vec::new(),
        }
    }

    fn give_back(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        let mut c = self.t.core.lock();
        for b in self.blocks.drain(..) {
            c.picker.release(self.key, b);
        }
    }
}

impl Drop for Asked {
    fn drop(&mut self) {
        self.give_back();
        self.t.core.lock().picker.remove_availability(&self.all);
    }
}

/// The server answers `Range` requests with other bytes than asked (the whole file, or another
/// range): no retry will change that.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unusable(String);

/// A round's outcome: its blocks, the bytes fetched or why not, and the extra socket it held.
type RoundDone = (
    Vec<BlockRef>,
    anyhow::Result<Vec<u8>>,
    Option<tokio::sync::OwnedSemaphorePermit>,
);

async fn run_seed(t: Arc<Torrent>, view: Arc<WebSeedView>, run: CancellationToken) {
    use futures::stream::{FuturesUnordered, StreamExt};
    let url = view.url.clone();
    let shown = crate::announce::shown_url(&url);
    view.clear_problem();
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("btorrent/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(web_seed = %shown, "web seed not used: {e}");
            view.dropped(format!("not used: {e}"));
            return;
        }
    };
    // Its first connection is one of the session's budget of peer sockets, held while the task
    // lives (it ends once the torrent has every piece); a second round in flight holds another
    // while it lasts, when one is free.
    let _socket = tokio::select! {
        _ = run.cancelled() => return,
        p = t.ctx.connections.take() => match p {
            Ok(p) => p,
            Err(_) => return,
        },
    };
    let mut asked = Asked::new(&t);
    let blocks_per_round = (BATCH_BYTES / btorrent_proto::wire::BLOCK_SIZE as usize).max(1);
    let (mut failures, mut bad_pieces) = (0u32, 0u32);
    let mut wait = RETRY_AFTER;
    // No new round before this (after a failure).
    let mut retry_at: Option<tokio::time::Instant> = None;
    // Pieces it completed, waiting for their hash check.
    let mut delivered: Vec<u32> = Vec::new();
    let mut rounds = FuturesUnordered::new();
    let mut sending: Option<Sending> = None;
    loop {
        {
            let c = t.core.lock();
            delivered.retain(|&i| match c.picker.state(i) {
                PieceState::Hashing => true,
                PieceState::Have => false,
                _ => {
                    bad_pieces += 1;
                    false
                }
            });
        }
        if bad_pieces >= MAX_BAD_PIECES {
            let why = format!("{bad_pieces} of its pieces failed the hash check");
            tracing::warn!(web_seed = %shown, "web seed dropped: {why}");
            view.dropped(why);
            return;
        }
        // Start rounds while there is room: Some(started any, or had one going), or None when the
        // torrent downloads nothing now.
        let mut downloading = Some(true);
        while rounds.len() < IN_FLIGHT
            && retry_at.is_none_or(|at| tokio::time::Instant::now() >= at)
        {
            retry_at = None;
            let extra = if rounds.is_empty() {
                None
            } else {
                match t.ctx.connections.try_take() {
                    Ok(p) => Some(p),
                    Err(_) => break,
                }
            };
            let mut blocks = Vec::new();
            {
                let mut c = t.core.lock();
                if c.picker.is_complete() && delivered.is_empty() && rounds.is_empty() {
                    // Nothing will ever be asked of it in this run.
                    return;
                }
                if !c.lifecycle.transfers() || c.picker.is_done() {
                    downloading = None;
                    break;
                }
                let outstanding = asked.blocks.len();
                // Runs of adjacent pieces: one range request each, not one per piece.
                c.picker.pick_run(
                    asked.key,
                    &asked.all,
                    outstanding,
                    blocks_per_round,
                    &mut blocks,
                );
            }
            if blocks.is_empty() {
                downloading = Some(!rounds.is_empty());
                break;
            }
            asked.blocks.extend_from_slice(&blocks);
            let (client, t2, url) = (client.clone(), t.clone(), url.clone());
            rounds.push(async move {
                let r = fetch_blocks(&client, &t2, &url, &blocks).await;
                (blocks, r, extra)
            });
        }
        if rounds.is_empty() {
            sending = None;
        } else if sending.is_none() {
            sending = Some(Sending::new(&view));
        }
        if rounds.is_empty() {
            let look = match (downloading, retry_at) {
                (_, Some(at)) => at.saturating_duration_since(tokio::time::Instant::now()),
                (Some(_), None) => BUSY_LOOK,
                (None, None) => IDLE_LOOK,
            };
            tokio::select! {
                _ = run.cancelled() => return,
                _ = tokio::time::sleep(look) => continue,
            }
        }
        let (blocks, got, _extra): RoundDone = tokio::select! {
            _ = run.cancelled() => return,
            Some(done) = rounds.next() => done,
        };
        // The round's blocks are no longer out: delivered below, or given back.
        asked.blocks.retain(|b| !blocks.contains(b));
        match got {
            Ok(data) => {
                failures = 0;
                wait = RETRY_AFTER;
                view.clear_problem();
                view.add_downloaded(data.len() as u64);
                delivered.extend(deliver(&t, asked.key, &blocks, &data));
                tokio::select! {
                    _ = run.cancelled() => return,
                    _ = t.limits.download_turn(&t.ctx, data.len() as u64) => {}
                }
            }
            Err(e) => {
                // The round's blocks go back to the picker (no longer in `asked`, which gives
                // back only those of rounds still out when the task ends).
                {
                    let mut c = t.core.lock();
                    for b in &blocks {
                        c.picker.release(asked.key, *b);
                    }
                }
                if e.is::<Unusable>() {
                    tracing::warn!(web_seed = %shown, "web seed dropped: {e:#}");
                    view.dropped(brief(&e));
                    return;
                }
                failures += 1;
                if failures >= MAX_FAILURES {
                    tracing::warn!(web_seed = %shown, "web seed dropped after {failures} failures; the last: {e:#}");
                    view.dropped(format!("{failures} failures; the last: {}", brief(&e)));
                    return;
                }
                tracing::info!(web_seed = %shown, "web seed failed ({e:#}); asked again in {} s", wait.as_secs());
                view.failed(brief(&e));
                retry_at = Some(tokio::time::Instant::now() + wait);
                wait *= 2;
            }
        }
    }
}

/// Gives the picker `blocks`, whose bytes are `data` one after another; returns the pieces that
/// became complete (sent to be hashed).
fn deliver(t: &Arc<Torrent>, key: PeerKey, blocks: &[BlockRef], data: &[u8]) -> Vec<u32> {
    use std::sync::atomic::Ordering;
    t.downloaded.fetch_add(data.len() as u64, Ordering::Relaxed);
    let mut complete = Vec::new();
    let mut at = 0usize;
    let mut c = t.core.lock();
    for b in blocks {
        let bytes = &data[at..at + b.length as usize];
        at += b.length as usize;
        match c.picker.on_block(key, *b, bytes) {
            BlockResult::Stored { cancel } => cancel_at(&c, &cancel, *b),
            BlockResult::Complete {
                index,
                buf,
                contributors,
                cancel,
            } => {
                cancel_at(&c, &cancel, *b);
                complete.push((index, buf, contributors));
            }
            BlockResult::NotNeeded => {}
        }
    }
    drop(c);
    complete
        .into_iter()
        .map(|(index, buf, contributors)| {
            super::verify::spawn(t.clone(), index, buf, contributors);
            index
        })
        .collect()
}

/// Tells the peers that also asked for `b` (endgame) to cancel it.
fn cancel_at(c: &super::torrent::Core, peers: &[PeerKey], b: BlockRef) {
    for k in peers {
        if let Some(p) = c.peers.get(k) {
            p.cancel(b);
        }
    }
}

/// The bytes of `blocks`, one after another: each run of adjacent blocks asked in one range per
/// file it crosses.
async fn fetch_blocks(
    client: &reqwest::Client,
    t: &Torrent,
    url: &str,
    blocks: &[BlockRef],
) -> anyhow::Result<Vec<u8>> {
    let info = &t.meta.info;
    let total: usize = blocks.iter().map(|b| b.length as usize).sum();
    let mut out = Vec::with_capacity(total);
    // The picker hands out blocks in piece order within each piece; runs are cut wherever the
    // next block does not follow on.
    let mut i = 0;
    while i < blocks.len() {
        let start = blocks[i].index as u64 * info.piece_length + blocks[i].begin as u64;
        let mut end = start + blocks[i].length as u64;
        let mut j = i + 1;
        while j < blocks.len() {
            let s = blocks[j].index as u64 * info.piece_length + blocks[j].begin as u64;
            if s != end {
                break;
            }
            end = s + blocks[j].length as u64;
            j += 1;
        }
        for f in info
            .files
            .iter()
            .filter(|f| f.offset < end && f.offset + f.length > start)
        {
            let from = start.max(f.offset) - f.offset;
            let to = end.min(f.offset + f.length) - f.offset;
            if f.padding {
                out.resize(out.len() + (to - from) as usize, 0);
            } else {
                let u = file_url(url, info.multi_file, f);
                fetch_range(client, &u, from, to, f.length, &mut out)
                    .await
                    .with_context(|| crate::announce::shown_url(&u).to_string())?;
            }
        }
        i = j;
    }
    if out.len() != total {
        bail!("{} bytes where {total} were asked", out.len());
    }
    Ok(out)
}

/// Appends bytes `[from, to)` of the file at `url` (`length` bytes long) to `out`.
async fn fetch_range(
    client: &reqwest::Client,
    url: &str,
    from: u64,
    to: u64,
    length: u64,
    out: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let want = (to - from) as usize;
    let resp = client
        .get(url)
        .header(reqwest::header::RANGE, format!("bytes={from}-{}", to - 1))
        .send()
        .await?;
    let status = resp.status();
    // A server that ignores `Range` sends the whole file: usable only when that is what was asked.
    let whole = status == reqwest::StatusCode::OK && from == 0 && to == length;
    if status == reqwest::StatusCode::OK && !whole {
        let why = "it does not answer Range requests (it sent a whole file for a part)";
        return Err(Unusable(why.into()).into());
    }
    if status != reqwest::StatusCode::PARTIAL_CONTENT && !whole {
        bail!("HTTP {status} for bytes {from}-{}", to - 1);
    }
    // A 206 says which bytes it holds: they must be the ones asked for.
    if let Some(range) = resp.headers().get(reqwest::header::CONTENT_RANGE) {
        let asked = format!("bytes {from}-{}/", to - 1);
        if !range.to_str().is_ok_and(|r| r.starts_with(&asked)) {
            return Err(Unusable(format!("it sent {range:?} for a request of {asked}")).into());
        }
    }
    let before = out.len();
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await? {
        if out.len() - before + chunk.len() > want {
            bail!("more than the {want} bytes asked");
        }
        out.extend_from_slice(&chunk);
    }
    if out.len() - before != want {
        bail!("{} bytes where {want} were asked", out.len() - before);
    }
    Ok(())
}

/// Where a file of the torrent is on the web seed `base` (see the module docs).
fn file_url(base: &str, multi_file: bool, f: &FileEntry) -> String {
    use percent_encoding::utf8_percent_encode;
    if !multi_file && !base.ends_with('/') {
        return base.to_string();
    }
    let mut u = base.trim_end_matches('/').to_string();
    for part in f.path.iter() {
        u.push('/');
        u.extend(utf8_percent_encode(
            &part.to_string_lossy(),
            crate::announce::UNRESERVED,
        ));
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(path: &str) -> FileEntry {
        FileEntry {
            path: PathBuf::from(path),
            length: 1,
            offset: 0,
            padding: false,
            executable: false,
            symlink: None,
            mtime: None,
        }
    }

    #[test]
    fn file_addresses_follow_bep_19() {
        let one = entry("song one.ogg");
        assert_eq!(
            file_url("http://h/x/song.ogg", false, &one),
            "http://h/x/song.ogg"
        );
        assert_eq!(
            file_url("http://h/x/", false, &one),
            "http://h/x/song%20one.ogg"
        );
        let nested = entry("album/disc #1/a&b.ogg");
        assert_eq!(
            file_url("https://h/pub", true, &nested),
            "https://h/pub/album/disc%20%231/a%26b.ogg"
        );
        assert_eq!(
            file_url("https://h/pub/", true, &nested),
            "https://h/pub/album/disc%20%231/a%26b.ogg"
        );
    }
}
