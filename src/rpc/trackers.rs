//! Editing a torrent's trackers through `torrent-set`: Transmission 4's `trackerList` (the whole
//! list as text: announce URLs one per line, a blank line between tiers, as `torrent-get`'s
//! `trackerList` gives it), and Transmission 3.00's `trackerAdd` (URLs, each added as a tier of its
//! own), `trackerRemove` (tracker ids) and `trackerReplace` (pairs of id and URL, flattened:
//! `[0, "http://...", 2, "udp://..."]`). A tracker's id is its place in the torrent's list, as
//! `torrent-get`'s `trackers` and `trackerStats` give it. Every change is checked before the
//! torrent changes; [`crate::actions::set_trackers`] writes the result.

use serde_json::{Map, Value};

/// The `torrent-set` keys that edit trackers.
pub const KEYS: [&str; 4] = ["trackerAdd", "trackerRemove", "trackerReplace", LIST];

/// `session-get`'s and `session-set`'s key for the trackers every public torrent announces to
/// besides its own (rpc-version 17): text as `trackerList`'s, a blank line between tiers.
pub const DEFAULT_TRACKERS: &str = "default-trackers";

/// `session-set`'s `default-trackers`, read into tiers and checked (`None` when absent); `""`
/// clears them.
pub fn default_trackers_arg(args: &Map<String, Value>) -> Result<Option<Vec<Vec<String>>>, String> {
    let text = match args.get(DEFAULT_TRACKERS) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(t)) => t,
        Some(v) => {
            return Err(format!(
                "{DEFAULT_TRACKERS} must be text, one announce URL per line, not {v}"
            ))
        }
    };
    let tiers = parse_list(text);
    for url in tiers.iter().flatten() {
        btorrent_proto::metainfo::check_tracker_url(url)
            .map_err(|e| format!("{DEFAULT_TRACKERS}: {url:?} is not a tracker URL: {e}"))?;
    }
    Ok(Some(tiers))
}

/// The key that replaces the whole list.
const LIST: &str = "trackerList";

/// Tiers as `trackerList` writes them: announce URLs one per line, a blank line between tiers.
pub fn list_text(tiers: &[Vec<String>]) -> String {
    tiers
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| t.join("\n"))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The tiers `trackerList`'s text names (a URL named twice counts once, where it first appears).
pub fn parse_list(text: &str) -> Vec<Vec<String>> {
    let mut tiers = vec![Vec::new()];
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if tiers.last().is_some_and(|t| !t.is_empty()) {
                tiers.push(Vec::new());
            }
        } else if seen.insert(line.to_string()) {
            tiers
                .last_mut()
                .expect("one tier at least")
                .push(line.to_string());
        }
    }
    tiers.retain(|t| !t.is_empty());
    tiers
}

/// The tiers after the edits `args` asks for. `urls` is the torrent's list (the ids index it),
/// `tiers` its trackers grouped in tiers (BEP 12): a tracker removed or replaced keeps its tier's
/// place, one added goes in a new last tier.
pub fn edited(
    args: &Map<String, Value>,
    urls: &[String],
    mut tiers: Vec<Vec<String>>,
) -> Result<Vec<Vec<String>>, String> {
    let url_of = |v: &Value| -> Result<String, String> {
        let id = v
            .as_u64()
            .ok_or_else(|| format!("a tracker id is a number, not {v}"))?;
        urls.get(id as usize)
            .cloned()
            .ok_or_else(|| format!("the torrent has no tracker {id}"))
    };
    let list = |key: &str| -> Result<Vec<Value>, String> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(v) => Err(format!("{key} must be a list, not {v}")),
        }
    };
    let text = |v: &Value, key: &str| -> Result<String, String> {
        v.as_str()
            .map(|s| s.trim().to_string())
            .ok_or_else(|| format!("{key} takes tracker URLs, not {v}"))
    };
    match args.get(LIST) {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => {
            if ["trackerAdd", "trackerRemove", "trackerReplace"]
                .iter()
                .any(|k| args.get(*k).is_some_and(|v| !v.is_null()))
            {
                return Err(format!(
                    "{LIST} replaces the whole list: send it without trackerAdd, trackerRemove or trackerReplace"
                ));
            }
            tiers = parse_list(text);
        }
        Some(v) => {
            return Err(format!(
                "{LIST} takes announce URLs, one per line, a blank line between tiers, not {v}"
            ))
        }
    }
    for v in list("trackerRemove")? {
        let gone = url_of(&v)?;
        for tier in &mut tiers {
            tier.retain(|u| *u != gone);
        }
    }
    let replace = list("trackerReplace")?;
    if replace.len() % 2 != 0 {
        return Err("trackerReplace takes pairs of tracker id and URL".into());
    }
    for pair in replace.chunks(2) {
        let (old, new) = (url_of(&pair[0])?, text(&pair[1], "trackerReplace")?);
        for tier in &mut tiers {
            for u in tier.iter_mut().filter(|u| **u == old) {
                u.clone_from(&new);
            }
        }
    }
    for v in list("trackerAdd")? {
        let url = text(&v, "trackerAdd")?;
        if !tiers.iter().flatten().any(|u| *u == url) {
            tiers.push(vec![url]);
        }
    }
    for url in tiers.iter().flatten() {
        btorrent_proto::metainfo::check_tracker_url(url).map_err(|e| e.to_string())?;
    }
    tiers.retain(|t| !t.is_empty());
    Ok(tiers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn adds_removes_and_replaces_by_id() {
        let urls: Vec<String> = ["http://a/x", "http://b/x", "udp://c:1"]
            .map(String::from)
            .to_vec();
        let tiers = vec![urls[..2].to_vec(), urls[2..].to_vec()];
        let got = edited(
            &args(
                json!({"trackerRemove": [0], "trackerReplace": [2, "udp://d:2"],
                         "trackerAdd": ["http://e/x", "http://b/x"]}),
            ),
            &urls,
            tiers.clone(),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                vec!["http://b/x".to_string()],
                vec!["udp://d:2".to_string()],
                vec!["http://e/x".to_string()]
            ]
        );
        // Removing every tracker leaves none.
        let none = edited(
            &args(json!({"trackerRemove": [0, 1, 2]})),
            &urls,
            tiers.clone(),
        );
        assert_eq!(none.unwrap(), Vec::<Vec<String>>::new());
        // The whole list as text: tiers between blank lines, a URL named twice once.
        let text = "http://e/x\n\n\n udp://f:1 \nhttp://e/x\nhttp://g/x\n";
        let got = edited(&args(json!({"trackerList": text})), &urls, tiers.clone()).unwrap();
        let want = vec![
            vec!["http://e/x".to_string()],
            vec!["udp://f:1".to_string(), "http://g/x".to_string()],
        ];
        assert_eq!(got, want);
        assert_eq!(list_text(&want), "http://e/x\n\nudp://f:1\nhttp://g/x");
        let none = edited(&args(json!({"trackerList": ""})), &urls, tiers.clone());
        assert_eq!(none.unwrap(), Vec::<Vec<String>>::new());
        for (bad, want) in [
            (json!({"trackerList": 7}), "one per line"),
            (
                json!({"trackerList": "http://a/x", "trackerAdd": ["http://b/x"]}),
                "whole list",
            ),
            (json!({"trackerList": "not a url"}), "not a tracker URL"),
            (json!({"trackerRemove": [7]}), "no tracker 7"),
            (json!({"trackerRemove": ["0"]}), "is a number"),
            (json!({"trackerReplace": [0]}), "pairs"),
            (json!({"trackerAdd": ["not a url"]}), "not a tracker URL"),
            (json!({"trackerAdd": "http://a/x"}), "must be a list"),
        ] {
            let e = edited(&args(bad.clone()), &urls, tiers.clone()).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
