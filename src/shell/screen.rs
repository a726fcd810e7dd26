//! Where the shell's output goes. While the prompt is up, lines go through reedline's external printer,
//! which prints them above the prompt and redraws the line being edited; while a command runs (the
//! terminal is back in cooked mode and nothing is being edited) they are written to stdout directly.
//!
//! Invariant: `at_prompt` is true only between [`Screen::enter_prompt`] and [`Screen::leave_prompt`],
//! which the shell calls around each `read_line`. A line sent just as the prompt closes waits in the
//! printer's queue and is printed when the next prompt opens: nothing is lost or drawn over the line
//! being edited.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reedline::ExternalPrinter;

/// Lines queued for the prompt before a printer call waits.
const QUEUE: usize = 1024;

pub struct Screen {
    at_prompt: AtomicBool,
    printer: Option<ExternalPrinter<String>>,
}

impl Screen {
    /// A screen for an interactive shell, and the printer to hand to reedline.
    pub fn interactive() -> (Arc<Screen>, ExternalPrinter<String>) {
        let printer = ExternalPrinter::new(QUEUE);
        let screen = Screen {
            at_prompt: AtomicBool::new(false),
            printer: Some(printer.clone()),
        };
        (Arc::new(screen), printer)
    }

    /// A screen that always writes to stdout (input is not a terminal).
    pub fn plain() -> Arc<Screen> {
        Arc::new(Screen {
            at_prompt: AtomicBool::new(false),
            printer: None,
        })
    }

    pub fn enter_prompt(&self) {
        self.at_prompt.store(true, Ordering::SeqCst);
    }

    pub fn leave_prompt(&self) {
        self.at_prompt.store(false, Ordering::SeqCst);
    }

    /// Prints `text` (one or more lines) without disturbing the prompt.
    pub fn print(&self, text: &str) {
        if let (true, Some(p)) = (self.at_prompt.load(Ordering::SeqCst), &self.printer) {
            // The prompt drains the queue every 100 ms; a full queue means it is not being drained,
            // so wait a little, then fall back to writing directly rather than block a producer.
            match p
                .sender()
                .send_timeout(text.to_string(), Duration::from_millis(500))
            {
                Ok(()) => return,
                Err(e) => {
                    let text = e.into_inner();
                    return write_out(&text);
                }
            }
        }
        write_out(text);
    }
}

fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
