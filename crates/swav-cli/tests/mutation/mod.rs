//! A bounded, deterministic mutation fuzzer for the parsers' tests: seeded byte-level
//! mutations of valid files, each run on a worker thread under a time bound, with every
//! panic caught and every allocation measured.
//!
//! Each input must end in a value or a typed error: a panic, a run past [`Budget::per_input`]
//! or a single allocation above [`Budget::allocation_limit`] fails the test with the seed,
//! the input's index and its bytes written to a file for a regression test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use swav_core::SplitMix64;

/// The system allocator, recording the largest single request made on each thread.
pub struct MeasuringAllocator;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: allocations during thread teardown are not measured.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to `System`; only a thread-local is updated.
unsafe impl GlobalAlloc for MeasuringAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// What a target did with one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A value.
    Accepted,
    /// A typed error.
    Refused,
}

/// How many inputs a run tries and what each may cost.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Mutated inputs to try.
    pub inputs: usize,
    /// The longest one input may take.
    pub per_input: Duration,
    /// The largest single allocation one input may make, in bytes, as a function of its
    /// length.
    pub allocation_limit: fn(usize) -> usize,
}

impl Budget {
    /// `release` inputs in an optimised build, `debug` otherwise; `SWAV_FUZZ_INPUTS`
    /// overrides both (a longer campaign on stable Rust).
    pub fn inputs(release: usize, debug: usize) -> usize {
        match std::env::var("SWAV_FUZZ_INPUTS") {
            Ok(n) => n.parse().expect("SWAV_FUZZ_INPUTS is a number"),
            Err(_) if cfg!(debug_assertions) => debug,
            Err(_) => release,
        }
    }
}

/// What a run saw: how many inputs were accepted and refused, and how long it took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Inputs that parsed.
    pub accepted: usize,
    /// Inputs refused with a typed error.
    pub refused: usize,
    /// The slowest input.
    pub slowest: Duration,
    /// The largest single allocation of any input.
    pub largest_allocation: usize,
}

/// Runs `target` on every seed and on `budget.inputs` mutations of them (seeded by
/// `seed`), and fails on the first panic, hang or oversized allocation.
pub fn fuzz(
    name: &str,
    seed: u64,
    seeds: &[Vec<u8>],
    budget: Budget,
    target: fn(&[u8]) -> Outcome,
) -> Tally {
    assert!(!seeds.is_empty(), "{name}: no seed");
    let (to_worker, inputs) = mpsc::channel::<Vec<u8>>();
    let (to_runner, results) = mpsc::channel();
    std::thread::spawn(move || {
        for input in inputs {
            LARGEST.with(|l| l.set(0));
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| target(&input)));
            let largest = LARGEST.with(Cell::get);
            let outcome = outcome.map_err(|panic| panic_message(&*panic));
            if to_runner.send((outcome, largest)).is_err() {
                return;
            }
        }
    });
    let mut rng = SplitMix64::new(seed);
    let mut tally = Tally::default();
    for index in 0..seeds.len() + budget.inputs {
        let input = match seeds.get(index) {
            Some(s) => s.clone(),
            None => mutate(&mut rng, seeds),
        };
        let started = Instant::now();
        to_worker.send(input.clone()).expect("the worker is alive");
        let failure = match results.recv_timeout(budget.per_input) {
            Ok((Ok(outcome), largest)) => {
                tally.slowest = tally.slowest.max(started.elapsed());
                tally.largest_allocation = tally.largest_allocation.max(largest);
                match outcome {
                    Outcome::Accepted => tally.accepted += 1,
                    Outcome::Refused => tally.refused += 1,
                }
                let limit = (budget.allocation_limit)(input.len());
                (largest > limit).then(|| {
                    format!("allocated {largest} bytes at once (limit {limit} for this input)")
                })
            }
            Ok((Err(panic), _)) => Some(format!("panicked: {panic}")),
            Err(_) => Some(format!("ran longer than {:?}", budget.per_input)),
        };
        if let Some(what) = failure {
            let saved = save_failure(name, seed, index, &input);
            panic!(
                "{name}: input {index} of seed {seed} {what}; its bytes are in {}",
                saved.display()
            );
        }
    }
    eprintln!(
        "{name}: {} inputs ({} seeds): {} accepted, {} refused; slowest {:?}, largest allocation {} bytes",
        seeds.len() + budget.inputs,
        seeds.len(),
        tally.accepted,
        tally.refused,
        tally.slowest,
        tally.largest_allocation
    );
    tally
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".into())
}

/// Writes a failing input where a regression test can pick it up.
fn save_failure(name: &str, seed: u64, index: usize, input: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("swav-fuzz-{name}-{seed}-{index}.bin"));
    std::fs::write(&path, input).expect("writing the failing input");
    path
}

/// Numbers that break careless header arithmetic.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7F,
    0xFF,
    0x7FFF,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// One to four mutations of a randomly chosen seed (sometimes spliced with another).
pub fn mutate(rng: &mut SplitMix64, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[below(rng, seeds.len())].clone();
    for _ in 0..1 + below(rng, 4) {
        mutate_once(rng, &mut data, seeds);
    }
    data
}

fn below(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

fn mutate_once(rng: &mut SplitMix64, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    if data.is_empty() {
        data.push(rng.next_u64() as u8);
        return;
    }
    let len = data.len();
    let at = below(rng, len);
    match below(rng, 10) {
        // Flip one bit.
        0 => data[at] ^= 1 << below(rng, 8),
        // A random byte.
        1 => data[at] = rng.next_u64() as u8,
        // An interesting integer, little- or big-endian, 1 to 8 bytes wide.
        2 => {
            let value = INTERESTING[below(rng, INTERESTING.len())];
            let width = [1, 2, 4, 8][below(rng, 4)];
            let bytes = if rng.next_u64().is_multiple_of(2) {
                value.to_le_bytes()
            } else {
                value.to_be_bytes()
            };
            let bytes = &bytes[..width];
            let end = (at + width).min(len);
            data[at..end].copy_from_slice(&bytes[..end - at]);
        }
        // Cut the file short.
        3 => data.truncate(at),
        // Delete a range.
        4 => {
            let end = (at + 1 + below(rng, 64)).min(len);
            data.drain(at..end);
        }
        // Insert random bytes.
        5 => {
            let n = 1 + below(rng, 16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        // Duplicate a range.
        6 => {
            let end = (at + 1 + below(rng, 64)).min(len);
            let copy = data[at..end].to_vec();
            data.splice(at..at, copy);
        }
        // Replace a run of ASCII digits (a number in a text header) by a huge one.
        7 => {
            if let Some(start) = (at..len).find(|&i| data[i].is_ascii_digit()) {
                let end = (start..len)
                    .find(|&i| !data[i].is_ascii_digit())
                    .unwrap_or(len);
                let huge = INTERESTING[below(rng, INTERESTING.len())].to_string();
                data.splice(start..end, huge.into_bytes());
            }
        }
        // Overwrite with 0x00 or 0xFF.
        8 => {
            let end = (at + 1 + below(rng, 16)).min(len);
            let fill = if rng.next_u64().is_multiple_of(2) {
                0x00
            } else {
                0xFF
            };
            data[at..end].fill(fill);
        }
        // Splice: this seed's head with another seed's tail.
        _ => {
            let other = &seeds[below(rng, seeds.len())];
            let from = below(rng, other.len());
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
    }
}
