//! The programs run on torrent events in the RPC ([`crate::hooks`]): `session-get`'s and
//! `session-set`'s `script-torrent-added-enabled` and `-filename`, `script-torrent-done-enabled`
//! and `-filename`, `script-torrent-done-seeding-enabled` and `-filename` (torrents.toml's
//! `torrent_added_program`, `torrent_done_program`, `torrent_done_seeding_program` and their
//! `_enabled`). A program switched on must be an absolute path to an executable file; a filename
//! of `""` forgets it.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::config::Settings;
use crate::hooks::Hook;

/// Each hook's keys: (enabled, filename).
fn keys(hook: Hook) -> (&'static str, &'static str) {
    match hook {
        Hook::Added => (
            "script-torrent-added-enabled",
            "script-torrent-added-filename",
        ),
        Hook::Done => (
            "script-torrent-done-enabled",
            "script-torrent-done-filename",
        ),
        Hook::DoneSeeding => (
            "script-torrent-done-seeding-enabled",
            "script-torrent-done-seeding-filename",
        ),
    }
}

/// `session-set`'s keys for the programs.
pub const SESSION_KEYS: [&str; 6] = [
    "script-torrent-added-enabled",
    "script-torrent-added-filename",
    "script-torrent-done-enabled",
    "script-torrent-done-filename",
    "script-torrent-done-seeding-enabled",
    "script-torrent-done-seeding-filename",
];

/// `session-get`'s fields for the programs.
pub fn session_fields(s: &Settings) -> Map<String, Value> {
    let mut m = Map::new();
    for hook in Hook::ALL {
        let (enabled, filename) = keys(hook);
        let (path, _) = hook.setting(s);
        m.insert(enabled.into(), hook.program(s).is_some().into());
        let shown = path
            .as_ref()
            .map_or(String::new(), |p| p.display().to_string());
        m.insert(filename.into(), shown.into());
    }
    m
}

/// One hook's program and switch as they become with `session-set`'s keys.
pub type HookSetting = (Hook, Option<PathBuf>, Option<bool>);

/// The programs' settings as `args` change them (those not named stay), every value checked: a
/// program switched on must be one that can run ([`crate::hooks::check_program`]).
pub fn session_set(args: &Map<String, Value>, s: &Settings) -> Result<Vec<HookSetting>, String> {
    let mut out = Vec::new();
    for hook in Hook::ALL {
        let (enabled_key, filename_key) = keys(hook);
        let enabled = super::switch_arg(args, enabled_key)?;
        let filename = match args.get(filename_key) {
            None => None,
            Some(Value::String(f)) => Some(f.trim().to_string()),
            Some(v) => return Err(format!("{filename_key} must be a program's path, not {v}")),
        };
        if enabled.is_none() && filename.is_none() {
            continue;
        }
        let (old_path, old_on) = hook.setting(s);
        let path = match filename {
            Some(f) if f.is_empty() => None,
            Some(f) => Some(PathBuf::from(f)),
            None => old_path.clone(),
        };
        let on = enabled.or(old_on);
        if on != Some(false) {
            match &path {
                Some(p) => {
                    crate::hooks::check_program(p).map_err(|e| format!("{filename_key}: {e}"))?
                }
                None if enabled == Some(true) => {
                    return Err(format!(
                        "{enabled_key} needs {filename_key}: name the program"
                    ))
                }
                None => {}
            }
        }
        // Switched on is what an unset switch means: only "off" is written.
        out.push((hook, path, on.filter(|on| !on)));
    }
    Ok(out)
}

/// Writes `changes` (from [`session_set`]) into `s`.
pub fn apply(changes: &[HookSetting], s: &mut Settings) {
    for (hook, path, on) in changes {
        let (p, e) = hook.setting_mut(s);
        *p = path.clone();
        *e = *on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn programs_are_checked_and_switched() {
        let s = Settings::default();
        let f = session_fields(&s);
        assert_eq!(f["script-torrent-done-enabled"], false);
        assert_eq!(f["script-torrent-done-filename"], "");
        let set = session_set(
            &args(json!({"script-torrent-done-enabled": true, "script-torrent-done-filename": "/bin/sh"})),
            &s,
        )
        .unwrap();
        assert_eq!(set, [(Hook::Done, Some(PathBuf::from("/bin/sh")), None)]);
        let mut on = s.clone();
        apply(&set, &mut on);
        assert_eq!(session_fields(&on)["script-torrent-done-enabled"], true);
        // Off keeps the filename; on again runs it.
        let off = session_set(&args(json!({"script-torrent-done-enabled": false})), &on).unwrap();
        assert_eq!(
            off,
            [(Hook::Done, Some(PathBuf::from("/bin/sh")), Some(false))]
        );
        let mut s2 = on.clone();
        apply(&off, &mut s2);
        let f = session_fields(&s2);
        assert_eq!(
            (
                &f["script-torrent-done-enabled"],
                &f["script-torrent-done-filename"]
            ),
            (&json!(false), &json!("/bin/sh"))
        );
        for (bad, says) in [
            (
                json!({"script-torrent-added-enabled": true}),
                "needs script-torrent-added-filename",
            ),
            (
                json!({"script-torrent-done-filename": "/no/such"}),
                "script-torrent-done-filename: /no/such",
            ),
            (
                json!({"script-torrent-done-seeding-filename": "sh"}),
                "absolute",
            ),
            (
                json!({"script-torrent-done-filename": 3}),
                "a program's path",
            ),
            (
                json!({"script-torrent-done-enabled": "yes"}),
                "true or false",
            ),
        ] {
            let e = session_set(&args(bad.clone()), &s).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // A missing program may be named while switched off.
        assert!(session_set(
            &args(json!({"script-torrent-done-enabled": false, "script-torrent-done-filename": "/no/such"})),
            &s
        )
        .is_ok());
    }
}
