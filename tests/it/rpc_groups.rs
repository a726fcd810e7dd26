//! Bandwidth groups over the RPC (rpc-version 17): `group-set` makes and changes a group, kept in
//! torrents.toml; `group-get` lists the groups; `torrent-set`'s `group` puts a running torrent in
//! one (`torrent-get` reads it from the engine) and takes it out; all of it survives a restart;
//! JSON-RPC's `group_get`/`group_set` speak snake_case.

use serde_json::{json, Value};

use crate::support::rpc::{poll, torrent_get, Client, RpcDaemon};

fn groups(c: &mut Client, args: Value) -> Value {
    c.ok("group-get", args)["group"].clone()
}

#[test]
fn bandwidth_groups_are_made_listed_joined_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _) = c.add_seeding(dir.path(), 17);
    let hash = meta.info_hash.to_hex();
    assert_eq!(groups(&mut c, json!({})), json!([]));

    c.ok(
        "group-set",
        json!({"name": "backup", "speed-limit-up": 50, "speed-limit-up-enabled": true,
               "honorsSessionLimits": false}),
    );
    let backup = json!({"name": "backup", "honorsSessionLimits": false,
        "speed-limit-up-enabled": true, "speed-limit-up": 50,
        "speed-limit-down-enabled": false, "speed-limit-down": 0});
    assert_eq!(groups(&mut c, json!({})), json!([backup]));
    // Only what is given changes.
    c.ok(
        "group-set",
        json!({"name": "backup", "speed-limit-down": 20, "speed-limit-down-enabled": true}),
    );
    let mut backup2 = backup.clone();
    backup2["speed-limit-down-enabled"] = json!(true);
    backup2["speed-limit-down"] = json!(20);
    assert_eq!(groups(&mut c, json!({"group": "backup"})), json!([backup2]));
    assert_eq!(groups(&mut c, json!({"group": ["nothing"]})), json!([]));
    assert_eq!(groups(&mut c, json!({"name": "backup"})), json!([backup2]));

    // A torrent put in a group (one never given limits is made unlimited), then in another.
    let in_group = |c: &mut Client| torrent_get(c, json!(hash), &["group"]).pop().unwrap();
    assert_eq!(in_group(&mut c), json!({"group": ""}));
    c.ok("torrent-set", json!({"ids": hash, "group": "media"}));
    assert_eq!(in_group(&mut c), json!({"group": "media"}));
    let names: Vec<Value> = groups(&mut c, json!({}))
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert_eq!(names, [json!("backup"), json!("media")]);
    c.ok("torrent-set", json!({"ids": hash, "group": "backup"}));
    assert_eq!(in_group(&mut c), json!({"group": "backup"}));

    // Refused, with the reason: a key group-set does not take, a name that is none, no name.
    for (method, args, why) in [
        (
            "group-set",
            json!({"name": "backup", "speed": 1}),
            "not supported: speed",
        ),
        ("group-set", json!({"speed-limit-up": 1}), "name must be"),
        (
            "group-set",
            json!({"name": "", "speed-limit-up": 1}),
            "name must be",
        ),
        (
            "group-set",
            json!({"name": "b", "speed-limit-up": "fast"}),
            "whole number",
        ),
        (
            "group-set",
            json!({"name": "b", "honorsSessionLimits": 1}),
            "true or false",
        ),
        (
            "torrent-set",
            json!({"ids": hash, "group": 7}),
            "group must be",
        ),
    ] {
        let v = c.call(method, args);
        let result = v["result"].as_str().unwrap();
        assert!(result.contains(why), "{method}: {v}");
    }
    assert_eq!(groups(&mut c, json!({"group": "backup"})), json!([backup2]));

    // Kept: the group in the settings, the torrent's in its entry; both again after a restart.
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(text.contains("bandwidth_groups = {"), "{text}");
    assert!(text.contains("group = \"backup\""), "{text}");
    let d = d.restart();
    let mut c = d.client();
    poll("the torrent to run again", 30, || {
        (in_group(&mut c) == json!({"group": "backup"})).then_some(())
    });
    assert_eq!(groups(&mut c, json!({"group": "backup"})), json!([backup2]));

    // JSON-RPC: snake_case both ways.
    let body = json!({"jsonrpc": "2.0", "method": "group_set", "id": 1,
        "params": {"name": "backup", "honors_session_limits": true, "speed_limit_up": 70}});
    let r = c.post_raw(body.to_string().as_bytes()).json();
    assert!(r.get("error").is_none(), "{r}");
    let body = json!({"jsonrpc": "2.0", "method": "group_get", "id": 2, "params": {}});
    let r = c.post_raw(body.to_string().as_bytes()).json();
    assert_eq!(
        r["result"]["group"],
        json!([{"name": "backup", "honors_session_limits": true,
            "speed_limit_up_enabled": true, "speed_limit_up": 70,
            "speed_limit_down_enabled": true, "speed_limit_down": 20},
            {"name": "media", "honors_session_limits": true,
            "speed_limit_up_enabled": false, "speed_limit_up": 0,
            "speed_limit_down_enabled": false, "speed_limit_down": 0}]),
        "{r}"
    );

    // Out of its group.
    c.ok("torrent-set", json!({"ids": hash, "group": ""}));
    assert_eq!(in_group(&mut c), json!({"group": ""}));
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(!text.contains("group = \""), "{text}");
}
