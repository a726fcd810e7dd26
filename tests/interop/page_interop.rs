//! Our own page (`/` on `rpc_bind`) in headless Chromium, driven through the DevTools protocol: it
//! lists the daemon's torrents, adds one by .torrent upload and one by magnet link (listed while it
//! fetches its metadata), pauses with a
//! click and resumes with its `p` key, opens a torrent's files and ticks a box, sets a torrent's
//! upload limit and bandwidth priority with its `l` key, and removes a
//! torrent with its data after the confirm; each effect is checked in torrents.toml, the RPC and on
//! disk.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::support::browser::Browser;
use crate::support::rpc::{managed_state, poll, torrent_get, RpcDaemon};
use crate::support::{self, write_random};

/// A JavaScript expression for the element `sel` inside the row of torrent `hash`.
fn in_row(hash: &str, sel: &str) -> String {
    format!("document.querySelector('li[data-hash=\"{hash}\"] {sel}')")
}

fn wait_state(dir: &Path, hash: &str, state: Option<&str>) {
    poll(
        &format!("{hash} to be {state:?} in torrents.toml"),
        30,
        || (managed_state(dir, hash).as_deref() == state).then_some(()),
    );
}

#[test]
#[ignore = "needs chromium"]
fn our_page_lists_adds_pauses_resumes_and_removes_torrents_in_chromium() {
    let rt = crate::support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();

    // A torrent the daemon already seeds when the page opens.
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_random(&seed.join("already.bin"), 60_000, 1);
    let first = support::torrent(&seed.join("already.bin"), 16 * 1024, vec![]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(first.as_bytes());
    c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": seed}),
    );
    let h1 = first.info_hash.to_hex();

    let mut b = Browser::open(
        &format!("http://{}/", d.url()),
        &dir.path().join("profile"),
        1200,
        900,
    );
    let name = b.wait_for(
        "the page to list the daemon's torrent",
        30,
        &format!("{}?.textContent", in_row(&h1, ".name")),
    );
    assert_eq!(name, "already.bin");
    b.wait_for(
        "its state",
        30,
        &format!("{}.textContent === 'Seeding'", in_row(&h1, ".state")),
    );

    // Add by upload: a two-file folder whose data is already in place, so it seeds.
    let album = seed.join("album");
    std::fs::create_dir_all(&album).unwrap();
    write_random(&album.join("one.flac"), 50_000, 2);
    write_random(&album.join("two.flac"), 70_000, 3);
    let second = support::torrent(&album, 16 * 1024, vec![]);
    let file = dir.path().join("album.torrent");
    std::fs::write(&file, second.as_bytes()).unwrap();
    let h2 = second.info_hash.to_hex();
    b.set_file("#add-file", &file);
    b.eval(&format!(
        "document.querySelector('#add-dir').value = {}; document.querySelector('#add-btn').click()",
        json!(seed)
    ));
    let msg = b.wait_for(
        "the add to be answered",
        30,
        "document.querySelector('#add-msg').textContent.startsWith('Adding') ? '' : document.querySelector('#add-msg').textContent",
    );
    assert_eq!(msg, "Added: album");
    wait_state(dir.path(), &h2, Some("seeding"));
    b.wait_for(
        "the new row",
        30,
        &format!("{}?.textContent === 'Seeding'", in_row(&h2, ".state")),
    );

    // Pause with a click: the engine stops it, torrents.toml records it, the page shows it.
    b.eval(&format!("{}.click()", in_row(&h2, ".toggle")));
    wait_state(dir.path(), &h2, Some("paused"));
    let t = torrent_get(&mut c, json!([h2]), &["status"]).pop().unwrap();
    assert_eq!(t["status"], 0, "{t}");
    b.wait_for(
        "the Resume button",
        30,
        &format!("{}.textContent === 'Resume'", in_row(&h2, ".toggle")),
    );

    // Resume with the keyboard: the row focused, then `p`.
    b.eval(&format!(
        "document.querySelector('li[data-hash=\"{h2}\"]').focus()"
    ));
    b.key("p");
    wait_state(dir.path(), &h2, Some("seeding"));
    b.wait_for(
        "the Pause button again",
        30,
        &format!("{}.textContent === 'Pause'", in_row(&h2, ".toggle")),
    );

    // `f` shows its files, each with a ticked box; unticking one either takes (the engine then
    // leaves the file out) or shows the RPC's refusal with the box ticked again.
    b.key("f");
    let boxes = b.wait_for(
        "the files",
        30,
        &format!(
            "[...document.querySelectorAll('li[data-hash=\"{h2}\"] .file-list input')].map(i => i.checked).join()"
        ),
    );
    assert_eq!(boxes, "true,true");
    let label = b.eval(&format!("{}.textContent", in_row(&h2, ".file-list label")));
    assert!(
        label.as_str().unwrap().starts_with("album/one.flac"),
        "{label}"
    );
    b.eval(&format!("{}.click()", in_row(&h2, ".file-list input")));
    let outcome = poll("the file choice to be answered", 30, || {
        let shown = b.eval(&format!("{}.textContent", in_row(&h2, ".files-msg")));
        let t = torrent_get(&mut c, json!([h2]), &["fileStats"])
            .pop()
            .unwrap();
        if t["fileStats"][0]["wanted"] == false {
            return Some(String::new());
        }
        shown.as_str().filter(|s| !s.is_empty()).map(str::to_string)
    });
    if !outcome.is_empty() {
        assert!(
            outcome.contains("files-unwanted"),
            "the RPC's own line: {outcome}"
        );
        assert_eq!(
            b.eval(&format!("{}.checked", in_row(&h2, ".file-list input"))),
            true
        );
    }

    // Add by magnet link, fetched from a seeder the link names.
    let src = tempfile::tempdir().unwrap();
    let data = write_random(&src.path().join("clip.bin"), 300_000, 5);
    let third = support::torrent(&src.path().join("clip.bin"), 32 * 1024, vec![]);
    let (seeder, _seeding) = rt.block_on(support::seeder(&third, src.path()));
    let h3 = third.info_hash.to_hex();
    let link = format!(
        "magnet:?xt=urn:btih:{h3}&dn=clip.bin&x.pe={}",
        seeder.listen_addr()
    );
    let out = dir.path().join("out");
    b.eval(&format!(
        "document.querySelector('#add-link').value = {}; document.querySelector('#add-dir').value = {}; document.querySelector('#add-btn').click()",
        json!(link),
        json!(out)
    ));
    wait_state(dir.path(), &h3, Some("seeding"));
    assert_eq!(std::fs::read(out.join("clip.bin")).unwrap(), data);
    b.wait_for(
        "the magnet's row, complete",
        30,
        &format!("{}?.textContent.startsWith('100%')", in_row(&h3, ".pct")),
    );

    // `l` on the first row opens its speed limits (none of its own, normal priority); 30 kB/s
    // up and high priority are applied through torrent-set and kept; emptied, the limit is lifted.
    b.eval(&format!(
        "document.querySelector('li[data-hash=\"{h1}\"]').focus()"
    ));
    b.key("l");
    let form = |sel: &str| in_row(&h1, &format!(".limits {sel}"));
    b.wait_for(
        "the limits form, filled",
        30,
        &format!(
            "{}.hidden === false && {}.value === '0' && document.activeElement === {}",
            in_row(&h1, ".limits"),
            form(".prio"),
            form(".up")
        ),
    );
    assert_eq!(b.eval(&format!("{}.value", form(".up"))), "");
    b.eval(&format!(
        "{}.value = '30'; {}.value = '1'; {}.click()",
        form(".up"),
        form(".prio"),
        form(".apply")
    ));
    b.wait_for(
        "the limits applied",
        30,
        &format!("{}.textContent === 'Applied'", form(".limits-msg")),
    );
    let limits = ["uploadLimit", "uploadLimited", "bandwidthPriority"];
    let t = torrent_get(&mut c, json!([h1]), &limits).pop().unwrap();
    assert_eq!(
        t,
        json!({"uploadLimit": 30, "uploadLimited": true, "bandwidthPriority": 1})
    );
    let kept = btorrent::config::Config::load(&dir.path().join("torrents.toml"))
        .unwrap()
        .find(&first.info_hash)
        .unwrap()
        .limits
        .engine();
    assert_eq!(
        (kept.upload, kept.priority),
        (Some(30_000), btorrent::engine::Priority::High)
    );
    b.eval(&format!(
        "{}.value = ''; {}.click()",
        form(".up"),
        form(".apply")
    ));
    poll("the upload limit to be lifted", 30, || {
        let t = torrent_get(&mut c, json!([h1]), &limits).pop().unwrap();
        (t["uploadLimited"] == false && t["bandwidthPriority"] == 1).then_some(())
    });

    // Remove asks first: cancelled, nothing happens.
    b.eval(&format!("{}.click()", in_row(&h1, ".remove")));
    assert_eq!(
        b.eval("document.querySelector('#remove-dialog').open"),
        true
    );
    assert_eq!(
        b.eval("document.querySelector('#rm-name').textContent"),
        "already.bin"
    );
    b.eval("document.querySelector('#rm-cancel').click()");
    assert_eq!(
        b.eval("document.querySelector('#remove-dialog').open"),
        false
    );
    assert_eq!(managed_state(dir.path(), &h1).as_deref(), Some("seeding"));
    // The dialog's `close` event, which gives the focus back to the cancelled row, comes as a task
    // of its own: on a busy machine it may run after the next line's focus and steal it back, so the
    // `x` below would ask about this row. Wait for it first.
    b.wait_for(
        "the focus back on the cancelled row",
        60,
        &format!("document.activeElement?.dataset?.hash === '{h1}'"),
    );

    // `x` on the album's row, "also delete its data" ticked, confirmed: gone, data and all.
    b.eval(&format!(
        "document.querySelector('li[data-hash=\"{h2}\"]').focus()"
    ));
    b.key("x");
    b.wait_for(
        "the confirm",
        30,
        "document.querySelector('#remove-dialog').open && document.querySelector('#rm-name').textContent === 'album'",
    );
    b.eval("document.querySelector('#rm-data').click(); document.querySelector('#rm-ok').click()");
    wait_state(dir.path(), &h2, None);
    b.wait_for(
        "the row to go",
        30,
        &format!("document.querySelector('li[data-hash=\"{h2}\"]') === null"),
    );
    assert!(!album.join("one.flac").exists() && !album.join("two.flac").exists());
    // The others stay, with their data.
    assert_eq!(managed_state(dir.path(), &h1).as_deref(), Some("seeding"));
    assert!(seed.join("already.bin").exists());
    let left: Vec<_> = torrent_get(&mut c, json!(null), &["hashString"])
        .iter()
        .map(|t| t["hashString"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&h1) && left.contains(&h3), "{left:?}");

    // A magnet whose metadata does not come (its one peer listens nowhere) is listed at once,
    // fetching its metadata, and pauses like any other.
    let h4 = "5eed00005eed00005eed00005eed00005eed0000";
    let nowhere = format!(
        "magnet:?xt=urn:btih:{h4}&dn=far&x.pe=127.0.0.1:{}",
        support::process::free_port()
    );
    b.eval(&format!(
        "document.querySelector('#add-link').value = {}; document.querySelector('#add-btn').click()",
        json!(nowhere)
    ));
    b.wait_for(
        "the magnet's row, fetching",
        30,
        &format!(
            "{}?.textContent === 'Fetching metadata' && {}.textContent === 'metadata 0%'",
            in_row(h4, ".state"),
            in_row(h4, ".pct")
        ),
    );
    b.eval(&format!("{}.click()", in_row(h4, ".toggle")));
    b.wait_for(
        "the magnet's row, paused",
        30,
        &format!("{}.textContent === 'Paused'", in_row(h4, ".state")),
    );
    rt.block_on(seeder.shutdown(Duration::from_secs(5)));
}
