//! Bandwidth groups (Transmission's `group`, `group-get`/`group-set`): named speed limits that the
//! torrents put in a group share, between each torrent's own limits and the session's.
//!
//! A group's limiters are [`SharedLimiter`]s like the session's (served by the torrents'
//! bandwidth priority). A torrent in a group that honours its parent's limits (its
//! `honors_session_limits`) waits for its own bucket, then for the group's, then, when the group
//! honours the session's limits, for the session's; a torrent that does not honour its parent's
//! is bound by its own limits alone, as in Transmission, where a group is the torrent's parent.
//!
//! A group exists once it is given limits ([`crate::Session::set_group_limits`]) or a torrent is
//! put in it ([`crate::TorrentHandle::set_group`]); it stays for the session's life (unlimited
//! when made by a torrent). Groups are kept by name in one map under one lock, taken alone and
//! never on the transfer path: a torrent holds its group's `Arc`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::bandwidth::SharedLimiter;

/// A group's limits: speeds in bytes per second (`None` = unlimited) and whether the session's
/// limits bind its torrents too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupLimits {
    pub upload: Option<u64>,
    pub download: Option<u64>,
    pub honors_session_limits: bool,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            upload: None,
            download: None,
            honors_session_limits: true,
        }
    }
}

/// One group's live limiters.
#[derive(Debug)]
pub(crate) struct Group {
    pub upload: SharedLimiter,
    pub download: SharedLimiter,
    honors_session: AtomicBool,
}

impl Group {
    fn new(l: &GroupLimits) -> Self {
        Group {
            upload: SharedLimiter::new(l.upload.unwrap_or(0)),
            download: SharedLimiter::new(l.download.unwrap_or(0)),
            honors_session: AtomicBool::new(l.honors_session_limits),
        }
    }

    fn set(&self, l: &GroupLimits) {
        self.upload.set_rate(l.upload.filter(|&r| r > 0));
        self.download.set_rate(l.download.filter(|&r| r > 0));
        self.honors_session
            .store(l.honors_session_limits, Ordering::Relaxed);
    }

    fn get(&self) -> GroupLimits {
        GroupLimits {
            upload: self.upload.rate(),
            download: self.download.rate(),
            honors_session_limits: self.honors_session(),
        }
    }

    pub fn honors_session(&self) -> bool {
        self.honors_session.load(Ordering::Relaxed)
    }
}

/// The session's groups, by name.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    by_name: Mutex<BTreeMap<String, Arc<Group>>>,
}

impl Groups {
    /// The group called `name`, made unlimited if there is none.
    pub fn get_or_make(&self, name: &str) -> Arc<Group> {
        self.by_name
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Group::new(&GroupLimits::default())))
            .clone()
    }

    /// Gives the group `name` (made if there is none) `limits`, at once for its torrents.
    pub fn set(&self, name: &str, limits: &GroupLimits) {
        let mut all = self.by_name.lock();
        match all.get(name) {
            Some(g) => g.set(limits),
            None => {
                all.insert(name.to_string(), Arc::new(Group::new(limits)));
            }
        }
    }

    /// Every group and its limits, by name.
    pub fn list(&self) -> Vec<(String, GroupLimits)> {
        let all = self.by_name.lock();
        all.iter().map(|(n, g)| (n.clone(), g.get())).collect()
    }
}

impl super::Session {
    /// Gives the bandwidth group `name` (made if there is none) `limits`; its torrents follow at
    /// once.
    pub fn set_group_limits(&self, name: &str, limits: GroupLimits) {
        self.ctx().groups.set(name, &limits);
    }

    /// Every bandwidth group of the session and its limits, by name.
    pub fn groups(&self) -> Vec<(String, GroupLimits)> {
        self.ctx().groups.list()
    }
}

impl super::TorrentHandle {
    /// The bandwidth group the torrent is in.
    pub fn group(&self) -> Option<String> {
        self.0.limits.group_name()
    }

    /// Puts the torrent in the bandwidth group `name` (made unlimited if there is none), or in
    /// none; its transfers follow at once.
    pub fn set_group(&self, name: Option<&str>) {
        let group = name.map(|n| (n.to_string(), self.0.ctx.groups.get_or_make(n)));
        self.0.limits.set_group(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_made_once_and_changed_in_place() {
        let groups = Groups::default();
        let made = groups.get_or_make("backup");
        assert_eq!(made.get(), GroupLimits::default());
        let slow = GroupLimits {
            upload: Some(50_000),
            download: None,
            honors_session_limits: false,
        };
        groups.set("backup", &slow);
        assert_eq!(made.get(), slow, "the torrents' Arc sees the change");
        assert!(Arc::ptr_eq(&made, &groups.get_or_make("backup")));
        groups.set("media", &GroupLimits::default());
        let names: Vec<String> = groups.list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["backup", "media"]);
        groups.set("backup", &GroupLimits::default());
        assert_eq!(
            made.get(),
            GroupLimits::default(),
            "0 and None are unlimited"
        );
    }
}
