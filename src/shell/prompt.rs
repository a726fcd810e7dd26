//! The prompt: `btorrent [3 torrents · 1 downloading · ↓ 1.2 MiB/s ↑ 300.0 KiB/s · 7 peers]> `
//! (with `· 1 magnet fetching` while a magnet link's metadata is fetched, `· 2 queued` while a
//! download or seeding queue holds torrents), or shorter on a narrow terminal
//! (`btorrent [3 · 1↓ · 2q · ↓1.2M ↑300K · 7p]> `), so that a line can be typed after it.
//!
//! The figures come from a [`Status`] snapshot that a background task refreshes every second (and the
//! shell before each prompt) from the managed list in memory ([`crate::torrents`]) and the running
//! torrents' counters: drawing the prompt only reads memory, never the network or the disk. The line
//! editor draws the prompt again on every key and every line of background output, and the shell has
//! it redrawn when the figures change while nothing happens (see
//! [`super::screen::Screen::nudge_prompt`]).
//!
//! [`Drawn`] records what the editor drew last (prompt, line, cursor), for the screen to know where the
//! prompt's rows are.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use reedline::{Prompt, PromptEditMode, PromptHistorySearch, PromptHistorySearchStatus};

use crate::script::live::{totals, LiveTorrents, Totals};
use crate::torrents::Torrents;
use crate::units::human_bytes;

/// What the prompt shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Managed torrents in torrents.toml.
    pub managed: usize,
    /// Of those, the ones waiting in the download or seeding queue ([`crate::queue`]).
    pub queued: usize,
    pub live: Totals,
}

/// Columns left for typing after the prompt before a shorter form is used.
const ROOM_TO_TYPE: usize = 24;

impl Snapshot {
    /// The prompt for a terminal `width` columns wide: the full form if it leaves room to type, else
    /// the short one, else only the number of torrents.
    pub fn render_for(&self, width: usize) -> String {
        let fits = |s: &str| s.chars().count() + 2 + ROOM_TO_TYPE <= width;
        let full = self.render();
        if fits(&full) {
            return full;
        }
        let short = self.render_short();
        if fits(&short) {
            return short;
        }
        format!("btorrent [{}]", self.managed)
    }

    /// `btorrent [3 · 1↓ · ↓1.2M ↑300K · 7p]`.
    pub fn render_short(&self) -> String {
        let mut parts = vec![self.managed.to_string()];
        let t = &self.live;
        if t.downloading > 0 {
            parts.push(format!("{}↓", t.downloading));
        }
        if t.fetching > 0 {
            parts.push(format!("{}m", t.fetching));
        }
        if self.queued > 0 {
            parts.push(format!("{}q", self.queued));
        }
        if t.running > 0 {
            parts.push(format!(
                "↓{} ↑{}",
                short_bytes(t.down_rate),
                short_bytes(t.up_rate)
            ));
            parts.push(format!("{}p", t.peers));
        }
        format!("btorrent [{}]", parts.join(" · "))
    }

    /// `btorrent [3 torrents · 1 downloading · ↓ 1.20 MiB/s ↑ 300.00 KiB/s · 7 peers]`.
    pub fn render(&self) -> String {
        format!("btorrent [{}]", self.summary())
    }

    /// The full prompt's figures alone: `3 torrents · 1 downloading · ...` (the daemon's status for
    /// its service manager too).
    pub fn summary(&self) -> String {
        let plural = if self.managed == 1 { "" } else { "s" };
        let mut parts = vec![format!("{} torrent{plural}", self.managed)];
        let t = &self.live;
        if t.downloading > 0 {
            parts.push(format!("{} downloading", t.downloading));
        }
        if t.fetching > 0 {
            let plural = if t.fetching == 1 { "" } else { "s" };
            parts.push(format!("{} magnet{plural} fetching", t.fetching));
        }
        if self.queued > 0 {
            parts.push(format!("{} queued", self.queued));
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
        parts.join(" · ")
    }
}

/// A byte count in at most four characters and a unit letter: `0`, `512`, `1.2K`, `300K`, `11M`.
fn short_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["", "K", "M", "G", "T", "P"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 10.0 {
        format!("{v:.0}{}", UNITS[unit])
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// What the line editor drew last: the prompt (with its indicator), the line being typed and the
/// cursor's byte offset in it.
#[derive(Debug, Default, Clone)]
pub struct Drawn {
    pub prompt: String,
    pub indicator: String,
    pub line: String,
    pub cursor: usize,
}

pub type SharedDrawn = Arc<Mutex<Drawn>>;

/// The terminal's width in columns (80 when it cannot be told).
pub fn terminal_width() -> usize {
    crossterm::terminal::size().map_or(80, |(w, _)| w.max(1) as usize)
}

/// The latest snapshot, shared between the refresher and the prompt.
pub struct Status {
    torrents: Torrents,
    live: Arc<dyn LiveTorrents>,
    now: RwLock<Snapshot>,
}

impl Status {
    pub fn new(torrents: Torrents, live: Arc<dyn LiveTorrents>) -> Arc<Status> {
        let s = Arc::new(Status {
            torrents,
            live,
            now: RwLock::new(Snapshot::default()),
        });
        s.refresh();
        s
    }

    /// Copies the managed list's size and the running torrents' counters (memory only) into the
    /// snapshot.
    pub fn refresh(&self) {
        let (managed, queued) = match self.torrents.config() {
            Ok(cfg) => (
                cfg.torrents.len(),
                cfg.torrents
                    .iter()
                    .filter(|t| t.state == crate::actions::QUEUED)
                    .count(),
            ),
            Err(_) => {
                let now = self.now.read();
                (now.managed, now.queued)
            }
        };
        let live = totals(self.live.as_ref());
        *self.now.write() = Snapshot {
            managed,
            queued,
            live,
        };
    }

    pub fn snapshot(&self) -> Snapshot {
        self.now.read().clone()
    }

    /// Refreshed now, the figures as one line ([`Snapshot::summary`]). Blocking: it may read
    /// torrents.toml.
    pub fn line(&self) -> String {
        self.refresh();
        self.snapshot().summary()
    }

    /// Refreshes every second until the runtime stops, calling `after` after each refresh.
    pub fn keep_fresh(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        after: impl Fn() + Send + 'static,
    ) {
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(s) = weak.upgrade() else { return };
                // Memory only once torrents.toml has been read (a first look reads it): off the workers.
                if tokio::task::spawn_blocking(move || s.refresh())
                    .await
                    .is_err()
                {
                    return;
                }
                after();
            }
        });
    }
}

pub struct ShellPrompt {
    pub status: Arc<Status>,
    pub drawn: SharedDrawn,
}

impl Prompt for ShellPrompt {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        let p = self.status.snapshot().render_for(terminal_width());
        self.drawn.lock().prompt = p.clone();
        Cow::Owned(p)
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        self.drawn.lock().indicator = "> ".into();
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed(MULTILINE_INDICATOR)
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        let failing = match search.status {
            PromptHistorySearchStatus::Passing => "",
            PromptHistorySearchStatus::Failing => "failing ",
        };
        let s = format!("({failing}search: {}) ", search.term);
        self.drawn.lock().indicator = s.clone();
        Cow::Owned(s)
    }
}

/// What starts each line after the first of a line being typed over several lines.
pub const MULTILINE_INDICATOR: &str = "… ";

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
            fetching: 0,
        };
        assert_eq!(
            s.render(),
            "btorrent [3 torrents · 1 downloading · ↓ 3.00 MiB/s ↑ 0 B/s · 1 peer]"
        );
        let fetching = Snapshot {
            live: Totals {
                fetching: 2,
                ..s.live
            },
            ..s.clone()
        };
        assert_eq!(
            fetching.render(),
            "btorrent [3 torrents · 1 downloading · 2 magnets fetching · ↓ 3.00 MiB/s ↑ 0 B/s · 1 peer]"
        );
        assert_eq!(
            fetching.render_for(80),
            "btorrent [3 · 1↓ · 2m · ↓3.0M ↑0 · 1p]"
        );
        let queued = Snapshot {
            queued: 2,
            ..s.clone()
        };
        assert_eq!(
            queued.render(),
            "btorrent [3 torrents · 1 downloading · 2 queued · ↓ 3.00 MiB/s ↑ 0 B/s · 1 peer]"
        );
        assert_eq!(
            queued.render_for(80),
            "btorrent [3 · 1↓ · 2q · ↓3.0M ↑0 · 1p]"
        );
        assert_eq!(s.render_for(150), s.render());
        assert_eq!(s.render_for(80), "btorrent [3 · 1↓ · ↓3.0M ↑0 · 1p]");
        assert_eq!(s.render_for(40), "btorrent [3]");
        assert_eq!(short_bytes(512), "512");
        assert_eq!(short_bytes(1000), "1.0K");
        assert_eq!(short_bytes(300 << 10), "300K");
        assert_eq!(short_bytes(11 << 20), "11M");
    }
}
