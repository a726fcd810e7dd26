//! The one channel from the engine to the front ends: the peer session publishes into the app's
//! event bus itself, so what a script handler sees is what the engine said, every event, in order.

use std::time::Duration;

use crate::support::host::ScriptRig;
use btorrent::engine;
use btorrent::events::{Event, EventBus, EventKind};
use btorrent::script::Dispatcher;
use tokio::sync::broadcast::error::TryRecvError;

const TORRENTS: usize = 200;

/// Every event a receiver holds now; a lost one fails the test.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut got = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(ev) => got.push(ev),
            Err(TryRecvError::Empty) => return got,
            Err(e) => panic!("the bus lost events: {e:?}"),
        }
    }
}

#[test]
fn a_burst_of_200_torrents_reaches_script_handlers_whole_and_in_order() {
    let rig = ScriptRig::new("listen_ip = \"127.0.0.1\"\nlisten_port = 0", None);
    let ctx = rig.host.context().clone();
    let mut heard = ctx.bus.subscribe();
    let dispatcher = Dispatcher::start(rig.host.clone());
    rig.script(
        "burst.rhai",
        r#"
on("added", |ev| print(`added ${ev.name} ${ev.torrent.name}`));
on("seeding", |ev| print(`seeding ${ev.name} ${ev.path}`));
"#,
    );
    let session = rig.rt.block_on(ctx.peer.get_or_start()).unwrap();
    // The session has no channel of its own: the bus is the only way its events leave.
    assert!(session.subscribe().is_none());

    let mut metas = Vec::new();
    for i in 0..TORRENTS {
        let dir = rig.path(&format!("data/{i:03}"));
        let file = dir.join(format!("t{i:03}.bin"));
        crate::support::write_random(&file, 3_000, i as u64);
        let meta = crate::support::torrent(&file, 16 * 1024, vec![]);
        rig.rt
            .block_on(session.add(meta.clone(), crate::support::opts(&dir, vec![])))
            .unwrap();
        metas.push(meta);
    }
    rig.wait_for_secs("every torrent's seeding handler", 60, |l| {
        l.iter().filter(|x| x.starts_with("seeding ")).count() == TORRENTS
    });
    let lines: Vec<String> = rig
        .lines
        .lock()
        .iter()
        .filter(|l| l.starts_with("added ") || l.starts_with("seeding "))
        .cloned()
        .collect();

    // What a plain subscriber of the bus got: the engine's events as it sent them, none lost.
    let events = drain(&mut heard);
    let count = |k: EventKind| events.iter().filter(|e| e.kind() == k).count();
    assert_eq!(count(EventKind::Added), TORRENTS);
    assert_eq!(count(EventKind::Seeding), TORRENTS);
    assert!(events.iter().all(|e| matches!(e, Event::Engine(_))));
    // The handlers saw exactly that sequence.
    let want: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Engine(engine::Event::Added { name, .. }) => {
                Some(format!("added {name} {name}"))
            }
            Event::Engine(engine::Event::Seeding { name, data_dir, .. }) => {
                Some(format!("seeding {name} {}", data_dir.display()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(lines, want);
    // Added in the order the torrents were added, each before its own seeding.
    let added: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("added "))
        .collect();
    let names: Vec<String> = metas
        .iter()
        .map(|m| format!("{0} {0}", m.info.name))
        .collect();
    assert_eq!(added, names);
    for (i, m) in metas.iter().enumerate() {
        let name = &m.info.name;
        let a = lines
            .iter()
            .position(|l| *l == format!("added {name} {name}"));
        let s = lines.iter().position(|l| {
            *l == format!(
                "seeding {name} {}",
                rig.path(&format!("data/{i:03}")).display()
            )
        });
        assert!(a.unwrap() < s.unwrap(), "{name}: {lines:#?}");
    }

    dispatcher.stop(Duration::from_secs(5));
    rig.rt.block_on(ctx.peer.shutdown(Duration::from_secs(5)));
}

/// A session given the bus's sink publishes into it from the call that makes the event: once `add`
/// and `remove` return, a subscriber of the bus already holds their events, with nothing spawned by
/// the app to carry them.
#[test]
fn the_engine_publishes_straight_into_the_app_bus() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.bin");
    crate::support::write_random(&file, 40_000, 7);
    let meta = crate::support::torrent(&file, 16 * 1024, vec![]);
    rt.block_on(async {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        let session = crate::support::session_with(engine::SessionConfig {
            events: bus.engine_sink(),
            ..Default::default()
        })
        .await;
        assert!(session.subscribe().is_none());
        session
            .add(meta.clone(), crate::support::opts(dir.path(), vec![]))
            .await
            .unwrap();
        let first = rx
            .try_recv()
            .expect("the added event is on the bus already");
        assert_eq!(
            first,
            Event::Engine(engine::Event::Added {
                info_hash: meta.info_hash,
                name: "one.bin".into(),
                data_dir: dir.path().to_path_buf(),
            })
        );
        assert_eq!(
            first.to_string(),
            format!("added one.bin ({})", dir.path().display())
        );
        session.remove(&meta.info_hash).await.unwrap();
        let removed = std::iter::from_fn(|| rx.try_recv().ok())
            .find(|e| e.kind() == EventKind::Removed)
            .expect("the removed event is on the bus already");
        assert_eq!(removed.name(), Some("one.bin"));
        assert_eq!(removed.to_string(), "removed one.bin");
        session.shutdown(Duration::from_secs(2)).await;
    });
}
