//! Hand edits of managed torrents' entries: what someone else (an editor, a script writing the
//! file) changed in a torrent's `state`, own limits, bandwidth group, choice of files (which to
//! fetch, first or last, in order or not; not their names) or data folder (`data`: where its files
//! are now), told from this process's own saves, until the owner of the session applies it
//! ([`super::Torrents::take_edits`]).
//!
//! Invariant: `known` is each entry's applied fields as of the last version of the file this
//! process read or saved; `pending` holds, per torrent, the fields a version read from disk
//! changed against `known`, the latest value of each, minus those a later save of our own says
//! otherwise (the later word wins).

use std::collections::HashMap;

use crate::config::{Config, EntryLimits, FileChoice, ManagedTorrent};
use crate::types::InfoHash;

/// The fields of an entry a hand edit applies to its running torrent.
#[derive(Debug, Clone, PartialEq)]
struct Applied {
    state: String,
    limits: EntryLimits,
    group: Option<String>,
    /// The choice of files without the renames (a rename moves files: `b-rename` does that).
    files: FileChoice,
    /// The data folder, as the entry writes it.
    data: std::path::PathBuf,
}

impl Applied {
    fn of(t: &ManagedTorrent) -> Applied {
        Applied {
            state: t.state.clone(),
            limits: t.limits,
            group: t.group.clone(),
            files: FileChoice {
                renamed: Vec::new(),
                ..t.files.clone()
            },
            data: t.data.clone(),
        }
    }
}

/// What a hand edit changed in one entry (`None`: that field did not change).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryEdit {
    pub state: Option<String>,
    pub limits: Option<EntryLimits>,
    /// The new group (`Some(None)`: out of any group).
    pub group: Option<Option<String>>,
    /// The new choice of files (its renames left out).
    pub files: Option<FileChoice>,
    /// The new data folder, as the entry writes it (relative to torrents.toml's folder or not).
    pub data: Option<std::path::PathBuf>,
}

impl EntryEdit {
    fn is_empty(&self) -> bool {
        *self == EntryEdit::default()
    }

    /// Drops each field `now` says otherwise.
    fn keep_agreeing(&mut self, now: &Applied) {
        if self.state.as_ref().is_some_and(|s| *s != now.state) {
            self.state = None;
        }
        if self.limits.is_some_and(|l| l != now.limits) {
            self.limits = None;
        }
        if self.group.as_ref().is_some_and(|g| *g != now.group) {
            self.group = None;
        }
        if self.files.as_ref().is_some_and(|f| *f != now.files) {
            self.files = None;
        }
        if self.data.as_ref().is_some_and(|d| *d != now.data) {
            self.data = None;
        }
    }
}

/// The entries as this process last knew the file, and the hand edits not yet applied.
#[derive(Default)]
pub(super) struct HandEdits {
    known: HashMap<InfoHash, Applied>,
    pending: HashMap<InfoHash, EntryEdit>,
}

impl HandEdits {
    /// Takes in a version of the file: one read from disk (`by_hand`, someone else's) notes each
    /// changed field; one saved here drops the notes it contradicts.
    pub(super) fn take_in(&mut self, cfg: &Config, by_hand: bool) {
        let now: HashMap<InfoHash, Applied> = cfg
            .torrents
            .iter()
            .filter_map(|t| Some((t.hash()?, Applied::of(t))))
            .collect();
        if by_hand {
            for (ih, new) in &now {
                let Some(was) = self.known.get(ih) else {
                    continue;
                };
                let edit = self.pending.entry(*ih).or_default();
                if was.state != new.state {
                    edit.state = Some(new.state.clone());
                }
                if was.limits != new.limits {
                    edit.limits = Some(new.limits);
                }
                if was.group != new.group {
                    edit.group = Some(new.group.clone());
                }
                if was.files != new.files {
                    edit.files = Some(new.files.clone());
                }
                if was.data != new.data {
                    edit.data = Some(new.data.clone());
                }
            }
        }
        self.pending.retain(|ih, edit| {
            match now.get(ih) {
                Some(applied) => edit.keep_agreeing(applied),
                None => *edit = EntryEdit::default(),
            }
            !edit.is_empty()
        });
        self.known = now;
    }

    /// Drops the pending edit of torrent `ih`'s data folder: a command moved its data, or
    /// pointed it elsewhere, after it (the later word wins).
    pub(super) fn supersede_data(&mut self, ih: &InfoHash) {
        if let Some(edit) = self.pending.get_mut(ih) {
            edit.data = None;
            if edit.is_empty() {
                self.pending.remove(ih);
            }
        }
    }

    pub(super) fn take(&mut self) -> Vec<(InfoHash, EntryEdit)> {
        self.pending.drain().collect()
    }
}
