//! [`ThreadGroup`]: a [`Collective`] between threads of one process.
//!
//! Useful to test data-parallel code without a second process (each thread is one rank),
//! and to run several CPU ranks in one process. Reductions are deterministic: every rank
//! sums (or maxes) the contributions in rank order, in `f64`.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use std::vec::Vec;

use crate::{Collective, Real};

/// Why a [`ThreadGroup`] collective failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadGroupError {
    /// A rank was dropped (its thread ended or panicked) before the collective completed.
    PeerLost {
        /// The rank that reported the failure.
        rank: usize,
    },
    /// Not every rank arrived within the timeout.
    Timeout {
        /// The rank that gave up waiting.
        rank: usize,
        /// The timeout that expired.
        waited: Duration,
    },
    /// Ranks called the same collective with buffers of different lengths.
    LengthMismatch {
        /// The rank that noticed.
        rank: usize,
    },
}

impl core::fmt::Display for ThreadGroupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::PeerLost { rank } => write!(f, "rank {rank}: a peer rank left the group"),
            Self::Timeout { rank, waited } => {
                write!(f, "rank {rank}: peers did not arrive within {waited:?}")
            }
            Self::LengthMismatch { rank } => {
                write!(f, "rank {rank}: ranks passed buffers of different lengths")
            }
        }
    }
}

impl std::error::Error for ThreadGroupError {}

#[derive(Debug)]
struct Shared {
    world: usize,
    timeout: Duration,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    generation: u64,
    arrived: usize,
    contributions: Vec<Option<Vec<f64>>>,
    result: Option<Result<Vec<f64>, ()>>,
    departed: bool,
}

/// One rank of a group of threads joined for collectives. Create the group with
/// [`ThreadGroup::new`] and move each rank into its thread.
#[derive(Debug)]
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

impl ThreadGroup {
    /// A group of `world` ranks whose collectives give up after `timeout`.
    pub fn new(world: usize, timeout: Duration) -> Vec<ThreadGroup> {
        assert!(world > 0, "a thread group needs at least one rank");
        let shared = Arc::new(Shared {
            world,
            timeout,
            state: Mutex::new(State {
                generation: 0,
                arrived: 0,
                contributions: (0..world).map(|_| None).collect(),
                result: None,
                departed: false,
            }),
            changed: Condvar::new(),
        });
        (0..world)
            .map(|rank| ThreadGroup {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect()
    }

    fn reduce<T: Real>(
        &self,
        data: &mut [T],
        combine: fn(f64, f64) -> f64,
    ) -> Result<(), ThreadGroupError> {
        let rank = self.rank;
        let shared = &*self.shared;
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.departed {
            return Err(ThreadGroupError::PeerLost { rank });
        }
        let generation = st.generation;
        st.contributions[rank] = Some(data.iter().map(|v| v.to_f64_lossless()).collect());
        st.arrived += 1;
        if st.arrived == shared.world {
            let parts: Vec<Vec<f64>> = st
                .contributions
                .iter_mut()
                .map(|c| c.take().unwrap_or_default())
                .collect();
            let len = data.len();
            st.result = Some(if parts.iter().all(|p| p.len() == len) {
                let mut acc = parts[0].clone();
                for part in &parts[1..] {
                    acc.iter_mut()
                        .zip(part)
                        .for_each(|(a, &b)| *a = combine(*a, b));
                }
                Ok(acc)
            } else {
                Err(())
            });
            st.arrived = 0;
            st.generation += 1;
            shared.changed.notify_all();
        } else {
            let deadline = std::time::Instant::now() + shared.timeout;
            while st.generation == generation {
                if st.departed {
                    return Err(ThreadGroupError::PeerLost { rank });
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    st.departed = true;
                    shared.changed.notify_all();
                    return Err(ThreadGroupError::Timeout {
                        rank,
                        waited: shared.timeout,
                    });
                }
                st = shared
                    .changed
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        match st.result.as_ref() {
            Some(Ok(values)) => {
                data.iter_mut()
                    .zip(values)
                    .for_each(|(d, &v)| *d = T::of(v));
                Ok(())
            }
            _ => Err(ThreadGroupError::LengthMismatch { rank }),
        }
    }
}

impl Drop for ThreadGroup {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        // A rank that leaves while others may still need it breaks the group for good.
        if self.shared.world > 1 {
            st.departed = true;
            self.shared.changed.notify_all();
        }
    }
}

impl<T: Real> Collective<[T]> for ThreadGroup {
    type Error = ThreadGroupError;

    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.shared.world
    }
    fn all_reduce_sum(&self, data: &mut [T]) -> Result<(), ThreadGroupError> {
        self.reduce(data, |a, b| a + b)
    }
    fn all_reduce_max(&self, data: &mut [T]) -> Result<(), ThreadGroupError> {
        self.reduce(data, |a, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        })
    }
}

impl<T: Real> Collective<Vec<T>> for ThreadGroup {
    type Error = ThreadGroupError;

    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.shared.world
    }
    fn all_reduce_sum(&self, data: &mut Vec<T>) -> Result<(), ThreadGroupError> {
        <Self as Collective<[T]>>::all_reduce_sum(self, data)
    }
    fn all_reduce_max(&self, data: &mut Vec<T>) -> Result<(), ThreadGroupError> {
        <Self as Collective<[T]>>::all_reduce_max(self, data)
    }
}
