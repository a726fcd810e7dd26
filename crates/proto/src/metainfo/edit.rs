//! Changing a torrent's trackers without touching its `info` dictionary, so the info-hash stays the
//! same.
//!
//! The top-level dictionary is rebuilt from the raw spans of its values: [`edit_trackers`] makes a new
//! URL the primary (`announce`; in `announce-list`, if present, its own first tier with the old
//! primary removed from the remaining tiers, backup trackers kept), [`set_tracker_tiers`] writes a
//! whole list of tiers, [`change_trackers`] applies a [`TrackerEdit`] (a new primary, backups added,
//! some removed, or none kept); every other key, `info` included, is copied byte for byte.
//! [`set_piece_layers`] gives a v2 or hybrid torrent its `piece layers` the same way.

use super::{Metainfo, MetainfoError};
use crate::bencode::{self, Writer};

/// Returns the bytes of `meta` with its tracker replaced by `url`.
pub fn edit_trackers(meta: &Metainfo, url: &str) -> Result<Vec<u8>, MetainfoError> {
    let url = url.trim();
    super::check_tracker_url(url)?;
    let old_primary = meta.announce.clone();
    let new_list: Option<Vec<Vec<String>>> = (!meta.announce_list.is_empty()).then(|| {
        let mut tiers = vec![vec![url.to_string()]];
        for tier in &meta.announce_list {
            let kept: Vec<String> = tier
                .iter()
                .filter(|u| *u != url && Some(*u) != old_primary.as_ref())
                .cloned()
                .collect();
            if !kept.is_empty() {
                tiers.push(kept);
            }
        }
        tiers
    });
    rewrite(meta, Some(url), new_list.as_deref())
}

/// Returns the bytes of `meta` announcing to `tiers` (BEP 12): `announce` the first tier's first URL,
/// `announce-list` the tiers when there is more than one URL, neither when `tiers` is empty. Empty
/// tiers are dropped.
pub fn set_tracker_tiers(meta: &Metainfo, tiers: &[Vec<String>]) -> Result<Vec<u8>, MetainfoError> {
    let tiers: Vec<Vec<String>> = tiers
        .iter()
        .map(|t| t.iter().map(|u| u.trim().to_string()).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .collect();
    for url in tiers.iter().flatten() {
        super::check_tracker_url(url)?;
    }
    let primary = tiers.first().map(|t| t[0].as_str());
    let list = (tiers.iter().flatten().count() > 1).then_some(&tiers[..]);
    rewrite(meta, primary, list)
}

/// A change to a torrent's trackers, applied in this order: `clear` drops them all, `primary`
/// becomes the first (as [`edit_trackers`] makes it: a tier of its own, the old primary dropped),
/// each URL of `remove` leaves every tier, each of `add` not there yet is a tier of its own after
/// the others (a backup, BEP 12).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TrackerEdit {
    pub clear: bool,
    pub primary: Option<String>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl TrackerEdit {
    /// The tiers `tiers` become (URLs trimmed; no empty tier).
    pub fn apply(&self, tiers: &[Vec<String>]) -> Vec<Vec<String>> {
        let mut tiers: Vec<Vec<String>> = if self.clear {
            Vec::new()
        } else {
            tiers.to_vec()
        };
        if let Some(primary) = &self.primary {
            let primary = primary.trim().to_string();
            let old = tiers.first().and_then(|t| t.first()).cloned();
            let mut next = vec![vec![primary.clone()]];
            for tier in tiers {
                let kept: Vec<String> = tier
                    .into_iter()
                    .filter(|u| *u != primary && Some(u) != old.as_ref())
                    .collect();
                next.push(kept);
            }
            tiers = next;
        }
        let gone: Vec<&str> = self.remove.iter().map(|u| u.trim()).collect();
        for tier in &mut tiers {
            tier.retain(|u| !gone.contains(&u.as_str()));
        }
        tiers.retain(|t| !t.is_empty());
        for url in &self.add {
            let url = url.trim();
            if !tiers.iter().flatten().any(|u| u == url) {
                tiers.push(vec![url.to_string()]);
            }
        }
        tiers
    }
}

/// Returns the bytes of `meta` with its trackers changed as `edit` says (each URL given checked as
/// a tracker URL).
pub fn change_trackers(meta: &Metainfo, edit: &TrackerEdit) -> Result<Vec<u8>, MetainfoError> {
    for url in edit.primary.iter().chain(&edit.add) {
        super::check_tracker_url(url.trim())?;
    }
    set_tracker_tiers(meta, &edit.apply(&meta.tracker_tiers()))
}

/// Returns the bytes of `meta` with `layers` (a bencoded `piece layers` dictionary, as
/// [`LayersNeeded::derive`](super::v2::LayersNeeded::derive) makes it) as its piece layers. The
/// result is read back, so layers that do not give their files' roots are refused.
pub fn set_piece_layers(meta: &Metainfo, layers: &[u8]) -> Result<Vec<u8>, MetainfoError> {
    with_keys(
        meta,
        vec![(b"piece layers".to_vec(), Some(layers.to_vec()))],
    )
}

/// `meta`'s dictionary with `announce` and `announce-list` replaced (each left out when `None`).
fn rewrite(
    meta: &Metainfo,
    announce: Option<&str>,
    list: Option<&[Vec<String>]>,
) -> Result<Vec<u8>, MetainfoError> {
    let mut keys = vec![
        (b"announce".to_vec(), None),
        (b"announce-list".to_vec(), None),
    ];
    let mut w = Writer::default();
    if let Some(url) = announce {
        w.bytes(url.as_bytes());
        keys[0].1 = Some(std::mem::take(&mut w.buf));
    }
    if let Some(tiers) = list {
        w.begin_list();
        for tier in tiers {
            w.begin_list();
            for u in tier.iter() {
                w.bytes(u.as_bytes());
            }
            w.end();
        }
        w.end();
        keys[1].1 = Some(std::mem::take(&mut w.buf));
    }
    with_keys(meta, keys)
}

/// `meta`'s dictionary with each of `keys` given its value (raw bencode), or left out (`None`);
/// every other entry copied byte for byte. The result is read back and must keep the info-hash.
fn with_keys(
    meta: &Metainfo,
    keys: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<Vec<u8>, MetainfoError> {
    let bytes = meta.as_bytes();
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = bencode::dict_entries(bytes)?
        .iter()
        .filter(|e| !keys.iter().any(|(k, _)| k == e.key))
        .map(|e| (e.key.to_vec(), bytes[e.value.clone()].to_vec()))
        .collect();
    out.extend(keys.into_iter().filter_map(|(k, v)| Some((k, v?))));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut w = Writer::default();
    w.begin_dict();
    for (k, v) in &out {
        w.bytes(k).raw(v);
    }
    w.end();
    let edited = Metainfo::from_bytes(&w.buf)?;
    debug_assert_eq!(edited.info_hash, meta.info_hash);
    Ok(w.buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_edit_replaces_adds_and_removes_in_tiers() {
        let t = |s: &[&[&str]]| -> Vec<Vec<String>> {
            s.iter()
                .map(|tier| tier.iter().map(|u| u.to_string()).collect())
                .collect()
        };
        let now = t(&[&["http://a/x", "http://b/x"], &["http://c/x"]]);
        let add = TrackerEdit {
            add: vec![" http://d/x ".into(), "http://c/x".into()],
            ..Default::default()
        };
        assert_eq!(
            add.apply(&now),
            t(&[
                &["http://a/x", "http://b/x"],
                &["http://c/x"],
                &["http://d/x"]
            ])
        );
        let remove = TrackerEdit {
            remove: vec!["http://c/x".into(), "http://b/x".into()],
            ..Default::default()
        };
        assert_eq!(remove.apply(&now), t(&[&["http://a/x"]]));
        let primary = TrackerEdit {
            primary: Some("http://n/x".into()),
            ..Default::default()
        };
        assert_eq!(
            primary.apply(&now),
            t(&[&["http://n/x"], &["http://b/x"], &["http://c/x"]])
        );
        let fresh = TrackerEdit {
            clear: true,
            add: vec!["http://z/x".into()],
            ..Default::default()
        };
        assert_eq!(fresh.apply(&now), t(&[&["http://z/x"]]));
        let none = TrackerEdit {
            clear: true,
            ..Default::default()
        };
        assert!(none.apply(&now).is_empty());
    }

    #[test]
    fn keeps_info_bytes_and_unknown_keys() {
        let mut w = Writer::default();
        w.begin_dict().bytes(b"announce").bytes(b"http://old/a");
        w.bytes(b"announce-list").begin_list();
        w.begin_list().bytes(b"http://old/a").end();
        w.begin_list().bytes(b"http://backup/a").end().end();
        w.bytes(b"info").begin_dict().bytes(b"length").int(3);
        w.bytes(b"name")
            .bytes(b"x")
            .bytes(b"piece length")
            .int(16384);
        w.bytes(b"pieces")
            .bytes(&[1; 20])
            .bytes(b"zzz-unknown")
            .int(9)
            .end();
        w.bytes(b"url-list").bytes(b"http://web/seed").end();
        let before = Metainfo::from_bytes(&w.buf).unwrap();
        let edited = edit_trackers(&before, "http://new:6969/announce").unwrap();
        let after = Metainfo::from_bytes(&edited).unwrap();
        assert_eq!(after.info_hash, before.info_hash);
        assert_eq!(after.info_bytes(), before.info_bytes());
        assert_eq!(after.announce.as_deref(), Some("http://new:6969/announce"));
        assert_eq!(
            after.announce_list,
            vec![
                vec!["http://new:6969/announce".to_string()],
                vec!["http://backup/a".to_string()]
            ]
        );
        assert!(edited.windows(8).any(|w| w == b"url-list"));
        bencode::validate(&edited, true).unwrap();
        assert!(edit_trackers(&before, "not a url").is_err());

        // A whole list of tiers: announce-list only with more than one URL, nothing with none.
        let tiers = vec![
            vec!["udp://one:6969".to_string(), "http://two/a".to_string()],
            vec![],
            vec!["http://three/a".to_string()],
        ];
        let after = Metainfo::from_bytes(&set_tracker_tiers(&before, &tiers).unwrap()).unwrap();
        assert_eq!(after.info_bytes(), before.info_bytes());
        assert_eq!(after.announce.as_deref(), Some("udp://one:6969"));
        assert_eq!(
            after.tracker_tiers(),
            vec![tiers[0].clone(), tiers[2].clone()]
        );
        let one = set_tracker_tiers(&before, &[vec!["http://only/a".to_string()]]).unwrap();
        let after = Metainfo::from_bytes(&one).unwrap();
        assert!(after.announce_list.is_empty());
        assert_eq!(after.trackers(), ["http://only/a"]);
        let none = Metainfo::from_bytes(&set_tracker_tiers(&before, &[]).unwrap()).unwrap();
        assert!(none.trackers().is_empty());
        assert_eq!(none.info_hash, before.info_hash);
        assert!(set_tracker_tiers(&before, &[vec!["bad url".to_string()]]).is_err());
    }
}
