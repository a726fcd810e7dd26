//! Metrics in the Prometheus text exposition format 0.0.4: each family gets its `# HELP` and
//! `# TYPE` lines once, then its samples, with label values escaped. The one writer behind every
//! `/metrics` btorrent serves (the RPC server's and the tracker's).

use std::fmt::Write as _;

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a family counts up forever or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A page of metrics being written.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// A family with one sample and no labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help, &[(&[], value)]);
    }

    /// A family and its samples, each with its labels (name, value).
    pub fn family(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: &[(&[(&str, &str)], f64)],
    ) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.out.push_str(name);
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    let _ = write!(self.out, "{k}=\"{v}\"");
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {}", number(*value));
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_once_with_escaped_labels() {
        let mut w = Writer::new();
        w.single("x_total", Kind::Counter, "Things.\nMore", 3.0);
        w.family(
            "y",
            Kind::Gauge,
            "Y.",
            &[(&[("state", "a\"b\\")], 1.5), (&[("state", "c")], 2.0)],
        );
        assert_eq!(
            w.finish(),
            "# HELP x_total Things.\\nMore\n# TYPE x_total counter\nx_total 3\n\
             # HELP y Y.\n# TYPE y gauge\ny{state=\"a\\\"b\\\\\"} 1.5\ny{state=\"c\"} 2\n"
        );
    }
}
