//! The prompt: `btorrent [3 torrents · 1 downloading · ↓ 1.2 MiB/s ↑ 300.0 KiB/s · 7 peers]> `.
//!
//! The figures come from a [`Status`] snapshot that a background task refreshes every second (and the
//! shell before each prompt) from torrents.toml and the running torrents' counters: drawing the prompt
//! only reads memory, never the network or the disk. The line editor draws the prompt again on every
//! key and every line of background output, so the figures shown are at most that old.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use reedline::{Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus};

use crate::config::Config;
use crate::fsutil::human_bytes;
use crate::script::live::{totals, LiveTorrents, Totals};

/// What the prompt shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Managed torrents in torrents.toml.
    pub managed: usize,
    pub live: Totals,
}

impl Snapshot {
    pub fn render(&self) -> String {
        let plural = if self.managed == 1 { "" } else { "s" };
        let mut parts = vec![format!("{} torrent{plural}", self.managed)];
        let t = &self.live;
        if t.downloading > 0 {
            parts.push(format!("{} downloading", t.downloading));
        }
        if t.running > 0 {
            parts.push(format!(
                "↓ {}/s ↑ {}/s",
                human_bytes(t.down_rate),
                human_bytes(t.up_rate)
            ));
            let plural = if t.peers == 1 { "" } else { "s" };
            parts.push(format!("{} peer{plural}", t.peers));
        }
        format!("btorrent [{}]", parts.join(" · "))
    }
}

/// The latest snapshot, shared between the refresher and the prompt.
pub struct Status {
    config_path: PathBuf,
    live: Arc<dyn LiveTorrents>,
    now: RwLock<Snapshot>,
}

impl Status {
    pub fn new(config_path: PathBuf, live: Arc<dyn LiveTorrents>) -> Arc<Status> {
        let s = Arc::new(Status {
            config_path,
            live,
            now: RwLock::new(Snapshot::default()),
        });
        s.refresh();
        s
    }

    /// Reads torrents.toml and the running torrents' counters (memory only) into the snapshot.
    pub fn refresh(&self) {
        let managed = match Config::load(&self.config_path) {
            Ok(cfg) => cfg.torrents.len(),
            Err(_) => self.now.read().managed,
        };
        let live = totals(self.live.as_ref());
        *self.now.write() = Snapshot { managed, live };
    }

    pub fn snapshot(&self) -> Snapshot {
        self.now.read().clone()
    }

    /// Refreshes every second until the runtime stops.
    pub fn keep_fresh(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(s) = weak.upgrade() else { return };
                // torrents.toml is small, but reading it is still disk work: keep it off the workers.
                if tokio::task::spawn_blocking(move || s.refresh())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

pub struct ShellPrompt {
    pub status: Arc<Status>,
}

impl Prompt for ShellPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Owned(self.status.snapshot().render())
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("… ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let failing = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        Cow::Owned(format!("({failing}search: {}) ", search.term))
    }
}

/// A one-off question (`[y/N]`) asked with the same editor.
pub struct Question(pub String);

impl Prompt for Question {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.0)
    }
    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed(" ")
    }
    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn render_prompt_history_search_indicator(&self, _: PromptHistorySearch) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_totals() {
        let mut s = Snapshot {
            managed: 1,
            ..Default::default()
        };
        assert_eq!(s.render(), "btorrent [1 torrent]");
        s.managed = 3;
        s.live = Totals {
            running: 2,
            downloading: 1,
            down_rate: 3 << 20,
            up_rate: 0,
            peers: 1,
        };
        assert_eq!(
            s.render(),
            "btorrent [3 torrents · 1 downloading · ↓ 3.00 MiB/s ↑ 0 B/s · 1 peer]"
        );
    }
}
