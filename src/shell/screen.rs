//! Where the shell's output goes. While the prompt is up, lines go through reedline's external printer,
//! which prints them above the prompt and redraws the line being edited; while a command runs (the
//! terminal is back in cooked mode and nothing is being edited) they are written out directly.
//!
//! The editor is handed one line per drawing cycle, by a feeder thread: when it prints several at once
//! it asks the terminal where the cursor is before its own output has reached the terminal, concludes
//! the prompt moved and redraws it at the top of the screen, wiping what was there. One line at a time
//! (about ten a second) never trips that. Lines are also cut to the terminal's width, since the editor
//! counts one screen row per line.
//!
//! Invariants (under the `state` lock): `at_prompt` is true only between [`Screen::enter_prompt`] and
//! [`Screen::leave_prompt`], which the shell calls around each `read_line`; `pending` is empty
//! whenever `at_prompt` is false (leaving the prompt writes what was pending, in order). A line the
//! feeder handed over just as the prompt closed is printed when the next prompt opens: nothing is lost
//! or drawn over the line being edited.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use reedline::ExternalPrinter;

/// Lines the editor's printer channel holds (the feeder keeps at most one in it).
const PRINTER_CAPACITY: usize = 16;

/// How long the feeder waits after the editor took a line before it hands over the next, so the
/// editor has finished collecting the current batch.
const SETTLE: Duration = Duration::from_millis(30);

#[derive(Default)]
struct State {
    at_prompt: bool,
    pending: VecDeque<String>,
}

pub struct Screen {
    state: Mutex<State>,
    wake: Condvar,
    printer: Option<ExternalPrinter<String>>,
}

impl Screen {
    /// A screen for an interactive shell, and the printer to hand to reedline.
    pub fn interactive() -> (Arc<Screen>, ExternalPrinter<String>) {
        let printer = ExternalPrinter::new(PRINTER_CAPACITY);
        let screen = Arc::new(Screen {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            printer: Some(printer.clone()),
        });
        let weak = Arc::downgrade(&screen);
        std::thread::Builder::new()
            .name("btorrent-screen".into())
            .spawn(move || feed(weak))
            .expect("spawn the screen feeder");
        (screen, printer)
    }

    /// A screen that always writes out directly (input is not a terminal).
    pub fn plain() -> Arc<Screen> {
        Arc::new(Screen {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            printer: None,
        })
    }

    pub fn enter_prompt(&self) {
        self.state.lock().at_prompt = true;
        self.wake.notify_all();
    }

    /// The prompt is down: what was waiting for it is written out now.
    pub fn leave_prompt(&self) {
        let mut st = self.state.lock();
        st.at_prompt = false;
        for line in st.pending.drain(..) {
            write_out(&line);
        }
    }

    /// Prints `text` (one or more lines) without disturbing the prompt.
    pub fn print(&self, text: &str) {
        if !self.print_above_prompt(text) {
            write_out(text);
        }
    }

    /// A log line: above the prompt while it is up, else on stderr.
    pub fn log(&self, text: &str) {
        if !self.print_above_prompt(text) {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }

    /// Queues `text` for the prompt if it is up; false if it is not.
    fn print_above_prompt(&self, text: &str) -> bool {
        if self.printer.is_none() {
            return false;
        }
        let mut st = self.state.lock();
        if !st.at_prompt {
            return false;
        }
        let width = crossterm::terminal::size().map_or(80, |(w, _)| w as usize);
        let text = wrap(text, width.saturating_sub(1).max(20));
        st.pending.extend(text.split('\n').map(str::to_string));
        drop(st);
        self.wake.notify_all();
        true
    }
}

/// The feeder: hands the editor one pending line whenever its printer channel is empty.
fn feed(screen: std::sync::Weak<Screen>) {
    loop {
        let Some(s) = screen.upgrade() else { return };
        let Some(printer) = &s.printer else { return };
        let sender = printer.sender();
        let line = {
            let mut st = s.state.lock();
            if !st.at_prompt || st.pending.is_empty() {
                // Woken by new lines or a prompt; the timeout lets the thread end with the screen.
                s.wake.wait_for(&mut st, Duration::from_millis(500));
                continue;
            }
            if !sender.is_empty() {
                None
            } else {
                st.pending.pop_front()
            }
        };
        drop(s);
        if let Some(line) = line {
            // Cannot block: the channel was empty and only this thread sends.
            let _ = sender.try_send(line);
        }
        std::thread::sleep(SETTLE);
    }
}

/// Cuts every line of `text` into pieces of at most `width` columns (escape sequences take none).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut cols = 0;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // CSI: ESC [ parameters final-byte; copied whole, no width.
                out.push(c);
                if chars.peek() == Some(&'[') {
                    for d in chars.by_ref() {
                        out.push(d);
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                continue;
            }
            if cols == width {
                out.push('\n');
                cols = 0;
            }
            out.push(c);
            cols += 1;
        }
    }
    out
}

fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Where the shell's log lines go once it has a screen (before that, and outside the shell, stderr).
static LOG_SCREEN: std::sync::OnceLock<Arc<Screen>> = std::sync::OnceLock::new();

/// Sends log lines (warnings from the engine, say) above the prompt instead of across it.
pub fn route_logs_to(screen: Arc<Screen>) {
    let _ = LOG_SCREEN.set(screen);
}

/// A `tracing` writer for the shell: each log event is printed through the [`Screen`] routed by
/// [`route_logs_to`], or to stderr when there is none yet.
#[derive(Default)]
pub struct LogWriter {
    buf: Vec<u8>,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end_matches('\n');
        match LOG_SCREEN.get() {
            Some(screen) => screen.log(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_long_lines_and_skips_escapes() {
        assert_eq!(wrap("abcdefgh\nxy", 3), "abc\ndef\ngh\nxy");
        assert_eq!(wrap("\x1b[31mabcd\x1b[0m", 2), "\x1b[31mab\ncd\x1b[0m");
        assert_eq!(wrap("", 5), "");
        assert_eq!(wrap("héllo", 4), "héll\no");
    }
}
