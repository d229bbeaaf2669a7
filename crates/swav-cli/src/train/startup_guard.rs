//! The start-up bound of a multi-process run. Before training, a rank waits for its peers in
//! MPI initialisation, the NCCL rendezvous, communicator creation and the first collective;
//! a peer that died or never started would leave it waiting forever, since none of those
//! has a timeout of its own. A [`StartupGuard`] watches that stretch: when it has not ended
//! within the timeout, it prints one line naming the rank and what it was waiting for, and
//! ends the process with [`STALL_EXIT_CODE`], as the training loop's stall watchdog does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::watchdog::{STALL_EXIT_CODE, StallWatchdog};

/// Watches the start-up of one rank until [`StartupGuard::finish`] or drop.
pub struct StartupGuard {
    waiting_for: Arc<Mutex<String>>,
    dog: Option<StallWatchdog>,
}

impl StartupGuard {
    /// Starts the bound for `rank` of `world`; `None` or a single rank: no bound.
    pub fn start(rank: usize, world: usize, timeout: Option<Duration>) -> Self {
        let waiting_for = Arc::new(Mutex::new(String::from("start-up")));
        let dog = timeout.filter(|_| world > 1).map(|timeout| {
            let what = Arc::clone(&waiting_for);
            StallWatchdog::start(
                timeout,
                Box::new(move |_| {
                    let what = what.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    crate::say!(
                        "error: rank {rank} of {world} still waits for {what} {} s after start-up began \
                         (--startup-timeout {}): another rank has probably died or never started; stopping",
                        timeout.as_secs(),
                        timeout.as_secs()
                    );
                    std::process::exit(STALL_EXIT_CODE);
                }),
            )
        });
        Self { waiting_for, dog }
    }

    /// Names what the rank waits for now (for the timeout's message).
    pub fn waiting_for(&self, what: &str) {
        *self.waiting_for.lock().unwrap_or_else(|p| p.into_inner()) = what.to_string();
    }

    /// Ends the bound: every rank has met the others.
    pub fn finish(&mut self) {
        self.dog = None;
    }
}
