//! Hand edits of running torrents' entries put in force: what [`Torrents::take_edits`] noted (a
//! torrent's `state`, own limits, bandwidth group, choice of files, data folder changed in
//! torrents.toml by someone else) applied to the session as the commands would apply it, or as a
//! restart would take the entry: a new `data` is where the files are now (moved there by hand,
//! say), so the torrent looks for them there and checks them, as `b-move --find` does, moving
//! nothing itself. Called by [`PeerSlot::sync_managed`] after each sync, outside the membership
//! lock (a stop takes it).
//!
//! [`Torrents::take_edits`]: crate::torrents::Torrents::take_edits

use std::path::Path;

use anyhow::{Context, Result};

use super::PeerSlot;
use crate::config::FileChoice;
use crate::engine::{Session, TorrentState};
use crate::script::live::{AfterRemove, LiveTorrents};
use crate::types::InfoHash;

impl PeerSlot {
    /// Applies every edit noted since the last sync to the torrents `session` runs; a torrent it
    /// does not run is left to the sync, which starts it (unless it is `stopped`) as its entry says.
    pub(super) async fn apply_hand_edits(&self, session: &Session) {
        for (ih, edit) in self.torrents().take_edits() {
            if session.get(&ih).is_none() {
                continue;
            }
            if let Some(data) = &edit.data {
                if let Err(e) = self.apply_data_edit(session, ih, data).await {
                    tracing::warn!("{ih}: its data where torrents.toml now says: {e:#}");
                }
            }
            if let Some(limits) = edit.limits {
                self.set_limits(&ih, limits.engine());
            }
            if let Some(group) = &edit.group {
                self.set_group(&ih, group.as_deref());
            }
            if let Some(files) = &edit.files {
                if let Err(e) = self.apply_file_choice(session, &ih, files) {
                    tracing::warn!("{ih}: the files torrents.toml now chooses: {e:#}");
                }
            }
            if let Some(state) = &edit.state {
                if let Err(e) = self.apply_state_edit(session, ih, state).await {
                    tracing::warn!("{ih}: torrents.toml says {state}, which cannot be done: {e:#}");
                }
            }
        }
    }

    /// A running torrent's choice of files: every file's priority as the entry now says (absent
    /// from its lists: normal), and its order.
    fn apply_file_choice(
        &self,
        session: &Session,
        ih: &InfoHash,
        files: &FileChoice,
    ) -> Result<()> {
        let Some(h) = session.get(ih) else {
            return Ok(());
        };
        let n = h.meta().info.files.len();
        let all = files
            .priorities(n)
            .unwrap_or_else(|| vec![crate::engine::FilePriority::Normal; n]);
        let order = crate::actions::OrderChange {
            sequential: Some(files.sequential),
            sequential_from: Some(files.sequential_from),
        };
        self.choose_files(ih, all.into_iter().enumerate().collect(), order)
            .map(drop)
    }

    /// A running torrent's data folder changed by hand to `data` (as the entry writes it): the
    /// torrent is pointed there (the folder made if missing) and checks what it finds; one there
    /// already is left alone.
    async fn apply_data_edit(&self, session: &Session, ih: InfoHash, data: &Path) -> Result<()> {
        let Some(h) = session.get(&ih) else {
            return Ok(());
        };
        let dir = self.torrents().config()?.resolve(data);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        // Where it is already: the save of a command that moved it (a one-shot `b-move` records
        // the folder once this process has moved the data), or an edit of the spelling alone.
        let same = |a: &Path, b: &Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        if same(&h.stats().data_dir, &dir) {
            return Ok(());
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        tracing::info!(
            "{}: its data is in {}, as torrents.toml now says",
            h.name(),
            dir.display()
        );
        // The torrent says `moved` once it has looked. The engine's own call: a command's would
        // take the edit noted after this one for one it supersedes.
        h.relocate(dir).await?;
        Ok(())
    }

    /// One hand edit of a running torrent's state; one already in that state is left alone.
    async fn apply_state_edit(&self, session: &Session, ih: InfoHash, state: &str) -> Result<()> {
        let Some(h) = session.get(&ih) else {
            return Ok(());
        };
        let paused = h.stats().state == TorrentState::Paused;
        let name = h.name().to_string();
        let slot = self.clone();
        let torrents = self.torrents().clone();
        match state {
            "paused" if !paused => {
                tracing::info!("{name}: paused, as torrents.toml now says");
                tokio::task::spawn_blocking(move || {
                    crate::actions::pause_as(&torrents, &slot, &ih, &name, Some("paused"))
                })
                .await?
            }
            "downloading" | "seeding" if paused => {
                let edited = state.to_string();
                tracing::info!("{name}: resumed, as torrents.toml now says");
                tokio::task::spawn_blocking(move || {
                    crate::actions::resume_as(&torrents, &slot, &ih, &name, Some(&edited))
                })
                .await?
            }
            "stopped" => {
                tracing::info!("{name}: stopped, as torrents.toml now says");
                // The entry says `stopped` already, or a newer edit the next sync applies.
                self.remove_managed(ih, AfterRemove::Keep).await.map(drop)
            }
            _ => Ok(()),
        }
    }
}
