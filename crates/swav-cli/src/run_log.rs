//! The lines a process prints, as a cluster user reads them: on stderr, with `[rank R] ` in
//! front when the job has several ranks (launchers merge every rank's stderr), and, once a
//! run folder exists, appended with a UTC timestamp to that rank's log file
//! (`train.log-<rank>` in the run folder, as the official code's `train.log-<rank>`), so each
//! rank's warnings, progress and last error can be read after the job has ended.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// This process's place in the job and its open log file.
struct Sink {
    prefix: String,
    file: Option<File>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    prefix: String::new(),
    file: None,
});

fn sink() -> std::sync::MutexGuard<'static, Sink> {
    SINK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks every later line with this process's rank when the job has more than one.
pub fn set_rank(rank: usize, world: usize) {
    sink().prefix = if world > 1 {
        format!("[rank {rank}] ")
    } else {
        String::new()
    };
}

/// The log file name of `rank`.
pub fn file_name(rank: usize) -> String {
    format!("train.log-{rank}")
}

/// Appends every later line to `dir`'s log file of `rank`.
pub fn open_file(dir: &Path, rank: usize) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file_name(rank)))?;
    sink().file = Some(file);
    Ok(())
}

/// Prints `text` (one or more lines) on stderr and into the log file.
pub fn line(text: &str) {
    let mut sink = sink();
    let mut err = std::io::stderr().lock();
    for l in text.lines() {
        let _ = writeln!(err, "{}{l}", sink.prefix);
    }
    write_file(&mut sink, text);
}

/// Writes `text` into the log file only (what a terminal shows in another form, such as the
/// progress bar).
pub fn file_only(text: &str) {
    write_file(&mut sink(), text);
}

fn write_file(sink: &mut Sink, text: &str) {
    let stamp = utc_timestamp(SystemTime::now());
    let Sink { prefix, file } = sink;
    if let Some(file) = file.as_mut() {
        for l in text.lines() {
            let _ = writeln!(file, "{stamp} {prefix}{l}");
        }
        let _ = file.flush();
    }
}

/// `2026-12-07T15:04:05.123Z`.
pub fn utc_timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's civil-from-days
/// algorithm).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Prints a formatted line through [`line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::run_log::line(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_iso_8601() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-02-29 12:34:56.789 UTC (a leap day).
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(utc_timestamp(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(utc_timestamp(t), "2099-12-31T23:59:59.000Z");
    }
}
