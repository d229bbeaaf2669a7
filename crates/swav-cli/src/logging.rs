//! The libraries' `tracing` warnings (a skipped image, ...) as plain lines on stderr and in
//! the rank's log file ([`crate::run_log`]): `warning: skipping PATH: reason`. Only warnings
//! and errors are printed; the libraries log nothing below that the user needs to see.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Where a printed line goes.
pub type LineSink = Box<dyn Fn(&str) + Send + Sync>;

/// A `tracing` subscriber that writes each warning or error event as one line.
pub struct WarningPrinter {
    out: LineSink,
}

impl WarningPrinter {
    /// Prints each line through `out`.
    pub fn new(out: LineSink) -> Self {
        Self { out }
    }

    /// Installs a printer to stderr and the log file ([`crate::run_log::line`]) as the
    /// process's subscriber (once; later calls do nothing).
    pub fn install_for_stderr() {
        let _ = tracing::subscriber::set_global_default(Self::new(Box::new(crate::run_log::line)));
    }
}

/// `warning: MESSAGE key=value ...` (or `error: ...`).
fn format_event(event: &Event<'_>) -> String {
    let mut fields = EventText::default();
    event.record(&mut fields);
    let prefix = if *event.metadata().level() == Level::ERROR {
        "error"
    } else {
        "warning"
    };
    format!("{prefix}: {}{}", fields.message, fields.others)
}

/// The message and the other fields of an event.
#[derive(Default)]
struct EventText {
    message: String,
    others: String,
}

impl Visit for EventText {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.others, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.others, " {}={value}", field.name());
        }
    }
}

impl Subscriber for WarningPrinter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::WARN)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        (self.out)(&format_event(event));
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn warnings_print_as_one_line_each_and_lower_levels_not_at_all() {
        let captured = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&captured);
        let printer = WarningPrinter::new(Box::new(move |line: &str| {
            let mut text = sink.lock().unwrap();
            text.push_str(line);
            text.push('\n');
        }));
        tracing::subscriber::with_default(printer, || {
            let name = "/data/a.jpg";
            tracing::warn!("skipping {name}: truncated");
            tracing::warn!(rank = 1, "stalled");
            tracing::info!("not shown");
            tracing::error!("broken");
        });
        let text = captured.lock().unwrap().clone();
        assert_eq!(
            text,
            "warning: skipping /data/a.jpg: truncated\nwarning: stalled rank=1\nerror: broken\n"
        );
    }
}
