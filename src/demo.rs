//! `btorrent demo`: the whole program on loopback in one process, with no setup. It starts the
//! embedded tracker, makes a sample file and its .torrent, seeds it from one peer session and downloads
//! it with a second one through the tracker, shows the progress, checks the copy byte for byte and
//! prints the figures. Everything lives in a temporary folder that is removed at the end (or in
//! `--dir`, kept; the downloader's copy from an earlier run there is removed first).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::engine::{AddOptions, Session, SessionConfig, TorrentState};
use crate::metainfo::{create_torrent, CreateOptions};
use crate::tracker::{Tracker, TrackerConfig};
use crate::units::human_bytes;

/// A line of the report on stdout (a closed pipe is not an error).
macro_rules! say {
    ($($arg:tt)*) => {
        crate::terminal::print_line(&format!($($arg)*))
    };
}

/// What to run.
pub struct DemoOptions {
    /// Size of the sample file.
    pub size: u64,
    /// Where to keep the files (default: a temporary folder, removed afterwards).
    pub dir: Option<PathBuf>,
    /// Draw a progress bar.
    pub progress: bool,
}

/// Writes `size` pseudo-random bytes (fast xorshift, not for secrets) to `path`.
fn write_sample(path: &Path, size: u64, cancel: &AtomicBool) -> Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ size;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        if cancel.load(Ordering::Relaxed) {
            bail!(Interrupted);
        }
        for chunk in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let mut fa = std::io::BufReader::new(std::fs::File::open(a)?);
    let mut fb = std::io::BufReader::new(std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = fa.read(&mut ba)?;
        let mut nb = 0;
        while nb < na {
            let n = fb.read(&mut bb[nb..na])?;
            if n == 0 {
                return Ok(false);
            }
            nb += n;
        }
        if na == 0 {
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        if ba[..na] != bb[..na] {
            return Ok(false);
        }
    }
}

/// The demo was stopped by Ctrl-C or SIGTERM.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Runs the demo; prints as it goes and returns an error if anything fails. Ctrl-C or SIGTERM stops it
/// with [`Interrupted`], its temporary folder removed.
pub async fn run(opts: DemoOptions) -> Result<()> {
    let temp;
    let root = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("btorrent-demo-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    // Work on blocking threads (writing the sample, hashing it) holds a clone of `busy` and stops when
    // `cancel` is set; the folder is removed (with `temp`) once it has stopped.
    let cancel = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(());
    let result = tokio::select! {
        r = demo(&root, &opts, &cancel, &busy) => r,
        _ = crate::signals::stop_requested() => Err(Interrupted.into()),
    };
    if result.as_ref().is_err_and(|e| e.is::<Interrupted>()) {
        cancel.store(true, Ordering::Relaxed);
        let end = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&busy) > 1 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    result
}

async fn demo(
    root: &Path,
    opts: &DemoOptions,
    cancel: &Arc<AtomicBool>,
    busy: &Arc<()>,
) -> Result<()> {
    let root = root.to_path_buf();
    let seed_dir = root.join("seeder");
    let leech_dir = root.join("downloader");
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::create_dir_all(&leech_dir)?;
    // A copy left by an earlier demo in the same --dir would be found complete: nothing would move.
    match std::fs::remove_file(leech_dir.join("sample.bin")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tracker_addr = listener.local_addr()?;
    let tracker = Tracker::new(TrackerConfig {
        interval: Duration::from_secs(30),
        ..Default::default()
    });
    let (stop_tracker, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(tracker.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    let url = format!("http://{tracker_addr}/announce");
    say!("tracker      {url}");

    let sample = seed_dir.join("sample.bin");
    say!(
        "sample       {} ({})",
        sample.display(),
        human_bytes(opts.size)
    );
    let size = opts.size;
    let (s2, stop, held) = (sample.clone(), cancel.clone(), busy.clone());
    tokio::task::spawn_blocking(move || {
        let _held = held;
        write_sample(&s2, size, &stop)
    })
    .await??;
    let copts = CreateOptions {
        trackers: vec![url.clone()],
        cancel: Some(cancel.clone()),
        ..Default::default()
    };
    let t0 = Instant::now();
    let (s2, held) = (sample.clone(), busy.clone());
    let meta = tokio::task::spawn_blocking(move || {
        let _held = held;
        create_torrent(&s2, &copts, &|_, _| {})
    })
    .await??;
    let torrent_path = root.join("sample.bin.torrent");
    std::fs::write(&torrent_path, meta.as_bytes())?;
    say!(
        "torrent      {} ({} pieces of {}, hashed in {:.2} s)",
        meta.info_hash,
        meta.info.piece_count(),
        human_bytes(meta.info.piece_length),
        t0.elapsed().as_secs_f64()
    );

    let session_cfg = || SessionConfig {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        ..Default::default()
    };
    let seeder = Session::start(session_cfg()).await?;
    let downloader = Session::start(session_cfg()).await?;
    say!("seeder       peer on {}", seeder.listen_addr());
    say!("downloader   peer on {}", downloader.listen_addr());
    let seeding = seeder
        .add(
            meta.clone(),
            AddOptions {
                data_dir: seed_dir.clone(),
                ..Default::default()
            },
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seeding.stats().state != TorrentState::Seeding {
        if let TorrentState::Error(e) = seeding.stats().state {
            bail!("the seeder failed: {e}");
        }
        if Instant::now() > deadline {
            bail!("the seeder did not finish checking its data");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let start = Instant::now();
    let job = downloader
        .add(
            meta.clone(),
            AddOptions {
                data_dir: leech_dir.clone(),
                ..Default::default()
            },
        )
        .await?;
    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(meta.info.total_length);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "download     {bar:30} {percent:>3}% {binary_bytes_per_sec} {msg}",
            )
            .expect("valid template"),
        );
        b
    });
    let done = job.wait_complete();
    tokio::pin!(done);
    let result = loop {
        tokio::select! {
            r = &mut done => break r.map_err(anyhow::Error::from),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let s = job.stats();
                if let Some(b) = &bar {
                    b.set_position(s.bytes_verified);
                    b.set_message(format!("peers {}", s.peers));
                }
                if start.elapsed() > Duration::from_secs(600) {
                    break Err(anyhow::anyhow!("no progress for 10 minutes"));
                }
            }
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result.context("the download failed")?;
    let secs = start.elapsed().as_secs_f64();
    let stats = job.stats();
    let copy = leech_dir.join("sample.bin");
    let identical = same_content(&sample, &copy)?;
    say!(
        "downloaded   {} in {:.2} s ({}/s), every piece SHA-1 verified",
        human_bytes(meta.info.total_length),
        secs,
        human_bytes((meta.info.total_length as f64 / secs) as u64)
    );
    say!(
        "copy         {} {}",
        copy.display(),
        if identical {
            "is byte-identical to the original"
        } else {
            "DIFFERS from the original"
        }
    );
    let tstats = tracker.stats();
    say!(
        "tracker saw  {} torrent(s), {} seeder(s), {} leecher(s)",
        tstats.swarms,
        tstats.seeders,
        tstats.leechers
    );
    say!(
        "uploaded     {} by the seeder, {} received by the downloader",
        human_bytes(seeding.stats().uploaded),
        human_bytes(stats.downloaded)
    );

    downloader.shutdown(Duration::from_secs(3)).await;
    seeder.shutdown(Duration::from_secs(3)).await;
    let _ = stop_tracker.send(());
    let _ = tokio::time::timeout(Duration::from_secs(3), serving).await;
    if opts.dir.is_some() {
        say!("files kept in {}", root.display());
    }
    if !identical {
        bail!("the downloaded copy differs from the original");
    }
    Ok(())
}
