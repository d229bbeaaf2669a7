//! Progress of a training run: a bar with loss, lr, throughput and ETA on a terminal, one
//! log line per logging interval otherwise (CI logs, files), and the collapse warning.

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
        let text = format!(
            "epoch {}/{}  loss {:.4}  lr {:.4}  {:.1} img/s",
            line.epoch + 1,
            line.epochs,
            line.loss,
            line.lr,
            line.images_per_sec
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(line.iteration + 1);
                bar.set_message(text);
            }
            None if log && visible => {
                eprintln!(
                    "it {}/{}  {text}  eta {}",
                    line.iteration + 1,
                    self.total,
                    format_duration(self.eta(line.iteration))
                );
            }
            None => {}
        }
    }

    /// Prints a message without breaking the bar.
    pub fn println(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
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

/// Warns once when the loss stays at `ln K` (the uniform, collapsed solution) for a whole
/// epoch after the prototypes are released.
pub struct CollapseWatch {
    uniform: f64,
    watch_from: u64,
    window: u64,
    stuck_since: Option<u64>,
    warned: bool,
}

impl CollapseWatch {
    /// Watches from iteration `watch_from` on, over windows of `window` iterations.
    pub fn new(prototypes: usize, watch_from: u64, window: u64) -> Self {
        Self {
            uniform: (prototypes as f64).ln(),
            watch_from,
            window: window.max(1),
            stuck_since: None,
            warned: false,
        }
    }

    /// Feeds one logged loss; returns the warning to print, once.
    pub fn observe(&mut self, iteration: u64, loss: f64) -> Option<String> {
        if self.warned || iteration < self.watch_from {
            return None;
        }
        if (loss / self.uniform - 1.0).abs() > 0.005 {
            self.stuck_since = None;
            return None;
        }
        let since = *self.stuck_since.get_or_insert(iteration);
        if iteration - since >= self.window {
            self.warned = true;
            return Some(format!(
                "warning: the loss has stayed at ln K = {:.4} since iteration {since}: SwAV has probably collapsed \
                 (all samples on uniform codes). Try a smaller epsilon, fewer prototypes, a later or smaller queue, \
                 a lower learning rate or a longer prototype freeze (see docs/demo-recipe.md)",
                self.uniform
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_is_reported_once_after_a_full_window() {
        let mut watch = CollapseWatch::new(3000, 10, 5);
        let ln_k = (3000f64).ln();
        assert!(watch.observe(2, ln_k).is_none(), "before the watch starts");
        assert!(watch.observe(10, ln_k).is_none());
        assert!(
            watch.observe(12, 5.0).is_none(),
            "learning resets the window"
        );
        assert!(watch.observe(13, ln_k).is_none());
        assert!(watch.observe(18, ln_k).unwrap().contains("collapsed"));
        assert!(watch.observe(30, ln_k).is_none(), "only once");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(6)), "6s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(format_duration(Duration::from_secs(3723)), "1h02m03s");
    }
}
