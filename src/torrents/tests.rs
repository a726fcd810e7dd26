//! The service's promises: no change lost between writers, an edit by hand seen, comments kept,
//! readers served from memory.

use std::time::Duration;

use super::edits::EntryEdit;
use super::*;
use crate::config::{ManagedTorrent, Origin};
use crate::types::InfoHash;

fn entry(writer: u8, i: u8) -> ManagedTorrent {
    let mut hash = [0u8; 20];
    hash[0] = writer;
    hash[1] = i;
    ManagedTorrent::new(
        format!("w{writer}-{i}"),
        &InfoHash(hash),
        format!("torrents/w{writer}-{i}.torrent"),
        "output",
        "seeding",
        Origin::Created,
    )
}

#[test]
fn two_services_on_one_file_lose_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    std::fs::write(&path, "# mine\n[settings]\ndht = false\n").unwrap();
    const EACH: u8 = 40;
    let writers: Vec<_> = (1..=2u8)
        .map(|w| {
            // Two services, as two processes would have: only the file lock orders them.
            let service = Torrents::open(&path);
            std::thread::spawn(move || {
                for i in 0..EACH {
                    service
                        .update(|cfg| {
                            cfg.upsert(entry(w, i));
                            Ok(())
                        })
                        .unwrap();
                }
                service
            })
        })
        .collect();
    let services: Vec<Torrents> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    let on_disk = Torrents::open(&path).config().unwrap();
    assert_eq!(
        on_disk.torrents.len(),
        2 * EACH as usize,
        "a change was lost"
    );
    // Each service, refreshed, agrees with the disk.
    for s in &services {
        s.refresh();
        assert_eq!(s.config().unwrap().torrents.len(), 2 * EACH as usize);
    }
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("# mine\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_by_hand_is_picked_up_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    std::fs::write(&path, "[settings]\nlisten_port = 6000\n").unwrap();
    let service = Torrents::open(&path);
    assert_eq!(service.config().unwrap().settings.listen_port, 6000);
    let mut changed = service.subscribe();
    changed.mark_unchanged();
    service.follow();
    // Edited in place, as an editor may do: same file, new content.
    std::fs::write(&path, "[settings]\nlisten_port = 7000\n").unwrap();
    tokio::time::timeout(Duration::from_secs(10), changed.changed())
        .await
        .expect("no reload within 10 s")
        .unwrap();
    assert_eq!(service.config().unwrap().settings.listen_port, 7000);
    assert_eq!(service.loads(), 2);
    // A mistake in the file is reported by every reader until it is fixed.
    std::fs::write(&path, "[settings]\nlisten_port = \"x\"\n").unwrap();
    tokio::time::timeout(Duration::from_secs(10), changed.changed())
        .await
        .expect("no reload within 10 s")
        .unwrap();
    let err = service.config().unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
    assert!(
        service.update(|_| Ok(())).is_err(),
        "a broken file is never overwritten"
    );
}

#[test]
fn comments_survive_saves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    let text = "# My btorrent\n[settings]\n# the port\nlisten_port = 6881 # fixed\n";
    std::fs::write(&path, text).unwrap();
    let service = Torrents::open(&path);
    for i in 0..3 {
        // The second and third saves start from the copy in memory, not from the disk.
        service
            .update(|cfg| {
                cfg.upsert(entry(1, i));
                Ok(())
            })
            .unwrap();
    }
    assert_eq!(service.loads(), 1);
    let saved = std::fs::read_to_string(&path).unwrap();
    for line in ["# My btorrent", "# the port", "listen_port = 6881 # fixed"] {
        assert!(saved.contains(line), "{line:?} lost:\n{saved}");
    }
    assert_eq!(Torrents::open(&path).config().unwrap().torrents.len(), 3);
}

/// A service over `path` whose file lists one entry, `w1-1`.
fn with_one_entry(path: &std::path::Path) -> Torrents {
    let service = Torrents::open(path);
    service
        .update(|cfg| {
            cfg.upsert(entry(1, 1));
            Ok(())
        })
        .unwrap();
    service
}

#[test]
fn readers_and_unchanged_states_do_not_touch_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    let service = with_one_entry(&path);
    let ih = entry(1, 1).hash().unwrap();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let loads = service.loads();
    for _ in 0..1000 {
        assert_eq!(service.config().unwrap().torrents.len(), 1);
        assert!(!service.refresh());
        // What the states recorder does for every `seeding` event of a seeding torrent.
        crate::services::record_state(&service, &ih, "seeding").unwrap();
    }
    assert_eq!(service.loads(), loads, "a reader read the file");
    let after = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(before, after, "an unchanged state was written");
    crate::services::record_state(&service, &ih, "error").unwrap();
    assert_eq!(
        Torrents::open(&path).config().unwrap().torrents[0].state,
        "error"
    );
}

/// A record of what the file already says (a command's, after the hand edit that set it off)
/// does not write: a hand edit made meanwhile cannot be replaced by the same old text.
#[test]
fn an_update_that_changes_nothing_leaves_the_file_alone() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    let service = with_one_entry(&path);
    let ih = entry(1, 1).hash().unwrap();
    let state = service.config().unwrap().torrents[0].state.clone();
    let inode = std::fs::metadata(&path).unwrap().ino();
    let loads = service.loads();
    service
        .update(|cfg| {
            cfg.find_mut(&ih).unwrap().state = state.clone();
            Ok(())
        })
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "rewritten");
    assert_eq!(service.loads(), loads);
    // A change is written, as ever.
    service
        .update(|cfg| {
            cfg.find_mut(&ih).unwrap().state = "paused".into();
            Ok(())
        })
        .unwrap();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(
        Torrents::open(&path).config().unwrap().torrents[0].state,
        "paused"
    );
}

/// The text of the file at `path` as an editor would save it after `edit` (made on a copy, beside it).
fn edited_copy(path: &std::path::Path, edit: impl FnOnce(&mut crate::config::Config)) -> String {
    let copy = path.with_file_name("copy.toml");
    std::fs::copy(path, &copy).unwrap();
    let mut c = crate::config::Config::load(&copy).unwrap();
    edit(&mut c);
    c.save().unwrap();
    std::fs::read_to_string(&copy).unwrap()
}

/// An editor saving in place empties the file, then writes it. A save made in between waits for
/// the text instead of taking the file for empty: the hand edit and the save both survive.
#[test]
fn a_save_while_an_editor_rewrites_the_file_in_place_loses_neither() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    let service = with_one_entry(&path);
    // The editor's text: the file as it was, with one more entry.
    let edited_text = edited_copy(&path, |c| c.upsert(entry(1, 2)));
    // Opened and emptied; written 50 ms later, through the same handle.
    let mut editor = std::fs::File::options()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        editor.write_all(edited_text.as_bytes()).unwrap();
    });
    service
        .update(|cfg| {
            cfg.upsert(entry(1, 3));
            Ok(())
        })
        .unwrap();
    writer.join().unwrap();
    let names: Vec<String> = Torrents::open(&path)
        .config()
        .unwrap()
        .torrents
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names, ["w1-1", "w1-2", "w1-3"]);
}

/// An editor's save that lands while a change is being written (after the service's first look
/// at the file, before its text replaces it) is seen by the look just before the replacement: the
/// change is made again on the edited file, and both are kept. Here the "editor" writes from
/// inside the change itself, the widest point of that window, and the edit is a new entry and a
/// setting the service's own change knows nothing of.
#[test]
fn a_hand_edit_saved_while_a_change_is_written_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    let service = with_one_entry(&path);
    let edited_text = edited_copy(&path, |c| {
        c.upsert(entry(1, 2));
        c.settings.listen_port = 7777;
    });
    let mut runs = 0;
    service
        .update(|cfg| {
            runs += 1;
            if runs == 1 {
                // Written in place, as an editor that keeps the file's inode does.
                std::fs::write(&path, &edited_text).unwrap();
            }
            cfg.upsert(entry(1, 3));
            Ok(())
        })
        .unwrap();
    assert_eq!(runs, 2, "the change was made once more, on the edited file");
    let on_disk = Torrents::open(&path).config().unwrap();
    let names: Vec<&str> = on_disk.torrents.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["w1-1", "w1-2", "w1-3"]);
    assert_eq!(on_disk.settings.listen_port, 7777);
    // An editor that never stops saving does not hold the change off for ever: the last try is
    // written whatever happened meanwhile.
    let mut runs = 0;
    service
        .update(|cfg| {
            runs += 1;
            std::fs::write(&path, &edited_text).unwrap();
            cfg.upsert(entry(1, 4));
            Ok(())
        })
        .unwrap();
    assert_eq!(runs, SAVE_TRIES);
    let on_disk = Torrents::open(&path).config().unwrap();
    assert_eq!(on_disk.torrents.last().unwrap().name, "w1-4");
}

#[test]
fn entry_edits_by_another_hand_are_noted_once_and_yield_to_a_later_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    let (one, two) = (entry(1, 1), entry(1, 2));
    let service = Torrents::open(&path);
    service
        .update(|cfg| {
            cfg.upsert(one.clone());
            Ok(())
        })
        .unwrap();
    assert!(service.take_edits().is_empty(), "a save is no edit");

    // Another writer (a hand, another process): one state changed, one new entry.
    let other = Torrents::open(&path);
    other
        .update(|cfg| {
            cfg.find_mut(&one.hash().unwrap()).unwrap().state = "paused".into();
            cfg.upsert(two.clone());
            Ok(())
        })
        .unwrap();
    assert!(service.refresh());
    let paused = EntryEdit {
        state: Some("paused".into()),
        ..Default::default()
    };
    assert_eq!(
        service.take_edits(),
        [(one.hash().unwrap(), paused)],
        "the new entry is no edit"
    );
    assert!(service.take_edits().is_empty(), "each is taken once");

    // Changed twice before it is taken: the latest.
    for state in ["stopped", "seeding"] {
        other
            .update(|cfg| {
                cfg.find_mut(&two.hash().unwrap()).unwrap().state = state.into();
                Ok(())
            })
            .unwrap();
        assert!(service.refresh());
    }
    assert_eq!(
        service.take_edits(),
        [(
            two.hash().unwrap(),
            EntryEdit {
                state: Some("seeding".into()),
                ..Default::default()
            }
        )]
    );
    // Limits and group: each field noted apart.
    let limits = crate::config::EntryLimits {
        max_peers: Some(7),
        ..Default::default()
    };
    other
        .update(|cfg| {
            let e = cfg.find_mut(&one.hash().unwrap()).unwrap();
            e.limits = limits;
            e.group = Some("backup".into());
            Ok(())
        })
        .unwrap();
    assert!(service.refresh());
    assert_eq!(
        service.take_edits(),
        [(
            one.hash().unwrap(),
            EntryEdit {
                limits: Some(limits),
                group: Some(Some("backup".into())),
                ..Default::default()
            }
        )]
    );
    // Changed, then our own save says otherwise before it is taken: dropped.
    let edited = other.update(|cfg| {
        cfg.find_mut(&two.hash().unwrap()).unwrap().state = "paused".into();
        Ok(())
    });
    edited.unwrap();
    service
        .update(|cfg| {
            // The update reads the other's change first (noted), then says otherwise.
            assert_eq!(cfg.find(&two.hash().unwrap()).unwrap().state, "paused");
            cfg.find_mut(&two.hash().unwrap()).unwrap().state = "downloading".into();
            Ok(())
        })
        .unwrap();
    assert!(service.take_edits().is_empty());

    // A data folder changed by another hand, then a command moves the data before the edit is
    // applied: the edit (older) is dropped, the state edit beside it kept.
    other
        .update(|cfg| {
            let e = cfg.find_mut(&one.hash().unwrap()).unwrap();
            e.data = "disk3".into();
            e.state = "stopped".into();
            Ok(())
        })
        .unwrap();
    assert!(service.refresh());
    service.supersede_data_edit(&one.hash().unwrap());
    assert_eq!(
        service.take_edits(),
        [(
            one.hash().unwrap(),
            EntryEdit {
                state: Some("stopped".into()),
                ..Default::default()
            }
        )]
    );
}

/// A hand edit in place right after a save, of the same length and within the same tick of the
/// file system's clock (its modification time put back to the save's), leaves the file's stamp as
/// it was; it is seen all the same, by its bytes, and noted as an edit.
#[test]
fn an_edit_in_the_same_clock_tick_as_a_save_is_seen() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torrents.toml");
    std::fs::write(&path, "[settings]\ndht = false\n").unwrap();
    let t = Torrents::open(&path);
    t.update(|cfg| {
        cfg.upsert(entry(1, 0));
        Ok(())
    })
    .unwrap();
    let saved = std::fs::metadata(&path).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace("state = \"seeding\"", "state = \"stopped\"");
    assert_ne!(edited, text);
    assert_eq!(edited.len(), text.len());
    let mut f = std::fs::File::options()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(edited.as_bytes()).unwrap();
    f.set_modified(saved).unwrap();
    drop(f);
    assert_eq!(
        stamp(&path),
        t.inner.current.read().stamp,
        "the stamp cannot tell"
    );
    assert!(t.refresh(), "the edit is seen");
    assert_eq!(t.config().unwrap().torrents[0].state, "stopped");
    let edits = t.take_edits();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].1.state.as_deref(), Some("stopped"));
    // Nothing changed since: nothing seen.
    assert!(!t.refresh());
}
