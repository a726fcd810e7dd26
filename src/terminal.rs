//! Lines on stdout that survive a closed pipe and go above the progress bar being drawn, if any: the
//! one bar shown at a time, and the writers that step around it.

use std::io::Write;

/// Writes `text` and a newline to stdout. A reader that has gone away (`btorrent info x | head -1`) is
/// not an error: `println!` would panic on the broken pipe.
pub fn print_line(text: &str) {
    above_bar(|| {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    });
}

/// The progress bar on the terminal now, if any (one at a time: a command's hashing or download).
static SHOWN_BAR: parking_lot::Mutex<Option<indicatif::ProgressBar>> =
    parking_lot::const_mutex(None);

/// A progress bar that lines written meanwhile (output, log lines) go above, instead of across it;
/// it stops being one when dropped.
pub struct ShownBar(indicatif::ProgressBar);

impl ShownBar {
    pub fn new(bar: indicatif::ProgressBar) -> ShownBar {
        *SHOWN_BAR.lock() = Some(bar.clone());
        ShownBar(bar)
    }
}

impl std::ops::Deref for ShownBar {
    type Target = indicatif::ProgressBar;
    fn deref(&self) -> &indicatif::ProgressBar {
        &self.0
    }
}

impl Drop for ShownBar {
    fn drop(&mut self) {
        *SHOWN_BAR.lock() = None;
    }
}

/// Runs `f`, which writes lines to the terminal, with the progress bar (if one is shown) taken away
/// first and drawn again under the lines after.
pub fn above_bar<T>(f: impl FnOnce() -> T) -> T {
    let bar = SHOWN_BAR.lock().clone();
    match bar {
        Some(b) if !b.is_finished() => b.suspend(f),
        _ => f(),
    }
}
