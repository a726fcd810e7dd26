//! How log lines look where a person reads them (a one-shot command's stderr, the shell): one short
//! line per event, `warning: photos: announce failed: ...`, with no timestamp, level column or
//! module path, which read like a crash report. `-v` switches to tracing's full format instead.
//!
//! Both formats here keep a record on one line that a terminal only prints: control characters in
//! its text (a file name holding a line break or an escape sequence, a peer's or tracker's words)
//! are written as escapes, so no name forges a second line (for the journal, a second entry of a
//! priority of its choosing) or acts on the reader's terminal.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use btorrent_proto::text::escape_controls;

/// The one-line format: `warning: <torrent>: <message> (<other fields>)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Brief;

/// The fields of one event: the message, the torrent it is about, and the rest as `key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    torrent: Option<String>,
    rest: Vec<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "torrent" => self.torrent = Some(value),
            name => self.rest.push(format!("{name}={value}")),
        }
    }
}

/// For the journal (the daemon's stderr under systemd, see [`crate::service_manager`]):
/// `<4>btorrent_engine::peer: message key=value`, the level as the `sd-daemon(3)` prefix the
/// journal takes for the entry's priority, and no timestamp (the journal keeps its own).
#[derive(Debug, Default, Clone, Copy)]
pub struct Journal;

/// A level's syslog priority: 3 error, 4 warning, 6 info, 7 debug.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let m = event.metadata();
        let mut fields = String::new();
        ctx.format_fields(Writer::new(&mut fields), event)?;
        let fields = escape_controls(&fields);
        writeln!(w, "<{}>{}: {fields}", priority(m.level()), m.target())
    }
}

/// tracing's own fields format (`message key=value`, as the full format of the daemon's log and
/// `-v` writes them) with control characters escaped, as the formats above do.
#[derive(Debug, Default)]
pub struct EscapedFields(DefaultFields);

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut w: Writer<'w>, fields: R) -> fmt::Result {
        let mut text = String::new();
        self.0.format_fields(Writer::new(&mut text), fields)?;
        w.write_str(&escape_controls(&text))
    }
}

/// The word a level is shown as.
fn label(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        _ => "debug",
    }
}

impl<S, N> FormatEvent<S, N> for Brief
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        write!(w, "{}: ", label(event.metadata().level()))?;
        if let Some(t) = &f.torrent {
            write!(w, "{}: ", escape_controls(t))?;
        }
        w.write_str(&escape_controls(&f.message))?;
        if !f.rest.is_empty() {
            write!(w, " ({})", escape_controls(&f.rest.join(", ")))?;
        }
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_the_torrent_first() {
        let sink = SinkWriter::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(Brief)
            .with_writer(sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(torrent = %"photos", "announce failed: refused");
            tracing::warn!(peer = %"10.0.0.1:6881", strikes = 2, "sent a bad piece");
            tracing::error!("tracker stopped");
            tracing::warn!(torrent = %"bad\nname", path = %"x\u{1b}[2J", "cannot read a\nb");
        });
        assert_eq!(
            sink.text(),
            "warning: photos: announce failed: refused\n\
             warning: sent a bad piece (peer=10.0.0.1:6881, strikes=2)\n\
             error: tracker stopped\n\
             warning: bad\\nname: cannot read a\\nb (path=x\\u{1b}[2J)\n"
        );
    }

    #[test]
    fn for_the_journal_the_level_is_a_priority_prefix() {
        let sink = SinkWriter::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(Journal)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(torrent = %"photos", "announce failed");
            tracing::error!("tracker stopped");
            tracing::info!("listening");
            tracing::debug!(n = 3, "dialed");
            tracing::warn!(torrent = %"a\n<0>b", "cannot\rread");
        });
        let target = module_path!();
        assert_eq!(
            sink.text(),
            format!(
                "<4>{target}: announce failed torrent=photos\n\
                 <3>{target}: tracker stopped\n\
                 <6>{target}: listening\n\
                 <7>{target}: dialed n=3\n\
                 <4>{target}: cannot\\rread torrent=a\\n<0>b\n"
            )
        );
    }

    #[test]
    fn the_full_format_escapes_too() {
        let sink = SinkWriter::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(EscapedFields::default())
            .with_writer(sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // (tracing writes the escape character of a message as `\x1b` itself; not a line break.)
            tracing::warn!(torrent = %"a\nWARN forged", "cannot read b\u{1b}[2J");
        });
        assert_eq!(
            sink.text(),
            " WARN cannot read b\\x1b[2J torrent=a\\nWARN forged\n"
        );
    }

    /// A writer into memory the test reads back; each clone writes into the same buffer.
    #[derive(Clone, Default)]
    struct SinkWriter(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl SinkWriter {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().clone()).unwrap()
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SinkWriter {
        type Writer = SinkWriter;

        fn make_writer(&'a self) -> SinkWriter {
            self.clone()
        }
    }

    impl std::io::Write for SinkWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
