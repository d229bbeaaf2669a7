//! The stall watchdog of a multi-process run. A collective whose peer has died never
//! returns (NCCL waits on the GPU forever; a CPU transport may too), so every rank would
//! hang. Each rank runs a watchdog thread instead: the training loop calls
//! [`StallWatchdog::beat`] after every step, and when no beat arrives within the timeout the
//! watchdog reports the stall in one line and ends the process with [`STALL_EXIT_CODE`].
//! The launcher (torchrun, Slurm, mpirun) then stops the remaining ranks, and the last
//! checkpoint, written atomically, stays intact for `--resume`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The exit status of a process ended by the watchdog.
pub const STALL_EXIT_CODE: i32 = 3;

/// The last-beat value of a paused watchdog: no silence is ever measured from it.
const PAUSED: u64 = u64::MAX;

/// What the watchdog does on a stall, given how long the last beat is ago.
pub type StallAction = Box<dyn Fn(Duration) + Send>;

/// A thread that acts when the training loop stops making progress; stopped on drop.
pub struct StallWatchdog {
    start: Instant,
    last_beat_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StallWatchdog {
    /// Watches for `timeout` without a beat; then runs `on_stall` once and stops watching.
    pub fn start(timeout: Duration, on_stall: StallAction) -> Self {
        let start = Instant::now();
        let last_beat_ms = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let poll = (timeout / 20).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let thread = {
            let (last_beat_ms, stop) = (Arc::clone(&last_beat_ms), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("swav-stall-watchdog".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::sleep(poll);
                        let now = start.elapsed();
                        let last = Duration::from_millis(last_beat_ms.load(Ordering::Acquire));
                        let silent = now.saturating_sub(last);
                        if silent > timeout && !stop.load(Ordering::Acquire) {
                            on_stall(silent);
                            return;
                        }
                    }
                })
                .expect("spawning the watchdog thread")
        };
        Self {
            start,
            last_beat_ms,
            stop,
            thread: Some(thread),
        }
    }

    /// The action of a real run: one line naming the rank and the timeout, then exit.
    pub fn exit_on_stall(rank: usize, world: usize, timeout: Duration) -> StallAction {
        Box::new(move |silent| {
            crate::say!(
                "error: rank {rank} of {world} made no progress for {:.0} s (--collective-timeout {}): \
                 another rank has probably died; stopping so the launcher ends the job \
                 (resume from the last checkpoint with --resume)",
                silent.as_secs_f64(),
                timeout.as_secs()
            );
            std::process::exit(STALL_EXIT_CODE);
        })
    }

    /// Stops watching until the next [`Self::beat`]: every rank calls it before a pause they
    /// all know of (rank 0's k-NN evaluation at an epoch end), which may outlast the timeout.
    pub fn pause(&self) {
        self.last_beat_ms.store(PAUSED, Ordering::Release);
    }

    /// Records progress now.
    pub fn beat(&self) {
        let ms = self.start.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
        self.last_beat_ms.store(ms, Ordering::Release);
    }
}

impl Drop for StallWatchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn beats_keep_it_quiet_and_silence_triggers_it_once() {
        let (tx, rx) = mpsc::channel();
        let dog = StallWatchdog::start(
            Duration::from_millis(200),
            Box::new(move |silent| tx.send(silent).expect("receiver alive")),
        );
        for _ in 0..8 {
            std::thread::sleep(Duration::from_millis(50));
            dog.beat();
        }
        assert!(rx.try_recv().is_err(), "fired while beats kept coming");
        let silent = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("fires after the timeout");
        assert!(silent > Duration::from_millis(200), "{silent:?}");
        std::thread::sleep(Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "fires only once");
    }

    #[test]
    fn a_pause_lasts_until_the_next_beat() {
        let (tx, rx) = mpsc::channel();
        let dog = StallWatchdog::start(
            Duration::from_millis(100),
            Box::new(move |silent| tx.send(silent).expect("receiver alive")),
        );
        dog.pause();
        std::thread::sleep(Duration::from_millis(400));
        assert!(rx.try_recv().is_err(), "paused");
        dog.beat();
        assert!(
            rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "watching again after the beat"
        );
    }

    #[test]
    fn dropping_it_stops_the_thread_without_firing() {
        let (tx, rx) = mpsc::channel();
        let dog = StallWatchdog::start(
            Duration::from_millis(100),
            Box::new(move |silent| tx.send(silent).expect("receiver alive")),
        );
        drop(dog);
        std::thread::sleep(Duration::from_millis(250));
        assert!(rx.try_recv().is_err());
    }
}
