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
//! The editor miscounts the rows of a prompt and line that wrap (it counts the line but not the
//! prompt), so before each line it prints, it would stop one row short and the line would be drawn
//! over, leaving a stale copy of the prompt. Each line handed to it therefore starts with a cursor
//! move that puts it on the prompt's first row whatever the editor counted (from [`Drawn`], what it
//! drew last), and clears the old prompt's rows below.
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
use unicode_width::UnicodeWidthStr as _;

use super::prompt::{terminal_width, Drawn, SharedDrawn, MULTILINE_INDICATOR};

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
    drawn: SharedDrawn,
}

impl Screen {
    /// A screen for an interactive shell, and the printer to hand to reedline.
    pub fn interactive() -> (Arc<Screen>, ExternalPrinter<String>) {
        let printer = ExternalPrinter::new(PRINTER_CAPACITY);
        let screen = Arc::new(Screen {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            printer: Some(printer.clone()),
            drawn: SharedDrawn::default(),
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
            drawn: SharedDrawn::default(),
        })
    }

    /// Where the prompt and the editor record what they drew.
    pub fn drawn(&self) -> SharedDrawn {
        self.drawn.clone()
    }

    /// Has the editor draw the prompt again if it now reads `fresh` (its figures changed while no key
    /// was pressed and nothing was printed), when the prompt and line take one row: the editor redraws
    /// on a resize event, which a SIGWINCH to this process makes (the terminal's size is unchanged).
    pub fn nudge_prompt(&self, fresh: impl FnOnce(usize) -> String) {
        let st = self.state.lock();
        if self.printer.is_none() || !st.at_prompt || !st.pending.is_empty() {
            return;
        }
        let width = terminal_width();
        let drawn = self.drawn.lock().clone();
        let one_row = !drawn.line.contains('\n')
            && columns(&[&drawn.prompt, &drawn.indicator, &drawn.line]) < width;
        if one_row && !drawn.prompt.is_empty() && drawn.prompt != fresh(width) {
            // SAFETY: raise only sends a signal to this process; SIGWINCH is ignored by default and
            // handled by the editor's event source once it runs.
            unsafe {
                libc::raise(libc::SIGWINCH);
            }
        }
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
            write_err(text);
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
        if let Some(line) = line {
            let prefix = realign(&s.drawn.lock(), terminal_width());
            // Cannot block: the channel was empty and only this thread sends.
            let _ = sender.try_send(format!("{prefix}{line}"));
        }
        drop(s);
        std::thread::sleep(SETTLE);
    }
}

/// The terminal columns `parts` take, one after the other.
fn columns(parts: &[&str]) -> usize {
    parts.iter().map(|p| p.width()).sum()
}

/// The cursor move that takes the editor's cursor, once the editor has moved it up as far as it
/// counts the line's rows, to the first column of the prompt's first row, then clears from there down
/// (the old prompt, line, hint and menu; the editor draws them again under the printed line).
fn realign(drawn: &Drawn, width: usize) -> String {
    let width = width.max(1);
    // The editor counts each line of the text as its bytes plus 3 columns, and no prompt.
    let counted: usize = drawn
        .line
        .lines()
        .enumerate()
        .map(|(i, l)| (l.len() + if i == 0 { 3 } else { 0 }) / width + 1)
        .sum();
    let editor_up = counted.saturating_sub(1);
    // The row the cursor is really on, below the prompt's first row.
    let before = drawn.line.get(..drawn.cursor).unwrap_or(&drawn.line);
    let mut row = 0;
    let mut segments = before.split('\n').peekable();
    let mut first = true;
    while let Some(seg) = segments.next() {
        let lead = if first {
            columns(&[&drawn.prompt, &drawn.indicator])
        } else {
            columns(&[MULTILINE_INDICATOR])
        };
        first = false;
        let cols = lead + columns(&[seg]);
        if segments.peek().is_some() {
            row += cols.max(1).div_ceil(width);
        } else if cols > 0 {
            // Right after the last column the cursor waits on that row.
            row += (cols - 1) / width;
        }
    }
    let mut out = String::new();
    match row.cmp(&editor_up) {
        std::cmp::Ordering::Greater => out.push_str(&format!("\x1b[{}A", row - editor_up)),
        std::cmp::Ordering::Less => out.push_str(&format!("\x1b[{}B", editor_up - row)),
        std::cmp::Ordering::Equal => {}
    }
    out.push_str("\r\x1b[J");
    out
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
    crate::terminal::above_bar(|| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    });
}

fn write_err(text: &str) {
    crate::terminal::above_bar(|| {
        let _ = writeln!(std::io::stderr(), "{text}");
    });
}

/// Where the shell's log lines go once it has a screen (before that, and outside the shell, stderr).
static LOG_SCREEN: std::sync::OnceLock<Arc<Screen>> = std::sync::OnceLock::new();

/// Sends log lines (warnings from the engine, say) above the prompt instead of across it.
pub fn route_logs_to(screen: Arc<Screen>) {
    let _ = LOG_SCREEN.set(screen);
}

/// A `tracing` writer: each log event is printed through the [`Screen`] routed by [`route_logs_to`]
/// (in the shell), or to stderr when there is none (one-shot, or before the shell has one), above the
/// progress bar if one is drawn.
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
            None => write_err(text),
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
    use super::{realign, wrap, Drawn};

    #[test]
    fn realigns_to_the_prompts_first_row() {
        let drawn = |prompt: &str, line: &str| Drawn {
            prompt: prompt.into(),
            indicator: "> ".into(),
            line: line.into(),
            cursor: line.len(),
        };
        // One row: nothing to move, the rows below are cleared.
        assert_eq!(realign(&drawn("btorrent [1]", "b-show"), 80), "\r\x1b[J");
        // A 50-column prompt and 40 typed: two rows, of which the editor counts one.
        let p = "p".repeat(48);
        assert_eq!(realign(&drawn(&p, &"x".repeat(40)), 80), "\x1b[1A\r\x1b[J");
        // Typed text long enough that the editor counts rows too, one short of three or right for two.
        assert_eq!(realign(&drawn(&p, &"x".repeat(150)), 80), "\x1b[1A\r\x1b[J");
        assert_eq!(realign(&drawn(&p, &"x".repeat(90)), 80), "\r\x1b[J");
        // Exactly filling the first row: the cursor waits at its end.
        assert_eq!(realign(&drawn(&p, &"x".repeat(30)), 80), "\r\x1b[J");
        // The editor counts bytes: wide text moves it too far, the cursor is brought back down.
        assert_eq!(
            realign(&drawn("btorrent [1]", &"é".repeat(40)), 80),
            "\x1b[1B\r\x1b[J"
        );
    }

    #[test]
    fn wraps_long_lines_and_skips_escapes() {
        assert_eq!(wrap("abcdefgh\nxy", 3), "abc\ndef\ngh\nxy");
        assert_eq!(wrap("\x1b[31mabcd\x1b[0m", 2), "\x1b[31mab\ncd\x1b[0m");
        assert_eq!(wrap("", 5), "");
        assert_eq!(wrap("héllo", 4), "héll\no");
    }
}
