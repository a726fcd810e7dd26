//! Tracker announces for one torrent (filled in once the tracker client is available).

use std::sync::Arc;

use super::torrent::Torrent;

pub(crate) struct Announcer;

impl Announcer {
    pub fn new(_t: &Arc<Torrent>) -> Self {
        Announcer
    }
    pub fn completed(&mut self) {}
    pub fn poll(&mut self, _t: &Arc<Torrent>) {}
}

pub(crate) async fn announce_stopped(_t: &Arc<Torrent>) {}
