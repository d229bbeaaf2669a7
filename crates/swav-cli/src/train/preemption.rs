//! Preemption: a cluster asks a job to stop with SIGTERM (Slurm at the time limit or on
//! preemption, Kubernetes, torchrun's agent) or, ahead of time, with the signal Slurm's
//! `--signal=USR1@120` sends. On either, every rank of `swav pretrain` finishes the step it
//! is in, the ranks agree through one collective to stop at the same iteration boundary, the
//! checkpoint is written, and the process exits with [`PREEMPTED_EXIT_CODE`]; the same
//! command with `--resume auto` continues bit for bit.
//!
//! The signal handler only stores the signal number in an atomic (async-signal-safe); the
//! training loop reads it between steps and the ranks agree on it with one all-reduce
//! (`crate::train::run`).

use std::sync::atomic::{AtomicI32, Ordering};

/// The exit status of a run that stopped on a signal after writing its checkpoint
/// (`EX_TEMPFAIL`: a temporary failure, to be retried; torchrun restarts on it, and a Slurm
/// requeue script can test it).
pub const PREEMPTED_EXIT_CODE: u8 = 75;

/// The signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Catches SIGTERM and SIGUSR1 from now on (instead of dying on them).
pub fn install() {
    let handler = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `record` only stores into an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGUSR1, handler);
    }
}

/// The name of the signal received so far, if any.
pub fn received() -> Option<&'static str> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGUSR1 => Some("SIGUSR1"),
        _ => Some("a signal"),
    }
}

/// A run that stopped on a signal after writing its checkpoint.
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped on {signal} after {done} of {total} iterations; checkpoint {checkpoint} written: \
     run the same command with --resume auto to continue (exit status {PREEMPTED_EXIT_CODE})"
)]
pub struct Preempted {
    /// The signal this rank received, or "a peer's signal".
    pub signal: &'static str,
    /// Iterations done (the next global iteration).
    pub done: u64,
    /// Iterations of the whole run.
    pub total: u64,
    /// The checkpoint written.
    pub checkpoint: String,
}
