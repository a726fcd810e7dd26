//! Helper for `benches/recheck.sh`: adds a torrent whose data is all on disk to a fresh session without
//! resume data, so every piece is hash-checked, and prints the seconds from `add` to complete.
//!
//!     recheck_bench <file.torrent> <data_dir>

use std::path::PathBuf;
use std::time::{Duration, Instant};

use btorrent::engine::{AddOptions, Session, SessionConfig};
use btorrent::Metainfo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, torrent, data_dir] = args.as_slice() else {
        eprintln!("usage: recheck_bench <file.torrent> <data_dir>");
        std::process::exit(2);
    };
    let meta = Metainfo::load(&PathBuf::from(torrent))?;
    let session = Session::start(SessionConfig::default()).await?;
    let start = Instant::now();
    let opts = AddOptions {
        data_dir: PathBuf::from(data_dir),
        trackers: Some(vec![]),
        ..Default::default()
    };
    let h = session.add(meta, opts).await?;
    h.wait_complete().await?;
    let secs = start.elapsed().as_secs_f64();
    let st = h.stats();
    anyhow::ensure!(
        st.pieces_have == st.pieces_total,
        "only {} of {} pieces verified",
        st.pieces_have,
        st.pieces_total
    );
    println!(
        "{} pieces of {} KiB checked in {secs:.3} s, {:.0} MB/s",
        st.pieces_total,
        h.meta().info.piece_length >> 10,
        st.bytes_total as f64 / secs / 1e6
    );
    session.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
