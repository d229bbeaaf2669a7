//! Progress of a training run: a bar with loss, lr, throughput and ETA on a terminal, one
//! log line per logging interval otherwise (CI logs, files).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports a run's progress on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    started: Instant,
    start_iteration: u64,
}

/// One iteration's numbers, as shown.
#[derive(Debug, Clone, Copy)]
pub struct ProgressLine {
    /// Epoch (from 0).
    pub epoch: u64,
    /// Total epochs.
    pub epochs: u64,
    /// Global iteration (from 0).
    pub iteration: u64,
    /// The loss.
    pub loss: f64,
    /// The learning rate.
    pub lr: f64,
    /// Images per second (all ranks).
    pub images_per_sec: f64,
    /// Milliseconds per step waiting for data, when measured.
    pub data_ms: Option<f64>,
}

impl Progress {
    /// A reporter for iterations `start..total`; `visible` is false on ranks other than 0.
    pub fn new(start: u64, total: u64, visible: bool) -> Self {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} it  {msg}  [{elapsed_precise} < {eta_precise}]",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_position(start);
            bar
        });
        Self {
            bar,
            total,
            started: Instant::now(),
            start_iteration: start,
        }
    }

    /// Records a finished iteration; `log` lines are printed without a terminal.
    pub fn update(&self, line: &ProgressLine, log: bool, visible: bool) {
        let mut text = format!(
            "epoch {}/{}  loss {:.4}  lr {:.4}  {:.1} img/s",
            line.epoch + 1,
            line.epochs,
            line.loss,
            line.lr,
            line.images_per_sec
        );
        if let Some(ms) = line.data_ms {
            text.push_str(&format!("  data {ms:.0} ms/it"));
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(line.iteration + 1);
                bar.set_message(text.clone());
            }
            None if log && visible => {
                crate::say!(
                    "it {}/{}  {text}  eta {}",
                    line.iteration + 1,
                    self.total,
                    format_duration(self.eta(line.iteration))
                );
                return;
            }
            None => {}
        }
        if log {
            crate::run_log::file_only(&format!("it {}/{}  {text}", line.iteration + 1, self.total));
        }
    }

    /// Prints a message without breaking the bar (and into the log file).
    pub fn println(&self, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.println(message);
                crate::run_log::file_only(message);
            }
            None => crate::run_log::line(message),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn eta(&self, iteration: u64) -> Duration {
        let done = (iteration + 1).saturating_sub(self.start_iteration).max(1);
        let left = self.total.saturating_sub(iteration + 1);
        self.started.elapsed().mul_f64(left as f64 / done as f64)
    }
}

/// `1h02m03s`, `4m05s` or `6s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(6)), "6s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(format_duration(Duration::from_secs(3723)), "1h02m03s");
    }
}
