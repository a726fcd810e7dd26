//! Choosing files in the engine: skipped files are not fetched (nor created, unless a wanted piece
//! straddles them: then they stay sparse), a torrent done with what it wants is seeding, wanting a
//! file again fetches it, and sequential mode fetches pieces in order (from the first, or from a
//! later piece and round).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::support::*;
use btorrent::engine::{
    AddOptions, Event, FilePriority, SessionConfig, TorrentLimits, TorrentState,
};
use btorrent::metainfo::{create_torrent, CreateOptions, Format};

const K: usize = 1024;
const PLEN: u64 = 64 * 1024;

/// a (4 pieces exactly), b (8 pieces exactly: skipping it leaves no piece of it wanted), c (ends inside
/// a piece), d (shares a piece with c and one with e), e.
const FILES: [(&str, usize); 5] = [
    ("set/a.bin", 256 * K),
    ("set/b.bin", 512 * K),
    ("set/c.bin", 300 * K + 1000),
    ("set/d.bin", 200 * K),
    ("set/e.bin", 50 * K),
];

fn skip_b_and_d() -> Vec<FilePriority> {
    use FilePriority::*;
    vec![Normal, Skip, High, Skip, Low]
}

/// A seeder that announces every piece at once: a super-seeding one offers pieces a few at a time,
/// in its own order (BEP 16), and shows a leecher every piece only once it has declined them
/// (`superseed::DECLINE_AFTER`), a wait these tests need not take.
fn plain_seeder() -> SessionConfig {
    SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    }
}

/// Bytes of `path` really on disk.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_files_are_not_fetched_and_wanting_one_brings_it_in() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_tree(src.path(), &FILES);
    let meta = torrent(&src.path().join("set"), PLEN, vec![]);
    let (seeder, s) = seeder_with(plain_seeder(), &meta, src.path()).await;

    let leecher = session().await;
    let mut events = leecher.subscribe().unwrap();
    let add = AddOptions {
        files: Some(skip_b_and_d()),
        ..opts(dst.path(), vec![seeder.listen_addr()])
    };
    let l = leecher.add(meta.clone(), add).await.unwrap();
    wait_complete(&l, 60).await;
    let ih = meta.info_hash;
    events_until(
        &mut events,
        10,
        "Seeding",
        |e| matches!(e, Event::Seeding { info_hash, .. } if *info_hash == ih),
    )
    .await;

    let st = l.stats();
    assert_eq!(st.state, TorrentState::Seeding, "done with what it wants");
    assert!(st.pieces_have < st.pieces_total);
    assert_eq!(st.bytes_left, 0);
    assert_eq!(st.bytes_wanted, st.bytes_verified);
    // The wanted files are whole; b was never touched; d holds only the bytes of the two pieces it
    // shares with c and e, the rest a hole.
    for f in ["a.bin", "c.bin", "e.bin"] {
        let want = std::fs::read(src.path().join("set").join(f)).unwrap();
        assert_eq!(
            std::fs::read(dst.path().join("set").join(f)).unwrap(),
            want,
            "{f}"
        );
    }
    assert!(!dst.path().join("set/b.bin").exists(), "b.bin was created");
    let d_start = (256 + 512 + 300) * K as u64 + 1000;
    let d_end = d_start + 200 * K as u64;
    let straddling = (PLEN - d_start % PLEN) + (d_end % PLEN);
    let d = dst.path().join("set/d.bin");
    assert!(
        allocated(&d) <= straddling + 16 * K as u64,
        "d.bin holds {} bytes, only {straddling} were shared with wanted files",
        allocated(&d)
    );
    // Figures per file.
    let files = l.files();
    let done: Vec<u64> = files.iter().map(|f| f.done).collect();
    assert_eq!(done[0], 256 * K as u64);
    assert_eq!(done[1], 0);
    assert_eq!(done[3], straddling);
    assert_eq!(files[2].priority, FilePriority::High);
    // Nothing of the skipped-only pieces crossed the wire.
    assert!(
        s.stats().uploaded <= st.bytes_wanted && st.downloaded <= st.bytes_wanted,
        "seeder sent {}, leecher received {}, wanted {}",
        s.stats().uploaded,
        st.downloaded,
        st.bytes_wanted
    );

    // Wanting b and d while it seeds: downloading again, then complete with every file.
    l.set_file_priorities(&[(1, FilePriority::Normal), (3, FilePriority::Normal)])
        .unwrap();
    assert_eq!(l.stats().state, TorrentState::Downloading);
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    assert_eq!(l.stats().state, TorrentState::Seeding);
    assert!(l.set_file_priorities(&[(5, FilePriority::Skip)]).is_err());
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_of_the_wrong_length_is_refused() {
    let src = tempfile::tempdir().unwrap();
    write_tree(src.path(), &FILES);
    let meta = torrent(&src.path().join("set"), PLEN, vec![]);
    let s = session().await;
    let add = AddOptions {
        files: Some(vec![FilePriority::Skip]),
        ..opts(src.path(), vec![])
    };
    let e = s.add(meta, add).await.unwrap_err().to_string();
    assert!(e.contains("has 5 files, the selection names 1"), "{e}");
    s.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_mode_completes_pieces_in_order() {
    completes_in_sequence(None).await;
}

/// Started at a later piece (a player seeking): from there to the last, then from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_mode_from_a_later_piece_wraps_round() {
    completes_in_sequence(Some(130)).await;
}

/// A leecher in sequential mode (from piece `from`, else the first) completes each piece at most a
/// few places past the first one it lacks in that sequence.
async fn completes_in_sequence(from: Option<u32>) {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("movie.bin"), 3200 * K, 7);
    let meta = torrent(&src.path().join("movie.bin"), 16 * K as u64, vec![]);
    let slow = SessionConfig {
        upload_limit: Some(2 << 20),
        ..plain_seeder()
    };
    let (seeder, _) = seeder_with(slow, &meta, src.path()).await;
    // At most 4 pieces buffered (6 when a peer shares none of them): a piece completes at most that
    // far past the first one missing.
    let small = SessionConfig {
        max_buffer_bytes: 4 * 16 * K as u64,
        ..Default::default()
    };
    let leecher = session_with(small).await;
    let add = AddOptions {
        paused: true,
        ..opts(dst.path(), vec![seeder.listen_addr()])
    };
    let l = leecher.add(meta.clone(), add).await.unwrap();
    l.set_sequential(true);
    assert!(l.stats().sequential);
    let n = meta.info.piece_count();
    let start = from.unwrap_or(0) as usize;
    if let Some(from) = from {
        let past = l.set_sequential_from(n as u32).unwrap_err().to_string();
        assert!(past.contains("does not exist"), "{past}");
        l.set_sequential_from(from).unwrap();
        assert_eq!(l.stats().sequential_from, from);
    }
    // Each piece's place in the sequence.
    let place = |i: usize| (i + n - start) % n;
    l.resume();
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut samples = 0;
    loop {
        let have = l.have();
        let first_missing = (0..n).map(|p| (p + start) % n).find(|&i| !have.get(i));
        let Some(first_missing) = first_missing else {
            break;
        };
        let last_have = have.ones().map(place).max().unwrap_or(0);
        assert!(
            last_have < place(first_missing) + 8,
            "piece at place {last_have} done while piece {first_missing} is missing"
        );
        samples += 1;
        assert!(tokio::time::Instant::now() < end, "not complete in 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(samples > 10, "too quick to watch: {samples} samples");
    wait_complete(&l, 10).await;
    assert_same_tree(src.path(), dst.path());
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

/// `rename_path`: a file and a folder of a seeding torrent renamed, on disk and in its file list; it
/// seeds from the new names, and a leecher gets the torrent's own names, byte for byte. Names that
/// are not plain, paths that are not the torrent's, and taken names are refused, changing nothing;
/// so are file paths at add that cannot be the torrent's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_files_are_read_from_their_new_names() {
    use btorrent::engine::EngineError;
    use std::path::PathBuf;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let a = write_random(&src.path().join("top/a.bin"), 300_000, 41);
    let b = write_random(&src.path().join("top/sub/b.bin"), 90_000, 42);
    let meta = torrent(&src.path().join("top"), 32 * 1024, vec![]);
    let (seeder, s) = seeder(&meta, src.path()).await;

    let paths = s
        .rename_path("top/a.bin".into(), "first.bin".into())
        .await
        .unwrap();
    assert_eq!(paths[0], PathBuf::from("top/first.bin"));
    let paths = s
        .rename_path("top/sub".into(), "pics".into())
        .await
        .unwrap();
    assert_eq!(
        paths,
        [
            PathBuf::from("top/first.bin"),
            PathBuf::from("top/pics/b.bin")
        ]
    );
    assert_eq!(std::fs::read(src.path().join("top/first.bin")).unwrap(), a);
    assert_eq!(std::fs::read(src.path().join("top/pics/b.bin")).unwrap(), b);
    assert!(!src.path().join("top/a.bin").exists() && !src.path().join("top/sub").exists());
    let listed: Vec<PathBuf> = s.stats().files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(listed, paths);

    for (path, name) in [
        ("top/nothing.bin", "x.bin"),
        ("top/first.bin", "../out.bin"),
        ("top/first.bin", "a/b.bin"),
        ("top/first.bin", ".."),
        ("top/first.bin", "pics"),
        ("", "x"),
    ] {
        let r = s.rename_path(path.into(), name.into()).await;
        assert!(
            matches!(r, Err(EngineError::BadPath { .. })),
            "{path} -> {name}: {r:?}"
        );
    }
    assert_eq!(
        s.stats()
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect::<Vec<_>>(),
        paths,
        "a refused rename changed nothing"
    );
    assert!(s.stats().is_complete());

    let (_leecher, l) = leecher(&meta, dst.path(), vec![seeder.listen_addr()]).await;
    wait_complete(&l, 60).await;
    assert_eq!(std::fs::read(dst.path().join("top/a.bin")).unwrap(), a);
    assert_eq!(std::fs::read(dst.path().join("top/sub/b.bin")).unwrap(), b);

    // File paths at add: one per file, inside the data folder, none twice.
    let other = session().await;
    for bad in [
        vec![PathBuf::from("top/x.bin")],
        vec![PathBuf::from("top/x.bin"), PathBuf::from("../y.bin")],
        vec![PathBuf::from("top/x.bin"), PathBuf::from("top/x.bin")],
    ] {
        let r = other
            .add(
                meta.clone(),
                AddOptions {
                    data_dir: src.path().to_path_buf(),
                    file_paths: Some(bad.clone()),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(r, Err(EngineError::BadPath { .. })),
            "{bad:?}: {:?}",
            r.err()
        );
    }
    // The renamed paths given at add: the data is found complete where they say.
    let h = other
        .add(
            meta.clone(),
            AddOptions {
                data_dir: src.path().to_path_buf(),
                file_paths: Some(paths.clone()),
                paused: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_until("the renamed data checked", Duration::from_secs(30), || {
        h.stats().is_complete()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_not_complete_are_named_part_until_they_are() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_tree(src.path(), &FILES);
    let meta = torrent(&src.path().join("set"), PLEN, vec![]);
    let (seeder, _s) = seeder_with(plain_seeder(), &meta, src.path()).await;
    let leecher = session_with(SessionConfig {
        rename_partial_files: true,
        ..Default::default()
    })
    .await;
    let add = AddOptions {
        files: Some(skip_b_and_d()),
        ..opts(dst.path(), vec![seeder.listen_addr()])
    };
    let l = leecher.add(meta.clone(), add).await.unwrap();
    wait_complete(&l, 60).await;
    let set = dst.path().join("set");
    let names = || names_in(&set);
    // The wanted files are whole under their own names; d, holding only the pieces it shares with
    // c and e, is partial; b was never created.
    assert_eq!(names(), ["a.bin", "c.bin", "d.bin.part", "e.bin"]);
    let listed: Vec<_> = l.files().iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        listed[3],
        Path::new("set/d.bin"),
        "the file list shows no suffix"
    );

    // Switched off while seeding: d takes its own name, and keeps it when switched on again.
    leecher.set_rename_partial_files(false).await;
    assert!(!leecher.rename_partial_files());
    assert_eq!(names(), ["a.bin", "c.bin", "d.bin", "e.bin"]);
    leecher.set_rename_partial_files(true).await;
    assert_eq!(names(), ["a.bin", "c.bin", "d.bin", "e.bin"]);
    // A file created from now on is partial until complete: b, wanted while the download is held
    // to 32 KiB/s (its 512 KiB take 16 s), appears under its partial name.
    let slow = |download| btorrent::engine::TorrentLimits {
        download,
        ..Default::default()
    };
    l.set_limits(slow(Some(32 * K as u64)));
    l.set_file_priorities(&[(1, FilePriority::Low)]).unwrap();
    wait_until("b under its partial name", Duration::from_secs(30), || {
        set.join("b.bin.part").exists()
    })
    .await;
    assert!(!set.join("b.bin").exists());
    l.set_limits(slow(None));

    // Wanted and fetched: every file whole, under its own name.
    l.set_file_priorities(&[(1, FilePriority::Normal), (3, FilePriority::Normal)])
        .unwrap();
    wait_complete(&l, 60).await;
    assert_eq!(names(), ["a.bin", "b.bin", "c.bin", "d.bin", "e.bin"]);
    assert_same_tree(src.path(), dst.path());

    // A re-check reads them where they are.
    let report = l.check().await.unwrap();
    assert_eq!(report.good, report.pieces_total);
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

/// A session of its own with `meta` added in a new folder, as `add` says for that folder.
async fn joined(
    meta: &btorrent::Metainfo,
    add: impl FnOnce(&Path) -> AddOptions,
) -> (
    tempfile::TempDir,
    btorrent::engine::Session,
    btorrent::engine::TorrentHandle,
) {
    let dir = tempfile::tempdir().unwrap();
    let s = session().await;
    let h = s.add(meta.clone(), add(dir.path())).await.unwrap();
    (dir, s, h)
}

/// BEP 21: a torrent done with the files it wants says `upload_only`, and tells a connected peer when
/// that changes (libtorrent's `upload_only` message); two peers that want nothing more of each other
/// (here two partial seeds) part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_seeds_say_upload_only_and_part_when_neither_wants_anything() {
    use FilePriority::*;
    let src = tempfile::tempdir().unwrap();
    write_tree(src.path(), &FILES);
    let meta = torrent(&src.path().join("set"), PLEN, vec![]);
    let (seeder, s) = seeder_with(plain_seeder(), &meta, src.path()).await;
    let only_a = || Some(vec![Normal, Skip, Skip, Skip, Skip]);
    let partial = |dir: &Path, peers| AddOptions {
        files: only_a(),
        ..opts(dir, peers)
    };

    // P1 takes a from the seed, then the seed goes: P1 is the only source of a.
    let (_p1_dir, p1_session, p1) = joined(&meta, |d| partial(d, vec![seeder.listen_addr()])).await;
    wait_complete(&p1, 60).await;
    s.pause();

    // P3 wants a alone too: done, both partial seeds, they part.
    let (p3_dir, p3_session, p3) =
        joined(&meta, |d| partial(d, vec![p1_session.listen_addr()])).await;
    wait_complete(&p3, 60).await;
    assert_eq!(
        std::fs::read(p3_dir.path().join("set/a.bin")).unwrap(),
        std::fs::read(src.path().join("set/a.bin")).unwrap()
    );
    wait_until("two partial seeds to part", Duration::from_secs(30), || {
        p3.peers().is_empty() && p1.peers().is_empty()
    })
    .await;
    // P3 keeps P1 as one that wants nothing, and does not dial it while it wants nothing either:
    // looked at while P2's part below runs. (Others may dial P3: P1 once it wants again, P2
    // learning of it by PEX.)
    let apart = || {
        let p = p3.peers();
        let dialed = p
            .iter()
            .any(|p| p.outgoing && p.addr == p1_session.listen_addr());
        assert!(!dialed, "P3 dialed P1 again: {p:?}");
        true
    };

    // P2 wants everything: it sees P1 upload only, then wanting pieces again, then not. P2 takes
    // a from P1 slowly meanwhile (its own download limit), so it still wants something of P1.
    let slow = TorrentLimits {
        download: Some(8 * K as u64),
        ..TorrentLimits::default()
    };
    let (p2_dir, p2_session, p2) = joined(&meta, |d| AddOptions {
        limits: slow,
        ..opts(d, vec![p1_session.listen_addr()])
    })
    .await;
    // P2's connection to P1 (the address P2 dialed; P2 may meet P3 too, by PEX, and P1 may dial
    // P2 as it seeds).
    let p1_of_p2 = || {
        p2.peers()
            .into_iter()
            .find(|p| p.addr == p1_session.listen_addr())
    };
    let p1_as_seen =
        |up: bool| apart() && p1_of_p2().is_some_and(|p| p.upload_only == up && !p.seed);
    wait_until("P2 to see P1 upload only", Duration::from_secs(30), || {
        p1_as_seen(true)
    })
    .await;
    p1.set_file_priorities(&[(1, Normal)]).unwrap();
    wait_until(
        "P1 to tell P2 it wants again",
        Duration::from_secs(30),
        || p1_as_seen(false),
    )
    .await;
    p1.set_file_priorities(&[(1, Skip)]).unwrap();
    wait_until(
        "P1 to tell P2 it wants nothing more",
        Duration::from_secs(30),
        || p1_as_seen(true),
    )
    .await;

    // Unlimited, P2 takes the rest of a; P1 then has nothing P2 wants and wants nothing: P2 parts
    // from it (its slot is for a peer with something to give) and does not dial it again while it
    // wants no more than it does.
    p2.set_limits(TorrentLimits::default());
    let p2_apart = || {
        let dialed = p2
            .peers()
            .into_iter()
            .any(|p| p.outgoing && p.addr == p1_session.listen_addr());
        apart() && !dialed
    };
    wait_until(
        "P2 to take a and part from P1",
        Duration::from_secs(30),
        || p2.stats().pieces_have == 4 && p1_of_p2().is_none(),
    )
    .await;
    assert!(p2_apart());

    // The seed back, P2 completes.
    s.resume();
    p2.add_peers(vec![seeder.listen_addr()]);
    wait_until("P2 to complete", Duration::from_secs(60), || {
        assert!(p2_apart(), "P2 dialed P1 again");
        p2.stats().state == TorrentState::Seeding
    })
    .await;
    assert_same_tree(src.path(), p2_dir.path());
    assert!(p2_apart());
    for session in [p3_session, p2_session, p1_session, seeder] {
        session.shutdown(Duration::from_secs(2)).await;
    }
}

/// A file marked executable (BEP 47's `x`, which `b-create` records from the owner's execute bit)
/// is created executable where it is downloaded, under its partial name too (the rename keeps the
/// mode), an empty one as well; the other files are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executable_files_are_downloaded_executable() {
    use std::os::unix::fs::PermissionsExt;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_tree(
        src.path(),
        &[
            ("kit/run.sh", 100 * K),
            ("kit/data.bin", 150 * K),
            ("kit/bin/empty-tool", 0),
        ],
    );
    let kit = src.path().join("kit");
    for f in ["run.sh", "bin/empty-tool"] {
        std::fs::set_permissions(kit.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let meta = torrent(&kit, PLEN, vec![]);
    let executable: Vec<bool> = meta.info.files.iter().map(|f| f.executable).collect();
    assert_eq!(
        executable,
        [true, false, true],
        "bin/empty-tool, data.bin, run.sh"
    );
    let (seeder, _s) = seeder_with(plain_seeder(), &meta, src.path()).await;
    let leecher = session_with(SessionConfig {
        rename_partial_files: true,
        ..Default::default()
    })
    .await;
    let l = leecher
        .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    let mode = |f: &str| {
        let m = std::fs::metadata(dst.path().join("kit").join(f)).unwrap();
        m.permissions().mode() & 0o777
    };
    for f in ["run.sh", "bin/empty-tool"] {
        assert_ne!(mode(f) & 0o100, 0, "{f}: {:o}", mode(f));
    }
    assert_eq!(
        mode("data.bin") & 0o111,
        0,
        "data.bin: {:o}",
        mode("data.bin")
    );
}

/// Links recorded as links (`b-create --symlinks`, BEP 47's `l`): a link to a file and one to a
/// folder inside the torrent are made links again where it is downloaded, relative to their own
/// folder, once it completes; a link to a file outside the folder was shared as its content. The
/// same in each format: a v1 `files` list, a v2 `file tree`, a hybrid's both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_inside_a_folder_are_downloaded_as_links() {
    use std::os::unix::fs::symlink;
    let src = tempfile::tempdir().unwrap();
    write_tree(
        src.path(),
        &[("site/docs/guide.txt", 70 * K), ("site/img/a.bin", 90 * K)],
    );
    let outside = write_random(&src.path().join("elsewhere.bin"), 5000, 47);
    let site = src.path().join("site");
    symlink("../docs/guide.txt", site.join("img/guide")).unwrap();
    symlink("docs", site.join("manual")).unwrap();
    symlink(src.path().join("elsewhere.bin"), site.join("outside.bin")).unwrap();
    for format in Format::ALL {
        let dst = tempfile::tempdir().unwrap();
        let o = CreateOptions {
            piece_length: Some(PLEN),
            symlinks: true,
            ..Default::default()
        }
        .with_format(format);
        let meta = create_torrent(&site, &o, &|_, _| {}).unwrap();
        let links: Vec<(String, Option<String>)> = meta
            .info
            .files
            .iter()
            .filter(|f| !f.padding)
            .map(|f| {
                let shown = |p: &std::path::Path| p.display().to_string();
                (shown(&f.path), f.symlink.as_deref().map(shown))
            })
            .collect();
        let link = |p: &str, t: Option<&str>| (p.to_string(), t.map(str::to_string));
        assert_eq!(
            links,
            [
                link("site/docs/guide.txt", None),
                link("site/img/a.bin", None),
                link("site/img/guide", Some("site/docs/guide.txt")),
                link("site/manual", Some("site/docs")),
                link("site/outside.bin", None),
            ],
            "{format:?}"
        );
        let (seeder, s) = seeder_with(plain_seeder(), &meta, src.path()).await;
        let leecher = session_with(SessionConfig::default()).await;
        let l = leecher
            .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
            .await
            .unwrap();
        wait_complete(&l, 60).await;
        // A link holds no data: a check of the seeder's folder takes the link to a file for no
        // file longer than the torrent says, and finds every piece.
        let report = s.check().await.unwrap();
        assert!(
            report.oversized.is_empty(),
            "{format:?}: {:?}",
            report.oversized
        );
        assert_eq!(report.good, report.pieces_total, "{format:?}");
        let got = dst.path().join("site");
        let target = |p: &str| std::fs::read_link(got.join(p)).unwrap();
        assert_eq!(
            target("img/guide"),
            std::path::Path::new("../docs/guide.txt"),
            "{format:?}"
        );
        assert_eq!(target("manual"), std::path::Path::new("docs"), "{format:?}");
        let guide = std::fs::read(got.join("docs/guide.txt")).unwrap();
        assert_eq!(std::fs::read(got.join("img/guide")).unwrap(), guide);
        assert_eq!(std::fs::read(got.join("manual/guide.txt")).unwrap(), guide);
        assert!(!std::fs::symlink_metadata(got.join("outside.bin"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(got.join("outside.bin")).unwrap(), outside);
        leecher.shutdown(Duration::from_secs(2)).await;
        seeder.shutdown(Duration::from_secs(2)).await;
    }
}

/// Times recorded in the torrent (`b-create --mtime`) are given to the files where it is
/// downloaded, each once it is complete: in every format, under partial names (the rename keeps
/// the time), an empty file too; a file left out is not made; after a move to another folder the
/// files keep them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_times_are_given_to_the_downloaded_files() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let at = |t: u64| UNIX_EPOCH + Duration::from_secs(t);
    let src = tempfile::tempdir().unwrap();
    let files = [
        ("album/a.jpg", 100 * K + 7, 1_000_000_000),
        ("album/b.jpg", 150 * K, 1_100_000_000),
        ("album/c.txt", 3 * K, 1_200_000_000),
        ("album/sub/empty", 0, 1_300_000_000),
    ];
    write_tree(src.path(), &files.map(|(name, len, _)| (name, len)));
    for (name, _, t) in files {
        let f = std::fs::File::options()
            .write(true)
            .open(src.path().join(name));
        f.unwrap().set_modified(at(t)).unwrap();
    }
    let album = src.path().join("album");
    for format in Format::ALL {
        let o = CreateOptions {
            piece_length: Some(PLEN),
            mtime: true,
            ..Default::default()
        }
        .with_format(format);
        let meta = create_torrent(&album, &o, &|_, _| {}).unwrap();
        let (seeder, _s) = seeder_with(plain_seeder(), &meta, src.path()).await;
        let leecher = session_with(SessionConfig {
            rename_partial_files: true,
            ..Default::default()
        })
        .await;
        let dst = tempfile::tempdir().unwrap();
        let skip_b = meta
            .info
            .files
            .iter()
            .map(|f| match f.path.to_str() {
                Some("album/b.jpg") => FilePriority::Skip,
                _ => FilePriority::Normal,
            })
            .collect();
        let l = leecher
            .add(
                meta.clone(),
                AddOptions {
                    files: Some(skip_b),
                    ..opts(dst.path(), vec![seeder.listen_addr()])
                },
            )
            .await
            .unwrap();
        wait_complete(&l, 60).await;
        let modified = |dir: &Path, name: &str| -> Option<SystemTime> {
            let m = std::fs::metadata(dir.join(name)).ok()?;
            Some(m.modified().unwrap())
        };
        for (name, _, t) in files.iter().filter(|(n, _, _)| *n != "album/b.jpg") {
            assert_eq!(
                modified(dst.path(), name),
                Some(at(*t)),
                "{format:?}: {name}"
            );
        }
        // b.jpg, left out, is not complete: in v1 it shares a piece with a.jpg and one with
        // c.txt, so it is there, sparse, under its partial name, without the time; elsewhere each
        // file is on pieces of its own and it is not there at all.
        assert_eq!(modified(dst.path(), "album/b.jpg"), None, "{format:?}");
        let partial = modified(dst.path(), "album/b.jpg.part");
        assert_eq!(partial.is_some(), format == Format::V1, "{format:?}");
        assert_ne!(partial, Some(at(1_100_000_000)), "{format:?}");
        // Moved elsewhere, the files keep their times.
        let moved = tempfile::tempdir().unwrap();
        l.move_to(moved.path().to_path_buf()).await.unwrap();
        for (name, _, t) in files.iter().filter(|(n, _, _)| *n != "album/b.jpg") {
            assert_eq!(
                modified(moved.path(), name),
                Some(at(*t)),
                "{format:?}: {name}"
            );
        }
        leecher.shutdown(Duration::from_secs(2)).await;
        seeder.shutdown(Duration::from_secs(2)).await;
    }
}

/// A v2 or hybrid torrent's padding (each file's last piece filled up to the piece length) never
/// crosses the wire: eight files of 20 KiB in pieces of 256 KiB are 2 MiB of piece space, of which
/// the leecher asks for 32 KiB a file (a whole block, and the block partly padding whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padding_is_never_fetched() {
    let src = tempfile::tempdir().unwrap();
    for i in 0..8 {
        write_random(&src.path().join(format!("pics/{i}.jpg")), 20 * K, i);
    }
    for format in [Format::V2, Format::Hybrid] {
        let o = CreateOptions {
            piece_length: Some(256 * K as u64),
            ..Default::default()
        }
        .with_format(format);
        let meta = create_torrent(&src.path().join("pics"), &o, &|_, _| {}).unwrap();
        assert!(meta.info.piece_count() >= 8, "{format:?}: a piece a file");
        let (seeder, sh) = seeder_with(plain_seeder(), &meta, src.path()).await;
        let dst = tempfile::tempdir().unwrap();
        let (_l, lh) = leecher(&meta, dst.path(), vec![seeder.listen_addr()]).await;
        wait_complete(&lh, 60).await;
        assert_same_tree(&src.path().join("pics"), &dst.path().join("pics"));
        let sent = sh.stats().uploaded;
        assert!(sent <= 8 * 32 * K as u64, "{format:?}: sent {sent} bytes");
    }
}
