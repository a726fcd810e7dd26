//! File selection over the RPC: `torrent-set` and `torrent-add`'s `files-wanted`/`files-unwanted`/
//! `priority-high|normal|low`, and `torrent-get`'s `files`, `fileStats`, `wanted`, `priorities`.
//!
//! Transmission numbers a torrent's files from 0 without its BEP 47 padding files; btorrent's engine
//! numbers every file, so indices are mapped both ways here. Transmission keeps a priority for an
//! unwanted file too; btorrent's engine has one value per file (skip, low, normal, high), so a
//! skipped file reports priority 0 (normal), a priority set on a file that stays unwanted is not kept,
//! and a file wanted again gets the priority the same request sets, else normal. An empty index list
//! means every file, as in Transmission.

use serde_json::{json, Map, Value};

use crate::engine::{FilePriority, FileStatus};
use crate::metainfo::Info;

/// The keys that choose files.
pub const KEYS: [&str; 5] = [
    "files-wanted",
    "files-unwanted",
    "priority-high",
    "priority-low",
    "priority-normal",
];

/// How many files the RPC lists (`file-count`): the torrent's, without padding files.
pub fn count(info: &Info) -> usize {
    info.files.iter().filter(|f| !f.padding).count()
}

/// The MIME type of the torrent's largest share of bytes (`primary-mime-type`), by file name
/// extension, files of one type counted together; `application/octet-stream` when none is known.
pub fn primary_mime_type(info: &Info) -> String {
    let mut bytes: std::collections::HashMap<String, u64> = Default::default();
    for f in info.files.iter().filter(|f| !f.padding) {
        let mime = mime_guess::from_path(&f.path).first_or_octet_stream();
        *bytes.entry(mime.essence_str().to_string()).or_default() += f.length;
    }
    bytes
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .map_or_else(|| "application/octet-stream".into(), |(m, _)| m)
}

/// The engine's index of each file the RPC numbers (the files that are not padding).
fn engine_indices(info: &Info) -> Vec<usize> {
    (0..info.files.len())
        .filter(|&f| !info.files[f].padding)
        .collect()
}

/// The engine indices `args[key]` names (`None` when the key is absent).
fn indices(
    info: &Info,
    args: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<usize>>, String> {
    let map = engine_indices(info);
    let list = match args.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(format!("{key} must be an array of file indices, not {v}")),
    };
    if list.is_empty() {
        return Ok(Some(map));
    }
    list.iter()
        .map(|v| {
            v.as_u64()
                .and_then(|i| map.get(i as usize).copied())
                .ok_or_else(|| {
                    format!(
                        "{key}: {v} is not a file of {} (it has {}, from 0)",
                        info.name,
                        map.len()
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The changes the selection keys of `args` make to files whose priorities are `current`; empty when
/// `args` has none of them.
pub fn changes(
    info: &Info,
    current: &[FilePriority],
    args: &Map<String, Value>,
) -> Result<Vec<(usize, FilePriority)>, String> {
    let mut next = current.to_vec();
    let mut asked: Vec<Option<FilePriority>> = vec![None; current.len()];
    for (key, p) in [
        ("priority-low", FilePriority::Low),
        ("priority-normal", FilePriority::Normal),
        ("priority-high", FilePriority::High),
    ] {
        for f in indices(info, args, key)?.unwrap_or_default() {
            asked[f] = Some(p);
            if next[f].wanted() {
                next[f] = p;
            }
        }
    }
    for f in indices(info, args, "files-wanted")?.unwrap_or_default() {
        if !next[f].wanted() {
            next[f] = asked[f].unwrap_or(FilePriority::Normal);
        }
    }
    for f in indices(info, args, "files-unwanted")?.unwrap_or_default() {
        next[f] = FilePriority::Skip;
    }
    Ok((0..next.len())
        .filter(|&f| next[f] != current[f])
        .map(|f| (f, next[f]))
        .collect())
}

/// Transmission's priority number: -1 low, 0 normal (and skipped), 1 high.
fn priority_number(p: FilePriority) -> i64 {
    match p {
        FilePriority::Low => -1,
        FilePriority::High => 1,
        FilePriority::Normal | FilePriority::Skip => 0,
    }
}

/// `torrent-get`'s file fields from the engine's view of the files (in `info`'s order); `None`
/// for another field.
pub fn field(name: &str, files: &[FileStatus], info: &crate::metainfo::Info) -> Option<Value> {
    let shown = files.iter().filter(|f| !f.padding);
    Some(match name {
        "files" => Value::Array(
            files
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.padding)
                .map(|(i, f)| {
                    // Transmission 4.1's `begin_piece` and `end_piece` (exclusive).
                    let pieces = info.file_pieces(i);
                    let (begin, end) = (pieces.start, pieces.end);
                    json!({
                        "name": f.path.display().to_string(), "length": f.length,
                        "bytesCompleted": f.done, "begin_piece": begin, "end_piece": end,
                    })
                })
                .collect(),
        ),
        "fileStats" => Value::Array(
            shown
                .map(|f| {
                    json!({
                        "bytesCompleted": f.done, "wanted": f.priority.wanted(),
                        "priority": priority_number(f.priority),
                    })
                })
                .collect(),
        ),
        "wanted" => json!(shown
            .map(|f| i64::from(f.priority.wanted()))
            .collect::<Vec<_>>()),
        "priorities" => json!(shown
            .map(|f| priority_number(f.priority))
            .collect::<Vec<_>>()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use FilePriority::*;

    fn info(padding: &[bool]) -> Info {
        let files = padding
            .iter()
            .enumerate()
            .map(|(i, &padding)| (format!("t/f{i}").into(), 10, padding));
        Info::laid_out("t", 16384, files)
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_primary_mime_type_is_the_type_with_the_most_bytes_and_padding_is_not_counted() {
        let mut i = info(&[false, false, false, true]);
        let named = [
            ("t/ep1.mkv", 40),
            ("t/ep1.srt", 5),
            ("t/ep2.mkv", 40),
            ("t/pad", 500),
        ];
        for (f, (path, len)) in i.files.iter_mut().zip(named) {
            f.path = path.into();
            f.length = len;
        }
        assert_eq!(count(&i), 3);
        assert_eq!(primary_mime_type(&i), "video/x-matroska");
        i.files[1].length = 100;
        i.files[1].path = "t/notes.txt".into();
        assert_eq!(primary_mime_type(&i), "text/plain");
        i.files.clear();
        assert_eq!(primary_mime_type(&i), "application/octet-stream");
    }

    #[test]
    fn indices_skip_padding_and_priorities_follow_transmission() {
        // Engine files 0, 1 (padding), 2, 3: the RPC's 0, 1, 2 are the engine's 0, 2, 3.
        let i = info(&[false, true, false, false]);
        let now = [Normal, Skip, Normal, Normal];
        let c = changes(&i, &now, &args(json!({"files-unwanted": [1]}))).unwrap();
        assert_eq!(c, [(2, Skip)]);
        let skipped = [Normal, Skip, Skip, Normal];
        let c = changes(
            &i,
            &skipped,
            &args(json!({"files-wanted": [1], "priority-high": [1, 2], "priority-low": [0]})),
        )
        .unwrap();
        assert_eq!(c, [(0, Low), (2, High), (3, High)]);
        // A priority alone does not bring a skipped file in.
        assert!(changes(&i, &skipped, &args(json!({"priority-high": [1]})))
            .unwrap()
            .is_empty());
        // Empty = every file.
        let c = changes(&i, &now, &args(json!({"files-unwanted": []}))).unwrap();
        assert_eq!(c, [(0, Skip), (2, Skip), (3, Skip)]);
        let e = changes(&i, &now, &args(json!({"files-wanted": [3]}))).unwrap_err();
        assert!(
            e.contains("files-wanted: 3 is not a file of t (it has 3, from 0)"),
            "{e}"
        );
    }
}
